//! Pub/sub through percore against a real cluster, in RESP2 and RESP3: confirmations and
//! messages byte for byte as a node sends them (a reference client subscribes on a node
//! directly), fan-out exactly once and in order across cores, patterns, keyspace
//! notifications from every master, sharded channels that follow their slot, a subscriber
//! that never reads, subscribers coming and going, a subscription connection killed on the
//! node, a master failing over, and the counts of PUBLISH, PUBSUB and INFO.

mod common;

use std::time::Duration;

use common::{key_on_each_master, slot_of, Conn, Proxy, RedisCluster, Value};

/// How long a test waits to be sure nothing more arrives.
const QUIET: Duration = Duration::from_millis(300);

/// Sends a command and returns the exact bytes of its reply.
fn raw(conn: &mut Conn, line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    conn.send_raw(&common::encode(&args));
    conn.read_raw_reply()
}

/// Sends a command whose reply is several frames (one per name) and returns them all.
fn raw_frames(conn: &mut Conn, line: &str, frames: usize) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    conn.send_raw(&common::encode(&args));
    (0..frames).flat_map(|_| conn.read_raw_reply()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A cluster of three masters and percore in front of it.
fn setup(extra: &[&str]) -> (RedisCluster, Proxy) {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, extra);
    (cluster, proxy)
}

/// Publishes through a fresh percore connection; returns the count of receivers.
fn publish(proxy: &Proxy, channel: &str, message: &str) -> i64 {
    let mut conn = proxy.conn();
    let reply = conn.cmd(&[b"PUBLISH", channel.as_bytes(), message.as_bytes()]);
    reply
        .as_int()
        .unwrap_or_else(|| panic!("PUBLISH: {reply:?}"))
}

#[test]
fn confirmations_and_messages_are_a_nodes_resp2() {
    let (cluster, proxy) = setup(&[]);
    // The reference client is on the master of the sharded channel's slot, where a node
    // accepts its SSUBSCRIBE.
    let shard_channel = "{s}1";
    let node = cluster.master_for_slot(slot_of(shard_channel));
    let mut via = proxy.conn();
    let mut direct = Conn::connect(node);
    for conn in [&mut via, &mut direct] {
        assert_eq!(conn.cmd_str("CLIENT SETNAME x"), Value::ok());
    }
    let steps: &[(&str, usize)] = &[
        ("UNSUBSCRIBE", 1),
        ("PUNSUBSCRIBE", 1),
        ("SUNSUBSCRIBE", 1),
        ("UNSUBSCRIBE nope other", 2),
        ("SUBSCRIBE a b a", 3),
        ("PSUBSCRIBE p* q?", 2),
        ("SSUBSCRIBE {s}1 {s}2", 2),
        ("SSUBSCRIBE {s}1 {t}2", 1),
        ("GET {s}x", 1),
        ("CLIENT LIST", 1),
        ("MULTI", 1),
        ("HELLO 3", 1),
        ("NOPE x", 1),
        ("PING", 1),
        ("PING hi", 1),
        ("PING a b", 1),
        ("UNSUBSCRIBE a", 1),
        ("PUNSUBSCRIBE q?", 1),
        ("SUNSUBSCRIBE {s}2", 1),
    ];
    for (line, frames) in steps {
        let expected = raw_frames(&mut direct, line, *frames);
        let got = raw_frames(&mut via, line, *frames);
        assert_eq!(text(&got), text(&expected), "{line}");
    }
    // Messages: the same frames as the node's.
    // One at a time: messages of different channels take different paths through the
    // cluster (a PUBLISH crosses the cluster bus, an SPUBLISH does not).
    let mut publisher = proxy.conn();
    for line in [
        "PUBLISH b hello",
        "PUBLISH pq pattern",
        "SPUBLISH {s}1 sharded",
    ] {
        let count = publisher.cmd_str(line);
        if line.starts_with("SPUBLISH") {
            assert_eq!(
                count.as_int(),
                Some(2),
                "percore's subscriber and the node's"
            );
        }
        let expected = direct.read_raw_reply();
        assert_eq!(text(&via.read_raw_reply()), text(&expected), "{line}");
    }
    // Unsubscribing everything: one frame per name (in the node's order, which is its
    // dict's), then nothing left.
    for (line, frames) in [("UNSUBSCRIBE", 1), ("PUNSUBSCRIBE", 1), ("SUNSUBSCRIBE", 1)] {
        let expected = raw_frames(&mut direct, line, frames);
        assert_eq!(text(&raw_frames(&mut via, line, frames)), text(&expected));
    }
    for line in ["UNSUBSCRIBE", "GET {s}x", "PING"] {
        let expected = raw(&mut direct, line);
        assert_eq!(text(&raw(&mut via, line)), text(&expected), "{line}");
    }
    assert_eq!(via.try_read_raw_reply(QUIET), None);
}

#[test]
fn confirmations_and_messages_are_a_nodes_resp3() {
    let (cluster, proxy) = setup(&[]);
    let node = cluster.master_for_slot(slot_of("{s}1"));
    let mut via = proxy.conn();
    let mut direct = Conn::connect(node);
    for conn in [&mut via, &mut direct] {
        assert!(!conn.cmd_str("HELLO 3").is_error());
    }
    let steps: &[(&str, usize)] = &[
        ("UNSUBSCRIBE", 1),
        ("SUBSCRIBE a", 1),
        ("PSUBSCRIBE p*", 1),
        ("SSUBSCRIBE {s}1", 1),
        // RESP3 clients go on using every command while subscribed.
        ("GET {s}none", 1),
        ("PING", 1),
        ("CLIENT REPLY OFF", 0),
        // Confirmations are pushes: sent even with replies off.
        ("SUBSCRIBE b", 1),
        ("UNSUBSCRIBE b", 1),
        ("CLIENT REPLY ON", 1),
    ];
    for (line, frames) in steps {
        let expected = raw_frames(&mut direct, line, *frames);
        let got = raw_frames(&mut via, line, *frames);
        assert_eq!(text(&got), text(&expected), "{line}");
    }
    // One at a time: messages of different channels take different paths through the
    // cluster (a PUBLISH crosses the cluster bus, an SPUBLISH does not), for a node's own
    // subscribers too.
    let mut publisher = proxy.conn();
    for line in ["PUBLISH a m1", "PUBLISH pz m2", "SPUBLISH {s}1 m3"] {
        assert!(!publisher.cmd_str(line).is_error(), "{line}");
        let expected = direct.read_raw_reply();
        assert!(expected.starts_with(b">"), "{}", text(&expected));
        assert_eq!(text(&via.read_raw_reply()), text(&expected), "{line}");
    }
    // A publish on the subscribed connection itself: the message and the reply. A node sends
    // the message first; through percore the reply comes first, since the message comes back
    // through the cluster only after the node has answered.
    // (The counts depend on which node runs the PUBLISH: a node counts its own subscribers.)
    let push = b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\nself\r\n";
    direct.send_raw(&common::encode(&[b"PUBLISH", b"a", b"self"]));
    assert_eq!(text(&direct.read_raw_reply()), text(push));
    assert!(direct.read_value().as_int().is_some());
    assert_eq!(
        text(&via.read_raw_reply()),
        text(push),
        "the node's publish reaches percore's"
    );
    via.send_raw(&common::encode(&[b"PUBLISH", b"a", b"self"]));
    assert_eq!(
        text(&direct.read_raw_reply()),
        text(push),
        "and percore's the node's"
    );
    assert!(via.read_value().as_int().is_some());
    assert_eq!(text(&via.read_raw_reply()), text(push));
    for line in ["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "UNSUBSCRIBE"] {
        let expected = raw(&mut direct, line);
        assert_eq!(text(&raw(&mut via, line)), text(&expected), "{line}");
    }
}

/// Subscribes `conn` (RESP3 if `resp3`) to `channel` and checks the confirmation.
fn subscribed(mut conn: Conn, resp3: bool, command: &str, name: &str) -> Conn {
    if resp3 {
        assert!(!conn.cmd_str("HELLO 3").is_error());
    }
    let reply = conn.cmd(&[command.as_bytes(), name.as_bytes()]);
    let Value::Array(Some(items)) = reply else {
        panic!("{command} {name}: {reply:?}");
    };
    assert_eq!(items[1], Value::bulk(name), "{command} confirmation");
    conn
}

/// PROXY INFO, as text.
fn proxy_info(proxy: &Proxy) -> String {
    proxy.conn().cmd_str("PROXY INFO").text()
}

/// A field of PROXY INFO's pubsub section (`subscribers`, `pubsub_gaps`, ...).
fn info_field(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {info}"))
}

/// A field of each core's `pubsub_core<N>:` line (`subscribers`, `links`, ...).
fn per_core(info: &str, field: &str) -> Vec<u64> {
    info.lines()
        .filter(|line| line.starts_with("pubsub_core"))
        .filter_map(|line| {
            line.split([':', ','])
                .find_map(|part| part.strip_prefix(&format!("{field}=")))?
                .parse()
                .ok()
        })
        .collect()
}

/// The elements of a message frame as text (RESP2 array or RESP3 push alike).
fn message(conn: &mut Conn) -> Vec<String> {
    match conn.read_value() {
        Value::Array(Some(items)) => items.iter().map(Value::text).collect(),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_thousand_messages_reach_twenty_subscribers_once_and_in_order() {
    const MESSAGES: usize = 1000;
    let (cluster, proxy) = setup(&[]);
    // 19 through percore, RESP2 and RESP3 alternately; the kernel spreads them over both
    // cores. The 20th on the node that runs percore's PUBLISH (the master of slot 0), so the
    // count of receivers is exact.
    let mut subscribers: Vec<Conn> = (0..19)
        .map(|i| subscribed(proxy.conn(), i % 2 == 1, "SUBSCRIBE", "fan"))
        .collect();
    let spread = per_core(&proxy_info(&proxy), "subscribers");
    assert!(
        spread.len() == 2 && spread.iter().all(|&n| n > 0),
        "subscribers on both cores: {spread:?}"
    );
    let direct = Conn::connect(cluster.master_for_slot(0));
    subscribers.push(subscribed(direct, false, "SUBSCRIBE", "fan"));

    let mut publisher = proxy.conn();
    let commands: Vec<Vec<Vec<u8>>> = (0..MESSAGES)
        .map(|i| {
            vec![
                b"PUBLISH".to_vec(),
                b"fan".to_vec(),
                format!("m{i}").into_bytes(),
            ]
        })
        .collect();
    for reply in publisher.pipeline(&commands) {
        assert_eq!(reply, Value::Int(20), "every subscriber counted once");
    }
    for (index, conn) in subscribers.iter_mut().enumerate() {
        for i in 0..MESSAGES {
            let expected = ["message".to_string(), "fan".into(), format!("m{i}")];
            assert_eq!(message(conn), expected, "subscriber {index}");
        }
        assert_eq!(conn.try_read_raw_reply(QUIET), None, "subscriber {index}");
    }
}

#[test]
fn patterns_deliver_each_message_once_even_when_held_on_every_master() {
    let (_cluster, proxy) = setup(&[]);
    for resp3 in [false, true] {
        // `*` can match keyspace notifications, so it is subscribed on every master; a
        // PUBLISH still arrives once, from the core's primary.
        let mut conn = subscribed(proxy.conn(), resp3, "PSUBSCRIBE", "*");
        assert!(!conn.cmd_str("PSUBSCRIBE news.*").is_error());
        assert!(!conn.cmd_str("SUBSCRIBE news.a").is_error());
        assert_eq!(publish(&proxy, "news.a", "hello"), 3);
        let mut got: Vec<Vec<String>> = (0..3).map(|_| message(&mut conn)).collect();
        got.sort();
        let expected = vec![
            vec!["message".to_string(), "news.a".into(), "hello".into()],
            vec![
                "pmessage".into(),
                "*".into(),
                "news.a".into(),
                "hello".into(),
            ],
            vec![
                "pmessage".into(),
                "news.*".into(),
                "news.a".into(),
                "hello".into(),
            ],
        ];
        assert_eq!(got, expected, "resp3: {resp3}");
        assert_eq!(publish(&proxy, "other", "x"), 1);
        assert_eq!(message(&mut conn), ["pmessage", "*", "other", "x"]);
        assert_eq!(
            conn.try_read_raw_reply(QUIET),
            None,
            "no copy from another master"
        );
        assert!(!conn.cmd_str("PUNSUBSCRIBE *").is_error());
        assert_eq!(publish(&proxy, "other", "y"), 0);
    }
}

#[test]
fn keyspace_notifications_come_from_every_master() {
    let (cluster, proxy) = setup(&[]);
    let mut admin = proxy.conn();
    assert_eq!(
        admin.cmd_str("CONFIG SET notify-keyspace-events KEA"),
        Value::ok()
    );
    let mut space = subscribed(proxy.conn(), false, "PSUBSCRIBE", "__keyspace@0__:ks*");
    let mut event = subscribed(proxy.conn(), true, "SUBSCRIBE", "__keyevent@0__:set");
    let mut every = subscribed(proxy.conn(), false, "PSUBSCRIBE", "*");
    let keys: Vec<String> = key_on_each_master(&cluster, "ks")
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    assert_eq!(keys.len(), 3, "a key on each master");
    for key in &keys {
        assert_eq!(admin.cmd(&[b"SET", key.as_bytes(), b"v"]), Value::ok());
    }
    let mut got_space: Vec<Vec<String>> = keys.iter().map(|_| message(&mut space)).collect();
    let mut got_event: Vec<Vec<String>> = keys.iter().map(|_| message(&mut event)).collect();
    let mut got_every: Vec<Vec<String>> =
        (0..keys.len() * 2).map(|_| message(&mut every)).collect();
    got_space.sort();
    got_event.sort();
    got_every.sort();
    let mut want_space = Vec::new();
    let mut want_event = Vec::new();
    let mut want_every = Vec::new();
    for key in &keys {
        let channel = format!("__keyspace@0__:{key}");
        want_space.push(vec![
            "pmessage".to_string(),
            "__keyspace@0__:ks*".into(),
            channel.clone(),
            "set".into(),
        ]);
        want_event.push(vec![
            "message".to_string(),
            "__keyevent@0__:set".into(),
            key.clone(),
        ]);
        want_every.push(vec![
            "pmessage".to_string(),
            "*".into(),
            channel,
            "set".into(),
        ]);
        want_every.push(vec![
            "pmessage".to_string(),
            "*".into(),
            "__keyevent@0__:set".into(),
            key.clone(),
        ]);
    }
    want_space.sort();
    want_event.sort();
    want_every.sort();
    assert_eq!(got_space, want_space);
    assert_eq!(got_event, want_event);
    assert_eq!(got_every, want_every);
    for conn in [&mut space, &mut event, &mut every] {
        assert_eq!(conn.try_read_raw_reply(QUIET), None, "each event once");
    }
}

#[test]
fn sharded_channels_follow_their_slot_while_it_moves() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let (mut cluster, proxy) = setup(&[]);
    let channel = "{sh}c";
    let slot = slot_of(channel);
    let from = cluster.master_for_slot(slot);
    let to = *cluster.master_ports().iter().find(|&&p| p != from).unwrap();
    let mut subscribers = [
        subscribed(proxy.conn(), false, "SSUBSCRIBE", channel),
        subscribed(proxy.conn(), true, "SSUBSCRIBE", channel),
    ];
    // Keys in the slot, so the move has something to migrate.
    let mut writer = proxy.conn();
    for i in 0..20 {
        let key = format!("{{sh}}k{i}");
        assert_eq!(writer.cmd(&[b"SET", key.as_bytes(), b"v"]), Value::ok());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicUsize::new(0));
    let port = proxy.port;
    let publisher = {
        let (stop, published) = (stop.clone(), published.clone());
        std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let message = format!("m{i}");
                let reply = conn.cmd(&[b"SPUBLISH", b"{sh}c", message.as_bytes()]);
                assert!(
                    reply.as_int().is_some(),
                    "SPUBLISH during the move: {reply:?}"
                );
                i += 1;
                published.store(i, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    common::wait_until("messages before the move", Duration::from_secs(5), || {
        published.load(Ordering::SeqCst) >= 50
    });
    let before = published.load(Ordering::SeqCst);
    cluster.move_slot(slot, from, to);
    let moved = published.load(Ordering::SeqCst);
    // Once the hub has followed the slot, everything published reaches the subscribers.
    common::wait_until(
        "the hub to follow the slot",
        Duration::from_secs(10),
        || {
            let mut conn = proxy.conn();
            conn.cmd_str("PUBSUB SHARDNUMSUB {sh}c")
                == Value::Array(Some(vec![Value::bulk(channel), Value::Int(2)]))
                && cluster.master_for_slot(slot) == to
        },
    );
    let settled = published.load(Ordering::SeqCst);
    common::wait_until("messages after the move", Duration::from_secs(5), || {
        published.load(Ordering::SeqCst) >= settled + 100
    });
    stop.store(true, Ordering::SeqCst);
    publisher.join().unwrap();
    let total = published.load(Ordering::SeqCst);

    for (index, conn) in subscribers.iter_mut().enumerate() {
        let mut seen = Vec::new();
        while let Some(raw) = conn.try_read_raw_reply(Duration::from_secs(1)) {
            let text = text(&raw);
            assert!(text.contains("smessage"), "subscriber {index} got {text:?}");
            let number: usize = text
                .rsplit("$")
                .next()
                .and_then(|tail| tail.split("\r\n").nth(1))
                .and_then(|m| m.strip_prefix('m'))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("message {text:?}"));
            seen.push(number);
        }
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "in order, once: {seen:?}"
        );
        for i in (0..before).chain(settled + 1..total) {
            assert!(
                seen.contains(&i),
                "subscriber {index} lost m{i} (moved at {moved})"
            );
        }
        let lost = total - seen.len();
        eprintln!(
            "subscriber {index}: {} of {total} received, {lost} lost while the slot moved",
            seen.len()
        );
    }
    assert!(info_field(&proxy_info(&proxy), "pubsub_gaps") >= 1);
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_and_delays_no_one() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const MESSAGES: usize = 2000;
    const BATCH: usize = 50;
    let (_cluster, proxy) = setup(&[
        "--pubsub-output-hard-limit",
        "1048576",
        "--pubsub-output-soft-limit",
        "0",
    ]);
    let mut slow = subscribed(proxy.conn(), false, "SUBSCRIBE", "big");
    let progress: Vec<Arc<AtomicUsize>> = (0..4).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let readers: Vec<_> = progress
        .iter()
        .enumerate()
        .map(|(index, read)| {
            let mut conn = subscribed(proxy.conn(), index % 2 == 1, "SUBSCRIBE", "big");
            let read = read.clone();
            std::thread::spawn(move || {
                for i in 0..MESSAGES {
                    let got = message(&mut conn);
                    assert_eq!(got[1], "big");
                    assert!(got[2].starts_with(&format!("{i}:")), "message {i} in order");
                    read.store(i + 1, Ordering::SeqCst);
                }
                conn
            })
        })
        .collect();
    // 16 MB in all: far past the slow subscriber's 1 MiB and what the kernel buffers for it,
    // while the readers are never more than a batch (400 KB) behind.
    let payload = "x".repeat(8 * 1024);
    let mut publisher = proxy.conn();
    let mut getter = proxy.conn();
    let mut slowest_get = Duration::ZERO;
    for batch in 0..MESSAGES / BATCH {
        let commands: Vec<Vec<Vec<u8>>> = (batch * BATCH..(batch + 1) * BATCH)
            .map(|i| {
                let message = format!("{i}:{payload}");
                vec![b"PUBLISH".to_vec(), b"big".to_vec(), message.into_bytes()]
            })
            .collect();
        for reply in publisher.pipeline(&commands) {
            assert!(reply.as_int().is_some(), "{reply:?}");
        }
        let started = std::time::Instant::now();
        assert_eq!(getter.cmd_str("GET percore:none"), Value::Bulk(None));
        slowest_get = slowest_get.max(started.elapsed());
        let sent = (batch + 1) * BATCH;
        common::wait_until("the readers to catch up", Duration::from_secs(10), || {
            progress
                .iter()
                .all(|read| read.load(Ordering::SeqCst) >= sent)
        });
    }
    let _fast: Vec<Conn> = readers
        .into_iter()
        .map(|reader| {
            reader
                .join()
                .expect("every fast subscriber got every message in order")
        })
        .collect();
    assert!(
        slowest_get < Duration::from_secs(1),
        "a GET took {slowest_get:?}"
    );
    let info = proxy_info(&proxy);
    assert_eq!(info_field(&info, "pubsub_cut_off"), 1, "{info}");
    // The slow one gets what was written before it was cut off, then the end.
    slow.expect_closed();
    assert_eq!(info_field(&proxy_info(&proxy), "subscribers"), 4);
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

#[test]
fn fds_and_memory_return_to_baseline_after_two_thousand_subscribers() {
    const SUBSCRIBERS: usize = 2000;
    let (_cluster, proxy) = setup(&[]);
    let pid = proxy.pid();
    // Returns the fds and RSS while every subscriber is there.
    let round = |count: usize| {
        let mut conns: Vec<Conn> = (0..count)
            .map(|i| {
                let mut conn = subscribed(
                    proxy.conn(),
                    i % 2 == 1,
                    "SUBSCRIBE",
                    &format!("c{}", i % 50),
                );
                assert!(!conn.cmd_str(&format!("PSUBSCRIBE p{i}.*")).is_error());
                assert!(!conn
                    .cmd(&[b"SSUBSCRIBE", format!("s{i}").as_bytes()])
                    .is_error());
                conn
            })
            .collect();
        for c in 0..50 {
            publish(&proxy, &format!("c{c}"), "hello");
        }
        for conn in &mut conns {
            assert_eq!(message(conn)[2], "hello");
        }
        let peak = (open_fds(pid), common::rss_kib(pid));
        drop(conns);
        common::wait_until("every subscriber gone", Duration::from_secs(20), || {
            let info = proxy_info(&proxy);
            info_field(&info, "subscribers") == 0
                && per_core(&info, "links").iter().all(|&n| n == 0)
        });
        peak
    };
    // A first round warms up what stays allocated (buffers, tables' capacity).
    round(200);
    let (fds, rss) = (open_fds(pid), common::rss_kib(pid));
    let (peak_fds, peak_rss) = round(SUBSCRIBERS);
    assert!(
        peak_fds > fds + SUBSCRIBERS,
        "{peak_fds} fds with every subscriber there"
    );
    common::wait_until(
        "file descriptors back to baseline",
        Duration::from_secs(10),
        || open_fds(pid) <= fds,
    );
    // glibc hands freed memory back every few seconds (percore trims it).
    let allowed = rss + rss / 10 + 2048;
    common::wait_until("memory back to baseline", Duration::from_secs(20), || {
        common::rss_kib(pid) <= allowed
    });
    eprintln!(
        "fds {fds} -> {peak_fds} -> {}, RSS {rss} KiB -> {peak_rss} KiB -> {} KiB with and \
         after {SUBSCRIBERS} subscribers",
        open_fds(pid),
        common::rss_kib(pid)
    );
}

/// Kills every percore subscription connection on every master (CLIENT KILL on the node);
/// returns how many there were.
fn kill_links(cluster: &RedisCluster) -> usize {
    let mut killed = 0;
    for port in cluster.master_ports() {
        let list = Conn::connect(port).cmd_str("CLIENT LIST").text();
        for line in list.lines().filter(|l| l.contains("name=percore-pubsub")) {
            let id = line.split(' ').find_map(|f| f.strip_prefix("id=")).unwrap();
            let reply = Conn::connect(port).cmd_str(&format!("CLIENT KILL ID {id}"));
            assert_eq!(reply, Value::Int(1));
            killed += 1;
        }
    }
    killed
}

#[test]
fn a_killed_subscription_connection_is_remade_and_the_gap_counted() {
    let (cluster, proxy) = setup(&[]);
    let mut subscribers = [
        subscribed(proxy.conn(), false, "SUBSCRIBE", "live"),
        subscribed(proxy.conn(), true, "SUBSCRIBE", "live"),
        subscribed(proxy.conn(), false, "SSUBSCRIBE", "live"),
    ];
    assert!(kill_links(&cluster) >= 1);
    // Published until it arrives: messages in the gap are lost, then delivery resumes.
    let mut publisher = proxy.conn();
    let mut resumed = [false; 3];
    for attempt in 0..200 {
        let message = format!("probe{attempt}");
        publisher.cmd(&[b"PUBLISH", b"live", message.as_bytes()]);
        publisher.cmd(&[b"SPUBLISH", b"live", message.as_bytes()]);
        for (conn, resumed) in subscribers.iter_mut().zip(&mut resumed) {
            *resumed |= conn.try_read_raw_reply(Duration::from_millis(20)).is_some();
        }
        if resumed.iter().all(|&r| r) {
            break;
        }
    }
    assert_eq!(resumed, [true; 3], "every subscriber receives again");
    for conn in &mut subscribers {
        while conn.try_read_raw_reply(QUIET).is_some() {}
    }
    for i in 0..100 {
        let message = format!("after{i}");
        publisher.cmd(&[b"PUBLISH", b"live", message.as_bytes()]);
        publisher.cmd(&[b"SPUBLISH", b"live", message.as_bytes()]);
    }
    for conn in &mut subscribers {
        for i in 0..100 {
            assert_eq!(message(conn)[2], format!("after{i}"));
        }
        assert_eq!(conn.try_read_raw_reply(QUIET), None);
    }
    let info = proxy_info(&proxy);
    assert!(info_field(&info, "pubsub_gaps") >= 1, "{info}");
    assert!(
        proxy
            .log()
            .contains("messages published during the gap were not delivered"),
        "the gap is logged"
    );
}

#[test]
fn introspection_counts_percore_clients_and_the_nodes_own() {
    let (cluster, proxy) = setup(&[]);
    // Through percore: 3 on `ch` (over both cores, surely), patterns p1* twice and p2*, two
    // on a sharded channel. Directly on nodes: one more of each kind.
    let _percore: Vec<Conn> = (0..3)
        .map(|i| subscribed(proxy.conn(), i == 1, "SUBSCRIBE", "ch"))
        .chain([
            subscribed(proxy.conn(), false, "PSUBSCRIBE", "p1*"),
            subscribed(proxy.conn(), true, "PSUBSCRIBE", "p1*"),
            subscribed(proxy.conn(), false, "PSUBSCRIBE", "p2*"),
            subscribed(proxy.conn(), false, "SSUBSCRIBE", "{z}s"),
            subscribed(proxy.conn(), true, "SSUBSCRIBE", "{z}s"),
        ])
        .collect();
    let publish_node = cluster.master_for_slot(0);
    let _direct = [
        subscribed(Conn::connect(publish_node), false, "SUBSCRIBE", "ch"),
        subscribed(Conn::connect(publish_node), false, "PSUBSCRIBE", "d*"),
        subscribed(
            Conn::connect(cluster.master_for_slot(slot_of("{z}s"))),
            false,
            "SSUBSCRIBE",
            "{z}s",
        ),
    ];
    let mut conn = proxy.conn();
    let pairs = |items: &[(&str, i64)]| {
        Value::Array(Some(
            items
                .iter()
                .flat_map(|(name, count)| [Value::bulk(name), Value::Int(*count)])
                .collect(),
        ))
    };
    assert_eq!(
        conn.cmd_str("PUBSUB NUMSUB ch nope ch"),
        pairs(&[("ch", 4), ("nope", 0), ("ch", 4)])
    );
    assert_eq!(
        conn.cmd_str("PUBSUB SHARDNUMSUB {z}s"),
        pairs(&[("{z}s", 3)])
    );
    assert_eq!(conn.cmd_str("PUBSUB NUMPAT"), Value::Int(3));
    let names = |line: &str, conn: &mut Conn| {
        let Value::Array(Some(items)) = conn.cmd_str(line) else {
            panic!("{line}")
        };
        let mut names: Vec<String> = items.iter().map(Value::text).collect();
        names.sort();
        names
    };
    assert_eq!(names("PUBSUB CHANNELS", &mut conn), ["ch"]);
    assert_eq!(names("PUBSUB CHANNELS c?", &mut conn), ["ch"]);
    assert!(names("PUBSUB CHANNELS x*", &mut conn).is_empty());
    assert_eq!(names("PUBSUB SHARDCHANNELS", &mut conn), ["{z}s"]);
    assert_eq!(
        conn.cmd_str("PUBSUB CHANNELS a b"),
        Value::Error(
            "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
                .into()
        )
    );
    // PUBLISH counts the receivers, as a node that had them all would: 3 + 1 on `ch`.
    assert_eq!(publish(&proxy, "ch", "x"), 4);
    assert_eq!(publish(&proxy, "p1x", "x"), 2);
    assert_eq!(conn.cmd_str("SPUBLISH {z}s x"), Value::Int(3));
    let info = conn.cmd_str("INFO").text();
    for field in [
        "pubsub_channels:1",
        "pubsub_patterns:3",
        "pubsubshard_channels:1",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
    let list = conn.cmd_str("CLIENT LIST").text();
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("flags=P") && l.contains(" sub=1 psub=0 ssub=0"))
            .count(),
        3,
        "{list}"
    );
    assert_eq!(info_field(&proxy_info(&proxy), "subscribers"), 8);
    let pubsub = conn.cmd_str("CLIENT LIST TYPE pubsub").text();
    assert_eq!(pubsub.lines().count(), 8, "{pubsub}");
    let normal = conn.cmd_str("CLIENT LIST TYPE normal").text();
    assert!(!normal.contains("flags=P"), "{normal}");
}

#[test]
fn subscriptions_follow_a_master_failover() {
    let mut cluster = RedisCluster::start(3, 1);
    let proxy = Proxy::start(&cluster, &[]);
    let mut classic = subscribed(proxy.conn(), false, "SUBSCRIBE", "fo");
    // The master holding a core's classic channels is the one to fail; the sharded channel is
    // chosen on the same master.
    let victim = cluster
        .master_ports()
        .into_iter()
        .find(|&port| {
            let list = Conn::connect(port).cmd_str("CLIENT LIST").text();
            list.lines()
                .any(|l| l.contains("name=percore-pubsub") && l.contains(" sub=1 "))
        })
        .expect("a master holds the classic channel");
    let (_, key) = key_on_each_master(&cluster, "fo")
        .into_iter()
        .find(|(port, _)| *port == victim)
        .unwrap();
    let sharded_name = format!("{{{key}}}s");
    let mut sharded = subscribed(proxy.conn(), true, "SSUBSCRIBE", &sharded_name);
    cluster.kill(victim);
    cluster.wait_ok();
    let mut publisher = proxy.conn();
    let mut resumed = [false; 2];
    for attempt in 0..400 {
        let message = format!("probe{attempt}");
        publisher.cmd(&[b"PUBLISH", b"fo", message.as_bytes()]);
        publisher.cmd(&[b"SPUBLISH", sharded_name.as_bytes(), message.as_bytes()]);
        for (conn, resumed) in [&mut classic, &mut sharded].into_iter().zip(&mut resumed) {
            *resumed |= conn.try_read_raw_reply(Duration::from_millis(25)).is_some();
        }
        if resumed == [true; 2] {
            break;
        }
    }
    assert_eq!(
        resumed, [true; 2],
        "both subscribers receive again after the failover"
    );
    for conn in [&mut classic, &mut sharded] {
        while conn.try_read_raw_reply(QUIET).is_some() {}
    }
    for i in 0..50 {
        let message = format!("after{i}");
        publisher.cmd(&[b"PUBLISH", b"fo", message.as_bytes()]);
        publisher.cmd(&[b"SPUBLISH", sharded_name.as_bytes(), message.as_bytes()]);
    }
    for conn in [&mut classic, &mut sharded] {
        for i in 0..50 {
            assert_eq!(message(conn)[2], format!("after{i}"));
        }
        assert_eq!(conn.try_read_raw_reply(QUIET), None);
    }
    assert!(info_field(&proxy_info(&proxy), "pubsub_gaps") >= 1);
}

#[test]
fn reset_ends_every_subscription_without_frames() {
    let (_cluster, proxy) = setup(&[]);
    for resp3 in [false, true] {
        let mut conn = subscribed(proxy.conn(), resp3, "SUBSCRIBE", "r");
        assert!(!conn.cmd_str("PSUBSCRIBE r*").is_error());
        assert!(!conn.cmd_str("SSUBSCRIBE rs").is_error());
        assert_eq!(publish(&proxy, "r", "before"), 2);
        for _ in 0..2 {
            assert!(message(&mut conn)[0].ends_with("message"));
        }
        assert_eq!(raw(&mut conn, "RESET"), b"+RESET\r\n");
        // Back to a new connection's state: RESP2, not subscribed.
        assert_eq!(raw(&mut conn, "GET {r}none"), b"$-1\r\n");
        assert_eq!(publish(&proxy, "r", "after"), 0);
        assert_eq!(proxy.conn().cmd_str("SPUBLISH rs after"), Value::Int(0));
        assert_eq!(conn.try_read_raw_reply(QUIET), None);
        assert_eq!(info_field(&proxy_info(&proxy), "subscribers"), 0);
    }
}

#[test]
fn subscription_connections_log_in_to_a_password_protected_cluster() {
    let cluster = RedisCluster::start(3, 0);
    for node in &cluster.nodes {
        assert_eq!(node.cmd("CONFIG SET requirepass pw"), Value::ok());
    }
    let proxy = Proxy::start_with_seeds(&cluster.seeds(), &["--backend-password", "pw"]);
    common::wait_until("percore to serve", Duration::from_secs(20), || {
        common::try_cmd(proxy.port, "SET ready 1") == Some(Value::ok())
    });
    let mut classic = subscribed(proxy.conn(), false, "SUBSCRIBE", "locked");
    let mut sharded = subscribed(proxy.conn(), true, "SSUBSCRIBE", "locked");
    let mut publisher = proxy.conn();
    assert_eq!(publisher.cmd_str("PUBLISH locked m"), Value::Int(1));
    assert_eq!(publisher.cmd_str("SPUBLISH locked m"), Value::Int(1));
    assert_eq!(message(&mut classic), ["message", "locked", "m"]);
    assert_eq!(message(&mut sharded), ["smessage", "locked", "m"]);
    assert!(!proxy.log().contains("refused percore's credentials"));
}
