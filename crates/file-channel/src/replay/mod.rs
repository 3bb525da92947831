//! Replay: rebuilds the queue state of a channel from its newest valid checkpoint and the log
//! after it (or from the logs alone), AOF-style.
//!
//! Start: the newest checkpoint that decodes and agrees with the segments on disk, else the
//! older one, else a full replay from the first segment; which one and why is logged and
//! reported. Segments below the checkpoint's first live segment are orphans of a deletion that
//! a crash interrupted and are removed.
//!
//! Then every record from the start position to the end is applied by its header: put records
//! advance the sequence, take records mark ranges consumed (idempotently), seal records close a
//! segment and name the next. The end of data is found by length and checksum only. In the
//! *last* segment, bytes after the last valid record are a torn tail (the crash hit an unsynced
//! write) unless a later valid record's durable mark proves they had been fsynced, in which case
//! they are damage. Damage is refused in [`RecoveryMode::Strict`]; in
//! [`RecoveryMode::SkipDamaged`] the damaged bytes are skipped (and, on a writable replay,
//! copied to `quarantine/` with a JSON note), and the events lost are counted exactly from the
//! gap in sequence numbers. A read-only replay (for the tools) reports without changing a byte.

//!
//! The phases, each in a module of its own: `checkpoint_choice` (load a checkpoint, or say
//! why not), `sweep` (orphans and an interrupted rotation's empty segment), `segments`
//! (replay each segment's records as its `ScanPlan` says), with `header` (a segment's header:
//! decoded, removed when torn, rebuilt when damaged) and `apply` (a record's effect, damage
//! and sequence gaps).

mod apply;
mod checkpoint_choice;
mod header;
mod ledger;
mod segments;
mod sweep;

pub use checkpoint_choice::{
    list_checkpoints, read_checkpoint, CheckpointRejection, RejectedCheckpoint,
};

use crate::config::RecoveryMode;
use crate::consumed::ConsumedSet;
use crate::error::{Corruption, OpenError};
use crate::format::checkpoint::Checkpoint;
use crate::format::record::RecordBinding;
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::format::OLDEST_READABLE_FORMAT_VERSION;
use crate::limits::MAX_SEGMENTS;
use crate::quarantine;
use crate::segment::{list_segments, SegmentPath};
use crate::storage::{DynFile, Storage};
use segments::ScanPlan;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A segment as replay left it.
#[derive(Clone, Debug)]
pub struct ReplayedSegment {
    /// Segment id.
    pub id: u64,
    /// The file.
    pub path: PathBuf,
    /// Open handle (writable when the replay was).
    pub file: DynFile,
    /// The channel's next sequence number when the segment was created (from its header).
    pub first_seq: u64,
    /// End of its valid records (for segments a checkpoint let replay skip: their seal is
    /// assumed and `end` is 0).
    pub end: u64,
    /// Whether it ends with a seal record (assumed for skipped segments).
    pub sealed: bool,
    /// What its records' checksums are bound to (from its header's format version).
    pub binding: RecordBinding,
}

/// Bytes after the last valid record of the last segment, cut off by a writable replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub segment: u64,
    /// The file.
    pub path: PathBuf,
    /// Where valid data ends.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
    /// Whether the whole file was removed (its header was never made durable, or it held no
    /// record and was the tail of an interrupted rotation).
    pub removed_file: bool,
}

/// Damage found (and, in skip mode, skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where it is.
    pub at: Corruption,
    /// Bytes skipped.
    pub bytes: u64,
    /// Events lost, counted from the sequence gap.
    pub events_lost: u64,
    /// Where its bytes were copied, if they were.
    pub quarantined: Option<PathBuf>,
}

/// Where replay started, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayStart {
    /// From a checkpoint file.
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Its generation.
        generation: u64,
        /// Newer checkpoints that were refused, with the reason.
        rejected: Vec<RejectedCheckpoint>,
    },
    /// From the first segment.
    Full {
        /// Checkpoints that were refused, with the reason (empty: there were none).
        rejected: Vec<RejectedCheckpoint>,
    },
}

/// The state the checkpoint and logs describe.
#[derive(Debug)]
pub struct Replayed {
    /// Where replay started.
    pub start: ReplayStart,
    /// The checkpoint used, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Live segments in id order.
    pub segments: Vec<ReplayedSegment>,
    /// The next sequence number to assign.
    pub next_seq: u64,
    /// Consumed sequence numbers (lost events included: they will never be delivered).
    pub consumed: ConsumedSet,
    /// Encoded event bytes put (from the start position on, plus the checkpoint's pending bytes).
    pub put_bytes: u64,
    /// Encoded event bytes consumed after the start position.
    pub take_bytes: u64,
    /// Records read.
    pub records: u64,
    /// Bytes of records read.
    pub record_bytes: u64,
    /// One more than the highest transaction id seen.
    pub next_txn_id: u64,
    /// The torn tail found, if any.
    pub torn_tail: Option<TornTail>,
    /// Damage found (refused in strict mode, so then at most the one that was refused).
    pub damage: Vec<Damage>,
    /// Events lost to corruption, cumulative over the channel's life.
    pub events_lost: u64,
    /// Orphan segments removed (or, read-only, that would be).
    pub orphans: Vec<PathBuf>,
    /// Segments left out of the replay (a damaged header nothing could rebuild) whose files
    /// are still in place: a new segment must not take their ids.
    pub left_out: Vec<u64>,
    /// Gap records met: damage that a repair replaced, already counted when it was found.
    pub repaired_gaps: u64,
    /// Where a reader starts: a record position at or before the one holding the low-water mark.
    pub read_start: Option<(u64, u64)>,
    /// How long it took.
    pub took: Duration,
}

impl Replayed {
    /// Events committed and not consumed.
    pub fn pending_events(&self) -> u64 {
        self.next_seq
            .saturating_sub(self.consumed.low_water_mark())
            .saturating_sub(self.consumed.consumed_above_lwm())
    }

    /// Encoded bytes of the pending events.
    pub fn pending_bytes(&self) -> u64 {
        self.put_bytes.saturating_sub(self.take_bytes)
    }

    /// Events lost to the damage found by this replay.
    pub fn events_lost_now(&self) -> u64 {
        self.damage.iter().map(|d| d.events_lost).sum()
    }
}

/// Replay progress, for tools showing a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct ReplayProgress {
    /// Segments finished.
    pub segments_done: usize,
    /// Segments to read.
    pub segments_total: usize,
    /// Records applied so far.
    pub records: u64,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(ReplayProgress) + Send + Sync>;

/// Options of a replay.
#[derive(Clone)]
pub struct ReplayOptions {
    /// Truncate a torn tail, remove orphans, quarantine damage (and fsync) instead of only
    /// reporting them.
    pub writable: bool,
    /// The channel id every segment header and checkpoint must carry; `None` accepts the first
    /// one seen.
    pub channel_id: Option<u64>,
    /// The format version `channel.meta` says the channel was created in
    /// ([`OLDEST_READABLE_FORMAT_VERSION`] when unknown). In a channel created in format 2,
    /// records behind a lost segment header are read as bound to the channel, never unbound.
    pub channel_format_version: u32,
    /// What to do with damage.
    pub mode: RecoveryMode,
    /// Ignore checkpoints (the tools' "full replay").
    pub ignore_checkpoints: bool,
    /// Called after each segment.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for ReplayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayOptions")
            .field("writable", &self.writable)
            .field("channel_id", &self.channel_id)
            .field("channel_format_version", &self.channel_format_version)
            .field("mode", &self.mode)
            .field("ignore_checkpoints", &self.ignore_checkpoints)
            .finish_non_exhaustive()
    }
}

impl ReplayOptions {
    /// Read-only, strict about nothing (skip mode), checkpoints used: what the tools start from.
    pub fn read_only() -> Self {
        Self {
            writable: false,
            channel_id: None,
            channel_format_version: OLDEST_READABLE_FORMAT_VERSION,
            mode: RecoveryMode::SkipDamaged,
            ignore_checkpoints: false,
            progress: None,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OpenError {
    let path = path.to_path_buf();
    move |source| OpenError::Io { op, path, source }
}

/// Replays the channel whose checkpoints are in `dir` and segments in `dirs`.
pub fn replay(
    storage: &dyn Storage,
    dir: &Path,
    dirs: &[PathBuf],
    opts: ReplayOptions,
) -> Result<Replayed, OpenError> {
    let started = Instant::now();
    let found = list_all_segments(storage, dir, dirs)?;
    let checkpoints = checkpoint_choice::read_checkpoints(storage, dir)?;
    let evidence: Vec<Checkpoint> = checkpoints
        .iter()
        .filter_map(|(_, read)| read.as_ref().ok().cloned())
        .collect();
    let (start, checkpoint) =
        checkpoint_choice::choose_start(storage, &checkpoints, &opts, &found)?;
    if opts.writable {
        quarantine_unusable_checkpoints(storage, dir, &start)?;
    }
    let (orphans, mut found) = sweep::sweep_orphans(storage, &opts, checkpoint.as_ref(), found)?;
    let mut st = State::new(
        storage,
        dir,
        &opts,
        start,
        orphans,
        checkpoint.as_ref(),
        found.len(),
    );
    st.evidence = evidence;
    st.found = found.clone();
    st.out.torn_tail = sweep::drop_interrupted_rotation(storage, dir, &opts, &mut found)?;
    let count = found.len();
    for (i, seg) in found.iter().enumerate() {
        let plan = ScanPlan::for_segment(seg.id, checkpoint.as_ref(), opts.mode);
        st.replay_segment(seg, i + 1 == count, plan)?;
        tracing::debug!(
            segment = seg.id,
            segments_done = i + 1,
            segments_total = count,
            records = st.out.records,
            skipped = plan.skip_scan,
            "replay progress"
        );
        if let Some(p) = &opts.progress {
            p(ReplayProgress {
                segments_done: i + 1,
                segments_total: count,
                records: st.out.records,
            });
        }
    }
    st.settle_ledger()?;
    if checkpoint.is_none() {
        // The lifetime count survives a refused checkpoint.
        st.out.events_lost = st.evidence_events_lost();
    }
    st.settle_read_start();
    st.out.checkpoint = checkpoint;
    st.out.events_lost += st.out.events_lost_now();
    if opts.writable {
        write_quarantine_notes(storage, dir, &st.out.damage)?;
    }
    st.out.took = started.elapsed();
    tracing::info!(
        segments = st.out.segments.len(),
        records = st.out.records,
        next_seq = st.out.next_seq,
        pending = st.out.pending_events(),
        damaged = st.out.damage.len(),
        events_lost = st.out.events_lost_now(),
        took_ms = st.out.took.as_millis() as u64,
        "replayed channel log"
    );
    Ok(st.out)
}

/// The segment files in those of `dirs` that exist, refused beyond [`MAX_SEGMENTS`].
fn list_all_segments(
    storage: &dyn Storage,
    dir: &Path,
    dirs: &[PathBuf],
) -> Result<Vec<SegmentPath>, OpenError> {
    let existing: Vec<PathBuf> = dirs.iter().filter(|d| storage.exists(d)).cloned().collect();
    let found = list_segments(storage, &existing).map_err(|source| OpenError::Io {
        op: "list segments in",
        path: dir.to_path_buf(),
        source,
    })?;
    if found.len() > MAX_SEGMENTS {
        return Err(OpenError::TooManySegments {
            dir: dir.to_path_buf(),
            count: found.len(),
            limit: MAX_SEGMENTS,
        });
    }
    Ok(found)
}

/// Moves the checkpoint files refused because they are not this channel's checkpoints at all
/// (bytes that do not decode, another channel's) into `quarantine/`: the engine did not write
/// them as they are, and its checkpoint rotation would otherwise delete them with no copy.
/// Checkpoints refused only because the log disagrees stay: they are the ledger's evidence.
fn quarantine_unusable_checkpoints(
    storage: &dyn Storage,
    dir: &Path,
    start: &ReplayStart,
) -> Result<(), OpenError> {
    let rejected = match start {
        ReplayStart::Checkpoint { rejected, .. } | ReplayStart::Full { rejected } => rejected,
    };
    for r in rejected {
        if matches!(
            r.reason,
            CheckpointRejection::Undecodable(_)
                | CheckpointRejection::TooLarge { .. }
                | CheckpointRejection::OtherChannel { .. }
        ) {
            let to = quarantine::move_file(
                storage,
                &|d| storage.sync_dir(d),
                dir,
                &r.path,
                &r.reason.to_string(),
            )
            .map_err(io_err("move to quarantine/", &r.path))?;
            tracing::warn!(path = %r.path.display(), to = %to.display(), reason = %r.reason,
                "unusable checkpoint moved to quarantine/");
        }
    }
    Ok(())
}

/// Writes the quarantine note of each damage found (their bytes were copied when found).
fn write_quarantine_notes(
    storage: &dyn Storage,
    dir: &Path,
    damage: &[Damage],
) -> Result<(), OpenError> {
    for d in damage {
        quarantine::write_note(
            storage,
            &|d| storage.sync_dir(d),
            dir,
            &d.at,
            d.bytes,
            d.events_lost,
        )
        .map_err(io_err("write a quarantine note in", dir))?;
    }
    Ok(())
}

/// A seal record's promise: segment `next` follows the sealed file `sealed`.
#[derive(Debug)]
struct SealedInto {
    next: u64,
    sealed: PathBuf,
}

/// The replay in progress.
struct State<'a> {
    out: Replayed,
    storage: &'a dyn Storage,
    dir: PathBuf,
    opts: ReplayOptions,
    channel_id: Option<u64>,
    /// The segment the last seal record named, which must come next.
    expect_next_segment: Option<SealedInto>,
    sealed_next: Option<u64>,
    /// Index into `damage` of the damage that may explain the next sequence gap.
    gap_owner: Option<usize>,
    /// Whether the sequence start is known (from a checkpoint or the first segment header).
    started: bool,
    /// Where a replay without a checkpoint started the sequence (the first segment's header).
    log_start: Option<u64>,
    /// Every checkpoint that decodes: the ledger's evidence of what was committed and consumed.
    evidence: Vec<Checkpoint>,
    /// Sequence numbers below `log_start` that take records in the log consumed.
    taken_below_start: ConsumedSet,
    /// The segment files replayed, to look at a neighbour's header.
    found: Vec<SegmentPath>,
    /// A segment with a format-2 header was met: every later one is format 2 as well (the
    /// engine never creates a format-1 segment after a format-2 one).
    bound_segment_seen: bool,
}

impl<'a> State<'a> {
    /// A replay starting at `start` (from `checkpoint`, if any) over `segments` segments.
    fn new(
        storage: &'a dyn Storage,
        dir: &Path,
        opts: &ReplayOptions,
        start: ReplayStart,
        orphans: Vec<PathBuf>,
        checkpoint: Option<&Checkpoint>,
        segments: usize,
    ) -> Self {
        let mut st = State {
            out: Replayed {
                start,
                checkpoint: None,
                segments: Vec::with_capacity(segments),
                next_seq: 0,
                consumed: ConsumedSet::new(0),
                put_bytes: 0,
                take_bytes: 0,
                records: 0,
                record_bytes: 0,
                next_txn_id: 1,
                torn_tail: None,
                damage: Vec::new(),
                events_lost: 0,
                orphans,
                left_out: Vec::new(),
                repaired_gaps: 0,
                read_start: None,
                took: Duration::ZERO,
            },
            storage,
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            channel_id: opts.channel_id,
            expect_next_segment: None,
            sealed_next: None,
            gap_owner: None,
            started: checkpoint.is_some(),
            log_start: None,
            evidence: Vec::new(),
            taken_below_start: ConsumedSet::new(0),
            found: Vec::new(),
            bound_segment_seen: false,
        };
        if let Some(cp) = checkpoint {
            st.channel_id = Some(cp.channel_id);
            st.out.next_seq = cp.next_seq;
            let mut consumed = ConsumedSet::new(cp.low_water_mark);
            for &(s, e) in &cp.ranges {
                consumed.insert(s, e);
            }
            st.out.consumed = consumed;
            st.out.put_bytes = cp.pending_bytes;
            st.out.next_txn_id = cp.next_txn_id;
            st.out.events_lost = cp.events_lost;
            st.out.read_start = Some(cp.read_start);
        }
        st
    }

    /// Without a checkpoint's read start, a reader starts at the newest segment whose first
    /// sequence number is at or below the low-water mark (else the first segment).
    fn settle_read_start(&mut self) {
        if self.out.read_start.is_some() {
            return;
        }
        let lwm = self.out.consumed.low_water_mark();
        self.out.read_start = self
            .out
            .segments
            .iter()
            .rev()
            .find(|s| s.first_seq <= lwm)
            .or(self.out.segments.first())
            .map(|s| (s.id, SEGMENT_HEADER_BYTES as u64));
    }
}

/// The end of the non-zero bytes of `file` at or after `from` (damage is reported up to there,
/// not through the preallocated zeros).
fn data_end(file: &DynFile, from: u64, file_len: u64) -> u64 {
    let mut end = file_len;
    let mut buf = vec![0u8; 64 << 10];
    while end > from {
        let start = end.saturating_sub(buf.len() as u64).max(from);
        let n = (end - start) as usize;
        if file.read_exact_at(&mut buf[..n], start).is_err() {
            return file_len;
        }
        if let Some(i) = buf[..n].iter().rposition(|&b| b != 0) {
            return start + i as u64 + 1;
        }
        end = start;
    }
    from
}
