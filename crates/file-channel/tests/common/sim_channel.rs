//! A channel on simulated storage for the checkpoint and segment-deletion tests: the directory
//! `/ch` with small segments, numbered ~250-byte events that check their own bytes when read
//! back, one-commit puts and takes, and readers for the checkpoint files, the segment ids and
//! which segment holds a sequence number.

use file_channel::format::checkpoint::Checkpoint;
use file_channel::format::segment_header::{
    segment_file_name, SegmentHeader, SEGMENT_HEADER_BYTES,
};
use file_channel::replay::{list_checkpoints, ReplayStart};
use file_channel::segment::list_segments;
use file_channel::{ChannelConfig, Event, FileChannel};
use file_channel_testkit::SimStorage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DIR: &str = "/ch";

pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// Small segments (a dozen events each), no prefill, only close writes checkpoints.
pub fn cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new(DIR);
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4096;
    c
}

/// Like [`cfg`], with a checkpoint at most 30 ms after any change.
pub fn cfg_fast_checkpoints() -> ChannelConfig {
    let mut c = cfg();
    c.checkpoint_interval_ms = 30;
    c
}

pub fn open(sim: &SimStorage, c: &ChannelConfig) -> FileChannel {
    FileChannel::open_with(c.clone(), Arc::new(sim.clone())).unwrap()
}

/// Event `i`: ~250 bytes, numbered by header `i`.
pub fn big(i: usize) -> Event {
    let body: Vec<u8> = format!("{i:05}:")
        .into_bytes()
        .into_iter()
        .chain((0..240).map(|j| (i * 7 + j) as u8))
        .collect();
    Event::new(body).with_header("i", i.to_string())
}

pub fn id_of(e: &Event) -> usize {
    let i: usize = e.header("i").expect("header i").parse().unwrap();
    assert_eq!(*e, big(i), "event {i} came back damaged");
    i
}

pub fn ids(events: &[Event]) -> Vec<usize> {
    events.iter().map(id_of).collect()
}

pub fn range(r: std::ops::Range<usize>) -> Vec<usize> {
    r.collect()
}

/// Puts events `r`, one commit each.
pub fn put_each(ch: &FileChannel, r: std::ops::Range<usize>) -> Vec<Event> {
    r.map(|i| {
        let e = big(i);
        let mut tx = ch.transaction();
        tx.put(&e).unwrap();
        tx.commit().unwrap();
        e
    })
    .collect()
}

/// Takes exactly `n` events in one transaction and commits it.
pub fn take_commit(ch: &FileChannel, n: usize) -> Vec<Event> {
    let mut tx = ch.transaction();
    let mut out = Vec::new();
    for k in 0..n {
        out.push(
            tx.take()
                .unwrap()
                .unwrap_or_else(|| panic!("only {k} of {n} events to take")),
        );
    }
    tx.commit().unwrap();
    out
}

/// Checkpoint files on `sim`, newest generation first.
pub fn checkpoints(sim: &SimStorage) -> Vec<(u64, PathBuf)> {
    list_checkpoints(sim, &dir()).unwrap()
}

pub fn read_checkpoint(sim: &SimStorage, path: &Path) -> Checkpoint {
    Checkpoint::decode(&sim.read_file(path).expect("checkpoint file")).unwrap()
}

/// Segment ids on `sim` in `dirs`, ascending.
pub fn segment_ids(sim: &SimStorage, dirs: &[PathBuf]) -> Vec<u64> {
    list_segments(sim, dirs)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

pub fn seg_path(id: u64) -> PathBuf {
    dir().join(segment_file_name(id))
}

/// `(segment id, first sequence number)` of every segment file, from their headers.
pub fn layout_from(files: Vec<(u64, Vec<u8>)>) -> Vec<(u64, u64)> {
    files
        .into_iter()
        .map(|(id, bytes)| {
            let h = SegmentHeader::decode(&bytes[..SEGMENT_HEADER_BYTES]).unwrap();
            assert_eq!(h.segment_id, id);
            (id, h.first_seq)
        })
        .collect()
}

pub fn sim_layout(sim: &SimStorage) -> Vec<(u64, u64)> {
    layout_from(
        list_segments(sim, &[dir()])
            .unwrap()
            .into_iter()
            .map(|s| (s.id, sim.read_file(&s.path).unwrap()))
            .collect(),
    )
}

/// The segment holding sequence number `seq`: the last one created at or before it.
pub fn segment_of(layout: &[(u64, u64)], seq: u64) -> u64 {
    layout
        .iter()
        .rev()
        .find(|&&(_, first)| first <= seq)
        .map(|&(id, _)| id)
        .expect("no segment holds that sequence number")
}

pub fn start_generation(ch: &FileChannel) -> Option<u64> {
    match &ch.open_report().start {
        ReplayStart::Checkpoint { generation, .. } => Some(*generation),
        ReplayStart::Full { .. } => None,
    }
}
