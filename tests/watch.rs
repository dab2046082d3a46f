//! WATCH / UNWATCH / RESET through percore, in RESP2 and RESP3: a transaction after WATCH
//! applies when nothing changed and answers nil when another client changed a watched key,
//! as a node does; cross-slot watches are refused; UNWATCH, DISCARD, EXEC and a disconnect
//! give the dedicated connection back; a watched slot that moves makes EXEC fail safely
//! (nil, nothing applied); and the lease limit answers a clear error at once.

mod common;

use std::time::Duration;

use common::{slot_of, wait_until, Conn, Proxy, RedisCluster, Value};

/// Sends each line on one connection and returns the raw replies.
fn replies(conn: &mut Conn, lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            conn.send_raw(&common::encode(&args));
            String::from_utf8_lossy(&conn.read_raw_reply()).into_owned()
        })
        .collect()
}

/// A per-core counter of PROXY INFO, summed over the cores.
fn counter(conn: &mut Conn, name: &str) -> u64 {
    let info = conn.cmd_str("PROXY INFO").text();
    info.lines()
        .filter(|l| l.starts_with("core"))
        .filter_map(|l| l.split(&format!(",{name}=")).nth(1))
        .filter_map(|v| v.split(',').next()?.parse::<u64>().ok())
        .sum()
}

/// A client speaking `protocol` (2 or 3).
fn client(proxy: &Proxy, protocol: u8) -> Conn {
    let mut conn = proxy.conn();
    if protocol == 3 {
        assert!(!conn.cmd_str("HELLO 3").is_error());
    }
    conn
}

#[test]
fn exec_after_watch_applies_or_answers_nil_as_a_node_does() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut admin = proxy.conn();
    for protocol in [2, 3] {
        let nil = if protocol == 2 { "*-1\r\n" } else { "_\r\n" };
        let mut c = client(&proxy, protocol);
        let mut other = client(&proxy, protocol);
        let key = format!("{{w{protocol}}}k");
        assert_eq!(other.cmd_str(&format!("SET {key} 0")), Value::ok());

        // Nothing changed: applied, with the reads in between answered from the same node.
        let out = replies(
            &mut c,
            &[
                &format!("WATCH {key}"),
                &format!("GET {key}"),
                "MULTI",
                &format!("INCR {key}"),
                "EXEC",
            ],
        );
        assert_eq!(
            out,
            [
                "+OK\r\n",
                "$1\r\n0\r\n",
                "+OK\r\n",
                "+QUEUED\r\n",
                "*1\r\n:1\r\n"
            ]
        );

        // Another client changed the key between WATCH and EXEC: nil, nothing applied.
        assert_eq!(replies(&mut c, &[&format!("WATCH {key}")]), ["+OK\r\n"]);
        assert_eq!(counter(&mut admin, "watching"), 1);
        assert_eq!(counter(&mut admin, "leased"), 1);
        assert_eq!(other.cmd_str(&format!("SET {key} theirs")), Value::ok());
        let out = replies(&mut c, &["MULTI", &format!("SET {key} mine"), "EXEC"]);
        assert_eq!(out, ["+OK\r\n", "+QUEUED\r\n", nil]);
        assert_eq!(other.cmd_str(&format!("GET {key}")), Value::bulk("theirs"));

        // An empty transaction after WATCH still tells whether the key changed.
        let out = replies(&mut c, &[&format!("WATCH {key}"), "MULTI", "EXEC"]);
        assert_eq!(out[2], "*0\r\n");
        replies(&mut c, &[&format!("WATCH {key}")]);
        other.cmd_str(&format!("DEL {key}"));
        let out = replies(&mut c, &["MULTI", "EXEC"]);
        assert_eq!(out[1], nil);

        // Every lease went back to the pool.
        wait_until("leases given back", Duration::from_secs(5), || {
            counter(&mut admin, "leased") == 0 && counter(&mut admin, "watching") == 0
        });
        assert!(counter(&mut admin, "pooled") >= 1);
    }
}

#[test]
fn watch_of_keys_in_several_slots_is_refused_and_leases_nothing() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    let out = replies(&mut c, &["WATCH a b", "WATCH", "UNWATCH", "UNWATCH x"]);
    assert_eq!(
        out,
        [
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
            "-ERR wrong number of arguments for 'watch' command\r\n",
            "+OK\r\n",
            "-ERR wrong number of arguments for 'unwatch' command\r\n",
        ]
    );
    assert_eq!(counter(&mut c, "leased"), 0);
    assert_eq!(counter(&mut c, "watching"), 0);
    // Inside MULTI, as on a node: WATCH refused, UNWATCH queued.
    let out = replies(&mut c, &["MULTI", "WATCH k", "UNWATCH", "EXEC"]);
    assert_eq!(
        out,
        [
            "+OK\r\n",
            "-ERR WATCH inside MULTI is not allowed\r\n",
            "+QUEUED\r\n",
            "*1\r\n+OK\r\n"
        ]
    );
}

#[test]
fn unwatch_discard_reset_and_disconnect_give_the_lease_back() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut admin = proxy.conn();
    let leased = |admin: &mut Conn| counter(admin, "leased");
    for protocol in [2, 3] {
        let mut c = client(&proxy, protocol);
        let mut other = proxy.conn();
        for end in ["UNWATCH", "DISCARD", "RESET"] {
            let out = replies(&mut c, &["WATCH {g}k", "MULTI"]);
            assert_eq!(out, ["+OK\r\n", "+OK\r\n"]);
            assert_eq!(leased(&mut admin), 1, "{end}");
            let expected = match end {
                "RESET" => "+RESET\r\n",
                _ => "+OK\r\n",
            };
            let end_lines: &[&str] = match end {
                "UNWATCH" => &["DISCARD", "UNWATCH"],
                _ => &[end],
            };
            let out = replies(&mut c, end_lines);
            assert_eq!(out.last().map(String::as_str), Some(expected), "{end}");
            assert_eq!(leased(&mut admin), 0, "{end}: the lease is back");
            // The watch is gone: a change by another client does not fail the transaction.
            other.cmd_str("SET {g}k changed");
            let out = replies(&mut c, &["MULTI", "SET {g}k mine", "EXEC"]);
            assert_eq!(out[2], "*1\r\n+OK\r\n", "{end}");
            if end == "RESET" && protocol == 3 {
                // RESET went back to RESP2.
                assert_eq!(replies(&mut c, &["GET {g}none"]), ["$-1\r\n"]);
                assert!(!c.cmd_str("HELLO 3").is_error());
            }
        }
        let pooled = counter(&mut admin, "pooled");
        assert!(pooled >= 1, "pooled {pooled}");
        // A client that goes away while watching: its lease is reset and pooled.
        let mut gone = client(&proxy, protocol);
        assert_eq!(replies(&mut gone, &["WATCH {g}k"]), ["+OK\r\n"]);
        assert_eq!(leased(&mut admin), 1);
        drop(gone);
        wait_until("the lease of a client gone", Duration::from_secs(5), || {
            leased(&mut admin) == 0 && counter(&mut admin, "watching") == 0
        });
    }
}

#[test]
fn reset_gives_a_new_connections_state() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start_with_seeds(&cluster.seeds(), &["--requirepass", "pw"]);
    wait_until(
        "percore to serve the cluster",
        Duration::from_secs(30),
        || {
            let mut c = proxy.conn();
            c.cmd_str("AUTH pw");
            c.cmd_str("SET {r}ready 1") == Value::ok()
        },
    );
    let mut c = proxy.conn();
    let out = replies(
        &mut c,
        &[
            "AUTH pw",
            "CLIENT SETNAME app",
            "MULTI",
            "SET {r}k 1",
            "RESET",
            "EXEC",
            "CLIENT GETNAME",
        ],
    );
    assert_eq!(out[4], "+RESET\r\n");
    // Logged out again: the default user needs the password.
    assert_eq!(out[5], "-NOAUTH Authentication required.\r\n");
    assert_eq!(out[6], "-NOAUTH Authentication required.\r\n");
    let out = replies(&mut c, &["AUTH pw", "EXEC", "CLIENT GETNAME", "GET {r}k"]);
    assert_eq!(
        out,
        [
            "+OK\r\n",
            "-ERR EXEC without MULTI\r\n",
            "$-1\r\n",
            "$-1\r\n"
        ],
        "the queued SET never ran"
    );
    // CLIENT REPLY OFF has no reply; RESET answers all the same, and turns replies on again.
    c.send_raw(&common::encode(&[b"CLIENT", b"REPLY", b"OFF"]));
    assert_eq!(replies(&mut c, &["RESET"]), ["+RESET\r\n"]);
    assert_eq!(
        replies(&mut c, &["GET x"]),
        ["-NOAUTH Authentication required.\r\n"]
    );
}

#[test]
fn a_watched_slot_that_moves_makes_exec_fail_safely() {
    let mut cluster = RedisCluster::start(3, 0);
    // No periodic refresh: percore learns of the move only from the nodes' replies.
    let proxy = Proxy::start(&cluster, &["--refresh-interval", "1h"]);
    let mut other = proxy.conn();
    let cases = [
        // A watched key that exists: MIGRATE deletes it on the old owner, which touches it.
        (2, "{mv1}k", true, "moved"),
        // A watched key that does not exist: nothing is touched, the queued SET meets MOVED.
        (2, "{mv2}k", false, "moved"),
        // A key migrated while its slot is MIGRATING: the queued SET meets ASK.
        (2, "{mv3}k", true, "migrating"),
        (3, "{mv4}k", true, "moved"),
        (3, "{mv5}k", false, "moved"),
        (3, "{mv6}k", true, "migrating"),
    ];
    for (protocol, key, exists, how) in cases {
        let nil = if protocol == 2 { "*-1\r\n" } else { "_\r\n" };
        let mut c = client(&proxy, protocol);
        let slot = slot_of(key);
        if exists {
            assert_eq!(other.cmd_str(&format!("SET {key} before")), Value::ok());
        }
        let from = cluster.master_for_slot(slot);
        let to = *cluster.master_ports().iter().find(|&&p| p != from).unwrap();
        assert_eq!(replies(&mut c, &[&format!("WATCH {key}")]), ["+OK\r\n"]);
        match how {
            "moved" => cluster.move_slot(slot, from, to),
            _ => {
                cluster.begin_migration(slot, from, to);
                cluster.migrate_key(key, from, to);
            }
        }
        // Another client changes the key on its new owner.
        assert_eq!(other.cmd_str(&format!("SET {key} theirs")), Value::ok());
        let out = replies(&mut c, &["MULTI", &format!("SET {key} mine"), "EXEC"]);
        assert_eq!(out[2], nil, "{key} ({how}): EXEC fails with nil");
        if how == "migrating" {
            cluster.finish_migration(slot, to);
        }
        assert_eq!(
            Conn::connect(to).cmd(&[b"GET", key.as_bytes()]),
            Value::bulk("theirs"),
            "{key} ({how}): nothing of the transaction applied"
        );
        // The client's retry watches on the new owner and succeeds.
        let out = replies(
            &mut c,
            &[
                &format!("WATCH {key}"),
                "MULTI",
                &format!("SET {key} mine"),
                "EXEC",
            ],
        );
        assert_eq!(out[3], "*1\r\n+OK\r\n", "{key} ({how}): retry");
        assert_eq!(other.cmd_str(&format!("GET {key}")), Value::bulk("mine"));
    }
    wait_until("leases given back", Duration::from_secs(5), || {
        counter(&mut other, "leased") == 0
    });
}

#[test]
fn past_the_lease_limit_watch_and_blocking_commands_get_a_clear_error() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--max-leased-conns", "1"]);
    // Two clients on the same core (the kernel spreads connections over the two cores).
    let core = |c: &mut Conn| {
        let info = c.cmd_str("INFO").text();
        info.lines()
            .find_map(|l| l.strip_prefix("core:"))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    let mut first = proxy.conn();
    let first_core = core(&mut first);
    let mut second = loop {
        let mut c = proxy.conn();
        if core(&mut c) == first_core {
            break c;
        }
    };
    assert_eq!(replies(&mut first, &["WATCH {lim}k"]), ["+OK\r\n"]);
    let refused = "-ERR percore: this core has all of its 1 dedicated backend connections in use";
    for line in [
        "WATCH {lim}k",
        "BLPOP {lim}list 1",
        "XREAD BLOCK 100 STREAMS {lim}s $",
    ] {
        let out = replies(&mut second, &[line]);
        assert!(out[0].starts_with(refused), "{line}: {}", out[0]);
    }
    assert!(counter(&mut second, "lease_refused") >= 3);
    // Nothing was left behind: the refused client's transaction runs unwatched.
    let out = replies(&mut second, &["MULTI", "SET {lim}k 2", "EXEC"]);
    assert_eq!(out[2], "*1\r\n+OK\r\n");
    // Given back, the connection serves the other client.
    assert_eq!(replies(&mut first, &["UNWATCH"]), ["+OK\r\n"]);
    assert_eq!(replies(&mut second, &["BLPOP {lim}list 0.1"]), ["*-1\r\n"]);
}
