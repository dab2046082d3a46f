//! MULTI / EXEC / DISCARD through percore: the same replies a cluster node gives, atomic
//! against concurrent readers, nothing of a refused transaction applied, and a transaction
//! whose slot is moving (ASK) or has moved (MOVED) applied exactly once on the right node.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{slot_of, Conn, Proxy, RedisCluster, Value};

/// Sends each line on one connection and returns the raw replies.
fn replies(conn: &mut Conn, lines: &[&str]) -> Vec<Vec<u8>> {
    lines
        .iter()
        .map(|line| {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            conn.send_raw(&common::encode(&args));
            conn.read_raw_reply()
        })
        .collect()
}

#[test]
fn transactions_answer_as_a_cluster_node_does() {
    // One master owning every slot is the reference: percore in front of the same kind of
    // cluster must give the same bytes.
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let tag = "{tx}";
    let node = cluster.master_for_slot(slot_of(tag));
    let script: Vec<String> = [
        "EXEC",
        "DISCARD",
        "MULTI",
        "MULTI",
        "SET {tx}a 1",
        "NOSUCH",
        "GET",
        "EXEC",
        "GET {tx}a",
        "MULTI",
        "WATCH {tx}x",
        "SET {tx}a 1",
        "INCR {tx}a",
        "LPUSH {tx}a x",
        "PING",
        "BLPOP {tx}list 0",
        "EXEC",
        "MULTI",
        "EXEC",
        "MULTI",
        "SET {tx}b 1",
        "DISCARD",
        "GET {tx}b",
        // Sent to every master outside MULTI; inside, it runs on the transaction's node.
        "MULTI",
        "FLUSHALL",
        "SET {tx}z 1",
        "DBSIZE",
        "CONFIG SET maxmemory-samples 5",
        "EXEC",
        "MULTI",
        "HELLO 3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let lines: Vec<&str> = script.iter().map(String::as_str).collect();
    let through_percore = replies(&mut proxy.conn(), &lines);
    assert_eq!(Conn::connect(node).cmd_str("FLUSHALL"), Value::ok());
    let direct = replies(&mut Conn::connect(node), &lines);
    // HELLO inside MULTI is percore's own and refused (the last line); all the rest is equal.
    let n = lines.len() - 1;
    for i in 0..n {
        assert_eq!(
            String::from_utf8_lossy(&through_percore[i]),
            String::from_utf8_lossy(&direct[i]),
            "{}",
            lines[i]
        );
    }
    assert!(
        through_percore[n].starts_with(b"-ERR percore: 'hello' cannot be part of a transaction")
    );

    // Keys of two slots: queued, then CROSSSLOT at EXEC, and nothing applied.
    let mut c = proxy.conn();
    let cross = replies(
        &mut c,
        &[
            "MULTI",
            "SET {tx}c 1",
            "SET {other}c 1",
            "EXEC",
            "GET {tx}c",
        ],
    );
    assert_eq!(cross[2], b"+QUEUED\r\n");
    assert_eq!(
        cross[3],
        &b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"[..]
    );
    assert_eq!(cross[4], b"$-1\r\n");

    // RESP3: EXEC's array of the node's RESP3 replies.
    let resp3 = replies(
        &mut c,
        &["HELLO 3", "MULTI", "GET {tx}none", "HGETALL {tx}h", "EXEC"],
    );
    assert_eq!(resp3[4], b"*2\r\n_\r\n%0\r\n");
}

#[test]
fn a_refused_transaction_applies_nothing_and_a_good_one_is_atomic() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SET {atomic}counter 0"), Value::ok());
    let refused = replies(
        &mut c,
        &[
            "MULTI",
            "INCR {atomic}counter",
            "INCR {atomic}counter",
            "INCR",
            "EXEC",
        ],
    );
    assert!(refused[4].starts_with(b"-EXECABORT"));
    assert_eq!(
        c.cmd_str("GET {atomic}counter"),
        Value::bulk("0"),
        "nothing applied"
    );

    // A command the node refuses at queue time (here OOM): percore answered QUEUED, so EXEC
    // must name the node's error, and nothing runs.
    let mut node = Conn::connect(cluster.master_for_slot(slot_of("{atomic}")));
    assert_eq!(node.cmd_str("CONFIG SET maxmemory 1"), Value::ok());
    let refused = replies(&mut c, &["MULTI", "INCR {atomic}counter", "EXEC"]);
    assert_eq!(node.cmd_str("CONFIG SET maxmemory 0"), Value::ok());
    let exec = String::from_utf8_lossy(&refused[2]);
    assert!(
        exec.starts_with("-EXECABORT Transaction discarded because of: OOM "),
        "{exec}"
    );
    assert_eq!(c.cmd_str("GET {atomic}counter"), Value::bulk("0"));

    // A reader never sees one INCR of a transaction without the other.
    assert_eq!(c.cmd_str("MSET {atomic}a 0 {atomic}b 0"), Value::ok());
    let stop = Arc::new(AtomicBool::new(false));
    let port = proxy.port;
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut r = Conn::connect(port);
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let Value::Array(Some(values)) = r.cmd_str("MGET {atomic}a {atomic}b") else {
                    panic!("MGET")
                };
                assert_eq!(values[0], values[1], "a transaction was seen half done");
                reads += 1;
            }
            reads
        })
    };
    let mut writers: Vec<Conn> = (0..4).map(|_| proxy.conn()).collect();
    for round in 0..200 {
        let w = &mut writers[round % 4];
        let out = replies(w, &["MULTI", "INCR {atomic}a", "INCR {atomic}b", "EXEC"]);
        assert!(
            out[3].starts_with(b"*2\r\n:"),
            "{:?}",
            String::from_utf8_lossy(&out[3])
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(c.cmd_str("GET {atomic}a"), Value::bulk("200"));
    assert_eq!(c.cmd_str("GET {atomic}b"), Value::bulk("200"));
}

#[test]
fn a_transaction_on_a_moving_slot_is_applied_once_on_the_right_node() {
    let mut cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--refresh-interval", "1h"]);
    let mut c = proxy.conn();
    let keys = ["{mig}a", "{mig}b"];
    let slot = slot_of(keys[0]);
    for key in keys {
        assert_eq!(c.cmd_str(&format!("SET {key} 0")), Value::ok());
    }
    let from = cluster.master_for_slot(slot);
    let to = *cluster.master_ports().iter().find(|&&p| p != from).unwrap();
    cluster.begin_migration(slot, from, to);
    // Half migrated: the node answers ASK for the moved key at queue time; the block goes
    // again to the importing node, with ASKING.
    cluster.migrate_key(keys[0], from, to);
    cluster.migrate_key(keys[1], from, to);
    let tx = ["MULTI", "INCR {mig}a", "INCR {mig}b", "EXEC"];
    let out = replies(&mut c, &tx);
    assert_eq!(
        out[3],
        b"*2\r\n:1\r\n:1\r\n",
        "{:?}",
        String::from_utf8_lossy(&out[3])
    );
    cluster.finish_migration(slot, to);
    // Moved for good: MOVED at queue time, the block goes to the new owner.
    let out = replies(&mut c, &tx);
    assert_eq!(
        out[3],
        b"*2\r\n:2\r\n:2\r\n",
        "{:?}",
        String::from_utf8_lossy(&out[3])
    );
    for key in keys {
        assert_eq!(
            Conn::connect(to).cmd_str(&format!("GET {key}")),
            Value::bulk("2")
        );
    }
    let info = c.cmd_str("PROXY INFO").text();
    let counter = |name: &str| -> u64 {
        info.lines()
            .filter_map(|l| l.split(&format!("{name}=")).nth(1))
            .filter_map(|v| v.split(',').next()?.parse::<u64>().ok())
            .sum()
    };
    assert!(counter("asked") >= 1 && counter("moved") >= 1, "{info}");
}
