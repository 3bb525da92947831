//! The drain loop every sink runs but `kafka`: take up to a batch from the channel in one
//! transaction, hand it to the sink's [`Deliver::deliver`], and commit the take only when the
//! delivery succeeded; on any failure roll the take back, so the events stay in the channel
//! for the next attempt (or for another sink of a failover or load-balancing group). The
//! Kafka sink keeps up to four batches in flight, each take open until Kafka acknowledged it,
//! so it runs a loop of its own with these counters and this back-off rule
//! ([`super::kafka`]).
//!
//! A sink only says how to deliver a batch (and what to do before a take: roll a file, reset a
//! connection, create a producer). The loop owns the transaction, the counters every sink
//! shares (Flume's `SinkCounter` names) and the back-off rule.
//!
//! # The back-off rule
//!
//! One call reports [`Status::Backoff`] when the channel gave nothing, and [`Status::Ready`]
//! whenever it gave at least one event, even a partial batch. That is the rule of Flume's
//! `Sink` contract (BACKOFF: "no events were available") and of its RPC and Kafka sinks:
//! after a partial batch the next call goes at once and picks up what arrived meanwhile,
//! instead of sleeping 1–5 s with events waiting. An empty call still commits its (empty)
//! transaction and counts `BatchEmptyCount`.
//!
//! # Counters
//!
//! - `EventDrainAttemptCount` += the events taken, once they are taken (before delivery);
//!   `BatchCompleteCount` / `BatchUnderflowCount` / `BatchEmptyCount` likewise count the batch
//!   as taken, whatever becomes of its delivery (as Flume's RPC sinks do).
//! - `EventDrainSuccessCount` += the events whose take was committed.
//! - `ChannelReadFail` += 1 for a failed take or commit.
//! - What a failed delivery counts (`EventWriteFail`, `ConnectionFailedCount`, …) is the
//!   sink's to say, in `deliver`.

use super::{count_batch, SinkContext, SinkError};
use crate::channel::Txn;
use crate::runner::Status;
use file_channel::Event;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What a sink does with a batch; the drain loop does the rest. Every `Deliver` is a
/// [`super::Sink`] whose `process` is [`drain`].
pub trait Deliver: Send {
    /// The sink's name, channel and counters.
    fn context(&self) -> &SinkContext;

    /// Events per transaction (`batchSize` and its spellings; 1 for `logger`).
    fn batch_size(&self) -> usize;

    /// How long a batch that has its first event may wait for the rest (see [`take_batch`]):
    /// nothing unless the sink has a key for it (`file_roll`'s `sink.batchLingerMs`).
    fn batch_linger(&self) -> Duration {
        Duration::ZERO
    }

    /// Runs before each take: roll a file, reset or open a connection. An error fails the
    /// call before anything is taken.
    fn before_take(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Delivers a non-empty batch. `Ok` commits the take; `Err` rolls it back and is the
    /// call's error. The sink counts its own delivery failures and cleans up (closes the
    /// connection, purges a producer) before returning the error.
    fn deliver(&mut self, events: Vec<Event>) -> Result<(), SinkError>;

    /// Called before `deliver` with the take transaction holding the batch. The `hdfs` sink
    /// reads the numbers the channel gave the batch's events from it
    /// ([`Txn::delivery_numbers`]), to recognise and count an event delivered again after a
    /// crash; other sinks do nothing here, so the loop computes nothing for them.
    fn before_deliver(&mut self, _tx: &Txn) {}

    /// Called after the loop rolled a take back (a failed take or delivery).
    fn rolled_back(&mut self) {}

    /// Called after a take with events committed (after `deliver` returned `Ok`): what was
    /// delivered is now out of the channel for good (the `hdfs` sink finishes its rolled
    /// files only then, and records what is committed for its crash recovery).
    fn committed(&mut self) {}

    /// Flushes and closes the output; called once, after the last call (it is
    /// [`super::Sink::stop`]).
    fn on_stop(&mut self) {}
}

impl<D: Deliver> super::Sink for D {
    fn name(&self) -> &str {
        &self.context().name
    }

    fn process(&mut self) -> Result<Status, SinkError> {
        drain(self)
    }

    fn stop(&mut self) {
        self.on_stop();
    }
}

/// Takes up to `batch_size` events in one transaction of `ctx`'s channel and counts them as
/// taken (`EventDrainAttemptCount`, the batch counters). Once it has one event, it waits up
/// to `linger` (counted from that first event) for the batch to fill before it settles for
/// fewer: a sink that pays per batch (an fsync, a round trip) then pays once per `batch_size`
/// events, not once per source commit. With no event there is no wait: the call backs off.
/// A failed take is counted in `ChannelReadFail`, its transaction rolled back, and its error
/// returned. The drain loop and the Kafka sink's own loop both take this way.
pub(super) fn take_batch(
    ctx: &SinkContext,
    batch_size: usize,
    linger: Duration,
) -> Result<(Txn, Vec<Event>), SinkError> {
    let counters = &ctx.counters;
    let mut tx = ctx.channel.transaction();
    let mut events = Vec::with_capacity(batch_size.min(1024));
    let mut linger_until: Option<Instant> = None;
    while events.len() < batch_size {
        let wait = linger_until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        });
        match tx.take_timeout(wait) {
            Ok(Some(e)) => {
                events.push(e);
                linger_until.get_or_insert_with(|| Instant::now() + linger);
            }
            Ok(None) => break,
            Err(e) => {
                counters.channel_read_fail.fetch_add(1, Relaxed);
                tx.rollback();
                return Err(ctx.channel_error(e));
            }
        }
    }
    counters
        .event_drain_attempt_count
        .fetch_add(events.len() as u64, Relaxed);
    count_batch(counters, events.len(), batch_size);
    Ok((tx, events))
}

/// One call of a sink: take → deliver → commit, or roll back on failure.
pub fn drain<D: Deliver + ?Sized>(sink: &mut D) -> Result<Status, SinkError> {
    sink.before_take()?;
    let batch_size = sink.batch_size();
    let ctx = sink.context().clone();
    let counters = &ctx.counters;
    let (tx, events) = match take_batch(&ctx, batch_size, sink.batch_linger()) {
        Ok(taken) => taken,
        Err(e) => {
            sink.rolled_back();
            return Err(e);
        }
    };
    let taken = events.len();
    if taken > 0 {
        sink.before_deliver(&tx);
        if let Err(e) = sink.deliver(events) {
            tx.rollback();
            sink.rolled_back();
            return Err(e);
        }
    }
    if let Err(e) = tx.commit() {
        // A delivered batch whose take did not commit is delivered again (at least once).
        counters.channel_read_fail.fetch_add(1, Relaxed);
        return Err(ctx.channel_error(e));
    }
    counters
        .event_drain_success_count
        .fetch_add(taken as u64, Relaxed);
    if taken > 0 {
        sink.committed();
    }
    Ok(if taken == 0 {
        Status::Backoff
    } else {
        Status::Ready
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_support::sink_ctx;
    use crate::sink::Sink;

    /// Records what it was given; fails the delivery while `fail` is set.
    struct Recorder {
        ctx: SinkContext,
        batch_size: usize,
        linger: Duration,
        fail: bool,
        delivered: Vec<String>,
        rollbacks: usize,
    }

    impl Deliver for Recorder {
        fn context(&self) -> &SinkContext {
            &self.ctx
        }
        fn batch_size(&self) -> usize {
            self.batch_size
        }
        fn batch_linger(&self) -> Duration {
            self.linger
        }
        fn deliver(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
            if self.fail {
                return Err(SinkError::GroupFailed {
                    group: "test".into(),
                    reason: "scripted".into(),
                });
            }
            self.delivered.extend(
                events
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
            );
            Ok(())
        }
        fn rolled_back(&mut self) {
            self.rollbacks += 1;
        }
    }

    fn recorder(bodies: &[&str], batch_size: usize) -> Recorder {
        Recorder {
            ctx: sink_ctx(bodies),
            batch_size,
            linger: Duration::ZERO,
            fail: false,
            delivered: Vec::new(),
            rollbacks: 0,
        }
    }

    /// Puts `body` into `s`'s channel from another thread after `after`.
    fn put_later(s: &Recorder, body: &'static str, after: Duration) -> std::thread::JoinHandle<()> {
        let channel = s.ctx.channel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            let mut tx = channel.transaction();
            tx.put(&Event::new(body)).expect("put");
            tx.commit().expect("commit");
        })
    }

    #[test]
    fn a_partial_batch_waits_out_the_linger_for_the_rest() {
        let mut s = recorder(&["a", "b"], 3);
        s.linger = Duration::from_secs(30);
        let late = put_later(&s, "c", Duration::from_millis(50));
        assert_eq!(s.process().expect("a full batch"), Status::Ready);
        late.join().expect("putter");
        assert_eq!(s.delivered, ["a", "b", "c"], "one batch of three");
        assert_eq!(s.ctx.counters.batch_complete_count.load(Relaxed), 1);
        // An empty channel is not waited on, however long the linger: the call backs off.
        let started = Instant::now();
        assert_eq!(s.process().expect("empty"), Status::Backoff);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn without_a_linger_a_partial_batch_goes_at_once() {
        let mut s = recorder(&["a", "b"], 3);
        let late = put_later(&s, "c", Duration::from_millis(200));
        assert_eq!(s.process().expect("a partial batch"), Status::Ready);
        assert_eq!(s.delivered, ["a", "b"]);
        late.join().expect("putter");
        assert_eq!(s.process().expect("the rest"), Status::Ready);
        assert_eq!(s.delivered, ["a", "b", "c"]);
        assert_eq!(s.ctx.counters.batch_underflow_count.load(Relaxed), 2);
    }

    #[test]
    fn a_linger_ends_with_what_came() {
        let mut s = recorder(&["a"], 100);
        s.linger = Duration::from_millis(30);
        assert_eq!(s.process().expect("a partial batch"), Status::Ready);
        assert_eq!(s.delivered, ["a"]);
        assert_eq!(s.ctx.counters.batch_underflow_count.load(Relaxed), 1);
    }

    #[test]
    fn backs_off_only_when_the_channel_gave_nothing() {
        let mut s = recorder(&["a", "b", "c"], 2);
        assert_eq!(s.process().expect("full batch"), Status::Ready);
        assert_eq!(s.process().expect("partial batch"), Status::Ready);
        assert_eq!(s.process().expect("empty"), Status::Backoff);
        assert_eq!(s.delivered, ["a", "b", "c"]);
        let c = &s.ctx.counters;
        assert_eq!(c.batch_complete_count.load(Relaxed), 1);
        assert_eq!(c.batch_underflow_count.load(Relaxed), 1);
        assert_eq!(c.batch_empty_count.load(Relaxed), 1);
        assert_eq!(c.event_drain_attempt_count.load(Relaxed), 3);
        assert_eq!(c.event_drain_success_count.load(Relaxed), 3);
    }

    #[test]
    fn a_failed_delivery_rolls_the_batch_back() {
        let mut s = recorder(&["a", "b"], 10);
        s.fail = true;
        s.process().expect_err("scripted failure");
        assert_eq!(s.ctx.channel.len(), 2, "rolled back");
        assert_eq!(s.rollbacks, 1);
        assert_eq!(s.ctx.counters.event_drain_success_count.load(Relaxed), 0);
        s.fail = false;
        assert_eq!(s.process().expect("delivered"), Status::Ready);
        assert!(s.ctx.channel.is_empty());
        assert_eq!(s.delivered, ["a", "b"]);
    }
}
