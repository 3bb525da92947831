//! The `replay` group: how long `FileChannel::open` takes on a channel holding 1M or 10M
//! pending events of 256-byte bodies, and how much memory the opened channel keeps.
//!
//! - `reopen_from_checkpoint/{1M,10M}`: an iteration is one `open` of a channel closed cleanly
//!   (so with a checkpoint); the close after it is not timed. Every open is checked to have
//!   started from a checkpoint and to hold exactly N events. Target: < 1 s for 10M.
//! - `full_replay/{1M,10M}`: the checkpoint files are removed (untimed), then `open` replays
//!   and checks every record of the log. Target: at least half the speed of the baseline.
//! - `sequential_read/{1M,10M}`: the baseline, measured in the same run: the same segment
//!   files read front to back with 4 MiB `read` calls into one buffer, nothing else.
//!   Both report the bytes of the segment files as their throughput, so the GiB/s compare.
//! - `full_replay_cold/1M` and `sequential_read_cold/1M`: the same pair with the segment files
//!   evicted from the page cache before each iteration (untimed; see
//!   [`sluice_benches::evict_from_page_cache`]). The warm pairs run from the page cache.
//! - After the timed functions, the `rss_probe` binary is spawned on each fixture (a fresh
//!   process per open) and the resident memory after open is printed with the 10M/1M ratio.
//!   Target: ≤ 1.2.
//!
//! The fixtures are built once, under `target/sluice-bench-fixtures/` (or
//! `$SLUICE_BENCH_FIXTURES`), on the workspace disk, and reused by later runs; building prints
//! its time. A summary with medians, ratios and verdicts is printed to stderr at the end.
//!
//! `SLUICE_REPLAY_QUICK=1` skips the 10M full-replay pair and the cold pair. When the bench
//! executable runs in criterion's test mode (`cargo test --benches`), small fixtures of 10k and
//! 20k events stand in for 1M and 10M.
//!
//! Run: `cargo bench -p sluice-benches --bench replay`.

use criterion::measurement::WallTime;
use criterion::{criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use file_channel::replay::ReplayStart;
use file_channel::FileChannel;
use sluice_benches::{
    ensure_fixture, evict_from_page_cache, fixtures_root, remove_checkpoints, replay_config,
    segment_files, sequential_read, Fixture, SEQUENTIAL_READ_BYTES,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Reopen from a checkpoint must take less than this for 10M events.
const REOPEN_TARGET: Duration = Duration::from_secs(1);
/// sequential_read time / full_replay time must be at least this.
const FULL_REPLAY_TARGET_RATIO: f64 = 0.5;
/// Resident memory after opening 10M events must be at most this multiple of 1M's.
const RSS_TARGET_RATIO: f64 = 1.2;

/// Per-iteration times of one benchmark function, collected from inside the routine (warm-up
/// included), so the summary can put the function next to its baseline.
#[derive(Debug, Default)]
struct Samples {
    secs: Vec<f64>,
    /// The engine's own `replay_ms` of each open.
    replay_ms: Vec<u64>,
}

impl Samples {
    fn median(v: &[f64]) -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }

    fn median_secs(&self) -> Option<f64> {
        Self::median(&self.secs)
    }

    fn median_replay_ms(&self) -> Option<f64> {
        let v: Vec<f64> = self.replay_ms.iter().map(|&m| m as f64).collect();
        Self::median(&v)
    }
}

/// One line of the closing summary.
#[derive(Debug, Default)]
struct Summary {
    lines: Vec<String>,
}

impl Summary {
    fn add(&mut self, line: String) {
        eprintln!("{line}");
        self.lines.push(line);
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, measurement: Duration) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement);
}

fn open(dir: &Path) -> FileChannel {
    match FileChannel::open(replay_config(dir)) {
        Ok(c) => c,
        Err(e) => panic!("cannot open {}: {e}", dir.display()),
    }
}

fn close(channel: FileChannel) {
    if let Err(e) = channel.close() {
        panic!("close failed: {e}");
    }
}

/// Opens `f` and checks where replay started and how many events it found.
fn open_checked(
    f: &Fixture,
    want_checkpoint: bool,
    samples: &mut Samples,
) -> (FileChannel, Duration) {
    let began = Instant::now();
    let channel = open(&f.dir);
    let took = began.elapsed();
    let report = channel.open_report();
    let from_checkpoint = matches!(report.start, ReplayStart::Checkpoint { .. });
    assert_eq!(
        from_checkpoint,
        want_checkpoint,
        "{}: replay started from {:?}",
        f.dir.display(),
        report.start
    );
    assert_eq!(
        channel.len(),
        f.events,
        "{}: pending events",
        f.dir.display()
    );
    samples.secs.push(took.as_secs_f64());
    samples.replay_ms.push(report.replay_ms);
    (channel, took)
}

fn reopen_from_checkpoint(c: &mut Criterion, f: &Fixture, label: &str) -> Samples {
    // A clean open and close guarantees a checkpoint even if an earlier run was interrupted
    // between removing the checkpoints and reopening.
    close(open(&f.dir));
    let mut samples = Samples::default();
    let mut group = c.benchmark_group("replay");
    configure(&mut group, Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("reopen_from_checkpoint", label), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (channel, took) = open_checked(f, true, &mut samples);
                total += took;
                close(channel);
            }
            total
        })
    });
    group.finish();
    samples
}

fn full_replay(
    c: &mut Criterion,
    f: &Fixture,
    name: &str,
    label: &str,
    cold: bool,
    files: &[(PathBuf, u64)],
) -> Samples {
    let bytes: u64 = files.iter().map(|f| f.1).sum();
    let mut samples = Samples::default();
    let mut group = c.benchmark_group("replay");
    configure(&mut group, Duration::from_secs(10));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(BenchmarkId::new(name, label), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if let Err(e) = remove_checkpoints(&f.dir) {
                    panic!("cannot remove the checkpoints of {}: {e}", f.dir.display());
                }
                if cold {
                    if let Err(e) = evict_from_page_cache(files) {
                        panic!("cannot evict the segment files from the page cache: {e}");
                    }
                }
                let (channel, took) = open_checked(f, false, &mut samples);
                total += took;
                // Close waits for the checkpoint open asked for after the full replay.
                close(channel);
            }
            total
        })
    });
    group.finish();
    samples
}

fn sequential(
    c: &mut Criterion,
    name: &str,
    label: &str,
    cold: bool,
    files: &[(PathBuf, u64)],
) -> Samples {
    let bytes: u64 = files.iter().map(|f| f.1).sum();
    let mut buf = vec![0u8; SEQUENTIAL_READ_BYTES];
    let mut samples = Samples::default();
    let mut group = c.benchmark_group("replay");
    configure(&mut group, Duration::from_secs(10));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(BenchmarkId::new(name, label), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if cold {
                    if let Err(e) = evict_from_page_cache(files) {
                        panic!("cannot evict the segment files from the page cache: {e}");
                    }
                }
                let began = Instant::now();
                let read = match sequential_read(files, &mut buf) {
                    Ok(n) => n,
                    Err(e) => panic!("sequential read failed: {e}"),
                };
                let took = began.elapsed();
                std::hint::black_box(&buf);
                assert_eq!(read, bytes, "the segment files changed size");
                samples.secs.push(took.as_secs_f64());
                total += took;
            }
            total
        })
    });
    group.finish();
    samples
}

/// The full-replay pair on `f`: replay, then the baseline on the same files; adds the ratio
/// to the summary.
fn replay_pair(c: &mut Criterion, f: &Fixture, label: &str, cold: bool, summary: &mut Summary) {
    // The first open after building may prefill the active segment: let it happen untimed so
    // both functions read files of the same size.
    close(open(&f.dir));
    let files = match segment_files(&f.dir) {
        Ok(files) => files,
        Err(e) => panic!("cannot list {}: {e}", f.dir.display()),
    };
    let bytes: u64 = files.iter().map(|f| f.1).sum();
    let suffix = if cold { "_cold" } else { "" };
    let replay = full_replay(c, f, &format!("full_replay{suffix}"), label, cold, &files);
    let baseline = sequential(c, &format!("sequential_read{suffix}"), label, cold, &files);
    let (Some(r), Some(s)) = (replay.median_secs(), baseline.median_secs()) else {
        return;
    };
    let gib = |secs: f64| bytes as f64 / secs / f64::from(1 << 30);
    let ratio = s / r;
    summary.add(format!(
        "full_replay{suffix}/{label}: {} segment files, {:.1} MiB; median open {:.1} ms \
         ({:.2} GiB/s, engine replay_ms {:.0}); sequential_read{suffix} {:.1} ms ({:.2} GiB/s); \
         ratio sequential/replay = {ratio:.2} (target >= {FULL_REPLAY_TARGET_RATIO}: {})",
        files.len(),
        bytes as f64 / f64::from(1 << 20),
        r * 1e3,
        gib(r),
        replay.median_replay_ms().unwrap_or(f64::NAN),
        s * 1e3,
        gib(s),
        verdict(ratio >= FULL_REPLAY_TARGET_RATIO),
    ));
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

/// One `rss_probe` run: (VmRSS, VmHWM) in kB after open, and the JSON line.
fn probe(dir: &Path, full: bool) -> (u64, u64, String) {
    let exe = env!("CARGO_BIN_EXE_rss_probe");
    let mut cmd = Command::new(exe);
    cmd.arg(dir);
    if full {
        cmd.arg("--full");
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {exe}: {e}"),
    };
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "rss_probe {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |key: &str| -> u64 {
        let tag = format!("\"{key}\":");
        line.split(&tag)
            .nth(1)
            .and_then(|rest| rest.split([',', '}']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in the rss_probe output {line:?}"))
    };
    (field("vm_rss_kb"), field("vm_hwm_kb"), line)
}

/// Resident memory after open, 10M against 1M, each the median of three fresh processes.
fn rss(small: &Fixture, large: &Fixture, full: bool, summary: &mut Summary) {
    let how = if full { "full replay" } else { "checkpoint" };
    let mut medians = Vec::new();
    for f in [small, large] {
        let mut runs: Vec<(u64, u64)> = (0..3)
            .map(|_| {
                let (rss, hwm, line) = probe(&f.dir, full);
                eprintln!("rss_probe ({how}): {line}");
                (rss, hwm)
            })
            .collect();
        runs.sort_unstable();
        medians.push(runs[1]);
    }
    let (r1, h1) = medians[0];
    let (r10, h10) = medians[1];
    let rr = r10 as f64 / r1 as f64;
    let hr = h10 as f64 / h1 as f64;
    summary.add(format!(
        "rss after open from {how}: {} events VmRSS {r1} kB VmHWM {h1} kB; {} events VmRSS \
         {r10} kB VmHWM {h10} kB; ratio RSS {rr:.3}, HWM {hr:.3}{}",
        small.events,
        large.events,
        if full {
            String::new()
        } else {
            format!(
                " (target <= {RSS_TARGET_RATIO}: {})",
                verdict(rr <= RSS_TARGET_RATIO && hr <= RSS_TARGET_RATIO)
            )
        }
    ));
}

fn fixture(root: &Path, name: &str, events: u64) -> Fixture {
    let dir = root.join(name);
    match ensure_fixture(&dir, events) {
        Ok(f) => {
            match f.built_in {
                Some(t) => eprintln!(
                    "built fixture {} ({events} events) in {:.1} s",
                    dir.display(),
                    t.as_secs_f64()
                ),
                None => eprintln!("reusing fixture {} ({events} events)", dir.display()),
            }
            f
        }
        Err(e) => panic!("cannot build the fixture {}: {e}", dir.display()),
    }
}

fn replay(c: &mut Criterion) {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let quick = !bench_mode || std::env::var_os("SLUICE_REPLAY_QUICK").is_some_and(|v| v != "0");
    let root = fixtures_root(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let (small, large) = if bench_mode {
        (
            fixture(&root, "replay-1m", 1_000_000),
            fixture(&root, "replay-10m", 10_000_000),
        )
    } else {
        (
            fixture(&root, "replay-test-10k", 10_000),
            fixture(&root, "replay-test-20k", 20_000),
        )
    };
    let (l1, l10) = if bench_mode {
        ("1M", "10M")
    } else {
        ("10k", "20k")
    };
    let mut summary = Summary::default();

    for (f, label) in [(&small, l1), (&large, l10)] {
        let s = reopen_from_checkpoint(c, f, label);
        if let Some(m) = s.median_secs() {
            summary.add(format!(
                "reopen_from_checkpoint/{label}: median open {:.2} ms (engine replay_ms {:.0}); \
                 target < {} ms: {}",
                m * 1e3,
                s.median_replay_ms().unwrap_or(f64::NAN),
                REOPEN_TARGET.as_millis(),
                verdict(m < REOPEN_TARGET.as_secs_f64())
            ));
        }
    }
    replay_pair(c, &small, l1, false, &mut summary);
    if !quick {
        replay_pair(c, &large, l10, false, &mut summary);
        let files = segment_files(&small.dir).unwrap_or_default();
        match evict_from_page_cache(&files) {
            Ok(()) => replay_pair(c, &small, l1, true, &mut summary),
            Err(e) => summary.add(format!(
                "cold pair skipped: cannot evict from the page cache: {e}"
            )),
        }
    }
    rss(&small, &large, false, &mut summary);
    rss(&small, &large, true, &mut summary);

    eprintln!("\nreplay summary (medians of every timed iteration of this run):");
    for line in &summary.lines {
        eprintln!("  {line}");
    }
}

/// Criterion's generated group function carries no doc comment.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::replay);
}
criterion_main!(harness::benches);
