//! [`WriterView`]: what the writer thread may touch of the shared state — the storage and the
//! segment registry (it creates, rotates to and registers segments), the sync gate its
//! `fdatasync`s hold, poisoning, the free-space verdict it refreshes and sets on ENOSPC,
//! publishing synced batches to takers, the queue (to snapshot it for a checkpoint), the next
//! transaction id and the count of put commits on their way to it.

use super::Shared;
use crate::config::ChannelConfig;
use crate::error::{PoisonCause, Poisoned};
use crate::format::record::PendingRecord;
use crate::metrics::ChannelMetrics;
use crate::queue::{LogPos, QueueState};
use crate::segment::SegmentSet;
use crate::space_reserve::SpaceLow;
use crate::storage::DynStorage;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, MutexGuard, PoisonError};

/// The writer thread's view of the shared state; made once, when open starts the writer (open
/// uses it first to create the first segment the writer's way).
#[derive(Debug)]
pub(crate) struct WriterView {
    shared: Arc<Shared>,
}

impl WriterView {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &ChannelConfig {
        &self.shared.config
    }

    /// The channel's counters.
    pub(crate) fn metrics(&self) -> &ChannelMetrics {
        &self.shared.metrics
    }

    /// The file system.
    pub(crate) fn storage(&self) -> &DynStorage {
        self.shared.storage()
    }

    /// The open segment files.
    pub(crate) fn segments(&self) -> &SegmentSet {
        &self.shared.segments
    }

    /// Holds the gate every segment fsync and its poisoning go through (see
    /// [`crate::segment::prefill::SyncGate`]).
    pub(crate) fn hold_sync_gate(&self) -> MutexGuard<'_, ()> {
        self.shared
            .sync_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Fsyncs directory `dir` under the sync gate; a failure poisons the channel.
    pub(crate) fn sync_dir_gated(&self, dir: &Path) -> io::Result<()> {
        self.shared.sync_dir_gated(dir)
    }

    /// Marks the channel unusable (see [`crate::poison`]); returns the cause in force.
    pub(crate) fn poison(&self, cause: PoisonCause) -> Poisoned {
        self.shared.poison(cause)
    }

    /// The poison reason, if the channel is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Poisoned> {
        self.shared.poisoned()
    }

    /// Checks the free space of the channel and data directories now.
    pub(crate) fn refresh_space(&self) -> Option<SpaceLow> {
        self.shared.refresh_space()
    }

    /// A write just failed with ENOSPC: refuse puts until a check says otherwise.
    pub(crate) fn note_no_space(&self) {
        let s = &*self.shared;
        s.space
            .note_no_space(s.storage.as_ref(), &s.config, &s.metrics);
    }

    /// Makes a synced batch of put commits visible to takers.
    pub(crate) fn publish(&self, next_seq: u64, visible: LogPos, events: u64, bytes: u64) {
        let s = &*self.shared;
        s.lock_queue()
            .publish(next_seq, visible, events, bytes, &s.metrics);
        s.not_empty.notify_all();
    }

    /// The queue, locked (to snapshot it for a checkpoint).
    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, QueueState> {
        self.shared.lock_queue()
    }

    /// The id the next transaction will get (for checkpoints).
    pub(crate) fn next_txn_id(&self) -> u64 {
        self.shared.next_txn_id.load(Relaxed)
    }

    /// Moves the take records waiting for the writer to the end of `out`, in commit order.
    pub(crate) fn drain_takes(&self, out: &mut Vec<PendingRecord>) {
        self.shared.takes.drain_into(out);
    }

    /// Uncounts a put commit the writer just received.
    pub(crate) fn put_commit_received(&self) {
        self.shared.put_commits_queued.fetch_sub(1, Relaxed);
    }

    /// Put commits sent to the writer and not yet received by it (the gather estimate).
    pub(crate) fn put_commits_queued(&self) -> u64 {
        self.shared.put_commits_queued.load(Relaxed)
    }
}
