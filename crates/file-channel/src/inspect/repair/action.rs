//! The vocabulary of a repair: each step it can take ([`Action`]), with its machine-readable
//! name and the events it gives up. How an action is planned, done and shown lives in the
//! sibling modules `plan`, `execute` and `report`.

use crate::format::record::RecordBinding;
use crate::format::CorruptionKind;
use std::path::PathBuf;

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
        /// The format version written: the oldest segment header's.
        format_version: u32,
    },
    /// Rewrite a damaged segment header.
    RebuildSegmentHeader {
        /// Segment.
        segment: u64,
        /// File.
        path: PathBuf,
        /// Channel id written.
        channel_id: u64,
        /// Format version written: the one its records verify under.
        format_version: u32,
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
        /// What the records written are bound to (the segment's format).
        binding: RecordBinding,
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
}
