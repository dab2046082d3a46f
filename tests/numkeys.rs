//! Malformed numkeys (negative, zero where a key is needed, not a number, more than the
//! arguments) get exactly the error Redis Cluster gives: each command's own text, byte for
//! byte, checked against the texts redis-server 7.0.15 gives and against the cluster's nodes
//! themselves.

mod common;

use common::{encode, slot_of, Conn, Proxy, RedisCluster};

/// The sha of no script any node has.
const NO_SCRIPT: &str = "0000000000000000000000000000000000000000";

const NEGATIVE: &str = "-ERR Number of keys can't be negative\r\n";
const NOT_INTEGER: &str = "-ERR value is not an integer or out of range\r\n";
const TOO_MANY: &str = "-ERR Number of keys can't be greater than number of args\r\n";
const BAD_NUMBER: &str = "-ERR Bad number of keys provided\r\n";
const NOT_POSITIVE: &str = "-ERR numkeys should be greater than 0\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const CROSSSLOT: &str = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
const UNBALANCED: &str = "-ERR Unbalanced XREAD list of streams: for each stream key an ID or \
                          '$' must be specified.\r\n";

fn at_least_one(command: &str) -> String {
    format!("-ERR at least 1 input key is needed for '{command}' command\r\n")
}

/// Every request with its reply, as one line each: the request's arguments split on spaces.
fn cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut case = |request: String, reply: &str| cases.push((request, reply.to_string()));
    for script in ["EVAL return", "EVAL_RO return"] {
        case(format!("{script} -1 k"), NEGATIVE);
        case(format!("{script} -2147483649 k"), NEGATIVE);
        case(format!("{script} abc k"), NOT_INTEGER);
        case(format!("{script} 1.5 k"), NOT_INTEGER);
        case(format!("{script} 99999999999999999999 k"), NOT_INTEGER);
        case(format!("{script} 2 k"), TOO_MANY);
        case(format!("{script} 4294967297 k"), TOO_MANY);
        case(format!("{script} 0 k"), "$-1\r\n");
    }
    for sha in ["EVALSHA", "EVALSHA_RO"] {
        case(format!("{sha} {NO_SCRIPT} -1 k"), NEGATIVE);
        case(format!("{sha} {NO_SCRIPT} x k"), NOT_INTEGER);
        case(format!("{sha} {NO_SCRIPT} 2 k"), TOO_MANY);
    }
    // FCALL looks its function up before it reads numkeys.
    for fcall in ["FCALL", "FCALL_RO"] {
        case(format!("{fcall} nope -1 k"), "-ERR Function not found\r\n");
        case(format!("{fcall} ro -1 k"), NEGATIVE);
        case(format!("{fcall} ro abc k"), BAD_NUMBER);
        case(format!("{fcall} ro 1.5 k"), BAD_NUMBER);
        case(format!("{fcall} ro 2 k"), TOO_MANY);
        case(format!("{fcall} ro 0 k"), ":0\r\n");
    }
    for store in ["zunionstore", "zinterstore", "zdiffstore"] {
        let upper = store.to_uppercase();
        case(format!("{upper} dst -1 k"), &at_least_one(store));
        case(format!("{upper} dst 0 k"), &at_least_one(store));
        case(format!("{upper} dst abc k"), NOT_INTEGER);
        case(format!("{upper} dst 5 k"), SYNTAX);
        // atoi reads 1.5 as 1: dst and k are the keys, in different slots.
        case(format!("{upper} dst 1.5 k"), CROSSSLOT);
    }
    for set in ["zunion", "zinter", "zdiff", "zintercard"] {
        let upper = set.to_uppercase();
        case(format!("{upper} -1 k"), &at_least_one(set));
        case(format!("{upper} 0 k"), &at_least_one(set));
        case(format!("{upper} x k"), NOT_INTEGER);
        case(format!("{upper} 3 k"), SYNTAX);
    }
    case("SINTERCARD -1 k".into(), NOT_POSITIVE);
    case("SINTERCARD 0 k".into(), NOT_POSITIVE);
    case("SINTERCARD x k".into(), NOT_POSITIVE);
    case("SINTERCARD 2 k".into(), TOO_MANY);
    for pop in ["LMPOP", "ZMPOP", "BLMPOP 0", "BZMPOP 0"] {
        let side = if pop.contains('L') { "LEFT" } else { "MIN" };
        case(format!("{pop} -1 k {side}"), NOT_POSITIVE);
        case(format!("{pop} 0 k {side}"), NOT_POSITIVE);
        case(format!("{pop} x k {side}"), NOT_POSITIVE);
        case(format!("{pop} 3 k {side}"), SYNTAX);
    }
    case("XREAD STREAMS a b c".into(), UNBALANCED);
    case("XREAD COUNT 1 STREAMS a b c".into(), UNBALANCED);
    case("XREADGROUP GROUP g c STREAMS a b c".into(), UNBALANCED);
    // Malformed, it never blocks: the node's error, not percore's refusal of blocking.
    case("XREAD BLOCK 0 STREAMS a b c".into(), UNBALANCED);
    cases
}

fn reply(c: &mut Conn, request: &str) -> String {
    let args: Vec<&[u8]> = request.split(' ').map(str::as_bytes).collect();
    c.send_raw(&encode(&args));
    String::from_utf8_lossy(&c.read_raw_reply()).into_owned()
}

#[test]
fn numkeys_errors_are_each_commands_own() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    assert_ne!(slot_of("dst"), slot_of("k"));
    let library = "#!lua name=lib\nredis.register_function{function_name='ro', \
                   callback=function(keys) return #keys end, flags={'no-writes'}}";
    assert_eq!(
        reply_args(&mut c, &[b"FUNCTION", b"LOAD", library.as_bytes()]),
        "$3\r\nlib\r\n"
    );
    // The node a cluster client ends at: the master of k's slot (the others redirect there).
    let mut node = Conn::connect(cluster.master_for_slot(slot_of("k")));
    let mut wrong = Vec::new();
    for (request, expected) in cases() {
        let through_proxy = reply(&mut c, &request);
        let from_node = reply(&mut node, &request);
        if through_proxy != expected || from_node != expected {
            wrong.push(format!(
                "{request}: percore {through_proxy:?}, node {from_node:?}, expected {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The connection is in order and fine after all of them.
    assert_eq!(reply(&mut c, "PING"), "+PONG\r\n");
}

fn reply_args(c: &mut Conn, args: &[&[u8]]) -> String {
    c.send_raw(&encode(args));
    String::from_utf8_lossy(&c.read_raw_reply()).into_owned()
}
