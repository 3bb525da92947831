//! The key check at open, before replay changes anything: every segment that may still hold
//! pending events is readable with the keys given.
//!
//! An encrypting writer never appends to a segment an earlier process wrote (it rotates
//! first), so the encrypted put records of one segment all name one key, and the segment's
//! first put record tells which. The records checked are those from the newest readable
//! checkpoint's read start on (all of them when there is none): nothing before it is pending,
//! so a key retired after `chanctl stat` stopped listing it is not asked for.
//! Only a few small reads per segment: the check costs nothing like a replay.

use crate::encryption::{envelope, hex, KeyLookup, Keyring};
use crate::error::{KeyProblem, OpenError};
use crate::format::record::{self, Decoded, RecordKind, RECORD_HEADER_BYTES};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::replay::{list_checkpoints, read_checkpoint};
use crate::segment::{list_segments, read_header};
use crate::storage::{DynFile, Storage};
use std::path::{Path, PathBuf};

/// A segment's key, as its first put record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentKey {
    pub segment: u64,
    pub path: PathBuf,
    pub key_id: String,
    pub key_check: [u8; crate::encryption::derive::KEY_CHECK_BYTES],
    /// The channel id in the segment's header.
    pub channel_id: u64,
}

/// Refuses the open if a segment from the read start on holds encrypted records whose key is
/// missing, wrong, or not active (encryption turned off while they are pending).
pub(crate) fn check_keys(
    storage: &dyn Storage,
    dir: &Path,
    dirs: &[PathBuf],
    keyring: Option<&Keyring>,
    channel_id: Option<u64>,
) -> Result<(), OpenError> {
    for key in pending_segment_keys(storage, dir, dirs) {
        if channel_id.is_some_and(|id| id != key.channel_id) {
            // Another channel's segment: replay refuses it as foreign, naming the file; its
            // key is none of ours to check.
            continue;
        }
        let problem = match keyring {
            Some(k) if k.active().is_some() => match k.lookup(&key.key_id, &key.key_check) {
                KeyLookup::Found(_) => continue,
                KeyLookup::Missing => KeyProblem::Missing { listed: listed(k) },
                KeyLookup::Wrong => KeyProblem::Wrong {
                    configured: k
                        .get(&key.key_id)
                        .map(|d| hex(&d.check()))
                        .unwrap_or_default(),
                    recorded: hex(&key.key_check),
                },
            },
            _ => KeyProblem::EncryptionOff,
        };
        tracing::error!(segment = key.segment, path = %key.path.display(), key_id = %key.key_id,
            problem = %problem, "pending events cannot be read with the keys given; not opening");
        return Err(OpenError::Key {
            path: key.path,
            segment: key.segment,
            key_id: key.key_id,
            problem: Box::new(problem),
        });
    }
    Ok(())
}

fn listed(k: &Keyring) -> String {
    let ids: Vec<&str> = k.ids().collect();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// The keys of the segments from the newest readable checkpoint's read start on. Anything
/// unreadable is passed over: replay reports damage, this only checks keys.
pub(crate) fn pending_segment_keys(
    storage: &dyn Storage,
    dir: &Path,
    dirs: &[PathBuf],
) -> Vec<SegmentKey> {
    let (from, from_offset) = list_checkpoints(storage, dir)
        .unwrap_or_default()
        .iter()
        .find_map(|(_, p)| read_checkpoint(storage, p).ok())
        .map_or((0, 0), |cp| cp.read_start);
    let segments = list_segments(storage, dirs).unwrap_or_default();
    segments
        .into_iter()
        .filter(|s| s.id >= from)
        .filter_map(|s| {
            let file = storage.open(&s.path, false).ok()?;
            let start = if s.id == from { from_offset } else { 0 };
            let (key_id, key_check, channel_id) = first_put_key(&file, s.id, start)?;
            Some(SegmentKey {
                segment: s.id,
                path: s.path,
                key_id,
                key_check,
                channel_id,
            })
        })
        .collect()
}

/// The key named by the first put record of segment `id` at or after offset `from`, if it is
/// encrypted, with the channel id of the segment's header.
pub(crate) fn first_put_key(
    file: &DynFile,
    id: u64,
    from: u64,
) -> Option<(
    String,
    [u8; crate::encryption::derive::KEY_CHECK_BYTES],
    u64,
)> {
    let file_len = file.len().ok()?;
    let header = read_header(file, file_len).ok()?.ok()?;
    let binding = header.binding();
    let mut offset = from.max(SEGMENT_HEADER_BYTES as u64);
    let mut head = [0u8; RECORD_HEADER_BYTES];
    loop {
        if offset + RECORD_HEADER_BYTES as u64 > file_len {
            return None;
        }
        file.read_exact_at(&mut head, offset).ok()?;
        // Only the length is used before the whole record is decoded (and checksummed).
        let len = u64::from(record::peek_header(&head)?.len);
        if offset + len > file_len {
            return None;
        }
        let mut rec = vec![0u8; len as usize];
        file.read_exact_at(&mut rec, offset).ok()?;
        let Ok(Decoded::Record(h, payload)) = record::decode(&rec, binding, id, offset) else {
            return None;
        };
        match h.kind {
            RecordKind::Put if h.is_encrypted() => {
                let env = envelope::parse(payload).ok()?;
                return Some((env.key_id.to_string(), env.key_check, header.channel_id));
            }
            RecordKind::Put | RecordKind::Seal => return None,
            RecordKind::Take | RecordKind::Gap => offset += h.aligned_len(),
        }
    }
}
