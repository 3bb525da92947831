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

use crate::config::RecoveryMode;
use crate::consumed::ConsumedSet;
use crate::error::{Corruption, OpenError};
use crate::format::checkpoint::{
    parse_checkpoint_file_name, Checkpoint, CHECKPOINT_FIXED_BYTES, MAX_CHECKPOINT_RANGES,
};
use crate::format::record::{
    self, Decoded, RecordHeader, RecordKind, SealPayload, TakePayload, SEAL_RECORD_BYTES,
};
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::limits::MAX_SEGMENTS;
use crate::quarantine;
use crate::segment::scan::{ScanItem, Scanner};
use crate::segment::{list_segments, SegmentPath};
use crate::storage::{parent_dir, DynFile, Storage};
use std::io;
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
        rejected: Vec<(PathBuf, String)>,
    },
    /// From the first segment.
    Full {
        /// Checkpoints that were refused, with the reason (empty: there were none).
        rejected: Vec<(PathBuf, String)>,
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

/// Lists the checkpoint files in `dir`, newest generation first.
pub fn list_checkpoints(storage: &dyn Storage, dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    if !storage.exists(dir) {
        return Ok(Vec::new());
    }
    let mut found: Vec<(u64, PathBuf)> = storage
        .list(dir)?
        .into_iter()
        .filter_map(|n| parse_checkpoint_file_name(&n).map(|g| (g, dir.join(n))))
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// Reads and decodes one checkpoint file.
pub fn read_checkpoint(storage: &dyn Storage, path: &Path) -> Result<Checkpoint, String> {
    let file = storage
        .open(path, false)
        .map_err(|e| format!("cannot open it: {e}"))?;
    let len = file
        .len()
        .map_err(|e| format!("cannot read its length: {e}"))?;
    let max = (CHECKPOINT_FIXED_BYTES + 4) as u64 + 16 * u64::from(MAX_CHECKPOINT_RANGES);
    if len > max {
        // Bounded before allocating: a garbage file must not make open read gigabytes.
        return Err(format!(
            "{len} bytes, more than a checkpoint can be ({max})"
        ));
    }
    let bytes = file
        .read_all()
        .map_err(|e| format!("cannot read it: {e}"))?;
    Checkpoint::decode(&bytes).map_err(|k| k.to_string())
}

/// Replays the channel whose checkpoints are in `dir` and segments in `dirs`.
pub fn replay(
    storage: &dyn Storage,
    dir: &Path,
    dirs: &[PathBuf],
    opts: ReplayOptions,
) -> Result<Replayed, OpenError> {
    let started = Instant::now();
    let existing: Vec<PathBuf> = dirs.iter().filter(|d| storage.exists(d)).cloned().collect();
    let mut found = list_segments(storage, &existing).map_err(|source| OpenError::Io {
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

    // Choose the start.
    let mut rejected = Vec::new();
    let mut chosen: Option<(PathBuf, Checkpoint)> = None;
    if !opts.ignore_checkpoints {
        let cps = list_checkpoints(storage, dir).map_err(io_err("list checkpoints in", dir))?;
        for (_, path) in cps {
            match read_checkpoint(storage, &path)
                .and_then(|cp| check_checkpoint(&cp, opts.channel_id, &found).map(|()| cp))
            {
                Ok(cp) => {
                    chosen = Some((path, cp));
                    break;
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "checkpoint refused; falling back");
                    rejected.push((path, reason));
                }
            }
        }
    }
    let (start, checkpoint) = match chosen {
        Some((path, cp)) => {
            tracing::info!(path = %path.display(), generation = cp.generation,
                position_segment = cp.position.0, position_offset = cp.position.1,
                "replaying from checkpoint");
            (
                ReplayStart::Checkpoint {
                    path,
                    generation: cp.generation,
                    rejected,
                },
                Some(cp),
            )
        }
        None => {
            tracing::info!(
                rejected = rejected.len(),
                "no usable checkpoint; full replay of the log"
            );
            (ReplayStart::Full { rejected }, None)
        }
    };

    // Orphans of an interrupted deletion.
    let mut orphans = Vec::new();
    if let Some(cp) = &checkpoint {
        let (dead, live): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|s| s.id < cp.first_live_segment);
        for s in dead {
            tracing::info!(segment = s.id, path = %s.path.display(), "removing orphan segment below the checkpoint's first live segment");
            if opts.writable {
                storage
                    .remove(&s.path)
                    .map_err(io_err("remove orphan", &s.path))?;
                let d = parent_dir(&s.path);
                storage.sync_dir(d).map_err(io_err("fsync directory", d))?;
            }
            orphans.push(s.path);
        }
        found = live;
    }

    let mut st = State {
        out: Replayed {
            start,
            checkpoint: None,
            segments: Vec::with_capacity(found.len()),
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
    };
    if let Some(cp) = &checkpoint {
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

    // A newest segment without a single valid record is the tail of an interrupted rotation
    // (or creation): nothing in it was ever acknowledged.
    if found.len() >= 2 {
        if let Some(last) = found.last().cloned() {
            let prev = &found[found.len() - 2];
            // An empty newest segment whose predecessor's seal names it is simply the active
            // segment of a channel closed right after a rotation: keep it.
            let empty =
                segment_has_no_record(storage, &last)? && !sealed_into(storage, prev, last.id)?;
            if empty {
                tracing::warn!(segment = last.id, path = %last.path.display(), "newest segment holds no record; removing it (interrupted rotation)");
                let bytes = storage
                    .open(&last.path, false)
                    .and_then(|f| f.len())
                    .unwrap_or(0);
                if opts.writable {
                    storage
                        .remove(&last.path)
                        .map_err(io_err("remove", &last.path))?;
                    let d = parent_dir(&last.path);
                    storage.sync_dir(d).map_err(io_err("fsync directory", d))?;
                }
                st.out.torn_tail = Some(TornTail {
                    segment: last.id,
                    path: last.path.clone(),
                    offset: 0,
                    bytes,
                    removed_file: true,
                });
                found.pop();
            }
        }
    }

    let count = found.len();
    for (i, seg) in found.iter().enumerate() {
        let last = i + 1 == count;
        let header_end = SEGMENT_HEADER_BYTES as u64;
        // With a checkpoint, records below its position are already reflected in it. The
        // default mode trusts it (fast open; damage there is met, skipped and counted when a
        // reader gets there); strict mode verifies every pending record below it too.
        let (skip_scan, scan_from, apply_from) = match &checkpoint {
            None => (false, header_end, header_end),
            Some(cp) => {
                let verify = opts.mode == RecoveryMode::Strict && seg.id >= cp.read_start.0;
                let verify_from = if seg.id == cp.read_start.0 {
                    cp.read_start.1
                } else {
                    header_end
                };
                match seg.id.cmp(&cp.position.0) {
                    std::cmp::Ordering::Less if verify => (false, verify_from, u64::MAX),
                    std::cmp::Ordering::Less => (true, header_end, header_end),
                    std::cmp::Ordering::Equal if verify => (false, verify_from, cp.position.1),
                    std::cmp::Ordering::Equal => (false, cp.position.1, cp.position.1),
                    std::cmp::Ordering::Greater => (false, header_end, header_end),
                }
            }
        };
        st.replay_segment(seg, last, skip_scan, scan_from, apply_from)?;
        tracing::debug!(
            segment = seg.id,
            segments_done = i + 1,
            segments_total = count,
            records = st.out.records,
            skipped = skip_scan,
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
    if st.out.read_start.is_none() {
        let lwm = st.out.consumed.low_water_mark();
        st.out.read_start = st
            .out
            .segments
            .iter()
            .rev()
            .find(|s| s.first_seq <= lwm)
            .or(st.out.segments.first())
            .map(|s| (s.id, SEGMENT_HEADER_BYTES as u64));
    }
    st.out.checkpoint = checkpoint;
    st.out.events_lost += st.out.events_lost_now();
    if opts.writable {
        for d in &st.out.damage {
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

/// Where a rebuilt segment header's first sequence number comes from.
#[derive(Clone, Copy, Debug)]
enum FirstSeq {
    /// Known from the replay so far (the previous segment's end).
    Known(u64),
    /// The first intact put or seal record, wherever it is; `fallback` without one.
    FirstPutOrSeal {
        /// Used when the segment has no intact put or seal record.
        fallback: u64,
    },
    /// A put or seal record reached through intact records only, right from the header: one
    /// found after damaged bytes could follow damaged events whose loss would go uncounted.
    UnbrokenRun,
}

/// A segment header rebuilt from the segment's records, for a header that is damaged: the id
/// from the file name (which every record repeats inside its checksum), the channel id from the
/// other files, the first sequence as `first_seq` says — a put record's first event, or a seal
/// record's next sequence (in a segment without puts, unchanged since creation). `None` when
/// the segment holds no intact record or the first sequence cannot be told.
fn rebuild_header(
    file: &DynFile,
    segment_id: u64,
    channel_id: Option<u64>,
    first_seq: FirstSeq,
) -> io::Result<Option<SegmentHeader>> {
    let header = |first_seq| SegmentHeader {
        segment_id,
        channel_id: channel_id.unwrap_or(0),
        first_seq,
        created_unix_ms: 0,
    };
    let mut scanner = Scanner::from_start(file.clone(), segment_id);
    let mut at = SEGMENT_HEADER_BYTES as u64;
    while let Some(h) = scanner.find_next_valid(at)? {
        match first_seq {
            FirstSeq::Known(seq) => return Ok(Some(header(seq))),
            FirstSeq::UnbrokenRun if h.offset != at => return Ok(None),
            _ => {}
        }
        if matches!(h.kind, RecordKind::Put | RecordKind::Seal) {
            return Ok(Some(header(h.first_seq)));
        }
        at = h.offset + h.aligned_len();
    }
    match first_seq {
        FirstSeq::FirstPutOrSeal { fallback } if at > SEGMENT_HEADER_BYTES as u64 => {
            Ok(Some(header(fallback)))
        }
        _ => Ok(None),
    }
}

/// Whether a checkpoint agrees with the segments on disk.
fn check_checkpoint(
    cp: &Checkpoint,
    channel_id: Option<u64>,
    found: &[SegmentPath],
) -> Result<(), String> {
    if let Some(id) = channel_id {
        if cp.channel_id != id {
            return Err(format!(
                "belongs to channel {:#018x}, this channel is {id:#018x}",
                cp.channel_id
            ));
        }
    }
    let live: Vec<u64> = found
        .iter()
        .map(|s| s.id)
        .filter(|&id| id >= cp.first_live_segment)
        .collect();
    let needed = [cp.position.0, cp.read_start.0];
    for id in needed {
        if !live.contains(&id) {
            return Err(format!("segment {id} it names does not exist"));
        }
    }
    for w in live.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(format!("segment {} is missing", w[0] + 1));
        }
    }
    Ok(())
}

/// Whether `seg` ends with a valid seal record naming segment `next` (looked up just below the
/// end of its non-zero data, without scanning the segment).
fn sealed_into(storage: &dyn Storage, seg: &SegmentPath, next: u64) -> Result<bool, OpenError> {
    let file = storage
        .open(&seg.path, false)
        .map_err(io_err("open segment", &seg.path))?;
    let len = file
        .len()
        .map_err(io_err("read the length of", &seg.path))?;
    let end = crate::format::record::align_up(data_end(&file, SEGMENT_HEADER_BYTES as u64, len));
    let seal = SEAL_RECORD_BYTES;
    let mut buf = vec![0u8; seal as usize];
    // The seal's last bytes may be zeros (high bytes of its sequence number), so its start is
    // within a few words below the end of the non-zero data.
    for back in (0..=seal).step_by(8) {
        let Some(at) = end.checked_sub(seal + back) else {
            break;
        };
        if at < SEGMENT_HEADER_BYTES as u64 || file.read_exact_at(&mut buf, at).is_err() {
            continue;
        }
        if let Ok(Decoded::Record(h, payload)) = record::decode(&buf, seg.id, at) {
            if h.kind == RecordKind::Seal {
                return Ok(SealPayload::decode(payload).next_segment_id == next);
            }
        }
    }
    Ok(false)
}

fn segment_has_no_record(storage: &dyn Storage, seg: &SegmentPath) -> Result<bool, OpenError> {
    let file = storage
        .open(&seg.path, false)
        .map_err(io_err("open segment", &seg.path))?;
    let mut scanner = Scanner::from_start(file, seg.id);
    let any = scanner
        .find_next_valid(SEGMENT_HEADER_BYTES as u64)
        .map_err(io_err("read", &seg.path))?;
    Ok(any.is_none())
}

struct State<'a> {
    out: Replayed,
    storage: &'a dyn Storage,
    dir: PathBuf,
    opts: ReplayOptions,
    channel_id: Option<u64>,
    expect_next_segment: Option<(u64, PathBuf)>,
    sealed_next: Option<u64>,
    /// Index into `damage` of the damage that may explain the next sequence gap.
    gap_owner: Option<usize>,
    /// Whether the sequence start is known (from a checkpoint or the first segment header).
    started: bool,
}

impl State<'_> {
    fn corrupt(&self, path: &Path, segment: u64, offset: u64, kind: CorruptionKind) -> Corruption {
        Corruption {
            file: path.to_path_buf(),
            segment,
            offset,
            kind,
        }
    }

    /// Records damage: refuses in strict mode; in skip mode quarantines `[offset, offset+bytes)`
    /// of `file` (if writable) and remembers it as the owner of the next sequence gap.
    fn damage(
        &mut self,
        at: Corruption,
        file: Option<&DynFile>,
        bytes: u64,
    ) -> Result<(), OpenError> {
        tracing::error!(file = %at.file.display(), segment = at.segment, offset = at.offset,
            kind = %at.kind, bytes, "damaged log data");
        if self.opts.mode == RecoveryMode::Strict {
            return Err(OpenError::Corrupt(at));
        }
        let mut quarantined = None;
        if self.opts.writable {
            if let Some(f) = file {
                quarantined = Some(
                    quarantine::save_bytes(
                        self.storage,
                        &|d| self.storage.sync_dir(d),
                        &self.dir,
                        &at,
                        f,
                        bytes,
                    )
                    .map_err(io_err("quarantine damaged bytes of", &at.file))?,
                );
            }
        }
        self.out.damage.push(Damage {
            at,
            bytes,
            events_lost: 0,
            quarantined,
        });
        self.gap_owner = Some(self.out.damage.len() - 1);
        Ok(())
    }

    /// Accounts for a jump of the sequence to `found` (from a put record, a seal, or a segment
    /// header). Events in between are lost: they are marked consumed and counted.
    fn advance_to(&mut self, found: u64, at: (&Path, u64, u64)) -> Result<(), OpenError> {
        let expected = self.out.next_seq;
        if found == expected {
            return Ok(());
        }
        if found < expected {
            let c = self.corrupt(
                at.0,
                at.1,
                at.2,
                CorruptionKind::SequenceGap { expected, found },
            );
            return Err(OpenError::Corrupt(c));
        }
        let lost = found - expected;
        if self.gap_owner.is_none() {
            let c = self.corrupt(
                at.0,
                at.1,
                at.2,
                CorruptionKind::SequenceGap { expected, found },
            );
            self.damage(c, None, 0)?;
        }
        if let Some(i) = self.gap_owner {
            self.out.damage[i].events_lost += lost;
        }
        self.out.consumed.insert(expected, found);
        self.out.next_seq = found;
        Ok(())
    }

    /// Replays one segment: records from `scan_from` are read and checked; those at or after
    /// `apply_from` are also applied (below it they are covered by the checkpoint).
    fn replay_segment(
        &mut self,
        seg: &SegmentPath,
        last: bool,
        skip_scan: bool,
        scan_from: u64,
        apply_from: u64,
    ) -> Result<(), OpenError> {
        let path = &seg.path;
        let file = self
            .storage
            .open(path, self.opts.writable)
            .map_err(io_err("open segment", path))?;
        let file_len = file.len().map_err(io_err("read the length of", path))?;
        let mut head = [0u8; SEGMENT_HEADER_BYTES];
        let head_len = (file_len as usize).min(SEGMENT_HEADER_BYTES);
        file.read_exact_at(&mut head[..head_len], 0)
            .map_err(io_err("read segment header of", path))?;
        let mut header_rebuilt = false;
        let header = match SegmentHeader::decode(&head[..head_len]) {
            Ok(h) => h,
            Err(kind) => {
                // A header that never became durable can only belong to the newest segment,
                // and then no record was ever written after it.
                let mut scanner = Scanner::from_start(file.clone(), seg.id);
                let any_record = scanner
                    .find_next_valid(SEGMENT_HEADER_BYTES as u64)
                    .map_err(io_err("read", path))?;
                if last && !skip_scan && any_record.is_none() {
                    tracing::warn!(segment = seg.id, path = %path.display(), bytes = file_len,
                        %kind, "newest segment has no durable header; removing it (torn creation)");
                    if self.opts.writable {
                        self.storage.remove(path).map_err(io_err("remove", path))?;
                        let dir = parent_dir(path);
                        self.storage
                            .sync_dir(dir)
                            .map_err(io_err("fsync directory", dir))?;
                    }
                    self.out.torn_tail = Some(TornTail {
                        segment: seg.id,
                        path: path.clone(),
                        offset: 0,
                        bytes: file_len,
                        removed_file: true,
                    });
                    return Ok(());
                }
                // A damaged header of a segment that holds records. The records name their
                // segment inside their own checksums, so the header is rebuilt from them and
                // nothing is lost; only when they cannot tell the first sequence (no put and no
                // seal record) is the segment left out — it then holds no events.
                // The first sequence: where the replay so far says this segment starts (the
                // previous segment's end, or the checkpoint's next sequence when the segment
                // is applied from its start); else from the records (only from an unbroken run
                // of them after the header, or the first sequence could skip damaged events
                // uncounted).
                let first_seq = if skip_scan || apply_from != SEGMENT_HEADER_BYTES as u64 {
                    // Only places the reader: an over-estimate just starts it earlier.
                    FirstSeq::FirstPutOrSeal {
                        fallback: self.out.next_seq,
                    }
                } else if self.started {
                    FirstSeq::Known(self.out.next_seq)
                } else {
                    FirstSeq::UnbrokenRun
                };
                let rebuilt = rebuild_header(&file, seg.id, self.channel_id, first_seq)
                    .map_err(io_err("read", path))?;
                let Some(header) = rebuilt else {
                    let c = self.corrupt(path, seg.id, 0, kind);
                    self.damage(c, Some(&file), file_len)?;
                    self.expect_next_segment = None;
                    return Ok(());
                };
                tracing::warn!(segment = seg.id, path = %path.display(),
                    first_seq = header.first_seq, %kind,
                    "segment header damaged; rebuilt from the segment's records");
                let c = self.corrupt(path, seg.id, 0, kind);
                self.damage(c, Some(&file), SEGMENT_HEADER_BYTES as u64)?;
                self.gap_owner = None;
                if self.opts.writable && self.channel_id.is_some() {
                    file.write_at(&header.encode(), 0)
                        .map_err(io_err("rewrite the damaged header of", path))?;
                    file.sync_data().map_err(io_err("fsync", path))?;
                }
                header_rebuilt = true;
                header
            }
        };
        if header.segment_id != seg.id {
            return Err(OpenError::Foreign {
                path: path.clone(),
                reason: format!(
                    "file name says segment {} but its header says {}",
                    seg.id, header.segment_id
                ),
            });
        }
        match self.channel_id {
            // A header rebuilt before any file named the channel carries no channel id.
            None if header_rebuilt => {}
            Some(id) if id != header.channel_id => {
                return Err(OpenError::Foreign {
                    path: path.clone(),
                    reason: format!(
                        "segment belongs to channel {:#018x}, this channel is {id:#018x}",
                        header.channel_id
                    ),
                })
            }
            _ => self.channel_id = Some(header.channel_id),
        }
        if let Some((expected, prev)) = self.expect_next_segment.take() {
            if expected != seg.id {
                let c = self.corrupt(
                    &prev,
                    expected.saturating_sub(1),
                    0,
                    CorruptionKind::BadPayload {
                        what: "a segment named by a seal record is missing",
                    },
                );
                self.damage(c, None, 0)?;
            }
        }
        if skip_scan {
            // Covered by the checkpoint: only its header is checked.
            self.out.segments.push(ReplayedSegment {
                id: seg.id,
                path: path.clone(),
                file,
                first_seq: header.first_seq,
                end: 0,
                sealed: true,
            });
            return Ok(());
        }
        let header_end = SEGMENT_HEADER_BYTES as u64;
        if !self.started {
            self.started = true;
            self.out.next_seq = header.first_seq;
            self.out.consumed = ConsumedSet::new(header.first_seq);
        } else if apply_from == header_end {
            self.advance_to(header.first_seq, (path, seg.id, 0))?;
        }
        self.gap_owner = None;
        if apply_from != u64::MAX && apply_from > header_end && file_len < apply_from {
            // The checkpoint covers bytes this file no longer has.
            let c = self.corrupt(
                path,
                seg.id,
                file_len,
                CorruptionKind::Truncated {
                    needed: apply_from,
                    available: file_len,
                },
            );
            self.damage(c, None, 0)?;
        }

        let mut scanner = Scanner::new(file.clone(), seg.id, scan_from, u64::MAX);
        let mut sealed = false;
        let end = loop {
            let item = scanner.next_item().map_err(io_err("read", path))?;
            let (offset, kind) = match item {
                ScanItem::Record {
                    header: rh,
                    payload,
                } => {
                    if sealed {
                        let c = self.corrupt(
                            path,
                            seg.id,
                            rh.offset,
                            CorruptionKind::BadPayload {
                                what: "record after the segment's seal",
                            },
                        );
                        return Err(OpenError::Corrupt(c));
                    }
                    if rh.offset < apply_from {
                        // Verified only: the checkpoint already reflects it.
                        sealed = rh.kind == RecordKind::Seal;
                        if sealed {
                            self.sealed_next = Some(SealPayload::decode(payload).next_segment_id);
                        }
                        continue;
                    }
                    sealed = self.apply(path, &rh, payload)?;
                    continue;
                }
                ScanItem::End { offset } => (offset, None),
                ScanItem::Bad { offset, kind } => (offset, Some(kind)),
            };
            let later = scanner
                .find_next_valid(offset + 8)
                .map_err(io_err("read", path))?;
            if !last {
                if sealed && kind.is_none() && later.is_none() {
                    break offset;
                }
                // Damage inside a finished segment.
                let kind = kind.unwrap_or(CorruptionKind::BadPayload {
                    what: "segment ends without a seal record",
                });
                let to = match &later {
                    Some(h) => h.offset,
                    None => data_end(&file, offset, file_len),
                };
                let c = self.corrupt(path, seg.id, offset, kind);
                self.damage(c, Some(&file), to - offset)?;
                match later {
                    Some(h) => {
                        scanner.seek(h.offset);
                        continue;
                    }
                    None => break offset,
                }
            }
            // The last segment: is what follows a torn tail or damage to durable data?
            if let Some(h) = later.filter(|h| h.durable_mark > offset) {
                let kind = kind.unwrap_or(CorruptionKind::BadPayload {
                    what: "zeroed bytes before a later durable record",
                });
                let c = self.corrupt(path, seg.id, offset, kind);
                self.damage(c, Some(&file), h.offset - offset)?;
                scanner.seek(h.offset);
                continue;
            }
            if kind.is_some() || later.is_some() {
                let bytes = file_len.saturating_sub(offset);
                tracing::warn!(segment = seg.id, path = %path.display(), offset, bytes,
                    "torn tail after the last valid record; truncating");
                if self.opts.writable {
                    file.set_len(offset).map_err(io_err("truncate", path))?;
                    file.sync_data().map_err(io_err("fsync", path))?;
                }
                self.out.torn_tail = Some(TornTail {
                    segment: seg.id,
                    path: path.clone(),
                    offset,
                    bytes,
                    removed_file: false,
                });
            }
            break offset;
        };
        if let (true, Some(next)) = (sealed, self.sealed_next.take()) {
            self.expect_next_segment = Some((next, path.clone()));
        }
        self.out.segments.push(ReplayedSegment {
            id: seg.id,
            path: path.clone(),
            file,
            first_seq: header.first_seq,
            end,
            sealed,
        });
        Ok(())
    }

    /// Applies one record; returns whether it was a seal.
    fn apply(&mut self, path: &Path, h: &RecordHeader, payload: &[u8]) -> Result<bool, OpenError> {
        self.out.records += 1;
        self.out.record_bytes += h.aligned_len();
        self.out.next_txn_id = self.out.next_txn_id.max(h.txn_id.saturating_add(1));
        match h.kind {
            RecordKind::Put => {
                self.advance_to(h.first_seq, (path, h.segment_id, h.offset))?;
                self.gap_owner = None;
                self.out.next_seq += u64::from(h.event_count);
                self.out.put_bytes += payload.len() as u64;
                Ok(false)
            }
            RecordKind::Take => {
                let take = match TakePayload::decode(payload, h.event_count) {
                    Ok(t) => t,
                    Err(kind) => {
                        // A checksummed record whose payload is inconsistent: written wrong.
                        let c = self.corrupt(path, h.segment_id, h.offset, kind);
                        self.damage(c, None, h.aligned_len())?;
                        self.gap_owner = None;
                        return Ok(false);
                    }
                };
                let mut added = 0u64;
                for (s, e) in take.ranges {
                    added += self.out.consumed.insert(s, e.min(self.out.next_seq));
                }
                // Idempotent: a take already reflected in the checkpoint changes nothing.
                if h.event_count > 0 {
                    self.out.take_bytes += (u128::from(take.bytes) * u128::from(added)
                        / u128::from(h.event_count))
                        as u64;
                }
                Ok(false)
            }
            RecordKind::Gap => {
                // Damage a repair already accounted for: the events are gone, and were counted
                // when the damage was found.
                self.advance_to(h.first_seq, (path, h.segment_id, h.offset))?;
                self.gap_owner = None;
                let end = h.first_seq + u64::from(h.event_count);
                self.out.consumed.insert(h.first_seq, end);
                self.out.next_seq = end;
                self.out.repaired_gaps += 1;
                Ok(false)
            }
            RecordKind::Seal => {
                let seal = SealPayload::decode(payload);
                self.advance_to(seal.next_seq, (path, h.segment_id, h.offset))?;
                if seal.next_segment_id <= h.segment_id {
                    let c = self.corrupt(
                        path,
                        h.segment_id,
                        h.offset,
                        CorruptionKind::BadPayload {
                            what: "seal names an earlier segment",
                        },
                    );
                    return Err(OpenError::Corrupt(c));
                }
                self.sealed_next = Some(seal.next_segment_id);
                Ok(true)
            }
        }
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
