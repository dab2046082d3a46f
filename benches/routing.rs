//! Per-request routing costs: slot hashing (plain, hash-tagged, long keys), command-table
//! lookup, and the whole routing decision for common commands.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use percore::cluster::slot::{HashSlots, Slot};
use percore::command::fanout::plan_split;
use percore::command::keys::FrameArgs;
use percore::command::route::route;
use percore::command::route::SplitKind;
use percore::command::table::lookup;
use percore::resp::parse::{encode_request, Frame, ParseLimits, RequestParser};

fn slot_hash(c: &mut Criterion) {
    let long = vec![b'k'; 1024];
    let mut group = c.benchmark_group("slot_for_key");
    for (name, key) in [
        ("plain", &b"key:000000012345"[..]),
        ("tagged", &b"{user:1000}:followers"[..]),
        ("1KiB", &long[..]),
    ] {
        group.throughput(Throughput::Bytes(key.len() as u64));
        group.bench_function(name, |b| b.iter(|| Slot::for_key(black_box(key))));
    }
    group.finish();
}

fn command_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_lookup");
    for name in [&b"GET"[..], b"set", b"zrangebyscore", b"nosuchcommand"] {
        group.bench_function(String::from_utf8_lossy(name).to_string(), |b| {
            b.iter(|| lookup(black_box(name)).is_some())
        });
    }
    group.finish();
}

fn whole_route(c: &mut Criterion) {
    let get: Vec<&[u8]> = vec![b"GET", b"key:000000012345"];
    let set: Vec<&[u8]> = vec![b"SET", b"key:000000012345", b"xxxxxxxxxxxxxxxx"];
    let mget: Vec<&[u8]> = vec![
        b"MGET", b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i", b"j",
    ];
    let mut group = c.benchmark_group("route");
    group.bench_function("get", |b| b.iter(|| route(black_box(&get[..]))));
    group.bench_function("set", |b| b.iter(|| route(black_box(&set[..]))));
    group.bench_function("mget_10", |b| b.iter(|| route(black_box(&mget[..]))));
    group.finish();
}

/// Splitting a 100-key MGET by slot (compare.sh's mget100: every key in its own slot, most
/// likely), the plan a split request pays for before any part is sent: from the parsed
/// request, as the proxy splits it, and from arguments held apart (which must be encoded).
fn split_plan(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..100u32)
        .map(|i| format!("key:{:012}", i.wrapping_mul(2_654_435_761) % 100_000).into_bytes())
        .collect();
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(Vec::as_slice));
    let mut frame = BytesMut::new();
    encode_request(&mut frame, &mget);
    let mut parser = RequestParser::new(ParseLimits::default());
    assert!(matches!(
        parser.parse(&frame),
        Ok(Some(Frame::Multibulk { .. }))
    ));
    let parsed = FrameArgs {
        frame: &frame,
        args: parser.args(),
    };
    let mut group = c.benchmark_group("split");
    group.bench_function("mget_100", |b| {
        b.iter(|| {
            plan_split(SplitKind::Mget, black_box(&parsed), &HashSlots)
                .parts
                .len()
        })
    });
    group.bench_function("mget_100_encoded", |b| {
        b.iter(|| {
            plan_split(SplitKind::Mget, black_box(&mget[..]), &HashSlots)
                .parts
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, slot_hash, command_lookup, whole_route, split_plan);
criterion_main!(benches);
