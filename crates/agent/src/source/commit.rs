//! One helper the network and process sources share: put a batch through the channel
//! processor from async code (on a blocking thread, since a commit waits for its fsync) and
//! count it in Flume's `SourceCounter` names.

use super::SourceContext;
use crate::channel::{ChannelError, MemoryError};
use crate::channel_processor::ProcessError;
use file_channel::{Event, PutError};
use std::sync::atomic::Ordering::Relaxed;

/// Why a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitFailure {
    /// A required channel refused the batch.
    #[error(transparent)]
    Channel(#[from] ProcessError),
    /// The blocking task died (a panic in an interceptor or a channel).
    #[error("put task failed: {0}")]
    Task(String),
}

impl CommitFailure {
    /// Whether the channel was out of room (capacity, bytes or disk space): Flume's
    /// `ChannelFullException` and our `InsufficientSpace`, which a client may retry.
    pub fn is_channel_full(&self) -> bool {
        let Self::Channel(e) = self else {
            return false;
        };
        matches!(
            e.source,
            ChannelError::Put(PutError::ChannelFull { .. })
                | ChannelError::Put(PutError::InsufficientSpace { .. })
                | ChannelError::Memory(MemoryError::ChannelFull)
                | ChannelError::Memory(MemoryError::ByteCapacityFull(_))
        )
    }
}

/// Puts `events` in one call of the channel processor (one transaction per required channel)
/// and updates the source's counters. An empty batch is a no-op.
pub async fn commit(ctx: &SourceContext, events: Vec<Event>) -> Result<(), CommitFailure> {
    received(ctx, events.len());
    put(ctx, events).await
}

/// Counts a batch of `n` events as received (`EventReceivedCount`, `AppendBatchReceivedCount`).
pub fn received(ctx: &SourceContext, n: usize) {
    if n == 0 {
        return;
    }
    let c = &ctx.counters;
    c.event_received_count.fetch_add(n as u64, Relaxed);
    c.append_batch_received_count.fetch_add(1, Relaxed);
}

/// Like [`commit`] without counting the batch as received: for a retry of a batch already
/// counted.
pub async fn put(ctx: &SourceContext, events: Vec<Event>) -> Result<(), CommitFailure> {
    let n = events.len() as u64;
    if n == 0 {
        return Ok(());
    }
    let c = &ctx.counters;
    let processor = ctx.processor.clone();
    match tokio::task::spawn_blocking(move || processor.process_batch(events)).await {
        Ok(Ok(())) => {
            c.event_accepted_count.fetch_add(n, Relaxed);
            c.append_batch_accepted_count.fetch_add(1, Relaxed);
            Ok(())
        }
        Ok(Err(e)) => {
            c.channel_write_fail.fetch_add(1, Relaxed);
            Err(e.into())
        }
        Err(join) => {
            c.generic_processing_fail.fetch_add(1, Relaxed);
            Err(CommitFailure::Task(join.to_string()))
        }
    }
}
