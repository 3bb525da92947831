//! Sweeping what a crash left behind before the segments are replayed: orphans of an
//! interrupted deletion (segments below the checkpoint's first live segment), and a newest
//! segment without a single valid record, the tail of an interrupted rotation or creation
//! (nothing in it was ever acknowledged). A read-only replay only reports them.

use super::{data_end, io_err, ReplayOptions, TornTail};
use crate::error::{Corruption, OpenError};
use crate::format::checkpoint::Checkpoint;
use crate::format::record::{
    self, Decoded, RecordBinding, RecordKind, SealPayload, SEAL_RECORD_BYTES,
};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::format::CorruptionKind;
use crate::segment::SegmentPath;
use crate::storage::{parent_dir, DynFile, Storage};
use std::path::{Path, PathBuf};

/// Removes (when writable) the segments below the checkpoint's first live segment; returns
/// their paths and the segments left.
pub(super) fn sweep_orphans(
    storage: &dyn Storage,
    opts: &ReplayOptions,
    checkpoint: Option<&Checkpoint>,
    found: Vec<SegmentPath>,
) -> Result<(Vec<PathBuf>, Vec<SegmentPath>), OpenError> {
    let mut orphans = Vec::new();
    let Some(cp) = checkpoint else {
        return Ok((orphans, found));
    };
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
    Ok((orphans, live))
}

/// Removes (when writable) and drops from `found` a newest segment that holds no valid record,
/// unless its predecessor's seal names it (then it is the active segment of a channel closed
/// right after a rotation); returns the torn tail that removal is.
pub(super) fn drop_interrupted_rotation(
    storage: &dyn Storage,
    dir: &Path,
    opts: &ReplayOptions,
    found: &mut Vec<SegmentPath>,
) -> Result<Option<TornTail>, OpenError> {
    if found.len() < 2 {
        return Ok(None);
    }
    let Some(last) = found.last().cloned() else {
        return Ok(None);
    };
    let prev = &found[found.len() - 2];
    // Only what a rotation leaves — a header and zeros — is removed here. Other bytes (another
    // channel's segment, garbage) are not the engine's: the segment replay names or keeps them.
    // (Zeros after the header also mean no record: every record starts with a non-zero length.)
    let empty =
        only_zeros_after_header(storage, &last)? && !sealed_into(storage, opts, prev, last.id)?;
    if !empty {
        return Ok(None);
    }
    tracing::warn!(segment = last.id, path = %last.path.display(), "newest segment holds no record; removing it (interrupted rotation)");
    let (file, bytes) = open_with_len(storage, &last)?;
    if opts.writable {
        let at = Corruption {
            file: last.path.clone(),
            segment: last.id,
            offset: 0,
            kind: CorruptionKind::BadPayload {
                what: "newest segment holds no record (interrupted rotation)",
            },
        };
        super::header::remove_segment_file(storage, dir, &at, &file, bytes)?;
    }
    found.pop();
    Ok(Some(TornTail {
        segment: last.id,
        path: last.path,
        offset: 0,
        bytes,
        removed_file: true,
    }))
}

/// Whether `seg` ends with a valid seal record naming segment `next` (read with its header's
/// binding; with both when its header is lost: this only keeps a file).
fn sealed_into(
    storage: &dyn Storage,
    opts: &ReplayOptions,
    seg: &SegmentPath,
    next: u64,
) -> Result<bool, OpenError> {
    let (file, len) = open_with_len(storage, seg)?;
    let bindings = match crate::segment::read_header(&file, len) {
        Ok(Ok(h)) => vec![h.binding()],
        _ => crate::segment::lost_header::bindings_behind_lost_header(opts.channel_id, true),
    };
    Ok(seal_of(&file, seg.id, len, &bindings).is_some_and(|s| s.next_segment_id == next))
}

/// The seal record segment `id` (`file`, `len` bytes, records carrying one of `bindings`) ends
/// with, if it ends with one: looked up just below the end of its non-zero data, without
/// scanning the segment.
pub(super) fn seal_of(
    file: &DynFile,
    id: u64,
    len: u64,
    bindings: &[RecordBinding],
) -> Option<SealPayload> {
    let end = record::align_up(data_end(file, SEGMENT_HEADER_BYTES as u64, len));
    let seal = SEAL_RECORD_BYTES;
    let mut buf = vec![0u8; seal as usize];
    // The seal's last bytes may be zeros (high bytes of its sequence number), so its start is
    // within a few words below the end of the non-zero data.
    for back in (0..=seal).step_by(8) {
        let at = end.checked_sub(seal + back)?;
        if at < SEGMENT_HEADER_BYTES as u64 || file.read_exact_at(&mut buf, at).is_err() {
            continue;
        }
        for &binding in bindings {
            if let Ok(Decoded::Record(h, payload)) = record::decode(&buf, binding, id, at) {
                if h.kind == RecordKind::Seal {
                    return Some(SealPayload::decode(payload));
                }
            }
        }
    }
    None
}

/// Whether every byte of `seg` after its header is zero (a linear read from the end).
fn only_zeros_after_header(storage: &dyn Storage, seg: &SegmentPath) -> Result<bool, OpenError> {
    let (file, len) = open_with_len(storage, seg)?;
    let header_end = SEGMENT_HEADER_BYTES as u64;
    if len <= header_end {
        return Ok(true);
    }
    // A segment holding data has it right after the header: one small read settles the usual
    // case, before a preallocated tail of zeros is read back to front.
    let mut first = [0u8; 4096];
    let n = (len - header_end).min(first.len() as u64) as usize;
    if file.read_exact_at(&mut first[..n], header_end).is_ok() && first[..n].iter().any(|&b| b != 0)
    {
        return Ok(false);
    }
    Ok(data_end(&file, header_end, len) == header_end)
}

/// `seg` opened read-only, and its length.
fn open_with_len(storage: &dyn Storage, seg: &SegmentPath) -> Result<(DynFile, u64), OpenError> {
    let file = storage
        .open(&seg.path, false)
        .map_err(io_err("open segment", &seg.path))?;
    let len = file
        .len()
        .map_err(io_err("read the length of", &seg.path))?;
    Ok((file, len))
}
