//! Group commit: how the writer turns whatever commits are queued into one batch with one
//! fsync.
//!
//! Committers encode their records (and the payload CRC) on their own threads and queue them
//! as [`Request`]s. The writer takes *everything* queued at that moment and frames the records
//! in log order (assigning segment, offset and sequence numbers); while it waits for the rest
//! of the batch ([`Gather`]) it writes what it has framed, so the writes overlap that wait. One
//! `fdatasync` covers the batch; only then are the puts made visible to takers and their
//! committers released ([`Completion`]). While one batch is being synced the next one queues
//! up, so N concurrent committers cost one sync, not N.

use super::{Fail, Writer};
use crate::checkpoint::CheckpointDone;
use crate::config::SyncPolicy;
use crate::error::CommitError;
use crate::format::record::{PendingRecord, RecordKind, RECORD_HEADER_BYTES};
use crate::queue::LogPos;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most record bytes one batch gathers before it is written.
const BATCH_BYTES_MAX: usize = 16 << 20;

/// Work for the writer.
#[derive(Debug)]
pub(crate) enum Request {
    /// A put commit; completed after its record is durable (or written, under interval sync).
    Put {
        record: PendingRecord,
        done: Arc<Completion>,
    },
    /// Take commits left their records in the inbox (`take_inbox`); nobody waits for them.
    /// Drained with the next batch, or once the linger is over, or now if `urgent`.
    TakesWaiting { urgent: bool },
    /// Write and fsync everything queued before it.
    Sync { done: Arc<Completion> },
    /// Sync, then stop the thread.
    Shutdown { done: Arc<Completion> },
}

/// A one-shot result slot a committer waits on.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    slot: Mutex<Option<Result<(), CommitError>>>,
    ready: Condvar,
}

impl Completion {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(super) fn complete(&self, result: Result<(), CommitError>) {
        {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(result);
            }
        }
        self.ready.notify_all();
    }

    /// Blocks until the writer completes this request.
    pub(crate) fn wait(&self) -> Result<(), CommitError> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = slot.take() {
                return r;
            }
            slot = self
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The group-commit gather estimate.
///
/// After an fsync releases `R` waiting put commits while `Q` more arrived during it, the next
/// batch expects `R + Q` put commits: the `Q` already queued and the `R` committers just
/// released, which typically come straight back with their next transaction. The writer waits
/// for them at most half a recent fsync's duration (capped by
/// `ChannelConfig::group_commit_wait_us_max`); one
/// committer (R = 1, Q = 0) never waits, and a committer that does not come back costs one
/// bounded wait, after which the estimate shrinks to what was actually released.
#[derive(Debug, Default)]
pub(super) struct Gather {
    expected_puts: usize,
    /// Exponentially weighted mean fsync duration, in microseconds.
    fsync_ewma_us: u64,
}

/// Where a batch began.
#[derive(Clone, Copy, Debug)]
pub(super) struct BatchStart {
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
    /// The next sequence number then.
    pub next_seq: u64,
}

/// One batch in progress. Each request's record is framed as soon as the request arrives, and
/// what is framed is written whenever the writer would otherwise sit waiting for the rest of the
/// batch, so the writes overlap that wait; one fsync at the end covers the whole batch, and only
/// then is anyone released.
pub(super) struct Batch {
    /// Where the batch began: running out of space cuts the log back to here.
    start: BatchStart,
    /// Put commits and syncs to release when the batch is done.
    waiters: Vec<Arc<Completion>>,
    shutdown: Option<Arc<Completion>>,
    /// A sync or shutdown is waiting: write and fsync now.
    urgent: bool,
    /// The batch's take records, kept to be written again first if the batch runs out of space
    /// (so a later successful put commit still makes every earlier take commit durable).
    takes: Vec<PendingRecord>,
    /// Record bytes gathered so far.
    bytes: usize,
    /// Put records (one per put commit), their events and payload bytes.
    put_records: usize,
    puts: u64,
    put_bytes: u64,
    /// The first failure; nothing more is framed or written once it is set.
    failed: Option<Fail>,
}

impl Gather {
    /// How long a batch may wait: half the recent fsync time, at most `cap_us`.
    fn wait_max(&self, cap_us: u64) -> Duration {
        Duration::from_micros((self.fsync_ewma_us / 2).min(cap_us))
    }

    pub(super) fn note_fsync(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.fsync_ewma_us = if self.fsync_ewma_us == 0 {
            us
        } else {
            (self.fsync_ewma_us * 7 + us) / 8
        };
    }
}

pub(super) fn clone_commit_error(e: &CommitError) -> CommitError {
    match e {
        CommitError::Write { path, source } => CommitError::Write {
            path: path.clone(),
            source: source.clone(),
        },
        CommitError::SegmentUnavailable { op, path, source } => CommitError::SegmentUnavailable {
            op,
            path: path.clone(),
            source: source.clone(),
        },
        CommitError::Poisoned(p) => CommitError::Poisoned(p.clone()),
        CommitError::Closed => CommitError::Closed,
    }
}

impl Writer {
    /// Starts a batch at the current end of the log, beginning with the take records a batch
    /// that ran out of space left behind.
    pub(super) fn begin_batch(&mut self) -> Batch {
        let mut batch = Batch {
            start: BatchStart {
                segment: self.active.id,
                offset: self.active.offset,
                next_seq: self.next_seq,
            },
            waiters: Vec::with_capacity(self.gather.expected_puts.max(4)),
            shutdown: None,
            urgent: false,
            takes: Vec::new(),
            bytes: 0,
            put_records: 0,
            puts: 0,
            put_bytes: 0,
            failed: self.shared.poisoned().map(Fail::from),
        };
        for record in std::mem::take(&mut self.deferred_takes) {
            self.add_record(&mut batch, record);
        }
        self.add_waiting_takes(&mut batch);
        batch
    }

    /// Adds the take records waiting in the inbox to `batch`.
    fn add_waiting_takes(&mut self, batch: &mut Batch) {
        self.takes_due = None;
        let mut waiting = std::mem::take(&mut self.take_scratch);
        self.shared.drain_takes(&mut waiting);
        for record in waiting.drain(..) {
            self.add_record(batch, record);
        }
        self.take_scratch = waiting;
    }

    /// Adds `r` to `batch`, framing its record at once; false when the batch must be finished
    /// now (shutdown, failure, or full).
    pub(super) fn absorb(&mut self, batch: &mut Batch, r: Request) -> bool {
        match r {
            Request::Put { record, done } => {
                self.shared.put_commit_received();
                batch.waiters.push(done);
                // Take commits made before this put commit go first: its fsync covers them.
                self.add_waiting_takes(batch);
                self.add_record(batch, record);
            }
            Request::TakesWaiting { .. } => self.add_waiting_takes(batch),
            Request::Sync { done } => {
                batch.urgent = true;
                batch.waiters.push(done);
                self.add_waiting_takes(batch);
            }
            Request::Shutdown { done } => {
                batch.urgent = true;
                batch.shutdown = Some(done);
                self.add_waiting_takes(batch);
                return false;
            }
        }
        batch.failed.is_none() && batch.bytes < BATCH_BYTES_MAX
    }

    pub(super) fn add_record(&mut self, batch: &mut Batch, record: PendingRecord) {
        batch.bytes += record.bytes.len();
        if record.kind == RecordKind::Put {
            batch.puts += u64::from(record.event_count);
            batch.put_bytes += record.len() - RECORD_HEADER_BYTES as u64;
            batch.put_records += 1;
        }
        let record = if batch.failed.is_none() {
            let (kept, placed) = self.place(record);
            if let Err(f) = placed {
                batch.failed = Some(f);
            }
            kept
        } else {
            Some(record)
        };
        if let Some(record) = record.filter(|r| r.kind == RecordKind::Take) {
            batch.takes.push(record);
        }
    }

    /// Grows `batch` with everything already queued, then — under [`SyncPolicy::EveryCommit`]
    /// — waits a little for the put commits the [`Gather`] estimate expects, so committers
    /// released by one fsync join the next one instead of forming a second cohort that
    /// alternates with the first (see `docs/design.md`, "Group commit"). Before each wait it
    /// writes what is framed, so the batch's writes overlap the wait instead of following it.
    pub(super) fn gather(&mut self, batch: &mut Batch) {
        let wait = self
            .gather
            .wait_max(self.shared.config().group_commit_wait_us_max);
        let expected = self.gather.expected_puts;
        let may_wait = self.shared.config().sync == SyncPolicy::EveryCommit && !wait.is_zero();
        let deadline = Instant::now() + wait;
        loop {
            while let Ok(r) = self.rx.try_recv() {
                if !self.absorb(batch, r) {
                    return;
                }
            }
            if !may_wait || batch.urgent || batch.put_records == 0 || batch.put_records >= expected
            {
                return;
            }
            if let Err(f) = self.flush() {
                batch.failed = Some(f);
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(r) => {
                    if !self.absorb(batch, r) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.shared
                        .metrics()
                        .gather_timeout_count
                        .fetch_add(1, Relaxed);
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Writes what is left of `batch`, fsyncs it as the sync policy says and releases its
    /// committers; returns true when the thread should stop.
    pub(super) fn finish(&mut self, mut batch: Batch) -> bool {
        let outcome: Result<(), Fail> = match batch.failed.take() {
            Some(f) => Err(f),
            None => (|| {
                self.flush()?;
                let interval_due = match self.shared.config().sync {
                    SyncPolicy::EveryCommit => batch.put_records > 0,
                    SyncPolicy::Interval { interval_ms, bytes } => {
                        self.unsynced_bytes >= bytes
                            || self
                                .unsynced_since
                                .is_some_and(|t| t.elapsed() >= Duration::from_millis(interval_ms))
                    }
                };
                if batch.put_records > 0 {
                    self.unsynced_puts = true;
                }
                if batch.urgent || interval_due {
                    self.sync()?;
                }
                Ok(())
            })(),
        };
        self.shared
            .metrics()
            .commit_batch_count
            .fetch_add(1, Relaxed);
        let Batch {
            start,
            waiters,
            shutdown,
            takes,
            puts,
            put_bytes,
            put_records,
            ..
        } = batch;
        let wrote_records = put_records > 0 || !takes.is_empty();
        let outcome = match outcome {
            Err(Fail::NoSpace { path, source }) => {
                let r = self.roll_back(start, path, source);
                if matches!(r, Err(CommitError::Write { .. })) {
                    self.deferred_takes = takes;
                }
                r
            }
            Err(Fail::SegmentUnavailable { op, path, source }) => {
                let r = self.give_up_rotation(start, op, path, source);
                if matches!(r, Err(CommitError::SegmentUnavailable { .. })) {
                    self.deferred_takes = takes;
                }
                r
            }
            Err(Fail::Poison(p)) => Err(CommitError::Poisoned(p)),
            Ok(()) => Ok(()),
        };
        match outcome {
            Ok(()) => {
                if wrote_records {
                    self.dirty = true;
                }
                if put_records > 0 {
                    let end = LogPos::new(self.active.id, self.active.offset);
                    self.shared.publish(self.next_seq, end, puts, put_bytes);
                }
                if put_records > 0 {
                    let queued = self.shared.put_commits_queued();
                    self.gather.expected_puts =
                        put_records + usize::try_from(queued).unwrap_or(usize::MAX);
                }
                for w in waiters {
                    w.complete(Ok(()));
                }
                self.report_syncs_to_prefill();
                if let Some(done) = shutdown {
                    // A clean close leaves a checkpoint at the end of the log.
                    let result = if self.dirty {
                        let cp_done = Arc::new(CheckpointDone::default());
                        match self.checkpoint(Some(cp_done.clone())) {
                            Ok(()) => {
                                let _ = cp_done.wait();
                                Ok(())
                            }
                            Err(p) => Err(CommitError::Poisoned(p)),
                        }
                    } else {
                        Ok(())
                    };
                    done.complete(result);
                    return true;
                }
                false
            }
            Err(e) => {
                let poisoned = matches!(e, CommitError::Poisoned(_));
                for w in &waiters {
                    w.complete(Err(clone_commit_error(&e)));
                }
                if let Some(done) = shutdown {
                    done.complete(Err(e));
                    return true;
                }
                if poisoned {
                    self.drain_poisoned();
                    return true;
                }
                false
            }
        }
    }
}
