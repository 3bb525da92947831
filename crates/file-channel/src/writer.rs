//! The log writer: one thread that owns the active segment and turns commits into records.
//!
//! Group commit: committers encode their records (and the payload CRC) on their own threads and
//! queue them here. The writer takes *everything* queued at that moment and frames the records
//! in log order (assigning segment, offset and sequence numbers); while it waits for the rest of
//! the batch it writes what it has framed, so the writes overlap that wait. One `fdatasync`
//! covers the batch; only then are the puts made visible to takers and their committers
//! released. While one batch is being synced the next one queues up, so N concurrent committers
//! cost one sync, not N.
//!
//! Between batches the writer also takes checkpoint snapshots (after an fsync, so the position
//! they cover is durable) for the checkpoint thread, and watches the free space of the channel's
//! directories.
//!
//! Failure discipline: a failed fsync, or a failed write other than "no space", poisons the
//! channel: nothing in the failing batch is acknowledged, every later operation fails, and
//! reopening replays what was durable. A failed fsync is never retried (the kernel may have
//! dropped the dirty pages already). A write that fails for lack of space (ENOSPC) is rolled
//! back instead: the segment is cut back to where the batch began, the batch's commits fail
//! with [`CommitError::Write`], and the channel keeps serving (takes drain it).

use crate::checkpoint::{CheckpointDone, Snapshot};
use crate::config::SyncPolicy;
use crate::error::{CommitError, PoisonCause, Poisoned};
use crate::format::checkpoint::Checkpoint;
use crate::format::record::{
    align_up, PendingRecord, RecordKind, RecordPlace, SealPayload, RECORD_HEADER_BYTES,
    SEAL_RECORD_BYTES,
};
use crate::format::segment_header::{segment_file_name, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::queue::LogPos;
use crate::segment::prefill::Prefill;
use crate::segment::{dir_for_segment, OpenSegment};
use crate::shared::Shared;
use crate::storage::DynFile;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most record bytes one batch gathers before it is written.
const BATCH_BYTES_MAX: usize = 16 << 20;

/// How often the free space of the directories is checked while writing.
const SPACE_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// ... or after this many bytes were written (less when the reserve is small: a quarter of it).
const SPACE_CHECK_BYTES: u64 = 8 << 20;
/// The smallest byte step between space checks.
const SPACE_CHECK_BYTES_MIN: u64 = 64 << 10;

/// Work for the writer.
#[derive(Debug)]
pub(crate) enum Request {
    /// A put commit; completed after its record is durable (or written, under interval sync).
    Put {
        record: PendingRecord,
        done: Arc<Completion>,
    },
    /// A take commit; nobody waits for it.
    Take { record: PendingRecord },
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

    fn complete(&self, result: Result<(), CommitError>) {
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

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub id: u64,
    pub path: PathBuf,
    pub file: DynFile,
    /// Where the next record goes.
    pub offset: u64,
    /// Everything below this is fsynced.
    pub durable: u64,
}

/// Why a batch failed.
#[derive(Debug)]
enum Fail {
    /// The channel is poisoned.
    Poison(Poisoned),
    /// No space: roll the batch back and keep serving.
    NoSpace { path: PathBuf, source: io::Error },
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
    shared: Arc<Shared>,
    rx: Receiver<Request>,
    active: Active,
    next_seq: u64,
    channel_id: u64,
    dirs: Vec<PathBuf>,
    prefill: Option<Prefill>,
    checkpoints: Sender<Snapshot>,
    buf: Vec<u8>,
    /// When the oldest unsynced byte was written.
    unsynced_since: Option<Instant>,
    unsynced_bytes: u64,
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
    /// Checkpoint failures seen so far; a new one makes the state dirty again, so the
    /// checkpoint is retried at the next interval even if nothing else is written.
    checkpoint_errors_seen: u64,
    /// How many put commits the next batch should wait for, and how long at most.
    gather: Gather,
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
struct Gather {
    expected_puts: usize,
    /// Exponentially weighted mean fsync duration, in microseconds.
    fsync_ewma_us: u64,
}

/// Where a batch began.
#[derive(Clone, Copy, Debug)]
struct BatchStart {
    segment: u64,
    /// Byte offset in the segment.
    offset: u64,
    /// The next sequence number then.
    next_seq: u64,
}

/// One batch in progress. Each request's record is framed as soon as the request arrives, and
/// what is framed is written whenever the writer would otherwise sit waiting for the rest of the
/// batch, so the writes overlap that wait; one fsync at the end covers the whole batch, and only
/// then is anyone released.
struct Batch {
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

    fn note_fsync(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.fsync_ewma_us = if self.fsync_ewma_us == 0 {
            us
        } else {
            (self.fsync_ewma_us * 7 + us) / 8
        };
    }
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, start: WriterStart) -> Self {
        Self {
            shared,
            rx: start.rx,
            active: start.active,
            next_seq: start.next_seq,
            channel_id: start.channel_id,
            dirs: start.dirs,
            prefill: start.prefill,
            checkpoints: start.checkpoints,
            buf: Vec::with_capacity(1 << 20),
            unsynced_since: None,
            unsynced_bytes: 0,
            unsynced_puts: false,
            last_checkpoint: Instant::now(),
            bytes_since_checkpoint: 0,
            dirty: start.checkpoint_now,
            checkpoint_now: start.checkpoint_now,
            last_space_check: Instant::now(),
            bytes_since_space_check: 0,
            deferred_takes: Vec::new(),
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
                Some(first) => {
                    let mut batch = self.begin_batch();
                    if self.absorb(&mut batch, first) {
                        self.gather(&mut batch);
                    }
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

    /// Starts a batch at the current end of the log, beginning with the take records a batch
    /// that ran out of space left behind.
    fn begin_batch(&mut self) -> Batch {
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
        batch
    }

    /// Adds `r` to `batch`, framing its record at once; false when the batch must be finished
    /// now (shutdown, failure, or full).
    fn absorb(&mut self, batch: &mut Batch, r: Request) -> bool {
        match r {
            Request::Put { record, done } => {
                self.shared.put_commits_queued().fetch_sub(1, Relaxed);
                batch.waiters.push(done);
                self.add_record(batch, record);
            }
            Request::Take { record } => self.add_record(batch, record),
            Request::Sync { done } => {
                batch.urgent = true;
                batch.waiters.push(done);
            }
            Request::Shutdown { done } => {
                batch.urgent = true;
                batch.shutdown = Some(done);
                return false;
            }
        }
        batch.failed.is_none() && batch.bytes < BATCH_BYTES_MAX
    }

    fn add_record(&mut self, batch: &mut Batch, record: PendingRecord) {
        batch.bytes += record.bytes.len();
        if record.kind == RecordKind::Put {
            batch.puts += u64::from(record.event_count);
            batch.put_bytes += record.len() - RECORD_HEADER_BYTES as u64;
            batch.put_records += 1;
        }
        if batch.failed.is_none() {
            if let Err(f) = self.place(&record) {
                batch.failed = Some(f);
            }
        }
        if record.kind == RecordKind::Take {
            batch.takes.push(record);
        }
    }

    /// Grows `batch` with everything already queued, then — under [`SyncPolicy::EveryCommit`]
    /// — waits a little for the put commits the [`Gather`] estimate expects, so committers
    /// released by one fsync join the next one instead of forming a second cohort that
    /// alternates with the first (see `docs/design.md`, "Group commit"). Before each wait it
    /// writes what is framed, so the batch's writes overlap the wait instead of following it.
    fn gather(&mut self, batch: &mut Batch) {
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
                Request::Take { .. } => {}
            }
        }
    }

    /// Writes what is left of `batch`, fsyncs it as the sync policy says and releases its
    /// committers; returns true when the thread should stop.
    fn finish(&mut self, mut batch: Batch) -> bool {
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
                    let queued = self.shared.put_commits_queued().load(Relaxed);
                    self.gather.expected_puts =
                        put_records + usize::try_from(queued).unwrap_or(usize::MAX);
                }
                for w in waiters {
                    w.complete(Ok(()));
                }
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

    /// Undoes a batch that ran out of space: cuts the segment back to where the batch began.
    /// Possible only while the batch stayed in one segment; otherwise the channel is poisoned.
    fn roll_back(
        &mut self,
        start: BatchStart,
        path: PathBuf,
        source: io::Error,
    ) -> Result<(), CommitError> {
        let m = self.shared.metrics();
        m.write_error_count.fetch_add(1, Relaxed);
        self.shared.note_no_space();
        self.buf.clear();
        if self.active.id != start.segment {
            return Err(CommitError::Poisoned(self.shared.poison(
                PoisonCause::NoSpaceAcrossSegments {
                    path,
                    error: (&source).into(),
                },
            )));
        }
        if let Err(e) = self.active.file.set_len(start.offset) {
            return Err(CommitError::Poisoned(self.shared.poison(
                PoisonCause::CutBackFailed {
                    path: self.active.path.clone(),
                    offset: start.offset,
                    error: (&e).into(),
                },
            )));
        }
        if let Some(p) = &self.prefill {
            p.switch(
                self.active.file.clone(),
                start.offset,
                start.offset,
                self.shared.config().segment_bytes_max,
            );
        }
        self.active.offset = start.offset;
        self.next_seq = start.next_seq;
        tracing::error!(path = %path.display(), offset = start.offset, error = %source,
            "write failed for lack of space; the batch's commits failed, the channel keeps serving");
        Err(CommitError::Write {
            path,
            source: Arc::new(source),
        })
    }

    /// Frames `record` into the batch buffer at its place, rotating first if it does not fit.
    fn place(&mut self, record: &PendingRecord) -> Result<(), Fail> {
        let len = align_up(record.len());
        let max = self.shared.config().segment_bytes_max;
        let at = self.active.offset + self.buf.len() as u64;
        if at + len + SEAL_RECORD_BYTES > max {
            self.flush()?;
            self.rotate()?;
        }
        let place = RecordPlace {
            segment_id: self.active.id,
            offset: self.active.offset + self.buf.len() as u64,
            durable_mark: self.active.durable,
        };
        let first_seq = match record.kind {
            RecordKind::Put => {
                let s = self.next_seq;
                self.next_seq += u64::from(record.event_count);
                s
            }
            RecordKind::Take | RecordKind::Seal | RecordKind::Gap => record.first_seq,
        };
        record.frame_into(place, first_seq, &mut self.buf);
        self.shared.metrics().records_written.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Writes the batch buffer at the write position.
    fn flush(&mut self) -> Result<(), Fail> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.active.offset + self.buf.len() as u64;
        if let Some(p) = &self.prefill {
            p.claim(end);
        }
        if let Err(e) = self.active.file.write_at(&self.buf, self.active.offset) {
            if is_no_space(&e) {
                return Err(Fail::NoSpace {
                    path: self.active.path.clone(),
                    source: e,
                });
            }
            self.shared
                .metrics()
                .write_error_count
                .fetch_add(1, Relaxed);
            return Err(Fail::Poison(self.shared.poison(
                PoisonCause::SegmentWrite {
                    path: self.active.path.clone(),
                    offset: self.active.offset,
                    bytes: self.buf.len() as u64,
                    error: (&e).into(),
                },
            )));
        }
        let n = self.buf.len() as u64;
        self.shared.metrics().bytes_written.fetch_add(n, Relaxed);
        self.unsynced_bytes += n;
        self.bytes_since_checkpoint += n;
        self.bytes_since_space_check += n;
        self.unsynced_since.get_or_insert_with(Instant::now);
        self.active.offset = end;
        self.buf.clear();
        Ok(())
    }

    /// fdatasyncs the active segment if anything is unsynced.
    fn sync(&mut self) -> Result<(), Poisoned> {
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let gate = self.shared.sync_gate().clone();
        let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = self.active.file.sync_data() {
            self.shared
                .metrics()
                .fsync_error_count
                .fetch_add(1, Relaxed);
            return Err(self.shared.poison(PoisonCause::SegmentSync {
                path: self.active.path.clone(),
                error: (&e).into(),
            }));
        }
        let took = started.elapsed();
        self.shared.metrics().record_fsync(took);
        self.gather.note_fsync(took);
        // Another thread's fsync of this file (the prefiller's) may have received the error
        // that belongs to our pages; then this success proves nothing. The gate guarantees
        // such a failure is already recorded.
        if let Some(p) = self.shared.poisoned() {
            return Err(p);
        }
        self.active.durable = self.active.offset;
        self.unsynced_since = None;
        self.unsynced_bytes = 0;
        self.unsynced_puts = false;
        Ok(())
    }

    /// Creates the next segment, then seals the active one and syncs it, then switches.
    /// Creating first means running out of space here fails the batch cleanly instead of
    /// leaving a sealed segment with nowhere to go.
    fn rotate(&mut self) -> Result<(), Fail> {
        let next_id = self.active.id + 1;
        let next = match create_segment(
            &self.shared,
            &self.dirs,
            next_id,
            self.channel_id,
            self.next_seq,
        ) {
            Ok(a) => a,
            Err(e) if is_no_space(&e.source) => {
                let _ = self.shared.storage().remove(&e.path);
                self.shared.segments().remove(next_id);
                return Err(Fail::NoSpace {
                    path: e.path,
                    source: e.source,
                });
            }
            Err(e) => {
                return Err(Fail::Poison(self.shared.poison(
                    PoisonCause::SegmentCreate {
                        op: e.op,
                        path: e.path,
                        error: (&e.source).into(),
                    },
                )))
            }
        };
        let mut seal = PendingRecord::new(RecordKind::Seal, 0);
        seal.first_seq = self.next_seq;
        SealPayload {
            next_segment_id: next_id,
            next_seq: self.next_seq,
        }
        .encode_into(&mut seal.bytes);
        seal.seal_payload();
        let place = RecordPlace {
            segment_id: self.active.id,
            offset: self.active.offset,
            durable_mark: self.active.durable,
        };
        seal.frame_into(place, self.next_seq, &mut self.buf);
        if let Err(Fail::NoSpace { path, source }) = self.flush() {
            return Err(Fail::Poison(self.shared.poison(PoisonCause::SealWrite {
                path,
                error: (&source).into(),
            })));
        }
        // The old segment must be durable (sealed) before the new one takes records.
        self.unsynced_since.get_or_insert_with(Instant::now);
        self.sync()?;
        tracing::info!(segment = next_id, path = %next.path.display(), seq = self.next_seq, "rotated to a new segment");
        if let Some(p) = &self.prefill {
            p.switch(
                next.file.clone(),
                next.offset,
                next.offset,
                self.shared.config().segment_bytes_max,
            );
        }
        self.active = next;
        Ok(())
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
        let deletable: Vec<u64> = self
            .shared
            .segments()
            .ids()
            .into_iter()
            .filter(|&id| id < cp.first_live_segment && id != self.active.id)
            .collect();
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

fn clone_commit_error(e: &CommitError) -> CommitError {
    match e {
        CommitError::Write { path, source } => CommitError::Write {
            path: path.clone(),
            source: source.clone(),
        },
        CommitError::Poisoned(p) => CommitError::Poisoned(p.clone()),
        CommitError::Closed => CommitError::Closed,
        _ => CommitError::Closed,
    }
}

/// Why a segment could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} segment {path}: {source}")]
pub(crate) struct CreateError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// Creates segment `id`: header written and fsynced, directory fsynced, registered.
pub(crate) fn create_segment(
    shared: &Shared,
    dirs: &[PathBuf],
    id: u64,
    channel_id: u64,
    first_seq: u64,
) -> Result<Active, CreateError> {
    let dir = dir_for_segment(dirs, id);
    let path = dir.join(segment_file_name(id));
    let err = |op: &'static str, path: &PathBuf| {
        let path = path.clone();
        move |source| CreateError { op, path, source }
    };
    let storage = shared.storage();
    let file = storage.create(&path).map_err(err("create", &path))?;
    let header = SegmentHeader {
        segment_id: id,
        channel_id,
        first_seq,
        created_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    };
    file.write_at(&header.encode(), 0)
        .map_err(err("write the header of", &path))?;
    let started = Instant::now();
    file.sync_data().map_err(err("fsync", &path))?;
    shared.metrics().record_fsync(started.elapsed());
    shared
        .sync_dir_gated(dir)
        .map_err(err("fsync the directory of", &path))?;
    shared.segments().insert(
        id,
        OpenSegment {
            path: path.clone(),
            file: file.clone(),
        },
    );
    let m = shared.metrics();
    m.segments_created.fetch_add(1, Relaxed);
    m.segment_count
        .store(shared.segments().len() as u64, Relaxed);
    Ok(Active {
        id,
        path,
        file,
        offset: SEGMENT_HEADER_BYTES as u64,
        durable: SEGMENT_HEADER_BYTES as u64,
    })
}
