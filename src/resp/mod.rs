//! RESP, the Redis wire protocol: parsing client requests, finding reply boundaries, writing
//! the frames the proxy makes itself, and a small value tree for control-plane replies.

pub(crate) mod encode;
mod inline;
pub mod parse;
pub mod scan;
pub mod value;
