//! Fuzzes the client request parser: any bytes, fed whole and then split at a point chosen by
//! the input, must parse to the same frames without panicking, and every argument range must
//! lie inside its frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore::resp::parse::{Frame, ParseLimits, RequestParser};

/// Frames of `input` as (length, argument ranges) until incomplete or error.
fn frames(input: &[u8]) -> (Vec<(usize, Vec<std::ops::Range<usize>>)>, bool) {
    let limits = ParseLimits {
        max_bulk_len: 1 << 20,
        max_multibulk_len: 1 << 16,
    };
    let mut parser = RequestParser::new(limits);
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        match parser.parse(&input[at..]) {
            Ok(Some(Frame::Multibulk { len })) => {
                assert!(len > 0 && at + len <= input.len());
                for range in parser.args() {
                    assert!(range.start <= range.end && range.end <= len);
                }
                out.push((len, parser.args().to_vec()));
                at += len;
            }
            Ok(Some(Frame::Inline { len, encoded })) => {
                assert!(len > 0 && at + len <= input.len());
                if !encoded.is_empty() {
                    let mut inner = RequestParser::new(limits);
                    assert!(matches!(
                        inner.parse(&encoded),
                        Ok(Some(Frame::Multibulk { .. }))
                    ));
                }
                out.push((len, Vec::new()));
                at += len;
            }
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let (whole, _) = frames(input);
    // A parser that saw a prefix first (and said "incomplete") resumes to the same first frame.
    let limits = ParseLimits {
        max_bulk_len: 1 << 20,
        max_multibulk_len: 1 << 16,
    };
    let split = input.last().map_or(0, |&b| b as usize % (input.len() + 1));
    let mut resumed = RequestParser::new(limits);
    if let Ok(None) = resumed.parse(&input[..split]) {
        match (resumed.parse(input), whole.first()) {
            (Ok(Some(Frame::Multibulk { len })), Some((first_len, args))) => {
                assert_eq!(len, *first_len);
                assert_eq!(resumed.args(), &args[..]);
            }
            (Ok(Some(Frame::Inline { len, .. })), Some((first_len, _))) => {
                assert_eq!(len, *first_len)
            }
            (Ok(Some(_)), None) => panic!("resumed parse found a frame the whole parse did not"),
            _ => {}
        }
    }
    // Parsing a prefix never yields a frame the whole input does not have.
    let cut = input.first().map_or(0, |&b| b as usize % (input.len() + 1));
    let (prefix, _) = frames(&input[..cut]);
    assert!(prefix.len() <= whole.len());
    assert_eq!(&whole[..prefix.len()], &prefix[..]);
});
