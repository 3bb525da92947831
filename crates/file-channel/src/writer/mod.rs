//! The log writer: one thread that owns the active segment and turns commits into records.
//!
//! Its loop ([`Writer::run`]) takes a batch of queued commits ([`group_commit`]), appends and
//! syncs it ([`append`]), then releases the committers. Between batches it also takes
//! checkpoint snapshots (after an fsync, so the position they cover is durable) for the
//! checkpoint thread, fsyncs take records that are due, and watches the free space of the
//! channel's directories.
//!
//! Failure discipline: a failed fsync, or a failed write other than "no space", poisons the
//! channel: nothing in the failing batch is acknowledged, every later operation fails, and
//! reopening replays what was durable. A write that fails for lack of space (ENOSPC) is rolled
//! back instead: the batch's commits fail with [`crate::CommitError::Write`], and the channel
//! keeps serving (takes drain it). So is a rotation whose new segment cannot be created or
//! whose directory cannot be opened (EMFILE, ENFILE, EACCES): the commits fail with
//! [`crate::CommitError::SegmentUnavailable`] and the next batch that needs the segment tries
//! again, since nothing written before is in doubt.

mod append;
mod group_commit;
mod unflushed;

pub(crate) use append::{create_segment, Active};
use group_commit::Gather;
pub(crate) use group_commit::{Completion, Request};

use crate::checkpoint::{CheckpointDone, Snapshot};
use crate::config::SyncPolicy;
use crate::error::{CommitError, PoisonCause, Poisoned};
use crate::format::checkpoint::Checkpoint;
use crate::format::record::PendingRecord;
use crate::queue::LogPos;
use crate::segment::prefill::Prefill;
use crate::segment_deletion::deletable;
use crate::shared::WriterView;
use crate::take_inbox::TAKE_LINGER_US;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the free space of the directories is checked while writing.
const SPACE_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// ... or after this many bytes were written (less when the reserve is small: a quarter of it).
const SPACE_CHECK_BYTES: u64 = 8 << 20;
/// The smallest byte step between space checks.
const SPACE_CHECK_BYTES_MIN: u64 = 64 << 10;

/// Why a batch failed.
#[derive(Debug)]
enum Fail {
    /// The channel is poisoned.
    Poison(Poisoned),
    /// No space: roll the batch back and keep serving.
    NoSpace { path: PathBuf, source: io::Error },
    /// The next segment could not be created or its directory not opened (too many open files,
    /// no permission): nothing durable is in doubt, so roll the batch back, keep serving, and
    /// let the next batch that needs the segment try again.
    SegmentUnavailable {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl From<Poisoned> for Fail {
    fn from(p: Poisoned) -> Self {
        Self::Poison(p)
    }
}

fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
}

/// What the writer needs at start-up besides the shared state.
pub(crate) struct WriterStart {
    pub rx: Receiver<Request>,
    pub active: Active,
    pub next_seq: u64,
    pub channel_id: u64,
    pub dirs: Vec<PathBuf>,
    pub prefill: Option<Prefill>,
    pub checkpoints: Sender<Snapshot>,
    /// Write a checkpoint right away (after a full replay or damage).
    pub checkpoint_now: bool,
}

/// The writer thread's state.
pub(crate) struct Writer {
    shared: WriterView,
    rx: Receiver<Request>,
    active: Active,
    next_seq: u64,
    channel_id: u64,
    dirs: Vec<PathBuf>,
    prefill: Option<Prefill>,
    checkpoints: Sender<Snapshot>,
    /// Framed records not written yet.
    unflushed: unflushed::Unflushed,
    /// When the oldest unsynced byte was written.
    unsynced_since: Option<Instant>,
    unsynced_bytes: u64,
    /// Bytes covered by fsyncs not yet reported to the prefiller (reported once the batch's
    /// committers are released, off their path).
    synced_bytes_unreported: Vec<u64>,
    /// Whether unsynced bytes include acknowledged puts (interval policy).
    unsynced_puts: bool,
    last_checkpoint: Instant,
    bytes_since_checkpoint: u64,
    /// Something changed since the last checkpoint.
    dirty: bool,
    checkpoint_now: bool,
    last_space_check: Instant,
    bytes_since_space_check: u64,
    /// Take records of a batch that ran out of space: written first in the next batch, so a
    /// later successful put commit still makes every earlier take commit durable.
    deferred_takes: Vec<PendingRecord>,
    /// When the take records waiting in the inbox are to be written (the first one poked the
    /// writer; see `take_inbox`).
    takes_due: Option<Instant>,
    /// A reused vector to drain the inbox into.
    take_scratch: Vec<PendingRecord>,
    /// Checkpoint failures seen so far; a new one makes the state dirty again, so the
    /// checkpoint is retried at the next interval even if nothing else is written.
    checkpoint_errors_seen: u64,
    /// How many put commits the next batch should wait for, and how long at most.
    gather: Gather,
}

impl Writer {
    pub(crate) fn new(shared: WriterView, start: WriterStart) -> Self {
        Self {
            shared,
            rx: start.rx,
            active: start.active,
            next_seq: start.next_seq,
            channel_id: start.channel_id,
            dirs: start.dirs,
            prefill: start.prefill,
            checkpoints: start.checkpoints,
            unflushed: unflushed::Unflushed::with_capacity(1 << 20),
            unsynced_since: None,
            unsynced_bytes: 0,
            synced_bytes_unreported: Vec::new(),
            unsynced_puts: false,
            last_checkpoint: Instant::now(),
            bytes_since_checkpoint: 0,
            dirty: start.checkpoint_now,
            checkpoint_now: start.checkpoint_now,
            last_space_check: Instant::now(),
            bytes_since_space_check: 0,
            deferred_takes: Vec::new(),
            takes_due: None,
            take_scratch: Vec::new(),
            checkpoint_errors_seen: 0,
            gather: Gather::default(),
        }
    }

    /// How long until something is due: an fsync of unsynced data or a checkpoint.
    fn next_due_in(&self) -> Option<Duration> {
        let cfg = self.shared.config();
        let mut due: Option<Duration> = None;
        if let Some(since) = self.unsynced_since {
            let mut limit = Duration::from_millis(cfg.take_sync_interval_ms);
            if self.unsynced_puts {
                if let SyncPolicy::Interval { interval_ms, .. } = cfg.sync {
                    limit = limit.min(Duration::from_millis(interval_ms));
                }
            }
            due = Some(limit.saturating_sub(since.elapsed()));
        }
        if let Some(at) = self.takes_due {
            let t = at.saturating_duration_since(Instant::now());
            due = Some(due.map_or(t, |d| d.min(t)));
        }
        if self.dirty {
            let cp = Duration::from_millis(cfg.checkpoint_interval_ms)
                .saturating_sub(self.last_checkpoint.elapsed());
            let cp = if self.checkpoint_now {
                Duration::ZERO
            } else {
                cp
            };
            due = Some(due.map_or(cp, |d| d.min(cp)));
        }
        due
    }

    fn checkpoint_due(&mut self) -> bool {
        let errors = self
            .shared
            .metrics()
            .checkpoint_write_error_count
            .load(Relaxed);
        if errors > self.checkpoint_errors_seen {
            self.checkpoint_errors_seen = errors;
            self.dirty = true;
        }
        let cfg = self.shared.config();
        self.dirty
            && (self.checkpoint_now
                || self.bytes_since_checkpoint >= cfg.checkpoint_bytes
                || self.last_checkpoint.elapsed()
                    >= Duration::from_millis(cfg.checkpoint_interval_ms))
    }

    /// The thread body.
    pub(crate) fn run(mut self) {
        loop {
            let first = match self.next_due_in() {
                None => match self.rx.recv() {
                    Ok(r) => Some(r),
                    Err(_) => {
                        let _ = self.sync();
                        return;
                    }
                },
                Some(wait) => match self.rx.recv_timeout(wait) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        let _ = self.sync();
                        return;
                    }
                },
            };
            match first {
                Some(Request::TakesWaiting { urgent: false }) => {
                    // Let take commits gather: the writer is poked once per linger at most.
                    self.takes_due.get_or_insert_with(|| {
                        Instant::now() + Duration::from_micros(TAKE_LINGER_US)
                    });
                }
                Some(first) => {
                    let mut batch = self.begin_batch();
                    if self.absorb(&mut batch, first) {
                        self.gather(&mut batch);
                    }
                    if self.finish(batch) {
                        return;
                    }
                }
                None if self.takes_due.is_some_and(|at| at <= Instant::now()) => {
                    let batch = self.begin_batch();
                    if self.finish(batch) {
                        return;
                    }
                }
                None => {
                    // Timer: sync unsynced data that is due.
                    if self.sync_due() && self.sync().is_err() {
                        self.drain_poisoned();
                        return;
                    }
                }
            }
            self.maybe_check_space();
            if self.checkpoint_due() && self.checkpoint(None).is_err() {
                self.drain_poisoned();
                return;
            }
        }
    }

    fn sync_due(&self) -> bool {
        let cfg = self.shared.config();
        let Some(since) = self.unsynced_since else {
            return false;
        };
        let mut limit = Duration::from_millis(cfg.take_sync_interval_ms);
        if self.unsynced_puts {
            if let SyncPolicy::Interval { interval_ms, .. } = cfg.sync {
                limit = limit.min(Duration::from_millis(interval_ms));
            }
        }
        since.elapsed() >= limit
    }

    /// Fails everything still queued after the channel was poisoned.
    fn drain_poisoned(&mut self) {
        let err = self
            .shared
            .poisoned()
            .unwrap_or_else(|| PoisonCause::WriterStopped.into());
        while let Ok(r) = self.rx.recv() {
            match r {
                Request::Put { done, .. } | Request::Sync { done } => {
                    done.complete(Err(CommitError::Poisoned(err.clone())));
                }
                Request::Shutdown { done } => {
                    done.complete(Err(CommitError::Poisoned(err.clone())));
                    return;
                }
                Request::TakesWaiting { .. } => {}
            }
        }
    }

    /// Snapshots the queue at the (durable) end of the log for the checkpoint thread.
    fn checkpoint(&mut self, done: Option<Arc<CheckpointDone>>) -> Result<(), Poisoned> {
        self.sync()?;
        let position = LogPos::new(self.active.id, self.active.offset);
        let (cp, pinned) = {
            let mut st = self.shared.lock_queue();
            let read_start = st.read_start().min(position);
            let cp = Checkpoint {
                channel_id: self.channel_id,
                generation: 0,
                created_unix_ms: 0,
                position: (position.segment, position.offset),
                next_seq: self.next_seq,
                low_water_mark: st.consumed().low_water_mark(),
                read_start: (read_start.segment, read_start.offset),
                pending_bytes: st.pending_bytes(),
                next_txn_id: self.shared.next_txn_id(),
                first_live_segment: read_start.segment,
                events_lost: self.shared.metrics().events_lost.load(Relaxed),
                ranges: st.consumed().ranges().collect(),
            };
            (cp, self.active.id.saturating_sub(read_start.segment))
        };
        let deletable = deletable(
            self.shared.segments(),
            cp.first_live_segment,
            self.active.id,
        );
        self.shared.metrics().segments_pinned.store(pinned, Relaxed);
        let snap = Snapshot {
            checkpoint: cp,
            deletable,
            done,
        };
        if self.checkpoints.send(snap).is_err() {
            tracing::warn!("checkpoint thread is gone; no checkpoint written");
        }
        self.last_checkpoint = Instant::now();
        self.bytes_since_checkpoint = 0;
        self.dirty = false;
        self.checkpoint_now = false;
        Ok(())
    }

    fn maybe_check_space(&mut self) {
        let bytes_step = (self.shared.config().minimum_required_space / 4)
            .clamp(SPACE_CHECK_BYTES_MIN, SPACE_CHECK_BYTES);
        if self.last_space_check.elapsed() >= SPACE_CHECK_INTERVAL
            || self.bytes_since_space_check >= bytes_step
        {
            self.shared.refresh_space();
            self.last_space_check = Instant::now();
            self.bytes_since_space_check = 0;
        }
    }
}
