//! The client's own connection through percore: HELLO byte for byte as Redis 7 answers,
//! CLIENT for the proxy's clients on every core (ID, LIST, KILL, REPLY, PAUSE, SETINFO), and
//! the keyless commands composed from every master (RANDOMKEY, CONFIG).

mod common;

use std::time::{Duration, Instant};

use common::{key_on_each_master, Conn, Proxy, RedisCluster, Value};

fn hello_reply(map: &str, id: i64, proto: i64) -> Vec<u8> {
    format!(
        "{map}$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n\
         :{proto}\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$7\r\ncluster\r\n$4\r\nrole\r\n$6\r\n\
         master\r\n$7\r\nmodules\r\n*0\r\n"
    )
    .into_bytes()
}

fn raw(c: &mut Conn, line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    c.send_raw(&common::encode(&args));
    c.read_raw_reply()
}

#[test]
fn hello_answers_as_redis_does() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    let id = c.cmd_str("CLIENT ID").as_int().unwrap();
    assert_eq!(raw(&mut c, "HELLO 3"), hello_reply("%7\r\n", id, 3));
    // RESP3 from now on: nulls are `_`, text replies verbatim.
    assert_eq!(raw(&mut c, "GET hello:missing"), b"_\r\n");
    assert_eq!(raw(&mut c, "CLIENT GETNAME"), b"_\r\n");
    assert!(raw(&mut c, "INFO").starts_with(b"="));
    assert_eq!(raw(&mut c, "HELLO"), hello_reply("%7\r\n", id, 3));
    assert_eq!(raw(&mut c, "HELLO 2"), hello_reply("*14\r\n", id, 2));
    assert_eq!(raw(&mut c, "GET hello:missing"), b"$-1\r\n");
    assert_eq!(
        raw(&mut c, "HELLO 4"),
        b"-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        raw(&mut c, "HELLO x"),
        &b"-ERR Protocol version is not an integer or out of range\r\n"[..]
    );
    assert_eq!(
        raw(&mut c, "HELLO 3 SETNAME"),
        &b"-ERR Syntax error in HELLO option 'SETNAME'\r\n"[..]
    );
    assert_eq!(
        raw(&mut c, "HELLO 2 SETNAME me").len(),
        hello_reply("*14\r\n", id, 2).len()
    );
    assert_eq!(c.cmd_str("CLIENT GETNAME"), Value::bulk("me"));
}

#[test]
fn client_sees_every_core_and_kills_across_them() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    // Enough connections that both cores have some.
    let mut clients: Vec<Conn> = (0..8).map(|_| proxy.conn()).collect();
    let mut ids = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.cmd_str(&format!("CLIENT SETNAME c{i}")), Value::ok());
        assert_eq!(c.cmd_str("CLIENT SETINFO lib-name testlib"), Value::ok());
        ids.push(c.cmd_str("CLIENT ID").as_int().unwrap());
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids unique across cores: {ids:?}");
    assert!(
        ids.iter().any(|id| id % 2 == 0) && ids.iter().any(|id| id % 2 == 1),
        "{ids:?}"
    );

    let list = clients[0].cmd_str("CLIENT LIST").text();
    for (i, id) in ids.iter().enumerate() {
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("id={id} ")))
            .unwrap_or_else(|| panic!("client {id} listed: {list}"));
        assert!(line.contains(&format!(" name=c{i} ")), "{line}");
        assert!(line.contains(" lib-name=testlib "), "{line}");
        assert!(line.contains(" user=default "), "{line}");
    }
    let me = clients[0].cmd_str("CLIENT INFO").text();
    assert!(me.contains(" cmd=client|info "), "{me}");
    assert!(me.ends_with('\n'), "{me:?}");
    let only = clients[0]
        .cmd_str(&format!("CLIENT LIST ID {}", ids[3]))
        .text();
    assert_eq!(only.lines().count(), 1, "{only}");
    assert_eq!(
        clients[0].cmd_str("CLIENT LIST ID x"),
        Value::Error("ERR Invalid client ID".into())
    );
    assert_eq!(
        clients[0].cmd_str("CLIENT LIST TYPE pubsub"),
        Value::bulk("")
    );

    // Kill a client of each core by id; the connection is closed.
    for victim in [1, 2] {
        let reply = clients[0].cmd_str(&format!("CLIENT KILL ID {}", ids[victim]));
        assert_eq!(reply, Value::Int(1));
        clients[victim].expect_closed();
    }
    assert_eq!(clients[0].cmd_str("CLIENT KILL ID 99999"), Value::Int(0));
    assert_eq!(
        clients[0].cmd_str("CLIENT KILL 1.2.3.4:5"),
        Value::Error("ERR No such client".into())
    );
    assert_eq!(
        clients[0].cmd_str("CLIENT KILL USER nobody"),
        Value::Error("ERR No such user 'nobody'".into())
    );
    // Everyone but the asker.
    let others = clients[0]
        .cmd_str("CLIENT KILL USER default")
        .as_int()
        .unwrap();
    assert!(others >= 5, "{others}");
    assert_eq!(clients[0].cmd_str("PING"), Value::Simple("PONG".into()));
    assert_eq!(
        clients[0]
            .cmd_str("CLIENT KILL SKIPME no USER default")
            .as_int(),
        Some(1)
    );
    clients[0].expect_closed();
}

#[test]
fn client_reply_off_skip_on() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    let mut wire = Vec::new();
    for line in [
        "CLIENT REPLY SKIP",
        "SET reply:a 1",
        "ECHO one",
        "CLIENT REPLY OFF",
        "SET reply:b 2",
        "ECHO none",
        "CLIENT REPLY ON",
        "ECHO two",
    ] {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        wire.extend(common::encode(&args));
    }
    c.send_raw(&wire);
    assert_eq!(c.read_value(), Value::bulk("one"));
    assert_eq!(c.read_value(), Value::ok(), "CLIENT REPLY ON is answered");
    assert_eq!(c.read_value(), Value::bulk("two"));
    // The silenced requests ran.
    let both = Value::Array(Some(vec![Value::bulk("1"), Value::bulk("2")]));
    assert_eq!(c.cmd_str("MGET reply:a reply:b"), both);
}

#[test]
fn client_pause_holds_writes_on_every_core_until_unpause() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut admin = proxy.conn();
    let mut writers: Vec<Conn> = (0..4).map(|_| proxy.conn()).collect();
    assert_eq!(admin.cmd_str("CLIENT PAUSE 10000 WRITE"), Value::ok());
    for w in &mut writers {
        // Reads go on while writes wait.
        assert_eq!(w.cmd_str("GET pause:k"), Value::Bulk(None));
        w.send_raw(&common::encode(&[b"INCR", b"pause:k"]));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        admin.cmd_str("GET pause:k"),
        Value::Bulk(None),
        "no write ran"
    );
    let released = Instant::now();
    assert_eq!(admin.cmd_str("CLIENT UNPAUSE"), Value::ok());
    let mut values: Vec<i64> = writers
        .iter_mut()
        .map(|w| w.read_value().as_int().unwrap())
        .collect();
    assert!(released.elapsed() < Duration::from_secs(1));
    assert!(admin
        .cmd_str("INFO clients")
        .text()
        .contains("blocked_clients:0\r\n"));
    values.sort_unstable();
    assert_eq!(values, [1, 2, 3, 4]);

    // A pause ends by itself; ALL holds reads too.
    assert_eq!(admin.cmd_str("CLIENT PAUSE 300 ALL"), Value::ok());
    let started = Instant::now();
    assert_eq!(writers[0].cmd_str("GET pause:k"), Value::bulk("4"));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        admin.cmd_str("CLIENT PAUSE x"),
        Value::Error("ERR timeout is not an integer or out of range".into())
    );
    assert_eq!(
        admin.cmd_str("CLIENT PAUSE 10 SOME"),
        Value::Error("ERR CLIENT PAUSE mode must be WRITE or ALL".into())
    );
    assert!(admin
        .cmd_str("CLIENT TRACKING on")
        .text()
        .contains("'client|tracking'"));
}

#[test]
fn randomkey_and_config_cover_every_master() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("FLUSHALL"), Value::ok());
    assert_eq!(c.cmd_str("RANDOMKEY"), Value::Bulk(None));
    let keys = key_on_each_master(&cluster, "rk:");
    for (_, key) in &keys {
        assert_eq!(c.cmd(&[b"SET", key.as_bytes(), b"1"]), Value::ok());
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        seen.insert(c.cmd_str("RANDOMKEY").text());
        if seen.len() == keys.len() {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        keys.len(),
        "keys of every master come back: {seen:?}"
    );

    assert_eq!(
        c.cmd_str("CONFIG SET maxmemory-policy allkeys-lru"),
        Value::ok()
    );
    for port in cluster.master_ports() {
        let reply = Conn::connect(port).cmd_str("CONFIG GET maxmemory-policy");
        assert_eq!(
            reply,
            Value::Array(Some(vec![
                Value::bulk("maxmemory-policy"),
                Value::bulk("allkeys-lru")
            ]))
        );
    }
    assert_eq!(
        c.cmd_str("CONFIG GET maxmemory-policy"),
        Value::Array(Some(vec![
            Value::bulk("maxmemory-policy"),
            Value::bulk("allkeys-lru")
        ]))
    );
    let bad = c.cmd_str("CONFIG SET nosuch 1").text();
    assert!(
        bad.starts_with("ERR Unknown option") && bad.contains("(node 127.0.0.1:"),
        "{bad}"
    );
    let requests = |c: &mut Conn| -> u64 {
        c.cmd_str("PROXY INFO")
            .text()
            .lines()
            .filter_map(|l| l.split("requests=").nth(1))
            .filter_map(|v| v.split(',').next()?.parse::<u64>().ok())
            .sum()
    };
    assert!(requests(&mut c) > 10);
    assert_eq!(c.cmd_str("CONFIG RESETSTAT"), Value::ok());
    assert!(requests(&mut c) <= 2, "percore's counters cleared too");
}
