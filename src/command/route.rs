//! Decides how the proxy serves one request: forward to the master of one slot, split across
//! slots, answer locally, send to any or all masters, or refuse with a Redis-style error.
//!
//! This is pure: arguments in, [`Route`] out, no I/O, so every rule is unit-tested here. The
//! common case (a single-key command) costs one table lookup, one key-spec walk and one CRC16.

use crate::cluster::slot::{HashSlots, Placement, Slot};
use crate::command::keys::{for_each_key, Args};
use crate::command::pubsub::{self, Kind};
use crate::command::table::{self, CommandFlags, CommandSpec};
use crate::command::{by_argument, keyless};

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
    /// Arrays of 0/1, element by element: 1 only where every master said 1 (SCRIPT EXISTS:
    /// a script is there for the client only if every master has it).
    AllTrue,
    /// DEBUG DIGEST: the digest one node holding every master's keys would give.
    Digest,
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
    /// HELLO \[protover \[AUTH user pass\] \[SETNAME name\]\]: RESP2 or RESP3, as Redis 7.
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
    /// AUTH \[user\] password: percore's own users.
    Auth,
    /// ACL WHOAMI.
    AclWhoami,
    /// CLUSTER KEYSLOT key
    KeySlot,
    /// CLUSTER SLOTS | SHARDS | NODES | INFO | MYID: the cluster percore presents.
    Cluster,
    /// INFO \[section ...\]: the proxy's own sections, and the masters' merged.
    Info,
    /// SCRIPT KILL / FUNCTION KILL: every master, each on a connection of its own (a busy
    /// node does not read the connection whose script it runs); OK if any killed one.
    Kill,
    /// PROXY INFO | LATENCY \[RESET\] | SLOWLOG \[count\]
    Proxy,
    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE (its channels all in one slot): the core's
    /// subscription hub.
    Subscribe(Kind),
    /// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE.
    Unsubscribe(Kind),
    /// PUBLISH: any master (the cluster delivers it everywhere), its count of receivers
    /// made percore's.
    Publish,
    /// SPUBLISH: the channel's slot master, its count made percore's.
    SPublish,
    /// PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB: percore's subscribers
    /// and the nodes' own.
    Pubsub,
    /// SCAN: every master in turn, the cursor naming the master and its own cursor.
    Scan,
    /// SLOWLOG GET | LEN | RESET | HELP: percore's own slow log, every core's.
    Slowlog,
    /// MONITOR: every request the proxy receives, from every core.
    Monitor,
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
    /// A static pool's: keys on different servers and the command cannot be split.
    CrossServer,
    /// percore does not serve this command; the reason says why.
    Unsupported(&'static str),
    /// An argument Redis would refuse; the error text as Redis words it.
    BadArgument(&'static str),
}

/// Commands that would break the shared, pipelined backend connections or that administer a
/// single node: refused with a reason instead of silently misbehaving.
pub(super) const BLOCKING: &str = "blocking commands would stall a shared backend connection";
pub(super) const PUBSUB: &str = "percore's pub/sub hub does not know this command";
pub(super) const ADMIN: &str = "node administration must go to the node directly";
pub(super) const NODE_LOCAL: &str = "it has no key to route by and its answer depends on the node";
/// WAIT counts the replicas that acknowledged the writes of the connection it is sent on.
pub(super) const WAIT: &str = "it counts the replicas that acknowledged the writes of one \
     backend connection, and a client's writes go over connections shared with other clients, \
     so no node can answer it for this client";

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

/// Routes one request to a Redis Cluster. `args.get(0)` is the command name.
pub fn route<A: Args + ?Sized>(args: &A) -> Route {
    route_command(args).0
}

/// Routes one request to a Redis Cluster and says which command it is (`None` when the table
/// does not know it, and for percore's own PROXY).
pub fn route_command<A: Args + ?Sized>(args: &A) -> (Route, Option<Command>) {
    route_command_in(args, &HashSlots)
}

/// Routes one request, placing its keys with `place`, and says which command it is.
pub fn route_command_in<A: Args + ?Sized, P: Placement>(
    args: &A,
    place: &P,
) -> (Route, Option<Command>) {
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
    // A container that may run bare (COMMAND, arity -1) is the command itself then.
    let command = match spec.subcommands.is_empty() || argc == 1 {
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
    (route_known(command, args, place), Some(command))
}

/// Routes a request for a command the table knows, with valid arity.
fn route_known<A: Args + ?Sized, P: Placement>(command: Command, args: &A, place: &P) -> Route {
    let spec = command.spec;
    if let Some(route) = by_argument::route(command, args, place) {
        return route;
    }
    if spec.key_specs.is_empty() {
        return keyless::route_keyless(spec, command.parent);
    }
    if spec.flags.contains(CommandFlags::PUBSUB) {
        return pubsub::route_sharded(spec, args);
    }
    let route = route_keys(spec, args, place);
    match (dedicated(spec, args), route) {
        (Some(kind), Route::Keyed(slot)) => Route::Dedicated(kind, slot),
        // A blocking command whose keys cannot be found (BLMPOP 0 -1 k LEFT, XREAD BLOCK 0
        // STREAMS a b c) is malformed and never blocks: the node refuses it at once, in its
        // own words (`route_keys` sends it to any master).
        _ => route,
    }
}

/// Routes a request queued in a transaction: as [`route`], but a blocking command is routed by
/// its keys, since inside MULTI it does not block (Redis runs it as its non-blocking form).
pub fn route_queued<A: Args + ?Sized, P: Placement>(
    command: Command,
    args: &A,
    place: &P,
) -> Route {
    let spec = command.spec;
    if spec.flags.contains(CommandFlags::BLOCKING) && !spec.key_specs.is_empty() {
        return route_keys(spec, args, place);
    }
    route_known(command, args, place)
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

/// Routes by the keys: their slot, split per slot, or CROSSSLOT.
pub(super) fn route_keys<A: Args + ?Sized, P: Placement>(
    spec: &CommandSpec,
    args: &A,
    place: &P,
) -> Route {
    let mut first: Option<Slot> = None;
    let mut cross = false;
    let found = for_each_key(spec, args, |index| {
        // Once two keys differ, the rest cannot change the route (split or CROSSSLOT), and
        // placing a key is most of the routing cost of a long MGET or MSET.
        if cross {
            return;
        }
        let slot = place.place(args.get(index));
        match first {
            None => first = Some(slot),
            Some(seen) if seen != slot => cross = true,
            Some(_) => {}
        }
    });
    if found.is_err() {
        // A bad numkeys: Redis Cluster finds no keys and runs the command on whichever node
        // got it, whose command gives the error in its own words (see `command::keys`).
        return Route::AnyMaster;
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
            ("EVAL s -1 k", Route::AnyMaster),
            ("EVAL s 2 k", Route::AnyMaster),
            ("ZUNIONSTORE a 1.5 b", Route::Reject(CrossSlot)),
            ("BLMPOP 0 -1 k LEFT", Route::AnyMaster),
            ("BLMPOP 0 1 k LEFT", blocking("k")),
            ("BLMPOP 0 x k LEFT", Route::AnyMaster),
            ("XREAD BLOCK 0 STREAMS a b c", Route::AnyMaster),
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
            ("DEBUG OBJECT k", slot("k")),
            ("DEBUG PROTOCOL attrib", Route::AnyMaster),
            ("DEBUG RELOAD", Route::AllMasters(Merge::AllOk)),
            ("DEBUG SLEEP 0", Route::AllMasters(Merge::AllOk)),
            ("DEBUG DIGEST", Route::AllMasters(Merge::Digest)),
            ("SAVE", Route::AllMasters(Merge::AllOk)),
            ("BGSAVE", Route::AllMasters(Merge::Same)),
            ("LATENCY LATEST", Route::Keyed(Slot::FIRST)),
            ("LATENCY RESET", Route::AllMasters(Merge::Sum)),
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
            ("SUBSCRIBE c", Route::Local(Local::Subscribe(Kind::Channel))),
            ("CLUSTER KEYSLOT k", Route::Local(Local::KeySlot)),
            ("CLUSTER NODES", Route::Local(Local::Cluster)),
            ("cluster slots", Route::Local(Local::Cluster)),
            ("CLUSTER LINKS", Route::Reject(Unsupported(NODE_LOCAL))),
            (
                "CLUSTER COUNTKEYSINSLOT 7",
                Route::Keyed(Slot::new(7).unwrap()),
            ),
            (
                "CLUSTER COUNTKEYSINSLOT 16384",
                Route::Reject(BadArgument(by_argument::INVALID_SLOT)),
            ),
            (
                "CLUSTER COUNTKEYSINSLOT -1",
                Route::Reject(BadArgument(by_argument::INVALID_SLOT)),
            ),
            (
                "CLUSTER COUNTKEYSINSLOT 01",
                Route::Reject(BadArgument(by_argument::NOT_AN_INTEGER)),
            ),
            (
                "CLUSTER COUNTKEYSINSLOT +1",
                Route::Reject(BadArgument(by_argument::NOT_AN_INTEGER)),
            ),
            (
                "CLUSTER GETKEYSINSLOT 16383 -1",
                Route::Keyed(Slot::new(16383).unwrap()),
            ),
            (
                "CLUSTER GETKEYSINSLOT x 1",
                Route::Reject(BadArgument(by_argument::NOT_AN_INTEGER)),
            ),
            (
                "CLUSTER GETKEYSINSLOT 16384 x",
                Route::Reject(BadArgument(by_argument::NOT_AN_INTEGER)),
            ),
            (
                "CLUSTER GETKEYSINSLOT 16384 1",
                Route::Reject(BadArgument(by_argument::INVALID_SLOT_OR_COUNT)),
            ),
            ("SCAN 0", Route::Local(Local::Scan)),
            (
                "SCAN 0 MATCH a* COUNT 5 TYPE hash",
                Route::Local(Local::Scan),
            ),
            ("SCAN", Route::Reject(WrongArity("scan", None))),
            ("CONFIG GET x", Route::AnyMaster),
            ("COMMAND", Route::AnyMaster),
            ("COMMAND COUNT", Route::AnyMaster),
            ("CONFIG SET x 1", Route::Local(Local::ConfigAll)),
            ("RANDOMKEY", Route::Local(Local::RandomKey)),
            ("SHUTDOWN", Route::Reject(Unsupported(ADMIN))),
            ("SCRIPT EXISTS a b", Route::AllMasters(Merge::AllTrue)),
            ("SCRIPT KILL", Route::Local(Local::Kill)),
            ("FUNCTION KILL", Route::Local(Local::Kill)),
            ("FUNCTION LIST", Route::AnyMaster),
            ("FUNCTION RESTORE x", Route::AllMasters(Merge::Same)),
            ("LASTSAVE", Route::AnyMaster),
            ("MEMORY STATS", Route::Keyed(Slot::FIRST)),
            ("MEMORY DOCTOR", Route::Keyed(Slot::FIRST)),
            ("MEMORY USAGE k", slot("k")),
            ("INFO keyspace cpu", Route::Local(Local::Info)),
            ("SLOWLOG GET 5", Route::Local(Local::Slowlog)),
            ("slowlog reset", Route::Local(Local::Slowlog)),
            ("SLOWLOG NOPE", Route::Reject(UnknownSubcommand("slowlog"))),
            ("MONITOR", Route::Local(Local::Monitor)),
        ];
        for (line, expected) in cases {
            assert_eq!(route_of(line), *expected, "{line}");
        }
    }
}
