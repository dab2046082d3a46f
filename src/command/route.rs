//! Decides how the proxy serves one request: forward to the master of one slot, split across
//! slots, answer locally, send to any or all masters, or refuse with a Redis-style error.
//!
//! This is pure: arguments in, [`Route`] out, no I/O, so every rule is unit-tested here. The
//! common case (a single-key command) costs one table lookup, one key-spec walk and one CRC16.

use crate::cluster::slot::Slot;
use crate::command::keys::{for_each_key, Args, KeyError};
use crate::command::table::{self, CommandFlags, CommandSpec};

/// How a request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Every key is in this slot: forward the request as it is.
    Keyed(Slot),
    /// A multi-key command whose keys span slots: split per slot and merge.
    Split(SplitKind),
    /// Answered by the proxy itself.
    Local(Local),
    /// Keyless and the same on every master: forward to any one of them.
    AnyMaster,
    /// Keyless but about the whole data set: send to every master and merge.
    AllMasters(Merge),
    /// Needs a backend connection of its own (WATCH, a blocking command), to the master of
    /// this slot, where all its keys are.
    Dedicated(Dedicated, Slot),
    /// Refused.
    Reject(Rejection),
}

/// Why a request needs a dedicated backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedicated {
    /// WATCH: the watch lives on the connection until EXEC, DISCARD, UNWATCH or RESET.
    Watch,
    /// A blocking command (BLPOP, XREAD ... BLOCK, ...): the node holds the connection until
    /// the command is served or times out.
    Blocking,
}

/// Multi-key commands percore splits across slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    /// MGET: reply is the array of values in key order.
    Mget,
    /// MSET: key/value pairs; reply OK when every part is OK.
    Mset,
    /// DEL, UNLINK, EXISTS, TOUCH: reply is the sum of the parts' counts.
    Count,
}

/// How replies from several masters become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Sum of integer replies (DBSIZE).
    Sum,
    /// `+OK` when all are `+OK` (FLUSHALL, SCRIPT FLUSH).
    AllOk,
    /// Concatenation of array replies (KEYS).
    Concat,
    /// The first reply, when every master gave the same (SCRIPT LOAD).
    Same,
}

/// Commands the proxy answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// PING \[message\]
    Ping,
    /// ECHO message
    Echo,
    /// QUIT: OK, then close.
    Quit,
    /// SELECT: only database 0 exists in a cluster.
    Select,
    /// HELLO \[2\]: RESP2 only, since backend connections are shared.
    Hello,
    /// READONLY / READWRITE sent by cluster-aware clients: accepted, percore reads masters.
    ReadMode,
    /// CLIENT subcommands: the proxy's own clients, not the nodes'.
    Client,
    /// RANDOMKEY: from a random master that has keys.
    RandomKey,
    /// CONFIG SET / RESETSTAT / REWRITE: every master, OK only if all are (RESETSTAT also
    /// clears percore's own counters).
    ConfigAll,
    /// MULTI: the client's transaction, queued by percore.
    Multi,
    /// EXEC outside a transaction (inside one, the transaction handles it).
    Exec,
    /// DISCARD outside a transaction.
    Discard,
    /// UNWATCH: gives back the client's WATCH connection, if it has one.
    Unwatch,
    /// RESET: the client's connection state back to a new connection's.
    Reset,
    /// AUTH [user] password: percore's own users.
    Auth,
    /// ACL WHOAMI.
    AclWhoami,
    /// CLUSTER KEYSLOT key
    KeySlot,
    /// INFO: proxy sections.
    Info,
    /// PROXY INFO | LATENCY \[RESET\]
    Proxy,
}

/// Why a request is refused; each becomes the error Redis (or Redis Cluster) would give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No such command.
    UnknownCommand,
    /// No such subcommand of a container command.
    UnknownSubcommand(&'static str),
    /// Wrong argument count for the command (its full name).
    WrongArity(&'static str, Option<&'static str>),
    /// Keys in different slots and the command cannot be split.
    CrossSlot,
    /// Key arguments do not parse (e.g. a bad numkeys).
    Keys(KeyError),
    /// percore does not serve this command; the reason says why.
    Unsupported(&'static str),
}

/// Commands that would break the shared, pipelined backend connections or that administer a
/// single node: refused with a reason instead of silently misbehaving.
const PUBSUB: &str = "pub/sub needs a dedicated backend connection";
const ADMIN: &str = "node administration must go to the node directly";
const NODE_LOCAL: &str = "it has no key to route by and its answer depends on the node";
/// WAIT counts the replicas that acknowledged the writes of the connection it is sent on.
const WAIT: &str = "it counts the replicas that acknowledged the writes of one backend \
     connection, and a client's writes go over connections shared with other clients, so no \
     node can answer it for this client";

/// A command as the table knows it: the spec that applies (the subcommand's, for a container
/// command like CLIENT) and its container.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// The spec that applies.
    pub spec: &'static CommandSpec,
    /// The container command, for a subcommand.
    pub parent: Option<&'static CommandSpec>,
}

impl Command {
    /// The name as Redis reports it (`get`, `client|list`).
    pub fn full_name(&self) -> String {
        match self.parent {
            Some(parent) => format!("{}|{}", parent.name, self.spec.name),
            None => self.spec.name.to_string(),
        }
    }
}

/// Routes one request. `args.get(0)` is the command name.
pub fn route<A: Args + ?Sized>(args: &A) -> Route {
    route_command(args).0
}

/// Routes one request and says which command it is (`None` when the table does not know it,
/// and for percore's own PROXY).
pub fn route_command<A: Args + ?Sized>(args: &A) -> (Route, Option<Command>) {
    let name = args.get(0);
    if name.eq_ignore_ascii_case(b"proxy") {
        return (Route::Local(Local::Proxy), None);
    }
    let Some(spec) = table::lookup(name) else {
        return (Route::Reject(Rejection::UnknownCommand), None);
    };
    let argc = args.count();
    let top = Command { spec, parent: None };
    if !spec.arity_ok(argc) {
        return (
            Route::Reject(Rejection::WrongArity(spec.name, None)),
            Some(top),
        );
    }
    let command = match spec.subcommands.is_empty() {
        true => top,
        false => match spec.subcommand(args.get(1)) {
            Some(sub) if sub.arity_ok(argc) => Command {
                spec: sub,
                parent: Some(spec),
            },
            Some(sub) => {
                let refusal = Rejection::WrongArity(spec.name, Some(sub.name));
                return (Route::Reject(refusal), Some(top));
            }
            // CLIENT is the proxy's own (its clients, not a node's), and includes subcommands
            // newer than the table, such as CLIENT SETINFO.
            None if spec.name == "client" => return (Route::Local(Local::Client), Some(top)),
            None => {
                return (
                    Route::Reject(Rejection::UnknownSubcommand(spec.name)),
                    Some(top),
                )
            }
        },
    };
    (route_known(command, args), Some(command))
}

/// Routes a request for a command the table knows, with valid arity.
fn route_known<A: Args + ?Sized>(command: Command, args: &A) -> Route {
    let spec = command.spec;
    if spec.key_specs.is_empty() {
        return route_keyless(spec, command.parent);
    }
    if spec.flags.contains(CommandFlags::PUBSUB) {
        return Route::Reject(Rejection::Unsupported(PUBSUB));
    }
    let route = route_keys(spec, args);
    match (dedicated(spec, args), route) {
        (Some(kind), Route::Keyed(slot)) => Route::Dedicated(kind, slot),
        _ => route,
    }
}

/// Whether a keyed command needs a dedicated connection, and why.
fn dedicated<A: Args + ?Sized>(spec: &CommandSpec, args: &A) -> Option<Dedicated> {
    if spec.name == "watch" {
        return Some(Dedicated::Watch);
    }
    if !spec.flags.contains(CommandFlags::BLOCKING) {
        return None;
    }
    // XREAD and XREADGROUP only block when asked to, with BLOCK among the options before
    // STREAMS (a stream or an ID after it may well be named "block").
    let streams = matches!(spec.name, "xread" | "xreadgroup");
    let blocks = (1..args.count())
        .map(|i| args.get(i))
        .take_while(|arg| !arg.eq_ignore_ascii_case(b"streams"))
        .any(|arg| arg.eq_ignore_ascii_case(b"block"));
    (!streams || blocks).then_some(Dedicated::Blocking)
}

fn route_keys<A: Args + ?Sized>(spec: &CommandSpec, args: &A) -> Route {
    let mut first: Option<Slot> = None;
    let mut cross = false;
    let found = for_each_key(spec, args, |index| {
        let slot = Slot::for_key(args.get(index));
        match first {
            None => first = Some(slot),
            Some(seen) if seen != slot => cross = true,
            Some(_) => {}
        }
    });
    if let Err(err) = found {
        return Route::Reject(Rejection::Keys(err));
    }
    match (first, cross) {
        // e.g. EVAL with 0 keys: runs the same anywhere.
        (None, _) => Route::AnyMaster,
        (Some(slot), false) => Route::Keyed(slot),
        (Some(_), true) => match split_kind(spec.name, args.count()) {
            Some(kind) => Route::Split(kind),
            None => Route::Reject(Rejection::CrossSlot),
        },
    }
}

fn split_kind(name: &str, argc: usize) -> Option<SplitKind> {
    match name {
        "mget" => Some(SplitKind::Mget),
        "mset" if argc % 2 == 1 => Some(SplitKind::Mset),
        "del" | "unlink" | "exists" | "touch" => Some(SplitKind::Count),
        _ => None,
    }
}

fn route_keyless(spec: &'static CommandSpec, parent: Option<&'static CommandSpec>) -> Route {
    let local = |l| Route::Local(l);
    let unsupported = |reason| Route::Reject(Rejection::Unsupported(reason));
    match (parent.map(|p| p.name), spec.name) {
        (None, "ping") => local(Local::Ping),
        (None, "echo") => local(Local::Echo),
        (None, "quit") => local(Local::Quit),
        (None, "select") => local(Local::Select),
        (None, "hello") => local(Local::Hello),
        (None, "readonly" | "readwrite") => local(Local::ReadMode),
        (None, "info") => local(Local::Info),
        (None, "auth") => local(Local::Auth),
        (Some("acl"), "whoami") => local(Local::AclWhoami),
        (Some("client"), _) => local(Local::Client),
        (Some("cluster"), "keyslot") => local(Local::KeySlot),
        (None, "dbsize") => Route::AllMasters(Merge::Sum),
        (None, "flushall" | "flushdb") => Route::AllMasters(Merge::AllOk),
        (None, "keys") => Route::AllMasters(Merge::Concat),
        (Some("script"), "flush") => Route::AllMasters(Merge::AllOk),
        (Some("script"), "load") => Route::AllMasters(Merge::Same),
        (Some("function"), "load" | "delete" | "flush") => Route::AllMasters(Merge::Same),
        (None, "randomkey") => local(Local::RandomKey),
        (Some("config"), "get") => Route::AnyMaster,
        (Some("config"), "set" | "resetstat" | "rewrite") => local(Local::ConfigAll),
        (None, "time" | "lolwut" | "publish") => Route::AnyMaster,
        (Some("command"), _) | (None, "command") => Route::AnyMaster,
        (None, "multi") => local(Local::Multi),
        (None, "exec") => local(Local::Exec),
        (None, "discard") => local(Local::Discard),
        (None, "unwatch") => local(Local::Unwatch),
        (None, "reset") => local(Local::Reset),
        (None, "wait") => unsupported(WAIT),
        _ if spec.flags.contains(CommandFlags::PUBSUB) => unsupported(PUBSUB),
        _ if spec.flags.contains(CommandFlags::ADMIN) => unsupported(ADMIN),
        _ => unsupported(NODE_LOCAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(line: &str) -> Route {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        route(&args[..])
    }

    fn slot(key: &str) -> Route {
        Route::Keyed(Slot::for_key(key.as_bytes()))
    }

    fn blocking(key: &str) -> Route {
        Route::Dedicated(Dedicated::Blocking, Slot::for_key(key.as_bytes()))
    }

    #[test]
    fn routes() {
        use Rejection::*;
        let cases: &[(&str, Route)] = &[
            ("GET foo", slot("foo")),
            ("set foo bar EX 10", slot("foo")),
            ("MGET {t}a {t}b", slot("{t}a")),
            ("MGET a b", Route::Split(SplitKind::Mget)),
            ("MSET a 1 b 2", Route::Split(SplitKind::Mset)),
            ("DEL a b", Route::Split(SplitKind::Count)),
            ("EXISTS a b", Route::Split(SplitKind::Count)),
            ("MSETNX a 1 b 2", Route::Reject(CrossSlot)),
            ("RENAME a b", Route::Reject(CrossSlot)),
            ("RENAME {x}a {x}b", slot("x")),
            ("EVAL s 0", Route::AnyMaster),
            ("EVAL s 1 k", slot("k")),
            ("EVAL s 2 a b", Route::Reject(CrossSlot)),
            ("PING", Route::Local(Local::Ping)),
            ("proxy info", Route::Local(Local::Proxy)),
            ("DBSIZE", Route::AllMasters(Merge::Sum)),
            ("GET", Route::Reject(WrongArity("get", None))),
            ("NOPE x", Route::Reject(UnknownCommand)),
            ("OBJECT ENCODING k", slot("k")),
            ("OBJECT NOPE k", Route::Reject(UnknownSubcommand("object"))),
            ("BLPOP k 0", blocking("k")),
            ("BLPOP {t}a {t}b 0", blocking("t")),
            ("BLPOP a b 0", Route::Reject(CrossSlot)),
            ("BLMPOP 0 2 {t}a {t}b LEFT", blocking("t")),
            ("XREAD STREAMS s 0", slot("s")),
            ("XREAD STREAMS block 0", slot("block")),
            ("XREAD BLOCK 0 STREAMS s 0", blocking("s")),
            ("UNWATCH", Route::Local(Local::Unwatch)),
            ("RESET", Route::Local(Local::Reset)),
            ("WAIT 1 0", Route::Reject(Unsupported(WAIT))),
            ("MULTI", Route::Local(Local::Multi)),
            ("EXEC", Route::Local(Local::Exec)),
            (
                "WATCH k",
                Route::Dedicated(Dedicated::Watch, Slot::for_key(b"k")),
            ),
            (
                "WATCH {t}a {t}b",
                Route::Dedicated(Dedicated::Watch, Slot::for_key(b"t")),
            ),
            ("WATCH a b", Route::Reject(CrossSlot)),
            ("SUBSCRIBE c", Route::Reject(Unsupported(PUBSUB))),
            ("CLUSTER KEYSLOT k", Route::Local(Local::KeySlot)),
            ("CLUSTER NODES", Route::Reject(Unsupported(NODE_LOCAL))),
            ("SCAN 0", Route::Reject(Unsupported(NODE_LOCAL))),
            ("CONFIG GET x", Route::AnyMaster),
            ("CONFIG SET x 1", Route::Local(Local::ConfigAll)),
            ("RANDOMKEY", Route::Local(Local::RandomKey)),
            ("SHUTDOWN", Route::Reject(Unsupported(ADMIN))),
        ];
        for (line, expected) in cases {
            assert_eq!(route_of(line), *expected, "{line}");
        }
    }
}
