//! What a repair would do: [`plan`] turns [`verify`](crate::inspect::verify)'s findings into an
//! ordered list of [`Action`]s, and the problems it must leave alone into [`Unrepairable`]s.
//! Nothing here writes.
//!
//! The order is part of the crash safety: orphan segments first (as open removes them), then
//! checkpoints (so a crash mid-repair opens by full replay), then the log, and last the
//! checkpoint rebuild through the engine.

use super::action::{Action, SealPlan};
use super::records::{gap_counts_fit, MIN_GAP_BYTES};
use super::RepairOptions;
use crate::format::record::align_up;
use crate::format::segment_header::{segment_file_name, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::inspect::verify::{
    analyze, Analysis, CheckpointStatus, Problem, ProblemKind, VerifyOptions, VerifyReport,
};
use crate::inspect::walk::Walk;
use crate::inspect::{ChannelDir, InspectError};
use crate::segment::dir_for_segment;

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
    /// Events the plan gives up (lost to the damage already): the loss verify counted for the
    /// problems it acts on — the one ledger every view reports, which leaves out events a
    /// checkpoint or a take record says were consumed (a gap record or tombstone covers a
    /// whole sequence range, consumed events included).
    pub fn events_lost(&self) -> u64 {
        if self.before.problems.iter().any(|p| p.events_lost.is_some()) {
            self.before.events_lost()
        } else {
            self.actions.iter().map(Action::events_lost).sum()
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
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

pub(super) fn build_plan(
    dir: &ChannelDir,
    a: &Analysis,
    strict: bool,
    first_round: bool,
) -> RepairPlan {
    let r = &a.report;
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
            actions: Vec::new(),
            unrepairable: Vec::new(),
            refused_strict,
            notes: Vec::new(),
        };
    }

    let mut actions = Vec::new();
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
    let mut log = LogPlanner {
        dir,
        report: r,
        walk: &a.walk,
        last: last_live_index(&a.walk),
        actions: Vec::new(),
        tombstones_planned: Vec::new(),
        notes: Vec::new(),
    };
    let mut unrepairable = Vec::new();
    for p in &r.problems {
        if let Err(reason) = log.plan(p) {
            unrepairable.push(Unrepairable {
                problem: p.clone(),
                reason,
            });
        }
    }
    let mut notes = log.notes;
    actions.extend(log.actions);
    actions.extend(torn_tail_action(r));
    let checkpoint_trouble =
        r.checkpoints.iter().any(|c| c.status.is_problem()) || r.checkpoint_tmp;
    if !actions.is_empty() || checkpoint_trouble {
        let cp_actions = checkpoint_actions(dir, r, &actions, &mut notes);
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

/// Cutting or removing the torn tail, if there is one with bytes to cut.
fn torn_tail_action(r: &VerifyReport) -> Option<Action> {
    let t = r.torn_tail.as_ref()?;
    if t.removed_file {
        Some(Action::RemoveTornSegment {
            segment: t.segment,
            path: t.path.clone(),
            bytes: t.bytes,
        })
    } else if t.bytes > 0 {
        Some(Action::TruncateTornTail {
            segment: t.segment,
            path: t.path.clone(),
            offset: t.offset,
            bytes: t.bytes,
        })
    } else {
        None
    }
}

/// What happens to each checkpoint file (and a leftover `checkpoint.tmp`) once `actions` run:
/// invalid or disagreeing ones are quarantined, valid ones kept only if nothing below their
/// position is rewritten, the rest deleted.
fn checkpoint_actions(
    dir: &ChannelDir,
    r: &VerifyReport,
    actions: &[Action],
    notes: &mut Vec<String>,
) -> Vec<Action> {
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
    cp_actions
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

/// Plans the repair of the log's problems one by one; a problem it cannot repair is an `Err`
/// with the reason, and adds no action.
struct LogPlanner<'a> {
    dir: &'a ChannelDir,
    report: &'a VerifyReport,
    walk: &'a Walk,
    /// The index of the newest segment that is not a torn creation.
    last: Option<usize>,
    /// The actions planned, in order.
    actions: Vec<Action>,
    /// Segment ids a tombstone is already planned for.
    tombstones_planned: Vec<u64>,
    /// Remarks for the plan.
    notes: Vec<String>,
}

impl LogPlanner<'_> {
    fn plan(&mut self, p: &Problem) -> Result<(), String> {
        match &p.kind {
            ProblemKind::Identity(_) => self.plan_identity(p),
            ProblemKind::Unrecoverable(_) => Err(
                "replay refuses this even in skip-damaged mode and there is no safe rewrite; move the segment away by hand after saving a copy, then repair again".into(),
            ),
            ProblemKind::Foreign(_) => Err(
                "the file is not a segment of this channel; move it out of the directory, then repair again".into(),
            ),
            ProblemKind::SegmentHeader(kind) => self.plan_segment_header(p, kind),
            ProblemKind::MissingSegments { first, last } => {
                self.plan_missing_segments(p, *first, *last)
            }
            ProblemKind::Damage(kind) => self.plan_fill(p, kind),
        }
    }

    /// A new `channel.meta` with the channel id of the first segment header that verifies.
    fn plan_identity(&mut self, p: &Problem) -> Result<(), String> {
        let Some(h) = self
            .walk
            .segments
            .iter()
            .find_map(|s| s.header.as_ref().ok())
        else {
            return Err("no segment header verifies, so the channel id is unknown; restore channel.meta from a backup".into());
        };
        // A channel that may still hold format-1 segments must not claim format 2 throughout.
        let format_version = self
            .walk
            .segments
            .iter()
            .filter_map(|s| s.header.as_ref().ok())
            .map(|h| h.format_version)
            .min()
            .unwrap_or(h.format_version);
        self.actions.push(Action::RewriteIdentity {
            path: p.file.clone(),
            channel_id: h.channel_id,
            format_version,
        });
        Ok(())
    }

    /// A rebuilt header, with the first sequence number from wherever it is known.
    fn plan_segment_header(&mut self, p: &Problem, kind: &CorruptionKind) -> Result<(), String> {
        let (r, walk) = (self.report, self.walk);
        let Some(idx) = walk.segments.iter().position(|s| Some(s.id) == p.segment) else {
            return Err("the segment is not in the scan".into());
        };
        let Some(channel_id) = r.channel_id else {
            return Err("the channel id is unknown".into());
        };
        let Some((first_seq, source)) = first_seq_of(walk, idx) else {
            return Err("nothing tells the segment's first sequence number (no seal before it, no put record in it, no next segment)".into());
        };
        let s = &walk.segments[idx];
        // Replay reads through a rebuilt header, so the damage behind it is normally among
        // this round's problems; a note only if it is not.
        let behind_reported = r
            .problems
            .iter()
            .any(|q| q.segment == Some(s.id) && !matches!(q.kind, ProblemKind::SegmentHeader(_)));
        if !s.bad.is_empty() && !behind_reported {
            self.notes.push(format!(
                "segment {} also has {} damaged range(s) behind its header; they are repaired in the next round, once the header is rebuilt",
                s.id,
                s.bad.len()
            ));
        }
        self.actions.push(Action::RebuildSegmentHeader {
            segment: s.id,
            path: s.path.clone(),
            channel_id,
            format_version: s.binding.format_version(),
            first_seq,
            source,
            kind: kind.clone(),
        });
        Ok(())
    }

    /// Tombstones for segments `first ..= last_missing`, which a seal names.
    fn plan_missing_segments(
        &mut self,
        p: &Problem,
        first: u64,
        last_missing: u64,
    ) -> Result<(), String> {
        let walk = self.walk;
        let (Some(first_seq), Some(next_idx)) = (
            p.first_lost_seq,
            walk.segments.iter().position(|s| s.id == last_missing + 1),
        ) else {
            return Err("the segments around the missing ones are not in the scan".into());
        };
        let Some((next_seq, _)) = first_seq_of(walk, next_idx) else {
            return Err(
                "the first sequence number of the segment after the missing ones is unknown".into(),
            );
        };
        if next_seq < first_seq {
            return Err(format!(
                "the next segment starts at sequence {next_seq}, before the seal's {first_seq}"
            ));
        }
        for id in first..=last_missing {
            self.tombstones_planned.push(id);
            self.actions.push(Action::CreateTombstone {
                segment: id,
                path: dir_for_segment(&self.dir.segment_dirs, id).join(segment_file_name(id)),
                first_seq: if id == first { first_seq } else { next_seq },
                events: if id == first { next_seq - first_seq } else { 0 },
                next_seq,
            });
        }
        Ok(())
    }

    /// Gap records over a damaged range (and a seal, at the damaged end of a finished
    /// segment, plus tombstones for segments missing after it).
    fn plan_fill(&mut self, p: &Problem, kind: &CorruptionKind) -> Result<(), String> {
        let walk = self.walk;
        let Some(seg_id) = p.segment else {
            return Err("no segment".into());
        };
        let Some(idx) = walk
            .segments
            .iter()
            .position(|s| s.id == seg_id && s.path == p.file)
        else {
            return Err("the damaged segment is not in the scan".into());
        };
        let s = &walk.segments[idx];
        let events = p.events_lost.unwrap_or(0);
        let bad = s.bad.iter().find(|b| b.offset == p.offset);
        let is_last = self.last == Some(idx);
        let resumes_at = match bad {
            Some(b) => b.resumes_at,
            // A checksummed record whose payload is inconsistent: the range is the record.
            None if p.bytes > 0 => Some(p.offset + p.bytes),
            None => {
                return Err(match kind {
                    CorruptionKind::SequenceGap { expected, found } => format!(
                        "sequence numbers {expected}..{found} are missing between two valid records (a segment header or record jumps ahead) and there are no damaged bytes to write a gap record into; the events are lost either way and an open skips them"
                    ),
                    _ => "there are no damaged bytes to write a gap record into".into(),
                })
            }
        };
        let Some(first_seq) = p.first_lost_seq else {
            return Err("the sequence number at the damage is unknown".into());
        };
        // In a segment whose header is rebuilt from its first intact record, the sequence
        // restarts there: the gap records carry no events (the ones before it are the
        // ledger's to count, from the checkpoints), or they would overlap the records after.
        let (first_seq, events) = match (s.header.is_err(), first_seq_of(walk, idx)) {
            (true, Some((rebuilt, _))) if first_seq < rebuilt => (rebuilt, 0),
            _ => (first_seq, events),
        };
        if p.offset < SEGMENT_HEADER_BYTES as u64 || p.offset & 7 != 0 {
            return Err(format!(
                "the damage starts at an unaligned offset {}",
                p.offset
            ));
        }
        match resumes_at {
            Some(end) => {
                // Records start 8-byte aligned, so rounding a damaged range's end up never
                // reaches the next valid record (a truncated file can end mid-word).
                let end = align_up(end);
                let len = end.saturating_sub(p.offset);
                if len < MIN_GAP_BYTES {
                    return Err(format!(
                        "the damaged range is {len} bytes, too short for a gap record ({MIN_GAP_BYTES})"
                    ));
                }
                if !gap_counts_fit(len, events) {
                    return Err("too many events for the gap records that fit the range".into());
                }
                self.actions.push(Action::FillWithGap {
                    segment: s.id,
                    path: s.path.clone(),
                    offset: p.offset,
                    damaged_bytes: len,
                    fill_bytes: len,
                    first_seq,
                    events,
                    kind: kind.clone(),
                    seal: None,
                    binding: s.binding,
                });
            }
            None if is_last => return Err(
                "damage at the end of the newest segment with no later record is a torn tail; this should not happen".into(),
            ),
            None => {
                // A finished segment whose end is damaged or missing: gap records to the end
                // of its data, then a new seal naming the next segment.
                let Some(next) = walk.segments.get(idx + 1) else {
                    return Err("no segment follows".into());
                };
                let Some((next_seq, _)) = first_seq_of(walk, idx + 1) else {
                    return Err(format!(
                        "the first sequence number of segment {} is unknown",
                        next.id
                    ));
                };
                if next_seq < first_seq {
                    return Err(format!(
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
                    return Err("too many events for the gap records that fit the range".into());
                }
                self.actions.push(Action::FillWithGap {
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
                    binding: s.binding,
                });
                for id in s.id + 1..next.id {
                    if !self.tombstones_planned.contains(&id) {
                        self.tombstones_planned.push(id);
                        self.actions.push(Action::CreateTombstone {
                            segment: id,
                            path: dir_for_segment(&self.dir.segment_dirs, id)
                                .join(segment_file_name(id)),
                            first_seq: next_seq,
                            events: 0,
                            next_seq,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
