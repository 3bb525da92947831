//! `verify`: a read-only check of every segment from its start and of every checkpoint.
//!
//! 1. A full replay of the log ([`crate::replay::replay`], read-only, `ignore_checkpoints`): it
//!    decides — exactly as an open would — where the torn tail of the newest segment starts,
//!    which ranges are damage, and how many events each damaged range cost (from the sequence
//!    gap).
//! 2. A walk of every segment with the same scanner (module `walk`), for per-segment figures
//!    and the sequence state at every position a checkpoint names and at every damaged offset.
//! 3. Every checkpoint is decoded and compared with the log: its position and read start must
//!    be record boundaries inside the valid data, its next sequence number must be the log's at
//!    its position, the record at its read start must not be past its low-water mark, and
//!    everything the log says was consumed below its position must be consumed in it. An older
//!    generation that names segments deleted since a newer valid checkpoint was written is
//!    *superseded*, which is normal.
//!
//! A torn tail alone is not corruption. Damage inside segments a checkpoint freed (orphans the
//! engine removes at open) is listed as ignored.

use super::walk::{walk, Walk};
use super::{
    kind_code, lock, ChannelDir, CheckpointFile, CheckpointReadError, InspectError, MetaState,
};
use crate::error::OpenError;
use crate::format::checkpoint::Checkpoint;
use crate::format::segment_header::SegmentHeader;
use crate::format::CorruptionKind;
use crate::replay::{replay, ReplayOptions, ReplayProgress, TornTail};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Progress of a long scan: a phase name and segments done out of a total.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// What is being done ("replay", "scan").
    pub phase: &'static str,
    /// Segments done.
    pub done: usize,
    /// Segments in all.
    pub total: usize,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// What a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A damaged range inside a segment (replay skips it and counts the events).
    Damage(CorruptionKind),
    /// A segment header that does not verify, in a segment holding records.
    SegmentHeader(CorruptionKind),
    /// Segments named by a seal record are missing, ids `first ..= last`.
    MissingSegments {
        /// The first missing id.
        first: u64,
        /// The last missing id.
        last: u64,
    },
    /// Damage replay refuses even in skip mode: the channel cannot open.
    Unrecoverable(CorruptionKind),
    /// A segment that is not what its name says, or belongs to another channel.
    Foreign(String),
    /// `channel.meta` does not verify (the engine refuses to open).
    Identity(CorruptionKind),
}

impl ProblemKind {
    /// A short machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Damage(k) => kind_code(k),
            Self::SegmentHeader(_) => "segment_header",
            Self::MissingSegments { .. } => "missing_segment",
            Self::Unrecoverable(_) => "unrecoverable",
            Self::Foreign(_) => "foreign_file",
            Self::Identity(_) => "identity",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Damage(k) => write!(f, "{k}"),
            Self::SegmentHeader(k) => write!(f, "segment header damaged: {k}"),
            Self::MissingSegments { first, last } if first == last => {
                write!(f, "segment {first} is missing (a seal record names it)")
            }
            Self::MissingSegments { first, last } => {
                write!(
                    f,
                    "segments {first} to {last} are missing (a seal record names {first})"
                )
            }
            Self::Unrecoverable(k) => {
                write!(f, "{k}; the channel cannot open even in skip-damaged mode")
            }
            Self::Foreign(r) => write!(f, "{r}"),
            Self::Identity(k) => write!(f, "channel.meta is not a valid identity file: {k}"),
        }
    }
}

/// One problem found, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The segment, for problems in the log.
    pub segment: Option<u64>,
    /// Byte offset in the file where it starts.
    pub offset: u64,
    /// Bytes affected (0 where nothing can be pointed at, e.g. a missing segment).
    pub bytes: u64,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Events lost, counted exactly from the sequence gap (unknown for unrecoverable damage).
    pub events_lost: Option<u64>,
    /// The first lost sequence number, where known.
    pub first_lost_seq: Option<u64>,
}

/// Why a checkpoint disagrees with the log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disagreement {
    /// It belongs to another channel.
    OtherChannel {
        /// Its channel id.
        found: u64,
        /// This channel's.
        expected: u64,
    },
    /// A segment it names (position or read start) does not exist.
    MissingSegment {
        /// The id.
        id: u64,
        /// Events it knew of beyond the end of the log (its next sequence number minus the
        /// log's), when the segment would be past the newest one.
        events_past_log: u64,
    },
    /// The live segments from its first live segment on do not have consecutive ids.
    NonConsecutive {
        /// The first missing id.
        missing: u64,
    },
    /// A position it names is not where a record starts (or past the valid data).
    NotARecordBoundary {
        /// Which position ("position" or "read start").
        which: &'static str,
        /// Segment.
        segment: u64,
        /// Offset.
        offset: u64,
        /// Where that segment's valid data ends.
        valid_end: u64,
    },
    /// Its next sequence number is not the log's at its position.
    NextSeq {
        /// In the checkpoint.
        checkpoint: u64,
        /// In the log.
        log: u64,
    },
    /// The record at its read start begins after its low-water mark.
    ReadStartAfterLowWaterMark {
        /// The sequence number at the read start.
        read_start_seq: u64,
        /// Its low-water mark.
        low_water_mark: u64,
    },
    /// Its first live segment is after its read start.
    FirstLiveAfterReadStart {
        /// First live segment.
        first_live: u64,
        /// Read start segment.
        read_start: u64,
    },
    /// The log says these sequence numbers were consumed before its position; it does not.
    ConsumedMissing {
        /// First.
        start: u64,
        /// One past the last.
        end: u64,
    },
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherChannel { found, expected } => write!(
                f,
                "belongs to channel {found:#018x}, this channel is {expected:#018x}"
            ),
            Self::MissingSegment { id, events_past_log: 0 } => {
                write!(f, "segment {id} it names does not exist")
            }
            Self::MissingSegment { id, events_past_log } => write!(
                f,
                "segment {id} it names does not exist: the log lost its end ({events_past_log} events the checkpoint knew of are missing)"
            ),
            Self::NonConsecutive { missing } => write!(f, "segment {missing} is missing"),
            Self::NotARecordBoundary {
                which,
                segment,
                offset,
                valid_end,
            } if offset > valid_end => write!(
                f,
                "its {which} {segment}:{offset} is past the end of the valid data of segment {segment} ({valid_end})"
            ),
            Self::NotARecordBoundary {
                which,
                segment,
                offset,
                ..
            } => write!(f, "its {which} {segment}:{offset} is not a record boundary"),
            Self::NextSeq { checkpoint, log } => write!(
                f,
                "next sequence number {checkpoint}, but the log says {log} at its position"
            ),
            Self::ReadStartAfterLowWaterMark {
                read_start_seq,
                low_water_mark,
            } => write!(
                f,
                "its read start is at sequence {read_start_seq}, after its low-water mark {low_water_mark}"
            ),
            Self::FirstLiveAfterReadStart {
                first_live,
                read_start,
            } => write!(
                f,
                "first live segment {first_live} is after its read start segment {read_start}"
            ),
            Self::ConsumedMissing { start, end } => write!(
                f,
                "the log consumed sequence numbers {start}..{end} before its position, it does not"
            ),
        }
    }
}

/// A checkpoint's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointStatus {
    /// Decodes and agrees with the log.
    Valid,
    /// An older generation naming segments deleted since a newer valid checkpoint: normal.
    Superseded {
        /// A deleted segment it names.
        segment: u64,
    },
    /// Does not decode.
    Invalid(CheckpointReadError),
    /// Decodes but disagrees with the log.
    Disagrees(Disagreement),
}

impl CheckpointStatus {
    /// Whether this is a problem (invalid or disagreeing).
    pub fn is_problem(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Disagrees(_))
    }

    /// A short machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Superseded { .. } => "superseded",
            Self::Invalid(_) => "invalid",
            Self::Disagrees(_) => "disagrees",
        }
    }
}

impl fmt::Display for CheckpointStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid => write!(f, "valid"),
            Self::Superseded { segment } => write!(
                f,
                "superseded (names segment {segment}, deleted after a newer checkpoint)"
            ),
            Self::Invalid(e) => write!(f, "invalid: {e}"),
            Self::Disagrees(d) => write!(f, "disagrees with the log: {d}"),
        }
    }
}

/// One checkpoint file checked.
#[derive(Clone, Debug)]
pub struct CheckpointCheck {
    /// The file.
    pub path: PathBuf,
    /// Generation from its name.
    pub generation: u64,
    /// File length.
    pub bytes: u64,
    /// The decoded content, if it decodes.
    pub checkpoint: Option<Checkpoint>,
    /// The verdict.
    pub status: CheckpointStatus,
    /// Whether an open would start from it (the engine's own, looser, test).
    pub used_by_open: bool,
}

/// One segment file's figures.
#[derive(Clone, Debug)]
pub struct SegmentSummary {
    /// Id.
    pub id: u64,
    /// File.
    pub path: PathBuf,
    /// File length.
    pub file_bytes: u64,
    /// Its header, or why it does not decode.
    pub header: Result<SegmentHeader, CorruptionKind>,
    /// Valid records.
    pub records: u64,
    /// Events in its valid put records.
    pub events: u64,
    /// Bytes of its valid records (padding included).
    pub record_bytes: u64,
    /// Where its valid data ends.
    pub valid_end: u64,
    /// Whether it ends with a seal record.
    pub sealed: bool,
    /// Whether a checkpoint freed it (the engine removes it at open).
    pub orphan: bool,
}

/// What `verify` found.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The channel directory.
    pub dir: PathBuf,
    /// The channel id (from `channel.meta`, else the segment headers).
    pub channel_id: Option<u64>,
    /// `channel.meta`.
    pub meta: MetaState,
    /// Whether a live process holds the directory (probed on the real file system only).
    pub lock: Option<lock::LockState>,
    /// Segment files.
    pub segments: Vec<SegmentSummary>,
    /// Valid records in all segments.
    pub records: u64,
    /// Events in valid put records.
    pub events: u64,
    /// Bytes of valid records.
    pub bytes: u64,
    /// Bytes of segment files on disk.
    pub file_bytes: u64,
    /// First sequence number in the log.
    pub first_seq: Option<u64>,
    /// Next sequence number at the end of the log.
    pub next_seq: u64,
    /// The torn tail of the newest segment (not corruption).
    pub torn_tail: Option<TornTail>,
    /// Corruption found in the log and the identity file.
    pub problems: Vec<Problem>,
    /// Damage inside orphan segments, which the engine removes at open: not counted.
    pub ignored: Vec<Problem>,
    /// Every checkpoint file, newest first.
    pub checkpoints: Vec<CheckpointCheck>,
    /// Segments a checkpoint freed, removed at open.
    pub orphans: Vec<PathBuf>,
    /// Whether a `checkpoint.tmp` from an interrupted checkpoint is present.
    pub checkpoint_tmp: bool,
    /// Files the engine ignores.
    pub other_files: Vec<String>,
    /// Time taken.
    pub took: Duration,
}

impl VerifyReport {
    /// Whether any corruption was found (log, identity or checkpoints). A torn tail is not.
    pub fn is_corrupt(&self) -> bool {
        !self.problems.is_empty() || self.checkpoints.iter().any(|c| c.status.is_problem())
    }

    /// Events lost to the problems found (where known).
    pub fn events_lost(&self) -> u64 {
        self.problems.iter().filter_map(|p| p.events_lost).sum()
    }
}

/// Options of [`verify`].
#[derive(Clone, Default)]
pub struct VerifyOptions {
    /// Called as segments are done.
    pub progress: Option<ProgressFn>,
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions").finish_non_exhaustive()
    }
}

/// Everything `verify` learnt, for `repair`.
#[derive(Debug)]
pub(crate) struct Analysis {
    pub report: VerifyReport,
    pub walk: Walk,
}

/// Verifies the channel directory `dir`. Never writes.
pub fn verify(dir: &ChannelDir, opts: &VerifyOptions) -> Result<VerifyReport, InspectError> {
    analyze(dir, opts).map(|a| a.report)
}

pub(crate) fn analyze(dir: &ChannelDir, opts: &VerifyOptions) -> Result<Analysis, InspectError> {
    let started = Instant::now();
    let lock = if dir.real_fs {
        Some(lock::probe(&dir.dir)?)
    } else {
        None
    };
    if let MetaState::Unreadable(e) = &dir.meta {
        return Err(InspectError::Io {
            op: "read",
            path: dir.dir.join(crate::identity::META_FILE_NAME),
            source: std::io::Error::other(e.clone()),
        });
    }
    let cps = dir.read_checkpoints();
    let channel_id = dir.channel_id();
    let meta_id = match dir.meta {
        MetaState::Valid(id) => Some(id),
        _ => None,
    };

    // 1. Full replay.
    let progress = opts.progress.clone();
    let replay_progress = progress.clone().map(|p| {
        Arc::new(move |r: ReplayProgress| {
            p(Progress {
                phase: "replay",
                done: r.segments_done,
                total: r.segments_total,
            })
        }) as crate::replay::ProgressFn
    });
    let full = replay(
        dir.storage.as_ref(),
        &dir.dir,
        &dir.segment_dirs,
        ReplayOptions {
            writable: false,
            channel_id: meta_id,
            mode: crate::config::RecoveryMode::SkipDamaged,
            ignore_checkpoints: true,
            progress: replay_progress,
        },
    );
    let full = match full {
        Ok(r) => Ok(r),
        Err(OpenError::Corrupt(c)) => Err(Problem {
            file: c.file,
            segment: Some(c.segment),
            offset: c.offset,
            bytes: 0,
            kind: ProblemKind::Unrecoverable(c.kind),
            events_lost: None,
            first_lost_seq: None,
        }),
        Err(OpenError::Foreign { path, reason }) => {
            let segment = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(crate::format::segment_header::parse_segment_file_name);
            Err(Problem {
                file: path,
                segment,
                offset: 0,
                bytes: 0,
                kind: ProblemKind::Foreign(reason),
                events_lost: None,
                first_lost_seq: None,
            })
        }
        Err(e) => return Err(InspectError::from_open(e)),
    };

    // 2. Walk, with the positions of interest.
    let mut interest: HashMap<(u64, u64), bool> = HashMap::new();
    for c in &cps {
        if let Ok(cp) = &c.decoded {
            interest.insert(cp.position, true);
            interest.entry(cp.read_start).or_insert(false);
        }
    }
    if let Ok(r) = &full {
        for d in &r.damage {
            interest.entry((d.at.segment, d.at.offset)).or_insert(false);
        }
    }
    let walk_progress = |done: usize, total: usize| {
        if let Some(p) = &progress {
            p(Progress {
                phase: "scan",
                done,
                total,
            });
        }
    };
    let walk = walk(
        dir.storage.as_ref(),
        &dir.segments,
        &interest,
        &walk_progress,
    )
    .map_err(InspectError::io("read segments in", &dir.dir))?;

    // Which checkpoint an open would use (the engine's test), and the orphans it frees.
    let open_choice = engine_choice(dir, &cps, meta_id);
    let first_live = open_choice
        .and_then(|i| cps.get(i))
        .and_then(|c| c.decoded.as_ref().ok())
        .map_or(0, |cp| cp.first_live_segment);
    let orphans: Vec<PathBuf> = dir
        .segments
        .iter()
        .filter(|s| s.id < first_live)
        .map(|s| s.path.clone())
        .collect();

    // 3. Problems from the replay.
    let mut problems = Vec::new();
    let mut ignored = Vec::new();
    if let MetaState::Invalid(kind) = &dir.meta {
        problems.push(Problem {
            file: dir.dir.join(crate::identity::META_FILE_NAME),
            segment: None,
            offset: 0,
            bytes: 0,
            kind: ProblemKind::Identity(kind.clone()),
            events_lost: None,
            first_lost_seq: None,
        });
    }
    let torn_tail = match full {
        Ok(r) => {
            for d in &r.damage {
                let p = classify(d, &walk);
                if d.at.segment < first_live || orphans.contains(&d.at.file) {
                    ignored.push(p);
                } else {
                    problems.push(p);
                }
            }
            // An empty newest segment (valid header, zeros after it) is what every rotation
            // and every open that wrote nothing leaves; replay drops and recreates it.
            r.torn_tail
                .filter(|t| !(t.removed_file && walk.segment(t.segment).is_some_and(|s| s.empty)))
        }
        Err(p) => {
            problems.push(p);
            None
        }
    };

    // 4. Checkpoints.
    let checkpoints = check_checkpoints(dir, &cps, channel_id, &walk, open_choice);

    let segments: Vec<SegmentSummary> = walk
        .segments
        .iter()
        .map(|s| SegmentSummary {
            id: s.id,
            path: s.path.clone(),
            file_bytes: s.file_len,
            header: s.header.clone(),
            records: s.records,
            events: s.put_events,
            record_bytes: s.record_bytes,
            valid_end: s.valid_end,
            sealed: s.seal.is_some(),
            orphan: s.id < first_live,
        })
        .collect();
    let report = VerifyReport {
        dir: dir.dir.clone(),
        channel_id,
        meta: dir.meta.clone(),
        lock,
        file_bytes: segments.iter().map(|s| s.file_bytes).sum(),
        segments,
        records: walk.records(),
        events: walk.put_events(),
        bytes: walk.record_bytes(),
        first_seq: walk.first_seq,
        next_seq: walk.next_seq,
        torn_tail,
        problems,
        ignored,
        checkpoints,
        orphans,
        checkpoint_tmp: dir.checkpoint_tmp,
        other_files: dir.other_files.clone(),
        took: started.elapsed(),
    };
    Ok(Analysis { report, walk })
}

/// Turns a damage entry of the replay into a problem, recognising damaged headers and missing
/// segments.
fn classify(d: &crate::replay::Damage, walk: &Walk) -> Problem {
    let seg = walk.segments.iter().position(|s| s.path == d.at.file);
    let base = Problem {
        file: d.at.file.clone(),
        segment: Some(d.at.segment),
        offset: d.at.offset,
        bytes: d.bytes,
        kind: ProblemKind::Damage(d.at.kind.clone()),
        events_lost: Some(d.events_lost),
        first_lost_seq: walk
            .at
            .get(&(d.at.segment, d.at.offset))
            .map(|p| p.next_seq),
    };
    let Some(i) = seg else {
        return base;
    };
    let s = &walk.segments[i];
    if d.at.offset == 0 && s.id == d.at.segment && s.header.is_err() {
        return Problem {
            kind: ProblemKind::SegmentHeader(d.at.kind.clone()),
            first_lost_seq: None,
            ..base
        };
    }
    if d.at.offset == 0 && d.bytes == 0 && matches!(d.at.kind, CorruptionKind::BadPayload { .. }) {
        if let (Some(seal), Some(next)) = (s.seal, walk.segments.get(i + 1)) {
            if seal.next_segment_id < next.id && seal.next_segment_id > s.id {
                return Problem {
                    segment: Some(s.id),
                    offset: s.valid_end,
                    kind: ProblemKind::MissingSegments {
                        first: seal.next_segment_id,
                        last: next.id - 1,
                    },
                    first_lost_seq: Some(seal.next_seq),
                    ..base
                };
            }
        }
    }
    base
}

/// The index of the checkpoint an open would start from: the newest that decodes, belongs to
/// the channel, names existing live segments, and whose live segments are consecutive.
fn engine_choice(dir: &ChannelDir, cps: &[CheckpointFile], meta_id: Option<u64>) -> Option<usize> {
    let ids: Vec<u64> = dir.segments.iter().map(|s| s.id).collect();
    cps.iter().position(|c| {
        let Ok(cp) = &c.decoded else {
            return false;
        };
        if meta_id.is_some_and(|id| id != cp.channel_id) {
            return false;
        }
        let live: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&id| id >= cp.first_live_segment)
            .collect();
        live.contains(&cp.position.0)
            && live.contains(&cp.read_start.0)
            && live.windows(2).all(|w| w[1] == w[0] + 1)
    })
}

fn check_checkpoints(
    dir: &ChannelDir,
    cps: &[CheckpointFile],
    channel_id: Option<u64>,
    walk: &Walk,
    open_choice: Option<usize>,
) -> Vec<CheckpointCheck> {
    let ids: Vec<u64> = dir.segments.iter().map(|s| s.id).collect();
    let first_on_disk = ids.first().copied().unwrap_or(0);
    let newest_on_disk = ids.last().copied().unwrap_or(0);
    let mut newer_valid = false;
    let mut out = Vec::with_capacity(cps.len());
    for (i, c) in cps.iter().enumerate() {
        let status = match &c.decoded {
            Err(e) => CheckpointStatus::Invalid(e.clone()),
            Ok(cp) => {
                let s = check_one(cp, channel_id, &ids, walk);
                match s {
                    CheckpointStatus::Disagrees(Disagreement::MissingSegment { id, .. })
                        if newer_valid && id < first_on_disk =>
                    {
                        CheckpointStatus::Superseded { segment: id }
                    }
                    CheckpointStatus::Disagrees(Disagreement::MissingSegment { id, .. })
                        if id > newest_on_disk =>
                    {
                        CheckpointStatus::Disagrees(Disagreement::MissingSegment {
                            id,
                            events_past_log: cp.next_seq.saturating_sub(walk.next_seq),
                        })
                    }
                    other => other,
                }
            }
        };
        if status == CheckpointStatus::Valid {
            newer_valid = true;
        }
        out.push(CheckpointCheck {
            path: c.path.clone(),
            generation: c.generation,
            bytes: c.bytes,
            checkpoint: c.decoded.as_ref().ok().cloned(),
            status,
            used_by_open: open_choice == Some(i),
        });
    }
    out
}

fn check_one(
    cp: &Checkpoint,
    channel_id: Option<u64>,
    ids: &[u64],
    walk: &Walk,
) -> CheckpointStatus {
    use CheckpointStatus::Disagrees;
    if let Some(expected) = channel_id {
        if cp.channel_id != expected {
            return Disagrees(Disagreement::OtherChannel {
                found: cp.channel_id,
                expected,
            });
        }
    }
    let live: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|&id| id >= cp.first_live_segment)
        .collect();
    for id in [cp.read_start.0, cp.position.0] {
        if !live.contains(&id) {
            return Disagrees(Disagreement::MissingSegment {
                id,
                events_past_log: 0,
            });
        }
    }
    if let Some(w) = live.windows(2).find(|w| w[1] != w[0] + 1) {
        return Disagrees(Disagreement::NonConsecutive { missing: w[0] + 1 });
    }
    if cp.first_live_segment > cp.read_start.0 {
        return Disagrees(Disagreement::FirstLiveAfterReadStart {
            first_live: cp.first_live_segment,
            read_start: cp.read_start.0,
        });
    }
    let boundary = |which: &'static str, pos: (u64, u64)| Disagreement::NotARecordBoundary {
        which,
        segment: pos.0,
        offset: pos.1,
        valid_end: walk.segment(pos.0).map_or(0, |s| s.valid_end),
    };
    let Some(at) = walk.at.get(&cp.position) else {
        return Disagrees(boundary("position", cp.position));
    };
    if at.next_seq != cp.next_seq {
        return Disagrees(Disagreement::NextSeq {
            checkpoint: cp.next_seq,
            log: at.next_seq,
        });
    }
    let Some(rs) = walk.at.get(&cp.read_start) else {
        return Disagrees(boundary("read start", cp.read_start));
    };
    if rs.next_seq > cp.low_water_mark {
        return Disagrees(Disagreement::ReadStartAfterLowWaterMark {
            read_start_seq: rs.next_seq,
            low_water_mark: cp.low_water_mark,
        });
    }
    if let (Some(log), Some(first)) = (&at.consumed, walk.first_seq) {
        let lwm = log.low_water_mark();
        let mut ranges = Vec::with_capacity(log.range_count() + 1);
        if lwm > first {
            ranges.push((first, lwm));
        }
        ranges.extend(log.ranges());
        for (s, e) in ranges {
            if let Some(missing) = not_contained(cp, s, e) {
                return Disagrees(Disagreement::ConsumedMissing {
                    start: missing.0,
                    end: missing.1,
                });
            }
        }
    }
    CheckpointStatus::Valid
}

/// The part of `[s, e)` the checkpoint does not hold consumed, if any (its first stretch).
fn not_contained(cp: &Checkpoint, s: u64, e: u64) -> Option<(u64, u64)> {
    let s = s.max(cp.low_water_mark);
    if s >= e {
        return None;
    }
    // The checkpoint's ranges are ascending and disjoint (checked when it was decoded).
    let i = cp.ranges.partition_point(|&(_, end)| end <= s);
    match cp.ranges.get(i) {
        Some(&(a, b)) if a <= s => {
            if e <= b {
                None
            } else {
                Some((b, e))
            }
        }
        Some(&(a, _)) => Some((s, a.min(e))),
        None => Some((s, e)),
    }
}
