//! Shared helpers for the Sluice benchmarks: the workload shapes, the raw-syscall baselines
//! each Sluice figure is compared with, and the producer loops driving a [`FileChannel`].
//!
//! Every bench target measures its baseline in the same criterion group (so in the same run)
//! as the Sluice functions, because absolute numbers on a shared machine drift from run to run
//! while ratios measured side by side hold.

use file_channel::{ChannelConfig, Event, FileChannel};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Events in one put transaction of the standard append workload.
pub const EVENTS_PER_TXN: usize = 100;

/// Body bytes of each event of the standard append workload (no headers).
pub const BODY_BYTES: usize = 256;

/// Bytes of the fixed record header (`docs/format.md`, `format::record::RECORD_HEADER_BYTES`).
pub const RECORD_HEADER_BYTES: u64 = 56;

/// Record alignment: records are zero-padded up to a multiple of this.
pub const RECORD_ALIGN_BYTES: u64 = 8;

/// Encoded bytes of one header-less event with a `body`-byte body inside a put record:
/// `u16` header count, `u32` body length, the body.
pub const fn event_bytes(body: usize) -> u64 {
    2 + 4 + body as u64
}

/// Bytes one put commit of `events` header-less events of `body` bytes each writes to the
/// log: the record header plus the payload, padded to the record alignment.
pub const fn put_record_bytes(events: usize, body: usize) -> u64 {
    let len = RECORD_HEADER_BYTES + events as u64 * event_bytes(body);
    len.div_ceil(RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES
}

/// `n` header-less events with `body`-byte bodies of varied (not all-zero) content.
pub fn make_events(n: usize, body: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let b: Vec<u8> = (0..body).map(|j| (i * 31 + j * 7) as u8).collect();
            Event::new(b)
        })
        .collect()
}

/// The raw baseline: a file appended to with `write` and made durable with `fdatasync`, exactly
/// what a write-ahead log with no framing, no checksums and no threads would do.
#[derive(Debug)]
pub struct RawLog {
    file: File,
    buf: Vec<u8>,
}

impl RawLog {
    /// Creates `path` (which must not exist) for appends of `record_bytes` bytes each.
    pub fn create(path: &Path, record_bytes: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        let buf = (0..record_bytes).map(|i| (i * 13) as u8).collect();
        Ok(Self { file, buf })
    }

    /// Appends one record to the end of the file and `fdatasync`s it.
    pub fn append_sync(&mut self) -> io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.file.sync_data()
    }
}

/// The channel configuration the append benchmarks use: defaults (every commit fsynced,
/// 128 MiB segments, 8 MiB prefill) except a capacity large enough that a long run without a
/// consumer never fills the channel.
pub fn bench_config(dir: &Path) -> ChannelConfig {
    let mut config = ChannelConfig::new(dir);
    config.capacity = 100_000_000;
    config
}

/// Runs `commits` put transactions of `events` on `channel` from the calling thread.
///
/// # Panics
/// If a put or a commit fails: a benchmark has no use for a failing channel.
pub fn commit_loop(channel: &FileChannel, events: &[Event], commits: u64) {
    for _ in 0..commits {
        let mut tx = channel.transaction();
        for e in events {
            if let Err(err) = tx.put(e) {
                panic!("put failed: {err}");
            }
        }
        if let Err(err) = tx.commit() {
            panic!("commit failed: {err}");
        }
    }
}

/// Runs `commits` put transactions of `events` on `channel`, spread as evenly as possible over
/// `producers` threads committing concurrently; returns the wall time from the moment all
/// threads are ready until the last commit returns.
///
/// # Panics
/// If a producer thread cannot be started or panics (a failed put or commit).
pub fn concurrent_commits(
    channel: &FileChannel,
    events: &Arc<Vec<Event>>,
    producers: usize,
    commits: u64,
) -> Duration {
    let start = Arc::new(Barrier::new(producers + 1));
    let handles: Vec<_> = (0..producers)
        .map(|i| {
            let share =
                commits / producers as u64 + u64::from((i as u64) < commits % producers as u64);
            let channel = channel.clone();
            let events = events.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                commit_loop(&channel, &events, share);
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for h in handles {
        if h.join().is_err() {
            panic!("a producer thread panicked");
        }
    }
    began.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_size_matches_the_format() {
        // 56 + 100 × 262 = 26,256, already a multiple of 8.
        assert_eq!(put_record_bytes(100, 256), 26_256);
        assert_eq!(put_record_bytes(1, 1), 64);
        assert_eq!(event_bytes(256), Event::new(vec![0; 256]).encoded_len());
    }

    #[test]
    fn one_commit_writes_exactly_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = bench_config(dir.path());
        config.prefill_ahead_bytes = 0;
        let channel = FileChannel::open(config).unwrap();
        let before = channel.metrics().snapshot();
        let get = |s: &[(&str, u64)], k: &str| s.iter().find(|(n, _)| *n == k).unwrap().1;
        commit_loop(&channel, &make_events(EVENTS_PER_TXN, BODY_BYTES), 1);
        let after = channel.metrics().snapshot();
        assert_eq!(
            get(&after, "BytesWritten") - get(&before, "BytesWritten"),
            put_record_bytes(EVENTS_PER_TXN, BODY_BYTES)
        );
        channel.close().unwrap();
    }
}
