//! The bit-flip fault: one flipped bit in data that was durable long before the crash (a
//! checkpoint, an older segment, a segment header), never undoing an earlier flip.

use crate::harness::rng::Rng;
use crate::SimStorage;
use file_channel::format::segment_header::{parse_segment_file_name, SEGMENT_HEADER_BYTES};
use file_channel::identity::{self, META_FILE_NAME};
use file_channel::segment::lost_header::{bindings_behind_lost_header, first_binding_with_records};
use file_channel::segment::read_header;
use file_channel::storage::Storage;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Flips one bit of "old" data in the crash image: a checkpoint file, a segment before the
/// newest one holding records, or a segment header (fsynced when the segment was created).
/// Damage to the rest of the newest segment cannot be told from a torn write (`docs/design.md`),
/// so it is not injected here.
pub(super) fn flip_old(sim: &SimStorage, seed: u64, flipped: &mut BTreeSet<(PathBuf, u64, u8)>) {
    let mut rng = Rng::new(seed);
    let files = sim.list_all();
    let mut segments: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let len_of = |p: &PathBuf| sim.read_file(p).map_or(0, |b| b.len() as u64);
    // The newest segment holding a record, and any after it, may end in their last write: only
    // their headers (fsynced at creation) count as old data. A newest segment without records
    // (a rotation that crashed before the old segment's seal was durable) leaves its
    // predecessor's tail as the last write.
    let mut last_writes: Vec<&PathBuf> = Vec::new();
    while let Some(p) = segments.pop() {
        last_writes.push(p);
        if segment_holds_a_record(sim, p) {
            break;
        }
    }
    // (file, bytes that may flip): whole files, and the durable headers of the newest segments.
    let mut targets: Vec<(&PathBuf, u64)> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .chain(segments)
        .map(|p| (p, len_of(p)))
        .collect();
    let header = SEGMENT_HEADER_BYTES as u64;
    for p in last_writes {
        if len_of(p) >= header {
            targets.push((p, header));
        }
    }
    targets.retain(|t| t.1 > 0);
    if targets.is_empty() {
        return;
    }
    let (path, len) = targets[rng.below(targets.len() as u64) as usize];
    let offset = rng.below(len);
    let mut bit = rng.below(8) as u8;
    // Flipping a bit flipped before would restore the original byte (and bring back events
    // the engine rightly reported lost); damage does not heal, so take the next bit.
    while flipped.contains(&(path.clone(), offset, bit)) {
        bit = (bit + 1) % 8;
        if bit == 0 && (0..8).all(|b| flipped.contains(&(path.clone(), offset, b))) {
            return;
        }
    }
    if sim.flip_bit(path, offset, bit).is_ok() {
        flipped.insert((path.clone(), offset, bit));
    }
}

/// Whether segment file `path` holds at least one intact record.
fn segment_holds_a_record(sim: &SimStorage, path: &Path) -> bool {
    let id = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_file_name);
    let (Some(id), Ok(file)) = (id, sim.open(path, false)) else {
        return false;
    };
    // The header says how the records are bound; behind a flipped one, try both formats.
    let bindings = match file.len().and_then(|len| read_header(&file, len)) {
        Ok(Ok(header)) => vec![header.binding()],
        _ => {
            let channel_id = path
                .parent()
                .and_then(|d| sim.read_file(&d.join(META_FILE_NAME)))
                .and_then(|b| identity::decode(&b).ok())
                .map(|i| i.channel_id);
            bindings_behind_lost_header(channel_id, true)
        }
    };
    first_binding_with_records(&file, id, &bindings).is_ok_and(|b| b.is_some())
}
