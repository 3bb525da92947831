//! The one async commit every async source uses: put a batch through the channel processor
//! from async code (on a blocking thread, since a commit waits for its fsync) and count it in
//! Flume's `SourceCounter` names, counted as the [`Call`] that brought it.

use super::SourceContext;
use crate::channel::{ChannelError, MemoryError};
use crate::channel_processor::ProcessError;
use file_channel::{Event, PutError};
use std::sync::atomic::Ordering::Relaxed;

/// What brought a batch in, which says how Flume's `SourceCounter` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// A batch of events read by the source (lines, datagrams, a request's events):
    /// `EventReceived/AcceptedCount` and `AppendBatchReceived/AcceptedCount`; an empty batch is
    /// not counted and commits nothing.
    Batch,
    /// One RPC `appendBatch` call: counted as [`Call::Batch`], even when it carries no event.
    AppendBatch,
    /// One RPC `append` call: `EventReceived/AcceptedCount` and
    /// `AppendReceived/AcceptedCount`.
    Append,
    /// Events counted alone (`EventReceived/AcceptedCount`), as netcat counts a single line.
    Events,
}

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
/// and updates the source's counters as `call` says.
pub async fn commit(
    ctx: &SourceContext,
    events: Vec<Event>,
    call: Call,
) -> Result<(), CommitFailure> {
    received(ctx, events.len(), call);
    put(ctx, events, call).await
}

/// Counts a batch of `n` events as received.
pub fn received(ctx: &SourceContext, n: usize, call: Call) {
    if n == 0 && call == Call::Batch {
        return;
    }
    let c = &ctx.counters;
    match call {
        Call::Batch | Call::AppendBatch => c.append_batch_received_count.fetch_add(1, Relaxed),
        Call::Append => c.append_received_count.fetch_add(1, Relaxed),
        Call::Events => 0,
    };
    c.event_received_count.fetch_add(n as u64, Relaxed);
}

fn accepted(ctx: &SourceContext, n: usize, call: Call) {
    let c = &ctx.counters;
    match call {
        Call::Batch | Call::AppendBatch => c.append_batch_accepted_count.fetch_add(1, Relaxed),
        Call::Append => c.append_accepted_count.fetch_add(1, Relaxed),
        Call::Events => 0,
    };
    c.event_accepted_count.fetch_add(n as u64, Relaxed);
}

/// Like [`commit`] without counting the batch as received: for a retry of a batch already
/// counted, or a call counted before it waited for its turn.
pub async fn put(ctx: &SourceContext, events: Vec<Event>, call: Call) -> Result<(), CommitFailure> {
    let n = events.len();
    if n == 0 {
        if call != Call::Batch {
            accepted(ctx, 0, call);
        }
        return Ok(());
    }
    let c = &ctx.counters;
    let processor = ctx.processor.clone();
    match tokio::task::spawn_blocking(move || processor.process_batch(events)).await {
        Ok(Ok(())) => {
            accepted(ctx, n, call);
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
