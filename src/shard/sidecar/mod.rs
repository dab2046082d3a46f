//! What percore does as a sidecar: next to an application, on a Unix socket or localhost, in
//! front of a Redis that is further away (issue 15).
//!
//! - [`preconnect`]: with `preconnect: true` a pool listens only once its shared server
//!   connections are up, so the first client does not wait for a connect;
//! - [`select`]: a one-server pool's clients SELECT any of the server's databases; percore keeps
//!   connections per database it needs, each selected once when it is opened, and a client's
//!   SELECT only changes which connections its requests take;
//! - [`background`]: background writes (`async_writes: true`), answered `+OK` at once and
//!   sent on the connection the client's later requests take;
//! - [`moves`]: what they do when their server changes: a reload's new server list waits
//!   for them, and a Sentinel failover sends them to the new master.
//!
//! A client or pool that uses none of this pays a flag check on the request path.

pub(super) mod background;
pub(super) mod moves;
pub(super) mod preconnect;
pub(super) mod select;
