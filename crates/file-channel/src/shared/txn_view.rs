//! [`TxnView`]: what a transaction may touch of the shared state — the queue under its lock
//! and its condition variables, the reader's [`ReadContext`] and the quarantine I/O it leaves
//! behind, the refusals (poison, close, low space), the limits, transaction ids and the count
//! of put commits on their way to the writer.

use super::Shared;
use crate::config::ChannelConfig;
use crate::error::Poisoned;
use crate::format::record::{PendingRecord, RECORD_CAPACITY_MIN_BYTES};
use crate::metrics::ChannelMetrics;
use crate::quarantine;
use crate::queue::{QuarantineWork, QueueState, ReadContext};
use crate::space_reserve::SpaceLow;
use crate::take_inbox::Poke;
use std::path::Path;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::MutexGuard;
use std::time::Duration;

/// Largest capacity a put transaction's record starts with ([`TxnView::put_record_bytes_hint`]).
pub(crate) const PUT_RECORD_HINT_BYTES_MAX: usize = 4 << 20;

/// A transaction's view of the shared state: a borrowed reference, made per operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TxnView<'a> {
    shared: &'a Shared,
}

impl<'a> TxnView<'a> {
    pub(super) fn new(shared: &'a Shared) -> Self {
        Self { shared }
    }

    /// The configuration in force (capacities, keep-alive, the space reserve).
    pub(crate) fn config(&self) -> &'a ChannelConfig {
        &self.shared.config
    }

    /// Whether new put records are encrypted (the channel has an active key).
    pub(crate) fn encrypts(&self) -> bool {
        self.shared
            .config
            .keyring
            .as_ref()
            .is_some_and(|k| k.active().is_some())
    }

    /// The channel's counters.
    pub(crate) fn metrics(&self) -> &'a ChannelMetrics {
        &self.shared.metrics
    }

    /// Largest record (padding included) a put transaction may produce.
    pub(crate) fn record_bytes_max(&self) -> u64 {
        self.shared.record_bytes_max
    }

    /// A new transaction id.
    pub(crate) fn new_txn_id(&self) -> u64 {
        self.shared.next_txn_id.fetch_add(1, Relaxed)
    }

    /// The poison reason, if the channel is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Poisoned> {
        self.shared.poisoned()
    }

    /// Whether the channel was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(SeqCst)
    }

    /// Whether puts must be refused for lack of space (re-checking a stale verdict).
    pub(crate) fn space_low(&self) -> Option<SpaceLow> {
        let s = self.shared;
        s.space.low(s.storage.as_ref(), &s.config, &s.metrics)
    }

    /// Leaves a take commit's record for the writer; says whether and how to poke it.
    pub(crate) fn push_take(&self, record: PendingRecord) -> Poke {
        self.shared.takes.push(record)
    }

    /// Counts a put commit about to be sent to the writer.
    pub(crate) fn put_commit_queued(&self) {
        self.shared.put_commits_queued.fetch_add(1, Relaxed);
    }

    /// The capacity a new put transaction's record starts with: the length of the latest put
    /// record, at most [`PUT_RECORD_HINT_BYTES_MAX`] (a rare huge transaction must not make
    /// every later one hold as much), at least [`RECORD_CAPACITY_MIN_BYTES`].
    pub(crate) fn put_record_bytes_hint(&self) -> usize {
        let hint = self.shared.put_record_bytes_hint.load(Relaxed);
        usize::try_from(hint)
            .unwrap_or(usize::MAX)
            .clamp(RECORD_CAPACITY_MIN_BYTES, PUT_RECORD_HINT_BYTES_MAX)
    }

    /// Remembers the length of a put record being committed (see above).
    pub(crate) fn note_put_record_bytes(&self, bytes: u64) {
        self.shared.put_record_bytes_hint.store(bytes, Relaxed);
    }

    /// Uncounts a put commit the writer did not accept (it has stopped).
    pub(crate) fn put_commit_unqueued(&self) {
        self.shared.put_commits_queued.fetch_sub(1, Relaxed);
    }

    /// The queue, locked.
    pub(crate) fn lock_queue(&self) -> MutexGuard<'a, QueueState> {
        self.shared.lock_queue()
    }

    /// What the queue's reader needs.
    pub(crate) fn read_context(&self) -> ReadContext<'a> {
        let s = self.shared;
        ReadContext {
            segments: &s.segments,
            metrics: &s.metrics,
            mode: s.config.recovery_mode,
        }
    }

    /// Waits up to `timeout` for events to become visible (or come back).
    pub(crate) fn wait_not_empty<'q>(
        &self,
        queue: MutexGuard<'q, QueueState>,
        timeout: Duration,
    ) -> MutexGuard<'q, QueueState> {
        self.shared.wait_not_empty(queue, timeout)
    }

    /// Waits up to `timeout` for room.
    pub(crate) fn wait_not_full<'q>(
        &self,
        queue: MutexGuard<'q, QueueState>,
        timeout: Duration,
    ) -> MutexGuard<'q, QueueState> {
        self.shared
            .not_full
            .wait_timeout(queue, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }

    /// Wakes the takers: events came back.
    pub(crate) fn notify_not_empty(&self) {
        self.shared.not_empty.notify_all();
    }

    /// Wakes the putters: room appeared.
    pub(crate) fn notify_not_full(&self) {
        self.shared.not_full.notify_all();
    }

    /// Does the quarantine I/O a reader decided on while it held the queue lock (which must be
    /// released by now). Quarantine copies are diagnostics: a failed copy or note is logged and
    /// the take goes on; a failed directory fsync poisons the channel like any other (it may
    /// have dropped a segment's directory entry too).
    pub(crate) fn quarantine(&self, work: Vec<QuarantineWork>) {
        let s = self.shared;
        let sync_dir = |d: &Path| s.sync_dir_gated(d);
        for w in work {
            let (at, result) = match w {
                QuarantineWork::Bytes { at, file, bytes } => {
                    let r = quarantine::save_bytes(
                        s.storage.as_ref(),
                        &sync_dir,
                        &s.config.dir,
                        &at,
                        &file,
                        bytes,
                    );
                    (at, r)
                }
                QuarantineWork::Note {
                    at,
                    bytes,
                    events_lost,
                } => {
                    let r = quarantine::write_note(
                        s.storage.as_ref(),
                        &sync_dir,
                        &s.config.dir,
                        &at,
                        bytes,
                        events_lost,
                    );
                    (at, r)
                }
            };
            if let Err(e) = result {
                tracing::warn!(file = %at.file.display(), segment = at.segment, offset = at.offset,
                    error = %e, "could not quarantine damaged log data");
            }
        }
    }
}
