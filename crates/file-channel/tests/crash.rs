//! Crash-point sweep on the simulated storage: a fixed workload that rotates segments, writes
//! checkpoints and deletes consumed segments is run once to count its I/O operations, then again
//! for every k with a crash after the k-th operation (and, separately, with the k-th operation
//! failing with EIO). Each time, the image a crash leaves is reopened and checked.
//!
//! The workload and the checks are `file_channel_testkit::harness` (`workload`, `sweep`, `check`), the
//! same code the `crashtest sweep` layer runs:
//!
//! - every acknowledged put that was not consumed by an acknowledged take commit is recovered
//!   (lost = 0);
//! - nothing appears that was never committed (phantoms = 0; a put whose commit failed is "in
//!   doubt" and may appear whole);
//! - a take commit followed by a successful put commit was durable: its events never reappear;
//! - bodies are intact, order is commit order, no event appears twice;
//! - all of it with encryption off and on (every put record sealed), and with encryption on no
//!   record fails to decrypt after a crash: a torn write is damage, not tampering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use file_channel::FileChannel;
use file_channel_testkit::harness::encrypt::Encryption;
use file_channel_testkit::harness::sweep::{count_ops, sweep, Injection, SWEEP_DIR};
use file_channel_testkit::harness::workload::{fixed_workload, sweep_config};
use file_channel_testkit::{CrashMode, SimStorage};
use std::sync::Arc;

/// Every point, with encryption off and on.
fn sweep_all(injection: Injection) {
    for encryption in Encryption::BOTH {
        let n = count_ops(encryption).unwrap();
        assert!(n > 100, "workload too small to sweep: {n} ops");
    }
    let runs = sweep(&[injection], &Encryption::BOTH, 1, &mut || true).unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let t = &run.tally;
        let mode = run.encryption;
        assert_eq!(t.failed, 0, "encryption {mode}: {:#?}", t.failures);
        // The op count varies a little from run to run (checkpoint timing).
        assert!(
            t.cases > 100,
            "encryption {mode}: only {} sweep points",
            t.cases
        );
        assert_eq!(
            t.lost + t.phantoms + t.damaged + t.other_violations + t.decrypt_failures,
            0,
            "encryption {mode}"
        );
    }
}

#[test]
fn workload_rotates_checkpoints_and_deletes() {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(
        sweep_config(SWEEP_DIR, Encryption::Off),
        Arc::new(sim.clone()),
    )
    .unwrap();
    let out = fixed_workload(&ch, &|| sim.op_count(), 0);
    assert!(out.finished);
    let m = ch.metrics();
    use std::sync::atomic::Ordering::Relaxed;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while m.segments_deleted.load(Relaxed) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(m.segments_created.load(Relaxed) >= 4, "no rotation");
    assert!(m.checkpoint_count.load(Relaxed) >= 3, "no checkpoints");
    assert!(m.segments_deleted.load(Relaxed) >= 1, "no deletion");
}

#[test]
fn crash_at_every_operation_drop_unsynced() {
    sweep_all(Injection::Crash(CrashMode::DropUnsynced));
}

#[test]
fn crash_at_every_operation_torn_write() {
    sweep_all(Injection::Crash(CrashMode::TornWrite {
        seed: 7,
        sector_bytes: 512,
    }));
}

#[test]
fn crash_at_every_operation_keep_prefix() {
    sweep_all(Injection::Crash(CrashMode::KeepPrefix { seed: 11 }));
}

#[test]
fn io_error_at_every_operation() {
    sweep_all(Injection::Fail);
}
