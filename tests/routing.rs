//! Routing through the proxy: every data type, binary-safe keys and values, large values,
//! hash tags, keys on every master landing where Redis Cluster says, CROSSSLOT refusals that
//! change nothing, and refused commands naming themselves.

mod common;

use common::{key_on_each_master, slot_of, Conn, Proxy, RedisCluster, Value};

fn int(n: i64) -> Value {
    Value::Int(n)
}

#[test]
fn every_type_and_binary_values_route_to_the_owning_master() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();

    // Our slot function agrees with Redis on many keys, including tags.
    for key in [
        "foo",
        "bar",
        "{user1000}.following",
        "a{b}c",
        "{}x",
        "x{}{y}",
        "",
    ] {
        assert_eq!(slot_of(key), cluster.keyslot(key), "key {key:?}");
    }

    // One key per master, per type: every master is exercised.
    let keys = key_on_each_master(&cluster, "t:");
    assert_eq!(keys.len(), 3, "keys cover every master");
    for (port, key) in &keys {
        // The tag keeps every suffixed key in the slot of `key`.
        let k = &format!("{{{key}}}");
        assert_eq!(c.cmd_str(&format!("SET {k}:s v")).text(), "OK");
        assert_eq!(c.cmd_str(&format!("APPEND {k}:s w")), int(2));
        assert_eq!(c.cmd_str(&format!("INCR {k}:n")), int(1));
        assert_eq!(c.cmd_str(&format!("INCRBY {k}:n 41")), int(42));
        assert_eq!(c.cmd_str(&format!("RPUSH {k}:l a b c")), int(3));
        assert_eq!(
            c.cmd_str(&format!("LRANGE {k}:l 0 -1")),
            Value::Array(Some(vec![
                Value::bulk("a"),
                Value::bulk("b"),
                Value::bulk("c")
            ]))
        );
        assert_eq!(c.cmd_str(&format!("HSET {k}:h f1 v1 f2 v2")), int(2));
        assert_eq!(c.cmd_str(&format!("HGET {k}:h f2")), Value::bulk("v2"));
        assert_eq!(c.cmd_str(&format!("SADD {k}:set x y x")), int(2));
        assert_eq!(c.cmd_str(&format!("SCARD {k}:set")), int(2));
        assert_eq!(c.cmd_str(&format!("ZADD {k}:z 1 one 2 two")), int(2));
        assert_eq!(c.cmd_str(&format!("ZSCORE {k}:z two")), Value::bulk("2"));
        assert!(c.cmd_str(&format!("XADD {k}:x * f v")).as_bulk().is_some());
        assert_eq!(c.cmd_str(&format!("XLEN {k}:x")), int(1));
        assert_eq!(c.cmd_str(&format!("PFADD {k}:hll a b c")), int(1));
        assert_eq!(c.cmd_str(&format!("PFCOUNT {k}:hll")), int(3));
        assert_eq!(c.cmd_str(&format!("SETBIT {k}:bits 7 1")), int(0));
        assert_eq!(c.cmd_str(&format!("BITCOUNT {k}:bits")), int(1));
        assert_eq!(
            c.cmd_str(&format!("GEOADD {k}:geo 13.361389 38.115556 Palermo")),
            int(1)
        );
        assert_eq!(
            c.cmd_str(&format!("GEOHASH {k}:geo Palermo")),
            Value::Array(Some(vec![Value::bulk("sqc8b49rny0")]))
        );
        assert_eq!(c.cmd_str(&format!("EXPIRE {k}:s 100")), int(1));
        assert!(c
            .cmd_str(&format!("TTL {k}:s"))
            .as_int()
            .is_some_and(|t| t > 0 && t <= 100));
        // The value is really on the master that owns the slot.
        let mut direct = Conn::connect(*port);
        assert_eq!(
            direct.cmd_str(&format!("GET {k}:s")),
            Value::bulk("vw"),
            "on {port}"
        );
        assert_eq!(direct.cmd_str(&format!("HGET {k}:h f1")), Value::bulk("v1"));
    }

    // Binary-safe keys and values, and a 1 MiB value.
    let key = b"bin\0key\r\nwith\ncontrol";
    let value = b"\0\r\n\r\n$-1\r\n*3\r\n\xff";
    assert_eq!(c.cmd(&[b"SET", key, value]), Value::ok());
    assert_eq!(c.cmd(&[b"GET", key]), Value::Bulk(Some(value.to_vec())));
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.cmd(&[b"SET", b"big", &big]), Value::ok());
    assert_eq!(c.cmd(&[b"GET", b"big"]), Value::Bulk(Some(big.clone())));
    assert_eq!(c.cmd(&[b"STRLEN", b"big"]), int(big.len() as i64));

    // Hash tags keep related keys together, so multi-key commands work on them.
    assert_eq!(c.cmd_str("SET {tag}a 1").text(), "OK");
    assert_eq!(c.cmd_str("RENAME {tag}a {tag}b").text(), "OK");
    assert_eq!(c.cmd_str("GET {tag}b"), Value::bulk("1"));
    let script = b"return redis.call('get', KEYS[1])";
    assert_eq!(c.cmd(&[b"EVAL", script, b"1", b"{tag}b"]), Value::bulk("1"));
}

#[test]
fn cross_slot_and_unsupported_commands_are_refused_without_effect() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    assert_ne!(slot_of("a"), slot_of("b"));
    assert_eq!(c.cmd_str("SET a 1").text(), "OK");
    assert_eq!(c.cmd_str("SADD sa m").as_int(), Some(1));
    let crossslot = Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into());
    for line in [
        "RENAME a b",
        "MSETNX a 2 b 2",
        "SMOVE sa b m",
        "LMOVE a b LEFT RIGHT",
        "ZUNIONSTORE a 2 a b",
        "BITOP AND a a b",
        "COPY a b",
        "PFMERGE a b",
        "SINTERCARD 2 sa b",
    ] {
        assert_eq!(c.cmd_str(line), crossslot, "{line}");
    }
    assert_eq!(c.cmd(&[b"EVAL", b"return 1", b"2", b"a", b"b"]), crossslot);
    assert_eq!(c.cmd_str("GET a"), Value::bulk("1"));
    assert_eq!(c.cmd_str("EXISTS b"), Value::Int(0));
    assert_eq!(
        c.cmd_str("SMEMBERS sa"),
        Value::Array(Some(vec![Value::bulk("m")]))
    );

    for (line, name) in [
        ("WAIT 0 0", "wait"),
        ("SHUTDOWN", "shutdown"),
        ("DEBUG SEGFAULT", "debug"),
        ("CLUSTER LINKS", "cluster"),
    ] {
        let reply = c.cmd_str(line);
        assert!(reply.is_error(), "{line}: {reply:?}");
        assert!(reply.text().starts_with("ERR"), "{line}: {reply:?}");
        assert!(
            reply.text().contains(&format!("'{name}'")),
            "{line}: {reply:?}"
        );
    }
    // The connection is still fine after refusals.
    assert_eq!(c.cmd_str("GET a"), Value::bulk("1"));
    // Commands sent to every master merge their replies.
    assert!(c.cmd_str("DBSIZE").as_int().is_some_and(|n| n >= 2));
    assert_eq!(c.cmd_str("CLUSTER KEYSLOT foo"), Value::Int(12182));
}

/// DEBUG, SAVE and LATENCY go where they mean something for the cluster, and the node's own
/// answer comes back (a node refuses DEBUG unless `enable-debug-command` allows it: then that
/// refusal is what the client reads).
#[test]
fn debug_save_and_latency_reach_the_nodes() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SET dbg:k v"), Value::ok());
    let owner = cluster.master_for_slot(common::slot_of("dbg:k"));
    for line in ["DEBUG OBJECT dbg:k", "DEBUG PROTOCOL bignum"] {
        let direct = common::Conn::connect(owner).cmd_str(line);
        let through = c.cmd_str(line);
        match (&direct, &through) {
            // The address in DEBUG OBJECT's reply, and the like, may differ: compare kinds.
            (Value::Error(a), Value::Error(b)) => assert_eq!(a, b, "{line}"),
            (a, b) => assert_eq!(a.is_error(), b.is_error(), "{line}: {a:?} / {b:?}"),
        }
    }
    assert_eq!(c.cmd_str("SAVE"), Value::ok());
    assert_eq!(
        c.cmd_str("LATENCY RESET"),
        Value::Int(0),
        "the sum of every master's reset events"
    );
    // The whole cluster sleeps, as one node would.
    let started = std::time::Instant::now();
    assert_eq!(c.cmd_str("DEBUG SLEEP 0.2"), Value::ok());
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    // DEBUG DIGEST is the digest one node holding every key would give: compared with a
    // standalone server holding the same keys, for one key, keys on two masters, on three.
    let single = common::RedisServer::start_with(&["--enable-debug-command", "local"]);
    let mut one = common::Conn::connect(single.port);
    assert_eq!(c.cmd_str("FLUSHALL"), Value::ok());
    let empty = "0".repeat(40);
    assert_eq!(c.cmd_str("DEBUG DIGEST"), Value::Simple(empty));
    let mut masters_holding = std::collections::BTreeSet::new();
    for key in ["a", "b", "c", "d", "e", "f", "g"] {
        let line = format!("RPUSH {key} x{key} y");
        assert_eq!(c.cmd_str(&line), one.cmd_str(&line));
        masters_holding.insert(cluster.master_for_slot(common::slot_of(key)));
        let through = c.cmd_str("DEBUG DIGEST");
        assert_eq!(
            through,
            one.cmd_str("DEBUG DIGEST"),
            "after {key}, keys on {} masters",
            masters_holding.len()
        );
    }
    assert_eq!(masters_holding.len(), 3, "the keys cover every master");
}
