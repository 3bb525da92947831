//! The log writer: one thread that owns the active segment and turns commits into records.
//!
//! Group commit: committers encode their records (and the payload CRC) on their own threads and
//! queue them here. The writer takes *everything* queued at that moment, frames the records in
//! log order (assigning segment, offset and sequence numbers), writes them with one `write` per
//! segment touched and covers them with one `fdatasync`; only then are the puts made visible to
//! takers and their committers released. While one batch is being synced the next one queues
//! up, so N concurrent committers cost one sync, not N.
//!
//! Failure discipline: a failed write or fsync poisons the channel. Nothing in the failing
//! batch is acknowledged, every later operation fails, and reopening replays what was durable.
//! A failed fsync is never retried (the kernel may have dropped the dirty pages already).

use crate::channel::Shared;
use crate::config::SyncPolicy;
use crate::error::{CommitError, Poisoned};
use crate::format::record::{
    align_up, PendingRecord, RecordKind, RecordPlace, SealPayload, RECORD_HEADER_BYTES,
    SEAL_RECORD_BYTES,
};
use crate::format::segment_header::{segment_file_name, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::segment::prefill::Prefill;
use crate::segment::{dir_for_segment, OpenSegment};
use crate::storage::DynFile;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(result);
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

/// The writer thread's state.
pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub rx: Receiver<Request>,
    pub active: Active,
    pub next_seq: u64,
    pub channel_id: u64,
    pub dirs: Vec<PathBuf>,
    pub prefill: Option<Prefill>,
    buf: Vec<u8>,
    /// When the oldest unsynced byte was written.
    unsynced_since: Option<Instant>,
    unsynced_bytes: u64,
    /// Whether unsynced bytes include acknowledged puts (interval policy).
    unsynced_puts: bool,
}

type Result2<T> = Result<T, Poisoned>;

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: Receiver<Request>,
        active: Active,
        next_seq: u64,
        channel_id: u64,
        dirs: Vec<PathBuf>,
        prefill: Option<Prefill>,
    ) -> Self {
        Self {
            shared,
            rx,
            active,
            next_seq,
            channel_id,
            dirs,
            prefill,
            buf: Vec::with_capacity(1 << 20),
            unsynced_since: None,
            unsynced_bytes: 0,
            unsynced_puts: false,
        }
    }

    /// How long until unsynced data must be synced, if any is pending.
    fn sync_due_in(&self) -> Option<Duration> {
        let since = self.unsynced_since?;
        let cfg = &self.shared.config;
        let mut limit = Duration::from_millis(cfg.take_sync_interval_ms);
        if self.unsynced_puts {
            if let SyncPolicy::Interval { interval_ms, .. } = cfg.sync {
                limit = limit.min(Duration::from_millis(interval_ms));
            }
        }
        Some(limit.saturating_sub(since.elapsed()))
    }

    /// The thread body.
    pub(crate) fn run(mut self) {
        loop {
            let first = match self.sync_due_in() {
                None => self.rx.recv().ok(),
                Some(wait) => match self.rx.recv_timeout(wait) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => {
                        if self.sync().is_err() {
                            self.drain_poisoned();
                            return;
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                },
            };
            let Some(first) = first else {
                let _ = self.sync();
                return;
            };
            let mut batch = vec![first];
            let mut bytes = 0usize;
            while bytes < BATCH_BYTES_MAX {
                match self.rx.try_recv() {
                    Ok(r) => {
                        if let Request::Put { record, .. } | Request::Take { record } = &r {
                            bytes += record.bytes.len();
                        }
                        let stop = matches!(r, Request::Shutdown { .. });
                        batch.push(r);
                        if stop {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            if self.process(batch) {
                return;
            }
        }
    }

    /// Fails everything still queued after the channel was poisoned.
    fn drain_poisoned(&mut self) {
        let err = self
            .shared
            .poisoned()
            .unwrap_or_else(|| Poisoned("writer stopped".into()));
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

    /// Writes one batch; returns true when the thread should stop.
    fn process(&mut self, batch: Vec<Request>) -> bool {
        let mut waiters: Vec<Arc<Completion>> = Vec::new();
        let mut records: Vec<PendingRecord> = Vec::new();
        let mut force_sync = false;
        let mut shutdown = None;
        for req in batch {
            match req {
                Request::Put { record, done } => {
                    waiters.push(done);
                    records.push(record);
                }
                Request::Take { record } => records.push(record),
                Request::Sync { done } => {
                    force_sync = true;
                    waiters.push(done);
                }
                Request::Shutdown { done } => {
                    force_sync = true;
                    shutdown = Some(done);
                }
            }
        }
        let mut puts: u64 = 0;
        let mut put_bytes: u64 = 0;
        let mut put_records = 0u64;
        let outcome: Result2<()> = (|| {
            if let Some(p) = self.shared.poisoned() {
                return Err(p);
            }
            for record in &records {
                if record.kind == RecordKind::Put {
                    puts += u64::from(record.event_count);
                    put_bytes += record.len() - RECORD_HEADER_BYTES as u64;
                    put_records += 1;
                }
                self.place(record)?;
            }
            self.flush()?;
            let interval_due = match self.shared.config.sync {
                SyncPolicy::EveryCommit => put_records > 0,
                SyncPolicy::Interval { interval_ms, bytes } => {
                    self.unsynced_bytes >= bytes
                        || self
                            .unsynced_since
                            .is_some_and(|t| t.elapsed() >= Duration::from_millis(interval_ms))
                }
            };
            if put_records > 0 {
                self.unsynced_puts = true;
            }
            if force_sync || interval_due {
                self.sync()?;
            }
            Ok(())
        })();
        self.shared.metrics.commit_batch_count.fetch_add(1, Relaxed);
        match outcome {
            Ok(()) => {
                if put_records > 0 {
                    let end = (self.active.id, self.active.offset);
                    self.shared.publish(self.next_seq, end, puts, put_bytes);
                }
                for w in waiters {
                    w.complete(Ok(()));
                }
                if let Some(done) = shutdown {
                    done.complete(Ok(()));
                    return true;
                }
                false
            }
            Err(p) => {
                for w in waiters {
                    w.complete(Err(CommitError::Poisoned(p.clone())));
                }
                if let Some(done) = shutdown {
                    done.complete(Err(CommitError::Poisoned(p)));
                    return true;
                }
                self.drain_poisoned();
                true
            }
        }
    }

    /// Frames `record` into the batch buffer at its place, rotating first if it does not fit.
    fn place(&mut self, record: &PendingRecord) -> Result2<()> {
        let len = align_up(record.len());
        let max = self.shared.config.segment_bytes_max;
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
            RecordKind::Take | RecordKind::Seal => record.first_seq,
        };
        record.frame_into(place, first_seq, &mut self.buf);
        self.shared.metrics.records_written.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Writes the batch buffer at the write position.
    fn flush(&mut self) -> Result2<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.active.offset + self.buf.len() as u64;
        if let Some(p) = &self.prefill {
            p.claim(end);
        }
        if let Err(e) = self.active.file.write_at(&self.buf, self.active.offset) {
            self.shared.metrics.write_error_count.fetch_add(1, Relaxed);
            return Err(self.shared.poison(format!(
                "a write of {} bytes to {} at offset {} failed: {e}",
                self.buf.len(),
                self.active.path.display(),
                self.active.offset
            )));
        }
        let m = &self.shared.metrics;
        m.bytes_written.fetch_add(self.buf.len() as u64, Relaxed);
        m.bytes_on_disk.fetch_add(self.buf.len() as u64, Relaxed);
        self.unsynced_bytes += self.buf.len() as u64;
        self.unsynced_since.get_or_insert_with(Instant::now);
        self.active.offset = end;
        self.buf.clear();
        Ok(())
    }

    /// fdatasyncs the active segment if anything is unsynced.
    fn sync(&mut self) -> Result2<()> {
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let gate = self.shared.sync_gate.clone();
        let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = self.active.file.sync_data() {
            self.shared.metrics.fsync_error_count.fetch_add(1, Relaxed);
            return Err(self.shared.poison(format!(
                "fdatasync of {} failed: {e}",
                self.active.path.display()
            )));
        }
        self.shared.metrics.record_fsync(started.elapsed());
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

    /// Seals the active segment, syncs it, and starts the next one.
    fn rotate(&mut self) -> Result2<()> {
        let next_id = self.active.id + 1;
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
        self.flush()?;
        // Force: the old segment must be durable (sealed) before the new one takes records.
        self.unsynced_since.get_or_insert_with(Instant::now);
        self.sync()?;
        let active = create_segment(
            &self.shared,
            &self.dirs,
            next_id,
            self.channel_id,
            self.next_seq,
        )
        .map_err(|reason| self.shared.poison(reason))?;
        tracing::info!(segment = next_id, path = %active.path.display(), seq = self.next_seq, "rotated to a new segment");
        if let Some(p) = &self.prefill {
            p.switch(
                active.file.clone(),
                active.offset,
                active.offset,
                self.shared.config.segment_bytes_max,
            );
        }
        self.active = active;
        Ok(())
    }
}

/// Creates segment `id`: header written and fsynced, directory fsynced, registered.
pub(crate) fn create_segment(
    shared: &Shared,
    dirs: &[PathBuf],
    id: u64,
    channel_id: u64,
    first_seq: u64,
) -> Result<Active, String> {
    let dir = dir_for_segment(dirs, id);
    let path = dir.join(segment_file_name(id));
    let storage = &shared.storage;
    let file = storage
        .create(&path)
        .map_err(|e| format!("cannot create segment {}: {e}", path.display()))?;
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
        .map_err(|e| format!("cannot write the header of {}: {e}", path.display()))?;
    let started = Instant::now();
    file.sync_data()
        .map_err(|e| format!("fdatasync of {} failed: {e}", path.display()))?;
    shared.metrics.record_fsync(started.elapsed());
    storage
        .sync_dir(dir)
        .map_err(|e| format!("fsync of directory {} failed: {e}", dir.display()))?;
    shared.metrics.dir_sync_count.fetch_add(1, Relaxed);
    shared.segments.insert(
        id,
        OpenSegment {
            path: path.clone(),
            file: file.clone(),
        },
    );
    let m = &shared.metrics;
    m.segments_created.fetch_add(1, Relaxed);
    m.segment_count.store(shared.segments.len() as u64, Relaxed);
    Ok(Active {
        id,
        path,
        file,
        offset: SEGMENT_HEADER_BYTES as u64,
        durable: SEGMENT_HEADER_BYTES as u64,
    })
}
