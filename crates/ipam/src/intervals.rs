//! A set of `u128` offsets stored as sorted, coalesced half-open intervals.
//!
//! Every allocator in this crate tracks "which offsets of a range are taken". Kubernetes uses a
//! `big.Int` bitmap for that; we use intervals instead because the ranges we must model are
//! sometimes enormous (an IPv4 `/8` cluster CIDR with `/32` node blocks has 2^24 blocks, an IPv6
//! Service CIDR under the IPAddress allocator has 2^64 addresses) while the work done on them is
//! small (a few thousand allocations, or one `Occupy` of a whole range). Intervals keep memory
//! proportional to the number of holes, make `Occupy`/`Release` of a large CIDR one operation,
//! and answer "first free offset at or after `x`" in `O(log n)`, which is all that round-robin and
//! random-start-linear-scan allocation need. The allocation *order* is unaffected: it is defined
//! by the allocators, this type only answers questions about membership.

use std::collections::BTreeMap;

/// Invariant: the map holds disjoint, non-adjacent intervals `start -> end` (end exclusive,
/// `start < end`), so the end of any interval is always a free offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IntervalSet {
    ranges: BTreeMap<u128, u128>,
    count: u128,
}

impl IntervalSet {
    pub(crate) fn new() -> IntervalSet {
        IntervalSet::default()
    }

    /// Number of offsets in the set.
    pub(crate) fn count(&self) -> u128 {
        self.count
    }

    pub(crate) fn contains(&self, i: u128) -> bool {
        self.ranges
            .range(..=i)
            .next_back()
            .is_some_and(|(_, &end)| i < end)
    }

    /// Adds one offset; returns whether it was absent.
    pub(crate) fn insert(&mut self, i: u128) -> bool {
        match i.checked_add(1) {
            Some(end) => self.insert_range(i, end) == 1,
            // u128::MAX itself is never an offset: ranges are at most 2^128 - 1 long.
            None => false,
        }
    }

    /// Removes one offset; returns whether it was present.
    pub(crate) fn remove(&mut self, i: u128) -> bool {
        match i.checked_add(1) {
            Some(end) => self.remove_range(i, end) == 1,
            None => false,
        }
    }

    /// Adds `[a, b)`; returns how many offsets were newly added.
    pub(crate) fn insert_range(&mut self, a: u128, b: u128) -> u128 {
        if a >= b {
            return 0;
        }
        let mut new_start = a;
        let mut new_end = b;
        let mut already = 0u128;
        // Intervals that overlap or touch [a, b) all start at or before b; walking backwards from
        // there, their ends decrease, so we can stop at the first one that ends before a.
        let touching: Vec<(u128, u128)> = self
            .ranges
            .range(..=b)
            .rev()
            .take_while(|&(_, &end)| end >= a)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            let lo = s.max(a);
            let hi = e.min(b);
            if hi > lo {
                already += hi - lo;
            }
            new_start = new_start.min(s);
            new_end = new_end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(new_start, new_end);
        let added = (b - a) - already;
        self.count += added;
        added
    }

    /// Removes `[a, b)`; returns how many offsets were removed.
    pub(crate) fn remove_range(&mut self, a: u128, b: u128) -> u128 {
        if a >= b {
            return 0;
        }
        let overlapping: Vec<(u128, u128)> = self
            .ranges
            .range(..b)
            .rev()
            .take_while(|&(_, &end)| end > a)
            .map(|(&s, &e)| (s, e))
            .collect();
        let mut removed = 0u128;
        for (s, e) in overlapping {
            self.ranges.remove(&s);
            removed += e.min(b) - s.max(a);
            if s < a {
                self.ranges.insert(s, a);
            }
            if e > b {
                self.ranges.insert(b, e);
            }
        }
        self.count -= removed;
        removed
    }

    /// The smallest offset in `[a, b)` that is not in the set.
    pub(crate) fn first_free_in(&self, a: u128, b: u128) -> Option<u128> {
        if a >= b {
            return None;
        }
        let candidate = match self.ranges.range(..=a).next_back() {
            Some((_, &end)) if end > a => end,
            _ => a,
        };
        (candidate < b).then_some(candidate)
    }

    /// The first free offset met when scanning `[start, hi)` and then wrapping to `[lo, start)`:
    /// the "linear scan with wrap-around" every Kubernetes allocator here performs.
    pub(crate) fn first_free_wrapping(&self, lo: u128, hi: u128, start: u128) -> Option<u128> {
        self.first_free_in(start, hi)
            .or_else(|| self.first_free_in(lo, start))
    }

    /// Whether every offset of `[a, b)` is in the set.
    pub(crate) fn contains_range(&self, a: u128, b: u128) -> bool {
        if a >= b {
            return true;
        }
        self.ranges
            .range(..=a)
            .next_back()
            .is_some_and(|(_, &end)| end >= b)
    }

    /// All offsets in the set, ascending. Only for small sets (tests, reporting).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.ranges.iter().flat_map(|(&s, &e)| s..e)
    }

    /// The intervals, ascending, as `(start, end_exclusive)`.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Op {
        Ins(u128, u128),
        Rem(u128, u128),
    }

    #[test]
    fn operations_keep_count_and_coalesce() {
        use Op::*;
        // (operation, change it reports, intervals afterwards)
        type Row = (Op, u128, &'static [(u128, u128)]);
        let table: &[Row] = &[
            (Ins(5, 6), 1, &[(5, 6)]),
            (Ins(9, 10), 1, &[(5, 6), (9, 10)]),
            (Ins(8, 12), 3, &[(5, 6), (8, 12)]),
            (Ins(9, 10), 0, &[(5, 6), (8, 12)]),
            (Ins(6, 8), 2, &[(5, 12)]),
            (Rem(9, 10), 1, &[(5, 9), (10, 12)]),
            (Rem(9, 10), 0, &[(5, 9), (10, 12)]),
            (Rem(4, 8), 3, &[(8, 9), (10, 12)]),
            (Rem(0, 100), 3, &[]),
        ];
        let mut s = IntervalSet::new();
        for (op, change, after) in table {
            let got = match *op {
                Ins(a, b) => s.insert_range(a, b),
                Rem(a, b) => s.remove_range(a, b),
            };
            assert_eq!(got, *change);
            assert_eq!(s.ranges().collect::<Vec<_>>(), after.to_vec());
            let expected_count: u128 = after.iter().map(|(a, b)| b - a).sum();
            assert_eq!(s.count(), expected_count);
        }
    }

    #[test]
    fn first_free_skips_runs_and_wraps() {
        let mut s = IntervalSet::new();
        s.insert_range(0, 4);
        s.insert_range(6, 10);
        // (lo, hi, start, expected)
        let table = [
            (0u128, 10u128, 0u128, Some(4u128)),
            (0, 10, 5, Some(5)),
            (0, 10, 6, Some(4)),
            (0, 4, 0, None),
            (6, 10, 7, None),
        ];
        for (lo, hi, start, want) in table {
            assert_eq!(
                s.first_free_wrapping(lo, hi, start),
                want,
                "{lo} {hi} {start}"
            );
        }
        assert!(s.contains(3));
        assert!(!s.contains(4));
        assert!(s.contains_range(6, 10));
        assert!(!s.contains_range(3, 7));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 6, 7, 8, 9]);
    }
}
