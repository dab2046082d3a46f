//! twemproxy's distributions (ketama, modula, random): the table that maps a key's hash to one
//! of the live servers, built as nutcracker 0.5.0 builds its continuum.
//!
//! - Only live servers are in a table, and the weights that count are the live servers'
//!   (`ketama_update`, `modula_update`, `random_update`); they come in nutcracker's server
//!   order (sorted by name, see `ring`), and server numbers stay indices into the configured
//!   list.
//! - ketama: each live server gets `floor(weight / total * 40 * live) * 4` points, computed
//!   in `float` as nutcracker does (so 25 equal weights give 156 points each, not 160); point
//!   group `i` of a server is the MD5 digest of `"<name>-<i>"`, read as four little-endian u32
//!   points. A hash goes to the first point at or above it, wrapping to the first point.
//! - modula: the live servers, each repeated `weight` times in that order; a hash goes
//!   to entry `hash % total`. Here that is a search over cumulative weights: the same entry,
//!   without a table as long as the total weight.
//! - random: any live server, whatever the hash; weights are ignored.

use super::hash::{md5_digest, md5_word};
use super::ServerSpec;

/// Ketama's points per server at the average weight (`KETAMA_POINTS_PER_SERVER`): a server of
/// weight `w` gets about `160 * live * w / total` points.
const KETAMA_POINTS_PER_SERVER: u32 = 160;
/// Points taken from one MD5 digest: its four 32-bit words.
const KETAMA_POINTS_PER_HASH: u32 = 4;
/// The room nutcracker's point name has (`KETAMA_MAX_HOSTLEN`, 255 + `:` + port + `-` + index
/// + NUL); a longer `"<name>-<i>"` is cut to one byte less, as its `snprintf` cuts it.
const KETAMA_MAX_HOSTLEN: usize = 273;
/// nutcracker adds this (a C double) to the float before `floorf`, to round up values a hair
/// below a whole number; at realistic sizes it changes nothing, but it is part of the formula.
const KETAMA_NUDGE: f64 = 0.000_000_000_1;

/// How a pool maps a key's hash to one of its servers (YAML `distribution:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Consistent hashing on an MD5 continuum, weighted (libketama's scheme).
    Ketama,
    /// The hash modulo the total weight.
    Modula,
    /// A random live server per request.
    Random,
}

impl Distribution {
    /// Every distribution, in nutcracker's order (its `DIST_CODEC` list).
    pub const ALL: [Distribution; 3] = [
        Distribution::Ketama,
        Distribution::Modula,
        Distribution::Random,
    ];

    /// nutcracker's default when a pool names none (`CONF_DEFAULT_DIST`).
    pub const DEFAULT: Distribution = Distribution::Ketama;

    /// The distribution a YAML `distribution:` value names, if any.
    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The name twemproxy's configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        }
    }
}

/// A distribution's lookup table over the live servers; server numbers are indices into the
/// configured list.
#[derive(Clone, Debug)]
pub(super) enum Table {
    /// The continuum: point values ascending, and the server of each point (same length);
    /// apart so the search reads only values, which `buckets` narrows to a point or two.
    Ketama {
        values: Box<[u32]>,
        servers: Box<[u32]>,
        buckets: Buckets,
    },
    /// Cumulative live weights (ascending, the last is the total) and the server of each.
    Modula {
        ends: Box<[u32]>,
        servers: Box<[u32]>,
    },
    /// The live servers.
    Random { servers: Box<[u32]> },
}

impl Table {
    /// The table of `distribution` over the `live` servers (indices into `servers`, in
    /// nutcracker's order),
    /// whose weights add up to `total` (checked by the caller to fit u32, as nutcracker's sum).
    pub(super) fn build(
        distribution: Distribution,
        servers: &[ServerSpec],
        live: &[u32],
        total: u32,
    ) -> Table {
        match distribution {
            Distribution::Ketama => ketama(servers, live, total),
            Distribution::Modula => modula(servers, live),
            Distribution::Random => Table::Random {
                servers: live.into(),
            },
        }
    }

    /// The server for `hash` (ignored by random); `None` only for a table without servers.
    pub(super) fn server(&self, hash: u32) -> Option<u32> {
        match self {
            Table::Ketama {
                values,
                servers,
                buckets,
            } => {
                let at = buckets.first_at_or_above(values, hash);
                servers.get(at).or(servers.first()).copied()
            }
            Table::Modula { ends, servers } => {
                let total = *ends.last()?;
                let entry = hash.checked_rem(total)?;
                servers
                    .get(ends.partition_point(|&end| end <= entry))
                    .copied()
            }
            Table::Random { servers } if servers.is_empty() => None,
            Table::Random { servers } => servers.get(fastrand::usize(..servers.len())).copied(),
        }
    }
}

/// How many points ketama gives a live server of `weight`, in nutcracker's `float` arithmetic:
/// `floorf(pct * 160 / 4 * live + 1e-10) * 4`, each step rounded to f32 as C rounds it on
/// x86-64 (the `+ 1e-10` in double, then back to float).
fn ketama_points(weight: u32, total: u32, live: usize) -> u32 {
    let pct = weight as f32 / total as f32;
    let spread =
        pct * KETAMA_POINTS_PER_SERVER as f32 / KETAMA_POINTS_PER_HASH as f32 * live as f32;
    let nudged = (f64::from(spread) + KETAMA_NUDGE) as f32;
    (nudged.floor() * KETAMA_POINTS_PER_HASH as f32) as u32
}

/// The continuum of the `live` servers, sorted by point value.
fn ketama(servers: &[ServerSpec], live: &[u32], total: u32) -> Table {
    let mut points: Vec<(u32, u32)> = Vec::new();
    for &index in live {
        let server = &servers[index as usize];
        let name = server.ketama_name();
        let groups = ketama_points(server.weight(), total, live.len()) / KETAMA_POINTS_PER_HASH;
        for group in 0..groups {
            let mut point_name = format!("{name}-{group}").into_bytes();
            point_name.truncate(KETAMA_MAX_HOSTLEN - 1);
            let digest = md5_digest(&point_name);
            for word in 0..KETAMA_POINTS_PER_HASH as usize {
                points.push((md5_word(&digest, word), index));
            }
        }
    }
    // Stable, so equal values (two 32-bit MD5 words colliding) keep server order, as
    // glibc's merge-sort qsort keeps them; the search then finds the first of them.
    points.sort_by_key(|&(value, _)| value);
    let values: Box<[u32]> = points.iter().map(|&(value, _)| value).collect();
    Table::Ketama {
        buckets: Buckets::over(&values),
        servers: points.iter().map(|&(_, server)| server).collect(),
        values,
    }
}

/// Most bits of a hash that index [`Buckets`]: 65,537 starts (256 KiB) at most, for rings of
/// 400-odd servers and more; three servers' 480 points get 512 buckets (2 KiB).
const MAX_BUCKET_BITS: u32 = 16;

/// Where each range of hashes starts in a continuum: bucket `b` holds the hashes whose top bits
/// are `b`, and `starts[b]` is the first point at or above the bucket's lowest hash. With about
/// as many buckets as points, finding a hash's point reads one start and a point or two,
/// instead of a binary search's ten dependent reads over the whole continuum: that search was
/// most of what routing a 100-key MGET cost on a static pool (one search per key).
#[derive(Clone, Debug)]
pub(super) struct Buckets {
    /// `2^bits + 1` positions in the continuum, ascending; the last is its length.
    starts: Box<[u32]>,
    /// `32 - bits`: a hash's bucket is `hash >> shift`.
    shift: u32,
}

impl Buckets {
    /// The buckets of the ascending `values`.
    fn over(values: &[u32]) -> Buckets {
        let bits = (usize::BITS - values.len().leading_zeros()).clamp(1, MAX_BUCKET_BITS);
        let shift = u32::BITS - bits;
        let starts = (0..=1u64 << bits)
            .map(|bucket| {
                let lowest = bucket << shift;
                values.partition_point(|&value| u64::from(value) < lowest) as u32
            })
            .collect();
        Buckets { starts, shift }
    }

    /// The position of the first of `values` (those the buckets were built over) at or above
    /// `hash`; `values.len()` when there is none.
    fn first_at_or_above(&self, values: &[u32], hash: u32) -> usize {
        let bucket = (hash >> self.shift) as usize;
        let (Some(&low), Some(&high)) = (self.starts.get(bucket), self.starts.get(bucket + 1))
        else {
            return values.partition_point(|&value| value < hash);
        };
        let (low, high) = (low as usize, high as usize);
        low + values[low..high].partition_point(|&value| value < hash)
    }
}

/// modula's entries of the `live` servers as cumulative weight ranges.
fn modula(servers: &[ServerSpec], live: &[u32]) -> Table {
    let mut end = 0u32;
    let ends = live
        .iter()
        .map(|&index| {
            // The caller checked that the live weights add up within u32.
            end += servers[index as usize].weight();
            end
        })
        .collect();
    Table::Modula {
        ends,
        servers: live.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The buckets only narrow the search: every hash finds the point a binary search over
        // the whole continuum finds, whatever the points (clustered, equal, at the ends).
        #[test]
        fn buckets_find_the_first_point_at_or_above_a_hash(
            mut values in proptest::collection::vec(any::<u32>(), 0..2000),
            hashes in proptest::collection::vec(any::<u32>(), 1..200),
            extremes in proptest::collection::vec(prop_oneof![Just(0u32), Just(u32::MAX)], 0..4),
        ) {
            values.extend(extremes);
            values.sort_unstable();
            let buckets = Buckets::over(&values);
            for hash in hashes.into_iter().chain([0, u32::MAX]).chain(values.iter().copied()) {
                prop_assert_eq!(
                    buckets.first_at_or_above(&values, hash),
                    values.partition_point(|&value| value < hash)
                );
            }
        }
    }

    fn servers(weights: &[u32]) -> Vec<ServerSpec> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| ServerSpec::new(format!("127.0.0.1:{}", 6379 + i), w, None))
            .collect()
    }

    fn all_live(servers: &[ServerSpec]) -> Vec<u32> {
        (0..servers.len() as u32).collect()
    }

    #[test]
    fn names_are_twemproxys() {
        for distribution in Distribution::ALL {
            assert_eq!(
                Distribution::from_name(distribution.name()),
                Some(distribution)
            );
        }
        assert_eq!(Distribution::from_name("Ketama"), None);
        assert_eq!(Distribution::DEFAULT.name(), "ketama");
    }

    #[test]
    fn ketama_point_counts_are_nutcrackers_float_arithmetic() {
        // From nutcracker's own expression compiled with gcc on x86-64.
        let cases = [
            ((1, 3, 3), 160),
            ((1, 24, 24), 160),
            ((1, 25, 25), 156),
            ((1, 13, 4), 48),
            ((2, 13, 4), 96),
            ((3, 13, 4), 144),
            ((7, 13, 4), 344),
            ((7, 10, 3), 336),
            ((100, 300, 3), 160),
            ((1, 1_000_001, 2), 0),
            ((1_000_000, 1_000_001, 2), 316),
        ];
        for ((weight, total, live), want) in cases {
            let got = ketama_points(weight, total, live);
            assert_eq!(got, want, "{weight}/{total} of {live}");
        }
    }

    #[test]
    fn ketama_points_are_md5_words_of_name_dash_index() {
        // md5("127.0.0.1:6379-0") = 0657b78b aa661008 fec6986c 779eff28: four LE words.
        let two = servers(&[1, 1]);
        let Table::Ketama {
            values, servers, ..
        } = Table::build(Distribution::Ketama, &two, &[0, 1], 2)
        else {
            panic!("not a ketama table");
        };
        assert_eq!(values.len(), 320);
        for point in [0x8bb75706, 0x081066aa, 0x6c98c6fe, 0x28ff9e77] {
            let at = values.binary_search(&point).expect("point on the ring");
            assert_eq!(servers[at], 0);
        }
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn long_names_are_cut_like_snprintf() {
        let long = "n".repeat(300);
        let a = ServerSpec::new("127.0.0.1:1", 1, Some(long.clone()));
        let b = ServerSpec::new("127.0.0.1:2", 1, Some(long + "different tail"));
        let table = |s: ServerSpec| match Table::build(Distribution::Ketama, &[s], &[0], 1) {
            Table::Ketama { values, .. } => values,
            _ => unreachable!(),
        };
        // Both point names are cut to the same 272 bytes: the same points.
        assert_eq!(table(a), table(b));
    }

    #[test]
    fn ketama_search_wraps_past_the_last_point() {
        let three = servers(&[1, 2, 3]);
        let table = Table::build(Distribution::Ketama, &three, &all_live(&three), 6);
        let Table::Ketama {
            values, servers, ..
        } = &table
        else {
            unreachable!()
        };
        let last = values[values.len() - 1];
        assert_eq!(table.server(u32::MAX), Some(servers[0]));
        assert_eq!(table.server(last), Some(servers[values.len() - 1]));
        assert_eq!(table.server(0), Some(servers[0]));
        assert_eq!(table.server(values[5] + 1), Some(servers[6]));
    }

    #[test]
    fn modula_repeats_each_server_weight_times() {
        let three = servers(&[1, 2, 3]);
        let table = Table::build(Distribution::Modula, &three, &all_live(&three), 6);
        // Entries s0 s1 s1 s2 s2 s2, picked by hash % 6.
        let owners: Vec<Option<u32>> = (0..12).map(|hash| table.server(hash)).collect();
        let want = [0, 1, 1, 2, 2, 2, 0, 1, 1, 2, 2, 2].map(Some);
        assert_eq!(owners, want);
        // Without s1: s0 s2 s2 s2.
        let table = Table::build(Distribution::Modula, &three, &[0, 2], 4);
        let owners: Vec<Option<u32>> = (0..8).map(|hash| table.server(hash)).collect();
        assert_eq!(owners, [0, 2, 2, 2, 0, 2, 2, 2].map(Some));
    }

    #[test]
    fn empty_tables_have_no_server() {
        for distribution in Distribution::ALL {
            assert_eq!(Table::build(distribution, &[], &[], 0).server(7), None);
        }
    }
}
