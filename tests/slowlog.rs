//! SLOWLOG: percore's own slow log of requests that spent long in the proxy, in Redis's entry
//! format (PROXY SLOWLOG adds the backend node that served each), merged over both cores,
//! bounded per core.

mod common;

use common::{Conn, Proxy, RedisCluster, Value};

/// A script that runs on its node for ARGV[1] microseconds.
const SLOW_SCRIPT: &str = "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] \
     while true do local n = redis.call('TIME') \
     if n[1] * 1000000 + n[2] - start >= tonumber(ARGV[1]) then break end end return 1";

/// One SLOWLOG GET entry.
#[derive(Debug)]
struct Entry {
    id: i64,
    unix_time: i64,
    micros: i64,
    args: Vec<String>,
    client: String,
    name: String,
    node: String,
}

/// `PROXY SLOWLOG [count]`'s entries: `SLOWLOG GET`'s and the node.
fn entries(conn: &mut Conn, count: &str) -> Vec<Entry> {
    entries_of(conn, "PROXY SLOWLOG", count, 7)
}

/// `SLOWLOG GET [count]`'s entries: exactly Redis's six fields (no node).
fn redis_entries(conn: &mut Conn, count: &str) -> Vec<Entry> {
    entries_of(conn, "SLOWLOG GET", count, 6)
}

fn entries_of(conn: &mut Conn, get: &str, count: &str, fields_per_entry: usize) -> Vec<Entry> {
    let command = match count {
        "" => get.to_string(),
        count => format!("{get} {count}"),
    };
    let Value::Array(Some(items)) = conn.cmd_str(&command) else {
        panic!("{get} is not an array");
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(Some(fields)) = item else {
                panic!("an entry is not an array: {item:?}");
            };
            assert_eq!(fields.len(), fields_per_entry, "{fields:?}");
            let Value::Array(Some(args)) = &fields[3] else {
                panic!("args are not an array: {fields:?}");
            };
            Entry {
                id: fields[0].as_int().unwrap(),
                unix_time: fields[1].as_int().unwrap(),
                micros: fields[2].as_int().unwrap(),
                args: args.iter().map(Value::text).collect(),
                client: fields[4].text(),
                name: fields[5].text(),
                node: fields.get(6).map(Value::text).unwrap_or_default(),
            }
        })
        .collect()
}

fn len(conn: &mut Conn) -> i64 {
    conn.cmd_str("SLOWLOG LEN")
        .as_int()
        .expect("SLOWLOG LEN is an integer")
}

/// The connection's own address, as the proxy sees it.
fn addr_of(conn: &mut Conn) -> String {
    let info = conn.cmd_str("CLIENT INFO").text();
    info.split(' ')
        .find_map(|field| field.strip_prefix("addr="))
        .expect("addr= in CLIENT INFO")
        .to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_slow_eval_is_logged_with_its_args_client_and_node() {
    let cluster = RedisCluster::start(3, 0);
    // High enough that nothing but the script is slow, even on a busy test machine.
    let proxy = Proxy::start(&cluster, &["--slowlog-slower-than", "80000"]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("CLIENT SETNAME slowpoke"), Value::ok());
    let addr = addr_of(&mut c);
    let key = "slow:key";
    let node = format!(
        "127.0.0.1:{}",
        cluster.master_for_slot(common::slot_of(key))
    );
    let reply = c.cmd(&[
        b"EVAL",
        SLOW_SCRIPT.as_bytes(),
        b"1",
        key.as_bytes(),
        b"150000",
    ]);
    assert_eq!(reply, Value::Int(1));

    let logged = entries(&mut c, "");
    let eval: Vec<&Entry> = logged.iter().filter(|e| e.args[0] == "EVAL").collect();
    assert_eq!(eval.len(), 1, "{logged:?}");
    let eval = eval[0];
    // The script is longer than the 128 bytes an argument keeps.
    let script = format!(
        "{}... ({} more bytes)",
        &SLOW_SCRIPT[..128],
        SLOW_SCRIPT.len() - 128
    );
    assert_eq!(eval.args, ["EVAL", &script, "1", key, "150000"][..]);
    assert!(eval.micros >= 150_000, "{eval:?}");
    assert!((eval.unix_time - now()).abs() < 60, "{eval:?}");
    assert!(eval.id >= 0);
    assert_eq!(eval.client, addr);
    assert_eq!(eval.name, "slowpoke");
    assert_eq!(eval.node, node);
    assert!(len(&mut c) >= 1);
    // SLOWLOG GET is the same entry in Redis's six fields.
    let redis = redis_entries(&mut c, "");
    let same = redis
        .iter()
        .find(|e| e.id == eval.id)
        .expect("in SLOWLOG GET");
    assert_eq!(
        (&same.args, &same.client, &same.name),
        (&eval.args, &eval.client, &eval.name)
    );

    // Every client sees the same log, whichever core serves it.
    for _ in 0..6 {
        let mut other = proxy.conn();
        assert!(entries(&mut other, "-1").iter().any(|e| e.id == eval.id));
    }
    assert_eq!(c.cmd_str("SLOWLOG RESET"), Value::ok());
    assert_eq!(len(&mut c), 0);
    assert_eq!(entries(&mut c, "10").len(), 0);
}

#[test]
fn slower_than_zero_logs_every_request_newest_first() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--slowlog-slower-than", "0"]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SLOWLOG RESET"), Value::ok());
    // RESET is logged once it has been answered, as in Redis, and so is each LEN.
    assert_eq!(len(&mut c), 1);
    assert_eq!(c.cmd_str("SET zero:a 1"), Value::ok());
    assert_eq!(c.cmd_str("GET zero:a"), Value::bulk("1"));
    assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));
    assert_eq!(len(&mut c), 5);

    let logged = entries(&mut c, "4");
    let args: Vec<String> = logged.iter().map(|e| e.args.join(" ")).collect();
    assert_eq!(args, ["SLOWLOG LEN", "PING", "GET zero:a", "SET zero:a 1"]);
    let ids: Vec<i64> = logged.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    // A backend answered GET; the proxy answered PING and SLOWLOG itself.
    let node = format!(
        "127.0.0.1:{}",
        cluster.master_for_slot(common::slot_of("zero:a"))
    );
    assert_eq!(logged[2].node, node);
    assert_eq!(logged[1].node, "");
    assert_eq!(logged[0].node, "");
    assert_eq!(logged[1].name, "");
    // Default count is 10, -1 is all, and the counts are Redis's.
    assert_eq!(entries(&mut c, "").len(), 7);
    assert_eq!(entries(&mut c, "-1").len(), 8);
    assert_eq!(entries(&mut c, "0").len(), 0);
    let bad = "ERR count should be greater than or equal to -1";
    assert_eq!(c.cmd_str("SLOWLOG GET -2"), Value::Error(bad.into()));
    assert_eq!(c.cmd_str("SLOWLOG GET x"), Value::Error(bad.into()));
    assert_eq!(
        c.cmd_str("SLOWLOG GET 1 2"),
        Value::Error(
            "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."
                .into()
        )
    );
    assert_eq!(
        c.cmd_str("SLOWLOG NOPE"),
        Value::Error("ERR unknown subcommand 'NOPE'. Try SLOWLOG HELP.".into())
    );
    let Value::Array(Some(help)) = c.cmd_str("SLOWLOG HELP") else {
        panic!("SLOWLOG HELP is not an array");
    };
    assert_eq!(
        help[0].text(),
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );

    // Clients on both cores: one log, ids unique across cores, newest first.
    let mut clients: Vec<Conn> = (0..8).map(|_| proxy.conn()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.cmd_str(&format!("SET zero:{i} x")), Value::ok());
    }
    let all = entries(&mut c, "-1");
    let mut ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    let times: Vec<i64> = all.iter().map(|e| e.unix_time).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(ids.iter().any(|id| id % 2 == 0) && ids.iter().any(|id| id % 2 == 1));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "ids are unique");
}

#[test]
fn a_negative_slower_than_logs_nothing() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--slowlog-slower-than", "-1"]);
    let mut c = proxy.conn();
    let reply = c.cmd(&[b"EVAL", SLOW_SCRIPT.as_bytes(), b"1", b"k", b"30000"]);
    assert_eq!(reply, Value::Int(1));
    assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));
    assert_eq!(len(&mut c), 0);
    assert_eq!(entries(&mut c, "-1").len(), 0);

    // CONFIG SET through percore sets percore's log as it sets the nodes' (on every core).
    assert_eq!(
        c.cmd_str("CONFIG SET slowlog-log-slower-than 0 slowlog-max-len 3"),
        Value::ok()
    );
    let others: Vec<_> = (0..4).map(|_| proxy.conn()).collect();
    for mut other in others {
        assert_eq!(other.cmd_str("SET cfg:k v"), Value::ok());
    }
    assert_eq!(len(&mut c), 3, "every request logged, the newest 3 kept");
    assert_eq!(
        c.cmd_str("CONFIG SET slowlog-log-slower-than -1"),
        Value::ok()
    );
    assert_eq!(c.cmd_str("SLOWLOG RESET"), Value::ok());
    assert_eq!(c.cmd_str("SET cfg:k v"), Value::ok());
    assert_eq!(len(&mut c), 0, "off again");
    // A value a node refuses changes nothing here either.
    assert!(c.cmd_str("CONFIG SET slowlog-max-len x").is_error());
}

#[test]
fn max_len_bounds_each_core_and_long_requests_are_cut() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(
        &cluster,
        &["--slowlog-slower-than", "0", "--slowlog-max-len", "3"],
    );
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SLOWLOG RESET"), Value::ok());
    for i in 0..10 {
        assert_eq!(c.cmd_str(&format!("SET bound:{i} x")), Value::ok());
    }
    assert_eq!(len(&mut c), 3, "one client, one core, three entries");
    let mut clients: Vec<Conn> = (0..10).map(|_| proxy.conn()).collect();
    for client in &mut clients {
        for i in 0..4 {
            assert_eq!(client.cmd_str(&format!("SET bound:{i} y")), Value::ok());
        }
    }
    let both = len(&mut c);
    assert!((3..=6).contains(&both), "at most 3 per core: {both}");
    assert_eq!(entries(&mut c, "-1").len() as i64, both);

    // 40 keys: 31 arguments kept and a note; a long argument: 128 bytes and a note.
    let mut del: Vec<Vec<u8>> = vec![b"DEL".to_vec()];
    del.extend((0..40).map(|i| format!("cut:{i}").into_bytes()));
    let del: Vec<&[u8]> = del.iter().map(Vec::as_slice).collect();
    assert_eq!(c.cmd(&del), Value::Int(0));
    let long = "v".repeat(300);
    assert_eq!(c.cmd(&[b"SET", b"cut:long", long.as_bytes()]), Value::ok());
    assert!(c.cmd_str("AUTH secret").is_error());
    let logged = entries(&mut c, "3");
    assert_eq!(logged[0].args, ["AUTH", "(redacted)"]);
    assert_eq!(
        logged[1].args,
        [
            "SET".to_string(),
            "cut:long".into(),
            format!("{}... (172 more bytes)", "v".repeat(128))
        ]
    );
    let cut = &logged[2].args;
    assert_eq!(cut.len(), 32);
    assert_eq!(cut[30], "cut:29");
    assert_eq!(cut[31], "... (10 more arguments)");
}

#[test]
fn every_way_a_request_is_answered_logs_its_own_arguments() {
    // A request forwarded as it is brings its frame back with the reply; split, broadcast,
    // refused and local ones leave it with their reply place: each entry must name its own.
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--slowlog-slower-than", "0"]);
    let mut c = proxy.conn();
    let mset = "MSET {a}k 1 {b}k 2 {c}k x";
    assert_eq!(c.cmd_str(mset), Value::ok());
    assert_eq!(c.cmd_str("DEL {a}k {b}k nokey"), Value::Int(2));
    assert!(c.cmd_str("INCR {c}k").is_error());
    // The fixture's own key and {c}k: DBSIZE sums every master's count.
    assert_eq!(c.cmd_str("DBSIZE"), Value::Int(2));
    assert!(c.cmd_str("NOSUCHCOMMAND x").is_error());
    assert_eq!(c.cmd_str("ECHO hi"), Value::bulk("hi"));
    let logged = entries(&mut c, "6");
    let args: Vec<String> = logged.iter().map(|e| e.args.join(" ")).collect();
    assert_eq!(
        args,
        [
            "ECHO hi",
            "NOSUCHCOMMAND x",
            "DBSIZE",
            "INCR {c}k",
            "DEL {a}k {b}k nokey",
            mset,
        ]
    );
    let node = format!(
        "127.0.0.1:{}",
        cluster.master_for_slot(common::slot_of("{c}k"))
    );
    assert_eq!(logged[3].node, node, "the node that refused INCR");
}
