//! The `load_balance` sink processor, as Flume's `LoadBalancingSinkProcessor` with its
//! `RoundRobinOrderSelector` / `RandomOrderSelector`:
//!
//! - Each call orders the available sinks (round robin: starting one further each call; random:
//!   a random permutation) and calls them in that order until one does not fail.
//! - Unlike Flume, a round-robin call that ends in [`Status::Backoff`] (the sink's channel gave
//!   nothing) does not move the rotation on. Sinks report Ready after any batch taken, and the
//!   runner wakes at the next commit, so with one event per wake-up Flume's rotation would
//!   call sink A with the event and sink B at once on the empty channel, every time: one sink
//!   would get every event (and a broken one would never be tried). Rotating on deliveries
//!   only, the sinks take turns.
//! - With `backoff`, a failed sink is unavailable until its restore time: a failure within
//!   (its last back-off + 1 hour) of the previous one adds one to its consecutive failures
//!   (at most 16), otherwise they restart at 1; the back-off is
//!   min(`selector.maxTimeOut`, 1000 · 2^failures) ms. Without `backoff` failed sinks stay in
//!   the rotation.
//! - When every sink failed or is backed off the call fails, and the runner sleeps its 5 s.

use super::{exponential_ms, Clock, SinkProcessor};
use crate::runner::Status;
use crate::sink::{Sink, SinkError};
use std::sync::Arc;

/// Flume's default `selector.maxTimeOut`.
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 30_000;
/// Flume's `EXP_BACKOFF_COUNTER_LIMIT`.
pub const MAX_SEQUENTIAL_FAILURES: u32 = 16;
/// Flume's `CONSIDER_SEQUENTIAL_RANGE`: one hour.
pub const SEQUENTIAL_RANGE_MS: u64 = 3_600_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FailureState {
    sequential_fails: u32,
    last_fail_ms: u64,
    restore_ms: u64,
}

/// The load-balancing processor.
pub struct LoadBalance {
    group: String,
    sinks: Vec<Box<dyn Sink>>,
    states: Vec<FailureState>,
    random: bool,
    backoff: bool,
    max_timeout_ms: u64,
    next_head: usize,
    rng: u64,
    clock: Arc<dyn Clock>,
}

impl LoadBalance {
    /// A processor over `sinks`.
    pub fn new(
        group: &str,
        sinks: Vec<Box<dyn Sink>>,
        random: bool,
        backoff: bool,
        max_timeout_ms: u64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let seed = crate::metrics::now_epoch_ms() ^ (u64::from(std::process::id()) << 32) | 1;
        Self {
            group: group.to_owned(),
            states: vec![FailureState::default(); sinks.len()],
            sinks,
            random,
            backoff,
            max_timeout_ms,
            next_head: 0,
            rng: seed,
            clock,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The order of this call: Flume's `createIterator`.
    fn order(&mut self) -> Vec<usize> {
        let now = self.clock.now_ms();
        let active: Vec<usize> = (0..self.sinks.len())
            .filter(|&i| !self.backoff || self.states[i].restore_ms < now)
            .collect();
        let size = active.len();
        if size == 0 {
            return active;
        }
        if self.random {
            let mut pool = active;
            let mut order = vec![0; size];
            while !pool.is_empty() {
                let pick = (self.next_random() % pool.len() as u64) as usize;
                let len = pool.len();
                order[len - 1] = pool.remove(pick);
            }
            order
        } else {
            if self.next_head >= size {
                self.next_head = 0;
            }
            let begin = self.next_head;
            self.next_head += 1;
            if self.next_head == size {
                self.next_head = 0;
            }
            (0..size).map(|i| active[(begin + i) % size]).collect()
        }
    }

    /// Flume's `informFailure`.
    fn inform_failure(&mut self, i: usize) {
        if !self.backoff {
            return;
        }
        let now = self.clock.now_ms();
        let max = self.max_timeout_ms;
        let st = &mut self.states[i];
        let delta = now.saturating_sub(st.last_fail_ms);
        let last_backoff = exponential_ms(st.sequential_fails, max);
        if last_backoff.saturating_add(SEQUENTIAL_RANGE_MS) > delta {
            if st.sequential_fails < MAX_SEQUENTIAL_FAILURES {
                st.sequential_fails += 1;
            }
        } else {
            st.sequential_fails = 1;
        }
        st.last_fail_ms = now;
        let wait = exponential_ms(st.sequential_fails, max);
        st.restore_ms = now + wait;
        tracing::warn!(group = %self.group, sink = self.sinks[i].name(), backoff_ms = wait, "sink failed; backing off");
    }
}

impl SinkProcessor for LoadBalance {
    fn process(&mut self) -> Result<Status, SinkError> {
        let head = self.next_head;
        for i in self.order() {
            match self.sinks[i].process() {
                Ok(Status::Backoff) => {
                    // Nothing was taken: the turn is not used up (see the module doc).
                    self.next_head = head;
                    return Ok(Status::Backoff);
                }
                Ok(s) => return Ok(s),
                Err(e) => {
                    tracing::warn!(group = %self.group, error = %e, "sink failed; trying the next one");
                    self.inform_failure(i);
                }
            }
        }
        Err(SinkError::GroupFailed {
            group: self.group.clone(),
            reason: "all configured sinks have failed".into(),
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
        fail_always: &[bool],
        random: bool,
        backoff: bool,
        max: u64,
    ) -> (LoadBalance, Arc<ManualClock>, Arc<Mutex<Vec<String>>>) {
        let clock = ManualClock::at(10_000_000);
        let log = Arc::new(Mutex::new(Vec::new()));
        let sinks = fail_always
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Box::new(Scripted {
                    name: format!("k{}", i + 1),
                    script: VecDeque::new(),
                    fail_always: *f,
                    log: log.clone(),
                    clock: clock.clone(),
                }) as Box<dyn Sink>
            })
            .collect();
        (
            LoadBalance::new("g1", sinks, random, backoff, max, clock.clone()),
            clock,
            log,
        )
    }

    fn names(log: &Mutex<Vec<String>>) -> Vec<String> {
        std::mem::take(&mut *log.lock().expect("lock"))
            .into_iter()
            .map(|s| s.split('@').next().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn round_robin_rotates() {
        let (mut lb, _c, log) = group(&[false, false, false], false, false, 30_000);
        for _ in 0..4 {
            lb.process().expect("ok");
        }
        assert_eq!(names(&log), vec!["k1", "k2", "k3", "k1"]);
    }

    #[test]
    fn without_backoff_a_failed_sink_stays_in_rotation() {
        let (mut lb, _c, log) = group(&[true, false], false, false, 30_000);
        lb.process().expect("k2 delivers");
        lb.process().expect("k2 delivers");
        lb.process().expect("k2 delivers");
        assert_eq!(names(&log), vec!["k1", "k2", "k2", "k1", "k2"]);
    }

    /// Takes from a shared pot of events: Ready while there is one, Backoff when empty.
    struct Pot {
        name: &'static str,
        pot: Arc<Mutex<u32>>,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Sink for Pot {
        fn name(&self) -> &str {
            self.name
        }
        fn process(&mut self) -> Result<Status, SinkError> {
            let mut pot = self.pot.lock().expect("lock");
            if *pot == 0 {
                return Ok(Status::Backoff);
            }
            *pot -= 1;
            self.log.lock().expect("lock").push(self.name.to_owned());
            Ok(Status::Ready)
        }
    }

    #[test]
    fn round_robin_turns_move_on_only_when_a_sink_took_something() {
        let pot = Arc::new(Mutex::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let sinks: Vec<Box<dyn Sink>> = ["k1", "k2"]
            .into_iter()
            .map(|name| {
                Box::new(Pot {
                    name,
                    pot: pot.clone(),
                    log: log.clone(),
                }) as Box<dyn Sink>
            })
            .collect();
        let mut lb = LoadBalance::new("g1", sinks, false, false, 30_000, ManualClock::at(0));
        // One event per wake-up: the sink that took it reports Ready and is called again at
        // once on the empty channel (Backoff); the next event still goes to the other sink.
        for _ in 0..4 {
            *pot.lock().expect("lock") = 1;
            assert_eq!(lb.process().expect("ok"), Status::Ready);
            assert_eq!(lb.process().expect("ok"), Status::Backoff);
        }
        assert_eq!(*log.lock().expect("lock"), ["k1", "k2", "k1", "k2"]);
    }

    #[test]
    fn backoff_doubles_up_to_max_timeout() {
        let (mut lb, clock, log) = group(&[true, false], false, true, 5_000);
        let t0 = 10_000_000;
        lb.process().expect("k2 delivers");
        assert_eq!(names(&log), vec!["k1", "k2"]);
        assert_eq!(lb.states[0].restore_ms, t0 + 2000, "first failure: 2^1 s");
        clock.set(t0 + 2000);
        lb.process().expect("ok");
        lb.process().expect("ok");
        assert_eq!(
            names(&log),
            vec!["k2", "k2"],
            "still backed off at exactly the restore time"
        );
        clock.set(t0 + 2001);
        // Round robin over [k1, k2]: head may start at either; k1 is called once in two calls.
        lb.process().expect("ok");
        lb.process().expect("ok");
        let called = names(&log);
        assert_eq!(
            called.iter().filter(|n| *n == "k1").count(),
            1,
            "{called:?}"
        );
        assert_eq!(
            lb.states[0].restore_ms,
            t0 + 2001 + 4000,
            "second failure: 2^2 s"
        );
        clock.set(t0 + 6002);
        lb.process().expect("ok");
        lb.process().expect("ok");
        names(&log);
        assert_eq!(
            lb.states[0].restore_ms,
            t0 + 6002 + 5000,
            "third: min(5000, 8000)"
        );
    }

    #[test]
    fn sequential_failures_reset_after_an_hour() {
        let (mut lb, clock, _log) = group(&[true, false], false, true, 30_000);
        let t0 = 10_000_000;
        lb.process().expect("ok");
        clock.set(t0 + 2001);
        lb.process().expect("ok");
        lb.process().expect("ok");
        assert_eq!(lb.states[0].sequential_fails, 2);
        let later = t0 + 2001 + 4000 + SEQUENTIAL_RANGE_MS + 1;
        clock.set(later);
        lb.process().expect("ok");
        lb.process().expect("ok");
        assert_eq!(lb.states[0].sequential_fails, 1);
        assert_eq!(lb.states[0].restore_ms, later + 2000);
    }

    #[test]
    fn all_backed_off_or_failed_is_an_error() {
        let (mut lb, _c, log) = group(&[true, true], true, true, 30_000);
        let e = lb.process().expect_err("both fail");
        assert_eq!(
            e.to_string(),
            "sink group g1: all configured sinks have failed"
        );
        let mut called = names(&log);
        called.sort();
        assert_eq!(called, vec!["k1", "k2"]);
        assert!(lb.process().is_err());
        assert!(names(&log).is_empty(), "both backed off");
    }

    #[test]
    fn random_order_is_a_permutation_and_varies() {
        let (mut lb, _c, _log) = group(&[false, false, false], true, false, 30_000);
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut o = lb.order();
            firsts.insert(o[0]);
            o.sort();
            assert_eq!(o, vec![0, 1, 2]);
        }
        assert_eq!(firsts.len(), 3);
    }
}
