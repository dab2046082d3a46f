//! A small RESP value tree, for the few replies the proxy must understand rather than
//! forward: CLUSTER SLOTS during topology refresh, and the parts of a split MGET.
//!
//! This is control-plane code: it allocates freely and is never on the per-request path of a
//! single-key command.

use crate::error::ReplyError;
use crate::resp::line::{find_crlf, parse_int};

/// Deepest nesting this recursive parser accepts. The replies it reads (CLUSTER SLOTS,
/// COMMAND) nest a handful of levels; the forwarding path uses the scanner, which has no limit.
const MAX_DEPTH: usize = 128;

/// One parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+...` (and RESP3 single-line types, kept as text).
    Simple(Vec<u8>),
    /// `-...`
    Error(Vec<u8>),
    /// `:...`
    Integer(i64),
    /// `$...`; `None` is the null bulk.
    Bulk(Option<Vec<u8>>),
    /// `*...`; `None` is the null array.
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The elements of an array, if this is one.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// The text of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(bytes)) | Value::Simple(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The value of an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

/// Parses one complete reply from the front of `buf`: the value and its length in bytes.
/// `Ok(None)` when incomplete.
pub fn parse_value(buf: &[u8]) -> Result<Option<(Value, usize)>, ReplyError> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Value, usize)>, ReplyError> {
    if depth > MAX_DEPTH {
        return Err(ReplyError::TooDeep);
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(line_end) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..line_end];
    let next = line_end + 2;
    let value = match kind {
        b'+' | b'_' | b',' | b'#' | b'(' => Value::Simple(line.to_vec()),
        b'-' => Value::Error(line.to_vec()),
        b':' => Value::Integer(parse_int(line).ok_or(ReplyError::BadLength)?),
        b'$' => {
            let len = parse_int(line).ok_or(ReplyError::BadLength)?;
            if len < 0 {
                return Ok(Some((Value::Bulk(None), next)));
            }
            let end = next + len as usize;
            if end + 2 > buf.len() {
                return Ok(None);
            }
            return Ok(Some((Value::Bulk(Some(buf[next..end].to_vec())), end + 2)));
        }
        b'*' => {
            let len = parse_int(line).ok_or(ReplyError::BadLength)?;
            if len < 0 {
                return Ok(Some((Value::Array(None), next)));
            }
            let mut items = Vec::with_capacity((len as usize).min(1024));
            let mut at = next;
            for _ in 0..len {
                let Some((item, end)) = parse_at(buf, at, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at = end;
            }
            return Ok(Some((Value::Array(Some(items)), at)));
        }
        other => return Err(ReplyError::BadType(other)),
    };
    Ok(Some((value, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_values() {
        let input = b"*3\r\n:1\r\n$2\r\nab\r\n*2\r\n+x\r\n$-1\r\n";
        let (value, len) = parse_value(input).unwrap().unwrap();
        assert_eq!(len, input.len());
        assert_eq!(
            value,
            Value::Array(Some(vec![
                Value::Integer(1),
                Value::Bulk(Some(b"ab".to_vec())),
                Value::Array(Some(vec![Value::Simple(b"x".to_vec()), Value::Bulk(None)])),
            ]))
        );
        for cut in 0..input.len() {
            assert_eq!(parse_value(&input[..cut]), Ok(None));
        }
    }
}
