//! `repair`: turns what [`verify`](super::verify) found into a plan, and applies it under the
//! directory lock.
//!
//! What each finding becomes (`docs/operations.md`, "When something broke", is the operator's
//! version of this list):
//!
//! - **Torn tail** of the newest segment: its non-zero bytes are copied to `quarantine/`, then
//!   the file is cut at the end of the last valid record (or removed, for a newest segment whose
//!   header never became durable). Nothing there was acknowledged.
//! - **Damaged range** inside a segment: its bytes are copied to `quarantine/` with a note, then
//!   overwritten in place with gap records (type 4) that fill it exactly and name the lost
//!   sequence numbers, so every later record keeps its offset and checkpoints stay meaningful.
//!   A range longer than one record (64 MiB) gets several. A finished segment whose end is
//!   damaged (no later valid record) gets gap records up to the end of its data and a new seal
//!   record naming the next segment.
//! - **Damaged segment header** of a segment holding records: rebuilt from the file name, the
//!   channel id and the first sequence number (the previous segment's seal, else the segment's
//!   first record, else the next segment's header). Its 64 old bytes are quarantined. The
//!   records inside are intact, so no event is lost; damage inside the segment is found in the
//!   same pass (replay reads through a damaged header), or else repaired in the next round.
//! - **Missing segment** named by a seal: a tombstone segment is created in its place — header,
//!   a gap record for the events that were in it, and a seal naming the next segment — so the
//!   segment ids stay consecutive (checkpoints require it).
//! - **Invalid `channel.meta`**: moved to `quarantine/` and rewritten from the segment headers.
//! - **Checkpoints**: invalid or disagreeing ones are moved to `quarantine/`; a valid one is
//!   kept when nothing below its position is rewritten (it may reflect take commits whose
//!   records never became durable, which the log alone cannot rebuild), otherwise deleted (it
//!   is derived state, and it would not reflect the events the gap records give up); a leftover
//!   `checkpoint.tmp` is removed. After the log is fixed the channel is opened once through the
//!   engine itself (strict mode), which writes a fresh checkpoint, and closed. When damage
//!   below a checkpoint's position forces a rebuild from the log alone, take commits only that
//!   checkpoint reflected (acknowledged within `take_sync_interval_ms` before a crash) are lost
//!   and their events delivered again: at-least-once, never an event lost.
//! - **Orphan segments** a checkpoint had freed are removed first, as open would remove them.
//!
//! What is not repaired (reported, exit 1): damage that replay refuses even in skip mode (e.g. a
//! record after a seal, a sequence going backwards), files of another channel or not what their
//! name says, a damaged header whose first sequence number nothing tells, and a sequence gap
//! with no damaged bytes to write a gap record into.
//!
//! `strict` refuses the whole repair, changing nothing, if the log holds damage (anything that
//! would lose or rewrite log data other than a torn tail); torn tails, checkpoints and the
//! identity file are still repaired.
//!
//! Durability: every file written is fsynced, every directory changed is fsynced, and every
//! byte overwritten was first copied to `quarantine/` and fsynced. A crash during a repair
//! leaves a directory that opens (checkpoints are moved away before the log is touched) and that
//! a second repair finishes. Finally `quarantine/report.json` lists every action and the exact
//! events and bytes lost (a previous report is kept as `report-<unix ms>.json`).

use super::json::Json;
use super::verify::{
    analyze, Analysis, CheckpointStatus, Problem, ProblemKind, VerifyOptions, VerifyReport,
};
use super::view_storage::ViewStorage;
use super::walk::Walk;
use super::{lock, now_unix_ms, ChannelDir, InspectError};
use crate::config::{ChannelConfig, RecoveryMode};
use crate::error::{Corruption, OpenError};
use crate::format::record::{
    align_up, PendingRecord, RecordKind, RecordPlace, SealPayload, RECORD_HEADER_BYTES,
};
use crate::format::segment_header::{segment_file_name, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::identity;
use crate::limits::MAX_RECORD_BYTES;
use crate::quarantine::{self, QUARANTINE_DIR_NAME};
use crate::segment::dir_for_segment;
use crate::storage::{parent_dir, DynFile, Storage};
use crate::FileChannel;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most rounds of analyse-and-fix (a rebuilt header can reveal damage behind it).
pub const MAX_REPAIR_ROUNDS: usize = 8;

/// Smallest record: a gap record needs at least this many bytes.
const MIN_GAP_BYTES: u64 = RECORD_HEADER_BYTES as u64;

/// Options of a repair.
#[derive(Clone, Debug, Default)]
pub struct RepairOptions {
    /// Refuse to repair damage in the log (torn tails, checkpoints and identity only).
    pub strict: bool,
}

/// A seal record to write after gap records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealPlan {
    /// Where.
    pub offset: u64,
    /// The segment it names.
    pub next_segment: u64,
    /// The sequence number the next segment starts with.
    pub next_seq: u64,
}

/// One step of a repair.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Remove a segment a valid checkpoint freed (as open does).
    RemoveOrphan {
        /// Segment id.
        segment: u64,
        /// File.
        path: PathBuf,
    },
    /// Move a checkpoint that is invalid or disagrees with the log to `quarantine/`.
    QuarantineCheckpoint {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Delete a valid (or superseded) checkpoint: it is rebuilt at the end.
    RemoveCheckpoint {
        /// File.
        path: PathBuf,
    },
    /// Remove the leftover of an interrupted checkpoint write.
    RemoveCheckpointTmp {
        /// File.
        path: PathBuf,
    },
    /// Move an invalid `channel.meta` to `quarantine/` and write a new one.
    RewriteIdentity {
        /// File.
        path: PathBuf,
        /// The channel id from the segment headers.
        channel_id: u64,
    },
    /// Rewrite a damaged segment header.
    RebuildSegmentHeader {
        /// Segment.
        segment: u64,
        /// File.
        path: PathBuf,
        /// Channel id written.
        channel_id: u64,
        /// First sequence number written.
        first_seq: u64,
        /// Where the first sequence number comes from.
        source: &'static str,
        /// What was wrong with the old header.
        kind: CorruptionKind,
    },
    /// Copy a damaged range to `quarantine/` and overwrite it with gap records (and a seal).
    FillWithGap {
        /// Segment.
        segment: u64,
        /// File.
        path: PathBuf,
        /// Start of the range.
        offset: u64,
        /// Damaged bytes (copied to quarantine).
        damaged_bytes: u64,
        /// Bytes the gap records cover (the damaged bytes rounded up to whole records).
        fill_bytes: u64,
        /// First lost sequence number.
        first_seq: u64,
        /// Events lost.
        events: u64,
        /// What was wrong.
        kind: CorruptionKind,
        /// A seal record written after the gap records.
        seal: Option<SealPlan>,
    },
    /// Create a tombstone for a missing segment.
    CreateTombstone {
        /// Segment.
        segment: u64,
        /// File to create.
        path: PathBuf,
        /// Its first sequence number.
        first_seq: u64,
        /// Events that were in it (a gap record names them).
        events: u64,
        /// The next segment's first sequence number (its seal).
        next_seq: u64,
    },
    /// Cut the torn tail of the newest segment.
    TruncateTornTail {
        /// Segment.
        segment: u64,
        /// File.
        path: PathBuf,
        /// Where valid data ends.
        offset: u64,
        /// Bytes cut.
        bytes: u64,
    },
    /// Remove a newest segment whose header never became durable.
    RemoveTornSegment {
        /// Segment.
        segment: u64,
        /// File.
        path: PathBuf,
        /// Its length.
        bytes: u64,
    },
    /// Open the channel once through the engine (strict, full replay) to write a checkpoint.
    RebuildCheckpoint,
}

impl Action {
    /// A short machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RemoveOrphan { .. } => "remove_orphan_segment",
            Self::QuarantineCheckpoint { .. } => "quarantine_checkpoint",
            Self::RemoveCheckpoint { .. } => "remove_checkpoint",
            Self::RemoveCheckpointTmp { .. } => "remove_checkpoint_tmp",
            Self::RewriteIdentity { .. } => "rewrite_identity",
            Self::RebuildSegmentHeader { .. } => "rebuild_segment_header",
            Self::FillWithGap { .. } => "replace_with_gap_records",
            Self::CreateTombstone { .. } => "create_tombstone_segment",
            Self::TruncateTornTail { .. } => "truncate_torn_tail",
            Self::RemoveTornSegment { .. } => "remove_torn_segment",
            Self::RebuildCheckpoint => "rebuild_checkpoint",
        }
    }

    /// Events this action gives up (already lost to the damage it replaces).
    pub fn events_lost(&self) -> u64 {
        match self {
            Self::FillWithGap { events, .. } | Self::CreateTombstone { events, .. } => *events,
            _ => 0,
        }
    }

    /// The action as a JSON object (for `report.json` and the tool).
    pub fn to_json(&self) -> Json {
        let j = Json::obj().with("action", self.code());
        match self {
            Self::RemoveOrphan { segment, path } => {
                j.with("segment", *segment).with("file", path.as_path())
            }
            Self::QuarantineCheckpoint { path, reason } => j
                .with("file", path.as_path())
                .with("reason", reason.as_str()),
            Self::RemoveCheckpoint { path } | Self::RemoveCheckpointTmp { path } => {
                j.with("file", path.as_path())
            }
            Self::RewriteIdentity { path, channel_id } => j
                .with("file", path.as_path())
                .with("channel_id", format!("{channel_id:#018x}")),
            Self::RebuildSegmentHeader {
                segment,
                path,
                channel_id,
                first_seq,
                source,
                kind,
            } => j
                .with("segment", *segment)
                .with("kind", super::kind_code(kind))
                .with("detail", kind.to_string())
                .with("file", path.as_path())
                .with("channel_id", format!("{channel_id:#018x}"))
                .with("first_seq", *first_seq)
                .with("first_seq_from", *source),
            Self::FillWithGap {
                segment,
                path,
                offset,
                damaged_bytes,
                fill_bytes,
                first_seq,
                events,
                kind,
                seal,
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("offset", *offset)
                .with("bytes", *damaged_bytes)
                .with("gap_bytes", *fill_bytes)
                .with("kind", super::kind_code(kind))
                .with("detail", kind.to_string())
                .with("events_lost", *events)
                .with(
                    "lost_seqs",
                    Json::Arr(vec![(*first_seq).into(), (first_seq + events).into()]),
                )
                .with(
                    "seal",
                    seal.map(|s| {
                        Json::obj()
                            .with("offset", s.offset)
                            .with("next_segment", s.next_segment)
                            .with("next_seq", s.next_seq)
                    }),
                ),
            Self::CreateTombstone {
                segment,
                path,
                first_seq,
                events,
                next_seq,
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("events_lost", *events)
                .with(
                    "lost_seqs",
                    Json::Arr(vec![(*first_seq).into(), (first_seq + events).into()]),
                )
                .with("next_seq", *next_seq),
            Self::TruncateTornTail {
                segment,
                path,
                offset,
                bytes,
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("offset", *offset)
                .with("bytes", *bytes),
            Self::RemoveTornSegment {
                segment,
                path,
                bytes,
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("bytes", *bytes),
            Self::RebuildCheckpoint => j,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemoveOrphan { segment, path } => write!(
                f,
                "remove orphan segment {segment} ({}): a valid checkpoint freed it; open would remove it too",
                path.display()
            ),
            Self::QuarantineCheckpoint { path, reason } => write!(
                f,
                "move checkpoint {} to quarantine/ ({reason})",
                path.display()
            ),
            Self::RemoveCheckpoint { path } => write!(
                f,
                "delete checkpoint {} (rebuilt at the end)",
                path.display()
            ),
            Self::RemoveCheckpointTmp { path } => write!(
                f,
                "remove {} (an interrupted checkpoint write)",
                path.display()
            ),
            Self::RewriteIdentity { path, channel_id } => write!(
                f,
                "move {} to quarantine/ and write a new one for channel {channel_id:#018x} (from the segment headers)",
                path.display()
            ),
            Self::RebuildSegmentHeader {
                segment,
                path,
                first_seq,
                source,
                kind,
                ..
            } => write!(
                f,
                "rebuild the header of segment {segment} ({}; {kind}) with first sequence {first_seq} (from {source}); its old 64 bytes go to quarantine/; no event is lost",
                path.display()
            ),
            Self::FillWithGap {
                segment,
                path,
                offset,
                damaged_bytes,
                fill_bytes,
                first_seq,
                events,
                kind,
                seal,
            } => {
                write!(
                    f,
                    "segment {segment} ({}) offset {offset}: copy {damaged_bytes} damaged bytes to quarantine/ ({kind}) and overwrite {fill_bytes} bytes with gap records: {events} events lost",
                    path.display()
                )?;
                if *events > 0 {
                    write!(f, " (sequence {first_seq}..{})", first_seq + events)?;
                }
                if let Some(s) = seal {
                    write!(
                        f,
                        "; then write a seal at offset {} naming segment {} (next sequence {})",
                        s.offset, s.next_segment, s.next_seq
                    )?;
                }
                Ok(())
            }
            Self::CreateTombstone {
                segment,
                path,
                first_seq,
                events,
                next_seq,
            } => write!(
                f,
                "create tombstone segment {segment} ({}): header, a gap record for {events} lost events (sequence {first_seq}..{}), a seal naming segment {} at sequence {next_seq}",
                path.display(),
                first_seq + events,
                segment + 1
            ),
            Self::TruncateTornTail {
                segment,
                path,
                offset,
                bytes,
            } => write!(
                f,
                "truncate the torn tail of segment {segment} ({}) at offset {offset}: {bytes} bytes never acknowledged (non-zero ones copied to quarantine/)",
                path.display()
            ),
            Self::RemoveTornSegment {
                segment,
                path,
                bytes,
            } => write!(
                f,
                "remove segment {segment} ({}, {bytes} bytes): its header never became durable and it holds no record (non-zero bytes copied to quarantine/)",
                path.display()
            ),
            Self::RebuildCheckpoint => write!(
                f,
                "open the channel once (strict, full replay) so the engine writes a fresh checkpoint, then close it"
            ),
        }
    }
}

/// A problem the repair leaves alone, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unrepairable {
    /// The problem.
    pub problem: Problem,
    /// Why it is left alone, and what to do.
    pub reason: String,
}

/// A plan: what `--yes` would do.
#[derive(Clone, Debug)]
pub struct RepairPlan {
    /// What verify found.
    pub before: VerifyReport,
    /// The steps, in the order they run.
    pub actions: Vec<Action>,
    /// Problems left alone.
    pub unrepairable: Vec<Unrepairable>,
    /// With `strict`: the damage that makes it refuse (then `actions` is empty).
    pub refused_strict: Vec<Problem>,
    /// Remarks (e.g. segments whose header is rebuilt are checked again).
    pub notes: Vec<String>,
}

impl RepairPlan {
    /// Events the plan gives up (lost to the damage already).
    pub fn events_lost(&self) -> u64 {
        self.actions.iter().map(Action::events_lost).sum()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// An action done, and where its bytes went.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The action.
    pub action: Action,
    /// Files written to `quarantine/` for it.
    pub quarantined: Vec<PathBuf>,
}

/// What reopening the channel did.
#[derive(Clone, Debug)]
pub struct Reopened {
    /// Events pending after the reopen.
    pub pending_events: u64,
    /// Records the engine replayed.
    pub records: u64,
    /// Segments the engine created (a new active segment after a sealed one).
    pub created_segments: Vec<PathBuf>,
    /// Segments the engine deleted (fully consumed, freed by the new checkpoint).
    pub deleted_segments: Vec<PathBuf>,
    /// Checkpoint files now present.
    pub checkpoints: Vec<PathBuf>,
}

/// What `apply` did.
#[derive(Clone, Debug)]
pub struct RepairOutcome {
    /// The first round's plan (what a dry run shows).
    pub plan: RepairPlan,
    /// Rounds run.
    pub rounds: usize,
    /// Every action done, in order.
    pub applied: Vec<Applied>,
    /// Problems left alone.
    pub unrepairable: Vec<Unrepairable>,
    /// With `strict`: the damage that made it refuse.
    pub refused_strict: Vec<Problem>,
    /// The reopen that rebuilt the checkpoint, if it ran.
    pub reopened: Option<Reopened>,
    /// Why the reopen failed, if it did.
    pub reopen_error: Option<String>,
    /// Verify after the repair.
    pub after: Option<VerifyReport>,
    /// `quarantine/report.json`, if written.
    pub report_path: Option<PathBuf>,
}

impl RepairOutcome {
    /// Events lost (given up for damage), exactly.
    pub fn events_lost(&self) -> u64 {
        self.applied.iter().map(|a| a.action.events_lost()).sum()
    }

    /// Damaged bytes replaced by gap records.
    pub fn bytes_lost(&self) -> u64 {
        self.applied
            .iter()
            .map(|a| match &a.action {
                Action::FillWithGap { damaged_bytes, .. } => *damaged_bytes,
                _ => 0,
            })
            .sum()
    }

    /// Torn-tail bytes cut (never acknowledged).
    pub fn torn_bytes(&self) -> u64 {
        self.applied
            .iter()
            .map(|a| match &a.action {
                Action::TruncateTornTail { bytes, .. }
                | Action::RemoveTornSegment { bytes, .. } => *bytes,
                _ => 0,
            })
            .sum()
    }

    /// Whether the directory verifies clean now.
    pub fn is_clean(&self) -> bool {
        self.refused_strict.is_empty()
            && self.unrepairable.is_empty()
            && self.reopen_error.is_none()
            && !matches!(&self.after, Some(a) if a.is_corrupt())
    }
}

/// Plans a repair of `dir` without changing anything.
pub fn plan(
    dir: &ChannelDir,
    opts: &RepairOptions,
    verify_opts: &VerifyOptions,
) -> Result<RepairPlan, InspectError> {
    let a = analyze(dir, verify_opts)?;
    Ok(build_plan(dir, &a, opts.strict, true))
}

fn is_log_problem(p: &Problem) -> bool {
    !matches!(p.kind, ProblemKind::Identity(_))
}

/// The first sequence number of the segment at `idx` of the walk: its header, else what a
/// rebuilt header would hold.
fn first_seq_of(walk: &Walk, idx: usize) -> Option<(u64, &'static str)> {
    let s = walk.segments.get(idx)?;
    if let Ok(h) = &s.header {
        return Some((h.first_seq, "its header"));
    }
    if let Some(prev) = idx.checked_sub(1).and_then(|i| walk.segments.get(i)) {
        if let Some(seal) = prev.seal.filter(|seal| seal.next_segment_id == s.id) {
            return Some((seal.next_seq, "the previous segment's seal"));
        }
    }
    if let Some(seq) = s.first_seq_hint {
        return Some((seq, "its first record"));
    }
    let next = walk.segments.get(idx + 1)?;
    match &next.header {
        Ok(h) => Some((h.first_seq, "the next segment's header")),
        Err(_) => None,
    }
}

fn last_live_index(walk: &Walk) -> Option<usize> {
    walk.segments.iter().rposition(|s| !s.torn_creation)
}

fn build_plan(dir: &ChannelDir, a: &Analysis, strict: bool, first_round: bool) -> RepairPlan {
    let r = &a.report;
    let walk = &a.walk;
    let mut actions = Vec::new();
    let mut unrepairable = Vec::new();
    let mut notes = Vec::new();
    let refuse = |p: &Problem, reason: String, out: &mut Vec<Unrepairable>| {
        out.push(Unrepairable {
            problem: p.clone(),
            reason,
        });
    };
    let refused_strict: Vec<Problem> = if strict {
        r.problems
            .iter()
            .filter(|p| is_log_problem(p))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if !refused_strict.is_empty() {
        return RepairPlan {
            before: r.clone(),
            actions,
            unrepairable,
            refused_strict,
            notes,
        };
    }

    if first_round {
        for path in &r.orphans {
            if let Some(s) = dir.segments.iter().find(|s| &s.path == path) {
                actions.push(Action::RemoveOrphan {
                    segment: s.id,
                    path: path.clone(),
                });
            }
        }
    }
    let mut log_actions = Vec::new();
    let mut tombstones_planned: Vec<u64> = Vec::new();
    let last = last_live_index(walk);
    for p in &r.problems {
        match &p.kind {
            ProblemKind::Identity(_) => match walk.segments.iter().find_map(|s| s.header.as_ref().ok()) {
                Some(h) => log_actions.push(Action::RewriteIdentity {
                    path: p.file.clone(),
                    channel_id: h.channel_id,
                }),
                None => refuse(
                    p,
                    "no segment header verifies, so the channel id is unknown; restore channel.meta from a backup".into(),
                    &mut unrepairable,
                ),
            },
            ProblemKind::Unrecoverable(_) => refuse(
                p,
                "replay refuses this even in skip-damaged mode and there is no safe rewrite; move the segment away by hand after saving a copy, then repair again".into(),
                &mut unrepairable,
            ),
            ProblemKind::Foreign(_) => refuse(
                p,
                "the file is not a segment of this channel; move it out of the directory, then repair again".into(),
                &mut unrepairable,
            ),
            ProblemKind::SegmentHeader(kind) => {
                let Some(idx) = walk.segments.iter().position(|s| Some(s.id) == p.segment) else {
                    refuse(p, "the segment is not in the scan".into(), &mut unrepairable);
                    continue;
                };
                let Some(channel_id) = r.channel_id else {
                    refuse(p, "the channel id is unknown".into(), &mut unrepairable);
                    continue;
                };
                match first_seq_of(walk, idx) {
                    Some((first_seq, source)) => {
                        let s = &walk.segments[idx];
                        // Replay reads through a rebuilt header, so the damage behind it is
                        // normally among this round's problems; a note only if it is not.
                        let behind_reported = r.problems.iter().any(|q| {
                            q.segment == Some(s.id)
                                && !matches!(q.kind, ProblemKind::SegmentHeader(_))
                        });
                        if !s.bad.is_empty() && !behind_reported {
                            notes.push(format!(
                                "segment {} also has {} damaged range(s) behind its header; they are repaired in the next round, once the header is rebuilt",
                                s.id,
                                s.bad.len()
                            ));
                        }
                        log_actions.push(Action::RebuildSegmentHeader {
                            segment: s.id,
                            path: s.path.clone(),
                            channel_id,
                            first_seq,
                            source,
                            kind: kind.clone(),
                        });
                    }
                    None => refuse(
                        p,
                        "nothing tells the segment's first sequence number (no seal before it, no put record in it, no next segment)".into(),
                        &mut unrepairable,
                    ),
                }
            }
            ProblemKind::MissingSegments { first, last: last_missing } => {
                let (Some(first_seq), Some(next_idx)) = (
                    p.first_lost_seq,
                    walk.segments.iter().position(|s| s.id == last_missing + 1),
                ) else {
                    refuse(p, "the segments around the missing ones are not in the scan".into(), &mut unrepairable);
                    continue;
                };
                let Some((next_seq, _)) = first_seq_of(walk, next_idx) else {
                    refuse(p, "the first sequence number of the segment after the missing ones is unknown".into(), &mut unrepairable);
                    continue;
                };
                if next_seq < first_seq {
                    refuse(p, format!("the next segment starts at sequence {next_seq}, before the seal's {first_seq}"), &mut unrepairable);
                    continue;
                }
                for id in *first..=*last_missing {
                    tombstones_planned.push(id);
                    log_actions.push(Action::CreateTombstone {
                        segment: id,
                        path: dir_for_segment(&dir.segment_dirs, id).join(segment_file_name(id)),
                        first_seq: if id == *first { first_seq } else { next_seq },
                        events: if id == *first { next_seq - first_seq } else { 0 },
                        next_seq,
                    });
                }
            }
            ProblemKind::Damage(kind) => {
                plan_fill(dir, walk, last, p, kind, &mut log_actions, &mut tombstones_planned, &mut unrepairable);
            }
        }
    }
    actions.extend(log_actions);
    if let Some(t) = &r.torn_tail {
        if t.removed_file {
            actions.push(Action::RemoveTornSegment {
                segment: t.segment,
                path: t.path.clone(),
                bytes: t.bytes,
            });
        } else if t.bytes > 0 {
            actions.push(Action::TruncateTornTail {
                segment: t.segment,
                path: t.path.clone(),
                offset: t.offset,
                bytes: t.bytes,
            });
        }
    }
    let checkpoint_trouble =
        r.checkpoints.iter().any(|c| c.status.is_problem()) || r.checkpoint_tmp;
    if !actions.is_empty() || checkpoint_trouble {
        let mut cp_actions = Vec::new();
        for c in &r.checkpoints {
            if c.status.is_problem() {
                cp_actions.push(Action::QuarantineCheckpoint {
                    path: c.path.clone(),
                    reason: c.status.to_string(),
                });
                continue;
            }
            // A valid checkpoint stays if nothing below its position is rewritten: it may hold
            // take commits whose records never became durable, which the log alone cannot
            // rebuild (those events would be delivered again).
            let keep = c.status == CheckpointStatus::Valid
                && c.checkpoint
                    .as_ref()
                    .is_some_and(|cp| !actions.iter().any(|a| rewrites_below(a, cp.position)));
            if keep {
                notes.push(format!(
                    "checkpoint {} is valid and nothing below its position changes: kept",
                    c.path.display()
                ));
            } else {
                cp_actions.push(Action::RemoveCheckpoint {
                    path: c.path.clone(),
                });
            }
        }
        if r.checkpoint_tmp {
            cp_actions.push(Action::RemoveCheckpointTmp {
                path: dir.dir.join(crate::checkpoint::CHECKPOINT_TMP_NAME),
            });
        }
        // Checkpoints go before the log is touched: a crash mid-repair then opens by full replay.
        let orphans = actions
            .iter()
            .take_while(|a| matches!(a, Action::RemoveOrphan { .. }))
            .count();
        let rest = actions.split_off(orphans);
        actions.extend(cp_actions);
        actions.extend(rest);
        actions.push(Action::RebuildCheckpoint);
    }
    if !r.ignored.is_empty() {
        notes.push(format!(
            "{} damaged range(s) lie in orphan segments, which are removed rather than repaired",
            r.ignored.len()
        ));
    }
    RepairPlan {
        before: r.clone(),
        actions,
        unrepairable,
        refused_strict,
        notes,
    }
}

/// Whether `a` rewrites log bytes below `pos` (so a checkpoint at `pos` no longer reflects them).
fn rewrites_below(a: &Action, pos: (u64, u64)) -> bool {
    match a {
        Action::FillWithGap {
            segment, offset, ..
        } => (*segment, *offset) < pos,
        Action::RebuildSegmentHeader { segment, .. } | Action::CreateTombstone { segment, .. } => {
            *segment <= pos.0
        }
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_fill(
    dir: &ChannelDir,
    walk: &Walk,
    last: Option<usize>,
    p: &Problem,
    kind: &CorruptionKind,
    actions: &mut Vec<Action>,
    tombstones_planned: &mut Vec<u64>,
    unrepairable: &mut Vec<Unrepairable>,
) {
    let mut refuse = |reason: String| {
        unrepairable.push(Unrepairable {
            problem: p.clone(),
            reason,
        })
    };
    let Some(seg_id) = p.segment else {
        return refuse("no segment".into());
    };
    let Some(idx) = walk
        .segments
        .iter()
        .position(|s| s.id == seg_id && s.path == p.file)
    else {
        return refuse("the damaged segment is not in the scan".into());
    };
    let s = &walk.segments[idx];
    let events = p.events_lost.unwrap_or(0);
    let bad = s.bad.iter().find(|b| b.offset == p.offset);
    let is_last = last == Some(idx);
    let resumes_at = match bad {
        Some(b) => b.resumes_at,
        // A checksummed record whose payload is inconsistent: the range is the record.
        None if p.bytes > 0 => Some(p.offset + p.bytes),
        None => {
            return refuse(match kind {
                CorruptionKind::SequenceGap { expected, found } => format!(
                    "sequence numbers {expected}..{found} are missing between two valid records (a segment header or record jumps ahead) and there are no damaged bytes to write a gap record into; the events are lost either way and an open skips them"
                ),
                _ => "there are no damaged bytes to write a gap record into".into(),
            })
        }
    };
    let Some(first_seq) = p.first_lost_seq else {
        return refuse("the sequence number at the damage is unknown".into());
    };
    if p.offset < SEGMENT_HEADER_BYTES as u64 || p.offset & 7 != 0 {
        return refuse(format!(
            "the damage starts at an unaligned offset {}",
            p.offset
        ));
    }
    match resumes_at {
        Some(end) => {
            let len = end.saturating_sub(p.offset);
            if len < MIN_GAP_BYTES {
                return refuse(format!(
                    "the damaged range is {len} bytes, too short for a gap record ({MIN_GAP_BYTES})"
                ));
            }
            if !gap_counts_fit(len, events) {
                return refuse("too many events for the gap records that fit the range".into());
            }
            actions.push(Action::FillWithGap {
                segment: s.id,
                path: s.path.clone(),
                offset: p.offset,
                damaged_bytes: len,
                fill_bytes: len,
                first_seq,
                events,
                kind: kind.clone(),
                seal: None,
            });
        }
        None if is_last => refuse(
            "damage at the end of the newest segment with no later record is a torn tail; this should not happen".into(),
        ),
        None => {
            // A finished segment whose end is damaged or missing: gap records to the end of
            // its data, then a new seal naming the next segment.
            let Some(next) = walk.segments.get(idx + 1) else {
                return refuse("no segment follows".into());
            };
            let Some((next_seq, _)) = first_seq_of(walk, idx + 1) else {
                return refuse(format!(
                    "the first sequence number of segment {} is unknown",
                    next.id
                ));
            };
            if next_seq < first_seq {
                return refuse(format!(
                    "segment {} starts at sequence {next_seq}, before the damage's {first_seq}",
                    next.id
                ));
            }
            let events = next_seq - first_seq;
            let data_end = p.offset + p.bytes;
            let gap_end = if p.bytes > 0 || events > 0 {
                align_up(data_end.max(p.offset + MIN_GAP_BYTES))
            } else {
                p.offset
            };
            if !gap_counts_fit(gap_end - p.offset, events) {
                return refuse("too many events for the gap records that fit the range".into());
            }
            actions.push(Action::FillWithGap {
                segment: s.id,
                path: s.path.clone(),
                offset: p.offset,
                damaged_bytes: p.bytes,
                fill_bytes: gap_end - p.offset,
                first_seq,
                events,
                kind: kind.clone(),
                seal: Some(SealPlan {
                    offset: gap_end,
                    next_segment: s.id + 1,
                    next_seq,
                }),
            });
            for id in s.id + 1..next.id {
                if !tombstones_planned.contains(&id) {
                    tombstones_planned.push(id);
                    actions.push(Action::CreateTombstone {
                        segment: id,
                        path: dir_for_segment(&dir.segment_dirs, id).join(segment_file_name(id)),
                        first_seq: next_seq,
                        events: 0,
                        next_seq,
                    });
                }
            }
        }
    }
}

/// The pieces `[start, end)` is cut into: records of at most [`MAX_RECORD_BYTES`], none shorter
/// than a record header.
fn gap_pieces(start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let rem = end - pos;
        let len = if rem <= MAX_RECORD_BYTES {
            rem
        } else if rem - MAX_RECORD_BYTES >= MIN_GAP_BYTES {
            MAX_RECORD_BYTES
        } else {
            rem - MIN_GAP_BYTES
        };
        out.push((pos, len));
        pos += len;
    }
    out
}

fn gap_counts_fit(len: u64, events: u64) -> bool {
    let pieces = gap_pieces(0, len).len() as u64;
    pieces.saturating_mul(u64::from(u32::MAX)) >= events
}

fn gap_record(segment: u64, offset: u64, len: u64, first_seq: u64, events: u32) -> Vec<u8> {
    assert!(
        len >= MIN_GAP_BYTES && len & 7 == 0 && len <= MAX_RECORD_BYTES,
        "gap record of {len} bytes"
    );
    let mut p = PendingRecord::new(RecordKind::Gap, 0);
    p.bytes.resize(len as usize, 0);
    p.event_count = events;
    p.seal_payload();
    let mut out = Vec::with_capacity(len as usize);
    p.frame_into(
        RecordPlace {
            segment_id: segment,
            offset,
            durable_mark: offset,
        },
        first_seq,
        &mut out,
    );
    out
}

fn seal_record(segment: u64, offset: u64, next_segment: u64, next_seq: u64) -> Vec<u8> {
    let mut p = PendingRecord::new(RecordKind::Seal, 0);
    p.first_seq = next_seq;
    SealPayload {
        next_segment_id: next_segment,
        next_seq,
    }
    .encode_into(&mut p.bytes);
    p.seal_payload();
    let mut out = Vec::new();
    p.frame_into(
        RecordPlace {
            segment_id: segment,
            offset,
            durable_mark: offset,
        },
        next_seq,
        &mut out,
    );
    out
}

/// Writes gap records over `[start, end)` of `file`, carrying `events` lost events from
/// `first_seq` on.
fn write_gaps(
    file: &DynFile,
    segment: u64,
    start: u64,
    end: u64,
    first_seq: u64,
    events: u64,
) -> std::io::Result<()> {
    let mut seq = first_seq;
    let mut left = events;
    for (pos, len) in gap_pieces(start, end) {
        let n = left.min(u64::from(u32::MAX));
        file.write_at(&gap_record(segment, pos, len, seq, n as u32), pos)?;
        seq += n;
        left -= n;
    }
    Ok(())
}

/// The end of the non-zero bytes of `file` at or after `from`.
fn nonzero_end(file: &DynFile, from: u64) -> std::io::Result<u64> {
    let len = file.len()?;
    let mut end = len;
    let mut buf = vec![0u8; 1 << 20];
    while end > from {
        let start = end.saturating_sub(buf.len() as u64).max(from);
        let n = (end - start) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(from)
}

struct Ctx<'a> {
    storage: &'a dyn Storage,
    dir: &'a Path,
}

impl Ctx<'_> {
    fn io(&self, op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InspectError {
        InspectError::io(op, path)
    }

    fn qdir(&self) -> Result<PathBuf, InspectError> {
        let q = self.dir.join(QUARANTINE_DIR_NAME);
        if !self.storage.exists(&q) {
            self.storage
                .create_dir_all(&q)
                .map_err(self.io("create", &q))?;
            self.storage
                .sync_dir(self.dir)
                .map_err(self.io("fsync directory", self.dir))?;
        }
        Ok(q)
    }

    /// A name in quarantine/ not yet taken.
    fn free_name(&self, q: &Path, name: &str) -> PathBuf {
        let p = q.join(name);
        if !self.storage.exists(&p) {
            return p;
        }
        let stamp = now_unix_ms();
        (0..1000)
            .map(|i| q.join(format!("{name}.{stamp}.{i}")))
            .find(|p| !self.storage.exists(p))
            .unwrap_or_else(|| q.join(format!("{name}.{stamp}.x")))
    }

    fn sync_dir(&self, d: &Path) -> Result<(), InspectError> {
        self.storage
            .sync_dir(d)
            .map_err(self.io("fsync directory", d))
    }

    fn remove(&self, path: &Path) -> Result<(), InspectError> {
        self.storage.remove(path).map_err(self.io("remove", path))?;
        self.sync_dir(parent_dir(path))
    }

    fn move_to_quarantine(&self, path: &Path, name: &str) -> Result<PathBuf, InspectError> {
        let q = self.qdir()?;
        let to = self.free_name(&q, name);
        self.storage
            .rename(path, &to)
            .map_err(self.io("move to quarantine", path))?;
        self.sync_dir(&q)?;
        self.sync_dir(parent_dir(path))?;
        Ok(to)
    }

    /// Copies `[offset, offset + bytes)` of `file` to quarantine with the engine's note.
    fn save(
        &self,
        at: &Corruption,
        file: &DynFile,
        bytes: u64,
        events_lost: u64,
    ) -> Result<Vec<PathBuf>, InspectError> {
        self.qdir()?;
        let path = at.file.as_path();
        let sync_dir = |d: &Path| self.storage.sync_dir(d);
        let mut out = Vec::new();
        if bytes > 0 {
            out.push(
                quarantine::save_bytes(self.storage, &sync_dir, self.dir, at, file, bytes)
                    .map_err(self.io("copy damaged bytes of", path))?,
            );
        }
        out.push(
            quarantine::write_note(self.storage, &sync_dir, self.dir, at, bytes, events_lost)
                .map_err(self.io("write a quarantine note for", path))?,
        );
        Ok(out)
    }

    /// Copies a torn tail's non-zero bytes with a note of kind "torn tail".
    fn save_torn(
        &self,
        path: &Path,
        segment: u64,
        offset: u64,
        file: &DynFile,
    ) -> Result<Vec<PathBuf>, InspectError> {
        let end = nonzero_end(file, offset).map_err(self.io("read", path))?;
        if end <= offset {
            return Ok(Vec::new());
        }
        let q = self.qdir()?;
        let at = Corruption {
            file: path.to_path_buf(),
            segment,
            offset,
            kind: CorruptionKind::Truncated {
                needed: 0,
                available: 0,
            },
        };
        let bin = quarantine::save_bytes(
            self.storage,
            &|d| self.storage.sync_dir(d),
            self.dir,
            &at,
            file,
            end - offset,
        )
        .map_err(self.io("copy the torn tail of", path))?;
        let note = Json::obj()
            .with("file", path)
            .with("segment", segment)
            .with("offset", offset)
            .with("bytes", end - offset)
            .with("kind", "torn tail (never acknowledged)")
            .with("events_lost", 0u64)
            .with("found_unix_ms", now_unix_ms())
            .render();
        let note_path = q.join(format!("segment-{segment}-offset-{offset}.json"));
        self.write_file(&note_path, format!("{note}\n").as_bytes())?;
        Ok(vec![bin, note_path])
    }

    /// Writes a whole file durably: temp file, fsync, rename, directory fsync.
    fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), InspectError> {
        let tmp = path.with_extension("tmp-chanctl");
        if self.storage.exists(&tmp) {
            self.storage.remove(&tmp).map_err(self.io("remove", &tmp))?;
        }
        let f = self.storage.create(&tmp).map_err(self.io("create", &tmp))?;
        f.write_at(data, 0).map_err(self.io("write", &tmp))?;
        f.sync_data().map_err(self.io("fsync", &tmp))?;
        drop(f);
        self.storage
            .rename(&tmp, path)
            .map_err(self.io("rename", &tmp))?;
        self.sync_dir(parent_dir(path))
    }
}

fn corruption(path: &Path, segment: u64, offset: u64, kind: CorruptionKind) -> Corruption {
    Corruption {
        file: path.to_path_buf(),
        segment,
        offset,
        kind,
    }
}

fn execute(ctx: &Ctx<'_>, action: &Action) -> Result<Vec<PathBuf>, InspectError> {
    let storage = ctx.storage;
    match action {
        Action::RemoveOrphan { path, .. }
        | Action::RemoveCheckpoint { path }
        | Action::RemoveCheckpointTmp { path } => {
            ctx.remove(path)?;
            Ok(Vec::new())
        }
        Action::QuarantineCheckpoint { path, .. } => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("checkpoint.ckpt")
                .to_owned();
            Ok(vec![ctx.move_to_quarantine(path, &name)?])
        }
        Action::RewriteIdentity { path, channel_id } => {
            let moved = ctx.move_to_quarantine(path, "channel.meta.bad")?;
            identity::write(storage, ctx.dir, *channel_id).map_err(ctx.io("write", path))?;
            Ok(vec![moved])
        }
        Action::RebuildSegmentHeader {
            segment,
            path,
            channel_id,
            first_seq,
            kind,
            ..
        } => {
            let file = storage.open(path, true).map_err(ctx.io("open", path))?;
            let at = corruption(path, *segment, 0, kind.clone());
            let saved = ctx.save(&at, &file, SEGMENT_HEADER_BYTES as u64, 0)?;
            let header = SegmentHeader {
                segment_id: *segment,
                channel_id: *channel_id,
                first_seq: *first_seq,
                created_unix_ms: now_unix_ms(),
            };
            file.write_at(&header.encode(), 0)
                .map_err(ctx.io("write", path))?;
            file.sync_data().map_err(ctx.io("fsync", path))?;
            Ok(saved)
        }
        Action::FillWithGap {
            segment,
            path,
            offset,
            damaged_bytes,
            fill_bytes,
            first_seq,
            events,
            kind,
            seal,
        } => {
            let file = storage.open(path, true).map_err(ctx.io("open", path))?;
            let at = corruption(path, *segment, *offset, kind.clone());
            let saved = ctx.save(&at, &file, *damaged_bytes, *events)?;
            if *fill_bytes > 0 {
                write_gaps(
                    &file,
                    *segment,
                    *offset,
                    offset + fill_bytes,
                    *first_seq,
                    *events,
                )
                .map_err(ctx.io("write gap records into", path))?;
            }
            if let Some(s) = seal {
                file.write_at(
                    &seal_record(*segment, s.offset, s.next_segment, s.next_seq),
                    s.offset,
                )
                .map_err(ctx.io("write a seal record into", path))?;
            }
            file.sync_data().map_err(ctx.io("fsync", path))?;
            Ok(saved)
        }
        Action::CreateTombstone {
            segment,
            path,
            first_seq,
            events,
            next_seq,
        } => {
            let channel_id = match &identity_of(storage, ctx.dir) {
                Some(id) => *id,
                None => {
                    return Err(InspectError::Usage(
                        "cannot create a tombstone segment: the channel id is unknown".into(),
                    ))
                }
            };
            let mut bytes = SegmentHeader {
                segment_id: *segment,
                channel_id,
                first_seq: *first_seq,
                created_unix_ms: now_unix_ms(),
            }
            .encode()
            .to_vec();
            let mut at = SEGMENT_HEADER_BYTES as u64;
            if *events > 0 {
                let mut left = *events;
                let mut seq = *first_seq;
                while left > 0 {
                    let n = left.min(u64::from(u32::MAX));
                    bytes.extend(gap_record(*segment, at, MIN_GAP_BYTES, seq, n as u32));
                    at += MIN_GAP_BYTES;
                    seq += n;
                    left -= n;
                }
            }
            bytes.extend(seal_record(*segment, at, segment + 1, *next_seq));
            let f = storage.create(path).map_err(ctx.io("create", path))?;
            f.write_at(&bytes, 0).map_err(ctx.io("write", path))?;
            f.sync_data().map_err(ctx.io("fsync", path))?;
            ctx.sync_dir(parent_dir(path))?;
            let kind = CorruptionKind::BadPayload {
                what: "segment missing; chanctl repair wrote a tombstone in its place",
            };
            let note = ctx.save(&corruption(path, *segment, 0, kind), &f, 0, *events)?;
            Ok(note)
        }
        Action::TruncateTornTail {
            segment,
            path,
            offset,
            ..
        } => {
            let file = storage.open(path, true).map_err(ctx.io("open", path))?;
            let saved = ctx.save_torn(path, *segment, *offset, &file)?;
            file.set_len(*offset).map_err(ctx.io("truncate", path))?;
            file.sync_data().map_err(ctx.io("fsync", path))?;
            Ok(saved)
        }
        Action::RemoveTornSegment { segment, path, .. } => {
            let file = storage.open(path, false).map_err(ctx.io("open", path))?;
            let saved = ctx.save_torn(path, *segment, 0, &file)?;
            drop(file);
            ctx.remove(path)?;
            Ok(saved)
        }
        Action::RebuildCheckpoint => Ok(Vec::new()),
    }
}

fn identity_of(storage: &dyn Storage, dir: &Path) -> Option<u64> {
    let f = storage
        .open(&dir.join(identity::META_FILE_NAME), false)
        .ok()?;
    identity::decode(&f.read_all().ok()?).ok()
}

fn reopen(dir: &ChannelDir) -> Result<Reopened, String> {
    let storage = Arc::new(ViewStorage {
        inner: dir.storage.clone(),
        hidden: Vec::new(),
        lock_held: true,
    });
    let mut cfg = ChannelConfig::new(&dir.dir);
    if dir.segment_dirs != [dir.dir.clone()] {
        cfg.data_dirs = dir.segment_dirs.clone();
    }
    cfg.prefill_ahead_bytes = 0;
    cfg.minimum_required_space = 0;
    cfg.recovery_mode = RecoveryMode::Strict;
    let before: Vec<PathBuf> = dir.segments.iter().map(|s| s.path.clone()).collect();
    let ch = FileChannel::open_with(cfg, storage).map_err(|e| match e {
        OpenError::Corrupt(c) => format!("the engine still finds damage: {c}"),
        other => other.to_string(),
    })?;
    let pending_events = ch.len();
    let records = ch.open_report().records;
    ch.close().map_err(|e| e.to_string())?;
    let now = dir.reload().map_err(|e| e.to_string())?;
    let after: Vec<PathBuf> = now.segments.iter().map(|s| s.path.clone()).collect();
    Ok(Reopened {
        pending_events,
        records,
        created_segments: after
            .iter()
            .filter(|p| !before.contains(p))
            .cloned()
            .collect(),
        deleted_segments: before
            .iter()
            .filter(|p| !after.contains(p))
            .cloned()
            .collect(),
        checkpoints: now.checkpoints.iter().map(|(_, p)| p.clone()).collect(),
    })
}

/// Applies a repair: takes the directory lock (refusing a directory a live process holds),
/// then plans and applies rounds until verify finds nothing more to do, rebuilds the
/// checkpoint through the engine, verifies again and writes `quarantine/report.json`.
pub fn apply(
    dir: &ChannelDir,
    opts: &RepairOptions,
    verify_opts: &VerifyOptions,
) -> Result<RepairOutcome, InspectError> {
    let started_ms = now_unix_ms();
    let _lock = if dir.real_fs {
        Some(lock::lock_exclusive(&dir.dir, "chanctl repair")?)
    } else {
        None
    };
    let mut cur = dir.reload()?;
    let mut outcome: Option<RepairOutcome> = None;
    let mut applied: Vec<Applied> = Vec::new();
    let mut rebuild = false;
    let mut previous_problems: Option<Vec<Problem>> = None;
    let mut unrepairable = Vec::new();
    let mut rounds = 0;
    for round in 1..=MAX_REPAIR_ROUNDS {
        let a = analyze(&cur, verify_opts)?;
        let plan = build_plan(&cur, &a, opts.strict, round == 1);
        if round == 1 {
            let refused = plan.refused_strict.clone();
            outcome = Some(RepairOutcome {
                plan: plan.clone(),
                rounds: 0,
                applied: Vec::new(),
                unrepairable: Vec::new(),
                refused_strict: refused.clone(),
                reopened: None,
                reopen_error: None,
                after: None,
                report_path: None,
            });
            if !refused.is_empty() {
                // Strict: nothing is changed.
                return outcome.ok_or_else(|| InspectError::Usage("no plan".into()));
            }
        }
        unrepairable = plan.unrepairable.clone();
        let work: Vec<&Action> = plan
            .actions
            .iter()
            .filter(|a| **a != Action::RebuildCheckpoint)
            .collect();
        if work.is_empty() {
            break;
        }
        if previous_problems.as_ref() == Some(&a.report.problems) && a.report.torn_tail.is_none() {
            // No progress: the same problems as before the last round.
            break;
        }
        previous_problems = Some(a.report.problems.clone());
        rounds = round;
        rebuild |= plan.actions.contains(&Action::RebuildCheckpoint);
        let ctx = Ctx {
            storage: cur.storage.as_ref(),
            dir: &cur.dir,
        };
        for action in work {
            let quarantined = execute(&ctx, action)?;
            applied.push(Applied {
                action: action.clone(),
                quarantined,
            });
        }
        cur = cur.reload()?;
    }
    let mut outcome = outcome.ok_or_else(|| InspectError::Usage("no plan".into()))?;
    outcome.rounds = rounds;
    outcome.unrepairable = unrepairable;
    if applied.is_empty() && !rebuild {
        // Nothing to do: nothing written, no report.
        outcome.after = Some(analyze(&cur, verify_opts)?.report);
        return Ok(outcome);
    }
    let log_clean = analyze(&cur, verify_opts)?.report.problems.is_empty();
    if rebuild && log_clean {
        match reopen(&cur) {
            Ok(r) => {
                applied.push(Applied {
                    action: Action::RebuildCheckpoint,
                    quarantined: Vec::new(),
                });
                outcome.reopened = Some(r);
            }
            Err(e) => outcome.reopen_error = Some(e),
        }
        cur = cur.reload()?;
    }
    outcome.applied = applied;
    let after = analyze(&cur, verify_opts)?.report;
    outcome.after = Some(after);
    let ctx = Ctx {
        storage: cur.storage.as_ref(),
        dir: &cur.dir,
    };
    let q = ctx.qdir()?;
    let report_path = q.join("report.json");
    if ctx.storage.exists(&report_path) {
        let old = ctx.free_name(&q, &format!("report-{}.json", now_unix_ms()));
        ctx.storage
            .rename(&report_path, &old)
            .map_err(ctx.io("rename", &report_path))?;
    }
    let text = report_json(&outcome, &cur.dir, opts.strict, started_ms).render();
    ctx.write_file(&report_path, format!("{text}\n").as_bytes())?;
    outcome.report_path = Some(report_path);
    Ok(outcome)
}

/// A problem as JSON.
pub fn problem_json(p: &Problem) -> Json {
    Json::obj()
        .with("file", p.file.as_path())
        .with("segment", p.segment)
        .with("offset", p.offset)
        .with("bytes", p.bytes)
        .with("kind", p.kind.code())
        .with("detail", p.kind.to_string())
        .with("events_lost", p.events_lost)
        .with("first_lost_seq", p.first_lost_seq)
}

fn report_json(o: &RepairOutcome, dir: &Path, strict: bool, started_ms: u64) -> Json {
    let lost_ranges: Vec<Json> = o
        .applied
        .iter()
        .filter_map(|a| match &a.action {
            Action::FillWithGap {
                first_seq, events, ..
            }
            | Action::CreateTombstone {
                first_seq, events, ..
            } if *events > 0 => Some(Json::Arr(vec![
                (*first_seq).into(),
                (first_seq + events).into(),
            ])),
            _ => None,
        })
        .collect();
    let actions: Vec<Json> = o
        .applied
        .iter()
        .map(|a| {
            a.action.to_json().with(
                "quarantined",
                Json::Arr(a.quarantined.iter().map(|p| p.as_path().into()).collect()),
            )
        })
        .collect();
    let before = &o.plan.before;
    Json::obj()
        .with("tool", "chanctl repair")
        .with("dir", dir)
        .with("strict", strict)
        .with("started_unix_ms", started_ms)
        .with("finished_unix_ms", now_unix_ms())
        .with("rounds", o.rounds as u64)
        .with(
            "found",
            Json::obj()
                .with(
                    "corrupt",
                    Json::Arr(before.problems.iter().map(problem_json).collect()),
                )
                .with(
                    "torn_tail",
                    before.torn_tail.as_ref().map(|t| {
                        Json::obj()
                            .with("segment", t.segment)
                            .with("offset", t.offset)
                            .with("bytes", t.bytes)
                    }),
                )
                .with(
                    "checkpoints",
                    Json::Arr(
                        before
                            .checkpoints
                            .iter()
                            .map(|c| {
                                Json::obj()
                                    .with("file", c.path.as_path())
                                    .with("status", c.status.code())
                                    .with("detail", c.status.to_string())
                            })
                            .collect(),
                    ),
                ),
        )
        .with("actions", Json::Arr(actions))
        .with("events_lost", o.events_lost())
        .with("lost_seq_ranges", Json::Arr(lost_ranges))
        .with("bytes_lost", o.bytes_lost())
        .with("torn_tail_bytes", o.torn_bytes())
        .with(
            "unrepaired",
            Json::Arr(
                o.unrepairable
                    .iter()
                    .map(|u| problem_json(&u.problem).with("reason", u.reason.as_str()))
                    .collect(),
            ),
        )
        .with(
            "reopen",
            match (&o.reopened, &o.reopen_error) {
                (Some(r), _) => Json::obj()
                    .with("ok", true)
                    .with("pending_events", r.pending_events)
                    .with("records", r.records)
                    .with(
                        "created_segments",
                        Json::Arr(
                            r.created_segments
                                .iter()
                                .map(|p| p.as_path().into())
                                .collect(),
                        ),
                    )
                    .with(
                        "deleted_segments",
                        Json::Arr(
                            r.deleted_segments
                                .iter()
                                .map(|p| p.as_path().into())
                                .collect(),
                        ),
                    ),
                (None, Some(e)) => Json::obj().with("ok", false).with("error", e.as_str()),
                (None, None) => Json::Null,
            },
        )
        .with(
            "verify_after",
            o.after.as_ref().map(|a| {
                Json::obj().with("clean", !a.is_corrupt()).with(
                    "corrupt",
                    Json::Arr(a.problems.iter().map(problem_json).collect()),
                )
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::{decode, Decoded};

    #[test]
    fn gap_pieces_cover_exactly_and_respect_bounds() {
        for len in [
            56u64,
            64,
            4096,
            MAX_RECORD_BYTES,
            MAX_RECORD_BYTES + 8,
            MAX_RECORD_BYTES + 56,
            3 * MAX_RECORD_BYTES + 48,
        ] {
            let pieces = gap_pieces(64, 64 + len);
            let total: u64 = pieces.iter().map(|p| p.1).sum();
            assert_eq!(total, len);
            let mut at = 64;
            for (pos, l) in pieces {
                assert_eq!(pos, at);
                assert!((MIN_GAP_BYTES..=MAX_RECORD_BYTES).contains(&l), "{l}");
                assert_eq!(l % 8, 0);
                at += l;
            }
        }
    }

    #[test]
    fn gap_and_seal_records_decode_where_they_are_written() {
        let g = gap_record(3, 128, 200, 10, 7);
        assert_eq!(g.len(), 200);
        let Ok(Decoded::Record(h, payload)) = decode(&g, 3, 128) else {
            panic!("gap record does not decode");
        };
        assert_eq!(
            (h.kind, h.first_seq, h.event_count),
            (RecordKind::Gap, 10, 7)
        );
        assert!(payload.iter().all(|&b| b == 0));
        let s = seal_record(3, 328, 4, 17);
        let Ok(Decoded::Record(h, payload)) = decode(&s, 3, 328) else {
            panic!("seal does not decode");
        };
        assert_eq!(h.kind, RecordKind::Seal);
        assert_eq!(
            SealPayload::decode(payload),
            SealPayload {
                next_segment_id: 4,
                next_seq: 17
            }
        );
    }
}
