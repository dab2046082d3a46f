//! Tests of the runtime `Config`: defaults, validation, announce addresses. Kept beside
//! `mod.rs` rather than in it, which they would take past 500 lines.

use super::*;

fn config() -> Config {
    Config::default()
}

#[test]
fn defaults_match_the_documented_constants() {
    let config = config();
    assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(
        humantime::format_duration(config.refresh_interval).to_string(),
        DEFAULT_REFRESH_INTERVAL
    );
    assert_eq!(
        humantime::format_duration(config.backend_timeout).to_string(),
        DEFAULT_BACKEND_TIMEOUT
    );
    assert_eq!(
        humantime::format_duration(config.shutdown_timeout).to_string(),
        DEFAULT_SHUTDOWN_TIMEOUT
    );
    assert_eq!(
        humantime::parse_duration(DEFAULT_PUBSUB_SOFT_SECONDS).ok(),
        Some(config.pubsub_limit.soft_for)
    );
}

#[test]
fn passwords_are_not_printed() {
    let auth = BackendAuth {
        user: Some("app".into()),
        password: "s3cret".into(),
    };
    let printed = format!(
        "{:?}",
        Config {
            backend_auth: Some(auth),
            ..config()
        }
    );
    assert!(
        printed.contains("app") && !printed.contains("s3cret"),
        "{printed}"
    );
}

#[test]
fn validation() {
    assert!(config().validate().is_ok());
    assert!(Config {
        seeds: vec![],
        ..config()
    }
    .validate()
    .is_err());
    assert!(Config {
        seeds: vec!["nohost".into()],
        ..config()
    }
    .validate()
    .is_err());
    assert!(Config {
        threads: 0,
        ..config()
    }
    .validate()
    .is_err());
}

#[test]
fn announce_and_peers() {
    let any: SocketAddr = "0.0.0.0:6380".parse().unwrap();
    let error = Config {
        listen: any.into(),
        ..config()
    }
    .validate()
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(error.contains("--announce host:port"), "{error}");
    let v6: SocketAddr = "[::]:6380".parse().unwrap();
    assert!(Config {
        listen: v6.into(),
        ..config()
    }
    .validate()
    .is_err());
    let announced = Config {
        listen: any.into(),
        announce: Some("10.1.2.3:6380".into()),
        peers: vec!["10.1.2.4:6380".into(), "10.1.2.3:6380".into()],
        ..config()
    }
    .validate()
    .unwrap();
    assert_eq!(announced.announce_addr(), "10.1.2.3:6380");
    assert_eq!(announced.other_peers(), ["10.1.2.4:6380"]);
    assert_eq!(config().announce_addr(), DEFAULT_LISTEN);
    for bad in ["nohost", "0.0.0.0:6380", "h:port"] {
        let with_announce = Config {
            announce: Some(bad.into()),
            ..config()
        };
        assert!(with_announce.validate().is_err(), "{bad}");
        let with_peer = Config {
            peers: vec![bad.into()],
            ..config()
        };
        assert!(with_peer.validate().is_err(), "{bad}");
    }
}
