//! Per-request routing costs: slot hashing (plain, hash-tagged, long keys), command-table
//! lookup, and the whole routing decision for common commands.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use percore::cluster::slot::Slot;
use percore::command::route::route;
use percore::command::table::lookup;

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

criterion_group!(benches, slot_hash, command_lookup, whole_route);
criterion_main!(benches);
