//! [`Shared`]: the state a running channel's handle, transactions, writer thread, checkpoint
//! thread and prefill thread share, with private fields, and the narrow view each of those
//! users gets of it.
//!
//! Each part is owned by the module whose job it is: the queue and its accounting
//! ([`QueueState`]), the poison slot ([`crate::poison`]), the free-space verdict
//! ([`crate::space_reserve`]). This module only holds them together and does the few things
//! that need several at once: poisoning (which wakes the queue's waiters), a directory fsync
//! (which poisons on failure) and publishing a batch (which wakes takers).
//!
//! Only [`crate::open`] (which builds the state) and [`crate::running`] (which owns it and
//! closes it) hold the full [`Shared`]. Every other user gets a view, so its signature says what
//! shared state it can touch; an accessor only one view needs lives in that view's file:
//!
//! | view | user | why it needs what it gets |
//! |---|---|---|
//! | [`HandleView`] | the channel handle ([`crate::FileChannel`]) | reports lengths, counters, config and poison; waits for events |
//! | [`TxnView`] | transactions ([`crate::Transaction`]) | reserve, take, give back and consume under the queue lock and its condition variables; refuse on poison, close or low space; count the put commits they queue |
//! | [`WriterView`] | the writer thread ([`crate::writer`]) | creates, syncs (under the sync gate) and registers segments, poisons on failure, publishes batches, snapshots the queue for checkpoints, watches free space |
//! | [`CheckpointView`] | the checkpoint thread ([`crate::checkpoint`]) and segment deletion ([`crate::segment_deletion`]) | writes checkpoint files and unlinks freed segments through the storage, fsyncs directories (poisoning on failure) |
//! | [`PrefillView`] | the prefill thread ([`crate::segment::prefill`]) | syncs under the sync gate, poisons on a fatal error (holding the state weakly), counts its fsyncs |
//! | [`ReadContext`] | the queue's reader ([`QueueState::pop_next`], built by [`TxnView`]) | reads segments, bumps counters, follows the recovery mode |
//!
//! The views cost nothing on the commit path: [`HandleView`] and [`TxnView`] are borrowed
//! references made per call, [`WriterView`], [`CheckpointView`] and [`PrefillView`] are made
//! once, when open starts their thread.

mod checkpoint_view;
mod handle_view;
mod prefill_view;
mod txn_view;
mod writer_view;

pub(crate) use checkpoint_view::CheckpointView;
pub(crate) use handle_view::HandleView;
pub(crate) use prefill_view::PrefillView;
pub(crate) use txn_view::TxnView;
pub(crate) use writer_view::WriterView;

use crate::config::ChannelConfig;
use crate::error::{PoisonCause, Poisoned};
use crate::metrics::ChannelMetrics;
use crate::poison::PoisonSlot;
#[cfg(doc)]
use crate::queue::ReadContext;
use crate::queue::{LogPos, QueueState};
use crate::segment::prefill::SyncGate;
use crate::segment::SegmentSet;
use crate::space_reserve::{SpaceLow, SpaceReserve};
use crate::storage::{failed_before_any_io, DynStorage};
use crate::take_inbox::TakeInbox;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// State shared by the channel handle, its transactions and the writer, checkpoint and prefill
/// threads.
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
    /// Length of the latest put record committed: the capacity the next put transaction's
    /// buffer starts with (at most `PUT_RECORD_HINT_BYTES_MAX`).
    put_record_bytes_hint: AtomicU64,
    next_txn_id: AtomicU64,
    /// Largest record (padding included) a put transaction may produce.
    record_bytes_max: u64,
    poison: PoisonSlot,
    closed: AtomicBool,
    space: SpaceReserve,
    /// Take records on their way to the writer.
    takes: TakeInbox,
}

/// What open and running use: they build and own the state.
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
            put_record_bytes_hint: AtomicU64::new(0),
            next_txn_id: AtomicU64::new(next_txn_id),
            record_bytes_max,
            poison: PoisonSlot::default(),
            closed: AtomicBool::new(false),
            space: SpaceReserve::default(),
            takes: TakeInbox::default(),
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

    /// The writer thread's view (made once, when open starts the writer).
    pub(crate) fn writer_view(self: &Arc<Self>) -> WriterView {
        WriterView::new(self.clone())
    }

    /// The checkpoint thread's view (made once, when open starts the thread).
    pub(crate) fn checkpoint_view(self: &Arc<Self>) -> CheckpointView {
        CheckpointView::new(self.clone())
    }

    /// The prefill thread's view (made once, when open starts the thread).
    pub(crate) fn prefill_view(self: &Arc<Self>) -> PrefillView {
        PrefillView::new(self)
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// The channel's counters.
    pub(crate) fn metrics(&self) -> &ChannelMetrics {
        &self.metrics
    }

    /// The open segment files.
    pub(crate) fn segments(&self) -> &SegmentSet {
        &self.segments
    }

    /// The queue, locked.
    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, QueueState> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The poison reason, if the channel is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Poisoned> {
        self.poison.get()
    }

    /// Marks the channel closed and wakes every waiter; false if it already was.
    pub(crate) fn close(&self) -> bool {
        if self.closed.swap(true, SeqCst) {
            return false;
        }
        self.wake_all();
        true
    }

    /// Checks the free space of the channel and data directories now.
    pub(crate) fn refresh_space(&self) -> Option<SpaceLow> {
        self.space
            .refresh(self.storage.as_ref(), &self.config, &self.metrics)
    }
}

/// What several views share; reached only through them.
impl Shared {
    /// The file system.
    fn storage(&self) -> &DynStorage {
        &self.storage
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
    fn poison(&self, cause: PoisonCause) -> Poisoned {
        let p = self.poison.poison(cause);
        self.metrics.unhealthy.store(1, Relaxed);
        self.wake_all();
        p
    }

    /// Fsyncs directory `dir` under the [`SyncGate`], for every thread of a running channel
    /// (writer, checkpointer). A directory that cannot be opened (see
    /// [`failed_before_any_io`]) fails the call alone. A failed directory fsync poisons the
    /// channel: like a failed
    /// `fdatasync`, it may have dropped changes other threads made to the same directory (a
    /// segment the writer just created), and a later directory fsync then "succeeds" without
    /// writing them. Holding the gate across the call and the poisoning means a success seen
    /// afterwards by any thread is checked against the failure.
    fn sync_dir_gated(&self, dir: &Path) -> io::Result<()> {
        let gate = self.sync_gate.clone();
        let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = self.storage.sync_dir(dir) {
            if failed_before_any_io(&e) {
                // The directory could not even be opened: nothing was synced or dropped, and a
                // later directory fsync still makes the same entries durable.
                self.metrics.file_open_error_count.fetch_add(1, Relaxed);
                tracing::warn!(dir = %dir.display(), errno = e.raw_os_error(), error = %e,
                    "cannot open a directory to fsync it; the operation fails and is retried, the channel is not poisoned");
                // Returned as it is, so callers can tell it apart by its errno too.
                return Err(e);
            }
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
}
