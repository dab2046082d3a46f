//! Replica reads against a real cluster of 3 masters with 1 replica each: where reads and
//! writes land (the nodes' own `INFO commandstats` count them), what a replica that dies or
//! stalls costs the readers (nothing but time), the lag bound, failovers while reading from
//! replicas, a MOVED from a replica, READONLY per client, and the `replica` and `any`
//! policies.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{command_calls, key_per_slot, slot_of, wait_until, Conn, Proxy, RedisCluster, Value};

/// How long the proxy may take to bring replicas into rotation (its first lag check comes
/// within tens of milliseconds; a busy test machine is slow).
const SETTLE: Duration = Duration::from_secs(15);

/// Keys the tests write and read: spread over every master.
const KEYS: usize = 300;

fn key(i: usize) -> String {
    format!("rr:{i}")
}

/// MOVED errors a node has sent (INFO errorstats), as a replica answers a write.
fn moved_replies(port: u16) -> u64 {
    let info = Conn::connect(port).cmd_str("INFO errorstats").text();
    info.lines()
        .find_map(|line| line.strip_prefix("errorstat_MOVED:count="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The ports of the nodes that are replicas now (of those that run).
fn replica_ports(cluster: &RedisCluster) -> Vec<u16> {
    let masters = cluster.master_ports();
    let all = cluster.nodes.iter().map(|n| n.port);
    let running = |port: u16| common::try_cmd(port, "PING").is_some();
    all.filter(|&p| !masters.contains(&p) && running(p))
        .collect()
}

/// The replica of the master on `master`.
fn replica_of(cluster: &RedisCluster, master: u16) -> u16 {
    replica_ports(cluster)
        .into_iter()
        .find(|&p| {
            let info = Conn::connect(p).cmd_str("INFO replication").text();
            info.contains(&format!("master_port:{master}\r\n"))
        })
        .expect("a replica of that master")
}

/// The `# Reads` section of PROXY INFO.
fn reads(proxy: &Proxy) -> String {
    let info = proxy.conn().cmd_str("PROXY INFO").text();
    info.split("# Reads").nth(1).unwrap_or_default().to_string()
}

/// The PROXY INFO line of the replica on `port` (`replicaN:addr=127.0.0.1:port,...`).
fn replica_line(proxy: &Proxy, port: u16) -> String {
    let addr = format!("addr=127.0.0.1:{port},");
    let section = reads(proxy);
    let line = section
        .lines()
        .find(|l| l.starts_with("replica") && l.contains(&addr));
    line.unwrap_or_default().to_string()
}

/// Waits until every core of the proxy reads from every replica of the topology.
fn wait_in_rotation(proxy: &Proxy, replicas: usize) {
    let want = format!("replicas_in_rotation:{replicas}\r");
    wait_until("every replica in rotation", SETTLE, || {
        let section = reads(proxy);
        section.contains(&want)
            && section
                .lines()
                .filter(|l| l.starts_with("replica") && l.contains("addr="))
                .all(|l| l.contains("cores_in_rotation=2,"))
    });
}

/// Writes the test keys, and waits until every replica has them.
fn write_keys(proxy: &Proxy, cluster: &RedisCluster) {
    let mut conn = proxy.conn();
    let sets: Vec<Vec<Vec<u8>>> = (0..KEYS)
        .map(|i| {
            vec![
                b"SET".to_vec(),
                key(i).into_bytes(),
                i.to_string().into_bytes(),
            ]
        })
        .collect();
    assert!(conn.pipeline(&sets).iter().all(|r| *r == Value::ok()));
    for master in cluster.master_ports() {
        let replica = replica_of(cluster, master);
        wait_until("the replicas to have every key", SETTLE, || {
            let size = |port| Conn::connect(port).cmd_str("DBSIZE").as_int();
            size(replica) == size(master)
        });
    }
}

/// Reads every test key with GET, then all of them with one MGET; asserts the values.
fn read_keys(conn: &mut Conn) {
    let gets: Vec<Vec<Vec<u8>>> = (0..KEYS)
        .map(|i| vec![b"GET".to_vec(), key(i).into_bytes()])
        .collect();
    for (i, reply) in conn.pipeline(&gets).iter().enumerate() {
        assert_eq!(*reply, Value::bulk(&i.to_string()), "GET {}", key(i));
    }
    let mut mget: Vec<Vec<u8>> = vec![b"MGET".to_vec()];
    mget.extend((0..KEYS).map(|i| key(i).into_bytes()));
    let Value::Array(Some(values)) = conn.pipeline(&[mget]).remove(0) else {
        panic!("MGET is not an array");
    };
    let expected: Vec<Value> = (0..KEYS).map(|i| Value::bulk(&i.to_string())).collect();
    assert_eq!(values, expected);
}

/// A reader that GETs the test keys until stopped; returns the reads done and every error.
fn reader(port: u16, stop: Arc<AtomicBool>) -> JoinHandle<(u64, Vec<String>)> {
    std::thread::spawn(move || {
        let mut conn = Conn::connect(port);
        let (mut done, mut errors) = (0, Vec::new());
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let name = key(i % KEYS);
            match conn.cmd(&[b"GET", name.as_bytes()]) {
                Value::Bulk(Some(_)) => done += 1,
                other => errors.push(format!("GET {name}: {other:?}")),
            }
            i += 1;
        }
        (done, errors)
    })
}

/// A writer that SETs other keys until stopped, so replicas have a stream to fall behind on.
fn writer(port: u16, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut conn = Conn::connect(port);
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let name = format!("w:{}", i % 1000);
            let _ = conn.cmd(&[b"SET", name.as_bytes(), i.to_string().as_bytes()]);
            i += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

/// Stops `reader` and asserts it read without an error.
fn no_read_errors(stop: &AtomicBool, reader: JoinHandle<(u64, Vec<String>)>, what: &str) {
    stop.store(true, Ordering::Relaxed);
    let (done, errors) = reader.join().expect("reader thread");
    eprintln!("{what}: {done} reads, {} errors", errors.len());
    assert!(done > 0, "{what}: no reads done");
    assert!(
        errors.is_empty(),
        "{what}: read errors: {:?}",
        &errors[..errors.len().min(5)]
    );
}

/// 3 masters with a replica each, the replicas known to every node.
fn start_cluster() -> RedisCluster {
    let cluster = RedisCluster::start(3, 1);
    cluster.wait_replicas_listed(1);
    cluster
}

#[test]
fn reads_land_on_replicas_and_writes_on_masters() {
    let cluster = start_cluster();
    let proxy = Proxy::start(&cluster, &["--read-from", "prefer-replica"]);
    wait_in_rotation(&proxy, 3);
    write_keys(&proxy, &cluster);
    let masters = cluster.master_ports();
    let replicas = replica_ports(&cluster);
    let gets =
        |ports: &[u16]| -> Vec<u64> { ports.iter().map(|&p| command_calls(p, "get")).collect() };
    let mgets = |ports: &[u16]| -> u64 { ports.iter().map(|&p| command_calls(p, "mget")).sum() };
    let (masters_before, replicas_before) = (gets(&masters), gets(&replicas));
    let mgets_before = (mgets(&masters), mgets(&replicas));
    read_keys(&mut proxy.conn());
    let (masters_after, replicas_after) = (gets(&masters), gets(&replicas));
    assert_eq!(masters_after, masters_before, "no GET reached a master");
    let on_replicas: u64 = replicas_after.iter().sum::<u64>() - replicas_before.iter().sum::<u64>();
    assert_eq!(on_replicas, KEYS as u64, "every GET was a replica's");
    for (after, before) in replicas_after.iter().zip(&replicas_before) {
        assert!(after > before, "each replica read its share");
    }
    assert_eq!(
        mgets(&masters),
        mgets_before.0,
        "no MGET part reached a master"
    );
    // MGET is split per slot: one part per slot of the keys, all of them on replicas.
    let mut slots: Vec<u16> = (0..KEYS).map(|i| slot_of(&key(i))).collect();
    slots.sort_unstable();
    slots.dedup();
    let parts = slots.len() as u64;
    assert_eq!(
        mgets(&replicas),
        mgets_before.1 + parts,
        "every MGET part on a replica"
    );
    // Writes went to the masters: a replica refuses a write with MOVED, and none did.
    for &replica in &replicas {
        assert_eq!(
            moved_replies(replica),
            0,
            "replica {replica} was sent no write"
        );
    }
    let set_calls: u64 = masters.iter().map(|&p| command_calls(p, "set")).sum();
    assert!(set_calls >= KEYS as u64);
    // PROXY INFO counts the reads per node: all on the replicas.
    let section = reads(&proxy);
    for &replica in &replicas {
        let line = replica_line(&proxy, replica);
        assert!(
            line.contains("in_rotation=yes,cores_in_rotation=2,lag=ok"),
            "{line}"
        );
        assert!(line.contains("link=up"), "{line}");
    }
    assert!(section.contains("read_from:prefer-replica\r"), "{section}");
    let total = KEYS as u64 + parts;
    assert!(section.contains(&format!("reads:{total}\r")), "{section}");
}

#[test]
fn a_replica_killed_mid_load_costs_no_read() {
    let mut cluster = start_cluster();
    let proxy = Proxy::start(&cluster, &["--read-from", "prefer-replica"]);
    wait_in_rotation(&proxy, 3);
    write_keys(&proxy, &cluster);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4).map(|_| reader(proxy.port, stop.clone())).collect();
    std::thread::sleep(Duration::from_millis(500));
    let victim = replica_ports(&cluster)[0];
    let before = command_calls(victim, "get");
    assert!(before > 0, "the victim was read from");
    cluster.kill(victim);
    std::thread::sleep(Duration::from_millis(1500));
    let line = replica_line(&proxy, victim);
    assert!(
        line.is_empty() || line.contains("in_rotation=no"),
        "the killed replica left the rotation: {line}"
    );
    for (index, reader) in readers.into_iter().enumerate() {
        no_read_errors(&stop, reader, &format!("reader {index}"));
    }
}

#[test]
fn a_paused_replica_leaves_the_rotation_and_comes_back() {
    let mut cluster = start_cluster();
    // Paused for longer than the fixture's 2 s node timeout, the replica would be marked
    // failed and leave the topology, which is not what this test is about.
    for node in &cluster.nodes {
        assert_eq!(
            node.cmd("CONFIG SET cluster-node-timeout 60000"),
            Value::ok()
        );
    }
    let args = [
        "--read-from",
        "prefer-replica",
        "--max-replica-lag",
        "1500ms",
    ];
    let proxy = Proxy::start(
        &cluster,
        &[&args[..], &["--backend-timeout", "1s"]].concat(),
    );
    wait_in_rotation(&proxy, 3);
    write_keys(&proxy, &cluster);
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(proxy.port, stop.clone());
    let reading = reader(proxy.port, stop.clone());
    let victim = replica_ports(&cluster)[0];
    cluster.pause(victim, true);
    let paused = Instant::now();
    wait_until("the paused replica to lag", SETTLE, || {
        replica_line(&proxy, victim).contains("in_rotation=no,cores_in_rotation=0,lag=lagging")
    });
    eprintln!(
        "paused replica out of rotation {:?} after SIGSTOP",
        paused.elapsed()
    );
    // Out of rotation, it is not read from: nothing queues behind a stalled process.
    std::thread::sleep(Duration::from_millis(300));
    cluster.pause(victim, false);
    let resumed = Instant::now();
    wait_until("the replica back in rotation", SETTLE, || {
        replica_line(&proxy, victim).contains("in_rotation=yes,cores_in_rotation=2,lag=ok")
    });
    eprintln!(
        "replica back in rotation {:?} after SIGCONT",
        resumed.elapsed()
    );
    let before = command_calls(victim, "get");
    wait_until("reads on the replica again", SETTLE, || {
        command_calls(victim, "get") > before
    });
    no_read_errors(&stop, reading, "reader");
    writing.join().expect("writer thread");
}

/// Whether a GET of every key answers without an error (a value or nil).
fn reads_every_slot(port: u16, keys: &[String]) -> bool {
    let mut conn = Conn::connect(port);
    let gets: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|k| vec![b"GET".to_vec(), k.as_bytes().to_vec()])
        .collect();
    conn.pipeline(&gets).iter().all(|r| !r.is_error())
}

/// Waits until every node that runs agrees, then asserts the proxy reads every slot within
/// a second of that.
fn readable_within_a_second(cluster: &RedisCluster, port: u16, keys: &[String], what: &str) {
    cluster.wait_ok();
    let recovered = Instant::now();
    let mut last = false;
    while recovered.elapsed() < Duration::from_secs(1) && !last {
        last = reads_every_slot(port, keys);
    }
    eprintln!(
        "{what}: every slot readable {:?} after the cluster recovered",
        recovered.elapsed()
    );
    assert!(
        last,
        "{what}: not every slot readable 1 s after the cluster recovered"
    );
}

#[test]
fn failovers_while_reading_from_replicas() {
    let mut cluster = start_cluster();
    let args = ["--read-from", "prefer-replica", "--refresh-interval", "1s"];
    let proxy = Proxy::start(&cluster, &args);
    wait_in_rotation(&proxy, 3);
    write_keys(&proxy, &cluster);
    let keys = key_per_slot();
    assert!(reads_every_slot(proxy.port, &keys));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2).map(|_| reader(proxy.port, stop.clone())).collect();

    // Manual failover: the replica of slot 0's master takes over, the master becomes its
    // replica.
    let old_master = cluster.master_for_slot(0);
    let replica = replica_of(&cluster, old_master);
    let mut attempts = 0;
    while cluster.master_for_slot(0) != replica {
        attempts += 1;
        assert!(attempts <= 3, "the replica never took over slot 0");
        assert_eq!(cluster.node(replica).cmd("CLUSTER FAILOVER"), Value::ok());
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster.master_for_slot(0) != replica && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    readable_within_a_second(&cluster, proxy.port, &keys, "manual failover");
    // The old master, now a replica, comes into rotation once in sync.
    wait_until("the demoted master read from", SETTLE, || {
        replica_line(&proxy, old_master).contains("in_rotation=yes")
    });
    stop.store(true, Ordering::Relaxed);
    for (index, reader) in readers.into_iter().enumerate() {
        no_read_errors(&stop, reader, &format!("manual failover, reader {index}"));
    }

    // kill -9 of a master: reads of its slots go on from its replica until the cluster
    // marks the master failed (then it answers CLUSTERDOWN until it has promoted the replica).
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2).map(|_| reader(proxy.port, stop.clone())).collect();
    let victim = cluster.master_for_slot(16383);
    cluster.kill(victim);
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let owner = std::panic::catch_unwind(|| cluster.master_for_slot(16383)).ok();
        if owner.is_some_and(|o| o != victim) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster never promoted a replica"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "kill -9: replica promoted {:?} after the kill",
        started.elapsed()
    );
    readable_within_a_second(&cluster, proxy.port, &keys, "kill -9");
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let (done, errors) = reader.join().expect("reader thread");
        let first = errors.first().map_or("", String::as_str);
        eprintln!(
            "kill -9: {done} reads, {} errors (first: {first})",
            errors.len()
        );
    }
}

#[test]
fn readonly_gives_one_client_replica_reads() {
    let cluster = start_cluster();
    let proxy = Proxy::start(&cluster, &[]);
    write_keys(&proxy, &cluster);
    let masters = cluster.master_ports();
    let replicas = replica_ports(&cluster);
    let total = |ports: &[u16]| -> u64 { ports.iter().map(|&p| command_calls(p, "get")).sum() };
    // The pool reads masters; a plain client does.
    let mut plain = proxy.conn();
    let before = (total(&masters), total(&replicas));
    read_keys(&mut plain);
    assert_eq!(total(&replicas), before.1, "a plain client reads masters");
    assert_eq!(total(&masters), before.0 + KEYS as u64);
    // READONLY: that client's reads go to replicas once they are in rotation.
    let mut readonly = proxy.conn();
    assert_eq!(readonly.cmd_str("READONLY"), Value::ok());
    assert!(readonly.cmd_str("CLIENT INFO").text().contains(" flags=r "));
    let _ = readonly.cmd_str("GET rr:0");
    wait_in_rotation(&proxy, 3);
    let before = (total(&masters), total(&replicas));
    read_keys(&mut readonly);
    assert_eq!(
        total(&masters),
        before.0,
        "a READONLY client reads replicas"
    );
    assert_eq!(total(&replicas), before.1 + KEYS as u64);
    // Writes still go to the masters.
    assert_eq!(readonly.cmd_str("SET rr:0 0"), Value::ok());
    assert!(replicas.iter().all(|&r| moved_replies(r) == 0));
    // Meanwhile the plain client still reads masters.
    let before = total(&replicas);
    read_keys(&mut plain);
    assert_eq!(total(&replicas), before);
    // READWRITE ends it; so does RESET.
    assert_eq!(readonly.cmd_str("READWRITE"), Value::ok());
    assert!(readonly.cmd_str("CLIENT INFO").text().contains(" flags=N "));
    let before = total(&replicas);
    read_keys(&mut readonly);
    assert_eq!(total(&replicas), before, "READWRITE reads masters again");
    assert_eq!(readonly.cmd_str("READONLY"), Value::ok());
    assert_eq!(readonly.cmd_str("RESET"), Value::Simple("RESET".into()));
    read_keys(&mut readonly);
    assert_eq!(total(&replicas), before, "RESET reads masters again");
}

#[test]
fn replica_only_and_any_policies() {
    let mut cluster = start_cluster();
    let proxy = Proxy::start(&cluster, &["--read-from", "replica"]);
    wait_in_rotation(&proxy, 3);
    write_keys(&proxy, &cluster);
    let masters = cluster.master_ports();
    let before: u64 = masters.iter().map(|&p| command_calls(p, "get")).sum();
    read_keys(&mut proxy.conn());
    let after: u64 = masters.iter().map(|&p| command_calls(p, "get")).sum();
    assert_eq!(after, before, "replica reads replicas only");
    // Without a replica in rotation, the master's slots answer an error that names them.
    let master = cluster.master_for_slot(0);
    let victim = replica_of(&cluster, master);
    cluster.kill(victim);
    let mut conn = proxy.conn();
    let probe = (0..)
        .map(key)
        .find(|k| cluster.master_for_slot(slot_of(k)) == master);
    let probe = probe.expect("a key of that master");
    wait_until("reads of that master refused", SETTLE, || {
        conn.cmd(&[b"GET", probe.as_bytes()]).is_error()
    });
    let Value::Error(text) = conn.cmd(&[b"GET", probe.as_bytes()]) else {
        panic!("not an error");
    };
    let (first, last) = slot_range(master, slot_of(&probe));
    assert_eq!(
        text,
        format!(
            "CLUSTERDOWN percore: no healthy replica for slots {first}-{last} (master \
             127.0.0.1:{master}); read_from replica reads replicas only"
        )
    );
    // The other masters' keys are read from their replicas still.
    let other = (0..)
        .map(key)
        .find(|k| cluster.master_for_slot(slot_of(k)) != master);
    let other = other.expect("a key of another master");
    assert!(!conn.cmd(&[b"GET", other.as_bytes()]).is_error());
    drop(proxy);

    // any: the master and its replica in turn.
    let proxy = Proxy::start(&cluster, &["--read-from", "any"]);
    let master = cluster.master_for_slot(slot_of(&other));
    let replica = replica_of(&cluster, master);
    wait_until("the replica in rotation", SETTLE, || {
        replica_line(&proxy, replica).contains("cores_in_rotation=2,")
    });
    let mut conn = proxy.conn();
    let (m, r) = (command_calls(master, "get"), command_calls(replica, "get"));
    let gets: Vec<Vec<Vec<u8>>> = (0..100)
        .map(|_| vec![b"GET".to_vec(), other.clone().into_bytes()])
        .collect();
    assert!(conn.pipeline(&gets).iter().all(|reply| !reply.is_error()));
    let (m, r) = (
        command_calls(master, "get") - m,
        command_calls(replica, "get") - r,
    );
    assert_eq!(m + r, 100);
    assert!(
        (40..=60).contains(&m),
        "the master read {m} of 100, its replica {r}"
    );
}

/// The run of slots around `slot` that the master on `port` serves, from CLUSTER SLOTS.
fn slot_range(port: u16, slot: u16) -> (i64, i64) {
    let Value::Array(Some(ranges)) = Conn::connect(port).cmd_str("CLUSTER SLOTS") else {
        panic!("CLUSTER SLOTS");
    };
    let bounds = ranges.iter().filter_map(|range| match range {
        Value::Array(Some(fields)) => Some((fields[0].as_int()?, fields[1].as_int()?)),
        _ => None,
    });
    let mut bounds: Vec<(i64, i64)> = bounds.collect();
    bounds.sort_unstable();
    let at = bounds
        .iter()
        .position(|&(first, last)| first <= slot as i64 && slot as i64 <= last)
        .expect("slot served");
    // A cluster made by redis-cli gives each master one range, which is the proxy's run.
    bounds[at]
}

/// MOVED redirects the proxy followed, over its cores (PROXY INFO's `moved=`).
fn moved(proxy: &Proxy) -> u64 {
    let info = proxy.conn().cmd_str("PROXY INFO").text();
    let counts = info
        .lines()
        .filter(|l| l.starts_with("core"))
        .filter_map(|l| {
            l.split("moved=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        });
    counts.sum()
}

#[test]
fn a_moved_from_a_replica_is_followed() {
    let mut cluster = start_cluster();
    // No periodic refresh: the proxy learns of the move only from the replica's MOVED.
    let args = ["--read-from", "replica", "--refresh-interval", "1h"];
    let proxy = Proxy::start(&cluster, &args);
    wait_in_rotation(&proxy, 3);
    let key = "moved:key";
    assert_eq!(
        proxy.conn().cmd_str(&format!("SET {key} here")),
        Value::ok()
    );
    let slot = slot_of(key);
    let from = cluster.master_for_slot(slot);
    let to = *cluster.master_ports().iter().find(|&&p| p != from).unwrap();
    let replica = replica_of(&cluster, from);
    let replica_get = |port: u16| {
        let mut conn = Conn::connect(port);
        assert_eq!(conn.cmd_str("READONLY"), Value::ok());
        conn.cmd_str(&format!("GET {key}"))
    };
    wait_until("the replica to have the key", SETTLE, || {
        replica_get(replica) == Value::bulk("here")
    });
    assert_eq!(
        proxy.conn().cmd_str(&format!("GET {key}")),
        Value::bulk("here")
    );
    cluster.move_slot(slot, from, to);
    wait_until(
        "the replica to redirect the slot",
        SETTLE,
        || matches!(replica_get(replica), Value::Error(e) if e.starts_with("MOVED")),
    );
    let before = moved(&proxy);
    let gets_on_to = command_calls(to, "get");
    // Through the proxy, the read still finds the key: the replica's MOVED is followed to
    // the slot's new master, as any MOVED is, and counted.
    assert_eq!(
        proxy.conn().cmd_str(&format!("GET {key}")),
        Value::bulk("here")
    );
    assert!(moved(&proxy) > before, "the MOVED was followed");
    assert!(
        command_calls(to, "get") > gets_on_to,
        "the new master answered"
    );
}
