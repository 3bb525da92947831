//! The `append` group: durable put commits of 100 events × 256-byte bodies, against the raw
//! baseline of appending the same bytes to a file with `write` + `fdatasync`.
//!
//! Every function counts 100 events per iteration (one commit, or one raw append of the bytes a
//! commit writes), so the events/s criterion prints compare directly:
//!
//! - `raw_write_fdatasync`: one `write` of one record's bytes to the end of a growing file, then
//!   `fdatasync`.
//! - `sluice_1_producer`: one thread, one put transaction of 100 events, commit (default
//!   config: every commit fsynced, 128 MiB segments, 8 MiB prefill).
//! - `sluice_4_producers`: four threads committing concurrently; an iteration is still one
//!   commit of 100 events, the `iters` commits of a sample being split among the threads.
//! - `*_no_prefill`: the same with `prefill_ahead_bytes = 0`, to show what the prefill thread
//!   costs or saves.
//!
//! All files live in a temporary directory under cargo's target directory, on the same disk as
//! the workspace. After each Sluice function the fsyncs and group-commit batches per commit
//! are printed to stderr.
//!
//! Run: `cargo bench -p sluice-benches --bench append`.

use criterion::{criterion_main, Criterion, Throughput};
use file_channel::FileChannel;
use sluice_benches::{
    bench_config, commit_loop, concurrent_commits, make_events, put_record_bytes, RawLog,
    BODY_BYTES, EVENTS_PER_TXN,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where the benchmark's files go: cargo's per-target scratch directory, on the workspace disk.
fn scratch() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if let Err(e) = std::fs::create_dir_all(base) {
        panic!("cannot create {}: {e}", base.display());
    }
    match tempfile::tempdir_in(base) {
        Ok(d) => d,
        Err(e) => panic!(
            "cannot create a temporary directory in {}: {e}",
            base.display()
        ),
    }
}

fn open_channel(dir: &Path, prefill: bool) -> FileChannel {
    let mut config = bench_config(dir);
    if !prefill {
        config.prefill_ahead_bytes = 0;
    }
    match FileChannel::open(config) {
        Ok(c) => c,
        Err(e) => panic!("cannot open the channel in {}: {e}", dir.display()),
    }
}

/// Prints the channel's fsyncs and batches per commit since `before`.
fn report(name: &str, channel: &FileChannel, before: &[(&'static str, u64)]) {
    let after = channel.metrics().snapshot();
    let delta = |key: &str| {
        let get = |s: &[(&str, u64)]| s.iter().find(|(k, _)| *k == key).map_or(0, |(_, v)| *v);
        get(&after) - get(before)
    };
    let commits = delta("EventPutSuccessCount") / EVENTS_PER_TXN as u64;
    if commits == 0 {
        return;
    }
    let per = |n: u64| n as f64 / commits as f64;
    eprintln!(
        "{name}: {commits} commits, {:.3} fsyncs/commit, {:.3} batches/commit, \
         {} segments created, {:.1} MiB written",
        per(delta("FsyncCount")),
        per(delta("CommitBatchCount")),
        delta("SegmentsCreated"),
        delta("BytesWritten") as f64 / f64::from(1 << 20),
    );
}

fn close(channel: FileChannel) {
    if let Err(e) = channel.close() {
        panic!("close failed: {e}");
    }
}

fn sluice_producers(c: &mut Criterion, name: &str, producers: usize, prefill: bool) {
    let dir = scratch();
    let channel = open_channel(dir.path(), prefill);
    let events = Arc::new(make_events(EVENTS_PER_TXN, BODY_BYTES));
    let before = channel.metrics().snapshot();
    let mut group = c.benchmark_group("append");
    configure(&mut group);
    if producers == 1 {
        group.bench_function(name, |b| b.iter(|| commit_loop(&channel, &events, 1)));
    } else {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| concurrent_commits(&channel, &events, producers, iters))
        });
    }
    group.finish();
    report(name, &channel, &before);
    close(channel);
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(EVENTS_PER_TXN as u64));
}

fn raw_write_fdatasync(c: &mut Criterion) {
    let dir = scratch();
    let path = dir.path().join("raw.log");
    let mut raw = match RawLog::create(&path, put_record_bytes(EVENTS_PER_TXN, BODY_BYTES)) {
        Ok(r) => r,
        Err(e) => panic!("cannot create {}: {e}", path.display()),
    };
    let mut group = c.benchmark_group("append");
    configure(&mut group);
    group.bench_function("raw_write_fdatasync", |b| {
        b.iter(|| {
            if let Err(e) = raw.append_sync() {
                panic!("raw append failed: {e}");
            }
        })
    });
    group.finish();
}

fn append(c: &mut Criterion) {
    raw_write_fdatasync(c);
    sluice_producers(c, "sluice_1_producer", 1, true);
    sluice_producers(c, "sluice_4_producers", 4, true);
    sluice_producers(c, "sluice_1_producer_no_prefill", 1, false);
    sluice_producers(c, "sluice_4_producers_no_prefill", 4, false);
}

/// Criterion's generated group function carries no doc comment.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::append);
}
criterion_main!(harness::benches);
