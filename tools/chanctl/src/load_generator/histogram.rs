//! A log-linear histogram of microsecond latencies, for the commit latencies and the baselines'
//! write + fdatasync latencies that `chanctl bench` reports as p50/p99.

use std::time::Duration;

/// Sub-buckets per power of two in a [`Histogram`] (about 3% resolution).
const SUB_BUCKETS: u64 = 32;
/// Buckets in a [`Histogram`]: exact below 32, then 32 per power of two up to 2^64.
const BUCKETS: usize = (SUB_BUCKETS + (64 - 5) * SUB_BUCKETS) as usize;

/// A log-linear histogram of microsecond latencies: exact below 32 µs, then 32 buckets per
/// power of two (a value is reported as its bucket's upper bound, at most 3% high).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB_BUCKETS {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // >= 5
    let sub = (v >> (e - 5)) - SUB_BUCKETS;
    (SUB_BUCKETS + (e - 5) * SUB_BUCKETS + sub) as usize
}

fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB_BUCKETS {
        return i;
    }
    let e = (i - SUB_BUCKETS) / SUB_BUCKETS + 5;
    let sub = (i - SUB_BUCKETS) % SUB_BUCKETS;
    let low = (SUB_BUCKETS + sub) << (e - 5);
    low.saturating_add((1u64 << (e - 5)) - 1)
}

impl Histogram {
    /// Records one value (µs).
    pub fn record(&mut self, us: u64) {
        if let Some(c) = self.counts.get_mut(bucket_of(us)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Records a duration.
    pub fn record_duration(&mut self, d: Duration) {
        self.record(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Adds another histogram's values.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at percentile `p` (0–100): the upper bound of its bucket, at most the maximum.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_monotone_and_tight() {
        let mut prev = 0;
        for v in (0..5000u64).chain([1 << 20, 1 << 40, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(b >= prev || v < 5000, "bucket of {v}");
            prev = b;
            let high = bucket_high(b);
            assert!(high >= v, "{v} above its bucket's bound {high}");
            assert!(high - v <= v / 32 + 1, "{v}: bucket bound {high} too loose");
        }
    }

    #[test]
    fn histogram_percentiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v);
        }
        let p50 = h.percentile(50.0);
        let p99 = h.percentile(99.0);
        assert!((500..=516).contains(&p50), "{p50}");
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.percentile(100.0), 1000);
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }
}
