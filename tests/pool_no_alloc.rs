//! A static pool's placement lookup (`Ring::server_for`) allocates nothing, for every hash and
//! distribution, with and without a hash tag, shown with a counting global allocator.

use percore::upstream::{Distribution, Hash, HashTag, Ring, Scheme, ServerSpec};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::thread_allocations;

#[test]
fn every_hash_and_distribution_looks_up_without_allocating() {
    let servers: Vec<ServerSpec> = [1, 3, 2, 5]
        .into_iter()
        .enumerate()
        .map(|(i, weight)| ServerSpec::new(format!("127.0.0.1:{}", 6379 + i), weight, None))
        .collect();
    let keys: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("{{user:{i}}}:{i:08}").into_bytes())
        .collect();
    let mut rings = Vec::new();
    for distribution in Distribution::ALL {
        for hash in Hash::ALL {
            for hash_tag in [None, HashTag::new(b"{}")] {
                let scheme = Scheme {
                    hash,
                    distribution,
                    hash_tag,
                };
                rings.push(Ring::build(&servers, scheme).unwrap());
            }
        }
    }
    // One lookup first, so anything lazily set up (random's thread-local generator) exists.
    for ring in &rings {
        assert!(ring.server_for(b"warm").is_some());
    }

    let before = thread_allocations();
    let mut placed = 0;
    for ring in &rings {
        for key in &keys {
            placed += ring.server_for(key).map_or(0, |_| 1);
        }
    }
    let allocations = thread_allocations() - before;
    assert_eq!(placed, rings.len() * keys.len());
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {placed} lookups"
    );
}
