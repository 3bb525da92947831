//! The inspection library against the images crashes leave: for crash points spread over a
//! workload that rotates segments, writes checkpoints and deletes consumed segments, `verify`
//! must find no corruption (a torn tail is allowed: nothing there was acknowledged), and a
//! repair must leave a directory that verifies clean and opens with the same pending events.
//! (Moved from the engine's unit tests when the simulated storage moved to the testkit.)
#![allow(clippy::unwrap_used, clippy::panic)]

use file_channel::inspect::repair::{apply, RepairOptions};
use file_channel::inspect::verify::{verify, CheckpointStatus, VerifyOptions};
use file_channel::inspect::{ChannelDir, InspectError};
use file_channel::{ChannelConfig, Event, FileChannel, Transaction};
use file_channel_testkit::{CrashMode, SimStorage};
use std::path::Path;
use std::sync::Arc;

fn cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new("/chan");
    c.segment_bytes_max = 4096;
    c.checkpoint_bytes = 1500;
    c.prefill_ahead_bytes = 0;
    c.minimum_required_space = 0;
    c
}

fn workload(ch: &FileChannel) {
    let mut held = None;
    for round in 0..30u64 {
        let mut tx = ch.transaction();
        for i in 0..3 {
            let body = format!(
                "event-{round}-{i}-{}",
                "x".repeat((round % 7) as usize * 30)
            );
            if tx.put(&Event::new(body)).is_err() {
                return;
            }
        }
        if tx.commit().is_err() {
            return;
        }
        if round % 3 != 0 {
            // Take a few; sometimes keep a transaction open across rounds so take commits
            // complete out of order, sometimes roll back.
            let mut tx = ch.transaction();
            for _ in 0..2 + round % 3 {
                if !matches!(tx.take(), Ok(Some(_))) {
                    break;
                }
            }
            match round % 5 {
                0 => tx.rollback(),
                1 => {
                    if let Some(old) = held.replace(tx) {
                        let _ = Transaction::commit(old);
                    }
                }
                _ => {
                    if tx.commit().is_err() {
                        return;
                    }
                }
            }
        }
    }
    if let Some(old) = held {
        let _ = old.commit();
    }
}

fn total_ops() -> u64 {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap();
    workload(&ch);
    ch.close().unwrap();
    sim.op_count()
}

fn pending_after_open(sim: &SimStorage) -> u64 {
    let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap();
    let n = ch.len();
    ch.close().unwrap();
    n
}

fn check_image(image: SimStorage, copy: SimStorage, what: &str) {
    let dir = match ChannelDir::open_with(Arc::new(image.clone()), false, Path::new("/chan"), &[]) {
        Ok(d) => d,
        // Crashed before the directory became a channel.
        Err(InspectError::NotAChannel { .. }) => return,
        Err(e) => panic!("{what}: {e}"),
    };
    let r = verify(&dir, &VerifyOptions::default()).unwrap();
    if std::env::var("INSPECT_DEBUG").is_ok() {
        eprintln!(
            "{what}: segs {} torn {} cps {:?} orphans {}",
            r.segments.len(),
            r.torn_tail.is_some(),
            r.checkpoints
                .iter()
                .map(|c| (
                    c.status.code(),
                    c.checkpoint.as_ref().map(|cp| cp.ranges.len())
                ))
                .collect::<Vec<_>>(),
            r.orphans.len()
        );
    }
    assert!(
        !r.is_corrupt(),
        "{what}: a crash image verifies as corrupt: problems {:#?} checkpoints {:#?}",
        r.problems,
        r.checkpoints
            .iter()
            .map(|c| (&c.path, &c.status))
            .collect::<Vec<_>>()
    );
    // What an open would find, before and after a repair, is the same.
    let expected = pending_after_open(&copy);
    let out = apply(&dir, &RepairOptions::default(), &VerifyOptions::default()).unwrap();
    assert!(out.is_clean(), "{what}: repair not clean: {out:#?}");
    assert_eq!(out.events_lost(), 0, "{what}");
    let after = verify(&dir.reload().unwrap(), &VerifyOptions::default()).unwrap();
    assert!(!after.is_corrupt(), "{what}: {after:#?}");
    assert_eq!(
        pending_after_open(&image),
        expected,
        "{what}: pending events changed"
    );
}

#[test]
fn crash_images_verify_clean_and_repair_changes_no_event() {
    let total = total_ops();
    assert!(total > 100, "{total}");
    let step = (total / 120).max(1);
    let mut k = 1;
    while k <= total {
        for (mode, name) in [
            (CrashMode::DropUnsynced, "drop-unsynced"),
            (CrashMode::KeepPrefix { seed: k }, "keep-prefix"),
            (
                CrashMode::TornWrite {
                    seed: k,
                    sector_bytes: 512,
                },
                "torn-write",
            ),
        ] {
            let sim = SimStorage::new();
            sim.crash_after_ops(k);
            if let Ok(ch) = FileChannel::open_with(cfg(), Arc::new(sim.clone())) {
                workload(&ch);
                let _ = ch.close();
            }
            // Two identical images: one to repair, one to open as it is.
            check_image(
                sim.crash(mode),
                sim.crash(mode),
                &format!("crash after op {k} ({name})"),
            );
        }
        k += step;
    }
}

#[test]
fn a_clean_close_verifies_clean_with_superseded_checkpoints() {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap();
    workload(&ch);
    ch.close().unwrap();
    // Reopen and close without writing: the newest segment is then empty.
    FileChannel::open_with(cfg(), Arc::new(sim.clone()))
        .unwrap()
        .close()
        .unwrap();
    let dir = ChannelDir::open_with(Arc::new(sim), false, Path::new("/chan"), &[]).unwrap();
    let r = verify(&dir, &VerifyOptions::default()).unwrap();
    assert!(!r.is_corrupt(), "{r:#?}");
    assert!(
        r.torn_tail.is_none(),
        "an empty newest segment is not a torn tail"
    );
    assert_eq!(r.checkpoints.len(), 2);
    assert_eq!(r.checkpoints[0].status, CheckpointStatus::Valid);
}
