//! Step 3 of verify: every checkpoint file checked against the log ([`CheckpointStatus`],
//! [`Disagreement`]), and which checkpoint an open would start from (the engine's own, looser,
//! test).

use crate::format::checkpoint::Checkpoint;
use crate::inspect::walk::Walk;
use crate::inspect::{ChannelDir, CheckpointFile, CheckpointReadError};
use std::fmt;
use std::path::PathBuf;

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

/// The index of the checkpoint an open would start from: the newest that decodes, belongs to
/// the channel, names existing live segments, and whose live segments are consecutive.
pub(super) fn engine_choice(
    dir: &ChannelDir,
    cps: &[CheckpointFile],
    meta_id: Option<u64>,
) -> Option<usize> {
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

pub(super) fn check_checkpoints(
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
