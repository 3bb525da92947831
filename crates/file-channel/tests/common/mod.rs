//! Helpers shared by the engine's integration tests: reading the whole queue, draining it,
//! listing segment files and decoding their records, waiting for a condition.
//! `sim_channel` and `disk_channel` hold the helpers of the checkpoint, segment-deletion and
//! replay test files, which share a channel set-up each.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod disk_channel;
pub mod sim_channel;

use file_channel::format::record::{decode, Decoded, RecordHeader};
use file_channel::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use file_channel::{Event, FileChannel};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Everything visible, taken in one transaction that is then rolled back (nothing consumed).
pub fn peek_all(ch: &FileChannel) -> Vec<Event> {
    let mut tx = ch.transaction();
    let mut out = Vec::new();
    while let Some(e) = tx.take().unwrap() {
        out.push(e);
    }
    tx.rollback();
    out
}

/// Takes and commits everything visible, in transactions of at most 100 events (fewer if the
/// channel's `transaction_capacity` is smaller).
pub fn drain(ch: &FileChannel) -> Vec<Event> {
    let batch = (ch.config().transaction_capacity as usize).min(100);
    let mut out = Vec::new();
    loop {
        let mut tx = ch.transaction();
        let mut got = 0;
        while got < batch {
            match tx.take().unwrap() {
                Some(e) => {
                    out.push(e);
                    got += 1;
                }
                None => break,
            }
        }
        tx.commit().unwrap();
        if got < batch {
            return out;
        }
    }
}

/// Segment files of `dir`, sorted by name (= by id).
pub fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("log-") && n.ends_with(".seg")
        })
        .collect();
    v.sort();
    v
}

/// The valid records of a segment file's bytes (bound as its intact header says), in order,
/// until the end of data.
pub fn records(bytes: &[u8], segment: u64) -> Vec<RecordHeader> {
    let mut out = Vec::new();
    let binding = SegmentHeader::decode(bytes)
        .expect("the segment header decodes")
        .binding();
    let mut off = SEGMENT_HEADER_BYTES as u64;
    while (off as usize) < bytes.len() {
        match decode(&bytes[off as usize..], binding, segment, off) {
            Ok(Decoded::Record(h, _)) => {
                assert_eq!(h.offset, off);
                off += h.aligned_len();
                out.push(h);
            }
            Ok(Decoded::End) => break,
            Err(kind) => panic!("segment {segment} does not decode at {off}: {kind}"),
        }
    }
    out
}

/// Polls `f` every 2 ms for up to `timeout`; returns its last answer.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
