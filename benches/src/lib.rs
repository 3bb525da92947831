//! Shared helpers for the Sluice benchmarks: the workload shapes, the raw-syscall baselines
//! each Sluice figure is compared with, and the producer loops driving a [`FileChannel`].
//!
//! Every bench target measures its baseline in the same criterion group (so in the same run)
//! as the Sluice functions, because absolute numbers on a shared machine drift from run to run
//! while ratios measured side by side hold.
//!
//! The replay helpers ([`ensure_fixture`], [`replay_config`], [`sequential_read`],
//! [`evict_from_page_cache`], [`proc_status_kb`]) serve the `replay` group and the `rss_probe`
//! binary: channel directories of 1M and 10M pending events built once and reused.

use file_channel::format::checkpoint::parse_checkpoint_file_name;
use file_channel::format::segment_header::parse_segment_file_name;
use file_channel::{ChannelConfig, Event, FileChannel, SyncPolicy};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// Events in one put transaction of the replay fixtures.
pub const FIXTURE_EVENTS_PER_TXN: usize = 1_000;

/// Bytes per `read` call of the sequential-read baseline (the engine's scanner reads 4 MiB
/// chunks too).
pub const SEQUENTIAL_READ_BYTES: usize = 4 << 20;

/// The configuration the replay fixtures are built and reopened with: defaults (128 MiB
/// segments, 8 MiB prefill, checkpoints every 30 s or 256 MiB) except a capacity above any
/// fixture, a small free-space reserve, and an interval sync policy (1 s or 64 MiB) so building
/// 10M events does not pay one `fdatasync` per commit. Open does not depend on the sync policy.
pub fn replay_config(dir: &Path) -> ChannelConfig {
    let mut config = ChannelConfig::new(dir);
    config.capacity = 100_000_000;
    config.minimum_required_space = 16 << 20;
    config.sync = SyncPolicy::Interval {
        interval_ms: 1_000,
        bytes: 64 << 20,
    };
    config
}

/// Where the replay fixtures live: `$SLUICE_BENCH_FIXTURES` if set, else
/// `sluice-bench-fixtures` in cargo's target directory (the parent of `target_tmpdir`, which
/// benches get as `CARGO_TARGET_TMPDIR`). Either way on a real disk, not tmpfs, so reads are
/// real file-system reads.
pub fn fixtures_root(target_tmpdir: &Path) -> PathBuf {
    match std::env::var_os("SLUICE_BENCH_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => target_tmpdir
            .parent()
            .unwrap_or(target_tmpdir)
            .join("sluice-bench-fixtures"),
    }
}

/// A channel directory holding a known number of pending events.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The channel directory.
    pub dir: PathBuf,
    /// Events pending in it.
    pub events: u64,
    /// How long building it took, or `None` if a complete one was reused.
    pub built_in: Option<Duration>,
}

/// The file marking `dir` as a complete fixture: a sibling `<dir>.complete` holding the event
/// count (outside the channel directory, so the engine never sees it).
fn marker_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".complete");
    dir.with_file_name(name)
}

/// Returns the fixture at `dir` holding `events` pending events of [`BODY_BYTES`]-byte bodies
/// (no headers), building it first unless a complete one is already there.
///
/// Building: [`replay_config`], put transactions of [`FIXTURE_EVENTS_PER_TXN`] events, then
/// `close()`, which writes a checkpoint. A directory without its completion marker (an
/// interrupted build) is removed and rebuilt.
///
/// # Panics
/// If `events` is not a multiple of [`FIXTURE_EVENTS_PER_TXN`].
pub fn ensure_fixture(dir: &Path, events: u64) -> io::Result<Fixture> {
    let txns = events / FIXTURE_EVENTS_PER_TXN as u64;
    assert_eq!(
        txns * FIXTURE_EVENTS_PER_TXN as u64,
        events,
        "fixture sizes are whole transactions of {FIXTURE_EVENTS_PER_TXN} events"
    );
    let marker = marker_path(dir);
    let want = format!("events={events}\n");
    if dir.is_dir() && std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        return Ok(Fixture {
            dir: dir.to_path_buf(),
            events,
            built_in: None,
        });
    }
    if marker.exists() {
        std::fs::remove_file(&marker)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let began = Instant::now();
    let channel = FileChannel::open(replay_config(dir)).map_err(io::Error::other)?;
    let batch = make_events(FIXTURE_EVENTS_PER_TXN, BODY_BYTES);
    commit_loop(&channel, &batch, txns);
    let pending = channel.len();
    channel.close().map_err(io::Error::other)?;
    if pending != events {
        return Err(io::Error::other(format!(
            "built {} but {pending} events are pending, expected {events}",
            dir.display()
        )));
    }
    std::fs::write(&marker, want)?;
    Ok(Fixture {
        dir: dir.to_path_buf(),
        events,
        built_in: Some(began.elapsed()),
    })
}

/// The segment files of the channel directory `dir` (its only data directory), in id order,
/// with their sizes.
pub fn segment_files(dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            found.push((id, entry.path(), entry.metadata()?.len()));
        }
    }
    found.sort_by_key(|f| f.0);
    Ok(found.into_iter().map(|(_, p, len)| (p, len)).collect())
}

/// Removes every checkpoint file (`checkpoint-*.ckpt`) of the channel directory `dir`, so the
/// next open replays the whole log; returns how many were removed.
pub fn remove_checkpoints(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .and_then(parse_checkpoint_file_name)
            .is_some()
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The sequential-read baseline: reads each file front to back with `read` calls of
/// `buf.len()` bytes into `buf`; returns the bytes read. The bytes are not inspected after the
/// kernel copied them into `buf` (that copy already brings every byte through the CPU), so
/// this is the fastest a reader of these files can be.
pub fn sequential_read(files: &[(PathBuf, u64)], buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    for (path, _) in files {
        let mut f = File::open(path)?;
        loop {
            let n = f.read(buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok(total)
}

/// Drops `files` from the page cache (fsyncs each with `sync FILE...`, then
/// `dd if=FILE iflag=nocache count=0`, i.e. `posix_fadvise(POSIX_FADV_DONTNEED)` on the whole
/// file), so the next read of them comes from the disk. Only these files are evicted: other
/// work on the machine keeps its cache.
pub fn evict_from_page_cache(files: &[(PathBuf, u64)]) -> io::Result<()> {
    let run = |cmd: &mut Command| -> io::Result<()> {
        let out = cmd.output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    run(Command::new("sync").args(files.iter().map(|f| &f.0)))?;
    for (path, _) in files {
        let mut input = std::ffi::OsString::from("if=");
        input.push(path);
        run(Command::new("dd")
            .arg(input)
            .args(["iflag=nocache", "count=0", "status=none"]))?;
    }
    Ok(())
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`, ...), or `None` if absent.
pub fn proc_status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
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

    #[test]
    fn proc_status_has_rss() {
        assert!(proc_status_kb("VmRSS").is_some_and(|kb| kb > 0));
        assert!(proc_status_kb("VmHWM").is_some());
        assert!(proc_status_kb("NoSuchField").is_none());
    }

    #[test]
    fn fixture_is_built_once_and_reads_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("f");
        let f = ensure_fixture(&dir, 2_000).unwrap();
        assert!(f.built_in.is_some());
        let again = ensure_fixture(&dir, 2_000).unwrap();
        assert!(again.built_in.is_none());
        let files = segment_files(&dir).unwrap();
        assert!(!files.is_empty());
        let mut buf = vec![0u8; SEQUENTIAL_READ_BYTES];
        let sum: u64 = files.iter().map(|f| f.1).sum();
        assert_eq!(sequential_read(&files, &mut buf).unwrap(), sum);
        assert!(remove_checkpoints(&dir).unwrap() >= 1);
        assert_eq!(remove_checkpoints(&dir).unwrap(), 0);
        let channel = FileChannel::open(replay_config(&dir)).unwrap();
        assert_eq!(channel.len(), 2_000);
        assert!(matches!(
            channel.open_report().start,
            file_channel::replay::ReplayStart::Full { .. }
        ));
        channel.close().unwrap();
    }
}
