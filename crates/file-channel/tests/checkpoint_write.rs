//! Checkpoint writing: a clean close leaves a checkpoint that reopen starts from (reading no
//! record); checkpoints are written periodically while work goes on, generations increase and
//! only two are kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::sim_channel::{
    big, cfg, checkpoints, dir, ids, open, put_each, range, read_checkpoint, segment_ids,
    take_commit,
};
use common::{drain, peek_all, wait_until};

use file_channel::format::checkpoint::checkpoint_file_name;
use file_channel::replay::ReplayStart;
use file_channel::storage::Storage;
use file_channel_testkit::{CrashMode, SimStorage};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[test]
fn clean_close_checkpoint_is_where_reopen_starts() {
    let sim = SimStorage::new();
    let c = cfg();
    let ch = open(&sim, &c);
    assert_eq!(
        ch.open_report().start,
        ReplayStart::Full { rejected: vec![] }
    );
    let all = put_each(&ch, 0..40);
    assert_eq!(ids(&take_commit(&ch, 15)), range(0..15));
    assert!(
        ch.metrics().segments_created.load(Relaxed) >= 3,
        "the workload must span several segments"
    );
    assert_eq!(
        ch.metrics().checkpoint_count.load(Relaxed),
        0,
        "neither the interval (30 s) nor the byte threshold (256 MiB) was reached"
    );
    ch.close().unwrap();

    let cps = checkpoints(&sim);
    let ckpt = dir().join(checkpoint_file_name(1));
    assert_eq!(cps, vec![(1, ckpt.clone())], "close writes exactly one");
    let cp = read_checkpoint(&sim, &ckpt);
    assert_eq!(cp.generation, 1);
    assert!(
        cp.first_live_segment > 1,
        "events 0..15 filled segment 1: {cp:?}"
    );
    assert_eq!(
        segment_ids(&sim, &[dir()])[0],
        cp.first_live_segment,
        "close deletes the segments its checkpoint frees"
    );
    let with_ckpt = sim.crash(CrashMode::KeepAll);
    let without_ckpt = sim.crash(CrashMode::KeepAll);

    let ch = open(&with_ckpt, &c);
    let r = ch.open_report().clone();
    assert_eq!(
        r.start,
        ReplayStart::Checkpoint {
            path: ckpt.clone(),
            generation: 1,
            rejected: vec![],
        }
    );
    assert_eq!(
        r.records, 0,
        "the close checkpoint covers the whole log: nothing follows it"
    );
    assert_eq!(ch.metrics().replay_records.load(Relaxed), 0);
    assert_eq!(r.pending_events, 25);
    assert_eq!(r.orphans, Vec::<PathBuf>::new());
    assert_eq!(r.torn_tail, None);
    assert_eq!(ch.len(), 25);
    assert_eq!(ids(&peek_all(&ch)), range(15..40));
    assert_eq!(drain(&ch), all[15..].to_vec());
    ch.close().unwrap();

    // The same log without its checkpoint: every record is read again.
    without_ckpt.remove(&ckpt).unwrap();
    without_ckpt.sync_dir(&dir()).unwrap();
    let ch = open(&without_ckpt, &c);
    let r = ch.open_report().clone();
    assert_eq!(r.start, ReplayStart::Full { rejected: vec![] });
    // Close deleted the segments wholly below event 15; the rest is read record by record:
    // at least the 25 pending events' put records and the take record.
    assert!(
        r.records >= 26,
        "a full replay reads every record of the remaining segments, read {}",
        r.records
    );
    assert_eq!(r.pending_events, 25);
    assert_eq!(ids(&peek_all(&ch)), range(15..40));
}

#[test]
fn checkpoints_are_written_periodically_and_two_are_kept() {
    let sim = SimStorage::new();
    let mut c = cfg();
    c.checkpoint_bytes = 2048;
    let ch = open(&sim, &c);
    let observer = ch.clone();
    let mut put = 0;
    let mut taken = 0;
    let mut newest_seen: Vec<u64> = Vec::new();
    for round in 0..60 {
        let mut tx = ch.transaction();
        for i in put..put + 3 {
            tx.put(&big(i)).unwrap();
        }
        tx.commit().unwrap();
        put += 3;
        let got = take_commit(&ch, 2);
        assert_eq!(ids(&got), range(taken..taken + 2));
        taken += 2;

        let gens: Vec<u64> = checkpoints(&sim).into_iter().map(|(g, _)| g).collect();
        if let Some(&newest) = gens.first() {
            if let Some(&last) = newest_seen.last() {
                assert!(
                    newest >= last,
                    "round {round}: newest generation went back from {last} to {newest}"
                );
            }
            if newest_seen.last() != Some(&newest) {
                newest_seen.push(newest);
            }
        }
        if round % 10 == 9 {
            // A new generation is renamed in before the oldest is removed; once the
            // checkpoint thread is done, two remain.
            assert!(
                wait_until(Duration::from_secs(3), || checkpoints(&sim).len() <= 2),
                "round {round}: more than two checkpoints kept: {:?}",
                checkpoints(&sim)
            );
        }
    }
    let m = observer.metrics();
    assert!(
        newest_seen.len() >= 5,
        "generations seen while working: {newest_seen:?}"
    );
    assert!(
        m.checkpoint_count.load(Relaxed) >= 10,
        "{} checkpoints for ~70 KiB of log at checkpoint_bytes = 2048",
        m.checkpoint_count.load(Relaxed)
    );
    ch.close().unwrap();
    let written = m.checkpoint_count.load(Relaxed);
    assert_eq!(m.checkpoint_write_error_count.load(Relaxed), 0);
    let cps = checkpoints(&sim);
    assert_eq!(
        cps,
        vec![
            (written, dir().join(checkpoint_file_name(written))),
            (written - 1, dir().join(checkpoint_file_name(written - 1))),
        ],
        "the two newest generations remain, numbered 1, 2, … per checkpoint written"
    );
    assert!(sim.read_file(&dir().join("checkpoint.tmp")).is_none());
    let newest = read_checkpoint(&sim, &cps[0].1);
    let older = read_checkpoint(&sim, &cps[1].1);
    assert!(newest.position >= older.position);
    assert!(newest.low_water_mark >= older.low_water_mark);

    let ch = open(&sim, &c);
    assert_eq!(
        ch.open_report().start,
        ReplayStart::Checkpoint {
            path: cps[0].1.clone(),
            generation: written,
            rejected: vec![],
        }
    );
    assert_eq!(ch.open_report().records, 0);
    assert_eq!(ids(&peek_all(&ch)), range(120..180));
}
