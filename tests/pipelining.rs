//! Ordering and multi-key commands: deep pipelines spread over every master come back in
//! order, concurrent pipelining clients each get their own replies in order, and MGET, MSET,
//! DEL, UNLINK, EXISTS and TOUCH across all masters are split and merged like one Redis.

mod common;

use common::{key_on_each_master, Conn, Proxy, RedisCluster, Value};

fn args(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

#[test]
fn deep_pipelines_keep_order() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();

    // 10,000 commands over keys on every master: SET, GET, INCR in turn.
    let mut commands = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10_000 {
        let group = i / 3;
        let key = format!("p:{}", group % 997);
        match i % 3 {
            0 => {
                commands.push(args(&["SET", &key, &group.to_string()]));
                expected.push(Value::ok());
            }
            1 => {
                commands.push(args(&["GET", &key]));
                expected.push(Value::bulk(&group.to_string()));
            }
            _ => {
                commands.push(args(&["INCR", &key]));
                expected.push(Value::Int(group as i64 + 1));
            }
        }
    }
    let replies = c.pipeline(&commands);
    for (i, (reply, want)) in replies.iter().zip(&expected).enumerate() {
        assert_eq!(reply, want, "reply {i}");
    }
    let masters: std::collections::HashSet<u16> = (0..997)
        .map(|i| cluster.master_for_slot(common::slot_of(&format!("p:{i}"))))
        .collect();
    assert_eq!(masters.len(), 3, "the pipeline touched every master");

    // Several clients pipelining at once, each on its own keys.
    let port = proxy.port;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                for round in 0..5 {
                    let commands: Vec<Vec<Vec<u8>>> = (0..500)
                        .map(|i| args(&["SET", &format!("c{t}:{i}"), &format!("{t}-{round}-{i}")]))
                        .chain((0..500).map(|i| args(&["GET", &format!("c{t}:{i}")])))
                        .collect();
                    let replies = c.pipeline(&commands);
                    for i in 0..500 {
                        assert_eq!(replies[i], Value::ok());
                        assert_eq!(replies[500 + i], Value::bulk(&format!("{t}-{round}-{i}")));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
}

#[test]
fn multi_key_commands_split_and_merge() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    let keys: Vec<String> = key_on_each_master(&cluster, "m:")
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(keys.len(), 3);
    let (a, b, d) = (&keys[0], &keys[1], &keys[2]);

    assert_eq!(c.cmd_str(&format!("MSET {a} 1 {b} 2 {d} 3")), Value::ok());
    for (port, key) in key_on_each_master(&cluster, "m:") {
        let direct = Conn::connect(port).cmd_str(&format!("GET {key}"));
        assert!(direct.as_bulk().is_some(), "{key} is on {port} directly");
    }
    assert_eq!(
        c.cmd_str(&format!("MGET {d} missing {a} {b} {a}")),
        Value::Array(Some(vec![
            Value::bulk("3"),
            Value::Bulk(None),
            Value::bulk("1"),
            Value::bulk("2"),
            Value::bulk("1"),
        ]))
    );
    assert_eq!(
        c.cmd_str(&format!("EXISTS {a} {b} {d} missing {a}")),
        Value::Int(4)
    );
    assert_eq!(c.cmd_str(&format!("TOUCH {a} {b} missing")), Value::Int(2));
    assert_eq!(c.cmd_str(&format!("UNLINK {a} missing")), Value::Int(1));
    assert_eq!(c.cmd_str(&format!("DEL {a} {b} {d} {b}")), Value::Int(2));
    assert_eq!(
        c.cmd_str(&format!("MGET {a} {b} {d}")),
        Value::Array(Some(vec![Value::Bulk(None); 3]))
    );

    // 200 keys in one MGET, spread over every slot they hash to.
    let many: Vec<String> = (0..200).map(|i| format!("many:{i}")).collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    let values: Vec<String> = (0..200).map(|i| format!("v{i}")).collect();
    for (k, v) in many.iter().zip(&values) {
        mset.push(k.as_bytes());
        mset.push(v.as_bytes());
    }
    assert_eq!(c.cmd(&mset), Value::ok());
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(many.iter().map(|k| k.as_bytes()));
    let Value::Array(Some(got)) = c.cmd(&mget) else {
        panic!("MGET reply")
    };
    let want: Vec<Value> = values.iter().map(|v| Value::bulk(v)).collect();
    assert_eq!(got, want);

    // MSETNX must stay atomic: across slots it is refused; within one slot it works.
    assert_eq!(
        c.cmd_str(&format!("MSETNX {a} x {b} y")),
        Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
    assert_eq!(c.cmd_str("MSETNX {t}x 1 {t}y 2"), Value::Int(1));
    assert_eq!(
        c.cmd_str("MGET {t}x {t}y"),
        Value::Array(Some(vec![Value::bulk("1"), Value::bulk("2")]))
    );
}
