//! Tests of the process settings (`percore:` section) a file and the flags give together:
//! which admin ports are served, and the upgrade socket. Beside `file_tests.rs`, which they
//! would take past 500 lines.

use super::*;
use crate::config::{runtime_configs, Config, PoolFlags, ProcessConfig, ProcessFlags};

/// The runtime configurations of `file` (none: the flags' one pool) with `flags` over it.
fn served(file: Option<&ConfigFile>, flags: &ProcessFlags) -> Vec<Config> {
    let process = file
        .map_or_else(ProcessConfig::default, |f| f.process().clone())
        .with_flags(flags);
    runtime_configs(file, &process, &PoolFlags::default(), 1).unwrap()
}

#[test]
fn the_stats_port_is_served_with_a_file_or_when_asked_and_metrics_only_when_asked() {
    let stats = |file: Option<&ConfigFile>, flags: &ProcessFlags| {
        let configs = served(file, flags);
        (
            configs[0].stats_listen.clone(),
            configs[0].metrics_listen.clone(),
        )
    };
    let none = ProcessFlags::default();
    assert_eq!(stats(None, &none), (None, None));
    let port = ProcessFlags {
        stats_port: Some(2000),
        metrics_listen: Some("127.0.0.1:9100".into()),
        ..ProcessFlags::default()
    };
    assert_eq!(
        stats(None, &port),
        (Some("0.0.0.0:2000".into()), Some("127.0.0.1:9100".into()))
    );
    let file = parse("p:\n  listen: 127.0.0.1:1\n  cluster: h:2\n").unwrap();
    assert_eq!(
        stats(Some(&file), &none),
        (Some("0.0.0.0:22222".into()), None)
    );
    let file = parse(
        "percore:\n  metrics_listen: 127.0.0.1:9100\np:\n  listen: 127.0.0.1:1\n  cluster: h:2\n",
    )
    .unwrap();
    assert_eq!(
        stats(Some(&file), &none).1.as_deref(),
        Some("127.0.0.1:9100")
    );
    assert!(
        parse("percore:\n  metrics_listen: 9100\np:\n  listen: h:1\n  cluster: h:2\n").is_err()
    );
}

#[test]
fn the_upgrade_socket_is_a_process_setting_the_flag_goes_over() {
    let socket = |file: Option<&ConfigFile>, flags: &ProcessFlags| {
        let paths: Vec<_> = served(file, flags)
            .iter()
            .map(|c| c.upgrade_socket.clone())
            .collect();
        paths
    };
    let none = ProcessFlags::default();
    assert_eq!(socket(None, &none), [None]);
    let two_pools = "percore:\n  upgrade_socket: /run/percore/up.sock\np:\n  listen: \
                     127.0.0.1:1\n  cluster: h:2\nq:\n  listen: 127.0.0.1:2\n  cluster: h:2\n";
    let file = parse(two_pools).unwrap();
    let from_file = Some("/run/percore/up.sock".into());
    assert_eq!(socket(Some(&file), &none), [from_file.clone(), from_file]);
    let flag = ProcessFlags {
        upgrade_socket: Some("/tmp/other.sock".into()),
        ..ProcessFlags::default()
    };
    assert_eq!(
        socket(Some(&file), &flag)[1],
        Some("/tmp/other.sock".into())
    );
}
