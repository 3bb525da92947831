//! [`Shared`]: the state a running channel's handle, transactions, writer thread and checkpoint
//! thread share, with private fields, and the narrow views its users get of it.
//!
//! Each part is owned by the module whose job it is: the queue and its accounting
//! ([`QueueState`]), the poison slot ([`crate::poison`]), the free-space verdict
//! ([`crate::space_reserve`]). This module only holds them together and does the few things
//! that need several at once: poisoning (which wakes the queue's waiters), a directory fsync
//! (which poisons on failure) and publishing a batch (which wakes takers).
//!
//! Who uses what: the channel handle gets a [`HandleView`] (it only reports and waits for
//! events); transactions get a [`TxnView`] (the queue lock and its condition variables, the
//! refusals, the limits, transaction ids); the queue's reader gets only a
//! [`crate::queue::ReadContext`] (segments, metrics, recovery mode). The writer appends through
//! the storage, registers segments, syncs under the sync gate and publishes; the checkpoint
//! thread writes through the storage and deletes segments.

mod handle_view;
mod txn_view;

pub(crate) use handle_view::HandleView;
pub(crate) use txn_view::TxnView;

use crate::config::ChannelConfig;
use crate::error::{PoisonCause, Poisoned};
use crate::metrics::ChannelMetrics;
use crate::poison::PoisonSlot;
use crate::queue::{LogPos, QueueState};
use crate::segment::prefill::SyncGate;
use crate::segment::SegmentSet;
use crate::space_reserve::{SpaceLow, SpaceReserve};
use crate::storage::DynStorage;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// State shared by the channel handle, its transactions and the writer and checkpoint threads.
#[derive(Debug)]
pub(crate) struct Shared {
    config: ChannelConfig,
    storage: DynStorage,
    queue: Mutex<QueueState>,
    /// Signalled when events become visible or come back from a rollback.
    not_empty: Condvar,
    /// Signalled when room appears.
    not_full: Condvar,
    metrics: ChannelMetrics,
    segments: SegmentSet,
    /// Serialises segment fsyncs with the poisoning their failure causes (see [`SyncGate`]).
    sync_gate: SyncGate,
    /// fdatasyncs issued by the prefill thread (exported as `PrefillFsyncCount`).
    prefill_fsyncs: Arc<AtomicU64>,
    /// Put commits sent to the writer and not yet received by it (the writer's gather wait
    /// counts on them; see `writer::group_commit::Gather`).
    put_commits_queued: AtomicU64,
    next_txn_id: AtomicU64,
    /// Largest record (padding included) a put transaction may produce.
    record_bytes_max: u64,
    poison: PoisonSlot,
    closed: AtomicBool,
    space: SpaceReserve,
}

impl Shared {
    /// Shared state over an empty queue (open fills it in once the writer's segment is known).
    pub(crate) fn new(
        config: ChannelConfig,
        storage: DynStorage,
        next_txn_id: u64,
        record_bytes_max: u64,
    ) -> Self {
        Self {
            config,
            storage,
            queue: Mutex::new(QueueState::new(
                0,
                LogPos::default(),
                Default::default(),
                0,
                None,
            )),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            metrics: ChannelMetrics::default(),
            segments: SegmentSet::default(),
            sync_gate: SyncGate::default(),
            prefill_fsyncs: Arc::default(),
            put_commits_queued: AtomicU64::new(0),
            next_txn_id: AtomicU64::new(next_txn_id),
            record_bytes_max,
            poison: PoisonSlot::default(),
            closed: AtomicBool::new(false),
            space: SpaceReserve::default(),
        }
    }

    /// The channel handle's view.
    pub(crate) fn handle_view(&self) -> HandleView<'_> {
        HandleView::new(self)
    }

    /// A transaction's view.
    pub(crate) fn txn_view(&self) -> TxnView<'_> {
        TxnView::new(self)
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// The file system.
    pub(crate) fn storage(&self) -> &DynStorage {
        &self.storage
    }

    /// The channel's counters.
    pub(crate) fn metrics(&self) -> &ChannelMetrics {
        &self.metrics
    }

    /// The open segment files.
    pub(crate) fn segments(&self) -> &SegmentSet {
        &self.segments
    }

    /// The gate every segment fsync and its poisoning go through.
    pub(crate) fn sync_gate(&self) -> &SyncGate {
        &self.sync_gate
    }

    /// The prefill thread's fsync counter.
    pub(crate) fn prefill_fsyncs(&self) -> &Arc<AtomicU64> {
        &self.prefill_fsyncs
    }

    /// The id the next transaction will get (for checkpoints).
    pub(crate) fn next_txn_id(&self) -> u64 {
        self.next_txn_id.load(Relaxed)
    }

    /// Counts the put commits on their way to the writer (see `writer::group_commit::Gather`).
    pub(crate) fn put_commits_queued(&self) -> &AtomicU64 {
        &self.put_commits_queued
    }

    /// Marks the channel closed and wakes every waiter; false if it already was.
    pub(crate) fn close(&self) -> bool {
        if self.closed.swap(true, SeqCst) {
            return false;
        }
        self.wake_all();
        true
    }

    /// The queue, locked.
    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, QueueState> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to `timeout` for events to become visible (or come back).
    fn wait_not_empty<'a>(
        &self,
        queue: MutexGuard<'a, QueueState>,
        timeout: Duration,
    ) -> MutexGuard<'a, QueueState> {
        self.not_empty
            .wait_timeout(queue, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Wakes every waiter (under the queue lock, so none misses it between check and wait).
    fn wake_all(&self) {
        let _queue = self.lock_queue();
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Marks the channel unusable; every later operation fails with the returned reason (the
    /// first cause, if it was poisoned already).
    pub(crate) fn poison(&self, cause: PoisonCause) -> Poisoned {
        let p = self.poison.poison(cause);
        self.metrics.unhealthy.store(1, Relaxed);
        self.wake_all();
        p
    }

    /// The poison reason, if the channel is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Poisoned> {
        self.poison.get()
    }

    /// Fsyncs directory `dir` under the [`SyncGate`], for every thread of a running channel
    /// (writer, checkpointer). A failed directory fsync poisons the channel: like a failed
    /// `fdatasync`, it may have dropped changes other threads made to the same directory (a
    /// segment the writer just created), and a later directory fsync then "succeeds" without
    /// writing them. Holding the gate across the call and the poisoning means a success seen
    /// afterwards by any thread is checked against the failure.
    pub(crate) fn sync_dir_gated(&self, dir: &Path) -> io::Result<()> {
        let gate = self.sync_gate.clone();
        let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = self.storage.sync_dir(dir) {
            self.metrics.fsync_error_count.fetch_add(1, Relaxed);
            let p = self.poison(PoisonCause::DirectorySync {
                dir: dir.to_path_buf(),
                error: (&e).into(),
            });
            return Err(io::Error::new(e.kind(), format!("{e} ({p})")));
        }
        self.metrics.dir_sync_count.fetch_add(1, Relaxed);
        if let Some(p) = self.poisoned() {
            return Err(io::Error::other(format!(
                "directory fsync of {} proves nothing after an earlier failed sync: {p}",
                dir.display()
            )));
        }
        Ok(())
    }

    /// Checks the free space of the channel and data directories now.
    pub(crate) fn refresh_space(&self) -> Option<SpaceLow> {
        self.space
            .refresh(self.storage.as_ref(), &self.config, &self.metrics)
    }

    /// A write just failed with ENOSPC: refuse puts until a check says otherwise.
    pub(crate) fn note_no_space(&self) {
        self.space
            .note_no_space(self.storage.as_ref(), &self.config, &self.metrics);
    }

    /// Makes a synced batch of put commits visible to takers.
    pub(crate) fn publish(&self, next_seq: u64, visible: LogPos, events: u64, bytes: u64) {
        self.lock_queue()
            .publish(next_seq, visible, events, bytes, &self.metrics);
        self.not_empty.notify_all();
    }
}
