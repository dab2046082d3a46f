//! The command table checked against the live redis-server, whatever its version: the same
//! commands with the same arity and blocking flag, and the same keys found as Redis's own
//! `COMMAND GETKEYS` finds, for a sample invocation of every command built from the server's
//! `COMMAND DOCS` and for a list of hand-written requests.
//!
//! On the version the table was generated from ([`GENERATED_FROM`]) everything must match
//! both ways. A newer server may add commands or change an arity or blocking flag: those are
//! listed as newer than the table, not failed, so the tests pass on any distro's Redis while
//! still saying what percore would refuse or get wrong there. The keys of every command the
//! table has must match on any version: a wrong key routes a request to the wrong node.

mod common;

use common::{Conn, RedisCluster, Value};
use percore::command::keys::for_each_key;
use percore::command::table::{lookup, CommandFlags, CommandSpec, COMMANDS, GENERATED_FROM};

/// Synthesized invocations `COMMAND GETKEYS` may refuse before the key check counts as
/// covering too little. On 7.0.15 it refuses 3, all legitimately: SPUBLISH and SSUBSCRIBE
/// (their shard channels have key specs, which percore routes by, but are flagged as not
/// keys, so GETKEYS says the command has none) and SUNSUBSCRIBE (no required argument, and
/// GETKEYS needs one). Two more leave room for a newer server's documentation; beyond that
/// the synthesizer or the server changed and the key check silently covers less.
const MAX_REFUSALS: usize = 5;

/// How many times a `multiple` argument is repeated in a sample invocation: twice, so that
/// every key range and key step is exercised past its first key.
const MULTIPLE_TIMES: usize = 2;

/// The value of an ordinary integer argument (a count of keys gets the real count instead).
const SMALL_INT: &str = "1";

/// One command or subcommand as `COMMAND` describes it.
struct ServerCommand {
    /// Full name as Redis writes it: "get", "object|encoding".
    name: String,
    arity: i64,
    blocking: bool,
    has_key_specs: bool,
    /// A command with subcommands: not invocable alone, so it has no sample invocation.
    is_container: bool,
}

/// Every command and subcommand the server lists in `COMMAND`.
fn server_commands(c: &mut Conn) -> Vec<ServerCommand> {
    let mut out = Vec::new();
    for entry in array(&c.cmd_str("COMMAND")) {
        let fields = array(entry);
        let subcommands = array(&fields[9]);
        out.push(server_command(fields, !subcommands.is_empty()));
        for sub in subcommands {
            out.push(server_command(array(sub), false));
        }
    }
    // Sorted, so lists in the output read the same from run to run.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn server_command(fields: &[Value], is_container: bool) -> ServerCommand {
    ServerCommand {
        name: fields[0].text(),
        arity: fields[1].as_int().unwrap(),
        blocking: array(&fields[2]).iter().any(|f| f.text() == "blocking"),
        has_key_specs: !array(&fields[8]).is_empty(),
        is_container,
    }
}

/// The table's entry for a full name ("object|encoding").
fn table_spec(name: &str) -> Option<&'static CommandSpec> {
    match name.split_once('|') {
        None => lookup(name.as_bytes()),
        Some((parent, sub)) => lookup(parent.as_bytes())?.subcommand(sub.as_bytes()),
    }
}

/// Every full name in the table.
fn table_names() -> Vec<String> {
    let mut names = Vec::new();
    for spec in COMMANDS {
        names.push(spec.name.to_string());
        for sub in spec.subcommands {
            names.push(format!("{}|{}", spec.name, sub.name));
        }
    }
    names
}

fn array(value: &Value) -> &[Value] {
    match value {
        Value::Array(Some(items)) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// The value under `name` in a RESP2 map (a flat key, value, ... array).
fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    array(map)
        .chunks(2)
        .find(|pair| pair[0].text() == name)
        .map(|pair| &pair[1])
}

/// "7.0.15" as [7, 0, 15], compared part by part.
fn version(text: &str) -> Vec<u64> {
    text.split('.').map(|part| part.parse().unwrap()).collect()
}

fn server_version(c: &mut Conn) -> String {
    let info = c.cmd_str("INFO server").text();
    let line = info.lines().find_map(|l| l.strip_prefix("redis_version:"));
    line.expect("redis_version in INFO").trim().to_string()
}

/// How the server's commands compare with the table.
#[derive(Default)]
struct Comparison {
    /// On the server and not in the table.
    missing: Vec<String>,
    /// In both, with another arity or blocking flag.
    changed: Vec<String>,
    /// In the table and not on the server.
    extra: Vec<String>,
}

fn compare(server: &[ServerCommand]) -> Comparison {
    let mut out = Comparison::default();
    for command in server {
        let Some(spec) = table_spec(&command.name) else {
            out.missing.push(command.name.clone());
            continue;
        };
        let blocking = spec.flags.contains(CommandFlags::BLOCKING);
        if i64::from(spec.arity) != command.arity || blocking != command.blocking {
            out.changed.push(format!(
                "{}: arity {} blocking {} in the table, arity {} blocking {} on the server",
                command.name, spec.arity, blocking, command.arity, command.blocking
            ));
        }
    }
    for name in table_names() {
        if !server.iter().any(|command| command.name == name) {
            out.extra.push(name);
        }
    }
    out
}

#[test]
fn table_has_every_command_of_the_server_with_its_arity_and_blocking_flag() {
    let cluster = RedisCluster::start(3, 0);
    let mut c = Conn::connect(cluster.master_ports()[0]);
    let running = server_version(&mut c);
    let server = server_commands(&mut c);
    let found = compare(&server);
    println!(
        "{} commands and subcommands on redis-server {running}, table from {GENERATED_FROM}",
        server.len()
    );

    if version(&running) > version(GENERATED_FROM) {
        // percore refuses a command its table lacks as unknown, and checks arity by the
        // table: say what that leaves out on this server.
        println!("newer than the table: {:?}", found.missing);
        println!("changed since the table: {:#?}", found.changed);
        println!("in the table, gone from the server: {:?}", found.extra);
        return;
    }
    // Not newer: every server command must be in the table as it is; and on the very
    // version, nothing may be in the table that the server lacks.
    let same = version(&running) == version(GENERATED_FROM);
    if !same {
        println!("in the table, not on this older server: {:?}", found.extra);
    }
    assert!(
        found.missing.is_empty() && found.changed.is_empty() && (!same || found.extra.is_empty()),
        "redis-server {running} and the table from {GENERATED_FROM} differ (regenerate with \
         python3 bench-scripts/gen-command-table.py):\nnot in the table: {:?}\nchanged: {:#?}\n\
         not on the server: {:?}",
        found.missing,
        found.changed,
        found.extra
    );
}

/// Builds a sample invocation from `COMMAND DOCS` argument specs: required arguments only, a
/// `multiple` one twice, keys as distinct names (k1, k2, ...) so GETKEYS's answer names the
/// positions, other strings as v1, v2, ..., integers small, the first choice of a oneof, the
/// arguments of a block, tokens where the docs give them.
#[derive(Default)]
struct Invocation {
    args: Vec<String>,
    keys: usize,
    values: usize,
}

impl Invocation {
    /// The invocation of `name` ("object|encoding") as the server documents it.
    fn of(name: &str, docs: &Value) -> Invocation {
        let mut invocation = Invocation {
            args: name.split('|').map(str::to_uppercase).collect(),
            ..Invocation::default()
        };
        let doc = match name.split_once('|') {
            None => field(docs, name),
            Some((parent, _)) => field(docs, parent)
                .and_then(|parent| field(parent, "subcommands"))
                .and_then(|subs| field(subs, name)),
        };
        if let Some(arguments) = doc.and_then(|doc| field(doc, "arguments")) {
            invocation.arguments(array(arguments));
        }
        invocation
    }

    fn arguments(&mut self, specs: &[Value]) {
        for (i, spec) in specs.iter().enumerate() {
            if has_flag(spec, "optional") {
                continue;
            }
            let times = match has_flag(spec, "multiple") {
                true => MULTIPLE_TIMES,
                false => 1,
            };
            for n in 0..times {
                let token = n == 0 || has_flag(spec, "multiple_token");
                self.argument(spec, token, specs.get(i + 1));
            }
        }
    }

    /// One argument; `next` is its next sibling, which a count of keys describes.
    fn argument(&mut self, spec: &Value, with_token: bool, next: Option<&Value>) {
        let kind = field(spec, "type").map(Value::text).unwrap_or_default();
        let token = field(spec, "token").map(Value::text);
        if kind == "pure-token" {
            self.args.extend(token);
            return;
        }
        if with_token {
            self.args.extend(token);
        }
        match kind.as_str() {
            "key" => {
                self.keys += 1;
                self.args.push(format!("k{}", self.keys));
            }
            "integer" | "double" | "unix-time" => {
                let count = next.filter(|next| field(next, "type") == Some(&Value::bulk("key")));
                self.args.push(match count {
                    // numkeys: must say how many keys follow, or the keys shift.
                    Some(keys) if has_flag(keys, "optional") => "0".to_string(),
                    Some(keys) if has_flag(keys, "multiple") => MULTIPLE_TIMES.to_string(),
                    Some(_) => "1".to_string(),
                    None => SMALL_INT.to_string(),
                });
            }
            "oneof" => {
                let choices = field(spec, "arguments").map(array).unwrap_or_default();
                if let Some(first) = choices.first() {
                    self.argument(first, true, None);
                }
            }
            "block" => {
                let inner = field(spec, "arguments").map(array).unwrap_or_default();
                self.arguments(inner);
            }
            _ => {
                self.values += 1;
                self.args.push(format!("v{}", self.values));
            }
        }
    }
}

fn has_flag(spec: &Value, flag: &str) -> bool {
    field(spec, "flags").is_some_and(|flags| array(flags).iter().any(|f| f.text() == flag))
}

/// The keys `COMMAND GETKEYS` finds in `args`, or its error when it refuses them.
fn getkeys(c: &mut Conn, args: &[&str]) -> Result<Vec<String>, String> {
    let mut request: Vec<&[u8]> = vec![b"COMMAND", b"GETKEYS"];
    request.extend(args.iter().map(|a| a.as_bytes()));
    match c.cmd(&request) {
        Value::Array(Some(keys)) => Ok(keys.iter().map(Value::text).collect()),
        Value::Error(error) => Err(error),
        other => panic!("GETKEYS {args:?}: {other:?}"),
    }
}

/// The keys percore routes `args` by, in the order `for_each_key` reports them.
fn table_keys(spec: &CommandSpec, args: &[&str]) -> Vec<String> {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let mut keys = Vec::new();
    for_each_key(spec, &bytes[..], |i| keys.push(args[i].to_string()))
        .unwrap_or_else(|e| panic!("keys of {args:?}: {e}"));
    keys
}

/// The spec a request is routed by: the subcommand's for a container command.
fn request_spec(args: &[&str]) -> &'static CommandSpec {
    let spec = lookup(args[0].as_bytes()).unwrap_or_else(|| panic!("{} in the table", args[0]));
    match spec.subcommands.is_empty() {
        true => spec,
        false => spec.subcommand(args[1].as_bytes()).unwrap(),
    }
}

#[test]
fn every_command_finds_the_keys_getkeys_finds_for_a_sample_invocation() {
    let cluster = RedisCluster::start(3, 0);
    let mut c = Conn::connect(cluster.master_ports()[0]);
    let docs = c.cmd_str("COMMAND DOCS");
    let (mut keyed, mut keyless) = (0, 0);
    let mut mismatches = Vec::new();
    let mut refusals = Vec::new();
    for command in server_commands(&mut c) {
        // A command newer than the table has no entry to check (the test above lists it).
        let Some(spec) = table_spec(&command.name).filter(|_| !command.is_container) else {
            continue;
        };
        let invocation = Invocation::of(&command.name, &docs);
        let args: Vec<&str> = invocation.args.iter().map(String::as_str).collect();
        let line = args.join(" ");
        let table = table_keys(spec, &args);
        match (getkeys(&mut c, &args), command.has_key_specs) {
            (Ok(server), true) => {
                keyed += 1;
                if server != table {
                    mismatches.push(format!("{line}: GETKEYS {server:?}, table {table:?}"));
                }
            }
            (Err(error), true) => refusals.push(format!("{line}: {error}")),
            // GETKEYS refuses most keyless commands ("has no key arguments", or its own
            // arity for one without arguments); neither side may find a key.
            (server, false) => {
                keyless += 1;
                let server = server.unwrap_or_default();
                if !server.is_empty() || !table.is_empty() || !spec.key_specs.is_empty() {
                    mismatches.push(format!(
                        "{line}: no key specs on the server, {} in the table; \
                         GETKEYS {server:?}, table {table:?}",
                        spec.key_specs.len()
                    ));
                }
            }
        }
    }
    println!("{keyed} invocations with keys compared with GETKEYS, {keyless} without keys");
    println!("{} refused by GETKEYS: {refusals:#?}", refusals.len());
    assert!(mismatches.is_empty(), "keys differ: {mismatches:#?}");
    assert!(
        refusals.len() <= MAX_REFUSALS,
        "GETKEYS refused {} sample invocations (at most {MAX_REFUSALS} expected): {refusals:#?}",
        refusals.len()
    );
}

#[test]
fn hand_written_requests_find_the_keys_getkeys_finds() {
    let cluster = RedisCluster::start(3, 0);
    let mut c = Conn::connect(cluster.master_ports()[0]);
    // Optional arguments the sample invocations leave out: STORE, LIMIT, WEIGHTS, COUNT,
    // MIGRATE's KEYS with an empty key argument, numkeys less than the arguments after it.
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
        let args: Vec<&str> = line.split(' ').collect();
        let server = getkeys(&mut c, &args).unwrap_or_else(|e| panic!("GETKEYS {line}: {e}"));
        assert_eq!(
            table_keys(request_spec(&args), &args),
            server,
            "keys of {line}"
        );
    }
}
