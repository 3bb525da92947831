//! Loading a checkpoint: which checkpoint file replay starts from, and why the others were
//! refused ([`CheckpointRejection`]).
//!
//! The newest checkpoint that decodes and agrees with the segments on disk wins, else the older
//! one, else replay is a full one from the first segment.

use super::{io_err, ReplayOptions, ReplayStart};
use crate::error::{IoFailure, OpenError};
use crate::format::checkpoint::{
    parse_checkpoint_file_name, Checkpoint, CHECKPOINT_FIXED_BYTES, MAX_CHECKPOINT_RANGES,
};
use crate::format::CorruptionKind;
use crate::segment::SegmentPath;
use crate::storage::Storage;
use std::path::{Path, PathBuf};

/// Why a checkpoint file was not used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointRejection {
    /// It could not be opened.
    #[error("cannot open it: {0}")]
    CannotOpen(IoFailure),
    /// Its length could not be read.
    #[error("cannot read its length: {0}")]
    CannotReadLength(IoFailure),
    /// It is longer than any checkpoint can be (not read: a garbage file must not make open
    /// read gigabytes).
    #[error("{bytes} bytes, more than a checkpoint can be ({max})")]
    TooLarge {
        /// Its length.
        bytes: u64,
        /// The most a checkpoint can take.
        max: u64,
    },
    /// It could not be read.
    #[error("cannot read it: {0}")]
    CannotRead(IoFailure),
    /// Its bytes do not decode: bad magic, checksum, version, length or ranges.
    #[error("{0}")]
    Undecodable(CorruptionKind),
    /// It belongs to another channel.
    #[error("belongs to channel {found:#018x}, this channel is {expected:#018x}")]
    OtherChannel {
        /// The channel id it carries.
        found: u64,
        /// This channel's id.
        expected: u64,
    },
    /// A segment it names as its position or read start does not exist (or is below its own
    /// first live segment).
    #[error("segment {segment} it names does not exist")]
    NamedSegmentMissing {
        /// The segment id.
        segment: u64,
    },
    /// The live segments it would replay have a hole.
    #[error("segment {segment} is missing")]
    SegmentMissing {
        /// The missing segment's id.
        segment: u64,
    },
    /// A segment it covers (between its read start and its position) no longer has the header
    /// the checkpoint was written over: the log must be replayed from its records to tell
    /// what survives.
    #[error("segment {segment} it covers has no valid header of this channel: {detail}")]
    CoveredSegmentDamaged {
        /// The segment id.
        segment: u64,
        /// What is wrong with the header.
        detail: String,
    },
    /// Its position lies past the end of the segment file: bytes it covers are gone.
    #[error("its position {offset} in segment {segment} is past the file's end ({len} bytes)")]
    CoveredBytesMissing {
        /// The segment id.
        segment: u64,
        /// The checkpoint's position in it.
        offset: u64,
        /// The file's length.
        len: u64,
    },
}

/// A checkpoint file that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedCheckpoint {
    /// The file.
    pub path: PathBuf,
    /// Why it was refused.
    pub reason: CheckpointRejection,
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
pub fn read_checkpoint(
    storage: &dyn Storage,
    path: &Path,
) -> Result<Checkpoint, CheckpointRejection> {
    let file = storage
        .open(path, false)
        .map_err(|e| CheckpointRejection::CannotOpen((&e).into()))?;
    let len = file
        .len()
        .map_err(|e| CheckpointRejection::CannotReadLength((&e).into()))?;
    let max = (CHECKPOINT_FIXED_BYTES + 4) as u64 + 16 * u64::from(MAX_CHECKPOINT_RANGES);
    if len > max {
        // Bounded before allocating: a garbage file must not make open read gigabytes.
        return Err(CheckpointRejection::TooLarge { bytes: len, max });
    }
    let bytes = file
        .read_all()
        .map_err(|e| CheckpointRejection::CannotRead((&e).into()))?;
    Checkpoint::decode(&bytes).map_err(CheckpointRejection::Undecodable)
}

/// A checkpoint file of the directory, newest generation first, as read: decoded, or why not.
pub(super) type ReadCheckpoint = (PathBuf, Result<Checkpoint, CheckpointRejection>);

/// Reads every checkpoint file in `dir` once, newest generation first: replay chooses its
/// start among them and the loss ledger takes the ones that decode as evidence.
pub(super) fn read_checkpoints(
    storage: &dyn Storage,
    dir: &Path,
) -> Result<Vec<ReadCheckpoint>, OpenError> {
    let cps = list_checkpoints(storage, dir).map_err(io_err("list checkpoints in", dir))?;
    Ok(cps
        .into_iter()
        .map(|(_, path)| {
            let read = read_checkpoint(storage, &path);
            (path, read)
        })
        .collect())
}

/// Chooses where replay starts: the newest checkpoint of those `read` that is usable with the
/// segments `found`, or a full replay; with the refused ones and why.
pub(super) fn choose_start(
    storage: &dyn Storage,
    read: &[ReadCheckpoint],
    opts: &ReplayOptions,
    found: &[SegmentPath],
) -> Result<(ReplayStart, Option<Checkpoint>), OpenError> {
    let mut rejected = Vec::new();
    let mut chosen: Option<(PathBuf, Checkpoint)> = None;
    if !opts.ignore_checkpoints {
        for (path, read) in read {
            let path = path.clone();
            match read.clone().and_then(|cp| {
                check_checkpoint(&cp, opts.channel_id, found)?;
                check_covered_segments(storage, &cp, opts, found)?;
                Ok(cp)
            }) {
                Ok(cp) => {
                    chosen = Some((path, cp));
                    break;
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "checkpoint refused; falling back");
                    rejected.push(RejectedCheckpoint { path, reason });
                }
            }
        }
    }
    Ok(match chosen {
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
    })
}

/// Whether a checkpoint agrees with the segments on disk.
fn check_checkpoint(
    cp: &Checkpoint,
    channel_id: Option<u64>,
    found: &[SegmentPath],
) -> Result<(), CheckpointRejection> {
    if let Some(id) = channel_id {
        if cp.channel_id != id {
            return Err(CheckpointRejection::OtherChannel {
                found: cp.channel_id,
                expected: id,
            });
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
            return Err(CheckpointRejection::NamedSegmentMissing { segment: id });
        }
    }
    for w in live.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(CheckpointRejection::SegmentMissing { segment: w[0] + 1 });
        }
    }
    Ok(())
}

/// Whether the segments a checkpoint covers still hold what it was written over: each one from
/// its read start to its position has this channel's header for that segment, and the position
/// lies within its file. Damage there is not something the checkpoint can skip over: replay
/// then starts from the log, and the ledger counts against this checkpoint what is gone. A
/// header and a length per covered segment: the check costs no scan.
fn check_covered_segments(
    storage: &dyn Storage,
    cp: &Checkpoint,
    opts: &ReplayOptions,
    found: &[SegmentPath],
) -> Result<(), CheckpointRejection> {
    let covered = found
        .iter()
        .filter(|s| s.id >= cp.read_start.0 && s.id <= cp.position.0);
    for seg in covered {
        let damaged = |detail: String| CheckpointRejection::CoveredSegmentDamaged {
            segment: seg.id,
            detail,
        };
        let file = storage
            .open(&seg.path, false)
            .map_err(|e| damaged(format!("cannot open it: {e}")))?;
        let len = file
            .len()
            .map_err(|e| damaged(format!("cannot read its length: {e}")))?;
        let decoded = crate::segment::read_header(&file, len)
            .map_err(|e| damaged(format!("cannot read its header: {e}")))?;
        let header = match decoded {
            Ok(h) => h,
            // The records name their segment inside their checksums: replay rebuilds the
            // header from them. Without a single one the segment's events are unreadable.
            Err(kind) if holds_no_record(&file, seg.id, cp.channel_id, opts) => {
                return Err(damaged(kind.to_string()))
            }
            Err(_) => continue,
        };
        if header.segment_id != seg.id || header.channel_id != cp.channel_id {
            return Err(damaged(format!(
                "its header names segment {} of channel {:#018x}",
                header.segment_id, header.channel_id
            )));
        }
        if seg.id == cp.position.0 && len < cp.position.1 {
            return Err(CheckpointRejection::CoveredBytesMissing {
                segment: seg.id,
                offset: cp.position.1,
                len,
            });
        }
    }
    Ok(())
}

/// Whether segment `id` of channel `channel_id` holds no valid record (a linear search; only
/// on a damaged header).
fn holds_no_record(
    file: &crate::storage::DynFile,
    id: u64,
    channel_id: u64,
    opts: &ReplayOptions,
) -> bool {
    let bindings = crate::segment::lost_header::bindings_behind_lost_header(
        Some(channel_id),
        opts.channel_format_version < 2,
    );
    !matches!(
        crate::segment::lost_header::first_binding_with_records(file, id, &bindings),
        Ok(Some(_))
    )
}
