//! Commands: the table of every Redis command with its key positions, key extraction, the
//! routing decision for a request, splitting/merging of multi-key commands (and folding the
//! replies of those whose merge keeps none), SCAN's cursor across masters, which arguments
//! logs must hide, where a blocking command keeps its timeout, the pure parts of pub/sub
//! (glob patterns, where each kind of subscription lives), and which writes have a reply
//! known before they run (background writes).

pub mod blocking;
mod by_argument;
// Generated data, reached through `table` (which re-exports it with the types it uses).
mod commands;
pub(crate) mod cursor;
pub mod fanout;
pub mod fixed_reply;
pub mod glob;
mod keyless;
pub mod keys;
pub mod pubsub;
pub mod redact;
pub mod route;
pub mod static_pool;
pub mod table;
pub mod tally;
