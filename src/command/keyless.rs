//! The routing decision for commands without keys: which the proxy answers itself, which go
//! to one master or to every master (and how their replies merge), and which are refused and
//! why. One table, read as the spec, with the reasons beside the refusals.

use crate::cluster::slot::Slot;
use crate::command::pubsub::Kind;
use crate::command::route::{
    Local, Merge, Rejection, Route, ADMIN, BLOCKING, NODE_LOCAL, PUBSUB, WAIT,
};
use crate::command::table::{CommandFlags, CommandSpec};

/// Routes a command that has no keys; `parent` is its container for a subcommand.
pub(super) fn route_keyless(
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
) -> Route {
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
        (Some("cluster"), "slots" | "shards" | "nodes" | "info" | "myid") => local(Local::Cluster),
        (Some("slowlog"), _) => local(Local::Slowlog),
        (None, "monitor") => local(Local::Monitor),
        (None, "dbsize") => Route::AllMasters(Merge::Sum),
        (None, "flushall" | "flushdb") => Route::AllMasters(Merge::AllOk),
        (None, "keys") => Route::AllMasters(Merge::Concat),
        (Some("script"), "flush") => Route::AllMasters(Merge::AllOk),
        (Some("script"), "load") => Route::AllMasters(Merge::Same),
        (Some("function"), "load" | "delete" | "flush" | "restore") => {
            Route::AllMasters(Merge::Same)
        }
        (Some("script"), "exists") => Route::AllMasters(Merge::AllTrue),
        (Some("script" | "function"), "kill") => local(Local::Kill),
        // Every master holds the same functions; any one can list them.
        (Some("function"), "list" | "dump" | "stats") => Route::AnyMaster,
        (Some("script" | "function" | "memory"), "help") => Route::AnyMaster,
        (None, "lastsave") => Route::AnyMaster,
        // Snapshots of every master: what saving "the cluster" means.
        (None, "save") => Route::AllMasters(Merge::AllOk),
        (None, "bgsave" | "bgrewriteaof") => Route::AllMasters(Merge::Same),
        // Latency events are each node's; the master of slot 0's are shown (the same node
        // every time), and a reset clears them on every master.
        (Some("latency"), "reset") => Route::AllMasters(Merge::Sum),
        (Some("latency"), "latest" | "history" | "doctor" | "graph" | "histogram") => {
            Route::Keyed(Slot::FIRST)
        }
        (Some("latency"), "help") => Route::AnyMaster,
        // A self test of the node's HyperLogLog code: any node's answer is the answer.
        (None, "pfselftest") => Route::AnyMaster,
        // About one node's memory: always the same node, the master of slot 0, so repeated
        // calls compare like with like.
        (Some("memory"), "stats" | "doctor" | "malloc-stats") => Route::Keyed(Slot::FIRST),
        (Some("memory"), "purge") => Route::AllMasters(Merge::AllOk),
        (None, "randomkey") => local(Local::RandomKey),
        (None, "scan") => local(Local::Scan),
        (Some("config"), "get") => Route::AnyMaster,
        (Some("config"), "set" | "resetstat" | "rewrite") => local(Local::ConfigAll),
        (None, "time" | "lolwut") => Route::AnyMaster,
        (Some("command"), _) | (None, "command") => Route::AnyMaster,
        (None, "subscribe") => local(Local::Subscribe(Kind::Channel)),
        (None, "psubscribe") => local(Local::Subscribe(Kind::Pattern)),
        (None, "unsubscribe") => local(Local::Unsubscribe(Kind::Channel)),
        (None, "punsubscribe") => local(Local::Unsubscribe(Kind::Pattern)),
        (None, "publish") => local(Local::Publish),
        (Some("pubsub"), "help") => Route::AnyMaster,
        (Some("pubsub"), _) => local(Local::Pubsub),
        (None, "multi") => local(Local::Multi),
        (None, "exec") => local(Local::Exec),
        (None, "discard") => local(Local::Discard),
        (None, "unwatch") => local(Local::Unwatch),
        (None, "reset") => local(Local::Reset),
        (None, "wait") => unsupported(WAIT),
        _ if spec.flags.contains(CommandFlags::BLOCKING) => unsupported(BLOCKING),
        _ if spec.flags.contains(CommandFlags::PUBSUB) => unsupported(PUBSUB),
        _ if spec.flags.contains(CommandFlags::ADMIN) => unsupported(ADMIN),
        _ => unsupported(NODE_LOCAL),
    }
}
