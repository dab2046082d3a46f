//! TLS on both sides, against redis-server's own TLS and redis-cli's `--tls`: clients reach
//! percore over TLS (with and without client certificates), percore reaches servers that
//! speak TLS only (a cluster, its refresher and leased connections too, and a static pool),
//! and a client that fails its handshake is closed alone.

mod common;

use std::time::Duration;

use common::tls::{redis_cli, text, tls_cli, Pki, TlsCluster, TlsConn, TlsRedis};
use common::{free_port, try_cmd, wait_until, Conn, Proxy, RedisCluster, Value};

/// Long enough for a proxy on this busy machine to learn the cluster.
const READY: Duration = Duration::from_secs(30);

fn bulk(s: &str) -> Value {
    Value::bulk(s)
}

/// percore with TLS to clients in front of `seeds`, with `extra` flags; waits until a TLS
/// client can SET through it.
fn tls_proxy(pki: &Pki, seeds: &str, extra: &[&str]) -> Proxy {
    let (cert, key) = (pki.arg("server.pem"), pki.arg("server.key"));
    let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    args.extend(extra);
    let proxy = Proxy::start_with_seeds(seeds, &args);
    let port = proxy.port;
    let client_cert = extra.contains(&"--tls-ca");
    wait_until("percore to serve over TLS", READY, || {
        redis_cli(pki, port, client_cert, &["SET", "percore:ready", "1"]).trim() == "OK"
    });
    proxy
}

#[test]
fn redis_cli_over_tls_through_percore_sets_gets_and_mgets_across_slots() {
    let pki = Pki::new();
    let cluster = RedisCluster::start(3, 0);
    let proxy = tls_proxy(&pki, &cluster.seeds(), &[]);
    let port = proxy.port;
    assert_eq!(
        redis_cli(&pki, port, false, &["SET", "a", "1"]).trim(),
        "OK"
    );
    assert_eq!(redis_cli(&pki, port, false, &["GET", "a"]).trim(), "1");
    // Keys on three masters: the split and the merge run over the TLS client connection.
    let keys = ["a", "b", "c", "d", "e", "f"];
    assert!(
        keys.iter()
            .map(|k| cluster.master_for_slot(cluster.keyslot(k)))
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1
    );
    let mut conn = TlsConn::connect(&pki, port, None);
    assert_eq!(conn.cmd("MSET a 1 b 2 c 3 d 4 e 5 f 6"), Value::ok());
    let values = ["1", "2", "3", "4", "5", "6"].map(bulk).to_vec();
    assert_eq!(conn.cmd("MGET a b c d e f"), Value::Array(Some(values)));
    // A pipeline deep enough to span several TLS records each way comes back in order.
    let big = "x".repeat(40_000);
    assert_eq!(conn.cmd(&format!("SET big {big}")), Value::ok());
    assert_eq!(conn.cmd("GET big"), bulk(&big));
    let piped = tls_cli(&pki, false)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            for i in 0..2000 {
                write!(stdin, "SET k{i} v{i}\r\n")?;
            }
            drop(stdin);
            child.wait_with_output()
        })
        .expect("redis-cli --pipe");
    let out = text(&piped);
    assert!(out.contains("errors: 0, replies: 2000"), "{out}");
    assert_eq!(conn.cmd("GET k1999"), bulk("v1999"));
    // The plain path is not TLS: the same port refuses a plaintext client (next test).
    assert!(proxy.log().contains("accepting clients"));
}

#[test]
fn a_plaintext_client_on_a_tls_listener_is_closed_and_others_go_on() {
    let pki = Pki::new();
    let cluster = RedisCluster::start(3, 0);
    let proxy = tls_proxy(&pki, &cluster.seeds(), &[]);
    let mut tls = TlsConn::connect(&pki, proxy.port, None);
    assert_eq!(tls.cmd("SET before 1"), Value::ok());
    let mut plain = Conn::connect(proxy.port);
    plain.send_raw(b"*1\r\n$4\r\nPING\r\n");
    plain.expect_closed();
    assert_eq!(tls.cmd("GET before"), bulk("1"));
    assert_eq!(
        redis_cli(&pki, proxy.port, false, &["GET", "before"]).trim(),
        "1"
    );
    wait_until("the handshake failure logged", READY, || {
        proxy.log().contains("TLS handshake failed")
    });
    let log = proxy.log();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap_or_default();
    assert!(line.contains("peer=Some(127.0.0.1:"), "{line}");
    assert!(line.contains("error="), "{line}");
}

#[test]
fn client_certificates_required_are_refused_without_one_or_from_a_stranger() {
    let pki = Pki::new();
    let cluster = RedisCluster::start(3, 0);
    let ca = pki.arg("ca.pem");
    let proxy = tls_proxy(&pki, &cluster.seeds(), &["--tls-ca", &ca]);
    let port = proxy.port;
    let mut with_cert = TlsConn::connect(&pki, port, Some("client"));
    assert_eq!(with_cert.cmd("SET certified 1"), Value::ok());
    let refused = TlsConn::connect(&pki, port, None).try_cmd("GET certified");
    assert!(refused.is_err(), "{refused:?}");
    let stranger = TlsConn::connect(&pki, port, Some("stranger")).try_cmd("GET certified");
    assert!(stranger.is_err(), "{stranger:?}");
    let without = redis_cli(&pki, port, false, &["GET", "certified"]);
    assert!(!without.contains('1'), "{without}");
    assert_eq!(
        redis_cli(&pki, port, true, &["GET", "certified"]).trim(),
        "1"
    );
    assert_eq!(with_cert.cmd("GET certified"), bulk("1"));
    wait_until("the refusals logged", READY, || {
        proxy.log().matches("TLS handshake failed").count() >= 2
    });
}

#[test]
fn percore_serves_a_tls_only_cluster_that_requires_client_certificates() {
    let pki = Pki::new();
    let cluster = TlsCluster::start(&pki, 3, true);
    let (ca, cert, key) = (
        pki.arg("ca.pem"),
        pki.arg("client.pem"),
        pki.arg("client.key"),
    );
    let backend = [
        "--backend-tls-ca",
        ca.as_str(),
        "--backend-tls-cert",
        cert.as_str(),
        "--backend-tls-key",
        key.as_str(),
    ];
    // Plain clients, TLS backends: the refresher learns the slots over TLS.
    let proxy = Proxy::start_with_seeds(&cluster.seeds(), &backend);
    let port = proxy.port;
    wait_until("percore to serve the TLS cluster", READY, || {
        try_cmd(port, "SET ready 1") == Some(Value::ok())
    });
    let mut conn = proxy.conn();
    assert_eq!(conn.cmd_str("MSET a 1 b 2 c 3 d 4 e 5 f 6"), Value::ok());
    let values = ["1", "2", "3", "4", "5", "6"].map(bulk).to_vec();
    assert_eq!(conn.cmd_str("MGET a b c d e f"), Value::Array(Some(values)));
    // WATCH and blocking commands lease connections of their own: TLS too.
    assert_eq!(conn.cmd_str("WATCH a"), Value::ok());
    assert_eq!(conn.cmd_str("MULTI"), Value::ok());
    assert_eq!(conn.cmd_str("INCR a"), Value::Simple("QUEUED".into()));
    assert_eq!(
        conn.cmd_str("EXEC"),
        Value::Array(Some(vec![Value::Int(2)]))
    );
    assert_eq!(conn.cmd_str("RPUSH list x"), Value::Int(1));
    let popped = Value::Array(Some(vec![bulk("list"), bulk("x")]));
    assert_eq!(conn.cmd_str("BLPOP list 1"), popped);
    // Both sides TLS at once, through redis-cli.
    let both = tls_proxy(&pki, &cluster.seeds(), &backend);
    assert_eq!(redis_cli(&pki, both.port, false, &["GET", "a"]).trim(), "2");
    assert_eq!(
        redis_cli(&pki, both.port, false, &["MGET", "b", "f"]).trim(),
        "2\n6"
    );
}

#[test]
fn a_backend_whose_certificate_is_not_trusted_gets_an_error_naming_tls() {
    let pki = Pki::new();
    let cluster = TlsCluster::start(&pki, 3, false);
    // The stranger's CA did not sign the servers' certificates.
    let wrong_ca = pki.arg("stranger.pem");
    let proxy = Proxy::start_with_seeds(&cluster.seeds(), &["--backend-tls-ca", &wrong_ca]);
    wait_until("the failure logged", READY, || proxy.log().contains("TLS:"));
    let reply = proxy.conn().cmd_str("GET a");
    assert!(reply.is_error(), "{reply:?}");
}

#[test]
fn a_static_pool_reaches_tls_only_servers() {
    let pki = Pki::new();
    let servers: Vec<TlsRedis> = (0..2).map(|_| TlsRedis::start(&pki, false)).collect();
    let port = free_port();
    let list: String = servers
        .iter()
        .map(|s| format!("   - 127.0.0.1:{}:1\n", s.port))
        .collect();
    let yaml = format!(
        "p:\n  listen: 127.0.0.1:{port}\n  redis: true\n  hash: md5\n  distribution: ketama\n  \
         backend_tls:\n    ca: {}\n  tls:\n    cert: {}\n    key: {}\n    protocols: [tls1.3]\n  \
         servers:\n{list}",
        pki.arg("ca.pem"),
        pki.arg("server.pem"),
        pki.arg("server.key"),
    );
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("pool.yml");
    std::fs::write(&file, yaml).unwrap();
    let _proxy = Proxy::start_with_args(port, &["-c", file.to_str().unwrap()]);
    wait_until("the static pool over TLS", READY, || {
        redis_cli(&pki, port, false, &["SET", "k", "v"]).trim() == "OK"
    });
    let mut conn = TlsConn::connect(&pki, port, None);
    for i in 0..50 {
        assert_eq!(conn.cmd(&format!("SET key:{i} {i}")), Value::ok());
    }
    assert_eq!(conn.cmd("GET key:49"), bulk("49"));
    assert_eq!(
        conn.cmd("MGET key:1 key:2"),
        Value::Array(Some(vec![bulk("1"), bulk("2")]))
    );
    // Keys went to both servers, each reached over its TLS port.
    let sizes: Vec<String> = servers
        .iter()
        .map(|s| {
            redis_cli(&pki, s.port, false, &["DBSIZE"])
                .trim()
                .to_string()
        })
        .collect();
    assert!(
        sizes.iter().all(|n| n.parse::<u32>().is_ok_and(|n| n > 0)),
        "{sizes:?}"
    );
    // TLS 1.3 only (`protocols: [tls1.3]`): a client held to TLS 1.2 is refused.
    let old = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    assert!(!old.status.success(), "{}", text(&old));
}

#[test]
fn check_config_reads_the_certificates_and_names_what_is_wrong() {
    let pki = Pki::new();
    let dir = tempfile::TempDir::new().unwrap();
    let check = |tls: &str| {
        let file = dir.path().join("pool.yml");
        let yaml = format!("p:\n  listen: 127.0.0.1:1\n  cluster: 127.0.0.1:2\n{tls}");
        std::fs::write(&file, yaml).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
            .args(["-t", "-c", file.to_str().unwrap()])
            .output()
            .expect("percore -t");
        (output.status.success(), text(&output))
    };
    let (cert, key) = (pki.arg("server.pem"), pki.arg("server.key"));
    let good = format!("  tls:\n    cert: {cert}\n    key: {key}\n");
    let (ok, out) = check(&good);
    assert!(ok && out.contains("is valid"), "{out}");
    let missing = format!("  tls:\n    cert: /nonexistent/cert.pem\n    key: {key}\n");
    let (ok, out) = check(&missing);
    assert!(!ok, "{out}");
    assert!(
        out.contains("pool 'p': tls: /nonexistent/cert.pem"),
        "{out}"
    );
    // A key that is not the certificate's.
    let client_key = pki.arg("client.key");
    let (ok, out) = check(&format!(
        "  tls:\n    cert: {cert}\n    key: {client_key}\n"
    ));
    assert!(!ok && out.contains("pool 'p': tls:"), "{out}");
    let backend = format!("  backend_tls:\n    ca: {key}\n");
    let (ok, out) = check(&backend);
    assert!(!ok && out.contains("pool 'p': backend_tls:"), "{out}");
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_every_connection() {
    let pki = Pki::new();
    let cluster = RedisCluster::start(3, 0);
    let dir = tempfile::TempDir::new().unwrap();
    let (cert, key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(pki.path("server.pem"), &cert).unwrap();
    std::fs::copy(pki.path("server.key"), &key).unwrap();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let proxy = Proxy::start_with_seeds(
        &cluster.seeds(),
        &["--tls-cert", &cert_arg, "--tls-key", &key_arg],
    );
    let port = proxy.port;
    wait_until("percore to serve over TLS", READY, || {
        redis_cli(&pki, port, false, &["SET", "a", "1"]).trim() == "OK"
    });
    let mut before = TlsConn::connect(&pki, port, None);
    assert_eq!(before.cmd("GET a"), bulk("1"));
    // The other CA's certificate goes in place of the first, then SIGHUP.
    std::fs::copy(pki.path("server2.pem"), &cert).unwrap();
    std::fs::copy(pki.path("server2.key"), &key).unwrap();
    proxy.signal("-HUP");
    wait_until("the new certificate served", READY, || {
        TlsConn::connect_trusting(&pki, port, "other-ca.pem", None)
            .try_cmd("GET a")
            .is_ok_and(|v| v == bulk("1"))
    });
    let old_ca = TlsConn::connect(&pki, port, None).try_cmd("GET a");
    assert!(old_ca.is_err(), "{old_ca:?}");
    // The connection made before the reload goes on, on the session it set up.
    assert_eq!(before.cmd("GET a"), bulk("1"));
    assert!(proxy.log().contains("TLS certificate reloaded"));
    // A half-written file changes nothing: the certificate served stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage").unwrap();
    proxy.signal("-HUP");
    wait_until("the failed reload logged", READY, || {
        proxy.log().contains("TLS certificate not reloaded")
    });
    let mut after = TlsConn::connect_trusting(&pki, port, "other-ca.pem", None);
    assert_eq!(after.cmd("GET a"), bulk("1"));
    assert_eq!(before.cmd("GET a"), bulk("1"));
}
