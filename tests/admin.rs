//! The proxy's own admin commands: PROXY INFO, PROXY LATENCY (per core and merged, from
//! hdrhistograms gathered across cores) and PROXY LATENCY RESET; and SO_REUSEPORT spreading
//! connections over both cores.

mod common;

use common::{Conn, Proxy, RedisCluster, Value};

/// `field=value` summed over the `core<N>:` lines of a report, and per core.
fn per_core(report: &str, field: &str) -> Vec<u64> {
    report
        .lines()
        .filter(|l| l.starts_with("core"))
        .map(|l| {
            l.split(&[':', ','][..])
                .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

fn all_count(report: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.strip_prefix("all:count="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .expect("all:count line")
}

#[test]
fn proxy_info_and_latency() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);

    // Enough connections that SO_REUSEPORT puts some on each core.
    let mut conns: Vec<Conn> = Vec::new();
    for round in 0..10 {
        for i in 0..20 {
            let mut c = proxy.conn();
            assert_eq!(c.cmd_str(&format!("SET spread:{round}:{i} x")), Value::ok());
            conns.push(c);
        }
        let info = conns[0].cmd_str("PROXY INFO").text();
        if per_core(&info, "connections_total")
            .iter()
            .filter(|&&n| n > 0)
            .count()
            == 2
        {
            break;
        }
    }
    let mut c = proxy.conn();
    let info = c.cmd_str("PROXY INFO").text();
    for line in [
        "version:",
        "threads:2",
        "pinned:yes",
        "uptime_seconds:",
        "masters:3",
    ] {
        assert!(info.contains(line), "{line} in {info}");
    }
    let epoch: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("topology_epoch:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(epoch >= 1);
    let totals = per_core(&info, "connections_total");
    assert_eq!(totals.len(), 2, "{info}");
    assert!(
        totals.iter().all(|&n| n > 0),
        "connections on both cores: {info}"
    );
    assert!(per_core(&info, "requests").iter().sum::<u64>() >= conns.len() as u64);
    assert!(per_core(&info, "clients").iter().sum::<u64>() >= conns.len() as u64);
    // The socket ring of each core: its mode, and work done that grows with requests.
    let modes = [
        ",ring=defer_taskrun,",
        ",ring=coop_taskrun,",
        ",ring=plain,",
    ];
    let rings: usize = modes.iter().map(|mode| info.matches(mode).count()).sum();
    assert_eq!(rings, 2, "{info}");
    let operations: u64 = per_core(&info, "ring_operations").iter().sum();
    let enters: u64 = per_core(&info, "ring_enters").iter().sum();
    for _ in 0..100 {
        c.cmd_str("GET spread:ring");
    }
    let after = c.cmd_str("PROXY INFO").text();
    // Each GET is at least a receive and a send for the client and for the backend.
    assert!(per_core(&after, "ring_operations").iter().sum::<u64>() >= operations + 200);
    assert!(per_core(&after, "ring_enters").iter().sum::<u64>() > enters);
    assert!(per_core(&after, "ring_naps").iter().sum::<u64>() > 0);
    assert!(per_core(&after, "ring_parks").iter().sum::<u64>() > 0);

    let latency = c.cmd_str("PROXY LATENCY").text();
    for field in [
        "core0:count=",
        "core1:count=",
        "p50=",
        "p90=",
        "p99=",
        "p99.9=",
        "max=",
    ] {
        assert!(latency.contains(field), "{field} in {latency}");
    }
    let before = all_count(&latency);
    assert!(before >= conns.len() as u64, "{latency}");
    for i in 0..50 {
        c.cmd_str(&format!("GET spread:0:{}", i % 20));
    }
    assert!(all_count(&c.cmd_str("PROXY LATENCY").text()) >= before + 50);

    assert_eq!(c.cmd_str("PROXY LATENCY RESET"), Value::ok());
    // Only the requests since the reset remain (this connection's own).
    assert!(all_count(&c.cmd_str("PROXY LATENCY").text()) < 5);
    assert!(c.cmd_str("PROXY NOPE").is_error());
}
