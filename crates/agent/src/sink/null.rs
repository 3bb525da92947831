//! `null`: takes events and discards them. Keys: `batchSize` (100).

use super::{Deliver, SinkContext, SinkError};
use crate::config::context::Ctx;
use file_channel::Event;

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

impl Deliver for NullSink {
    fn context(&self) -> &SinkContext {
        &self.ctx
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size as usize
    }

    fn deliver(&mut self, _events: Vec<Event>) -> Result<(), SinkError> {
        Ok(())
    }

    fn on_stop(&mut self) {
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Status;
    use crate::sink::test_support::sink_ctx;
    use crate::sink::Sink;
    use std::sync::atomic::Ordering::Relaxed;

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
