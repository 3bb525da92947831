//! The check "nothing the engine did not write itself is deleted without a copy in
//! `quarantine/`": every non-zero byte the harness wrote into the directory
//! ([`ForeignBytes`]) must, once the engine is done with the directory, either still be in
//! place or be found under `quarantine/`.
//!
//! Zeros are exempt (they are what the engine itself leaves: preallocated tails, and a wipe
//! with zeros is indistinguishable from them). So are bytes of a segment below the read start
//! of an intact checkpoint, else of the newest checkpoint that decodes (`consumed_below`): every event there was consumed before the
//! damage, an open rightly never reads them, and deleting a consumed segment is routine; so are
//! bytes still in place, and the up to 7 bytes of a changed run before its first 8-byte boundary
//! (record padding, see [`first_lost`]). Bytes are looked for piecewise, so a copy split
//! at record boundaries still counts: from each position the longest run of up to 64 bytes
//! (and at least 8, or what is left) found in one quarantine file is skipped; a position where
//! no run of 8 bytes is found anywhere is a byte lost without a copy.

use super::actions::ForeignBytes;
use file_channel::format::segment_header::parse_segment_file_name;
use file_channel::quarantine::QUARANTINE_DIR_NAME;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files that hold foreign bytes, read as they are now (before the engine runs).
pub fn snapshot(foreign: &ForeignBytes) -> BTreeMap<PathBuf, Vec<u8>> {
    foreign
        .ranges
        .keys()
        .filter_map(|p| std::fs::read(p).ok().map(|b| (p.clone(), b)))
        .collect()
}

/// Every file under `dir/quarantine/`, read.
fn quarantine_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.join(QUARANTINE_DIR_NAME)];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push(b);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Shortest run looked for.
const MIN_RUN_BYTES: usize = 8;
/// Longest run looked for at once.
const MAX_RUN_BYTES: usize = 64;

/// The first position of `theirs` (the foreign bytes at file offset `start`; `now` is what the
/// file holds there today, if it still exists) that is neither still in place nor covered by
/// the quarantine copies. Each run of changed bytes is looked for in the copies; bytes of a run
/// before its first 8-byte boundary are spared: records start 8-byte aligned, so those can
/// only be a record's padding, which the engine never reads and a damage copy starts after.
fn first_lost(theirs: &[u8], start: u64, now: Option<&[u8]>, copies: &[Vec<u8>]) -> Option<usize> {
    let changed = |i: usize| now.is_none_or(|n| n.get(i) != Some(&theirs[i]));
    let mut i = 0;
    while i < theirs.len() {
        if !changed(i) {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < theirs.len() && changed(i) {
            i += 1;
        }
        let aligned = ((start + run_start as u64).next_multiple_of(8) - start) as usize;
        let from = aligned.max(run_start).min(i);
        if let Some(at) = first_uncovered(&theirs[from..i], copies) {
            return Some(from + at);
        }
    }
    None
}

/// The first position of `bytes` (relative) not covered by the quarantine copies.
fn first_uncovered(bytes: &[u8], copies: &[Vec<u8>]) -> Option<usize> {
    let mut p = 0;
    while p < bytes.len() {
        if bytes[p] == 0 {
            p += 1;
            continue;
        }
        let left = bytes.len() - p;
        let shortest = left.min(MIN_RUN_BYTES);
        let found_at = |run: usize| copies.iter().any(|c| contains(c, &bytes[p..p + run]));
        // A prefix found means every shorter prefix is found: search for the longest.
        let found = if found_at(shortest) {
            let (mut lo, mut hi) = (shortest, left.min(MAX_RUN_BYTES));
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if found_at(mid) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            Some(lo)
        } else {
            None
        };
        match found {
            Some(run) => p += run,
            None => return Some(p),
        }
    }
    None
}

/// The segment id a file name carries.
fn segment_id(path: &Path) -> Option<u64> {
    path.file_name()
        .and_then(|n| parse_segment_file_name(&n.to_string_lossy()))
}

/// Whether the range `start..end` of `path` lies below `read_start` (segment id, offset).
fn below_read_start(path: &Path, end: u64, read_start: (u64, u64)) -> bool {
    segment_id(path)
        .is_some_and(|id| id < read_start.0 || (id == read_start.0 && end <= read_start.1))
}

/// Checks the directory `dir` now against the foreign bytes as they were (`before`), sparing
/// segment bytes below `consumed_below` (the read start of the checkpoint written at close,
/// when it is intact). One message per file whose foreign bytes are gone without a copy.
pub fn check_copies(
    dir: &Path,
    foreign: &ForeignBytes,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    consumed_below: Option<(u64, u64)>,
) -> Vec<String> {
    let copies = quarantine_files(dir);
    let mut problems = Vec::new();
    for (path, ranges) in &foreign.ranges {
        let Some(old) = before.get(path) else {
            continue;
        };
        let now = std::fs::read(path).ok();
        for &(start, end) in ranges {
            if consumed_below.is_some_and(|rs| below_read_start(path, end, rs)) {
                continue;
            }
            // A range that starts below the read start and ends above it: only its part from
            // the read start on holds events a reader needs.
            let start = match consumed_below {
                Some(rs) if below_read_start(path, start, rs) && segment_id(path) == Some(rs.0) => {
                    start.max(rs.1)
                }
                _ => start,
            };
            let (s, e) = (start as usize, (end as usize).min(old.len()));
            if s >= e {
                continue;
            }
            let theirs = &old[s..e];
            if now.as_ref().and_then(|n| n.get(s..e)) == Some(theirs) {
                continue;
            }
            if let Some(at) = first_lost(
                theirs,
                start,
                now.as_ref().and_then(|n| n.get(s..e)),
                &copies,
            ) {
                let non_zero = theirs.iter().filter(|&&b| b != 0).count();
                problems.push(format!(
                    "{}: bytes {start}..{end} that the engine did not write ({non_zero} non-zero) are {} and {}/ holds no copy of the bytes at offset {}",
                    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
                    if now.is_some() { "changed" } else { "deleted" },
                    QUARANTINE_DIR_NAME,
                    start as usize + at
                ));
                break;
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_split_in_pieces_covers_and_a_missing_byte_run_does_not() {
        let bytes: Vec<u8> = (1..=200u8).collect();
        let copies = vec![bytes[..100].to_vec(), bytes[100..].to_vec()];
        assert_eq!(first_uncovered(&bytes, &copies), None);
        let partial = vec![bytes[..100].to_vec(), bytes[130..].to_vec()];
        assert_eq!(first_uncovered(&bytes, &partial), Some(100));
        assert_eq!(first_uncovered(&[0; 50], &[]), None, "zeros are exempt");
    }

    #[test]
    fn only_segment_bytes_below_the_read_start_are_spared() {
        let seg = |id: u64| PathBuf::from(format!("/c/log-{id:020}.seg"));
        assert!(below_read_start(&seg(2), 4000, (3, 100)));
        assert!(below_read_start(&seg(3), 100, (3, 100)));
        assert!(!below_read_start(&seg(3), 101, (3, 100)));
        assert!(!below_read_start(&seg(4), 10, (3, 100)));
        let checkpoint = PathBuf::from("/c/checkpoint-00000000000000000001.ckpt");
        assert!(!below_read_start(&checkpoint, 10, (3, 100)));
    }
}
