//! Live resharding under load: clients INCR a thousand keys through the proxy and count the
//! acknowledged replies while 30% of the slots move between masters (with `redis-cli
//! --cluster reshard`, and one slot held half-migrated by hand so ASK happens). Afterwards
//! every key read directly from the cluster must equal its acknowledged count: nothing lost,
//! nothing applied twice, no client-visible error, and no read older than an acknowledged
//! write.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{slot_of, Conn, Proxy, RedisCluster, Value};

const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 250;
const PIPELINE: usize = 32;
/// Upper bound on the load phase, so the test always ends.
const MAX_LOAD: Duration = Duration::from_secs(120);

struct Outcome {
    acked: Vec<i64>,
    errors: Vec<String>,
    stale_reads: usize,
}

fn writer(port: u16, id: usize, stop: Arc<AtomicBool>) -> Outcome {
    let mut conn = Conn::connect(port);
    let keys: Vec<String> = (0..KEYS_PER_WRITER)
        .map(|i| format!("rs:{id}:{i}"))
        .collect();
    let mut outcome = Outcome {
        acked: vec![0; KEYS_PER_WRITER],
        errors: Vec::new(),
        stale_reads: 0,
    };
    let started = Instant::now();
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LOAD {
        let picks: Vec<usize> = (0..PIPELINE)
            .map(|j| (round * 7919 + j * 31) % KEYS_PER_WRITER)
            .collect();
        let commands: Vec<Vec<Vec<u8>>> = picks
            .iter()
            .map(|&k| vec![b"INCR".to_vec(), keys[k].as_bytes().to_vec()])
            .collect();
        for (&k, reply) in picks.iter().zip(conn.pipeline(&commands)) {
            match reply {
                Value::Int(n) => {
                    outcome.acked[k] += 1;
                    // Replies to one key come in order, so each must be its ack count.
                    if n < outcome.acked[k] {
                        outcome.stale_reads += 1;
                    }
                }
                other => outcome.errors.push(format!("{}: {other:?}", keys[k])),
            }
        }
        // A read must never be older than what was acknowledged.
        let k = round % KEYS_PER_WRITER;
        match conn.cmd(&[b"GET", keys[k].as_bytes()]) {
            Value::Bulk(Some(v)) => {
                let v: i64 = String::from_utf8_lossy(&v).parse().unwrap_or(-1);
                if v < outcome.acked[k] {
                    outcome.stale_reads += 1;
                }
            }
            Value::Bulk(None) if outcome.acked[k] == 0 => {}
            other => outcome.errors.push(format!("GET {}: {other:?}", keys[k])),
        }
        round += 1;
    }
    outcome
}

/// MSET of 20 keys across slots, then MGET of them: every value must be the round just
/// written. Returns (rounds, errors).
fn multi_key_writer(port: u16, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let mut conn = Conn::connect(port);
    let keys: Vec<String> = (0..20).map(|i| format!("mk:{i}")).collect();
    let mut errors = Vec::new();
    let mut round = 0;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LOAD {
        let value = round.to_string();
        let mut mset: Vec<&[u8]> = vec![b"MSET"];
        for key in &keys {
            mset.push(key.as_bytes());
            mset.push(value.as_bytes());
        }
        let reply = conn.cmd(&mset);
        if reply != Value::ok() {
            errors.push(format!("MSET: {reply:?}"));
        }
        let mut mget: Vec<&[u8]> = vec![b"MGET"];
        mget.extend(keys.iter().map(|k| k.as_bytes()));
        match conn.cmd(&mget) {
            Value::Array(Some(values)) if values.iter().all(|v| *v == Value::bulk(&value)) => {}
            other => errors.push(format!("MGET round {round}: {other:?}")),
        }
        round += 1;
    }
    (round, errors)
}

#[test]
fn resharding_under_load_loses_and_duplicates_nothing() {
    let mut cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--backend-timeout", "5s"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let stop = stop.clone();
            let port = proxy.port;
            std::thread::spawn(move || writer(port, id, stop))
        })
        .collect();
    let multi = {
        let stop = stop.clone();
        let port = proxy.port;
        std::thread::spawn(move || multi_key_writer(port, stop))
    };
    std::thread::sleep(Duration::from_millis(500));

    // One slot held half-migrated by hand, so requests for its moved keys need ASK.
    let held_key = "rs:0:1";
    let held_slot = slot_of(held_key);
    let from = cluster.master_for_slot(held_slot);
    let masters = cluster.master_ports();
    let to = *masters.iter().find(|&&p| p != from).unwrap();
    cluster.begin_migration(held_slot, from, to);
    cluster.migrate_key(held_key, from, to);
    std::thread::sleep(Duration::from_millis(500));
    cluster.move_slot(held_slot, from, to);

    // 30% of the slots move from one master to another with the cluster's own tool.
    let source = masters[0];
    let target = masters[1];
    let (source_id, target_id) = (cluster.node(source).id(), cluster.node(target).id());
    let output = Command::new("redis-cli")
        .args(["--cluster", "reshard", &format!("127.0.0.1:{source}")])
        .args(["--cluster-from", &source_id, "--cluster-to", &target_id])
        .args([
            "--cluster-slots",
            "4915",
            "--cluster-yes",
            "--cluster-pipeline",
            "100",
        ])
        .output()
        .expect("redis-cli reshard");
    assert!(
        output.status.success(),
        "reshard: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster.wait_ok();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);

    let outcomes: Vec<Outcome> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();
    let (multi_rounds, multi_errors) = multi.join().expect("multi-key writer");
    let (mut lost, mut duplicated, mut acked_total) = (0, 0, 0);
    for (id, outcome) in outcomes.iter().enumerate() {
        for (k, &acked) in outcome.acked.iter().enumerate() {
            let key = format!("rs:{id}:{k}");
            let owner = cluster.master_for_slot(slot_of(&key));
            let value = match Conn::connect(owner).cmd(&[b"GET", key.as_bytes()]) {
                Value::Bulk(Some(v)) => String::from_utf8_lossy(&v).parse::<i64>().unwrap(),
                Value::Bulk(None) => 0,
                other => panic!("direct GET {key}: {other:?}"),
            };
            lost += (acked - value).max(0);
            duplicated += (value - acked).max(0);
            acked_total += acked;
        }
    }
    let errors: Vec<&String> = outcomes.iter().flat_map(|o| &o.errors).collect();
    let stale: usize = outcomes.iter().map(|o| o.stale_reads).sum();
    let info = Conn::connect(proxy.port).cmd_str("PROXY INFO").text();
    eprintln!(
        "acknowledged INCRs {acked_total}, lost {lost}, duplicated {duplicated}, stale {stale}, \
         errors {}; multi-key rounds {multi_rounds}, errors {}\n{info}",
        errors.len(),
        multi_errors.len()
    );
    assert!(multi_rounds > 10, "the multi-key load ran");
    assert!(
        multi_errors.is_empty(),
        "multi-key errors: {:?}",
        &multi_errors[..multi_errors.len().min(5)]
    );
    assert!(acked_total > 1000, "the load ran: {acked_total}");
    assert_eq!(
        errors.len(),
        0,
        "client-visible errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert_eq!((lost, duplicated, stale), (0, 0, 0));
    assert!(info.contains("moved="), "{info}");
}
