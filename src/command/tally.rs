//! The merge of a split command whose reply keeps nothing of its parts' replies (MSET's
//! `+OK` when every part said OK, DEL's and the like's sum), folded as the parts' replies
//! arrive instead of kept until the last one: a 10-part MSET then holds no reply (each a
//! reference into its backend connection's read buffer, which it would keep from being reused
//! in place) and allocates no list for them. The result is exactly [`super::fanout::merge_all`]'s
//! over the same replies in part order, whatever order they arrive in.

use bytes::{Bytes, BytesMut};

use super::fanout::{integer, unexpected};
use super::route::Merge;
use crate::resp::encode;

/// A fold of part replies.
#[derive(Debug)]
pub struct Tally {
    /// Sum of the integer replies ([`Merge::Sum`]); unused for [`Merge::AllOk`].
    sum: i64,
    /// Sum, or AllOk.
    summing: bool,
    /// The error reply of the lowest part that gave one.
    error: Option<(usize, Bytes)>,
    /// The lowest part whose reply is neither an error nor what the merge expects.
    odd: Option<(usize, Bytes)>,
}

impl Tally {
    /// A fold for `merge`, if it is one that can be folded ([`Merge::Sum`], [`Merge::AllOk`]).
    pub fn new(merge: Merge) -> Option<Tally> {
        let summing = match merge {
            Merge::Sum => true,
            Merge::AllOk => false,
            _ => return None,
        };
        Some(Tally {
            sum: 0,
            summing,
            error: None,
            odd: None,
        })
    }

    /// Takes the reply of part `index`.
    pub fn add(&mut self, index: usize, reply: Bytes) {
        if reply.first() == Some(&b'-') {
            return keep_lowest(&mut self.error, index, reply);
        }
        if self.summing {
            match integer(&reply) {
                Some(n) => self.sum = self.sum.saturating_add(n),
                None => keep_lowest(&mut self.odd, index, reply),
            }
        } else if reply.as_ref() != encode::OK {
            keep_lowest(&mut self.odd, index, reply);
        }
    }

    /// The merged reply.
    pub fn finish(self) -> Bytes {
        match (self.error, self.odd) {
            (Some((_, error)), _) => error,
            (None, Some((_, odd))) if self.summing => unexpected(&odd),
            (None, Some((_, odd))) => odd,
            (None, None) if self.summing => {
                let mut out = BytesMut::with_capacity(24);
                encode::integer(&mut out, self.sum);
                out.freeze()
            }
            (None, None) => Bytes::from_static(encode::OK),
        }
    }
}

/// Keeps `reply` in `kept` if it comes from a lower part than the one kept.
fn keep_lowest(kept: &mut Option<(usize, Bytes)>, index: usize, reply: Bytes) {
    if kept.as_ref().is_none_or(|(at, _)| index < *at) {
        *kept = Some((index, reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::fanout::merge_all;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Folds `replies` arriving in the order `arrival` gives (indexes into `replies`).
    fn folded(merge: Merge, replies: &[Bytes], arrival: &[usize]) -> Bytes {
        let mut tally = Tally::new(merge).expect("a foldable merge");
        for &index in arrival {
            tally.add(index, replies[index].clone());
        }
        tally.finish()
    }

    #[test]
    fn folds_to_what_the_merge_of_every_reply_gives_in_any_arrival_order() {
        let cases: [(Merge, &[&str]); 8] = [
            (Merge::Sum, &[":2\r\n", ":3\r\n", ":0\r\n"]),
            (Merge::Sum, &[":2\r\n", "-ERR b\r\n", "-ERR c\r\n"]),
            (Merge::Sum, &["+OK\r\n", ":1\r\n", "$1\r\nx\r\n"]),
            (Merge::Sum, &["+OK\r\n", ":1\r\n", "-MOVED 1 x:1\r\n"]),
            (Merge::AllOk, &["+OK\r\n", "+OK\r\n", "+OK\r\n"]),
            (Merge::AllOk, &["+OK\r\n", "-ERR one\r\n", "-ERR two\r\n"]),
            (Merge::AllOk, &["+OK\r\n", ":1\r\n", "+QUEUED\r\n"]),
            (
                Merge::Sum,
                &[":9223372036854775807\r\n", ":5\r\n", ":1\r\n"],
            ),
        ];
        let orders = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [1, 0, 2]];
        for (merge, replies) in cases {
            let replies: Vec<Bytes> = replies.iter().map(|r| b(r)).collect();
            let expected = merge_all(merge, &replies);
            for order in orders {
                assert_eq!(
                    folded(merge, &replies, &order),
                    expected,
                    "{replies:?} {order:?}"
                );
            }
        }
    }

    #[test]
    fn only_sums_and_all_ok_fold() {
        assert!(Tally::new(Merge::Concat).is_none());
        assert!(Tally::new(Merge::Same).is_none());
        assert_eq!(folded(Merge::Sum, &[], &[]), b(":0\r\n"));
        assert_eq!(folded(Merge::AllOk, &[], &[]), b("+OK\r\n"));
    }
}
