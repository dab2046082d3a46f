//! Authentication through percore: percore's own users (NOAUTH before login, WRONGPASS,
//! NOPERM on commands and on every key, split commands included, HELLO ... AUTH, ACL WHOAMI),
//! and percore's credentials for a password-protected cluster (every backend connection and
//! the refresher authenticate first; a wrong password fails fast, naming the node).

mod common;

use std::time::{Duration, Instant};

use common::{key_on_each_master, Proxy, RedisCluster, Value};

fn err(text: &str) -> Value {
    Value::Error(text.into())
}

const NOPERM_KEYS: &str =
    "NOPERM this user has no permissions to access one of the keys used as arguments";

#[test]
fn clients_log_in_and_users_are_held_to_their_rules() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start_with_seeds(
        &cluster.seeds(),
        &[
            "--requirepass",
            "pw",
            "--user",
            "ro on >rp ~app:* +@read",
            "--user",
            "ops on >op allkeys +@all -@admin",
        ],
    );
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("GET x"), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd_str("PING"), err("NOAUTH Authentication required."));
    assert!(
        c.cmd_str("HELLO 3")
            .text()
            .starts_with("NOAUTH HELLO must be called"),
        "HELLO without AUTH before login"
    );
    // An unknown command says so first, as in Redis.
    assert!(c
        .cmd_str("NOSUCH")
        .text()
        .starts_with("ERR unknown command"));
    assert_eq!(
        c.cmd_str("AUTH wrong"),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(c.cmd_str("AUTH a b c"), err("ERR syntax error"));
    assert_eq!(c.cmd_str("AUTH pw"), Value::ok());
    assert_eq!(c.cmd_str("ACL WHOAMI"), Value::bulk("default"));
    let keys = key_on_each_master(&cluster, "app:");
    for (_, key) in &keys {
        assert_eq!(c.cmd(&[b"SET", key.as_bytes(), b"v"]), Value::ok());
    }

    // HELLO ... AUTH logs in and switches protocol in one step.
    let mut fresh = proxy.conn();
    fresh.send_raw(&common::encode(&[b"HELLO", b"3", b"AUTH", b"ro", b"rp"]));
    assert!(fresh.read_raw_reply().starts_with(b"%7\r\n"));
    assert_eq!(
        fresh.cmd_str("ACL WHOAMI"),
        err("NOPERM this user has no permissions to run the 'acl|whoami' command")
    );

    let mut ro = proxy.conn();
    assert_eq!(ro.cmd_str("AUTH ro rp"), Value::ok());
    assert_eq!(ro.cmd(&[b"GET", keys[0].1.as_bytes()]), Value::bulk("v"));
    assert_eq!(ro.cmd_str("GET other"), err(NOPERM_KEYS));
    // A split MGET: every key is checked, one forbidden key refuses the whole request.
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|(_, k)| k.as_bytes()));
    assert!(matches!(ro.cmd(&mget), Value::Array(Some(v)) if v.len() == keys.len()));
    mget.push(b"other");
    assert_eq!(ro.cmd(&mget), err(NOPERM_KEYS));
    assert_eq!(
        ro.cmd_str("SET app:1 x"),
        err("NOPERM this user has no permissions to run the 'set' command")
    );
    assert_eq!(
        ro.cmd_str("PROXY INFO"),
        err("NOPERM this user has no permissions to run the 'proxy' command")
    );

    let mut ops = proxy.conn();
    assert_eq!(ops.cmd_str("AUTH ops op"), Value::ok());
    assert_eq!(ops.cmd_str("SET anything 1"), Value::ok());
    assert_eq!(
        ops.cmd_str("CONFIG GET maxmemory"),
        err("NOPERM this user has no permissions to run the 'config|get' command")
    );

    // Failed logins are counted (one WRONGPASS above).
    let info = c.cmd_str("PROXY INFO").text();
    let failures: u64 = info
        .lines()
        .filter_map(|l| l.split("auth_failures=").nth(1))
        .filter_map(|v| v.split(',').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(failures, 1, "{info}");
}

/// Sets a password on every node of a running cluster (the cluster bus needs none).
fn protect(cluster: &RedisCluster, password: &str) {
    for node in &cluster.nodes {
        assert_eq!(
            node.cmd(&format!("CONFIG SET masterauth {password}")),
            Value::ok()
        );
        assert_eq!(
            node.cmd(&format!("CONFIG SET requirepass {password}")),
            Value::ok()
        );
    }
}

#[test]
fn percore_authenticates_to_a_password_protected_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let keys = key_on_each_master(&cluster, "protected:");
    protect(&cluster, "clusterpw");
    // The password from the environment, out of `ps`.
    let proxy = Proxy::start_with_env(
        &cluster.seeds(),
        &[],
        &[("PERCORE_BACKEND_PASSWORD", "clusterpw")],
    );
    let ready = Instant::now() + Duration::from_secs(20);
    while common::try_cmd(proxy.port, "SET auth:ready 1") != Some(Value::ok()) {
        assert!(
            Instant::now() < ready,
            "percore never served: {}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = proxy.conn();
    for (_, key) in keys {
        assert_eq!(c.cmd(&[b"SET", key.as_bytes(), b"1"]), Value::ok());
        assert_eq!(c.cmd(&[b"INCR", key.as_bytes()]), Value::Int(2));
    }
    // RESP3 connections (HELLO 3 AUTH to the nodes) as well.
    c.send_raw(&common::encode(&[b"HELLO", b"3"]));
    assert!(c.read_raw_reply().starts_with(b"%7"));
    assert_eq!(c.cmd_str("GET auth:ready"), Value::bulk("1"));
    assert!(
        !proxy.log().contains("password"),
        "the password is never logged"
    );
}

#[test]
fn a_refused_backend_password_fails_fast_and_names_the_node() {
    let cluster = RedisCluster::start(3, 0);
    let (port, key) = key_on_each_master(&cluster, "wrongpw:").remove(0);
    protect(&cluster, "old");
    let proxy = Proxy::start_with_seeds(&cluster.seeds(), &["--backend-password", "old"]);
    let mut c = proxy.conn();
    let ready = Instant::now() + Duration::from_secs(20);
    while c.cmd(&[b"SET", key.as_bytes(), b"1"]) != Value::ok() {
        assert!(
            Instant::now() < ready,
            "percore never served: {}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The password is rotated on one node and percore's connections to it are dropped: its
    // reconnects are refused.
    let mut admin = common::Conn::connect(port);
    assert_eq!(admin.cmd_str("AUTH old"), Value::ok());
    assert_eq!(admin.cmd_str("CONFIG SET requirepass new"), Value::ok());
    admin.cmd_str("CLIENT KILL TYPE normal SKIPME yes");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started = Instant::now();
        let reply = c.cmd(&[b"GET", key.as_bytes()]);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no hang: {reply:?}"
        );
        if reply.is_error() {
            assert!(
                reply.text().contains(&format!("127.0.0.1:{port}")),
                "{reply:?}"
            );
            if reply.text().contains("WRONGPASS") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "last reply {reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let refusals = proxy.log().matches("refused percore's credentials").count();
    assert!(
        refusals >= 1,
        "logged with the node's name: {}",
        proxy.log()
    );
}
