//! Request parsing and reply scanning throughput: the two per-byte costs of the hot path.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use percore::resp::parse::{encode_request, ParseLimits, RequestParser};
use percore::resp::scan::ReplyScanner;

fn request(args: &[&[u8]]) -> BytesMut {
    let mut out = BytesMut::new();
    encode_request(&mut out, args);
    out
}

/// Parses every request in `input`, as the client reader does.
fn parse_all(parser: &mut RequestParser, input: &[u8]) -> usize {
    let mut at = 0;
    let mut count = 0;
    while let Ok(Some(frame)) = parser.parse(&input[at..]) {
        let percore::resp::parse::Frame::Multibulk { len } = frame else {
            break;
        };
        at += len;
        count += parser.args().len();
    }
    count
}

fn requests(c: &mut Criterion) {
    let mut cases: Vec<(String, BytesMut)> =
        vec![("get".into(), request(&[b"GET", b"key:000000012345"]))];
    for size in [16usize, 1024, 16 * 1024] {
        let value = vec![b'x'; size];
        cases.push((
            format!("set_{size}B"),
            request(&[b"SET", b"key:000000012345", &value]),
        ));
    }
    let keys: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect();
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(Vec::as_slice));
    cases.push(("mget_100".into(), request(&mget)));
    let mut pipeline = BytesMut::new();
    for i in 0..64 {
        let key = format!("key:{i:012}");
        encode_request(&mut pipeline, &[b"GET", key.as_bytes()]);
    }
    cases.push(("pipeline_64_get".into(), pipeline));

    let mut group = c.benchmark_group("parse_request");
    for (name, input) in &cases {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            let mut parser = RequestParser::new(ParseLimits::default());
            b.iter(|| parse_all(&mut parser, black_box(input)))
        });
    }
    group.finish();
}

fn replies(c: &mut Criterion) {
    let mut mget = BytesMut::new();
    mget.extend_from_slice(b"*100\r\n");
    for _ in 0..100 {
        mget.extend_from_slice(b"$16\r\nxxxxxxxxxxxxxxxx\r\n");
    }
    let mut big = format!("${}\r\n", 16 * 1024).into_bytes();
    big.extend(vec![b'x'; 16 * 1024]);
    big.extend_from_slice(b"\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ok", b"+OK\r\n".to_vec()),
        ("bulk_16B", b"$16\r\nxxxxxxxxxxxxxxxx\r\n".to_vec()),
        ("bulk_16KiB", big),
        ("mget_100", mget.to_vec()),
    ];
    let mut group = c.benchmark_group("scan_reply");
    for (name, input) in &cases {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            let mut scanner = ReplyScanner::new();
            b.iter(|| scanner.scan(black_box(input)))
        });
    }
    group.finish();
}

criterion_group!(benches, requests, replies);
criterion_main!(benches);
