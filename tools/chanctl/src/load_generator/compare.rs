//! Encrypted against plain, side by side in one run (`chanctl bench --compare-encrypt`): the
//! same bench ([`super::run`]) `rounds` times each way, interleaved — plain then encrypted in
//! even rounds, encrypted then plain in odd ones — each in a fresh directory under the bench
//! directory, removed after its run, so both see the same disk and the same neighbours on a
//! shared machine and neither gains from going second.
//!
//! The ratios are encrypted over plain: put throughput (write phase events/s) and take +
//! commit throughput (read phase events/s), over all rounds (total events over total time),
//! with each round's own ratios and their median beside them to show the spread. No speed is
//! asserted anywhere: the figures are for a person to read.

use super::{io_error, run, BenchOptions, PhaseReport};
use file_channel::inspect::InspectError;

/// One way's figures over all rounds.
#[derive(Clone, Debug, Default)]
pub struct WayReport {
    /// The write phases, summed (latencies merged).
    pub write: PhaseReport,
    /// The read phases, summed.
    pub read: PhaseReport,
    /// Commit-path fsyncs over the runs.
    pub fsyncs: u64,
    /// Bytes of records written (`BytesWritten`).
    pub log_bytes: u64,
    /// Of those, by the end of the write phases (put records only).
    pub write_log_bytes: u64,
}

impl WayReport {
    fn add(&mut self, r: &super::BenchReport) {
        add_phase(&mut self.write, &r.write);
        if let Some(p) = &r.read {
            add_phase(&mut self.read, p);
        }
        self.fsyncs += r.fsyncs;
        self.log_bytes += r.log_bytes;
        self.write_log_bytes += r.write_log_bytes;
    }
}

fn add_phase(to: &mut PhaseReport, p: &PhaseReport) {
    to.events += p.events;
    to.body_bytes += p.body_bytes;
    to.secs += p.secs;
    to.commit_latency.merge(&p.commit_latency);
}

/// One round's ratios, encrypted over plain.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundRatios {
    /// Put throughput.
    pub put: f64,
    /// Take + commit throughput.
    pub take: f64,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Default)]
pub struct CompareReport {
    /// Rounds run.
    pub rounds: usize,
    /// Without encryption.
    pub plain: WayReport,
    /// With a throwaway key.
    pub encrypted: WayReport,
    /// Each round's ratios.
    pub per_round: Vec<RoundRatios>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl CompareReport {
    /// Put throughput, encrypted over plain, over all rounds.
    pub fn put_ratio(&self) -> f64 {
        ratio(
            self.encrypted.write.events_per_sec(),
            self.plain.write.events_per_sec(),
        )
    }

    /// Take + commit throughput, encrypted over plain, over all rounds.
    pub fn take_ratio(&self) -> f64 {
        ratio(
            self.encrypted.read.events_per_sec(),
            self.plain.read.events_per_sec(),
        )
    }

    /// The median of the rounds' put ratios.
    pub fn put_ratio_median(&self) -> f64 {
        median(self.per_round.iter().map(|r| r.put).collect())
    }

    /// The median of the rounds' take + commit ratios.
    pub fn take_ratio_median(&self) -> f64 {
        median(self.per_round.iter().map(|r| r.take).collect())
    }
}

/// Runs `rounds` interleaved rounds of the bench `opts` describes (its `encrypt` and
/// `baseline` are ignored; `consume` is forced on, the read phase being half the comparison).
pub fn compare(opts: &BenchOptions, rounds: usize) -> Result<CompareReport, InspectError> {
    if rounds == 0 {
        return Err(InspectError::Usage("--rounds must be at least 1".into()));
    }
    if opts.dir.exists() {
        let mut it = std::fs::read_dir(&opts.dir).map_err(io_error("list", &opts.dir))?;
        if it.next().is_some() {
            return Err(InspectError::Usage(format!(
                "{} is not empty: bench needs a new or empty directory",
                opts.dir.display()
            )));
        }
    }
    let mut out = CompareReport {
        rounds,
        ..CompareReport::default()
    };
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut got = [None, None];
        for encrypt in order {
            let way = if encrypt { "encrypted" } else { "plain" };
            let dir = opts.dir.join(format!("round-{round}-{way}"));
            let one = BenchOptions {
                dir: dir.clone(),
                encrypt,
                baseline: false,
                consume: true,
                ..opts.clone()
            };
            let r = run(&one)?;
            std::fs::remove_dir_all(&dir).map_err(io_error("remove", &dir))?;
            if encrypt {
                out.encrypted.add(&r);
            } else {
                out.plain.add(&r);
            }
            got[usize::from(encrypt)] = Some(r);
        }
        if let [Some(p), Some(e)] = &got {
            let eps = |r: &super::BenchReport| r.read.as_ref().map_or(0.0, |x| x.events_per_sec());
            out.per_round.push(RoundRatios {
                put: ratio(e.write.events_per_sec(), p.write.events_per_sec()),
                take: ratio(eps(e), eps(p)),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_ratio_of_nothing_are_zero_not_nan() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }
}
