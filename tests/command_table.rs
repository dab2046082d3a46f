//! The command table checked against the live redis-server: the same commands with the same
//! arity and flags, and the same keys found for a wide set of requests as Redis's own
//! `COMMAND GETKEYS` finds.

mod common;

use common::{Conn, RedisCluster, Value};
use percore::command::keys::for_each_key;
use percore::command::table::{lookup, CommandFlags, COMMANDS};

#[test]
fn table_matches_the_server() {
    let cluster = RedisCluster::start(3, 0);
    let mut c = Conn::connect(cluster.master_ports()[0]);

    let Value::Array(Some(commands)) = c.cmd_str("COMMAND") else {
        panic!("COMMAND")
    };
    assert_eq!(commands.len(), COMMANDS.len(), "same number of commands");
    for command in &commands {
        let Value::Array(Some(fields)) = command else {
            panic!("COMMAND entry")
        };
        let name = fields[0].text();
        let spec = lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} in the table"));
        assert_eq!(
            i64::from(spec.arity),
            fields[1].as_int().unwrap(),
            "arity of {name}"
        );
        let Value::Array(Some(flags)) = &fields[2] else {
            panic!("flags")
        };
        let blocking = flags.iter().any(|f| f.text() == "blocking");
        assert_eq!(
            spec.flags.contains(CommandFlags::BLOCKING),
            blocking,
            "blocking flag of {name}"
        );
    }

    for line in [
        "GET k",
        "SET k v EX 10",
        "MSET a 1 b 2 c 3",
        "MGET a b c",
        "DEL a b",
        "EVAL s 2 k1 k2 a1",
        "EVALSHA s 1 k1",
        "FCALL f 1 k",
        "ZUNIONSTORE dst 2 a b WEIGHTS 1 2",
        "ZINTERCARD 2 a b LIMIT 1",
        "XREAD COUNT 2 STREAMS s1 s2 0 0",
        "XREADGROUP GROUP g c STREAMS s 0",
        "LMOVE a b LEFT RIGHT",
        "BLMPOP 0 2 a b LEFT",
        "SORT k BY w LIMIT 0 1 GET x STORE d",
        "OBJECT ENCODING k",
        "XINFO STREAM s",
        "MEMORY USAGE k",
        "BITOP AND d a b",
        "GEORADIUS k 0 0 1 km STORE d",
        "RENAME a b",
        "SINTERCARD 2 a b",
        "LCS a b",
        "COPY a b",
        "MIGRATE h 1 k 0 5000",
        "MIGRATE h 1  0 5000 KEYS a b",
    ] {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let mut getkeys: Vec<&[u8]> = vec![b"COMMAND", b"GETKEYS"];
        getkeys.extend(&args);
        let Value::Array(Some(expected)) = c.cmd(&getkeys) else {
            panic!("GETKEYS {line}")
        };
        let expected: Vec<String> = expected.iter().map(Value::text).collect();

        let mut spec = lookup(args[0]).unwrap();
        if !spec.subcommands.is_empty() {
            spec = spec.subcommand(args[1]).unwrap();
        }
        let mut found = Vec::new();
        for_each_key(spec, &args[..], |i| {
            let key = String::from_utf8_lossy(args[i]).into_owned();
            if found.last() != Some(&key) {
                found.push(key);
            }
        })
        .unwrap();
        assert_eq!(found, expected, "keys of {line}");
    }
}
