//! `stat` and `replay`: what opening the channel would find and do, computed by the engine's
//! replay in read-only mode (checkpoints used, as at open), without writing a byte.

use super::pending::{key_references, KeyReferences, LiveSegment, PendingLog};
use super::verify::{Progress, ProgressFn};
use super::view_storage::ViewStorage;
use super::{lock, now_unix_ms, ChannelDir, InspectError, MetaState, MAX_CHECKPOINT_FILE_BYTES};
use crate::config::RecoveryMode;
use crate::consumed::ConsumedSet;
use crate::error::{Corruption, OpenError};
use crate::format::checkpoint::Checkpoint;
use crate::quarantine::QUARANTINE_DIR_NAME;
use crate::replay::{replay, Damage, ReplayOptions, ReplayProgress, ReplayStart, TornTail};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why an open would fail outright.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenFailure {
    /// Damage refused (strict mode, or damage no mode can skip).
    Corrupt(Corruption),
    /// A file of another channel, or not what its name says.
    Foreign {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Corrupt(c) => write!(f, "corrupt log: {c}"),
            Self::Foreign { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

/// What an open would do.
#[derive(Clone, Debug)]
pub struct ReplayView {
    /// The recovery mode simulated.
    pub mode: RecoveryMode,
    /// Where replay would start and why; `None` if it fails before choosing.
    pub start: Option<ReplayStart>,
    /// The checkpoint it would use.
    pub checkpoint: Option<Checkpoint>,
    /// Checkpoint files not even read because they are larger than any valid checkpoint.
    pub oversized_checkpoints: Vec<(PathBuf, u64)>,
    /// Why the open would fail, if it would.
    pub failure: Option<OpenFailure>,
    /// Segments it would keep.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Bytes of records replayed.
    pub record_bytes: u64,
    /// The next sequence number.
    pub next_seq: u64,
    /// The low-water mark.
    pub low_water_mark: u64,
    /// Pending events.
    pub pending_events: u64,
    /// Encoded bytes of the pending events.
    pub pending_bytes: u64,
    /// The torn tail that would be truncated.
    pub torn_tail: Option<TornTail>,
    /// Damage that would be skipped.
    pub damage: Vec<Damage>,
    /// Damage in records the checkpoint covers, which an open trusts without reading: the
    /// reader meets it, skips it and counts its events then (found by reading the whole log,
    /// as `verify` does; empty when only an open's own reading was simulated).
    pub damage_when_read: Vec<Damage>,
    /// Events the reader will count lost beyond what the open counts: reading the whole log
    /// counts the loss once (ranges the open already counted are not counted again), so this
    /// is that count less the open's, not the sum of `damage_when_read`.
    pub events_lost_when_read: u64,
    /// Orphan segments that would be removed.
    pub orphans: Vec<PathBuf>,
    /// Events lost over the channel's life (the checkpoint's count plus this replay's).
    pub events_lost_total: u64,
    /// Gap records met (damage a repair replaced).
    pub repaired_gaps: u64,
    /// Where readers would start.
    pub read_start: Option<(u64, u64)>,
    /// What is consumed at the end of the replay (below the low-water mark, and the ranges
    /// above it).
    pub consumed: ConsumedSet,
    /// The segments the open would keep, as the replay left them.
    pub live_segments: Vec<LiveSegment>,
    /// Time the replay took.
    pub took: Duration,
}

impl ReplayView {
    /// The part of the log a reader of this view reads (for [`super::pending`]).
    pub fn pending_log(&self) -> PendingLog<'_> {
        PendingLog {
            read_start: self.read_start,
            segments: &self.live_segments,
            consumed: &self.consumed,
        }
    }

    /// Whether the open would meet corruption (fail, or skip damage, at open or later while
    /// reading).
    pub fn is_corrupt(&self) -> bool {
        self.failure.is_some()
            || !self.damage.is_empty()
            || !self.damage_when_read.is_empty()
            || self.events_lost_when_read > 0
    }

    /// Events lost to the damage this open would skip, at open and while reading: the same
    /// count `verify` gives.
    pub fn events_lost_now(&self) -> u64 {
        self.damage.iter().map(|d| d.events_lost).sum::<u64>() + self.events_lost_when_read
    }
}

/// Simulates opening the channel in `mode`: a read-only replay from the newest usable
/// checkpoint, and a read of the whole log for the damage in what the checkpoint covers (which
/// an open meets while reading). Never writes.
pub fn replay_view(
    dir: &ChannelDir,
    mode: RecoveryMode,
    progress: Option<ProgressFn>,
) -> Result<ReplayView, InspectError> {
    let mut view = open_view(dir, mode, progress)?;
    if let (Some(cp), None) = (&view.checkpoint, &view.failure) {
        // Verify's full read of the log, checkpoints ignored and damage skipped.
        let full = super::verify::full_replay(dir, dir.meta_id(), None);
        if let Ok(Ok(full)) = full {
            let at_open: u64 = view.damage.iter().map(|d| d.events_lost).sum();
            view.events_lost_when_read = full.events_lost_now().saturating_sub(at_open);
            let covered = |d: &Damage| (d.at.segment, d.at.offset) < cp.position;
            // Damage the open finds too, at the same place, is listed once; where reading the
            // whole log shows it cost more events than the open can tell (a header rebuilt over
            // damaged records), the difference is what the reader meets.
            let counted_at_open = |d: &Damage| {
                view.damage
                    .iter()
                    .find(|v| v.at.file == d.at.file && v.at.offset == d.at.offset)
                    .map(|v| v.events_lost)
            };
            view.damage_when_read = full
                .damage
                .into_iter()
                .filter(|d| covered(d))
                .filter_map(|mut d| match counted_at_open(&d) {
                    None => Some(d),
                    Some(n) if d.events_lost > n => {
                        d.events_lost -= n;
                        Some(d)
                    }
                    Some(_) => None,
                })
                .collect();
        }
    }
    Ok(view)
}

/// What an open alone would do: the read-only replay from the newest usable checkpoint.
fn open_view(
    dir: &ChannelDir,
    mode: RecoveryMode,
    progress: Option<ProgressFn>,
) -> Result<ReplayView, InspectError> {
    let mut oversized = Vec::new();
    for (_, path) in &dir.checkpoints {
        let len = dir
            .storage
            .open(path, false)
            .and_then(|f| f.len())
            .map_err(InspectError::io("open", path))?;
        if len > MAX_CHECKPOINT_FILE_BYTES {
            oversized.push((path.clone(), len));
        }
    }
    let storage = ViewStorage {
        inner: dir.storage.clone(),
        hidden: oversized.iter().map(|(p, _)| p.clone()).collect(),
        lock_held: false,
    };
    let meta_id = dir.meta_id();
    let replay_progress = progress.map(|p| {
        Arc::new(move |r: ReplayProgress| {
            p(Progress {
                phase: "replay",
                done: r.segments_done,
                total: r.segments_total,
            })
        }) as crate::replay::ProgressFn
    });
    let r = replay(
        &storage,
        &dir.dir,
        &dir.segment_dirs,
        ReplayOptions {
            writable: false,
            channel_id: meta_id,
            channel_format_version: dir.meta_format_version(),
            mode,
            ignore_checkpoints: false,
            progress: replay_progress,
        },
    );
    let mut view = ReplayView {
        mode,
        start: None,
        checkpoint: None,
        oversized_checkpoints: oversized,
        failure: None,
        segments: 0,
        records: 0,
        record_bytes: 0,
        next_seq: 0,
        low_water_mark: 0,
        pending_events: 0,
        pending_bytes: 0,
        torn_tail: None,
        damage: Vec::new(),
        damage_when_read: Vec::new(),
        events_lost_when_read: 0,
        orphans: Vec::new(),
        events_lost_total: 0,
        repaired_gaps: 0,
        read_start: None,
        consumed: ConsumedSet::default(),
        live_segments: Vec::new(),
        took: Duration::ZERO,
    };
    match r {
        Ok(r) => {
            view.pending_events = r.pending_events();
            view.pending_bytes = r.pending_bytes();
            view.start = Some(r.start);
            view.checkpoint = r.checkpoint;
            view.segments = r.segments.len();
            view.records = r.records;
            view.record_bytes = r.record_bytes;
            view.next_seq = r.next_seq;
            view.low_water_mark = r.consumed.low_water_mark();
            view.torn_tail = r.torn_tail;
            view.damage = r.damage;
            view.orphans = r.orphans;
            view.events_lost_total = r.events_lost;
            view.repaired_gaps = r.repaired_gaps;
            view.read_start = r.read_start;
            view.live_segments = r
                .segments
                .iter()
                .map(|s| LiveSegment {
                    id: s.id,
                    path: s.path.clone(),
                    end: (s.end > 0).then_some(s.end),
                    binding: s.binding,
                })
                .collect();
            view.consumed = r.consumed;
            view.took = r.took;
        }
        Err(OpenError::Corrupt(c)) => view.failure = Some(OpenFailure::Corrupt(c)),
        Err(OpenError::Foreign { path, reason }) => {
            view.failure = Some(OpenFailure::Foreign { path, reason })
        }
        Err(e) => return Err(InspectError::from_open(e)),
    }
    Ok(view)
}

/// The newest checkpoint that decodes.
#[derive(Clone, Debug)]
pub struct NewestCheckpoint {
    /// The file.
    pub path: PathBuf,
    /// Its generation.
    pub generation: u64,
    /// When it was written, ms since the Unix epoch.
    pub created_unix_ms: u64,
    /// Its age now.
    pub age: Duration,
}

/// What `stat` shows.
#[derive(Clone, Debug)]
pub struct StatReport {
    /// The channel directory.
    pub dir: PathBuf,
    /// The channel id.
    pub channel_id: Option<u64>,
    /// `channel.meta`.
    pub meta: MetaState,
    /// Whether a live process holds the directory.
    pub lock: Option<lock::LockState>,
    /// What an open would see (pending events, sequence range, low-water mark…).
    pub view: ReplayView,
    /// Segment files.
    pub segment_files: usize,
    /// Bytes of segment files on disk.
    pub segment_bytes: u64,
    /// Lowest and highest segment id.
    pub segment_ids: Option<(u64, u64)>,
    /// Checkpoint files.
    pub checkpoint_files: usize,
    /// The newest checkpoint that decodes.
    pub newest_checkpoint: Option<NewestCheckpoint>,
    /// Files in `quarantine/` and their bytes.
    pub quarantine: (usize, u64),
    /// The keys pending records were sealed with (read without a key): a key not listed can
    /// be retired.
    pub keys: KeyReferences,
}

/// Gathers the figures of `stat`. Never writes.
pub fn stat(dir: &ChannelDir) -> Result<StatReport, InspectError> {
    let lock = if dir.real_fs {
        Some(lock::probe(&dir.dir)?)
    } else {
        None
    };
    let view = open_view(dir, RecoveryMode::SkipDamaged, None)?;
    let keys = key_references(
        dir.storage.as_ref(),
        &dir.dir,
        &dir.segment_dirs,
        view.pending_log(),
    )?;
    let mut segment_bytes = 0u64;
    for s in &dir.segments {
        segment_bytes += dir
            .storage
            .open(&s.path, false)
            .and_then(|f| f.len())
            .map_err(InspectError::io("open", &s.path))?;
    }
    let now = now_unix_ms();
    let newest_checkpoint = dir.read_checkpoints().into_iter().find_map(|c| {
        c.decoded.ok().map(|cp| NewestCheckpoint {
            path: c.path,
            generation: c.generation,
            created_unix_ms: cp.created_unix_ms,
            age: Duration::from_millis(now.saturating_sub(cp.created_unix_ms)),
        })
    });
    let qdir = dir.dir.join(QUARANTINE_DIR_NAME);
    let mut quarantine = (0usize, 0u64);
    if dir.storage.exists(&qdir) {
        if let Ok(names) = dir.storage.list(&qdir) {
            for n in names {
                quarantine.0 += 1;
                quarantine.1 += dir
                    .storage
                    .open(&qdir.join(&n), false)
                    .and_then(|f| f.len())
                    .unwrap_or(0);
            }
        }
    }
    Ok(StatReport {
        dir: dir.dir.clone(),
        channel_id: dir.channel_id(),
        meta: dir.meta.clone(),
        lock,
        view,
        segment_files: dir.segments.len(),
        segment_bytes,
        segment_ids: dir
            .segments
            .first()
            .zip(dir.segments.last())
            .map(|(a, b)| (a.id, b.id)),
        checkpoint_files: dir.checkpoints.len(),
        newest_checkpoint,
        quarantine,
        keys,
    })
}
