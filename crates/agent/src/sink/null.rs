//! `null`: takes events and discards them. Keys: `batchSize` (100).

use super::{count_batch, Sink, SinkContext, SinkError};
use crate::config::context::Ctx;
use crate::runner::Status;
use std::sync::atomic::Ordering::Relaxed;

/// Configuration of a null sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NullConfig {
    /// Events per transaction. `batchSize`. Default: 100.
    pub batch_size: u32,
}

impl NullConfig {
    /// Reads `batchSize`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            batch_size: ctx.u32_in(
                "batchSize",
                100,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
        }
    }
}

/// The null sink.
#[derive(Debug)]
pub struct NullSink {
    config: NullConfig,
    ctx: SinkContext,
}

impl NullSink {
    /// A null sink.
    pub fn new(config: NullConfig, ctx: SinkContext) -> Self {
        ctx.counters.lifetime.started();
        Self { config, ctx }
    }
}

impl Sink for NullSink {
    fn name(&self) -> &str {
        &self.ctx.name
    }

    fn process(&mut self) -> Result<Status, SinkError> {
        let c = &self.ctx.counters;
        let mut tx = self.ctx.channel.transaction();
        let batch = self.config.batch_size as usize;
        let mut taken = 0;
        while taken < batch {
            match tx.take() {
                Ok(Some(_)) => taken += 1,
                Ok(None) => break,
                Err(e) => {
                    c.channel_read_fail.fetch_add(1, Relaxed);
                    return Err(self.ctx.channel_error(e));
                }
            }
        }
        c.event_drain_attempt_count.fetch_add(taken as u64, Relaxed);
        if let Err(e) = tx.commit() {
            c.channel_read_fail.fetch_add(1, Relaxed);
            return Err(self.ctx.channel_error(e));
        }
        c.event_drain_success_count.fetch_add(taken as u64, Relaxed);
        count_batch(c, taken, batch);
        Ok(if taken == 0 {
            Status::Backoff
        } else {
            Status::Ready
        })
    }

    fn stop(&mut self) {
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_support::sink_ctx;

    #[test]
    fn drains_in_batches_and_backs_off_when_empty() {
        let ctx = sink_ctx(&["a", "b", "c"]);
        let channel = ctx.channel.clone();
        let counters = ctx.counters.clone();
        let mut s = NullSink::new(NullConfig { batch_size: 2 }, ctx);
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(s.process().expect("ok"), Status::Backoff);
        assert!(channel.is_empty());
        assert_eq!(counters.event_drain_success_count.load(Relaxed), 3);
        assert_eq!(counters.batch_complete_count.load(Relaxed), 1);
        assert_eq!(counters.batch_underflow_count.load(Relaxed), 1);
        assert_eq!(counters.batch_empty_count.load(Relaxed), 1);
    }
}
