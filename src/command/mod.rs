//! Commands: the table of every Redis command with its key positions, key extraction, the
//! routing decision for a request, splitting/merging of multi-key commands, and where a
//! blocking command keeps its timeout.

// Generated data, reached through `table` (which re-exports it with the types it uses).
pub mod blocking;
mod commands;
pub(crate) mod fanout;
pub mod keys;
pub mod route;
pub mod table;
