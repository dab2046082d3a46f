//! `pubsub` mode: a fan-out of one publisher to many subscribers. The subscribers connect and
//! SUBSCRIBE (subscriber i to channel i mod `channels`), and once every confirmation has come
//! back the publisher sends `messages` PUBLISHes, message j to channel j mod `channels`, its
//! payload the number j in ten digits padded to `size` bytes. Each subscriber checks that it
//! gets every message of its channel, once, in order, at the right size; the publisher checks
//! that every PUBLISH counts the channel's subscribers. Delivered messages per second and CPU
//! per delivered message are measured from the first PUBLISH to the last delivery.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::cpu::{self, Group};
use crate::poller::{Poller, POLL_MS};
use crate::resp::{InBuf, Item, Reply};
use crate::{Common, LoadError};

/// Digits of the sequence number at the start of each payload (enough for 10^10 messages).
const SEQ_DIGITS: usize = 10;
/// The longest the publisher sleeps while its window is full: short next to the time the
/// subscribers take to drain a window, so the publisher never leaves them idle.
const WINDOW_POLL: Duration = Duration::from_micros(50);
/// Errors quoted in full in the report; the rest are only counted.
const ERRORS_SHOWN: usize = 5;

#[derive(clap::Args)]
pub struct PubsubArgs {
    #[command(flatten)]
    common: Common,
    /// Subscriber connections.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Messages the publisher sends in all.
    #[arg(long, default_value_t = 2000)]
    messages: u64,
    /// Payload bytes per message (at least 10: the payload starts with its sequence number).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Channels the subscribers are spread over (and the messages round-robin over).
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Messages per second; 0 publishes as fast as the subscribers keep up (see --window).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How far the publisher may run ahead of the subscribers, in messages (on average over
    /// the subscribers): it waits while more than this many are published and not delivered.
    #[arg(long, default_value_t = 100)]
    window: u64,
    /// PUBLISHes written together before their replies are read.
    #[arg(long, default_value_t = 10)]
    batch: u64,
}

/// What the subscriber threads and the publisher share.
struct Shared {
    confirmed: AtomicUsize,
    delivered: AtomicU64,
    stop: AtomicBool,
}

struct Subscriber {
    index: usize,
    stream: TcpStream,
    buf: InBuf,
    channel: usize,
    /// Sequence number of the next message expected (channel, channel + channels, ...).
    next: u64,
    /// The distance between two messages of one channel: the number of channels.
    stride: u64,
    received: u64,
    expected: u64,
    confirmed: bool,
    finished: bool,
}

/// What one subscriber thread found.
#[derive(Default)]
struct Found {
    errors: u64,
    quoted: Vec<String>,
    missing: u64,
    last_delivery: Option<Instant>,
}

impl Found {
    fn error(&mut self, text: String) {
        self.errors += 1;
        if self.quoted.len() < ERRORS_SHOWN {
            self.quoted.push(text);
        }
    }
}

/// What a frame a subscriber received means.
enum Frame {
    Confirmed,
    /// A message; `fits` when it is on the subscriber's channel and of the payload size.
    Message {
        seq: Option<u64>,
        fits: bool,
    },
    Unexpected(String),
}

fn classify(reply: &Reply<'_>, name: &[u8], size: usize) -> Frame {
    match reply.elements() {
        [Item::Bulk(b"subscribe"), Item::Bulk(_), Item::Int(_)] => Frame::Confirmed,
        [Item::Bulk(b"message"), Item::Bulk(channel), Item::Bulk(payload)] => Frame::Message {
            seq: payload
                .get(..SEQ_DIGITS)
                .and_then(|digits| std::str::from_utf8(digits).ok())
                .and_then(|digits| digits.parse().ok()),
            fits: *channel == name && payload.len() == size,
        },
        _ => Frame::Unexpected(format!("{reply:?}")),
    }
}

fn names(channels: usize) -> Vec<Vec<u8>> {
    // A name of this run only, so no other client's subscription can change the counts.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let run = format!("session-load:{}:{stamp}", std::process::id());
    (0..channels)
        .map(|c| format!("{run}:{c}").into_bytes())
        .collect()
}

pub fn run(args: &PubsubArgs) -> Result<bool, LoadError> {
    if args.size < SEQ_DIGITS || args.channels == 0 || args.subscribers == 0 {
        return Err(LoadError::Usage(format!(
            "--size must be at least {SEQ_DIGITS}, --channels and --subscribers at least 1"
        )));
    }
    let common = &args.common;
    let names = names(args.channels);
    let per_channel = crate::spread(args.messages, args.channels);
    let subs_on = crate::spread(args.subscribers as u64, args.channels);
    let threads = common.threads.max(1);
    let mut groups: Vec<Vec<Subscriber>> = (0..threads).map(|_| Vec::new()).collect();
    for index in 0..args.subscribers {
        let channel = index % args.channels;
        let mut stream = common.connect()?;
        let subscribe = command(&[b"SUBSCRIBE", &names[channel]]);
        stream
            .write_all(&subscribe)
            .map_err(LoadError::io("sending SUBSCRIBE"))?;
        stream
            .set_nonblocking(true)
            .map_err(LoadError::io("set_nonblocking"))?;
        groups[index % threads].push(Subscriber {
            index,
            stream,
            buf: InBuf::new(),
            channel,
            next: channel as u64,
            stride: args.channels as u64,
            received: 0,
            expected: per_channel[channel],
            confirmed: false,
            finished: false,
        });
    }
    let shared = Shared {
        confirmed: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let (names, shared) = (&names, &shared);
    thread::scope(|scope| {
        let readers: Vec<_> = groups
            .into_iter()
            .map(|group| scope.spawn(move || read_loop(group, names, args, shared)))
            .collect();
        let outcome = publish_and_measure(args, names, &subs_on, shared, readers);
        shared.stop.store(true, Ordering::Relaxed);
        outcome
    })
}

fn publish_and_measure<'s>(
    args: &PubsubArgs,
    names: &[Vec<u8>],
    subs_on: &[u64],
    shared: &Shared,
    readers: Vec<thread::ScopedJoinHandle<'s, Result<Found, LoadError>>>,
) -> Result<bool, LoadError> {
    let common = &args.common;
    let deadline = Instant::now() + common.timeout();
    while shared.confirmed.load(Ordering::Relaxed) < args.subscribers {
        if Instant::now() > deadline {
            let confirmed = shared.confirmed.load(Ordering::Relaxed);
            return Err(LoadError::Timeout(format!(
                "only {confirmed} of {} subscriptions confirmed",
                args.subscribers
            )));
        }
        thread::sleep(Duration::from_millis(1));
    }
    let groups: &[Group] = &common.cpu;
    let before = cpu::sample(groups);
    let start = Instant::now();
    let mismatches = publish(args, names, subs_on, shared)?;
    let mut found = Found::default();
    for reader in readers {
        let part = reader.join().map_err(|_| LoadError::Panic)??;
        found.errors += part.errors;
        found.missing += part.missing;
        for quote in part.quoted {
            if found.quoted.len() < ERRORS_SHOWN {
                found.quoted.push(quote);
            }
        }
        found.last_delivery = found.last_delivery.max(part.last_delivery);
    }
    let after = cpu::sample(groups);
    let secs = found
        .last_delivery
        .unwrap_or_else(Instant::now)
        .duration_since(start)
        .as_secs_f64();
    let deliveries = shared.delivered.load(Ordering::Relaxed);
    for quote in &found.quoted {
        eprintln!("session_load pubsub: {quote}");
    }
    println!(
        "mode=pubsub subscribers={} channels={} size={} published={} deliveries={} secs={:.3} \
         published_per_s={:.0} delivered_per_s={:.0} errors={} missing={} count_mismatches={}{}",
        args.subscribers,
        args.channels,
        args.size,
        args.messages,
        deliveries,
        secs,
        args.messages as f64 / secs,
        deliveries as f64 / secs,
        found.errors,
        found.missing,
        mismatches,
        cpu::report(groups, &before, &after, deliveries, secs),
    );
    Ok(found.errors == 0 && found.missing == 0 && mismatches == 0)
}

/// Sends every PUBLISH, paced by --rate and the window; returns how many PUBLISH replies did
/// not count the channel's subscribers.
fn publish(
    args: &PubsubArgs,
    names: &[Vec<u8>],
    subs_on: &[u64],
    shared: &Shared,
) -> Result<u64, LoadError> {
    let mut stream = args.common.connect()?;
    let mut replies = InBuf::new();
    let mut out = Vec::new();
    let average_subs = (args.subscribers as u64).div_ceil(args.channels as u64);
    let window = args.window.max(1) * average_subs;
    let start = Instant::now();
    let (mut published, mut sent, mut mismatches) = (0u64, 0u64, 0u64);
    let mut payload = vec![b'x'; args.size];
    let (mut progress, mut progress_at) = (0, Instant::now());
    while published < args.messages {
        if args.rate > 0 {
            let due = start + Duration::from_secs_f64(published as f64 / args.rate as f64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        loop {
            let delivered = shared.delivered.load(Ordering::Relaxed);
            if sent.saturating_sub(delivered) <= window || shared.stop.load(Ordering::Relaxed) {
                break;
            }
            if delivered != progress {
                (progress, progress_at) = (delivered, Instant::now());
            } else if progress_at.elapsed() > args.common.timeout() {
                return Err(LoadError::Timeout(format!(
                    "subscribers stalled: {delivered} of {sent} messages delivered"
                )));
            }
            thread::sleep(WINDOW_POLL);
        }
        let batch = args.batch.max(1).min(args.messages - published);
        out.clear();
        for seq in published..published + batch {
            let channel = (seq % args.channels as u64) as usize;
            let digits = format!("{seq:0width$}", width = SEQ_DIGITS);
            payload[..SEQ_DIGITS].copy_from_slice(digits.as_bytes());
            out.extend_from_slice(&command(&[b"PUBLISH", &names[channel], &payload]));
            sent += subs_on[channel];
        }
        stream
            .write_all(&out)
            .map_err(LoadError::io("sending PUBLISH"))?;
        for seq in published..published + batch {
            let want = subs_on[(seq % args.channels as u64) as usize] as i64;
            let count = read_reply(&mut stream, &mut replies, |reply| match reply {
                Reply::One(Item::Int(count)) => Ok(*count),
                other => Err(format!("PUBLISH answered {other:?}")),
            })?;
            mismatches += u64::from(count != want);
        }
        published += batch;
    }
    Ok(mismatches)
}

/// One subscriber thread: reads its subscribers' frames and checks them until each has every
/// message of its channel, or nothing came for --timeout.
fn read_loop(
    mut subs: Vec<Subscriber>,
    names: &[Vec<u8>],
    args: &PubsubArgs,
    shared: &Shared,
) -> Result<Found, LoadError> {
    let mut poller = Poller::new().map_err(LoadError::io("epoll_create"))?;
    let mut ready = Vec::new();
    for (token, sub) in subs.iter().enumerate() {
        poller
            .add(&sub.stream, token)
            .map_err(LoadError::io("epoll_ctl"))?;
    }
    let mut found = Found::default();
    let (mut finished, mut heard_at) = (0, Instant::now());
    while finished < subs.len() {
        if shared.stop.load(Ordering::Relaxed) || heard_at.elapsed() > args.common.timeout() {
            break;
        }
        let mut delivered = 0;
        poller
            .wait(POLL_MS, &mut ready)
            .map_err(LoadError::io("epoll_wait"))?;
        for &token in &ready {
            let sub = &mut subs[token];
            match sub.buf.fill(&mut sub.stream) {
                Ok(0) => {
                    if !sub.finished {
                        found.error(format!("subscriber {} closed by the server", sub.index));
                        (sub.finished, finished) = (true, finished + 1);
                    }
                    poller
                        .remove(&sub.stream)
                        .map_err(LoadError::io("epoll_ctl"))?;
                    continue;
                }
                Ok(_) => heard_at = Instant::now(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(LoadError::Io("reading a subscriber", e)),
            }
            let (name, size) = (&names[sub.channel], args.size);
            while let Some(frame) = sub
                .buf
                .next(|reply| classify(reply, name, size))
                .map_err(LoadError::Protocol)?
            {
                delivered += take(sub, frame, &mut found, shared);
            }
            if !sub.finished && sub.confirmed && sub.received >= sub.expected {
                (sub.finished, finished) = (true, finished + 1);
                found.last_delivery = Some(Instant::now());
            }
        }
        shared.delivered.fetch_add(delivered, Ordering::Relaxed);
    }
    found.missing = subs
        .iter()
        .map(|sub| sub.expected.saturating_sub(sub.received))
        .sum();
    Ok(found)
}

/// Checks one frame of `sub`; returns 1 for a delivered message.
fn take(sub: &mut Subscriber, frame: Frame, found: &mut Found, shared: &Shared) -> u64 {
    let Frame::Message { seq, fits } = frame else {
        match frame {
            Frame::Confirmed if !sub.confirmed => {
                sub.confirmed = true;
                shared.confirmed.fetch_add(1, Ordering::Relaxed);
            }
            Frame::Unexpected(what) => found.error(format!("subscriber {}: {what}", sub.index)),
            _ => found.error(format!("subscriber {}: confirmed twice", sub.index)),
        }
        return 0;
    };
    let index = sub.index;
    if !fits {
        found.error(format!(
            "subscriber {index}: a message on another channel or of another size"
        ));
    } else if seq != Some(sub.next) {
        found.error(format!(
            "subscriber {index}: expected message {} got {seq:?}",
            sub.next
        ));
    }
    sub.next = seq.unwrap_or(sub.next) + sub.stride;
    sub.received += 1;
    1
}

/// A RESP2 command of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads (blocking) until one whole reply is in `buf` and gives it to `check`.
pub fn read_reply<T>(
    stream: &mut TcpStream,
    buf: &mut InBuf,
    check: impl Fn(&Reply<'_>) -> Result<T, String>,
) -> Result<T, LoadError> {
    loop {
        if let Some(outcome) = buf.next(&check).map_err(LoadError::Protocol)? {
            return outcome.map_err(LoadError::Reply);
        }
        match buf.fill(stream) {
            Ok(0) => return Err(LoadError::Reply("connection closed by the server".into())),
            Ok(_) => {}
            Err(e) => return Err(LoadError::Io("reading a reply", e)),
        }
    }
}
