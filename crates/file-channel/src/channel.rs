//! [`FileChannel`]: opening a channel directory (lock, identity, replay, writer start-up),
//! the state shared by transactions and the writer thread, and closing.

use crate::checkpoint::{self, CHECKPOINT_TMP_NAME};
use crate::config::ChannelConfig;
use crate::error::{CloseError, OpenError, Poisoned};
use crate::format::record::SEAL_RECORD_BYTES;
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::identity::{self, LOCK_FILE_NAME, META_FILE_NAME};
use crate::limits::MAX_RECORD_BYTES;
use crate::metrics::ChannelMetrics;
use crate::quarantine;
use crate::queue::{LogPos, QuarantineWork as QueueQuarantine, QueueState};
use crate::replay::{
    list_checkpoints, replay, Damage, ReplayOptions, ReplayStart, Replayed, TornTail,
};
use crate::segment::prefill::{Prefill, SyncGate};
use crate::segment::scan::Scanner;
use crate::segment::{list_segments, OpenSegment, SegmentSet};
use crate::storage::{parent_dir, DynStorage, LockError, LockGuard, StdStorage};
use crate::txn::Transaction;
use crate::writer::{create_segment, Active, Completion, Request, Writer, WriterStart};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// State shared by the channel handle, its transactions and the writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ChannelConfig,
    pub storage: DynStorage,
    pub state: Mutex<QueueState>,
    /// Signalled when events become visible or come back from a rollback.
    pub not_empty: Condvar,
    /// Signalled when room appears.
    pub not_full: Condvar,
    pub metrics: ChannelMetrics,
    pub segments: SegmentSet,
    /// Serialises segment fsyncs with the poisoning their failure causes (see [`SyncGate`]).
    pub sync_gate: SyncGate,
    /// fdatasyncs issued by the prefill thread (exported as `PrefillFsyncCount`).
    pub prefill_fsyncs: Arc<AtomicU64>,
    /// Put commits sent to the writer and not yet received by it (the writer's gather wait
    /// counts on them; see `writer::Gather`).
    pub put_commits_queued: AtomicU64,
    pub next_txn_id: AtomicU64,
    /// Largest record (padding included) a put transaction may produce.
    pub record_bytes_max: u64,
    poison: Mutex<Option<Poisoned>>,
    poisoned_flag: AtomicBool,
    pub closed: AtomicBool,
    /// Whether every directory had at least `minimum_required_space` free at the last check.
    space_ok: AtomicBool,
    space: Mutex<SpaceCheck>,
}

/// The last free-space check.
#[derive(Debug)]
struct SpaceCheck {
    at: Instant,
    low: Option<SpaceLow>,
}

/// A directory short of space.
#[derive(Clone, Debug)]
pub(crate) struct SpaceLow {
    pub dir: PathBuf,
    pub available: u64,
}

/// How stale a "space is low" verdict may be before a put checks again itself.
const SPACE_RECHECK_AFTER: Duration = Duration::from_secs(1);

impl Shared {
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the channel unusable; every later operation fails with the returned reason.
    pub(crate) fn poison(&self, reason: String) -> Poisoned {
        let mut slot = self.poison.lock().unwrap_or_else(PoisonError::into_inner);
        let p = slot.get_or_insert_with(|| {
            tracing::error!(%reason, "channel poisoned; it refuses all work until reopened");
            Poisoned(reason.into())
        });
        let p = p.clone();
        self.poisoned_flag.store(true, SeqCst);
        self.metrics.unhealthy.store(1, Relaxed);
        drop(slot);
        let _st = self.lock_state();
        self.not_empty.notify_all();
        self.not_full.notify_all();
        p
    }

    /// The poison reason, if the channel is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Poisoned> {
        if !self.poisoned_flag.load(SeqCst) {
            return None;
        }
        self.poison
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
            let p = self.poison(format!("fsync of directory {} failed: {e}", dir.display()));
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

    /// Does the quarantine I/O a reader decided on while it held the queue lock (which must be
    /// released by now). Quarantine copies are diagnostics: a failed copy or note is logged and
    /// the take goes on; a failed directory fsync poisons the channel like any other (it may
    /// have dropped a segment's directory entry too).
    pub(crate) fn quarantine(&self, work: Vec<QueueQuarantine>) {
        let sync_dir = |d: &Path| self.sync_dir_gated(d);
        for w in work {
            let (at, result) = match w {
                QueueQuarantine::Bytes { at, file, bytes } => {
                    let r = quarantine::save_bytes(
                        self.storage.as_ref(),
                        &sync_dir,
                        &self.config.dir,
                        &at,
                        &file,
                        bytes,
                    );
                    (at, r)
                }
                QueueQuarantine::Note {
                    at,
                    bytes,
                    events_lost,
                } => {
                    let r = quarantine::write_note(
                        self.storage.as_ref(),
                        &sync_dir,
                        &self.config.dir,
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

    /// Checks the free space of the channel and data directories now.
    pub(crate) fn refresh_space(&self) -> Option<SpaceLow> {
        let required = self.config.minimum_required_space;
        let mut low = None;
        if required > 0 {
            for dir in std::iter::once(&self.config.dir).chain(self.config.data_dirs.iter()) {
                match self.storage.available_space(dir) {
                    Ok(available) if available < required => {
                        low = Some(SpaceLow {
                            dir: dir.clone(),
                            available,
                        });
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot read free space")
                    }
                }
            }
        }
        let was_ok = self.space_ok.swap(low.is_none(), SeqCst);
        self.metrics
            .disk_space_low
            .store(u64::from(low.is_some()), Relaxed);
        match (&low, was_ok) {
            (Some(l), true) => {
                tracing::error!(dir = %l.dir.display(), available = l.available, required,
                "free space below minimum_required_space: refusing puts, takes continue")
            }
            (None, false) => {
                tracing::info!("free space is back above minimum_required_space: accepting puts")
            }
            _ => {}
        }
        let mut sp = self.space.lock().unwrap_or_else(PoisonError::into_inner);
        sp.at = Instant::now();
        sp.low = low.clone();
        low
    }

    /// Whether puts must be refused for lack of space (re-checking a stale verdict).
    pub(crate) fn space_low(&self) -> Option<SpaceLow> {
        if self.space_ok.load(Relaxed) {
            return None;
        }
        let stale = {
            let sp = self.space.lock().unwrap_or_else(PoisonError::into_inner);
            if sp.at.elapsed() < SPACE_RECHECK_AFTER {
                return sp.low.clone();
            }
            true
        };
        if stale {
            return self.refresh_space();
        }
        None
    }

    /// A write just failed with ENOSPC: refuse puts until a check says otherwise.
    pub(crate) fn note_no_space(&self) {
        let dir = self.config.dir.clone();
        let available = self.storage.available_space(&dir).unwrap_or(0);
        self.space_ok.store(false, SeqCst);
        self.metrics.disk_space_low.store(1, Relaxed);
        let mut sp = self.space.lock().unwrap_or_else(PoisonError::into_inner);
        sp.at = Instant::now();
        sp.low = Some(SpaceLow { dir, available });
    }

    /// Makes committed puts visible to takers.
    pub(crate) fn publish(&self, next_seq: u64, visible: LogPos, events: u64, bytes: u64) {
        let mut st = self.lock_state();
        st.next_seq = next_seq;
        st.visible = visible;
        st.pending_events += events;
        st.pending_bytes += bytes;
        self.metrics.channel_size.store(st.pending_events, Relaxed);
        self.metrics.pending_bytes.store(st.pending_bytes, Relaxed);
        drop(st);
        self.not_empty.notify_all();
    }
}

/// What opening the channel found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Where replay started (checkpoint or full) and which checkpoints were refused, and why.
    pub start: ReplayStart,
    /// Damage skipped (in skip mode) with its location and the events it cost.
    pub damage: Vec<Damage>,
    /// Events lost to that damage.
    pub events_lost: u64,
    /// Orphan segments removed.
    pub orphans: Vec<PathBuf>,
    /// Segment files replayed.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Events pending after replay.
    pub pending_events: u64,
    /// The torn tail cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// Milliseconds spent replaying.
    pub replay_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub shared: Arc<Shared>,
    sender: Mutex<Option<Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    lock: Mutex<Option<Box<dyn LockGuard>>>,
    channel_id: u64,
    report: OpenReport,
}

impl Inner {
    /// Queues work for the writer; fails when the writer has stopped.
    pub(crate) fn send(&self, req: Request) -> Result<(), Request> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        match sender.as_ref() {
            Some(s) => s.send(req).map_err(|e| e.0),
            None => Err(req),
        }
    }

    fn shutdown(&self) -> Result<(), CloseError> {
        if self.shared.closed.swap(true, SeqCst) {
            return Ok(());
        }
        {
            let _st = self.shared.lock_state();
            self.shared.not_empty.notify_all();
            self.shared.not_full.notify_all();
        }
        let done = Completion::new();
        let sent = self.send(Request::Shutdown { done: done.clone() }).is_ok();
        let result = if sent { done.wait() } else { Ok(()) };
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
        // The writer held the checkpoint thread's only sender: it ends once its queue drains.
        if let Some(t) = self
            .checkpointer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
        self.lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        tracing::info!(dir = %self.shared.config.dir.display(), "channel closed");
        match result {
            Ok(()) => Ok(()),
            Err(_) => {
                Err(CloseError::Poisoned(self.shared.poisoned().unwrap_or_else(
                    || Poisoned("the final sync failed".into()),
                )))
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A durable channel over a directory of segment files.
///
/// Cloning is cheap and shares the channel; it is closed by [`FileChannel::close`] or when the
/// last clone and transaction are dropped.
#[derive(Clone, Debug)]
pub struct FileChannel {
    inner: Arc<Inner>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "an unknown host".to_owned())
}

impl FileChannel {
    /// Opens (creating if needed) the channel in `config.dir` on the real file system.
    pub fn open(config: ChannelConfig) -> Result<Self, OpenError> {
        Self::open_with(config, Arc::new(StdStorage::new()))
    }

    /// Opens the channel through `storage` (tests pass a simulated one).
    pub fn open_with(config: ChannelConfig, storage: DynStorage) -> Result<Self, OpenError> {
        config.validate()?;
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { op, path, source }
        };
        let dir = config.dir.clone();
        let dirs = config.segment_dirs();
        for d in std::iter::once(&dir).chain(dirs.iter()) {
            if !storage.exists(d) {
                storage
                    .create_dir_all(d)
                    .map_err(io("create directory", d))?;
                let parent = parent_dir(d);
                storage
                    .sync_dir(parent)
                    .map_err(io("fsync directory", parent))?;
            }
        }
        let owner = format!("pid {} on host {}", std::process::id(), hostname());
        let lock = storage
            .lock(&dir.join(LOCK_FILE_NAME), &owner)
            .map_err(|e| match e {
                LockError::Held { holder, .. } => OpenError::Locked {
                    dir: dir.clone(),
                    holder,
                },
                LockError::Io { path, source } => OpenError::Io {
                    op: "lock",
                    path,
                    source,
                },
            })?;

        // Identity.
        let meta_path = dir.join(META_FILE_NAME);
        let known_id = if storage.exists(&meta_path) {
            let bytes = storage
                .open(&meta_path, false)
                .and_then(|f| f.read_all())
                .map_err(io("read", &meta_path))?;
            Some(identity::decode(&bytes).map_err(|kind| OpenError::Foreign {
                path: meta_path.clone(),
                reason: format!("not a valid channel identity file: {kind}"),
            })?)
        } else {
            None
        };
        let existing = list_segments(storage.as_ref(), &dirs).map_err(io("list", &dir))?;
        let channel_id = match known_id {
            Some(id) => id,
            None if existing.is_empty() => {
                let id = identity::new_channel_id();
                identity::write(storage.as_ref(), &dir, id).map_err(io("write", &meta_path))?;
                id
            }
            None => 0, // learnt from the segments below
        };

        let replayed = replay(
            storage.as_ref(),
            &dir,
            &dirs,
            ReplayOptions {
                writable: true,
                channel_id: known_id.or(if existing.is_empty() {
                    Some(channel_id)
                } else {
                    None
                }),
                mode: config.recovery_mode,
                ignore_checkpoints: false,
                progress: None,
            },
        )?;
        let newest_generation = list_checkpoints(storage.as_ref(), &dir)
            .map_err(io("list checkpoints in", &dir))?
            .first()
            .map_or(0, |(g, _)| *g);
        let tmp = dir.join(CHECKPOINT_TMP_NAME);
        if storage.exists(&tmp) {
            storage.remove(&tmp).map_err(io("remove", &tmp))?;
        }
        let channel_id = if known_id.is_none() && !existing.is_empty() {
            let id = first_channel_id(storage.as_ref(), &replayed)
                .unwrap_or_else(identity::new_channel_id);
            tracing::warn!(path = %meta_path.display(), "channel identity file missing; rewriting it from the segment headers");
            identity::write(storage.as_ref(), &dir, id).map_err(io("write", &meta_path))?;
            id
        } else {
            channel_id
        };

        let record_bytes_max = MAX_RECORD_BYTES
            .min(config.segment_bytes_max - SEGMENT_HEADER_BYTES as u64 - SEAL_RECORD_BYTES);
        let shared = Arc::new(Shared {
            storage: storage.clone(),
            state: Mutex::new(QueueState::new(0, (0, 0), Default::default(), 0, None)),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            metrics: ChannelMetrics::default(),
            segments: SegmentSet::default(),
            sync_gate: SyncGate::default(),
            prefill_fsyncs: Arc::default(),
            put_commits_queued: AtomicU64::new(0),
            next_txn_id: AtomicU64::new(replayed.next_txn_id),
            record_bytes_max,
            poison: Mutex::new(None),
            poisoned_flag: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            space_ok: AtomicBool::new(true),
            space: Mutex::new(SpaceCheck {
                at: Instant::now(),
                low: None,
            }),
            config,
        });
        shared.refresh_space();
        for s in &replayed.segments {
            shared.segments.insert(
                s.id,
                OpenSegment {
                    path: s.path.clone(),
                    file: s.file.clone(),
                },
            );
        }
        // The newest segment may hold data a killed process left in the page cache only.
        let active = match replayed.segments.last() {
            Some(last) if !last.sealed => {
                last.file.sync_data().map_err(io("fsync", &last.path))?;
                Active {
                    id: last.id,
                    path: last.path.clone(),
                    file: last.file.clone(),
                    offset: last.end,
                    durable: last.end,
                }
            }
            other => {
                let id = other.map_or(1, |s| s.id + 1);
                create_segment(&shared, &dirs, id, channel_id, replayed.next_seq).map_err(|e| {
                    OpenError::Io {
                        op: "create segment",
                        path: e.path,
                        source: e.source,
                    }
                })?
            }
        };
        let cursor = match replayed.read_start {
            Some((id, pos)) => shared
                .segments
                .get(id)
                .map(|s| Scanner::new(s.file, id, pos, u64::MAX)),
            None => Some(Scanner::new(
                active.file.clone(),
                active.id,
                active.offset,
                u64::MAX,
            )),
        };
        {
            let mut st = shared.lock_state();
            *st = QueueState::new(
                replayed.next_seq,
                (active.id, active.offset),
                replayed.consumed.clone(),
                replayed.pending_bytes(),
                cursor,
            );
            let m = &shared.metrics;
            m.channel_capacity.store(shared.config.capacity, Relaxed);
            m.channel_size.store(st.pending_events, Relaxed);
            m.pending_bytes.store(st.pending_bytes, Relaxed);
            m.replay_records.store(replayed.records, Relaxed);
            m.replay_ms.store(replayed.took.as_millis() as u64, Relaxed);
            m.segment_count.store(shared.segments.len() as u64, Relaxed);
            m.bytes_on_disk.store(replayed.record_bytes, Relaxed);
            if let Some(t) = &replayed.torn_tail {
                m.torn_tail_bytes.store(t.bytes, Relaxed);
            }
            m.events_lost.store(replayed.events_lost, Relaxed);
            m.corrupt_record_count
                .store(replayed.damage.len() as u64, Relaxed);
        }
        let prefill = if shared.config.prefill_ahead_bytes > 0 {
            let weak = Arc::downgrade(&shared);
            let on_fatal = Box::new(move |reason: String| {
                if let Some(shared) = weak.upgrade() {
                    shared.metrics.fsync_error_count.fetch_add(1, Relaxed);
                    shared.poison(reason);
                }
            });
            let p = Prefill::start(
                shared.config.prefill_ahead_bytes,
                shared.sync_gate.clone(),
                on_fatal,
                shared.prefill_fsyncs.clone(),
            )
            .map_err(io("start prefill for", &dir))?;
            let file_len = active
                .file
                .len()
                .map_err(io("read the length of", &active.path))?;
            p.switch(
                active.file.clone(),
                active.offset,
                file_len,
                shared.config.segment_bytes_max,
            );
            Some(p)
        } else {
            None
        };
        let (tx, rx) = channel();
        let checkpointer = checkpoint::start(shared.clone(), newest_generation)
            .map_err(io("start the checkpoint thread for", &dir))?;
        let checkpoint_now = !replayed.damage.is_empty()
            || replayed.torn_tail.is_some()
            || !replayed.orphans.is_empty()
            || (matches!(replayed.start, ReplayStart::Full { .. }) && replayed.records > 0);
        let writer = Writer::new(
            shared.clone(),
            WriterStart {
                rx,
                active,
                next_seq: replayed.next_seq,
                channel_id,
                dirs,
                prefill,
                checkpoints: checkpointer.tx,
                checkpoint_now,
            },
        );
        let handle = std::thread::Builder::new()
            .name("sluice-writer".into())
            .spawn(move || writer.run())
            .map_err(io("start the writer for", &dir))?;
        let report = report_of(&replayed);
        tracing::info!(dir = %dir.display(), pending = report.pending_events, segments = report.segments, "channel open");
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                sender: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                checkpointer: Mutex::new(Some(checkpointer.thread)),
                lock: Mutex::new(Some(lock)),
                channel_id,
                report,
            }),
        })
    }

    /// Starts a transaction. Its first operation makes it a put or a take transaction.
    pub fn transaction(&self) -> Transaction {
        Transaction::new(self.inner.clone())
    }

    /// Events committed and not yet consumed.
    pub fn len(&self) -> u64 {
        self.inner.shared.lock_state().pending_events
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded bytes of the pending events.
    pub fn pending_bytes(&self) -> u64 {
        self.inner.shared.lock_state().pending_bytes
    }

    /// The channel's counters.
    pub fn metrics(&self) -> &ChannelMetrics {
        &self.inner.shared.metrics
    }

    /// Every counter and gauge by name, with the gauges refreshed: bytes on disk (the sum of
    /// the segment files' sizes), the prefill thread's fsyncs (`PrefillFsyncCount`) and the put
    /// commits waiting for the writer (`CommitsQueued`).
    pub fn metrics_snapshot(&self) -> Vec<(&'static str, u64)> {
        let shared = &self.inner.shared;
        let on_disk: u64 = shared
            .segments
            .ids()
            .into_iter()
            .filter_map(|id| shared.segments.get(id))
            .filter_map(|s| s.file.len().ok())
            .sum();
        shared.metrics.bytes_on_disk.store(on_disk, Relaxed);
        let mut snap = shared.metrics.snapshot();
        snap.push(("PrefillFsyncCount", shared.prefill_fsyncs.load(Relaxed)));
        snap.push(("CommitsQueued", shared.put_commits_queued.load(Relaxed)));
        snap.push((
            "ChannelFillPercentage",
            shared.metrics.fill_percentage().round() as u64,
        ));
        snap
    }

    /// What opening found and did.
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// The channel's id (in every segment header).
    pub fn channel_id(&self) -> u64 {
        self.inner.channel_id
    }

    /// The configuration in force.
    pub fn config(&self) -> &ChannelConfig {
        &self.inner.shared.config
    }

    /// The poison reason, if a failed fsync or write made the channel refuse work.
    pub fn poisoned(&self) -> Option<Poisoned> {
        self.inner.shared.poisoned()
    }

    /// Writes and fsyncs everything committed so far (take commits included).
    pub fn sync(&self) -> Result<(), Poisoned> {
        let done = Completion::new();
        if self
            .inner
            .send(Request::Sync { done: done.clone() })
            .is_err()
        {
            return Err(self
                .poisoned()
                .unwrap_or_else(|| Poisoned("the channel is closed".into())));
        }
        done.wait().map_err(|_| {
            self.poisoned()
                .unwrap_or_else(|| Poisoned("the sync failed".into()))
        })
    }

    /// Closes the channel: syncs what is written, stops the writer, releases the lock.
    /// Transactions still open fail afterwards with `Closed`.
    pub fn close(self) -> Result<(), CloseError> {
        self.inner.shutdown()
    }

    /// Waits up to `timeout` for at least `events` events to be pending (used by tools and tests).
    pub fn wait_for_len(&self, events: u64, timeout: Duration) -> bool {
        let shared = &self.inner.shared;
        let deadline = std::time::Instant::now() + timeout;
        let mut st = shared.lock_state();
        while st.pending_events < events {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            st = shared
                .not_empty
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

fn first_channel_id(storage: &dyn crate::storage::Storage, r: &Replayed) -> Option<u64> {
    let seg = r.segments.first()?;
    let f = storage.open(&seg.path, false).ok()?;
    let mut head = [0u8; SEGMENT_HEADER_BYTES];
    f.read_exact_at(&mut head, 0).ok()?;
    crate::format::segment_header::SegmentHeader::decode(&head)
        .ok()
        .map(|h| h.channel_id)
}

fn report_of(r: &Replayed) -> OpenReport {
    OpenReport {
        start: r.start.clone(),
        damage: r.damage.clone(),
        events_lost: r.events_lost_now(),
        orphans: r.orphans.clone(),
        segments: r.segments.len(),
        records: r.records,
        pending_events: r.pending_events(),
        torn_tail: r.torn_tail.clone(),
        replay_ms: r.took.as_millis() as u64,
    }
}
