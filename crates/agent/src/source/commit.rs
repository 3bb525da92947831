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
    // Nothing comes after this batch, so there is no need to hear when it is queued: one
    // blocking call, one wake-up.
    let task = (n > 0).then(|| {
        let processor = ctx.processor.clone();
        tokio::task::spawn_blocking(move || processor.process_batch(events))
    });
    InFlight::new(ctx, n, call, task).finish().await
}

/// Counts a batch as received and hands it to the channel processor
/// ([`crate::channel_processor::ChannelProcessor::submit_batch`]), returning once its
/// commits are in the channels' queues, before they are durable: a batch submitted after this
/// returned lands after this one in every channel. [`InFlight::finish`] waits for the commits.
/// A source that keeps a few batches in flight this way lets one fsync cover several of them.
pub async fn submit_counted(ctx: &SourceContext, events: Vec<Event>, call: Call) -> InFlight {
    let n = events.len();
    received(ctx, n, call);
    if n == 0 {
        return InFlight::new(ctx, 0, call, None);
    }
    let processor = ctx.processor.clone();
    let (submitted_tx, submitted) = tokio::sync::oneshot::channel::<()>();
    // One blocking thread puts, submits, says so, and waits: a submitted batch must be waited
    // for on the thread that submitted it (it holds the source's binding).
    let task = tokio::task::spawn_blocking(move || {
        let batch = processor.submit_batch(events);
        let _ = submitted_tx.send(());
        batch?.wait()
    });
    // Returns when the commits are queued (or the task ended, having failed or panicked).
    let _ = submitted.await;
    InFlight::new(ctx, n, call, Some(task))
}

/// A batch [`submit_counted`] handed over, its commits not yet known durable.
#[derive(Debug)]
#[must_use = "a batch in flight is acknowledged only once finished"]
pub struct InFlight {
    ctx: SourceContext,
    n: usize,
    call: Call,
    task: Option<tokio::task::JoinHandle<Result<(), ProcessError>>>,
    /// The task's outcome, once [`InFlight::ended`] saw it.
    ended: Option<Result<Result<(), ProcessError>, tokio::task::JoinError>>,
}

impl InFlight {
    fn new(
        ctx: &SourceContext,
        n: usize,
        call: Call,
        task: Option<tokio::task::JoinHandle<Result<(), ProcessError>>>,
    ) -> Self {
        Self {
            ctx: ctx.clone(),
            n,
            call,
            task,
            ended: None,
        }
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the batch had no event.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether its commits have ended (so [`InFlight::finish`] will not wait).
    pub fn is_finished(&self) -> bool {
        self.ended.is_some() || self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until the batch's commits have ended, keeping their outcome for
    /// [`InFlight::finish`]. Cancel-safe: dropped unfinished, it loses nothing.
    pub async fn ended(&mut self) {
        if self.ended.is_none() {
            if let Some(task) = self.task.as_mut() {
                self.ended = Some(task.await);
            }
        }
    }

    /// Waits for the batch's commits and counts it accepted, or as failed.
    pub async fn finish(mut self) -> Result<(), CommitFailure> {
        self.ended().await;
        let (ctx, n, call) = (&self.ctx, self.n, self.call);
        let Some(outcome) = self.ended.take() else {
            if call != Call::Batch {
                accepted(ctx, 0, call);
            }
            return Ok(());
        };
        let c = &ctx.counters;
        match outcome {
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
}
