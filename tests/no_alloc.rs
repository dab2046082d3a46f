//! The per-request work that does not touch a socket — parsing a GET or SET from the client
//! buffer, routing it (command lookup, key specs, slot) and scanning its reply — allocates
//! nothing, shown with a counting global allocator.

use bytes::BytesMut;
use percore::command::keys::Args;
use percore::command::route::{route, Route};
use percore::resp::parse::{encode_request, Frame, ParseLimits, RequestParser};
use percore::resp::scan::ReplyScanner;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::thread_allocations;

/// The arguments of the frame at the front of a buffer, as the client path sees them.
struct View<'a> {
    frame: &'a [u8],
    args: &'a [std::ops::Range<usize>],
}

impl Args for View<'_> {
    fn count(&self) -> usize {
        self.args.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        self.args.get(index).map_or(&[], |r| &self.frame[r.clone()])
    }
}

#[test]
fn get_and_set_parse_route_and_scan_without_allocating() {
    let mut wire = BytesMut::new();
    for i in 0..1000 {
        let key = format!("key:{i:012}");
        encode_request(&mut wire, &[b"GET", key.as_bytes()]);
        encode_request(&mut wire, &[b"SET", key.as_bytes(), b"0123456789abcdef"]);
    }
    let replies = b"$16\r\n0123456789abcdef\r\n+OK\r\n".repeat(1000);
    let mut parser = RequestParser::new(ParseLimits::default());
    // One request first, so the parser's reusable argument vector exists.
    assert!(parser.parse(&wire).unwrap().is_some());
    let mut scanner = ReplyScanner::new();

    let before = thread_allocations();
    let (mut at, mut keyed) = (0, 0);
    while let Ok(Some(Frame::Multibulk { len })) = parser.parse(&wire[at..]) {
        let view = View {
            frame: &wire[at..at + len],
            args: parser.args(),
        };
        if let Route::Keyed(_) = route(&view) {
            keyed += 1;
        }
        at += len;
    }
    let mut scanned = 0;
    let mut pos = 0;
    while let Ok(Some(len)) = scanner.scan(&replies[pos..]) {
        pos += len;
        scanned += 1;
    }
    let allocated = thread_allocations() - before;

    assert_eq!((keyed, scanned), (2000, 2000));
    assert_eq!(allocated, 0, "allocations on the parse/route/scan path");
}
