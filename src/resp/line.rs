//! The line-level pieces of RESP that requests and replies share: finding a line's end, the
//! strict integers of `*count`, `$len` and `:n` lines (Redis's `string2ll`), and a one-pass
//! reader for the plain headers nearly every frame has. Apart from the parser and the reply
//! scanner because both, and the merges, read these lines.

/// The number of a `*count` or `$len` header whose digits start at `from`, and where its line
/// ends, when the line is complete and plainly formed: 1 to 9 digits without a leading zero
/// (bar `0` itself), then CRLF, as every client sends them. Anything else (a sign, more digits,
/// a line not all here yet, a malformed one) is `None`, for [`find_crlf`] and [`parse_int`]
/// to parse, or refuse in Redis's words. Most of a request's parsing is its headers, and this
/// reads each byte once instead of searching for the line end and then parsing.
#[inline(always)]
pub(crate) fn short_header(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let line = buf.get(from..)?;
    let mut value = 0usize;
    for (at, &byte) in line.iter().enumerate().take(10) {
        match byte {
            b'0'..=b'9' => value = value * 10 + usize::from(byte - b'0'),
            b'\r' if at > 0 && line.get(at + 1) == Some(&b'\n') => {
                let leading_zero = at > 1 && line[0] == b'0';
                return (!leading_zero).then_some((value, from + at));
            }
            _ => return None,
        }
    }
    None
}

/// Position of the first `\r\n` at or after `from`.
pub(crate) fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < buf.len() {
        let cr = at + buf[at..].iter().position(|&b| b == b'\r')?;
        if buf.get(cr + 1) == Some(&b'\n') {
            return Some(cr);
        }
        if cr + 1 >= buf.len() {
            return None;
        }
        at = cr + 1;
    }
    None
}

/// Strict decimal integer, as Redis's `string2ll`: optional '-', no '+', no leading zeros,
/// no spaces, no overflow.
pub(crate) fn parse_int(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(i64::from(d - b'0'))?
        } else {
            value.checked_add(i64::from(d - b'0'))?
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-5"), Some(-5));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1a",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_int(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn short_headers_take_only_plain_complete_lines() {
        for (line, expected) in [
            (&b"3\r\n"[..], Some((3, 1))),
            (b"0\r\n", Some((0, 1))),
            (b"999999999\r\nx", Some((999_999_999, 9))),
            (b"1000000000\r\n", None),
            (b"03\r\n", None),
            (b"-1\r\n", None),
            (b"+3\r\n", None),
            (b"\r\n", None),
            (b"3\r", None),
            (b"3", None),
            (b"3\rx\r\n", None),
            (b"", None),
        ] {
            assert_eq!(short_header(line, 0), expected, "{:?}", line);
        }
    }

    proptest! {
        /// Where the fast header path answers, it answers as the general one would.
        #[test]
        fn short_header_agrees_with_the_general_path(
            line in prop::collection::vec(prop::sample::select(&b"0123456789\r\n-+ a"[..]), 0..14),
        ) {
            if let Some((value, end)) = short_header(&line, 0) {
                prop_assert_eq!(find_crlf(&line, 0), Some(end));
                prop_assert_eq!(parse_int(&line[..end]), Some(value as i64));
            }
        }
    }
}
