//! Background writes in a cluster pool: an MSET over three masters is one background write
//! (split, merged, counted once), every client reads its own writes on every master, and a
//! background write that meets MOVED (its slot moved while percore's map did not know) is sent
//! to the new owner ahead of the client's next request, which reads it there.

mod common;

use std::time::Duration;

use common::{key_on_each_master, slot_of, wait_until, Proxy, RedisCluster, Value};

/// A figure of PROXY INFO: `background_<name>` of its `# Background writes` section.
fn background(proxy: &Proxy, name: &str) -> u64 {
    let info = proxy.conn().cmd_str("PROXY INFO").text();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("background_{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no background_{name} in PROXY INFO:\n{info}"))
}

/// MOVED redirects followed, over the cores (PROXY INFO's `moved=` of each core).
fn moved(proxy: &Proxy) -> u64 {
    let info = proxy.conn().cmd_str("PROXY INFO").text();
    info.lines()
        .filter(|line| line.starts_with("core"))
        .filter_map(|line| line.split(',').find_map(|f| f.strip_prefix("moved=")))
        .map(|n| n.parse::<u64>().unwrap())
        .sum()
}

#[test]
fn a_cluster_pool_writes_in_the_background_and_follows_moved() {
    let mut cluster = RedisCluster::start(3, 0);
    // No periodic refresh during the test: the moved slot is learnt from MOVED.
    let (proxy, _file, port) = common::sidecar::async_cluster_proxy(&cluster, 1);
    wait_until(
        "percore to serve the cluster",
        Duration::from_secs(30),
        || common::try_cmd(port, "GET ready") == Some(Value::Bulk(None)),
    );
    let keys = key_on_each_master(&cluster, "bg");
    let mut c = proxy.conn();
    let mset: Vec<String> = keys.iter().map(|(_, k)| format!("{k} v-{k}")).collect();
    assert_eq!(c.cmd_str(&format!("MSET {}", mset.join(" "))), Value::ok());
    for (master, key) in &keys {
        assert_eq!(
            c.cmd_str(&format!("GET {key}")),
            Value::bulk(&format!("v-{key}"))
        );
        let on_node = cluster.node(*master).cmd(&format!("GET {key}"));
        assert_eq!(on_node, Value::bulk(&format!("v-{key}")));
    }
    for i in 0..300 {
        assert_eq!(c.cmd_str(&format!("SET many:{i} {i}")), Value::ok());
        assert_eq!(
            c.cmd_str(&format!("GET many:{i}")),
            Value::bulk(&i.to_string())
        );
    }
    wait_until(
        "background writes answered",
        Duration::from_secs(10),
        || background(&proxy, "pending") == 0,
    );
    assert_eq!(background(&proxy, "sent"), 301, "the MSET counts once");
    assert_eq!(background(&proxy, "failed"), 0);

    // The slot of the first key moves to the second key's master behind percore's back.
    let (from, key) = keys[0].clone();
    let to = keys[1].0;
    cluster.move_slot(slot_of(&key), from, to);
    let before = moved(&proxy);
    assert_eq!(c.cmd_str(&format!("SET {key} after-move")), Value::ok());
    assert_eq!(c.cmd_str(&format!("GET {key}")), Value::bulk("after-move"));
    assert!(moved(&proxy) > before, "the write met MOVED");
    assert_eq!(
        cluster.node(to).cmd(&format!("GET {key}")),
        Value::bulk("after-move")
    );
    wait_until(
        "background writes answered",
        Duration::from_secs(10),
        || background(&proxy, "pending") == 0,
    );
    assert_eq!(background(&proxy, "failed"), 0);
}
