//! Keyless script, function and node commands answered as the cluster as a whole would:
//! SCRIPT EXISTS true only where every master has the script, FUNCTION LOAD/DELETE/RESTORE/
//! FLUSH on every master, FUNCTION LIST/DUMP/STATS and LASTSAVE from one, MEMORY STATS/DOCTOR
//! from the master of slot 0, and SCRIPT KILL / FUNCTION KILL reaching a busy master at once.

mod common;

use std::time::{Duration, Instant};

use common::{wait_until, Conn, Proxy, RedisCluster, Value};

fn raw(c: &mut Conn, args: &[&[u8]]) -> Vec<u8> {
    c.send_raw(&common::encode(args));
    c.read_raw_reply()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const LIBRARY: &str = "#!lua name=lib\nredis.register_function('count', function(keys) \
                       return #keys end)";

#[test]
fn scripts_and_functions_are_the_clusters() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    let masters = cluster.master_ports();

    // A script is there for the client only while every master has it.
    let sha = c.cmd(&[b"SCRIPT", b"LOAD", b"return 1"]).text();
    assert_eq!(sha.len(), 40, "{sha}");
    let missing = "0000000000000000000000000000000000000000";
    let exists = |c: &mut Conn| {
        raw(
            c,
            &[b"SCRIPT", b"EXISTS", sha.as_bytes(), missing.as_bytes()],
        )
    };
    assert_eq!(text(&exists(&mut c)), "*2\r\n:1\r\n:0\r\n");
    assert_eq!(
        Conn::connect(masters[1]).cmd_str("SCRIPT FLUSH"),
        Value::ok()
    );
    assert_eq!(text(&exists(&mut c)), "*2\r\n:0\r\n:0\r\n");
    // Loaded again through the proxy, it is on every master again.
    assert_eq!(c.cmd(&[b"SCRIPT", b"LOAD", b"return 1"]).text(), sha);
    assert_eq!(text(&exists(&mut c)), "*2\r\n:1\r\n:0\r\n");

    // Functions: loaded on every master, listed and dumped from one.
    assert_eq!(
        c.cmd(&[b"FUNCTION", b"LOAD", LIBRARY.as_bytes()]),
        Value::bulk("lib")
    );
    for &port in &masters {
        let direct = raw(&mut Conn::connect(port), &[b"FUNCTION", b"LIST"]);
        assert_eq!(text(&raw(&mut c, &[b"FUNCTION", b"LIST"])), text(&direct));
        assert!(text(&direct).contains("count"), "{port}: {}", text(&direct));
    }
    assert_eq!(c.cmd_str("FCALL count 2 {a}1 {a}2"), Value::Int(2));
    let dump = raw(&mut c, &[b"FUNCTION", b"DUMP"]);
    assert_eq!(
        dump,
        raw(&mut Conn::connect(masters[2]), &[b"FUNCTION", b"DUMP"])
    );
    let stats = raw(&mut c, &[b"FUNCTION", b"STATS"]);
    assert_eq!(
        stats,
        raw(&mut Conn::connect(masters[0]), &[b"FUNCTION", b"STATS"])
    );
    assert!(
        text(&stats).contains("running_script\r\n$-1\r\n"),
        "{}",
        text(&stats)
    );
    assert_eq!(
        c.cmd(&[b"FUNCTION", b"LOAD", LIBRARY.as_bytes()]),
        Value::Error("ERR Library 'lib' already exists".into())
    );
    assert_eq!(c.cmd_str("FUNCTION DELETE lib"), Value::ok());
    assert_eq!(text(&raw(&mut c, &[b"FUNCTION", b"LIST"])), "*0\r\n");
    assert_eq!(
        c.cmd_str("FUNCTION DELETE lib"),
        Value::Error("ERR Library not found".into())
    );
    // The dump restores on every master.
    // The payload of the bulk string `$<len>\r\n<payload>\r\n`.
    let header = dump.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
    let payload = &dump[header..dump.len() - 2];
    assert_eq!(c.cmd(&[b"FUNCTION", b"RESTORE", payload]), Value::ok());
    for &port in &masters {
        let list = text(&raw(&mut Conn::connect(port), &[b"FUNCTION", b"LIST"]));
        assert!(list.contains("count"), "{port}: {list}");
    }
    assert_eq!(
        c.cmd_str("FUNCTION RESTORE nonsense"),
        Value::Error("ERR DUMP payload version or checksum are wrong".into())
    );
    assert_eq!(c.cmd_str("FUNCTION FLUSH"), Value::ok());
    for &port in &masters {
        assert_eq!(
            Conn::connect(port).cmd_str("FUNCTION LIST"),
            Value::Array(Some(vec![]))
        );
    }

    // Nothing running anywhere: Redis's own NOTBUSY.
    assert_eq!(
        text(&raw(&mut c, &[b"SCRIPT", b"KILL"])),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    assert_eq!(
        text(&raw(&mut c, &[b"FUNCTION", b"KILL"])),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );

    // One node's state: LASTSAVE from a master, MEMORY from the master of slot 0.
    let lastsave = c.cmd_str("LASTSAVE").as_int().expect("LASTSAVE");
    let direct: Vec<i64> = masters
        .iter()
        .map(|&p| Conn::connect(p).cmd_str("LASTSAVE").as_int().unwrap())
        .collect();
    assert!(direct.contains(&lastsave), "{lastsave} in {direct:?}");
    let first = cluster.master_for_slot(0);
    let doctor = c.cmd_str("MEMORY DOCTOR").text();
    assert_eq!(doctor, Conn::connect(first).cmd_str("MEMORY DOCTOR").text());
    let Value::Array(Some(stats)) = c.cmd_str("MEMORY STATS") else {
        panic!("MEMORY STATS")
    };
    assert_eq!(stats[0], Value::bulk("peak.allocated"));
    assert!(c.cmd_str("MEMORY USAGE {a}1").as_int().is_none());
    assert_eq!(c.cmd_str("SET {a}1 v"), Value::ok());
    assert!(c.cmd_str("MEMORY USAGE {a}1").as_int().is_some());

    // RESP3: the nodes' own RESP3 replies, and percore's merge in RESP3's terms.
    c.cmd_str("HELLO 3");
    assert_eq!(text(&exists(&mut c)), "*2\r\n:1\r\n:0\r\n");
    let stats = text(&raw(&mut c, &[b"FUNCTION", b"STATS"]));
    assert!(
        stats.starts_with("%2\r\n$14\r\nrunning_script\r\n_\r\n"),
        "{stats}"
    );
    let doctor = text(&raw(&mut c, &[b"MEMORY", b"DOCTOR"]));
    assert!(
        doctor.starts_with('=') && doctor.contains("\r\ntxt:"),
        "{doctor}"
    );
    assert_eq!(
        text(&raw(&mut c, &[b"SCRIPT", b"KILL"])),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
}

/// Waits until some master is running a busy script, and returns its port.
fn busy_master(masters: &[u16]) -> u16 {
    let mut busy = None;
    wait_until("a master to be busy", Duration::from_secs(5), || {
        busy = masters.iter().copied().find(|&port| {
            Conn::connect(port)
                .cmd_str("PING")
                .text()
                .starts_with("BUSY")
        });
        busy.is_some()
    });
    busy.unwrap_or_default()
}

#[test]
fn kill_reaches_the_busy_master_even_behind_the_busy_script() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let masters = cluster.master_ports();
    let mut c = proxy.conn();
    // A master reads other connections once a script has run this long.
    assert_eq!(
        c.cmd_str("CONFIG SET busy-reply-threshold 100"),
        Value::ok()
    );
    assert_eq!(
        c.cmd(&[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=spin\nredis.register_function('spin', function() while true do end end)",
        ]),
        Value::bulk("spin")
    );

    // The script runs through the proxy, and the kill follows it on the same client, so its
    // core's shared connection to the master is the one the master stopped reading.
    c.send_raw(&common::encode(&[b"EVAL", b"while true do end", b"0"]));
    busy_master(&masters);
    let started = Instant::now();
    c.send_raw(&common::encode(&[b"SCRIPT", b"KILL"]));
    let killed = c.read_value().text();
    assert!(
        killed.starts_with("ERR Script killed by user with SCRIPT KILL"),
        "{killed}"
    );
    assert_eq!(c.read_value(), Value::ok());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));

    // A busy function: FUNCTION KILL from another client kills it; SCRIPT KILL is the
    // busy node's own refusal, not the others' NOTBUSY.
    let mut spinner = proxy.conn();
    spinner.send_raw(&common::encode(&[b"FCALL", b"spin", b"0"]));
    busy_master(&masters);
    let refused = c.cmd_str("SCRIPT KILL").text();
    assert!(refused.starts_with("BUSY "), "{refused}");
    assert_eq!(c.cmd_str("FUNCTION KILL"), Value::ok());
    let killed = spinner.read_value().text();
    assert!(killed.starts_with("ERR Script killed by user"), "{killed}");
    assert_eq!(
        c.cmd_str("FUNCTION KILL"),
        Value::Error("NOTBUSY No scripts in execution right now.".into())
    );

    // A script that wrote cannot be killed: the master's UNKILLABLE, not NOTBUSY.
    let mut writer = proxy.conn();
    writer.send_raw(&common::encode(&[
        b"EVAL",
        b"redis.call('set', KEYS[1], 'x') \
          local function now() local t = redis.call('time') \
            return tonumber(t[1]) * 1000000 + tonumber(t[2]) end \
          local deadline = now() + 700000 \
          repeat until now() >= deadline \
          return 1",
        b"1",
        b"w",
    ]));
    busy_master(&masters);
    let refused = c.cmd_str("SCRIPT KILL").text();
    assert!(refused.starts_with("UNKILLABLE "), "{refused}");
    assert_eq!(writer.read_value(), Value::Int(1));
}
