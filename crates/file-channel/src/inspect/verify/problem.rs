//! What verify reports as wrong: a [`Problem`] with its place and exact loss, of a
//! [`ProblemKind`]; and [`classify`], which turns a replay damage entry into one, recognising a
//! damaged segment header and missing segments.

use crate::format::CorruptionKind;
use crate::inspect::kind_code;
use crate::inspect::walk::Walk;
use std::fmt;
use std::path::PathBuf;

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

/// Turns a damage entry of the replay into a problem, recognising damaged headers and missing
/// segments.
pub(super) fn classify(d: &crate::replay::Damage, walk: &Walk) -> Problem {
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
