//! Static pools' per-request placement cost: each of twemproxy's twelve hashes alone on a
//! 16-byte key, and the whole "which server owns this key" lookup (`Ring::server_for`) for
//! each hash under ketama and modula, plus random, over 4 servers of unequal weights; and
//! with a `{}` hash tag. The slot hash of Redis Cluster (`routing` bench) is the comparison.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use percore::upstream::{Distribution, Hash, HashTag, Ring, Scheme, ServerSpec};

/// A 16-byte key, the size the figures use.
const KEY: &[u8; 16] = b"key:000000012345";
/// The same size with a hash tag, for the tag scan.
const TAGGED_KEY: &[u8; 16] = b"{user:1000}:name";

/// Four servers, unequal weights (so ketama has 640 points of mixed counts), named.
fn servers() -> Vec<ServerSpec> {
    [(6379, 1), (6380, 2), (6381, 3), (6382, 2)]
        .into_iter()
        .map(|(port, weight)| {
            let name = format!("redis-{port}");
            ServerSpec::new(format!("127.0.0.1:{port}"), weight, Some(name))
        })
        .collect()
}

fn hashes(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_hash");
    group.throughput(Throughput::Bytes(KEY.len() as u64));
    for hash in Hash::ALL {
        group.bench_function(hash.name(), |b| b.iter(|| hash.of(black_box(KEY))));
    }
    group.finish();
}

fn lookups(c: &mut Criterion) {
    let servers = servers();
    let mut group = c.benchmark_group("pool_server_for");
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        for hash in Hash::ALL {
            let scheme = Scheme {
                hash,
                distribution,
                hash_tag: None,
            };
            let ring = Ring::build(&servers, scheme).expect("valid servers");
            let id = BenchmarkId::new(distribution.name(), hash.name());
            group.bench_function(id, |b| b.iter(|| ring.server_for(black_box(KEY))));
        }
    }
    let random = Scheme {
        distribution: Distribution::Random,
        ..Scheme::default()
    };
    let ring = Ring::build(&servers, random).expect("valid servers");
    group.bench_function("random", |b| b.iter(|| ring.server_for(black_box(KEY))));
    let tagged = Scheme {
        hash_tag: HashTag::new(b"{}"),
        ..Scheme::default()
    };
    let ring = Ring::build(&servers, tagged).expect("valid servers");
    group.bench_function("ketama/fnv1a_64/tagged", |b| {
        b.iter(|| ring.server_for(black_box(TAGGED_KEY)))
    });
    group.finish();
}

criterion_group!(benches, hashes, lookups);
criterion_main!(benches);
