//! `seq`: generates events whose bodies are 0, 1, 2, ... (Flume's `SequenceGeneratorSource`).
//! Keys: `batchSize` (1), `totalEvents` (unlimited), and the pollable back-off keys. After
//! `totalEvents` it backs off forever. A batch that fails to put is counted (`ChannelWriteFail`),
//! logged, and generated again (same numbers) on the next call, as in Flume.

use super::{Backoff, PollableSource, SourceContext, SourceError, Status};
use crate::config::context::Ctx;
use file_channel::Event;
use std::sync::atomic::Ordering::Relaxed;

/// Configuration of a seq source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqConfig {
    /// Events per transaction. `batchSize`. Default: 1.
    pub batch_size: u32,
    /// Events to generate in all. `totalEvents`. Default: unlimited.
    pub total_events: u64,
    /// Back-off settings.
    pub backoff: Backoff,
}

impl SeqConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            batch_size: ctx.u32_in("batchSize", 1, 1..=file_channel::limits::MAX_EVENTS_PER_TXN),
            total_events: ctx.u64_in("totalEvents", i64::MAX as u64, 0..=i64::MAX as u64),
            backoff: Backoff::parse(ctx),
        }
    }
}

/// The seq source.
#[derive(Debug)]
pub struct SeqSource {
    config: SeqConfig,
    ctx: SourceContext,
    sent: u64,
}

impl SeqSource {
    /// A seq source starting at 0.
    pub fn new(config: SeqConfig, ctx: SourceContext) -> Self {
        ctx.counters.lifetime.started();
        Self {
            config,
            ctx,
            sent: 0,
        }
    }
}

impl PollableSource for SeqSource {
    fn process(&mut self) -> Result<Status, SourceError> {
        let end = self
            .config
            .total_events
            .min(self.sent.saturating_add(u64::from(self.config.batch_size)));
        if self.sent >= end {
            return Ok(Status::Backoff);
        }
        let batch: Vec<Event> = (self.sent..end)
            .map(|n| Event::new(n.to_string()))
            .collect();
        let n = batch.len() as u64;
        let c = &self.ctx.counters;
        c.event_received_count.fetch_add(n, Relaxed);
        c.append_batch_received_count.fetch_add(1, Relaxed);
        match self.ctx.processor.process_batch(batch) {
            Ok(()) => {
                self.sent = end;
                c.event_accepted_count.fetch_add(n, Relaxed);
                c.append_batch_accepted_count.fetch_add(1, Relaxed);
                Ok(if end >= self.config.total_events {
                    Status::Backoff
                } else {
                    Status::Ready
                })
            }
            Err(error) => {
                // As Flume: count, log, and try the same batch again at once (the put already
                // waited keep-alive for room).
                c.channel_write_fail.fetch_add(1, Relaxed);
                let e = SourceError::Channel {
                    source_name: self.ctx.name.to_string(),
                    error,
                };
                tracing::error!(error = %e, "source could not write to channel");
                Ok(Status::Ready)
            }
        }
    }

    fn backoff(&self) -> Backoff {
        self.config.backoff
    }

    fn stop(&mut self) {
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;

    fn source(batch: u32, total: u64, capacity: u64) -> (SeqSource, Channel) {
        let (ctx, ch) = crate::source::test_context(capacity, capacity as u32);
        let cfg = SeqConfig {
            batch_size: batch,
            total_events: total,
            backoff: Backoff {
                increment_ms: 1000,
                max_ms: 5000,
            },
        };
        (SeqSource::new(cfg, ctx), ch)
    }

    fn drain(ch: &Channel) -> Vec<String> {
        let mut tx = ch.transaction();
        let mut v = Vec::new();
        while let Some(e) = tx.take().expect("take") {
            v.push(String::from_utf8(e.body).expect("utf8"));
        }
        tx.commit().expect("commit");
        v
    }

    #[test]
    fn counts_in_batches_up_to_total_then_backs_off() {
        let (mut s, ch) = source(3, 7, 100);
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(s.process().expect("ok"), Status::Backoff);
        assert_eq!(s.process().expect("ok"), Status::Backoff);
        assert_eq!(drain(&ch), vec!["0", "1", "2", "3", "4", "5", "6"]);
        assert_eq!(s.ctx.counters.event_accepted_count.load(Relaxed), 7);
    }

    #[test]
    fn a_failed_batch_is_generated_again() {
        let (mut s, ch) = source(2, 10, 3);
        s.process().expect("0 1");
        assert_eq!(
            s.process().expect("reported, not failed"),
            Status::Ready,
            "2 3 do not fit"
        );
        assert_eq!(s.ctx.counters.channel_write_fail.load(Relaxed), 1);
        assert_eq!(drain(&ch), vec!["0", "1"]);
        s.process().expect("2 3");
        assert_eq!(drain(&ch), vec!["2", "3"]);
    }
}
