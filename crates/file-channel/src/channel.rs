//! [`FileChannel`]: the handle users hold — opening (see [`crate::open`] for the phases),
//! transactions, counters, sync and close.

use crate::config::ChannelConfig;
use crate::error::{CloseError, OpenError, PoisonCause, Poisoned};
use crate::metrics::ChannelMetrics;
use crate::open_report::OpenReport;
use crate::running::Running;
use crate::storage::{DynStorage, StdStorage};
use crate::txn::Transaction;
use crate::writer::{Completion, Request};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// A durable channel over a directory of segment files.
///
/// Cloning is cheap and shares the channel; it is closed by [`FileChannel::close`] or when the
/// last clone and transaction are dropped.
#[derive(Clone, Debug)]
pub struct FileChannel {
    running: Arc<Running>,
}

impl FileChannel {
    /// Opens (creating if needed) the channel in `config.dir` on the real file system.
    pub fn open(config: ChannelConfig) -> Result<Self, OpenError> {
        Self::open_with(config, Arc::new(StdStorage::new()))
    }

    /// Opens the channel through `storage` (tests pass a simulated one).
    pub fn open_with(config: ChannelConfig, storage: DynStorage) -> Result<Self, OpenError> {
        Ok(Self {
            running: Arc::new(crate::open::open(config, storage)?),
        })
    }

    /// Opens the channel without the key check of pending encrypted events, for `chanctl
    /// repair`'s reopen: it only replays, writes a checkpoint and closes, taking and putting
    /// nothing, so it reads no payload and needs no key (`config.keyring` should be `None`).
    pub(crate) fn open_for_repair(
        config: ChannelConfig,
        storage: DynStorage,
    ) -> Result<Self, OpenError> {
        Ok(Self {
            running: Arc::new(crate::open::open_with_key_check(config, storage, false)?),
        })
    }

    /// Starts a transaction. Its first operation makes it a put or a take transaction.
    pub fn transaction(&self) -> Transaction {
        Transaction::new(self.running.clone())
    }

    /// Events committed and not yet consumed.
    pub fn len(&self) -> u64 {
        self.running.handle_view().lock_queue().pending_events()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded bytes of the pending events.
    pub fn pending_bytes(&self) -> u64 {
        self.running.handle_view().lock_queue().pending_bytes()
    }

    /// The channel's counters.
    pub fn metrics(&self) -> &ChannelMetrics {
        self.running.handle_view().metrics()
    }

    /// Every counter and gauge by name, with the gauges refreshed: bytes on disk (the sum of
    /// the segment files' sizes), the prefill thread's fsyncs (`PrefillFsyncCount`) and the put
    /// commits waiting for the writer (`CommitsQueued`).
    pub fn metrics_snapshot(&self) -> Vec<(&'static str, u64)> {
        let shared = self.running.handle_view();
        let segments = shared.segments();
        let on_disk: u64 = segments
            .ids()
            .into_iter()
            .filter_map(|id| segments.get(id))
            .filter_map(|s| s.file.len().ok())
            .sum();
        let metrics = shared.metrics();
        metrics.bytes_on_disk.store(on_disk, Relaxed);
        let mut snap = metrics.snapshot();
        snap.push(("PrefillFsyncCount", shared.prefill_fsyncs()));
        snap.push(("CommitsQueued", shared.put_commits_queued()));
        snap.push((
            "ChannelFillPercentage",
            metrics.fill_percentage().round() as u64,
        ));
        snap
    }

    /// What opening found and did.
    pub fn open_report(&self) -> &OpenReport {
        self.running.report()
    }

    /// The channel's id (in every segment header).
    pub fn channel_id(&self) -> u64 {
        self.running.channel_id()
    }

    /// The configuration in force.
    pub fn config(&self) -> &ChannelConfig {
        self.running.handle_view().config()
    }

    /// The poison reason, if a failed fsync or write made the channel refuse work.
    pub fn poisoned(&self) -> Option<Poisoned> {
        self.running.handle_view().poisoned()
    }

    /// Writes and fsyncs everything committed so far (take commits included).
    pub fn sync(&self) -> Result<(), Poisoned> {
        let done = Completion::new();
        if self
            .running
            .send(Request::Sync { done: done.clone() })
            .is_err()
        {
            return Err(self
                .poisoned()
                .unwrap_or_else(|| PoisonCause::Closed.into()));
        }
        done.wait().map_err(|_| {
            self.poisoned()
                .unwrap_or_else(|| PoisonCause::SyncFailed.into())
        })
    }

    /// Closes the channel: syncs what is written, stops the writer, releases the lock.
    /// Transactions still open fail afterwards with `Closed`.
    pub fn close(self) -> Result<(), CloseError> {
        self.running.shutdown()
    }

    /// Waits up to `timeout` for at least `events` events to be pending (used by tools and tests).
    pub fn wait_for_len(&self, events: u64, timeout: Duration) -> bool {
        let shared = self.running.handle_view();
        let deadline = std::time::Instant::now() + timeout;
        let mut queue = shared.lock_queue();
        while queue.pending_events() < events {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            queue = shared.wait_not_empty(queue, deadline - now);
        }
        true
    }
}
