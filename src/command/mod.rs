//! Commands: the table of every Redis command with its key positions, key extraction, the
//! routing decision for a request, splitting/merging of multi-key commands, SCAN's cursor
//! across masters, which arguments logs must hide, and where a blocking command keeps its
//! timeout.

pub mod blocking;
// Generated data, reached through `table` (which re-exports it with the types it uses).
mod commands;
pub(crate) mod cursor;
pub(crate) mod fanout;
mod keyless;
pub mod keys;
pub mod redact;
pub mod route;
pub mod table;
