//! [`ConsumedSet`]: which sequence numbers have been consumed, in memory proportional to the
//! number of out-of-order gaps, not to the number of events.
//!
//! Everything below the low-water mark is consumed; above it, a sorted map of disjoint,
//! non-adjacent `[start, end)` ranges holds take commits that completed out of order. When the
//! range starting at the low-water mark appears, the mark jumps over it.

use std::collections::BTreeMap;

/// The set of consumed sequence numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumedSet {
    lwm: u64,
    ranges: BTreeMap<u64, u64>,
    above_lwm: u64,
}

impl ConsumedSet {
    /// A set in which everything below `lwm` is consumed.
    pub fn new(lwm: u64) -> Self {
        Self {
            lwm,
            ranges: BTreeMap::new(),
            above_lwm: 0,
        }
    }

    /// The low-water mark: the smallest sequence number not consumed.
    pub fn low_water_mark(&self) -> u64 {
        self.lwm
    }

    /// Consumed ranges above the low-water mark, in order.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    /// Number of out-of-order ranges held.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Consumed sequence numbers above the low-water mark.
    pub fn consumed_above_lwm(&self) -> u64 {
        self.above_lwm
    }

    /// Whether `seq` is consumed.
    pub fn contains(&self, seq: u64) -> bool {
        if seq < self.lwm {
            return true;
        }
        match self.ranges.range(..=seq).next_back() {
            Some((_, &end)) => seq < end,
            None => false,
        }
    }

    /// How many sequence numbers of `[start, end)` are consumed.
    pub fn count_in(&self, start: u64, end: u64) -> u64 {
        if start >= end {
            return 0;
        }
        let mut n = end.min(self.lwm).saturating_sub(start);
        let from = start.max(self.lwm);
        if from >= end {
            return n;
        }
        if let Some((_, &e)) = self.ranges.range(..from).next_back() {
            n += e.min(end).saturating_sub(from);
        }
        for (&s, &e) in self.ranges.range(from..end) {
            n += e.min(end) - s;
        }
        n
    }

    /// Marks `[start, end)` consumed; returns how many of those were not consumed before
    /// (inserting is idempotent, so replaying a take record twice changes nothing).
    pub fn insert(&mut self, start: u64, end: u64) -> u64 {
        let mut start = start.max(self.lwm);
        let mut end = end;
        if start >= end {
            return 0;
        }
        let mut added = end - start;
        // Absorb every range that overlaps or touches [start, end).
        let mut absorbed = Vec::new();
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e >= start {
                absorbed.push((s, e));
            }
        }
        for (&s, &e) in self.ranges.range(start..=end) {
            if absorbed.last() != Some(&(s, e)) {
                absorbed.push((s, e));
            }
        }
        for (s, e) in absorbed {
            self.ranges.remove(&s);
            let overlap = e.min(end).saturating_sub(s.max(start));
            added -= overlap;
            self.above_lwm -= e - s;
            start = start.min(s);
            end = end.max(e);
        }
        if start == self.lwm {
            self.lwm = end;
        } else {
            self.ranges.insert(start, end);
            self.above_lwm += end - start;
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn count_in_counts_the_mark_and_the_ranges_inside_the_window() {
        let mut c = ConsumedSet::new(10);
        c.insert(20, 30);
        c.insert(40, 45);
        assert_eq!(c.count_in(0, 100), 10 + 10 + 5);
        assert_eq!(c.count_in(5, 25), 5 + 5);
        assert_eq!(c.count_in(25, 42), 5 + 2);
        assert_eq!(c.count_in(12, 20), 0);
        assert_eq!(c.count_in(30, 30), 0);
        assert_eq!(c.count_in(43, 44), 1);
    }

    #[test]
    fn out_of_order_ranges_collapse_into_the_mark() {
        let mut c = ConsumedSet::new(10);
        assert_eq!(c.insert(20, 30), 10);
        assert_eq!(c.insert(12, 15), 3);
        assert_eq!(
            (c.low_water_mark(), c.range_count(), c.consumed_above_lwm()),
            (10, 2, 13)
        );
        assert_eq!(c.insert(15, 20), 5);
        assert_eq!(c.range_count(), 1);
        assert_eq!(c.insert(10, 12), 2);
        assert_eq!(
            (c.low_water_mark(), c.range_count(), c.consumed_above_lwm()),
            (30, 0, 0)
        );
        assert_eq!(c.insert(0, 30), 0);
    }

    proptest! {
        #[test]
        fn agrees_with_a_plain_set(ops in prop::collection::vec((0u64..200, 1u64..20), 0..60)) {
            let mut c = ConsumedSet::new(5);
            let mut model: BTreeSet<u64> = (0..5).collect();
            for (s, len) in ops {
                let before = model.len();
                model.extend(s..s + len);
                let added = c.insert(s, s + len);
                prop_assert_eq!(added as usize, model.len() - before);
            }
            for seq in 0..260 {
                prop_assert_eq!(c.contains(seq), model.contains(&seq), "seq {}", seq);
            }
            let lwm = (0..).find(|s| !model.contains(s)).unwrap_or(0);
            prop_assert_eq!(c.low_water_mark(), lwm);
            prop_assert_eq!(c.consumed_above_lwm() as usize, model.iter().filter(|&&s| s >= lwm).count());
            for (a, b) in [(0u64, 260u64), (3, 17), (50, 120), (199, 230)] {
                prop_assert_eq!(c.count_in(a, b) as usize, model.range(a..b).count());
            }
        }
    }
}
