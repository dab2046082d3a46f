//! The pure facts of pub/sub that routing a subscription depends on: the three kinds of
//! subscription, their Redis command and reply words, which channels are per node, and how
//! the sharded commands route (their channels count as keys).
//!
//! A Redis Cluster delivers a classic `PUBLISH` on every node, so a classic channel or pattern
//! can be subscribed on any one master. Sharded channels (`SSUBSCRIBE`) live on their slot's
//! master. Keyspace notifications (`__keyspace@<db>__:<key>`, `__keyevent@<db>__:<event>`) are
//! published by each node for its own keys only and never cross the cluster bus, so channels
//! and patterns that can carry them must be subscribed on every master.

use crate::cluster::slot::HashSlots;
use crate::command::glob::may_match_prefix;
use crate::command::keys::Args;
use crate::command::route::{route_keys, Local, Rejection, Route, PUBSUB};
use crate::command::table::CommandSpec;

/// Prefixes of the channels a node publishes keyspace notifications on.
const KEYSPACE_PREFIXES: [&[u8]; 2] = [b"__keyspace@", b"__keyevent@"];

/// A kind of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `SUBSCRIBE channel`: delivered by any node.
    Channel,
    /// `PSUBSCRIBE pattern`: delivered by any node.
    Pattern,
    /// `SSUBSCRIBE shardchannel`: delivered by the slot's master.
    Shard,
}

impl Kind {
    /// Every kind, in the order tables are kept.
    pub const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    /// An index for per-kind tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The command that subscribes.
    pub fn subscribe_command(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"SUBSCRIBE",
            Kind::Pattern => b"PSUBSCRIBE",
            Kind::Shard => b"SSUBSCRIBE",
        }
    }

    /// The command that unsubscribes.
    pub fn unsubscribe_command(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"UNSUBSCRIBE",
            Kind::Pattern => b"PUNSUBSCRIBE",
            Kind::Shard => b"SUNSUBSCRIBE",
        }
    }

    /// The first word of a subscription's confirmation frame.
    pub fn subscribed_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    /// The first word of an unsubscription's confirmation frame.
    pub fn unsubscribed_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }

    /// Whether subscriptions of this kind and of `other` count together in the number a
    /// confirmation carries (channels and patterns do; sharded channels count apart).
    pub fn counts_with(self, other: Kind) -> bool {
        (self == Kind::Shard) == (other == Kind::Shard)
    }
}

/// Whether `channel` is a keyspace-notification channel, which each node publishes only for
/// its own keys.
pub fn is_keyspace(channel: &[u8]) -> bool {
    KEYSPACE_PREFIXES.iter().any(|p| channel.starts_with(p))
}

/// Whether a subscription must be made on every master rather than on one node: a
/// keyspace-notification channel, or a pattern that could match one.
pub fn on_every_master(kind: Kind, name: &[u8]) -> bool {
    match kind {
        Kind::Channel => is_keyspace(name),
        Kind::Pattern => KEYSPACE_PREFIXES
            .iter()
            .any(|prefix| may_match_prefix(name, prefix)),
        Kind::Shard => false,
    }
}

/// Routes the sharded pub/sub commands, whose channels count as keys: all in one slot, as a
/// node requires, else CROSSSLOT.
pub(super) fn route_sharded<A: Args + ?Sized>(spec: &CommandSpec, args: &A) -> Route {
    let local = match spec.name {
        "ssubscribe" => Local::Subscribe(Kind::Shard),
        "sunsubscribe" => Local::Unsubscribe(Kind::Shard),
        "spublish" => Local::SPublish,
        _ => return Route::Reject(Rejection::Unsupported(PUBSUB)),
    };
    // Sharded channels are a cluster's: placed by hash slot.
    match route_keys(spec, args, &HashSlots) {
        // SUNSUBSCRIBE without channels has no key.
        Route::Keyed(_) | Route::AnyMaster => Route::Local(local),
        refused => refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::route::route;

    #[test]
    fn routes() {
        use Kind::*;
        use Local::*;
        let cases: &[(&str, Route)] = &[
            ("SUBSCRIBE c", Route::Local(Subscribe(Channel))),
            ("PSUBSCRIBE p*", Route::Local(Subscribe(Pattern))),
            ("UNSUBSCRIBE", Route::Local(Unsubscribe(Channel))),
            ("PUNSUBSCRIBE", Route::Local(Unsubscribe(Pattern))),
            ("SSUBSCRIBE {a}1 {a}2", Route::Local(Subscribe(Shard))),
            ("SSUBSCRIBE a b", Route::Reject(Rejection::CrossSlot)),
            ("SUNSUBSCRIBE", Route::Local(Unsubscribe(Shard))),
            ("SUNSUBSCRIBE a b", Route::Reject(Rejection::CrossSlot)),
            ("PUBLISH c m", Route::Local(Publish)),
            ("SPUBLISH c m", Route::Local(SPublish)),
            ("PUBSUB NUMSUB a b", Route::Local(Pubsub)),
            ("PUBSUB HELP", Route::AnyMaster),
        ];
        for (line, expected) in cases {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            assert_eq!(route(&args[..]), *expected, "{line}");
        }
    }

    #[test]
    fn per_node_subscriptions() {
        use Kind::*;
        let cases: &[(Kind, &str, bool)] = &[
            (Channel, "__keyspace@0__:foo", true),
            (Channel, "__keyevent@0__:set", true),
            (Channel, "news", false),
            (Pattern, "*", true),
            (Pattern, "__key*", true),
            (Pattern, "__keyevent@0__:*", true),
            (Pattern, "news.*", false),
            (Pattern, "__keyspacex", false),
            (Shard, "__keyspace@0__:foo", false),
        ];
        for (kind, name, expected) in cases {
            assert_eq!(
                on_every_master(*kind, name.as_bytes()),
                *expected,
                "{kind:?} {name}"
            );
        }
    }

    #[test]
    fn counts() {
        assert!(Kind::Channel.counts_with(Kind::Pattern));
        assert!(!Kind::Channel.counts_with(Kind::Shard));
        assert!(Kind::Shard.counts_with(Kind::Shard));
    }
}
