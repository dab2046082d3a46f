//! Fuzzes the backend reply scanner: for any bytes it must not panic, must agree with the
//! value parser on where a complete reply ends, and must give the same answer when the
//! bytes arrive in two pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore::resp::scan::ReplyScanner;
use percore::resp::value::parse_value;

fuzz_target!(|input: &[u8]| {
    let whole = ReplyScanner::new().scan(input);
    if let Ok(Some(len)) = whole {
        assert!(len > 0 && len <= input.len());
        if let Ok(Some((_, value_len))) = parse_value(input) {
            assert_eq!(len, value_len);
        }
    }
    let cut = input.first().map_or(0, |&b| b as usize % (input.len() + 1));
    let mut scanner = ReplyScanner::new();
    match scanner.scan(&input[..cut]) {
        Ok(None) => assert_eq!(scanner.scan(input), whole),
        Ok(Some(len)) => assert_eq!(whole, Ok(Some(len))),
        Err(_) => assert!(whole.is_err() || matches!(whole, Ok(Some(_)))),
    }
});
