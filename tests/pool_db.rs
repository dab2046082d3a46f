//! A static pool's `redis_db`, over real standalone redis-servers: every server connection
//! percore makes (shared, and leased for WATCH and blocking commands, also after a lease is
//! cleaned and reused) is on that database, as nutcracker's are, so keys written through
//! percore are in that database on the server nutcracker puts them on; and a client's SELECT
//! of another database is refused (it would move connections other clients share).

mod common;

use std::collections::{BTreeSet, HashSet};

use common::nutcracker::{free_ports, Nutcracker};
use common::pool::{flush, set_all};
use common::{Proxy, RedisServer, Value};

/// The database the pools below select.
const DB: u32 = 3;

fn pool_yaml(port: u16, servers: &[RedisServer]) -> String {
    let list: String = servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("   - 127.0.0.1:{}:1 s{i}\n", s.port))
        .collect();
    format!(
        "db:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  hash_tag: \
         \"{{}}\"\n  redis: true\n  redis_db: {DB}\n  servers:\n{list}"
    )
}

/// The keys in database `db` of each server.
fn keys_in(servers: &[RedisServer], db: u32) -> Vec<BTreeSet<String>> {
    servers
        .iter()
        .map(|server| {
            let mut c = server.conn();
            assert_eq!(c.cmd_str(&format!("SELECT {db}")), Value::ok());
            let Value::Array(Some(keys)) = c.cmd_str("KEYS *") else {
                panic!("KEYS")
            };
            keys.iter().map(Value::text).collect()
        })
        .collect()
}

#[test]
fn keys_written_through_percore_are_in_redis_db_where_nutcracker_puts_them() {
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let [percore_port, nut_port]: [u16; 2] = free_ports(2, &taken).try_into().unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("db.yml");
    std::fs::write(&file, pool_yaml(percore_port, &servers)).unwrap();
    let proxy = Proxy::start_with_args(percore_port, &["-c", file.to_str().unwrap()]);
    let nutcracker = Nutcracker::start(&pool_yaml(nut_port, &servers), &[nut_port]).unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("key:{i}")).collect();

    set_all(nut_port, &keys);
    let through_nutcracker = keys_in(&servers, DB);
    flush(&servers);
    set_all(percore_port, &keys);
    let through_percore = keys_in(&servers, DB);
    assert_eq!(through_percore, through_nutcracker);
    assert_eq!(
        through_percore.iter().map(BTreeSet::len).sum::<usize>(),
        200
    );
    assert!(through_percore.iter().all(|keys| !keys.is_empty()));
    assert!(keys_in(&servers, 0).iter().all(BTreeSet::is_empty));
    drop(nutcracker);

    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("GET key:7"), Value::bulk("v"));
    assert_eq!(c.cmd_str("DBSIZE"), Value::Int(200));
    // A transaction on the shared connection, and WATCH on a leased one, twice (the second
    // lease is the first one cleaned with RESET and given its SELECT again).
    assert_eq!(c.cmd_str("MULTI"), Value::ok());
    assert_eq!(c.cmd_str("SET {t}multi 1"), Value::Simple("QUEUED".into()));
    assert_eq!(c.cmd_str("EXEC"), Value::Array(Some(vec![Value::ok()])));
    for round in 0..2 {
        assert_eq!(c.cmd_str("WATCH {t}watched"), Value::ok());
        assert_eq!(c.cmd_str("MULTI"), Value::ok());
        let set = format!("SET {{t}}watched {round}");
        assert_eq!(c.cmd_str(&set), Value::Simple("QUEUED".into()));
        assert_eq!(c.cmd_str("EXEC"), Value::Array(Some(vec![Value::ok()])));
    }
    // A blocking command, on a leased connection too.
    assert_eq!(c.cmd_str("RPUSH {t}list a"), Value::Int(1));
    assert_eq!(
        c.cmd_str("BLPOP {t}list 1"),
        Value::Array(Some(vec![Value::bulk("{t}list"), Value::bulk("a")]))
    );
    let in_db: BTreeSet<String> = keys_in(&servers, DB).into_iter().flatten().collect();
    assert!(in_db.contains("{t}multi") && in_db.contains("{t}watched"));
    assert!(keys_in(&servers, 0).iter().all(BTreeSet::is_empty));
}

#[test]
fn select_is_ok_for_the_pool_s_db_and_refused_for_any_other() {
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let port = free_ports(1, &taken)[0];
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("db.yml");
    std::fs::write(&file, pool_yaml(port, &servers)).unwrap();
    let proxy = Proxy::start_with_args(port, &["-c", file.to_str().unwrap()]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SELECT 3"), Value::ok());
    let refusal = format!(
        "-ERR percore: 'select' is not supported (this pool's server connections are shared \
         by its clients and all use the pool's redis_db, {DB}; nutcracker refuses SELECT \
         too)\r\n"
    );
    for other in ["SELECT 0", "SELECT 4", "select 03"] {
        c.send_raw(&common::encode(
            &other.split(' ').map(str::as_bytes).collect::<Vec<_>>(),
        ));
        assert_eq!(String::from_utf8(c.read_raw_reply()).unwrap(), refusal);
    }
    // The connection stays usable, and on the pool's database.
    assert_eq!(c.cmd_str("SET after:select 1"), Value::ok());
    let in_db: BTreeSet<String> = keys_in(&servers, DB).into_iter().flatten().collect();
    assert!(in_db.contains("after:select"));
}
