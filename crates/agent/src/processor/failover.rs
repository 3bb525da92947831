//! The `failover` sink processor, step for step as Flume's `FailoverSinkProcessor`:
//!
//! 1. Sinks whose cool-down has ended (refresh time < now), earliest first, are retried. A
//!    retry that delivers puts the sink back among the live ones (so a higher-priority sink
//!    takes over again) and ends the call; one that finds nothing to take keeps it set aside
//!    without a new penalty and ends the call; one that fails adds a failure and sets it aside
//!    again for min(maxpenalty, 1000 · 2^k) ms, k its consecutive failures.
//! 2. The live sink with the highest priority is called. If it fails it is set aside with
//!    k = 1 (2000 ms) and the next live sink is called, in the same call.
//! 3. With no live sink left the call fails, and the runner sleeps its 5 s.
//!
//! Flume computes 2^k in a 32-bit int, which wraps after 31 consecutive failures and makes
//! the cool-down negative (immediate retries); ours saturates at `maxpenalty`.

use super::{exponential_ms, Clock, SinkProcessor};
use crate::runner::Status;
use crate::sink::{Sink, SinkError};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Failed {
    refresh_ms: u64,
    priority: i64,
    sink: usize,
    failures: u32,
}

/// The failover processor.
pub struct Failover {
    group: String,
    sinks: Vec<Box<dyn Sink>>,
    live: BTreeMap<i64, usize>,
    failed: Vec<Failed>,
    max_penalty_ms: u64,
    clock: Arc<dyn Clock>,
}

impl Failover {
    /// A processor over `sinks` with `priorities` (same order; unique).
    pub fn new(
        group: &str,
        sinks: Vec<Box<dyn Sink>>,
        priorities: &[i64],
        max_penalty_ms: u64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let live = priorities.iter().copied().zip(0..sinks.len()).collect();
        Self {
            group: group.to_owned(),
            sinks,
            live,
            failed: Vec::new(),
            max_penalty_ms,
            clock,
        }
    }

    fn set_aside(&mut self, mut f: Failed) {
        f.refresh_ms = self.clock.now_ms() + exponential_ms(f.failures, self.max_penalty_ms);
        tracing::warn!(
            group = %self.group,
            sink = self.sinks[f.sink].name(),
            failures = f.failures,
            cooldown_ms = f.refresh_ms - self.clock.now_ms(),
            "sink failed; set aside"
        );
        self.failed.push(f);
    }

    /// The failed sink due first (ties: the one set aside first).
    fn due(&self, now: u64) -> Option<usize> {
        let (i, f) = self
            .failed
            .iter()
            .enumerate()
            .min_by_key(|(i, f)| (f.refresh_ms, *i))?;
        (f.refresh_ms < now).then_some(i)
    }
}

impl SinkProcessor for Failover {
    fn process(&mut self) -> Result<Status, SinkError> {
        let now = self.clock.now_ms();
        while let Some(i) = self.due(now) {
            let mut cur = self.failed.remove(i);
            match self.sinks[cur.sink].process() {
                Ok(Status::Ready) => {
                    tracing::info!(group = %self.group, sink = self.sinks[cur.sink].name(), "sink recovered");
                    self.live.insert(cur.priority, cur.sink);
                    return Ok(Status::Ready);
                }
                Ok(Status::Backoff) => {
                    self.failed.push(cur);
                    return Ok(Status::Backoff);
                }
                Err(e) => {
                    tracing::warn!(group = %self.group, error = %e, "retry of a failed sink failed");
                    cur.failures += 1;
                    self.set_aside(cur);
                }
            }
        }
        while let Some((&priority, &sink)) = self.live.last_key_value() {
            match self.sinks[sink].process() {
                Ok(s) => return Ok(s),
                Err(e) => {
                    tracing::warn!(group = %self.group, error = %e, "sink failed; failing over");
                    self.live.remove(&priority);
                    self.set_aside(Failed {
                        refresh_ms: 0,
                        priority,
                        sink,
                        failures: 1,
                    });
                }
            }
        }
        Err(SinkError::GroupFailed {
            group: self.group.clone(),
            reason: "all sinks failed to process, nothing left to fail over to".into(),
        })
    }

    fn stop(&mut self) {
        for s in &mut self.sinks {
            s.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ManualClock, Scripted};
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn group(
        scripts: &[(&str, &[bool], bool)],
        priorities: &[i64],
        max_penalty_ms: u64,
    ) -> (Failover, Arc<ManualClock>, Arc<Mutex<Vec<String>>>) {
        let clock = ManualClock::at(100_000);
        let log = Arc::new(Mutex::new(Vec::new()));
        let sinks: Vec<Box<dyn Sink>> = scripts
            .iter()
            .map(|(n, s, fail_always)| {
                Box::new(Scripted {
                    name: (*n).into(),
                    script: s.iter().copied().collect::<VecDeque<_>>(),
                    fail_always: *fail_always,
                    log: log.clone(),
                    clock: clock.clone(),
                }) as Box<dyn Sink>
            })
            .collect();
        let f = Failover::new("g1", sinks, priorities, max_penalty_ms, clock.clone());
        (f, clock, log)
    }

    fn take_log(log: &Mutex<Vec<String>>) -> Vec<String> {
        std::mem::take(&mut *log.lock().expect("lock"))
    }

    #[test]
    fn highest_priority_first_then_failover_in_the_same_call() {
        let (mut f, _clock, log) =
            group(&[("k1", &[], true), ("k2", &[], false)], &[10, 5], 30_000);
        assert_eq!(f.process().expect("k2 delivers"), Status::Ready);
        assert_eq!(take_log(&log), vec!["k1@100000", "k2@100000"]);
        // k1 is cooling down: only k2 is called.
        f.process().expect("ok");
        assert_eq!(take_log(&log), vec!["k2@100000"]);
    }

    #[test]
    fn cooldown_doubles_up_to_maxpenalty_and_recovery_restores_priority() {
        // k1 fails 4 times, then works.
        let (mut f, clock, log) = group(
            &[
                ("k1", &[false, false, false, false], false),
                ("k2", &[], false),
            ],
            &[10, 5],
            5_000,
        );
        let t0 = 100_000;
        f.process().expect("ok");
        take_log(&log);
        // Set aside with k = 1: 2000 ms. Retried only once refresh < now.
        clock.set(t0 + 2000);
        f.process().expect("ok");
        assert_eq!(
            take_log(&log),
            vec!["k2@102000"],
            "refresh must be strictly earlier than now"
        );
        clock.set(t0 + 2001);
        f.process().expect("ok");
        // Retry fails (k = 2 → 4000 ms), then the live k2 delivers.
        assert_eq!(take_log(&log), vec!["k1@102001", "k2@102001"]);
        clock.set(t0 + 2001 + 4000);
        f.process().expect("ok");
        assert_eq!(take_log(&log), vec!["k2@106001"]);
        clock.set(t0 + 2001 + 4001);
        f.process().expect("ok");
        // k = 3 → min(5000, 8000) = 5000.
        assert_eq!(take_log(&log), vec!["k1@106002", "k2@106002"]);
        clock.set(t0 + 2001 + 4001 + 5001);
        f.process().expect("ok");
        // k = 4 → 5000 again.
        assert_eq!(take_log(&log), vec!["k1@111003", "k2@111003"]);
        clock.set(111_003 + 5001);
        // Now k1 works: the retry itself delivers and k1 is live again.
        assert_eq!(f.process().expect("ok"), Status::Ready);
        assert_eq!(take_log(&log), vec!["k1@116004"]);
        f.process().expect("ok");
        assert_eq!(
            take_log(&log),
            vec!["k1@116004"],
            "the higher priority sink is active again"
        );
    }

    #[test]
    fn all_failed_is_an_error() {
        let (mut f, _clock, log) = group(&[("k1", &[], true), ("k2", &[], true)], &[1, 2], 30_000);
        let e = f.process().expect_err("nothing left");
        assert_eq!(
            e.to_string(),
            "sink group g1: all sinks failed to process, nothing left to fail over to"
        );
        assert_eq!(take_log(&log), vec!["k2@100000", "k1@100000"]);
        assert!(f.process().is_err());
        assert!(take_log(&log).is_empty(), "both are cooling down");
    }
}
