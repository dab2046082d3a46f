//! Tests of the INFO sections percore writes. Kept beside `info.rs` rather than in it, which
//! they would take past 500 lines.

use super::*;
use crate::control::info_merge::merge;
use crate::metrics::Metrics;
use crate::net::RingStats;

fn sections(line: &str) -> Sections {
    Sections::parse(line.split_whitespace().map(str::as_bytes))
}

fn facts() -> Facts {
    let core = |id, clients| {
        let metrics = Metrics::default();
        metrics.counters.clients.set(clients);
        metrics.counters.requests.set(10);
        metrics.snapshot(id, 3, RingStats::default())
    };
    Facts {
        view: ProxyView {
            core: 1,
            threads: 2,
            pinned: true,
            uptime: Duration::from_secs(90_000),
            listen: "127.0.0.1:6380".parse().expect("address"),
            epoch: 3,
            masters: vec!["127.0.0.1:7000".into(), "127.0.0.1:7001".into()],
            pool: None,
            servers: Vec::new(),
            config: Default::default(),
            async_writes: None,
        },
        pid: 42,
        executable: "/usr/bin/percore".into(),
        os: "Linux 6.1.0 x86_64".into(),
        now: Duration::from_micros(1_700_000_000_123_456),
        max_clients: 10_000,
        redis_mode: "cluster",
        cpu: CpuTimes {
            sys: Duration::from_micros(1_500_000),
            user: Duration::from_micros(250_000),
            ..CpuTimes::default()
        },
        cores: vec![core(0, 3), core(1, 4)],
    }
}

fn titles(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with('#')).collect()
}

#[test]
fn sections_asked_for() {
    use Section::*;
    let cases: &[(&str, &[Section])] = &[
        ("", &DEFAULT),
        ("default", &DEFAULT),
        ("all", &ORDER),
        ("EVERYTHING", &ORDER),
        ("cpu", &[Cpu]),
        ("KEYSPACE server server", &[Server, Keyspace]),
        ("nope", &[]),
        ("latencystats", &[]),
        ("module_list", &[Modules]),
        ("default commandstats", &ORDER),
    ];
    for (line, expected) in cases {
        let set = sections(line);
        let shown: Vec<Section> = ORDER.into_iter().filter(|&s| set.contains(s)).collect();
        assert_eq!(shown, *expected, "{line:?}");
    }
    assert_eq!(sections("cpu server proxy").masters_request(), None);
    assert_eq!(
        sections("keyspace cpu memory").masters_request().as_deref(),
        Some(&b"*3\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n$8\r\nkeyspace\r\n"[..])
    );
    assert!(sections("clients").needs_cores() && !sections("cpu").needs_cores());
}

#[test]
fn proxy_sections_in_redis_format() {
    let text = info_text(
        sections("cpu clients cluster"),
        &facts(),
        &Merged::default(),
    );
    assert_eq!(
        text,
        "# Clients\r\nconnected_clients:7\r\nmaxclients:10000\r\nblocked_clients:0\r\n\
         \r\n# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\n\
         used_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n\
         \r\n# Cluster\r\ncluster_enabled:1\r\n"
    );
    let server = info_text(sections("server"), &facts(), &Merged::default());
    for line in [
        "# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n",
        "\r\nos:Linux 6.1.0 x86_64\r\n",
        "\r\nprocess_id:42\r\n",
        "\r\ntcp_port:6380\r\n",
        "\r\nserver_time_usec:1700000000123456\r\n",
        "\r\nuptime_in_seconds:90000\r\nuptime_in_days:1\r\n",
        "\r\nexecutable:/usr/bin/percore\r\nconfig_file:\r\n",
        "\r\npercore_version:",
    ] {
        assert!(server.contains(line), "{line:?} in {server}");
    }
    let mut standalone = facts();
    standalone.redis_mode = "standalone";
    let text = info_text(sections("server cluster"), &standalone, &Merged::default());
    assert!(text.contains("\r\nredis_mode:standalone\r\n"), "{text}");
    assert!(text.ends_with("cluster_enabled:0\r\n"), "{text}");
    let proxy = info_text(sections("proxy"), &facts(), &Merged::default());
    assert!(proxy.starts_with("# Proxy\r\ncore:1\r\nthreads:2\r\npinned:yes\r\n"));
    assert!(proxy.contains("\r\nmasters:2\r\n") && proxy.contains("\r\nrequests:20\r\n"));
}

#[test]
fn master_sections_from_the_merge() {
    let a = "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n";
    let b = "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n";
    let text = info_text(sections("keyspace cluster"), &facts(), &merge(&[a, b]));
    assert_eq!(
        text,
        "# Cluster\r\ncluster_enabled:1\r\n\r\n# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\n"
    );
    // No keys anywhere: the header alone, as Redis shows an empty keyspace.
    let empty = info_text(sections("keyspace"), &facts(), &merge(&["# Keyspace\r\n"]));
    assert_eq!(empty, "# Keyspace\r\n");
    assert_eq!(
        info_text(sections("nope"), &facts(), &Merged::default()),
        ""
    );
    let all = info_text(sections("everything"), &facts(), &Merged::default());
    assert_eq!(
        titles(&all),
        [
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
            "# Proxy"
        ]
    );
}

#[test]
fn replies_in_each_protocol() {
    assert_eq!(
        info_reply("a:1\r\n", Protocol::Resp2),
        &b"$5\r\na:1\r\n\r\n"[..]
    );
    assert_eq!(
        info_reply("a:1\r\n", Protocol::Resp3),
        &b"=9\r\ntxt:a:1\r\n\r\n"[..]
    );
    assert_eq!(info_reply("", Protocol::Resp2), &b"$0\r\n\r\n"[..]);
}
