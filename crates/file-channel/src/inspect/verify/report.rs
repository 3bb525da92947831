//! The figures verify returns: per segment ([`SegmentSummary`]) and for the whole directory
//! ([`VerifyReport`]), with the problems and checkpoint verdicts found.

use super::{CheckpointCheck, EncryptionReport, Problem};
use crate::format::segment_header::SegmentHeader;
use crate::format::CorruptionKind;
use crate::inspect::{lock, MetaState};
use crate::replay::TornTail;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Encrypted records: the keys they name, and with keys given, those that do not open.
    pub encryption: EncryptionReport,
    /// Time taken.
    pub took: Duration,
}

impl VerifyReport {
    /// Whether any corruption was found (log, identity or checkpoints). A torn tail is not,
    /// and neither is an encrypted record that does not open (see [`Self::is_clean`]).
    pub fn is_corrupt(&self) -> bool {
        !self.problems.is_empty() || self.checkpoints.iter().any(|c| c.status.is_problem())
    }

    /// Whether nothing is wrong: no corruption, and no encrypted record that is tampered
    /// with, malformed, or needed at open and unreadable with the keys given.
    pub fn is_clean(&self) -> bool {
        !self.is_corrupt() && !self.encryption.has_problems()
    }

    /// Events lost to the problems found (where known).
    pub fn events_lost(&self) -> u64 {
        self.problems.iter().filter_map(|p| p.events_lost).sum()
    }
}
