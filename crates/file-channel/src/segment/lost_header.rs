//! Which [`RecordBinding`] the records of a segment carry when its header — which says the
//! segment's format version — is lost.
//!
//! Format-2 records are bound to their channel inside their checksums, so records behind a
//! lost header are first read as bound to this channel: another channel's segment of the same
//! id then holds no valid record here, and is not taken for ours. Format-1 records are tried
//! only while the channel may still hold format-1 segments (it was created in format 1, and no
//! format-2 segment came before this one): for those the old ambiguity remains.

use super::scan::Scanner;
use crate::format::record::RecordBinding;
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::storage::DynFile;
use std::io;

/// The bindings records behind a lost segment header may carry, in the order tried: bound to
/// `channel_id` when it is known, then unbound when `may_hold_format_1`.
pub fn bindings_behind_lost_header(
    channel_id: Option<u64>,
    may_hold_format_1: bool,
) -> Vec<RecordBinding> {
    let mut bindings: Vec<RecordBinding> =
        channel_id.map(RecordBinding::Channel).into_iter().collect();
    if may_hold_format_1 {
        bindings.push(RecordBinding::Unbound);
    }
    bindings
}

/// The first of `bindings` under which segment `segment_id` (`file`) holds a valid record: a
/// linear search per binding, done only for a segment whose header is lost.
pub fn first_binding_with_records(
    file: &DynFile,
    segment_id: u64,
    bindings: &[RecordBinding],
) -> io::Result<Option<RecordBinding>> {
    for &binding in bindings {
        let mut scanner = Scanner::from_start(file.clone(), segment_id, binding);
        if scanner
            .find_next_valid(SEGMENT_HEADER_BYTES as u64)?
            .is_some()
        {
            return Ok(Some(binding));
        }
    }
    Ok(None)
}

/// The binding to read segment `segment_id` with when its header is lost: the first of
/// `bindings` that finds a record, else the first of them (nothing will decode either way),
/// else [`RecordBinding::Unbound`].
pub fn binding_behind_lost_header(
    file: &DynFile,
    segment_id: u64,
    bindings: &[RecordBinding],
) -> io::Result<RecordBinding> {
    Ok(first_binding_with_records(file, segment_id, bindings)?
        .or_else(|| bindings.first().copied())
        .unwrap_or(RecordBinding::Unbound))
}
