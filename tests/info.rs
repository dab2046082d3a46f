//! INFO through the proxy answers for the cluster as a whole: exactly the sections asked for,
//! in Redis's format and order; the keyspace and the other counts summed over the masters;
//! the clients of every core counted; the proxy process's own server and CPU figures; a
//! verbatim string for RESP3 clients.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{key_on_each_master, open_clients, wait_until, Conn, Proxy, RedisCluster, Value};

/// The `# Title` lines of an INFO text.
fn titles(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The `key:value` fields of an INFO text.
fn fields(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field(text: &str, key: &str) -> String {
    fields(text)
        .remove(key)
        .unwrap_or_else(|| panic!("{key} in {text}"))
}

/// `name=value` of a `db0:keys=..,expires=..` line.
fn subfield(line: &str, name: &str) -> i64 {
    line.split(',')
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {line}"))
}

const DEFAULT: &[&str] = &[
    "# Server",
    "# Clients",
    "# Memory",
    "# Persistence",
    "# Stats",
    "# Replication",
    "# CPU",
    "# Modules",
    "# Errorstats",
    "# Cluster",
    "# Keyspace",
    "# Proxy",
];

#[test]
fn sections_are_exactly_those_asked_for_in_redis_format() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();

    let all: &[&str] = &[
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Commandstats",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
        "# Proxy",
    ];
    let cases: &[(&str, &[&str])] = &[
        ("INFO", DEFAULT),
        ("INFO default", DEFAULT),
        ("INFO all", all),
        ("INFO EVERYTHING", all),
        ("INFO cpu", &["# CPU"]),
        ("INFO keyspace Server", &["# Server", "# Keyspace"]),
        ("INFO stats memory stats", &["# Memory", "# Stats"]),
        ("INFO proxy clients", &["# Clients", "# Proxy"]),
        (
            "INFO persistence replication",
            &["# Persistence", "# Replication"],
        ),
        (
            "INFO commandstats errorstats",
            &["# Commandstats", "# Errorstats"],
        ),
        ("INFO nope", &[]),
        ("INFO latencystats", &[]),
    ];
    for (request, expected) in cases {
        let text = c.cmd_str(request).text();
        assert_eq!(titles(&text), *expected, "{request}: {text}");
    }

    // Byte for byte: a bulk string, a blank line between sections, like redis-server.
    c.send_raw(b"*3\r\n$4\r\nINFO\r\n$7\r\nCLUSTER\r\n$4\r\nnope\r\n");
    assert_eq!(
        c.read_raw_reply(),
        b"$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n"
    );
    c.send_raw(b"*2\r\n$4\r\nINFO\r\n$4\r\nnope\r\n");
    assert_eq!(c.read_raw_reply(), b"$0\r\n\r\n");
    let text = c.cmd_str("INFO cpu cluster").text();
    assert!(
        text.starts_with("# CPU\r\nused_cpu_sys:")
            && text.ends_with("\r\n\r\n# Cluster\r\ncluster_enabled:1\r\n"),
        "{text:?}"
    );
    // Every line of every section is a field, as in Redis.
    let text = c.cmd_str("INFO everything").text();
    for line in text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(line.contains(':'), "{line:?} in {text}");
    }

    // RESP3: the same text as a verbatim string.
    c.cmd_str("HELLO 3");
    c.send_raw(b"*2\r\n$4\r\nINFO\r\n$7\r\ncluster\r\n");
    assert_eq!(
        c.read_raw_reply(),
        b"=34\r\ntxt:# Cluster\r\ncluster_enabled:1\r\n\r\n"
    );
    let verbatim = c.cmd_str("INFO keyspace").text();
    assert!(verbatim.starts_with("txt:# Keyspace\r\n"), "{verbatim:?}");
}

#[test]
fn figures_are_the_proxys_own_or_the_masters_summed() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();

    // Keys on every master, some with a TTL.
    let keys = key_on_each_master(&cluster, "info:");
    assert_eq!(keys.len(), 3);
    for (n, (_, key)) in keys.iter().enumerate() {
        for i in 0..=n {
            assert_eq!(c.cmd_str(&format!("SET {{{key}}}:{i} v")), Value::ok());
        }
        assert_eq!(
            c.cmd_str(&format!("SET {{{key}}}:ttl v EX 1000")),
            Value::ok()
        );
        c.cmd_str(&format!("GET {{{key}}}:0"));
        c.cmd_str(&format!("GET {{{key}}}:missing"));
    }
    let masters: Vec<String> = cluster
        .master_ports()
        .iter()
        .map(|&port| Conn::connect(port).cmd_str("INFO").text())
        .collect();
    let text = c.cmd_str("INFO").text();
    let sum = |key: &str| -> i64 {
        masters
            .iter()
            .map(|m| field(m, key).parse::<i64>().unwrap())
            .sum()
    };
    let db = |text: &str, name: &str| subfield(&field(text, "db0"), name);
    let masters_db = |name: &str| masters.iter().map(|m| db(m, name)).sum::<i64>();
    assert_eq!(db(&text, "keys"), 1 + 2 + 3 + 3 + 1, "{text}");
    assert_eq!(db(&text, "keys"), masters_db("keys"));
    assert_eq!(db(&text, "expires"), 3);
    assert_eq!(db(&text, "expires"), masters_db("expires"));
    assert!((0..=1_000_000).contains(&db(&text, "avg_ttl")), "{text}");
    // Counts nothing but writes and reads change: exactly the masters' sum.
    for key in [
        "rdb_changes_since_last_save",
        "keyspace_hits",
        "keyspace_misses",
        "expired_keys",
        "evicted_keys",
        "connected_slaves",
    ] {
        assert_eq!(field(&text, key).parse::<i64>().unwrap(), sum(key), "{key}");
    }
    assert_eq!(sum("keyspace_hits"), 3);
    assert_eq!(sum("keyspace_misses"), 3);
    // Counts that grow with every command, INFO included: at least the sum read before.
    for key in ["total_commands_processed", "total_connections_received"] {
        assert!(
            field(&text, key).parse::<i64>().unwrap() >= sum(key),
            "{key}"
        );
    }
    let used: i64 = field(&text, "used_memory").parse().unwrap();
    assert!(
        (used - sum("used_memory")).abs() < sum("used_memory") / 10,
        "used_memory {used} against {}",
        sum("used_memory")
    );
    assert!(field(&text, "used_memory_human").ends_with('M'));
    assert!(field(&text, "used_memory_peak").parse::<i64>().unwrap() >= used / 2);
    assert_eq!(field(&text, "mem_allocator"), "libc");
    assert_eq!(field(&text, "role"), "master");
    assert_eq!(field(&text, "rdb_last_bgsave_status"), "ok");
    // One node's own figures are not shown as the cluster's, but for the replication
    // offsets, which tools read: the first master's.
    for key in ["run_id", "slave0"] {
        assert!(!fields(&text).contains_key(key), "{key} in {text}");
    }
    assert!(field(&text, "master_repl_offset").parse::<i64>().is_ok());

    // The proxy's own figures.
    assert_eq!(field(&text, "redis_version"), "7.0.15");
    assert_eq!(field(&text, "redis_mode"), "cluster");
    assert_eq!(field(&text, "process_id"), proxy.pid().to_string());
    assert_eq!(field(&text, "tcp_port"), proxy.port.to_string());
    assert!(field(&text, "executable").ends_with("percore"), "{text}");
    assert_eq!(field(&text, "config_file"), "");
    assert!(field(&text, "uptime_in_seconds").parse::<u64>().is_ok());
    assert_eq!(field(&text, "uptime_in_days"), "0");
    assert_eq!(field(&text, "maxclients"), "10000");
    assert_eq!(field(&text, "blocked_clients"), "0");
    let cpu: f64 = field(&text, "used_cpu_user").parse::<f64>().unwrap()
        + field(&text, "used_cpu_sys").parse::<f64>().unwrap();
    assert!(cpu > 0.0, "{text}");
    assert_eq!(field(&text, "threads"), "2");
    assert_eq!(field(&text, "masters"), "3");
    assert!(field(&text, "requests").parse::<u64>().unwrap() >= 15);
}

#[test]
fn connected_clients_counts_the_clients_of_every_core() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    // Enough connections that SO_REUSEPORT puts some on each core.
    let mut conns: Vec<Conn> = Vec::new();
    let per_core = |info: &str| -> Vec<u64> {
        info.lines()
            .filter(|l| l.starts_with("core"))
            .filter_map(|l| l.split("clients=").nth(1)?.split(',').next()?.parse().ok())
            .collect()
    };
    while conns.len() < 200 {
        for _ in 0..20 {
            let mut conn = proxy.conn();
            assert_eq!(conn.cmd_str("PING"), Value::Simple("PONG".into()));
            conns.push(conn);
        }
        if per_core(&c.cmd_str("PROXY INFO").text())
            .iter()
            .all(|&n| n > 0)
        {
            break;
        }
    }
    let report = c.cmd_str("PROXY INFO").text();
    assert!(per_core(&report).iter().all(|&n| n > 0), "{report}");
    let expected = conns.len() as u64 + 1;
    // The fixture's readiness probes close on their own time.
    wait_until(
        "closed probes to be counted",
        Duration::from_secs(5),
        || open_clients(&c.cmd_str("PROXY INFO").text()) == expected,
    );
    let clients = c.cmd_str("INFO clients").text();
    assert_eq!(field(&clients, "connected_clients"), expected.to_string());
    drop(conns.drain(..10));
    wait_until(
        "closed clients to leave the count",
        Duration::from_secs(5),
        || {
            let text = c.cmd_str("INFO clients").text();
            field(&text, "connected_clients") == (expected - 10).to_string()
        },
    );
}
