//! Background writes (`async_writes: true`) in a cluster pool while their slot migrates
//! (CLUSTER SETSLOT MIGRATING/IMPORTING, keys moved one at a time with MIGRATE): a write of a
//! key already moved meets ASK and is sent to the importing master (after ASKING), ahead of
//! the client's next request, which reads it there; an MSET of a moved key and one not moved
//! yet meets TRYAGAIN, is sent again until the slot settles, and the client's next request
//! waits for it. At the end every key's value on the slot's new master is the last one
//! acknowledged (a write applied twice, or late, would show an older one), every new key is
//! there, nothing is left on the old master and nothing is counted failed.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::sidecar::{async_cluster_proxy, background, wait_flushed};
use common::{key_on_each_master, slot_of, wait_until, Conn, RedisCluster, Value};

/// Keys of the migrating slot that exist before it starts to move.
const KEYS: usize = 30;
/// Pause between two keys moved, so that writes flow while each moves.
const MOVE_GAP: Duration = Duration::from_millis(30);
/// Longest the background writes may take to be answered.
const FLUSHED: Duration = Duration::from_secs(30);

/// What the writer saw: the last value acknowledged for each key, the new keys it made, and
/// every reply that was not `+OK` to a write or the value just written to a read.
#[derive(Default)]
struct Written {
    last: HashMap<String, String>,
    new_keys: Vec<(String, String)>,
    wrong: Vec<String>,
}

/// SETs `key` to `value` through `c` and reads it back, noting in `seen` what is not as it
/// should be.
fn set_and_read(c: &mut Conn, seen: &mut Written, key: &str, value: &str) {
    let reply = c.cmd(&[b"SET", key.as_bytes(), value.as_bytes()]);
    if reply != Value::ok() {
        return seen.wrong.push(format!("SET {key}: {reply:?}"));
    }
    let read = c.cmd(&[b"GET", key.as_bytes()]);
    if read != Value::bulk(value) {
        seen.wrong
            .push(format!("GET {key} after SET {value}: {read:?}"));
    }
}

/// Writes rounds over `keys` until `stop`, each write read back at once, and a new key of
/// `tag`'s slot each round; returns what it saw.
fn write_rounds(port: u16, keys: &[String], tag: &str, stop: &AtomicBool) -> Written {
    let mut c = Conn::connect(port);
    let mut seen = Written::default();
    for round in 1u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let value = format!("r{round}");
        for key in keys {
            set_and_read(&mut c, &mut seen, key, &value);
            seen.last.insert(key.clone(), value.clone());
        }
        let new_key = format!("{{{tag}}}:new:{round}");
        set_and_read(&mut c, &mut seen, &new_key, &value);
        seen.new_keys.push((new_key, value));
    }
    seen
}

/// ASK redirects followed, over the cores (PROXY INFO's `asked=` of each core).
fn asked(port: u16) -> u64 {
    let info = Conn::connect(port).cmd_str("PROXY INFO").text();
    info.lines()
        .filter(|line| line.starts_with("core"))
        .filter_map(|line| line.split(',').find_map(|f| f.strip_prefix("asked=")))
        .map(|n| n.parse::<u64>().unwrap())
        .sum()
}

/// `key`'s value on the node at `port`.
fn on_node(cluster: &mut RedisCluster, port: u16, key: &str) -> Value {
    cluster.node(port).cmd(&format!("GET {key}"))
}

#[test]
fn background_writes_follow_ask_and_tryagain_while_their_slot_migrates() {
    let mut cluster = RedisCluster::start(3, 0);
    // No periodic refresh: percore learns of the migration from the nodes' redirects only.
    let (proxy, _file, port) = async_cluster_proxy(&cluster, 2);
    wait_until("percore to serve the cluster", FLUSHED, || {
        common::try_cmd(port, "GET ready") == Some(Value::Bulk(None))
    });
    let masters = key_on_each_master(&cluster, "mig");
    let ((from, tag), to) = (masters[0].clone(), masters[1].0);
    let slot = slot_of(&tag);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("{{{tag}}}:{i}")).collect();
    let mut c = proxy.conn();
    for key in &keys {
        assert_eq!(c.cmd(&[b"SET", key.as_bytes(), b"r0"]), Value::ok());
    }
    wait_flushed(port, FLUSHED);

    // ASK: the keys but the first move one at a time while a writer writes them all.
    cluster.begin_migration(slot, from, to);
    let asked_before = asked(port);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (keys, tag, stop) = (keys[1..].to_vec(), tag.clone(), stop.clone());
        std::thread::spawn(move || write_rounds(port, &keys, &tag, &stop))
    };
    for key in &keys[1..] {
        std::thread::sleep(MOVE_GAP);
        cluster.migrate_key(key, from, to);
    }
    std::thread::sleep(MOVE_GAP * 5);
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("the writer");
    assert!(written.wrong.is_empty(), "{:#?}", written.wrong);
    assert!(asked(port) > asked_before, "writes met ASK");

    // TRYAGAIN: an MSET of the key not moved yet and one moved, then the first moves too.
    let (stayed, moved) = (&keys[0], &keys[1]);
    let mset = [
        &b"MSET"[..],
        stayed.as_bytes(),
        b"t",
        moved.as_bytes(),
        b"t",
    ];
    assert_eq!(c.cmd(&mset), Value::ok());
    // Long enough for a TRYAGAIN or two, well within the redirects a request may follow.
    std::thread::sleep(MOVE_GAP);
    cluster.migrate_key(stayed, from, to);
    assert_eq!(c.cmd(&[b"GET", stayed.as_bytes()]), Value::bulk("t"));
    assert_eq!(c.cmd(&[b"GET", moved.as_bytes()]), Value::bulk("t"));
    let errors = cluster.node(from).cmd("INFO errorstats").text();
    assert!(errors.contains("errorstat_TRYAGAIN"), "{errors}");
    cluster.finish_migration(slot, to);
    wait_flushed(port, FLUSHED);
    assert_eq!(background(port, "failed"), 0);

    // The slot's new master has the last value of each key, and every new key.
    let mut last = written.last.clone();
    last.insert(stayed.clone(), "t".into());
    last.insert(moved.clone(), "t".into());
    for (key, value) in last
        .iter()
        .chain(written.new_keys.iter().map(|(k, v)| (k, v)))
    {
        assert_eq!(on_node(&mut cluster, to, key), Value::bulk(value), "{key}");
    }
    let left = cluster
        .node(from)
        .cmd(&format!("CLUSTER COUNTKEYSINSLOT {slot}"));
    assert_eq!(left, Value::Int(0), "nothing left on the old master");
    eprintln!(
        "{} rounds, {} ASK followed",
        written.new_keys.len(),
        asked(port) - asked_before
    );
}
