//! Segment files: naming and listing ([`list_segments`]), the registry of open segment handles
//! shared by the writer and the readers ([`SegmentSet`]), scanning ([`scan`]), the records
//! behind a lost header ([`lost_header`]) and background
//! zero-filling ahead of the writer ([`prefill`]).

pub mod lost_header;
pub mod prefill;
pub mod scan;

use crate::format::record::RecordBinding;
use crate::format::segment_header::{parse_segment_file_name, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::storage::{DynFile, Storage};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Reads and decodes the header of segment file `file` (`file_len` bytes long; a file shorter
/// than a header is decoded as far as it goes, so it reports itself truncated). The one header
/// read of replay, the checkpoint check and the inspection tools.
pub fn read_header(
    file: &DynFile,
    file_len: u64,
) -> io::Result<Result<SegmentHeader, CorruptionKind>> {
    let mut head = [0u8; SEGMENT_HEADER_BYTES];
    let n = (file_len.min(SEGMENT_HEADER_BYTES as u64)) as usize;
    file.read_exact_at(&mut head[..n], 0)?;
    Ok(SegmentHeader::decode(&head[..n]))
}

/// A segment file found in a data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentPath {
    /// The segment id from the file name.
    pub id: u64,
    /// The file.
    pub path: PathBuf,
}

/// Lists the segment files in `dirs`, sorted by id. Other files are ignored; the same id in
/// two directories is an error (the caller names both files).
pub fn list_segments(storage: &dyn Storage, dirs: &[PathBuf]) -> io::Result<Vec<SegmentPath>> {
    let mut by_id: BTreeMap<u64, PathBuf> = BTreeMap::new();
    for dir in dirs {
        for name in storage.list(dir)? {
            if let Some(id) = parse_segment_file_name(&name) {
                let path = dir.join(&name);
                if let Some(other) = by_id.insert(id, path.clone()) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "segment {id} exists twice: {} and {}",
                            other.display(),
                            path.display()
                        ),
                    ));
                }
            }
        }
    }
    Ok(by_id
        .into_iter()
        .map(|(id, path)| SegmentPath { id, path })
        .collect())
}

/// An open segment.
#[derive(Clone, Debug)]
pub struct OpenSegment {
    /// The file.
    pub path: PathBuf,
    /// The handle, shared by writer and readers.
    pub file: DynFile,
    /// What its records' checksums are bound to (from its header's format version).
    pub binding: RecordBinding,
}

/// The segments of the log by id, shared by the writer (which adds them) and readers.
#[derive(Debug, Default)]
pub struct SegmentSet {
    inner: RwLock<BTreeMap<u64, OpenSegment>>,
}

impl SegmentSet {
    /// Adds (or replaces) a segment.
    pub fn insert(&self, id: u64, seg: OpenSegment) {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, seg);
    }

    /// Removes a segment.
    pub fn remove(&self, id: u64) -> Option<OpenSegment> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id)
    }

    /// The segment with this id.
    pub fn get(&self, id: u64) -> Option<OpenSegment> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// The ids of all segments, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The directory a new segment goes to: data directories are used in turn by segment id.
pub fn dir_for_segment(dirs: &[PathBuf], id: u64) -> &Path {
    &dirs[(id % dirs.len() as u64) as usize]
}
