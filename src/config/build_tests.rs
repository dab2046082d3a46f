//! Tests of building the runtime `Config` from files and flags. Kept beside `build.rs` rather
//! than in it, which they would take past 500 lines.

use super::*;
use crate::config::sidecar::{
    DEFAULT_ASYNC_WRITES_MAX_BYTES, DEFAULT_ASYNC_WRITES_RETRY, DEFAULT_DATABASES,
};
use crate::config::Sidecar;

/// The one pool's config.
fn runtime_config(
    file: Option<&ConfigFile>,
    process: &ProcessConfig,
    flags: &PoolFlags,
    cores: usize,
) -> Result<Config, Error> {
    runtime_configs(file, process, flags, cores).map(|mut configs| configs.remove(0))
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse("p.yml", text, &|_| None).unwrap()
}

fn error(result: Result<Config, Error>) -> String {
    result.err().map(|e| e.to_string()).unwrap_or_default()
}

const CLUSTER: &str = "p:\n  listen: 127.0.0.1:7100\n  cluster: 127.0.0.1:7000,127.0.0.1:7001\n  backend_timeout: 3s\n  users:\n   - app on >pw +@all allkeys\n  backend_user: proxy\n  backend_password: bpw\n  max_clients: 50\n";

#[test]
fn without_a_file_the_flags_defaults_are_today_s() {
    let process = ProcessConfig::default();
    let config = runtime_config(None, &process, &PoolFlags::default(), 4).unwrap();
    let today = Config {
        threads: 4,
        ..Config::default()
    };
    assert_eq!(format!("{config:?}"), format!("{today:?}"));
}

#[test]
fn a_cluster_pool_is_the_runtime_config() {
    let file = file(CLUSTER);
    let config = runtime_config(Some(&file), file.process(), &PoolFlags::default(), 2).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7100");
    assert_eq!(config.seeds, ["127.0.0.1:7000", "127.0.0.1:7001"]);
    assert_eq!((config.threads, config.max_clients), (2, 50));
    assert_eq!(config.backend_timeout, Duration::from_secs(3));
    assert!(config.users.exists("app"));
    let auth = config.backend_auth.unwrap();
    assert_eq!(
        (auth.user.as_deref(), auth.password.as_str()),
        (Some("proxy"), "bpw")
    );
}

#[test]
fn flags_go_over_the_file() {
    let file = file(CLUSTER);
    let flags = PoolFlags {
        listen: Some("127.0.0.1:7200".parse().unwrap()),
        backend_timeout: Some(Duration::from_secs(9)),
        backend_password: Some("other".into()),
        requirepass: Some("rp".into()),
        idle_timeout: Some(Duration::ZERO),
        ..PoolFlags::default()
    };
    let config = runtime_config(Some(&file), file.process(), &flags, 2).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7200");
    assert_eq!(config.backend_timeout, Duration::from_secs(9));
    assert_eq!(config.seeds.len(), 2);
    let auth = config.backend_auth.unwrap();
    assert_eq!(
        (auth.user.as_deref(), auth.password.as_str()),
        (Some("proxy"), "other")
    );
    // --requirepass keeps the file's users and gives the default user its password.
    assert!(config.users.exists("app") && config.users.initial().is_none());
    let replaced = PoolFlags {
        users: vec!["ops on >x +@all".into()],
        ..PoolFlags::default()
    };
    let config = runtime_config(Some(&file), file.process(), &replaced, 2).unwrap();
    assert!(config.users.exists("ops") && !config.users.exists("app"));
}

#[test]
fn every_pool_is_served_and_what_is_not_yet_is_named() {
    let two = file(
        "a:\n  listen: 127.0.0.1:1\n  cluster: h:2\nb:\n  listen: 127.0.0.1:3\n  redis: true\n  servers:\n   - 127.0.0.1:2:1\n   - 127.0.0.1:4:2 b\n",
    );
    let configs = runtime_configs(Some(&two), two.process(), &PoolFlags::default(), 1).unwrap();
    assert_eq!(configs.len(), 2);
    assert!(configs[0].servers.is_none() && configs[0].seeds == ["h:2"]);
    let servers = configs[1].servers.as_ref().expect("a static pool");
    assert_eq!(servers.addrs, ["127.0.0.1:2", "127.0.0.1:4"]);
    let flags = PoolFlags {
        max_clients: Some(5),
        ..PoolFlags::default()
    };
    let refused = error(runtime_config(Some(&two), two.process(), &flags, 1));
    assert!(
        refused.contains("2 pools; pool settings given as flags"),
        "{refused}"
    );
    let ejecting = file(
        "s:\n  listen: 127.0.0.1:1\n  redis: true\n  auto_eject_hosts: true\n  servers:\n   - 127.0.0.1:2:1\n",
    );
    let served = runtime_config(
        Some(&ejecting),
        ejecting.process(),
        &PoolFlags::default(),
        1,
    )
    .unwrap();
    let servers = served.servers.expect("a static pool");
    // nutcracker's defaults: 2 failures, 30 s out.
    assert_eq!(
        servers.eject,
        Some(EjectPolicy {
            failure_limit: 2,
            retry_timeout: Duration::from_secs(30)
        })
    );
    assert_eq!(servers.pool, "s");
    let sentinel = file(
        "s:\n  listen: 127.0.0.1:1\n  redis: true\n  sentinels: 127.0.0.1:5,127.0.0.1:6\n  sentinel_password: sp\n  servers:\n   - 127.0.0.1:2:1 m-a\n   - 127.0.0.1:4:1 m-b\n",
    );
    let config = runtime_config(
        Some(&sentinel),
        sentinel.process(),
        &PoolFlags::default(),
        1,
    );
    let servers = config.unwrap().servers.expect("a static pool");
    let found = servers.sentinel.expect("found through Sentinel");
    assert_eq!(
        (found.pool.as_str(), found.masters),
        ("s", vec!["m-a".into(), "m-b".into()])
    );
    assert_eq!(found.sentinels, ["127.0.0.1:5", "127.0.0.1:6"]);
    assert_eq!(found.auth.map(|a| a.password), Some("sp".into()));
    let unix = file(
        "u:\n  listen: /tmp/u.sock 0600\n  redis: true\n  servers:\n   - /tmp/r.sock:1 r\n   - 127.0.0.1:2:1\n",
    );
    let config = runtime_config(Some(&unix), unix.process(), &PoolFlags::default(), 1).unwrap();
    let expected = ListenAddr::Unix {
        path: "/tmp/u.sock".into(),
        permissions: Some(0o600),
    };
    assert_eq!(config.listen, expected);
    let servers = config.servers.expect("a static pool");
    assert_eq!(servers.addrs, ["/tmp/r.sock", "127.0.0.1:2"]);
}

#[test]
fn a_static_pool_serves_its_redis_db_and_may_listen_everywhere() {
    let pool = file(
        "s:\n  listen: 0.0.0.0:1\n  redis: true\n  redis_db: 3\n  servers:\n   - 127.0.0.1:2:1\n",
    );
    let config = runtime_config(Some(&pool), pool.process(), &PoolFlags::default(), 1);
    let config = config.unwrap();
    assert_eq!((config.database(), config.listen.port()), (3, 1));
    let cluster = file("c:\n  listen: 127.0.0.1:1\n  cluster: h:2\n");
    let config = runtime_config(Some(&cluster), cluster.process(), &PoolFlags::default(), 1);
    assert_eq!(config.unwrap().database(), 0);
}

#[test]
fn a_backend_user_needs_a_password_from_somewhere() {
    let flags = PoolFlags {
        backend_user: Some("u".into()),
        ..PoolFlags::default()
    };
    let refused = error(runtime_config(None, &ProcessConfig::default(), &flags, 1));
    assert!(
        refused.contains("--backend-user needs --backend-password"),
        "{refused}"
    );
}

#[test]
fn sidecar_settings_reach_the_runtime_and_select_needs_one_server() {
    let one = file(
        "s:\n  listen: 127.0.0.1:1\n  redis: true\n  preconnect: true\n  databases: 32\n  \
         async_writes: true\n  async_writes_max_bytes: 1000\n  async_writes_retry_timeout: 3s\n  servers:\n   - 127.0.0.1:2:1\n",
    );
    let config = runtime_config(Some(&one), one.process(), &PoolFlags::default(), 1).unwrap();
    assert!(config.sidecar.preconnect);
    assert_eq!(config.selectable_databases(), Some(32));
    let writes = config
        .sidecar
        .async_writes
        .map(|a| (a.max_bytes, a.retry_for));
    assert_eq!(writes, Some((1000, Duration::from_secs(3))));
    let two = file(
        "s:\n  listen: 127.0.0.1:1\n  redis: true\n  async_writes: true\n  servers:\n   - \
         127.0.0.1:2:1\n   - 127.0.0.1:3:1\n",
    );
    let config = runtime_config(Some(&two), two.process(), &PoolFlags::default(), 1).unwrap();
    assert_eq!(config.selectable_databases(), None);
    let writes = config
        .sidecar
        .async_writes
        .map(|a| (a.max_bytes, a.retry_for));
    let defaults = (DEFAULT_ASYNC_WRITES_MAX_BYTES, DEFAULT_ASYNC_WRITES_RETRY);
    assert_eq!(writes, Some(defaults));
    let cluster = file("c:\n  listen: 127.0.0.1:1\n  cluster: h:2\n");
    let config = runtime_config(Some(&cluster), cluster.process(), &PoolFlags::default(), 1);
    let config = config.unwrap();
    assert_eq!(config.selectable_databases(), None);
    assert_eq!(config.sidecar, Sidecar::default());
    assert_eq!(Sidecar::default().databases, DEFAULT_DATABASES);
}
