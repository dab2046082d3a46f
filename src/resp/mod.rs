//! RESP, the Redis wire protocol: parsing client requests, finding reply boundaries, writing
//! the frames the proxy makes itself, reading a subscribed connection's pub/sub frames, and a
//! small value tree for control-plane replies.

pub(crate) mod encode;
mod inline;
pub(crate) mod line;
pub mod parse;
pub mod push;
pub mod scan;
pub mod value;

/// The protocol a client speaks, chosen with `HELLO 2|3`. Replies from a backend are
/// forwarded as they are, so a client is served by backend connections of its own protocol;
/// what percore builds itself (merged replies, local answers) is encoded in it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, what every connection starts with.
    #[default]
    Resp2,
    /// RESP3 (maps, sets, nulls, doubles, verbatim strings, push messages).
    Resp3,
}

impl Protocol {
    /// The protocol version number, as HELLO names it.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }

    /// An index for per-protocol tables (0 for RESP2, 1 for RESP3).
    pub fn index(self) -> usize {
        self as usize
    }
}
