//! SCAN through the proxy: one scan over every master, with the client's cursor naming the
//! master (by its highest slot, in the low 14 bits) and that master's own cursor. MATCH, COUNT
//! and TYPE reach the masters unchanged; bad cursors and arguments get Redis's own errors;
//! RESP3 gets the same shape; and a scan during which slots move still returns every key of
//! the slots that stayed.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{encode, slot_of, wait_until, Conn, Proxy, RedisCluster, Value};

/// Calls a test's scan may take before it counts as endless.
const MAX_CALLS: usize = 100_000;

/// The keys `fill` writes, by type: strings, hashes and lists, on every master.
const STRINGS: usize = 3000;
const HASHES: usize = 300;
const LISTS: usize = 300;

/// The slot bits of a cursor (percore's encoding, as the README gives it).
const SLOT_MASK: u64 = (1 << 14) - 1;

/// Writes the test's keys through the proxy; returns them all, with the fixture's own
/// `percore:ready`.
fn fill(conn: &mut Conn) -> HashSet<String> {
    let command =
        |args: &[&str]| -> Vec<Vec<u8>> { args.iter().map(|a| a.as_bytes().to_vec()).collect() };
    let mut commands = Vec::new();
    for i in 0..STRINGS {
        commands.push(command(&["SET", &format!("str:{i}"), "v"]));
    }
    for i in 0..HASHES {
        commands.push(command(&["HSET", &format!("hash:{i}"), "f", "v"]));
    }
    for i in 0..LISTS {
        commands.push(command(&["RPUSH", &format!("list:{i}"), "v"]));
    }
    for batch in commands.chunks(500) {
        for reply in conn.pipeline(batch) {
            assert!(!reply.is_error(), "{reply:?}");
        }
    }
    let mut keys = HashSet::from(["percore:ready".to_string()]);
    keys.extend(
        commands
            .iter()
            .map(|c| String::from_utf8(c[1].clone()).unwrap()),
    );
    keys
}

/// One SCAN call: the cursor and the keys of the page.
fn scan_once(conn: &mut Conn, cursor: &str, options: &[&str]) -> (String, Vec<String>) {
    let mut args: Vec<&[u8]> = vec![b"SCAN", cursor.as_bytes()];
    args.extend(options.iter().map(|o| o.as_bytes()));
    match conn.cmd(&args) {
        Value::Array(Some(reply)) if reply.len() == 2 => {
            let Value::Array(Some(keys)) = &reply[1] else {
                panic!("SCAN keys: {reply:?}")
            };
            (reply[0].text(), keys.iter().map(Value::text).collect())
        }
        other => panic!("SCAN {cursor}: {other:?}"),
    }
}

/// A whole scan: every key returned (with repeats) and the cursors given on the way.
fn scan_all(conn: &mut Conn, options: &[&str]) -> (Vec<String>, Vec<u64>) {
    let mut keys = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor = "0".to_string();
    for _ in 0..MAX_CALLS {
        let (next, page) = scan_once(conn, &cursor, options);
        keys.extend(page);
        if next == "0" {
            return (keys, cursors);
        }
        cursors.push(next.parse().expect("a cursor is a u64"));
        cursor = next;
    }
    panic!("the scan did not end in {MAX_CALLS} calls");
}

fn as_set(keys: &[String]) -> HashSet<String> {
    keys.iter().cloned().collect()
}

/// Asserts two key sets are the same, showing a few of the differences if not.
fn assert_same(found: &HashSet<String>, expected: &HashSet<String>, what: &str) {
    let missing: Vec<&String> = expected.difference(found).take(10).collect();
    let extra: Vec<&String> = found.difference(expected).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} missing (e.g. {missing:?}), {} extra (e.g. {extra:?})",
        expected.difference(found).count(),
        found.difference(expected).count(),
    );
}

/// The highest slot of each master, as percore orders them.
fn highest_slots(cluster: &RedisCluster) -> Vec<u64> {
    let mut highest: Vec<u64> = cluster
        .master_ports()
        .iter()
        .map(|&port| {
            (0..16384u16)
                .rev()
                .find(|&s| cluster.master_for_slot(s) == port)
                .unwrap() as u64
        })
        .collect();
    highest.sort_unstable();
    highest
}

#[test]
fn a_full_scan_returns_every_key_of_every_master() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut conn = proxy.conn();
    let keys = fill(&mut conn);
    let (found, cursors) = scan_all(&mut conn, &[]);
    assert_same(&as_set(&found), &keys, "full scan");
    // Every cursor names a master by its highest slot, and the masters come in that order.
    let highest = highest_slots(&cluster);
    assert_eq!(highest, vec![5460, 10922, 16383]);
    let named: Vec<u64> = cursors.iter().map(|c| c & SLOT_MASK).collect();
    assert!(named.iter().all(|slot| highest.contains(slot)), "{named:?}");
    assert!(named.windows(2).all(|w| w[0] <= w[1]), "{named:?}");
    for slot in &highest {
        assert!(named.contains(slot), "master of slot {slot} scanned");
    }
    // A page is the master's own reply, with the cursor rewritten.
    let mut node = Conn::connect(cluster.master_for_slot(16383));
    node.send_raw(&encode(&[b"SCAN", b"0", b"COUNT", b"5"]));
    let redis = node.read_raw_reply();
    conn.send_raw(&encode(&[b"SCAN", b"16383", b"COUNT", b"5"]));
    assert_eq!(conn.read_raw_reply(), rewritten(&redis, 16383));
}

#[test]
fn match_count_and_type_reach_the_masters() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut conn = proxy.conn();
    let keys = fill(&mut conn);
    let of = |prefix: &str| -> HashSet<String> {
        keys.iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    };
    let (hashes, _) = scan_all(&mut conn, &["MATCH", "hash:*"]);
    assert_same(&as_set(&hashes), &of("hash:"), "MATCH hash:*");
    let (lists, _) = scan_all(&mut conn, &["TYPE", "list"]);
    assert_same(&as_set(&lists), &of("list:"), "TYPE list");
    let (some, _) = scan_all(&mut conn, &["MATCH", "str:1*", "TYPE", "string"]);
    assert_same(&as_set(&some), &of("str:1"), "MATCH str:1* TYPE string");
    let (none, _) = scan_all(&mut conn, &["TYPE", "stream"]);
    assert!(none.is_empty(), "{none:?}");
    // COUNT is a hint to each master: bigger pages, fewer calls, the same keys.
    let (_, small) = scan_all(&mut conn, &[]);
    let (all, large) = scan_all(&mut conn, &["COUNT", "1000"]);
    assert_same(&as_set(&all), &keys, "COUNT 1000");
    assert!(
        large.len() * 10 < small.len(),
        "{} {}",
        large.len(),
        small.len()
    );
    let (_, page) = scan_once(&mut conn, "0", &["COUNT", "1000"]);
    assert!(page.len() > 100, "{}", page.len());
}

#[test]
fn bad_cursors_and_arguments_get_redis_errors() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut conn = proxy.conn();
    let mut node = Conn::connect(cluster.master_ports()[0]);
    let invalid = b"-ERR invalid cursor\r\n".to_vec();
    let cases: &[(&[&str], Option<&[u8]>)] = &[
        (&["abc"], Some(&invalid)),
        (&["1x"], Some(&invalid)),
        (&[" 1"], Some(&invalid)),
        (&["-"], Some(&invalid)),
        (&["18446744073709551616"], Some(&invalid)),
        (&["abc", "COUNT", "0"], Some(&invalid)),
        (&["0", "COUNT", "0"], Some(b"-ERR syntax error\r\n")),
        (
            &["0", "COUNT", "x"],
            Some(b"-ERR value is not an integer or out of range\r\n"),
        ),
        (&["0", "MATCH"], Some(b"-ERR syntax error\r\n")),
        (&["0", "FOO"], Some(b"-ERR syntax error\r\n")),
        (
            &[],
            Some(b"-ERR wrong number of arguments for 'scan' command\r\n"),
        ),
        // A cursor Redis takes is taken: it names the master of slot 16383.
        (&["-1"], None),
        (&[""], None),
    ];
    for &(args, expected) in cases {
        let mut command: Vec<&[u8]> = vec![b"SCAN"];
        command.extend(args.iter().map(|a| a.as_bytes()));
        conn.send_raw(&encode(&command));
        let ours = conn.read_raw_reply();
        node.send_raw(&encode(&command));
        let redis = node.read_raw_reply();
        match expected {
            Some(expected) => {
                assert_eq!(ours, expected, "SCAN {args:?}");
                assert_eq!(redis, expected, "redis-server, SCAN {args:?}");
            }
            None => assert!(ours.starts_with(b"*2\r\n$"), "SCAN {args:?}: {ours:?}"),
        }
    }
}

#[test]
fn an_empty_cluster_scans_in_one_call_and_a_cursor_naming_no_master_is_invalid() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--refresh-interval", "100ms"]);
    let mut conn = proxy.conn();
    assert_eq!(conn.cmd_str("DEL percore:ready"), Value::Int(1));
    conn.send_raw(&encode(&[b"SCAN", b"0"]));
    assert_eq!(conn.read_raw_reply(), b"*2\r\n$1\r\n0\r\n*0\r\n");
    // Slot 100 served by no master (taken from every node): a cursor naming it is none.
    for port in cluster.master_ports() {
        let mut node = Conn::connect(port);
        let keep_serving = "CONFIG SET cluster-require-full-coverage no";
        assert_eq!(node.cmd_str(keep_serving), Value::ok());
        assert_eq!(node.cmd_str("CLUSTER DELSLOTS 100"), Value::ok());
    }
    let named = (5u64 << 14 | 100).to_string();
    wait_until(
        "the proxy to see slot 100 unserved",
        Duration::from_secs(10),
        || {
            conn.send_raw(&encode(&[b"SCAN", b"100"]));
            conn.read_raw_reply() == b"-ERR invalid cursor\r\n"
        },
    );
    conn.send_raw(&encode(&[b"SCAN", named.as_bytes()]));
    assert_eq!(conn.read_raw_reply(), b"-ERR invalid cursor\r\n");
    // The other masters are still scanned.
    assert_eq!(conn.cmd_str("SET str:1 v"), Value::ok());
    let (found, _) = scan_all(&mut conn, &[]);
    assert_eq!(found, vec!["str:1".to_string()]);
}

/// A RESP3 connection: HELLO 3, then raw replies.
struct Resp3 {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Resp3 {
    fn connect(port: u16) -> Resp3 {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
        let mut conn = Resp3 {
            stream,
            buf: Vec::new(),
        };
        let hello = conn.call(&[b"HELLO", b"3"]);
        assert!(hello.starts_with(b"%"), "{hello:?}");
        conn
    }

    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.stream.write_all(&encode(args)).unwrap();
        loop {
            if let Some(len) = resp3_len(&self.buf, 0) {
                return self.buf.drain(..len).collect();
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("a reply");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Length of the complete RESP3 frame at `at`, if complete.
fn resp3_len(buf: &[u8], at: usize) -> Option<usize> {
    let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[at + 1..end]).ok()?;
    let after = end + 2;
    let nested = |count: usize| {
        let mut pos = after;
        for _ in 0..count {
            pos += resp3_len(buf, pos)?;
        }
        Some(pos - at)
    };
    match buf[at] {
        b'$' | b'=' | b'!' => {
            let total = after + header.parse::<usize>().ok()? + 2;
            (buf.len() >= total).then_some(total - at)
        }
        b'*' | b'~' | b'>' => nested(header.parse().ok()?),
        b'%' => nested(2 * header.parse::<usize>().ok()?),
        _ => Some(after - at),
    }
}

/// A RESP3 page: its cursor and keys, checked to be `*2 $cursor *N $key...`.
fn resp3_page(reply: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(reply);
    let mut lines = text.split("\r\n");
    assert_eq!(lines.next(), Some("*2"), "{text}");
    assert!(lines.next().is_some_and(|l| l.starts_with('$')), "{text}");
    let cursor = lines.next().unwrap().to_string();
    let count: usize = lines
        .next()
        .unwrap()
        .strip_prefix('*')
        .unwrap()
        .parse()
        .unwrap();
    let keys: Vec<String> = (0..count)
        .map(|_| {
            assert!(lines.next().unwrap().starts_with('$'), "{text}");
            lines.next().unwrap().to_string()
        })
        .collect();
    assert_eq!(lines.collect::<Vec<_>>(), vec![""], "{text}");
    (cursor, keys)
}

#[test]
fn resp3_clients_get_the_same_shape() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut conn = proxy.conn();
    assert_eq!(conn.cmd_str("DEL percore:ready"), Value::Int(1));
    let mut resp3 = Resp3::connect(proxy.port);
    assert_eq!(resp3.call(&[b"SCAN", b"0"]), b"*2\r\n$1\r\n0\r\n*0\r\n");
    let mut keys = fill(&mut conn);
    keys.remove("percore:ready");
    let mut found = HashSet::new();
    let mut cursor = "0".to_string();
    for _ in 0..MAX_CALLS {
        let reply = resp3.call(&[b"SCAN", cursor.as_bytes(), b"COUNT", b"50"]);
        let (next, page) = resp3_page(&reply);
        found.extend(page);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "the scan ended");
    assert_same(&found, &keys, "RESP3 scan");
    // A page is the master's own RESP3 reply, with the cursor rewritten.
    let mut node = Resp3::connect(cluster.master_for_slot(16383));
    let redis = node.call(&[b"SCAN", b"0", b"COUNT", b"5"]);
    let ours = resp3.call(&[b"SCAN", b"16383", b"COUNT", b"5"]);
    assert_eq!(ours, rewritten(&redis, 16383));
}

/// A master's page as the proxy gives it when that master's slot is `slot` and it is the
/// last master: the node's cursor `c` becomes `c << 14 | slot` (0 stays 0).
fn rewritten(page: &[u8], slot: u64) -> Vec<u8> {
    let text = std::str::from_utf8(page).unwrap();
    let mut parts = text.splitn(4, "\r\n");
    let (array, _, cursor, rest) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let cursor: u64 = cursor.parse().unwrap();
    let cursor = if cursor == 0 { 0 } else { cursor << 14 | slot }.to_string();
    format!("{array}\r\n${}\r\n{cursor}\r\n{rest}", cursor.len()).into_bytes()
}

/// `n` keys in one slot within `slots`, by hash tag, with their slot.
fn keys_in_a_slot(tag: &str, slots: std::ops::Range<u16>, n: usize) -> (u16, Vec<String>) {
    let tag = (0..)
        .map(|i| format!("{tag}{i}"))
        .find(|t| slots.contains(&slot_of(t)))
        .unwrap();
    let keys = (0..n).map(|i| format!("{{{tag}}}:{i}")).collect();
    (slot_of(&tag), keys)
}

#[test]
fn slots_moving_during_a_scan_lose_no_key_of_the_slots_that_stay() {
    let mut cluster = RedisCluster::start(3, 0);
    // Only MOVED (from the GETs below) tells the proxy about the moves.
    let proxy = Proxy::start(&cluster, &["--refresh-interval", "1h"]);
    let mut conn = proxy.conn();
    let mut keys = fill(&mut conn);
    let [first, second, third] = [0, 5461, 10923].map(|s| cluster.master_for_slot(s));
    // Two low slots of the first master, redis-cli's way: a master gives its lowest first.
    // The one for the third master is the lower, so that ordered by lowest slot the third
    // master would come before the second once it has it, and be skipped.
    let (to_second, moving_a) = keys_in_a_slot("a", 1000..2000, 100);
    let (to_third, moving_b) = keys_in_a_slot("b", 1..1000, 100);
    for key in moving_a.iter().chain(&moving_b) {
        assert_eq!(conn.cmd_str(&format!("SET {key} v")), Value::ok());
    }
    let moving: HashSet<String> = moving_a.iter().chain(&moving_b).cloned().collect();
    keys.retain(|k| ![to_second, to_third].contains(&slot_of(k)));

    let mut found = Vec::new();
    let mut cursor = "0".to_string();
    let (mut moved_a, mut moved_b) = (false, false);
    // Calls so far into the scan of the master the cursor names.
    let (mut scanning, mut calls) = (0, 0);
    for _ in 0..MAX_CALLS {
        let (next, page) = scan_once(&mut conn, &cursor, &["COUNT", "10"]);
        found.extend(page);
        cursor = next;
        if cursor == "0" {
            break;
        }
        let value: u64 = cursor.parse().unwrap();
        let slot = value & SLOT_MASK;
        if slot != scanning {
            (scanning, calls) = (slot, 0);
        }
        calls += 1;
        // With COUNT 10, a master's ~1200 keys take about 120 calls: 20 is well inside.
        let halfway = calls == 20;
        // Halfway through the first master, one of its slots goes to the second.
        if slot == 5460 && halfway {
            cluster.move_slot(to_second, first, second);
            let get = conn.cmd_str(&format!("GET {}", moving_a[0]));
            assert_eq!(get, Value::bulk("v"));
            moved_a = true;
        }
        // Halfway through the second, another slot of the first goes to the third, which
        // the scan has not reached: it now has a slot below the scan's place.
        if slot == 10922 && halfway {
            cluster.move_slot(to_third, first, third);
            let get = conn.cmd_str(&format!("GET {}", moving_b[0]));
            assert_eq!(get, Value::bulk("v"));
            moved_b = true;
        }
    }
    assert_eq!(cursor, "0", "the scan ended");
    assert!(moved_a && moved_b, "both slots moved during the scan");
    let found = as_set(&found);
    let missing: Vec<&String> = keys.difference(&found).collect();
    assert!(
        missing.is_empty(),
        "{} keys of unmoved slots missed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // Nothing returned that does not exist.
    let extra: Vec<&String> = found
        .iter()
        .filter(|k| !keys.contains(*k) && !moving.contains(*k))
        .collect();
    assert!(extra.is_empty(), "{extra:?}");
}
