//! The slow log: each core's ring of the requests that spent longer than
//! `--slowlog-slower-than` in the proxy, as `SLOWLOG GET` shows them.
//!
//! The request path pays one comparison per request ([`SlowLog::is_slow`], on the latency the
//! client writer computes anyway); only a slow request pays for its entry, and little: a copy
//! of its frame (up to 4 KiB; a longer one's arguments are cut at once), so an entry never
//! pins a client's read buffer. Parsing it again, redacting and truncating its arguments
//! exactly as Redis does, and writing the client's address wait until `SLOWLOG GET`: on an
//! overloaded proxy every request is slow and all but the newest `max-len` are dropped unread
//! (with 10,000 clients at `-P 16`, formatting the address alone was ~7% of the CPU).
//!
//! Each core keeps `--slowlog-max-len` entries, the oldest dropped first; `SLOWLOG GET` merges
//! every core's, newest first, `max-len` of them at most as one node's log would hold, and the
//! ids are unique across cores because core `c` of `n` numbers its entries `c`, `c + n`,
//! `c + 2n`...
//!
//! An entry is Redis's six fields plus a seventh, the backend node that served the request.
//! `CONFIG SET slowlog-log-slower-than | slowlog-max-len` through percore sets these logs too.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::redact::{redaction, REDACTED};
use crate::net::Endpoint;
use crate::resp::encode;
use crate::resp::parse::{Frame, ParseLimits, RequestParser};

/// Arguments an entry keeps, Redis's `SLOWLOG_ENTRY_MAX_ARGC`; past it the last one says how
/// many more there were.
pub const MAX_ARGS: usize = 32;
/// Bytes of one argument an entry keeps, Redis's `SLOWLOG_ENTRY_MAX_STRING`.
pub const MAX_ARG_BYTES: usize = 128;
/// Entries `SLOWLOG GET` returns without a count, as in Redis.
pub const DEFAULT_GET_COUNT: usize = 10;

/// One slow request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowEntry {
    /// Unique across the cores of the process.
    pub id: u64,
    /// When it was logged, in microseconds since the Unix epoch.
    pub at_micros: u64,
    /// Its time in the proxy, in microseconds.
    pub micros: u64,
    /// Its arguments, redacted and truncated.
    pub args: Vec<Bytes>,
    /// The client's `ip:port`.
    pub client: String,
    /// The client's name (empty if none).
    pub name: Bytes,
    /// The backend node whose reply it got (empty when the proxy answered it itself).
    pub node: String,
}

/// Who sent a slow request and who answered it.
pub struct Origin {
    /// The client's address, written as `ip:port` when the entry is read.
    pub client: Option<Endpoint>,
    /// The client's name.
    pub name: Option<Bytes>,
    /// The backend node that served it.
    pub node: Option<Rc<str>>,
}

/// Frames up to this long are kept as they came and parsed, redacted and cut only when the
/// log is read; longer ones have their arguments cut at once, so an entry holds at most about
/// this much (32 arguments of 128 bytes) and never a client's read buffer.
const LAZY_FRAME_MAX: usize = 4096;

/// A request as an entry keeps it until the log is read.
enum Kept {
    /// A copy of a short request's frame.
    Frame(Bytes),
    /// A long request's arguments, already as they will be shown.
    Args(Vec<Bytes>),
}

/// One entry as a core keeps it: when a proxy is overloaded nearly every request is slow, and
/// all but the newest `max-len` entries are dropped unread, so an entry costs a copy of a
/// short frame and nothing is formatted until `SLOWLOG GET` asks ([`Logged::entry`]).
struct Logged {
    id: u64,
    at_micros: u64,
    micros: u64,
    request: Kept,
    origin: Origin,
}

impl Logged {
    /// The entry as `SLOWLOG GET` shows it; `None` for a kept frame that is not a request.
    fn entry(&self) -> Option<SlowEntry> {
        let args = match &self.request {
            Kept::Frame(frame) => logged_args(frame)?,
            Kept::Args(args) => args.clone(),
        };
        Some(SlowEntry {
            id: self.id,
            at_micros: self.at_micros,
            micros: self.micros,
            args,
            client: self
                .origin
                .client
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            name: self.origin.name.clone().unwrap_or_default(),
            node: self.origin.node.as_deref().unwrap_or_default().to_string(),
        })
    }
}

/// One core's slow log.
pub struct SlowLog {
    /// Requests at least this slow are logged; `Duration::MAX` when logging is off.
    slower_than: Cell<Duration>,
    /// The threshold as set (`None`: off), kept apart from `slower_than` so that setting
    /// `max_len` back above 0 restores it.
    threshold: Cell<Option<Duration>>,
    /// Most entries kept.
    max_len: Cell<usize>,
    /// Newest first.
    entries: RefCell<VecDeque<Logged>>,
    /// The next id this core hands out.
    next_id: Cell<u64>,
    /// Between two ids of this core: the number of cores.
    id_step: u64,
}

impl SlowLog {
    /// The log of core `core` of `cores`; `slower_than` `None` logs nothing.
    pub fn new(slower_than: Option<Duration>, max_len: usize, core: usize, cores: usize) -> Self {
        let log = SlowLog {
            slower_than: Cell::new(Duration::MAX),
            threshold: Cell::new(slower_than),
            max_len: Cell::new(max_len),
            entries: RefCell::new(VecDeque::new()),
            next_id: Cell::new(core as u64),
            id_step: cores.max(1) as u64,
        };
        log.apply();
        log
    }

    /// `CONFIG SET slowlog-log-slower-than` (`Some(None)`: negative, off) and
    /// `slowlog-max-len`, given through percore: this log follows them as a node's does.
    pub fn configure(&self, slower_than: Option<Option<Duration>>, max_len: Option<usize>) {
        if let Some(threshold) = slower_than {
            self.threshold.set(threshold);
        }
        if let Some(max_len) = max_len {
            self.max_len.set(max_len);
            self.entries.borrow_mut().truncate(max_len);
        }
        self.apply();
    }

    fn apply(&self) {
        let slower_than = match self.threshold.get() {
            Some(threshold) if self.max_len.get() > 0 => threshold,
            _ => Duration::MAX,
        };
        self.slower_than.set(slower_than);
    }

    /// Whether a request that took `elapsed` belongs in the log: the request path's one check.
    #[inline]
    pub fn is_slow(&self, elapsed: Duration) -> bool {
        elapsed >= self.slower_than.get()
    }

    /// Logs `request` (a complete multibulk frame), which took `elapsed`.
    pub fn record(&self, request: &[u8], elapsed: Duration, origin: Origin) {
        let request = if request.len() <= LAZY_FRAME_MAX {
            if request.first() != Some(&b'*') {
                return;
            }
            Kept::Frame(Bytes::copy_from_slice(request))
        } else {
            match logged_args(request) {
                Some(args) => Kept::Args(args),
                None => return,
            }
        };
        let id = self.next_id.get();
        self.next_id.set(id + self.id_step);
        let entry = Logged {
            id,
            at_micros: unix_micros(SystemTime::now()),
            micros: elapsed.as_micros().min(u128::from(u64::MAX)) as u64,
            request,
            origin,
        };
        let mut entries = self.entries.borrow_mut();
        entries.push_front(entry);
        entries.truncate(self.max_len.get());
    }

    /// The newest `count` entries, newest first.
    pub fn newest(&self, count: usize) -> Vec<SlowEntry> {
        let entries = self.entries.borrow();
        entries
            .iter()
            .filter_map(Logged::entry)
            .take(count)
            .collect()
    }

    /// Most entries kept (`slowlog-max-len`).
    pub fn max_len(&self) -> usize {
        self.max_len.get()
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Forgets every entry (ids keep counting, as in Redis).
    pub fn reset(&self) {
        self.entries.borrow_mut().clear();
    }
}

/// Microseconds since the Unix epoch.
fn unix_micros(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// A request's arguments as an entry keeps them: secrets redacted, at most [`MAX_ARGS`], each
/// at most [`MAX_ARG_BYTES`], with Redis's notes on what was cut. `None` for what is not a
/// request (the reply place of a protocol error has no frame).
fn logged_args(request: &[u8]) -> Option<Vec<Bytes>> {
    // The frame passed the client's limits when it arrived, so none is checked again (the
    // parser compares them as i64).
    let limits = ParseLimits {
        max_bulk_len: i64::MAX as usize,
        max_multibulk_len: i64::MAX as usize,
    };
    let mut parser = RequestParser::new(limits);
    let Ok(Some(Frame::Multibulk { .. })) = parser.parse(request) else {
        return None;
    };
    let ranges = parser.args();
    if ranges.is_empty() {
        return None;
    }
    let all: Vec<&[u8]> = ranges.iter().map(|r| &request[r.clone()]).collect();
    let hidden = redaction(&all[..]);
    let kept = all.len().min(MAX_ARGS);
    let mut args = Vec::with_capacity(kept);
    for (index, arg) in all.iter().take(kept).enumerate() {
        let logged = if kept < all.len() && index == kept - 1 {
            Bytes::from(format!("... ({} more arguments)", all.len() - kept + 1))
        } else if hidden.hides(index) {
            Bytes::from_static(REDACTED)
        } else if arg.len() > MAX_ARG_BYTES {
            let mut cut = BytesMut::with_capacity(MAX_ARG_BYTES + 32);
            cut.put_slice(&arg[..MAX_ARG_BYTES]);
            cut.put_slice(format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES).as_bytes());
            cut.freeze()
        } else {
            Bytes::copy_from_slice(arg)
        };
        args.push(logged);
    }
    Some(args)
}

/// Every core's newest entries merged, newest first, at most `count`.
pub fn merge(per_core: Vec<Vec<SlowEntry>>, count: usize) -> Vec<SlowEntry> {
    let mut all: Vec<SlowEntry> = per_core.into_iter().flatten().collect();
    all.sort_unstable_by_key(|e| std::cmp::Reverse((e.at_micros, e.id)));
    all.truncate(count);
    all
}

/// Which fields an entry is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Redis's six, for `SLOWLOG GET`: clients read exactly these (go-redis reads six and
    /// leaves a seventh unread in the stream), so nothing is added.
    Redis,
    /// Redis's six and the backend node that served the request, for `PROXY SLOWLOG`.
    WithNode,
}

/// Appends a slow log reply: an array of entries, each
/// `[id, unix time, microseconds, [args], client, name]` and, with [`Fields::WithNode`],
/// `node`. The same in RESP2 and RESP3, as in Redis (arrays, integers and bulk strings are
/// both's).
pub fn encode_entries(out: &mut BytesMut, entries: &[SlowEntry], fields: Fields) {
    encode::header(out, b'*', entries.len());
    for entry in entries {
        let len = match fields {
            Fields::Redis => 6,
            Fields::WithNode => 7,
        };
        encode::header(out, b'*', len);
        encode::integer(out, entry.id as i64);
        encode::integer(out, (entry.at_micros / 1_000_000) as i64);
        encode::integer(out, entry.micros as i64);
        encode::header(out, b'*', entry.args.len());
        for arg in &entry.args {
            encode::bulk(out, arg);
        }
        encode::bulk(out, entry.client.as_bytes());
        encode::bulk(out, &entry.name);
        if fields == Fields::WithNode {
            encode::bulk(out, entry.node.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::parse::encode_request;

    fn frame(args: &[&[u8]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_request(&mut out, args);
        out.to_vec()
    }

    fn origin() -> Origin {
        Origin {
            client: Some(Endpoint::Ip("127.0.0.1:5000".parse().expect("an address"))),
            name: None,
            node: Some("127.0.0.1:7000".into()),
        }
    }

    fn texts(args: &[Bytes]) -> Vec<String> {
        args.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn arguments_are_cut_as_redis_cuts_them() {
        // 32 arguments: all kept. 41: 31 kept and a note on the other 10 (redis-server 7.0).
        let mut args: Vec<Vec<u8>> = vec![b"DEL".to_vec()];
        args.extend((0..31).map(|i| format!("k{i}").into_bytes()));
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        assert_eq!(logged_args(&frame(&refs)).unwrap().len(), 32);
        args.extend((31..40).map(|i| format!("k{i}").into_bytes()));
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let kept = texts(&logged_args(&frame(&refs)).unwrap());
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[30], "k29");
        assert_eq!(kept[31], "... (10 more arguments)");

        let long = vec![b'x'; 200];
        let exact = vec![b'y'; 128];
        let kept = texts(&logged_args(&frame(&[b"SET", &long, &exact])).unwrap());
        assert_eq!(kept[1], format!("{}... (72 more bytes)", "x".repeat(128)));
        assert_eq!(kept[2], "y".repeat(128));
        let kept = texts(&logged_args(&frame(&[b"AUTH", b"secret"])).unwrap());
        assert_eq!(kept, ["AUTH", "(redacted)"]);
        assert_eq!(logged_args(b""), None);
    }

    #[test]
    fn keeps_the_newest_and_numbers_across_cores() {
        let log = SlowLog::new(Some(Duration::from_millis(10)), 2, 1, 2);
        assert!(!log.is_slow(Duration::from_millis(9)));
        assert!(log.is_slow(Duration::from_millis(10)));
        for key in [&b"a"[..], b"b", b"c"] {
            log.record(&frame(&[b"GET", key]), Duration::from_millis(12), origin());
        }
        let kept = log.newest(10);
        assert_eq!(log.len(), 2);
        assert_eq!(kept.iter().map(|e| e.id).collect::<Vec<_>>(), [5, 3]);
        assert_eq!(texts(&kept[0].args), ["GET", "c"]);
        assert_eq!(kept[0].micros, 12_000);
        assert_eq!(kept[0].node, "127.0.0.1:7000");
        log.reset();
        assert_eq!(log.len(), 0);
        log.record(&frame(&[b"GET", b"d"]), Duration::ZERO, origin());
        assert_eq!(log.newest(1)[0].id, 7, "ids go on after a reset");
    }

    #[test]
    fn short_and_long_requests_read_back_alike() {
        // A short frame is kept as it came and cut when read; a long one is cut at once.
        let log = SlowLog::new(Some(Duration::ZERO), 10, 0, 1);
        let long = vec![b'v'; LAZY_FRAME_MAX];
        log.record(&frame(&[b"SET", b"k", &long]), Duration::ZERO, origin());
        log.record(&frame(&[b"AUTH", b"secret"]), Duration::ZERO, origin());
        log.record(b"", Duration::ZERO, origin());
        let kept = log.newest(10);
        assert_eq!(kept.len(), 2, "the place of a protocol error is not logged");
        assert_eq!(texts(&kept[0].args), ["AUTH", "(redacted)"]);
        assert_eq!(kept[0].client, "127.0.0.1:5000");
        let cut = format!(
            "{}... ({} more bytes)",
            "v".repeat(128),
            LAZY_FRAME_MAX - 128
        );
        assert_eq!(texts(&kept[1].args), ["SET", "k", &cut]);
        assert!(matches!(log.entries.borrow()[1].request, Kept::Args(_)));
        assert!(matches!(log.entries.borrow()[0].request, Kept::Frame(_)));
    }

    #[test]
    fn off_when_negative_or_empty() {
        let off = SlowLog::new(None, 128, 0, 1);
        let empty = SlowLog::new(Some(Duration::ZERO), 0, 0, 1);
        let all = SlowLog::new(Some(Duration::ZERO), 128, 0, 1);
        let long = Duration::from_secs(3600);
        assert!(!off.is_slow(long) && !empty.is_slow(long));
        assert!(all.is_slow(Duration::ZERO));
    }

    #[test]
    fn follows_config_set() {
        let log = SlowLog::new(None, 128, 0, 1);
        log.configure(Some(Some(Duration::ZERO)), None);
        assert!(log.is_slow(Duration::ZERO));
        log.configure(None, Some(0));
        assert!(
            !log.is_slow(Duration::from_secs(1)),
            "max-len 0 keeps nothing"
        );
        log.configure(None, Some(2));
        assert!(
            log.is_slow(Duration::ZERO),
            "the threshold is back with a length"
        );
        for _ in 0..3 {
            log.record(&frame(&[b"PING"]), Duration::ZERO, origin());
        }
        assert_eq!(log.len(), 2);
        log.configure(None, Some(1));
        assert_eq!(log.len(), 1, "a shorter log drops the oldest at once");
        log.configure(Some(None), None);
        assert!(!log.is_slow(Duration::from_secs(1)));
    }

    #[test]
    fn merges_newest_first_and_encodes() {
        let entry = |id, at_micros| SlowEntry {
            id,
            at_micros,
            micros: 15,
            args: vec![Bytes::from_static(b"PING")],
            client: "c:1".into(),
            name: Bytes::from_static(b"n"),
            node: String::new(),
        };
        let merged = merge(
            vec![vec![entry(2, 30), entry(0, 10)], vec![entry(1, 20)]],
            2,
        );
        assert_eq!(merged.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 1]);
        let mut out = BytesMut::new();
        encode_entries(&mut out, &merged[1..], Fields::WithNode);
        assert_eq!(
            &out[..],
            b"*1\r\n*7\r\n:1\r\n:0\r\n:15\r\n*1\r\n$4\r\nPING\r\n$3\r\nc:1\r\n$1\r\nn\r\n$0\r\n\r\n"
        );
        out.clear();
        encode_entries(&mut out, &merged[1..], Fields::Redis);
        assert_eq!(
            &out[..],
            b"*1\r\n*6\r\n:1\r\n:0\r\n:15\r\n*1\r\n$4\r\nPING\r\n$3\r\nc:1\r\n$1\r\nn\r\n"
        );
    }
}
