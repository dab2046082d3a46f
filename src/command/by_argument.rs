//! Commands routed by an argument that is not a key: CLUSTER COUNTKEYSINSLOT and
//! GETKEYSINSLOT name their slot, and DEBUG's subcommand (one word of its arguments, not a
//! subcommand of the table) decides where it goes.

use crate::cluster::slot::{Placement, Slot};
use crate::command::keys::Args;
use crate::command::route::{Command, Merge, Rejection, Route, ADMIN};
use crate::resp::line::parse_int;

/// Redis's errors for a slot argument: not a strict integer, out of range for
/// CLUSTER COUNTKEYSINSLOT, out of range (or a bad count) for CLUSTER GETKEYSINSLOT.
pub(crate) const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub(crate) const INVALID_SLOT_OR_COUNT: &str = "ERR Invalid slot or number of keys";
pub(crate) const INVALID_SLOT: &str = "ERR Invalid slot";

/// The route of a command routed by an argument, or `None` for every other command.
pub(super) fn route<A: Args + ?Sized, P: Placement>(
    command: Command,
    args: &A,
    place: &P,
) -> Option<Route> {
    if command.spec.name == "debug" && command.parent.is_none() {
        return Some(route_debug(args, place));
    }
    route_by_slot_argument(command, args)
}

/// CLUSTER COUNTKEYSINSLOT slot and GETKEYSINSLOT slot count name their slot instead of a
/// key: they go to that slot's master, and a slot Redis would refuse gets its error (checked
/// in Redis's order: the slot, then the count, must be integers; then the range).
fn route_by_slot_argument<A: Args + ?Sized>(command: Command, args: &A) -> Option<Route> {
    if command.parent?.name != "cluster" {
        return None;
    }
    let refused = |text| Some(Route::Reject(Rejection::BadArgument(text)));
    let with_count = match command.spec.name {
        "countkeysinslot" => false,
        "getkeysinslot" => true,
        _ => return None,
    };
    let Some(slot) = parse_int(args.get(2)) else {
        return refused(NOT_AN_INTEGER);
    };
    match u16::try_from(slot).ok().and_then(Slot::new) {
        // The count is the master's to check.
        Some(slot) => Some(Route::Keyed(slot)),
        None if !with_count => refused(INVALID_SLOT),
        None if parse_int(args.get(3)).is_none() => refused(NOT_AN_INTEGER),
        None => refused(INVALID_SLOT_OR_COUNT),
    }
}

/// DEBUG, which a node refuses anyway unless its `enable-debug-command` allows it: the
/// subcommands about one key go to that key's master, those that only answer (PROTOCOL,
/// STRINGMATCH-LEN) to any master, those that change how a node keeps its data (RELOAD,
/// SET-ACTIVE-EXPIRE, SLEEP, ...) to every master, OK only if all are, and DIGEST to every
/// master, their digests combined into the one node holding all the keys would give. The
/// rest are one node's business and refused.
fn route_debug<A: Args + ?Sized, P: Placement>(args: &A, place: &P) -> Route {
    let sub = args.get(1).to_ascii_lowercase();
    match sub.as_slice() {
        b"object" | b"digest-value" | b"listpack" | b"quicklist" | b"ziplist"
            if args.count() >= 3 =>
        {
            Route::Keyed(place.place(args.get(2)))
        }
        b"protocol" | b"stringmatch-len" | b"help" => Route::AnyMaster,
        b"reload"
        | b"loadaof"
        | b"set-active-expire"
        | b"quicklist-packed-threshold"
        | b"set-skip-checksum-validation"
        | b"replybuffer"
        // The whole cluster sleeps, as one node would: a node that sleeps stalls every
        // client of it anyway, shared connection or not.
        | b"sleep" => Route::AllMasters(Merge::AllOk),
        b"digest" => Route::AllMasters(Merge::Digest),
        _ => Route::Reject(Rejection::Unsupported(ADMIN)),
    }
}
