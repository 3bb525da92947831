//! A repair is crash-safe (issue 14, "Inputs and configs"): a `chanctl repair --yes` killed
//! after any number of its storage operations, in every crash mode of the simulated storage,
//! leaves a directory that the engine opens and that a second repair finishes cleanly.
//!
//! The damaged directory needs every kind of step the repair takes at once: an invalid
//! checkpoint moved to `quarantine/`, valid ones deleted, damaged bytes copied to `quarantine/`
//! and overwritten with gap records, a missing segment replaced by a tombstone, the checkpoint
//! rebuilt through the engine and the report written.
#![allow(clippy::unwrap_used, clippy::panic)]

use file_channel::inspect::repair::{apply, RepairOptions};
use file_channel::inspect::verify::{verify, VerifyOptions};
use file_channel::inspect::ChannelDir;
use file_channel::{ChannelConfig, Event, FileChannel};
use file_channel_testkit::{CrashMode, SimStorage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new("/chan");
    c.segment_bytes_max = 4096;
    c.checkpoint_bytes = 1500;
    c.prefill_ahead_bytes = 0;
    c.minimum_required_space = 0;
    c
}

fn files_ending(sim: &SimStorage, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = sim
        .list_all()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .filter(|p| p.parent() == Some(Path::new("/chan")))
        .collect();
    v.sort();
    v
}

/// A channel of 40 put transactions (several segments, several checkpoints, nothing taken),
/// then damaged: a bit flipped in a record of an early segment, a middle segment deleted, and
/// the newest checkpoint's bytes flipped.
fn damaged() -> SimStorage {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap();
    for round in 0..40u64 {
        let mut tx = ch.transaction();
        for i in 0..3 {
            tx.put(&Event::new(format!(
                "event-{round}-{i}-{}",
                "x".repeat(100)
            )))
            .unwrap();
        }
        tx.commit().unwrap();
    }
    ch.close().unwrap();
    let segs = files_ending(&sim, "seg");
    assert!(segs.len() >= 5, "{segs:?}");
    sim.flip_bit(&segs[1], 200, 3).unwrap();
    let middle = &segs[segs.len() / 2];
    sim.truncate_file(middle, 0).unwrap();
    // A zero-length file is a torn creation only when newest; in the middle it is damage, so
    // remove it outright through the storage to make it missing.
    file_channel::storage::Storage::remove(&sim, middle).unwrap();
    let cps = files_ending(&sim, "ckpt");
    assert!(!cps.is_empty());
    sim.flip_bit(cps.last().unwrap(), 60, 2).unwrap();
    sim
}

fn open_dir(sim: &SimStorage) -> ChannelDir {
    ChannelDir::open_with(Arc::new(sim.clone()), false, Path::new("/chan"), &[]).unwrap()
}

#[test]
fn a_repair_killed_at_any_step_leaves_a_directory_that_opens_and_a_second_repair_finishes() {
    // The uninterrupted repair: how many operations it takes, and that it works.
    let whole = damaged();
    let report = verify(&open_dir(&whole), &VerifyOptions::default()).unwrap();
    assert!(report.is_corrupt(), "the damage is seen: {report:#?}");
    let before = whole.op_count();
    let out = apply(
        &open_dir(&whole),
        &RepairOptions::default(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(out.is_clean(), "{out:#?}");
    let kinds: Vec<&str> = out.applied.iter().map(|a| a.action.code()).collect();
    for needed in [
        "quarantine_checkpoint",
        "replace_with_gap_records",
        "create_tombstone_segment",
    ] {
        assert!(kinds.contains(&needed), "{needed} not among {kinds:?}");
    }
    let ops = whole.op_count() - before;
    assert!(ops > 20, "{ops}");

    let step = (ops / 150).max(1);
    let mut k = 1;
    while k <= ops {
        let sim = damaged();
        sim.crash_after_ops(k);
        // Killed partway: it may return an error or an outcome naming what failed.
        let _ = apply(
            &open_dir(&sim),
            &RepairOptions::default(),
            &VerifyOptions::default(),
        );
        for (mode, name) in [
            (CrashMode::DropUnsynced, "drop-unsynced"),
            (CrashMode::KeepAll, "keep-all"),
            (CrashMode::KeepPrefix { seed: k }, "keep-prefix"),
            (
                CrashMode::TornWrite {
                    seed: k,
                    sector_bytes: 512,
                },
                "torn-write",
            ),
        ] {
            let what = format!("repair killed after {k} of {ops} operations ({name})");
            let opened = sim.crash(mode);
            match FileChannel::open_with(cfg(), Arc::new(opened)) {
                Ok(ch) => ch.close().unwrap(),
                Err(e) => panic!("{what}: the engine does not open the directory: {e}"),
            }
            let again = sim.crash(mode);
            let second = apply(
                &open_dir(&again),
                &RepairOptions::default(),
                &VerifyOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{what}: a second repair fails: {e}"));
            assert!(second.is_clean(), "{what}: second repair: {second:#?}");
        }
        k += step;
    }
}
