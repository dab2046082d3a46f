//! Commands: the table of every Redis command with its key positions, key extraction, the
//! routing decision for a request, splitting/merging of multi-key commands, SCAN's cursor
//! across masters, and which arguments logs must hide.

// Generated data, reached through `table` (which re-exports it with the types it uses).
mod commands;
pub(crate) mod cursor;
pub(crate) mod fanout;
mod keyless;
pub mod keys;
pub mod redact;
pub mod route;
pub mod table;
