//! Byte for byte, percore's replies are the node's: the same ~70 commands, covering every
//! RESP2 and RESP3 reply type Redis sends (simple and bulk strings, integers, nulls, arrays,
//! maps, sets, doubles, booleans, big numbers, verbatim strings, errors, and replies nested
//! several deep), sent on the same keys to the master that owns them directly and then
//! through percore, after `HELLO 3` and after `HELLO 2`.
//!
//! Commands that percore splits across masters (MGET, EXISTS, DEL) have no single node to
//! compare with, so their merged reply is compared, element by element, with what each key's
//! master answers for that key alone.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{encode, key_on_each_master, slot_of, Proxy, RedisCluster, READ_TIMEOUT};

/// The hash tag every key of the script shares, so one master owns them all.
const TAG: &str = "{b}";

/// Keys the script touches, deleted before each pass.
const KEYS: &[&str] = &[
    "s", "missing", "bin", "n", "f", "a", "b", "h", "set", "set2", "z", "l", "x",
];

/// A connection that returns each reply's exact bytes, for RESP2 and RESP3 alike.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one command and returns its reply's bytes.
    fn cmd(&mut self, args: &[Vec<u8>]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.stream.write_all(&encode(&args)).expect("write");
        loop {
            if let Some(len) = frame_len(&self.buf, 0) {
                return self.buf.drain(..len).collect();
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed while waiting for a reply"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("no reply within {READ_TIMEOUT:?}: {e}"),
            }
        }
    }

    fn line(&mut self, line: &str) -> Vec<u8> {
        self.cmd(&words(line))
    }
}

fn words(line: &str) -> Vec<Vec<u8>> {
    line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
}

/// Length of the complete reply at `at` (RESP2 or RESP3), if it is all there.
fn frame_len(buf: &[u8], at: usize) -> Option<usize> {
    let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[at + 1..end]).ok()?;
    let after = end + 2;
    let elements = |n: i64, per: i64| -> Option<usize> {
        let mut pos = after;
        for _ in 0..(n.max(0) * per) {
            pos += frame_len(buf, pos)?;
        }
        Some(pos - at)
    };
    match buf[at] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after - at),
        b'$' | b'!' | b'=' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(after - at);
            }
            let total = after + n as usize + 2;
            (buf.len() >= total).then_some(total - at)
        }
        b'*' | b'~' | b'>' => elements(header.parse().ok()?, 1),
        b'%' => elements(header.parse().ok()?, 2),
        // An attribute comes before the value it describes: both are the reply.
        b'|' => {
            let attribute = elements(header.parse().ok()?, 2)?;
            Some(attribute + frame_len(buf, at + attribute)?)
        }
        other => panic!("bad reply type byte {other:?}"),
    }
}

/// The elements of an array reply, each as its own bytes.
fn elements(reply: &[u8]) -> Vec<&[u8]> {
    let header_end = reply.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut at = header_end;
    let mut out = Vec::new();
    while at < reply.len() {
        let len = frame_len(reply, at).unwrap();
        out.push(&reply[at..at + len]);
        at += len;
    }
    out
}

/// The commands, with `{b}` keys; each reply must be the same through percore.
fn script() -> Vec<Vec<Vec<u8>>> {
    let t = |line: &str| words(&line.replace('@', TAG));
    let eval = |body: &str, keys: &[&str]| {
        let mut args = vec![b"EVAL".to_vec(), body.as_bytes().to_vec()];
        args.push(keys.len().to_string().into_bytes());
        args.extend(keys.iter().map(|k| format!("{TAG}{k}").into_bytes()));
        args
    };
    let binary: Vec<u8> = (0..=255).collect();
    let mut set_binary = t("SET @bin");
    set_binary.push(binary);
    vec![
        // Strings, integers, nulls.
        t("SET @s hello"),
        t("GET @s"),
        t("GET @missing"),
        t("APPEND @s _world"),
        t("STRLEN @s"),
        t("GETRANGE @s 0 4"),
        t("SET @s again NX"),
        t("SET @s replaced GET"),
        t("GETDEL @missing"),
        set_binary,
        t("GET @bin"),
        t("INCR @n"),
        t("INCRBY @n -5"),
        t("INCRBYFLOAT @f 1.5"),
        t("MSET @a 1 @b 2"),
        t("MGET @a @missing @b"),
        t("EXISTS @a @b @missing"),
        // Errors: the node's, and the ones percore gives itself.
        t("INCR @s"),
        t("SET @s v EX 0"),
        t("GET"),
        t("NOPE x y"),
        // Hashes: maps in RESP3.
        t("HSET @h f1 v1 f2 v2 f3 3"),
        t("HGETALL @h"),
        t("HMGET @h f1 nope"),
        t("HINCRBYFLOAT @h f3 0.25"),
        t("HSCAN @h 0"),
        t("GET @h"),
        // Sets: sets in RESP3.
        t("SADD @set a b c"),
        t("SMEMBERS @set"),
        t("SISMEMBER @set a"),
        t("SMISMEMBER @set a nope"),
        t("SADD @set2 b c d"),
        t("SINTER @set @set2"),
        // Sorted sets: doubles in RESP3, nested pairs with WITHSCORES.
        t("ZADD @z 1 a 2.5 b"),
        t("ZSCORE @z b"),
        t("ZSCORE @z nope"),
        t("ZINCRBY @z 0.5 a"),
        t("ZRANGE @z 0 -1 WITHSCORES"),
        t("ZMSCORE @z a nope"),
        t("ZADD @z +inf top"),
        t("ZSCORE @z top"),
        t("ZRANK @z b"),
        t("ZPOPMIN @z"),
        // Lists.
        t("RPUSH @l a b c"),
        t("LRANGE @l 0 -1"),
        t("LPOP @l"),
        t("LINDEX @l 10"),
        t("LPOS @l nope"),
        // Streams: nested arrays and maps.
        t("XADD @x 1-1 f v"),
        t("XADD @x 2-1 f2 v2 f3 v3"),
        t("XRANGE @x - +"),
        t("XLEN @x"),
        t("XINFO STREAM @x"),
        t("XREAD STREAMS @x 2-1"),
        t("XREAD COUNT 1 STREAMS @x 0"),
        // Key metadata.
        t("TYPE @h"),
        t("OBJECT ENCODING @l"),
        t("EXPIRE @s 100"),
        t("TTL @s"),
        t("PERSIST @s"),
        t("TTL @s"),
        // Keyless commands percore sends to any master: maps, nested arrays, verbatim.
        t("CONFIG GET maxmemory-policy"),
        t("COMMAND INFO get"),
        t("COMMAND DOCS get"),
        t("LOLWUT VERSION 5 1 1 1"),
        // Scripts: the only way to get booleans, big numbers and verbatim strings of one's
        // choice, keyed and keyless.
        eval("redis.setresp(3); return true", &[]),
        eval("redis.setresp(3); return false", &["s"]),
        eval("return {double=3.5}", &[]),
        eval(
            "return {big_number='1234567890123456789012345678901234567890'}",
            &[],
        ),
        eval("return {verbatim_string={format='txt', string='hi'}}", &[]),
        eval("return {map={a=1}}", &[]),
        eval("return {set={a=true}}", &[]),
        eval("return nil", &[]),
        eval(
            "redis.setresp(3); return redis.call('HGETALL', KEYS[1])",
            &["h"],
        ),
        eval(
            "return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
            &["z"],
        ),
        t("DEL @s @bin @n @missing"),
    ]
}

/// The HELLO reply with the parts that must differ masked: the connection id, and the
/// version (percore's HELLO names the Redis version it was written against).
fn masked_hello(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    let mut out = Vec::new();
    let mut mask_next = false;
    for part in text.split("\r\n") {
        if mask_next {
            out.push("<masked>".to_string());
            mask_next = false;
            continue;
        }
        out.push(part.to_string());
        mask_next = part == "id" || part == "version";
    }
    out.join("\r\n")
}

/// Runs the script on the node and through percore, each after deleting its keys, and asserts
/// every reply is the same bytes.
fn script_replies_are_identical(protocol: u8) {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let master = cluster.master_for_slot(slot_of(TAG));
    let hello = format!("HELLO {protocol}");
    let mut replies = Vec::new();
    for port in [master, proxy.port] {
        let mut conn = Raw::connect(port);
        let greeting = masked_hello(&conn.line(&hello));
        let mut del = words("DEL");
        del.extend(KEYS.iter().map(|k| format!("{TAG}{k}").into_bytes()));
        conn.cmd(&del);
        let script: Vec<Vec<u8>> = script().iter().map(|c| conn.cmd(c)).collect();
        replies.push((greeting, script));
    }
    let (node, via) = (&replies[0], &replies[1]);
    assert_eq!(node.0, via.0, "HELLO {protocol} (id and version masked)");
    for ((command, node), via) in script().iter().zip(&node.1).zip(&via.1) {
        let command: Vec<String> = command
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            String::from_utf8_lossy(via),
            String::from_utf8_lossy(node),
            "RESP{protocol} reply to {command:?}: percore's, then the node's"
        );
    }
    let first = |kind: u8| node.1.iter().any(|r| r.first() == Some(&kind));
    if protocol == 3 {
        for kind in *b"%~,#(=_" {
            assert!(
                first(kind),
                "the script has a reply of type {}",
                kind as char
            );
        }
    }
}

#[test]
fn every_reply_type_is_the_nodes_bytes_over_resp3() {
    script_replies_are_identical(3);
}

#[test]
fn every_reply_type_is_the_nodes_bytes_over_resp2() {
    script_replies_are_identical(2);
}

/// A connection to each master, each key's command sent to the master of its slot.
struct Masters<'a> {
    cluster: &'a RedisCluster,
    conns: Vec<(u16, Raw)>,
}

impl Masters<'_> {
    fn on(&mut self, port: u16, args: &[Vec<u8>]) -> Vec<u8> {
        let (_, conn) = self.conns.iter_mut().find(|(p, _)| *p == port).unwrap();
        conn.cmd(args)
    }

    fn for_key(&mut self, key: &str, command: &str) -> Vec<u8> {
        let port = self.cluster.master_for_slot(slot_of(key));
        self.on(port, &words(&format!("{command} {key}")))
    }

    /// How many of `keys` exist, asked of their masters one by one.
    fn existing(&mut self, keys: &[String]) -> usize {
        keys.iter()
            .filter(|key| self.for_key(key, "EXISTS") == b":1\r\n")
            .count()
    }
}

/// MGET, EXISTS and DEL over keys on every master, some missing, interleaved.
#[test]
fn split_replies_are_what_each_master_answers_for_its_keys() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    for protocol in [3, 2] {
        let hello = format!("HELLO {protocol}");
        let present = key_on_each_master(&cluster, &format!("split{protocol}:"));
        let absent = key_on_each_master(&cluster, &format!("gone{protocol}:"));
        assert_eq!(present.len(), cluster.masters(), "a key on every master");
        let mut masters = Masters {
            cluster: &cluster,
            conns: cluster
                .master_ports()
                .into_iter()
                .map(|port| (port, Raw::connect(port)))
                .collect(),
        };
        for port in cluster.master_ports() {
            masters.on(port, &words(&hello));
        }
        let mut keys = Vec::new();
        for (i, ((port, key), gone)) in present.iter().zip(&absent).enumerate() {
            let mut value = format!("value-{i}-").into_bytes();
            value.extend_from_slice(b"\x00\r\n\xff");
            let set = vec![b"SET".to_vec(), key.as_bytes().to_vec(), value];
            assert_eq!(masters.on(*port, &set), b"+OK\r\n");
            keys.push(key.clone());
            keys.push(gone.1.clone());
        }
        let mut via = Raw::connect(proxy.port);
        via.line(&hello);

        let mget = via.line(&format!("MGET {}", keys.join(" ")));
        let direct: Vec<Vec<u8>> = keys.iter().map(|k| masters.for_key(k, "GET")).collect();
        let got = elements(&mget);
        assert_eq!(got.len(), keys.len(), "RESP{protocol} MGET: {mget:?}");
        for ((key, got), want) in keys.iter().zip(&got).zip(&direct) {
            assert_eq!(got, want, "RESP{protocol} MGET element for {key}");
        }
        let mut want = format!("*{}\r\n", keys.len()).into_bytes();
        want.extend(direct.concat());
        assert_eq!(mget, want, "RESP{protocol} MGET, whole");

        let existing = masters.existing(&keys);
        assert_eq!(existing, cluster.masters());
        let count = format!(":{existing}\r\n").into_bytes();
        let exists = via.line(&format!("EXISTS {}", keys.join(" ")));
        assert_eq!(exists, count, "RESP{protocol} EXISTS");
        let del = via.line(&format!("DEL {}", keys.join(" ")));
        assert_eq!(del, count, "RESP{protocol} DEL");
        assert_eq!(
            masters.existing(&keys),
            0,
            "DEL removed every key from its master"
        );
    }
}
