//! The routing decision for a static (twemproxy) pool, made from the cluster's: a static pool's
//! servers are standalone redis-servers, so nothing it answers may speak of a cluster (no
//! CROSSSLOT, no slot numbers, no CLUSTER topology), and what only a cluster has is refused
//! in the pool's own words.
//!
//! nutcracker (0.5.0, checked) closes the client's connection without a reply for every
//! command it does not serve (SELECT, RENAME, MSETNX, MULTI, WATCH, blocking commands,
//! SUBSCRIBE, CLUSTER, ...) and logs "parsed unsupported command"; for the multi-key commands
//! it serves but cannot split (SMOVE, EVAL, SUNIONSTORE, ...) it sends the whole command to
//! the first key's server, which then runs it on the keys it has. percore serves all of those
//! whose keys are on one server, and answers the rest with an error naming the reason,
//! keeping the connection.
//!
//! This is pure: the cluster's [`Route`] in, the static pool's out, so every rule is tested
//! here.

use crate::command::pubsub::Kind;
use crate::command::route::{Command, Local, Rejection, Route};

/// Why CLUSTER and ASKING are refused by a static pool.
pub(crate) const NOT_A_CLUSTER: &str = "this pool's servers are standalone, not a Redis \
     Cluster; nutcracker does not serve it either";

/// Why sharded pub/sub is refused by a static pool.
pub(crate) const SHARDED_PUBSUB: &str = "sharded channels belong to a Redis Cluster; a static \
     pool serves SUBSCRIBE and PUBLISH";

/// The reply to a multi-key command whose keys are on different servers and that cannot be
/// split per server (RENAME, SMOVE, SUNIONSTORE, EVAL, MSETNX, BLPOP, WATCH, ...).
pub const CROSS_SERVER: &str = "ERR percore: the keys of this command are on different servers \
     of the pool, and it cannot be split across servers (with a hash_tag in the pool's \
     configuration, keys sharing a tag are on one server)";

/// EXEC's reply to a transaction whose commands touch keys on different servers.
pub const CROSS_SERVER_EXEC: &str = "ERR percore: the transaction touches keys on different \
     servers of the pool, so no server can run it atomically; nothing ran (with a hash_tag in \
     the pool's configuration, keys sharing a tag are on one server)";

/// The static pool's route for a request the cluster rules routed as `route`.
pub fn route(route: Route, command: Option<Command>) -> Route {
    let name = command.map(|c| c.parent.unwrap_or(c.spec).name);
    match (name, route) {
        (Some("cluster" | "asking"), _) => Route::Reject(Rejection::Unsupported(NOT_A_CLUSTER)),
        (Some("ssubscribe" | "sunsubscribe" | "spublish"), _) => {
            Route::Reject(Rejection::Unsupported(SHARDED_PUBSUB))
        }
        (_, Route::Local(Local::Subscribe(Kind::Shard) | Local::Unsubscribe(Kind::Shard))) => {
            Route::Reject(Rejection::Unsupported(SHARDED_PUBSUB))
        }
        (_, Route::Reject(Rejection::CrossSlot)) => Route::Reject(Rejection::CrossServer),
        (_, route) => route,
    }
}

/// Redis's reply to SELECT of an index that is not a strict integer.
pub const SELECT_NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
/// Redis's reply to SELECT of an index the server does not have.
pub const SELECT_OUT_OF_RANGE: &str = "ERR DB index is out of range";

/// The database `SELECT requested` moves a client of a one-server pool to, whose server has
/// `databases` databases: validated as Redis validates it (a strict integer, then the
/// range), with Redis's error otherwise. percore keeps the connections per database, so the
/// client may select any of them.
pub fn select_one_server(requested: &[u8], databases: u32) -> Result<u16, &'static str> {
    let index = crate::resp::line::parse_int(requested).ok_or(SELECT_NOT_AN_INTEGER)?;
    match u16::try_from(index) {
        Ok(db) if u32::from(db) < databases => Ok(db),
        _ => Err(SELECT_OUT_OF_RANGE),
    }
}

/// The reply to `SELECT db` from a client of a pool whose connections are on `pool_db`: OK
/// for the pool's own database (nothing changes), else an error (without the leading `-`).
/// The backend connections are shared by every client of the core, and a pool of several
/// servers keeps none per database, so no client may move them to another one; nutcracker
/// refuses every SELECT.
pub fn select(requested: &[u8], pool_db: u32) -> Result<(), String> {
    if requested == pool_db.to_string().as_bytes() {
        return Ok(());
    }
    Err(format!(
        "ERR percore: 'select' is not supported (this pool's server connections are shared by \
         its clients and all use the pool's redis_db, {pool_db}; nutcracker refuses SELECT too)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::slot::{Placement, Slot};
    use crate::command::route::{route_command_in, SplitKind};

    /// Two servers: a key's server is its first byte's parity, and a `{x}` key is `x`'s.
    struct TwoServers;

    impl Placement for TwoServers {
        fn place(&self, key: &[u8]) -> Slot {
            let at = match key {
                [b'{', tag, ..] => *tag,
                [first, ..] => *first,
                [] => 0,
            };
            Slot::new(u16::from(at % 2)).unwrap()
        }
    }

    fn route_of(line: &str) -> Route {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let (cluster_route, command) = route_command_in(&args[..], &TwoServers);
        route(cluster_route, command)
    }

    #[test]
    fn routes() {
        use Rejection::*;
        let cases: &[(&str, Route)] = &[
            ("RENAME a b", Route::Reject(CrossServer)),
            ("SMOVE a b m", Route::Reject(CrossServer)),
            ("SUNIONSTORE a b", Route::Reject(CrossServer)),
            ("EVAL s 2 a b", Route::Reject(CrossServer)),
            ("MSETNX a 1 b 2", Route::Reject(CrossServer)),
            ("BLPOP a b 0", Route::Reject(CrossServer)),
            ("WATCH a b", Route::Reject(CrossServer)),
            ("MGET a b", Route::Split(SplitKind::Mget)),
            ("CLUSTER INFO", Route::Reject(Unsupported(NOT_A_CLUSTER))),
            (
                "CLUSTER KEYSLOT a",
                Route::Reject(Unsupported(NOT_A_CLUSTER)),
            ),
            (
                "CLUSTER COUNTKEYSINSLOT 1",
                Route::Reject(Unsupported(NOT_A_CLUSTER)),
            ),
            (
                "CLUSTER COUNTKEYSINSLOT 99999",
                Route::Reject(Unsupported(NOT_A_CLUSTER)),
            ),
            ("CLUSTER LINKS", Route::Reject(Unsupported(NOT_A_CLUSTER))),
            ("ASKING", Route::Reject(Unsupported(NOT_A_CLUSTER))),
            ("SSUBSCRIBE a", Route::Reject(Unsupported(SHARDED_PUBSUB))),
            ("SSUBSCRIBE a b", Route::Reject(Unsupported(SHARDED_PUBSUB))),
            ("SUNSUBSCRIBE", Route::Reject(Unsupported(SHARDED_PUBSUB))),
            ("SPUBLISH a m", Route::Reject(Unsupported(SHARDED_PUBSUB))),
            (
                "SUBSCRIBE a b",
                Route::Local(Local::Subscribe(Kind::Channel)),
            ),
            ("SELECT 3", Route::Local(Local::Select)),
        ];
        for (line, expected) in cases {
            assert_eq!(route_of(line), *expected, "{line}");
        }
        // Keys on one server keep the cluster's route, by server position.
        let one = Route::Keyed(Slot::new(1).unwrap());
        assert_eq!(route_of("RENAME {a}x {a}y"), one);
        assert_eq!(route_of("EVAL s 2 a c"), one);
    }

    #[test]
    fn select_takes_only_the_pool_s_database() {
        assert_eq!(select(b"3", 3), Ok(()));
        assert_eq!(select(b"0", 0), Ok(()));
        let refused = select(b"0", 3).unwrap_err();
        assert!(refused.starts_with("ERR percore: 'select' is not supported"));
        assert!(refused.contains("redis_db, 3"), "{refused}");
        assert!(select(b"03", 3).is_err());
    }

    #[test]
    fn one_server_select_validates_as_redis_does() {
        let cases: &[(&str, u32, Result<u16, &str>)] = &[
            ("0", 16, Ok(0)),
            ("15", 16, Ok(15)),
            ("16", 16, Err(SELECT_OUT_OF_RANGE)),
            ("-1", 16, Err(SELECT_OUT_OF_RANGE)),
            ("99999999999", 16, Err(SELECT_OUT_OF_RANGE)),
            ("99999999999999999999", 16, Err(SELECT_NOT_AN_INTEGER)),
            ("03", 16, Err(SELECT_NOT_AN_INTEGER)),
            ("+1", 16, Err(SELECT_NOT_AN_INTEGER)),
            ("abc", 16, Err(SELECT_NOT_AN_INTEGER)),
            ("", 16, Err(SELECT_NOT_AN_INTEGER)),
            ("1.0", 16, Err(SELECT_NOT_AN_INTEGER)),
            ("100", 128, Ok(100)),
            ("65535", 65536, Ok(65535)),
            ("65536", 65536, Err(SELECT_OUT_OF_RANGE)),
        ];
        for (requested, databases, expected) in cases {
            let got = select_one_server(requested.as_bytes(), *databases);
            assert_eq!(got, *expected, "SELECT {requested} of {databases}");
        }
    }

    #[test]
    fn no_text_speaks_of_a_cluster_s_slots() {
        for text in [CROSS_SERVER, CROSS_SERVER_EXEC, SHARDED_PUBSUB] {
            assert!(
                !text.contains("slot") && !text.contains("CROSSSLOT"),
                "{text}"
            );
        }
    }
}
