//! Live slot moves: the proxy follows MOVED (slot moved with CLUSTER SETSLOT + MIGRATE during
//! the test) and ASK (slot half migrated) itself, so clients only ever see correct values.

mod common;

use common::{slot_of, Conn, Proxy, RedisCluster, Value};

/// Keys in one slot, by hash tag.
fn keys_in_slot(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{{{tag}}}:{i}")).collect()
}

fn info_field(proxy_info: &str, field: &str) -> u64 {
    proxy_info
        .lines()
        .filter(|l| l.starts_with("core"))
        .filter_map(|l| l.split(&format!("{field}=")).nth(1))
        .filter_map(|rest| rest.split(',').next()?.trim().parse::<u64>().ok())
        .sum()
}

#[test]
fn moved_slot_is_followed_transparently() {
    let mut cluster = RedisCluster::start(3, 0);
    // A long refresh interval: only MOVED can teach the proxy about the move.
    let proxy = Proxy::start(&cluster, &["--refresh-interval", "1h"]);
    let mut c = proxy.conn();
    let keys = keys_in_slot("mv", 20);
    let slot = slot_of(&keys[0]);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(c.cmd_str(&format!("SET {key} {i}")), Value::ok());
    }
    let from = cluster.master_for_slot(slot);
    let to = *cluster.master_ports().iter().find(|&&p| p != from).unwrap();
    cluster.move_slot(slot, from, to);
    assert_eq!(cluster.master_for_slot(slot), to);

    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            c.cmd_str(&format!("GET {key}")),
            Value::bulk(&i.to_string()),
            "{key}"
        );
        assert_eq!(c.cmd_str(&format!("INCR {key}")), Value::Int(i as i64 + 1));
    }
    // The writes landed on the new owner.
    assert_eq!(
        Conn::connect(to).cmd_str(&format!("GET {}", keys[3])),
        Value::bulk("4")
    );
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|k| k.as_bytes()));
    let Value::Array(Some(values)) = c.cmd(&mget) else {
        panic!("MGET")
    };
    assert_eq!(values.len(), 20);
    let info = c.cmd_str("PROXY INFO").text();
    assert!(
        info_field(&info, "moved") >= 1,
        "MOVED was followed: {info}"
    );
}

#[test]
fn ask_during_migration_is_followed_transparently() {
    let mut cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--refresh-interval", "1h"]);
    let mut c = proxy.conn();
    let keys = keys_in_slot("ask", 4);
    let slot = slot_of(&keys[0]);
    for key in &keys {
        assert_eq!(c.cmd_str(&format!("SET {key} before")), Value::ok());
    }
    let from = cluster.master_for_slot(slot);
    let to = *cluster.master_ports().iter().find(|&&p| p != from).unwrap();
    cluster.begin_migration(slot, from, to);
    cluster.migrate_key(&keys[0], from, to);

    // keys[0] now lives only on the importing node: reaching it needs ASK.
    let direct = Conn::connect(from).cmd_str(&format!("GET {}", keys[0]));
    assert!(
        direct.text().starts_with("ASK "),
        "the source redirects: {direct:?}"
    );
    assert_eq!(
        c.cmd_str(&format!("GET {}", keys[0])),
        Value::bulk("before")
    );
    assert_eq!(
        c.cmd_str(&format!("GET {}", keys[1])),
        Value::bulk("before")
    );
    assert_eq!(c.cmd_str(&format!("SET {} after", keys[0])), Value::ok());
    // A new key in a migrating slot goes to the importing node, via ASK.
    assert_eq!(c.cmd_str("SET {ask}:new fresh"), Value::ok());
    let info = c.cmd_str("PROXY INFO").text();
    assert!(info_field(&info, "asked") >= 1, "ASK was followed: {info}");

    for key in &keys[1..] {
        cluster.migrate_key(key, from, to);
    }
    cluster.finish_migration(slot, to);
    assert_eq!(c.cmd_str(&format!("GET {}", keys[0])), Value::bulk("after"));
    for key in &keys[1..] {
        assert_eq!(c.cmd_str(&format!("GET {key}")), Value::bulk("before"));
    }
    assert_eq!(c.cmd_str("GET {ask}:new"), Value::bulk("fresh"));
}
