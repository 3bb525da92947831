//! Segment deletion after checkpoints: consumed segments are deleted (also across two data
//! directories) while an old pending event pins them; orphans of an interrupted deletion are
//! swept at open; and a crash at any step of checkpoint and deletion, or after them, loses no
//! acknowledged event and resurrects no durably consumed one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::sim_channel::{
    big, cfg, cfg_fast_checkpoints, checkpoints, dir, id_of, ids, layout_from, open, put_each,
    range, read_checkpoint, seg_path, segment_ids, segment_of, sim_layout, start_generation,
    take_commit,
};
use common::{drain, peek_all, wait_until};

use file_channel::format::checkpoint::Checkpoint;
use file_channel::format::segment_header::segment_file_name;
use file_channel::replay::{list_checkpoints, ReplayStart};
use file_channel::storage::Storage;
use file_channel::{ChannelConfig, FileChannel};
use file_channel_testkit::{CrashMode, SimStorage};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn consumed_segments_are_deleted_and_pending_ones_kept() {
    let sim = SimStorage::new();
    let c = cfg_fast_checkpoints();
    let ch = open(&sim, &c);
    let observer = ch.clone();
    let m = observer.metrics();
    put_each(&ch, 0..60);
    let layout = sim_layout(&sim);
    assert!(
        layout.len() >= 5,
        "60 events should span 5+ segments: {layout:?}"
    );
    let base = layout[0].1;
    let all_ids: Vec<u64> = layout.iter().map(|&(id, _)| id).collect();

    // Nothing consumed: checkpoints are written, nothing is deleted.
    assert!(wait_until(Duration::from_secs(3), || m
        .checkpoint_count
        .load(Relaxed)
        >= 1));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(m.segments_deleted.load(Relaxed), 0);
    assert_eq!(segment_ids(&sim, &[dir()]), all_ids);

    // Some consumed: segments wholly below the consumed events go, those with pending stay.
    assert_eq!(ids(&take_commit(&ch, 35)), range(0..35));
    let last_consumed = segment_of(&layout, base + 34);
    let first_pending = segment_of(&layout, base + 35);
    let gone = |below: u64| {
        let on_disk = segment_ids(&sim, &[dir()]);
        on_disk.iter().all(|&id| id >= below)
    };
    assert!(
        wait_until(Duration::from_secs(5), || gone(last_consumed)),
        "segments below {last_consumed} still on disk: {:?}",
        segment_ids(&sim, &[dir()])
    );
    let on_disk = segment_ids(&sim, &[dir()]);
    for id in all_ids.iter().filter(|&&id| id >= first_pending) {
        assert!(on_disk.contains(id), "segment {id} holds pending events");
    }
    ch.close().unwrap();
    // Counted after close, when no deletion can be under way.
    let on_disk = segment_ids(&sim, &[dir()]);
    let deleted = m.segments_deleted.load(Relaxed);
    let expect_min = all_ids.iter().filter(|&&id| id < last_consumed).count() as u64;
    let expect_max = all_ids.iter().filter(|&&id| id < first_pending).count() as u64;
    assert!(
        (expect_min..=expect_max).contains(&deleted) && deleted > 0,
        "segments_deleted = {deleted}, expected {expect_min}..={expect_max}"
    );
    let created = *on_disk.last().unwrap() - all_ids[0] + 1;
    assert_eq!(deleted, created - on_disk.len() as u64, "{on_disk:?}");
    assert_eq!(m.segment_count.load(Relaxed), on_disk.len() as u64);

    let ch = open(&sim, &c);
    assert!(start_generation(&ch).is_some());
    assert_eq!(ch.open_report().orphans, Vec::<PathBuf>::new());
    assert_eq!(ch.len(), 25);
    assert_eq!(ids(&peek_all(&ch)), range(35..60));

    // Everything consumed, then two more put: only the tail of the log remains.
    assert_eq!(ids(&drain(&ch)), range(35..60));
    put_each(&ch, 60..62);
    let layout = sim_layout(&sim);
    let last_consumed = segment_of(&layout, base + 59);
    assert!(
        wait_until(Duration::from_secs(5), || gone(last_consumed)),
        "segments below {last_consumed} still on disk: {:?}",
        segment_ids(&sim, &[dir()])
    );
    assert!(ch.metrics().segments_deleted.load(Relaxed) > 0);
    let on_disk = segment_ids(&sim, &[dir()]);
    assert!(
        on_disk.contains(&segment_of(&layout, base + 60)),
        "{on_disk:?}"
    );
    ch.close().unwrap();
    let ch = open(&sim, &c);
    assert_eq!(ids(&drain(&ch)), range(60..62));
}

#[test]
fn an_old_pending_event_pins_every_segment_until_it_is_consumed() {
    let sim = SimStorage::new();
    let c = cfg_fast_checkpoints();
    let ch = open(&sim, &c);
    let m = ch.metrics();
    put_each(&ch, 0..50);
    let layout = sim_layout(&sim);
    let base = layout[0].1;
    let first = layout[0].0;
    assert!(layout.len() >= 4, "{layout:?}");

    // Event 0 is taken but its transaction stays open; everything else is consumed.
    let mut hold = ch.transaction();
    assert_eq!(id_of(&hold.take().unwrap().unwrap()), 0);
    assert_eq!(ids(&take_commit(&ch, 49)), range(1..50));
    // Wait for a checkpoint that reflects the take commit.
    let covers_takes = |sim: &SimStorage| {
        checkpoints(sim).first().is_some_and(|(_, p)| {
            sim.read_file(p)
                .and_then(|b| Checkpoint::decode(&b).ok())
                .is_some_and(|cp| cp.ranges == vec![(base + 1, base + 50)])
        })
    };
    assert!(
        wait_until(Duration::from_secs(5), || covers_takes(&sim)),
        "no checkpoint recorded the take commit"
    );
    let cp = read_checkpoint(&sim, &checkpoints(&sim)[0].1);
    assert_eq!(cp.low_water_mark, base, "event 0 is still pending");
    assert_eq!(cp.first_live_segment, first);
    std::thread::sleep(Duration::from_millis(100));
    let on_disk = segment_ids(&sim, &[dir()]);
    let active = *on_disk.last().unwrap();
    assert_eq!(
        m.segments_deleted.load(Relaxed),
        0,
        "event 0 pins segment {first}"
    );
    assert!(
        on_disk.starts_with(&layout.iter().map(|&(id, _)| id).collect::<Vec<_>>()),
        "every segment is kept: {on_disk:?}"
    );
    assert_eq!(m.segments_pinned.load(Relaxed), active - first);
    assert!(m.segments_pinned.load(Relaxed) >= 3);
    assert_eq!(ch.len(), 1);

    // Rolled back, event 0 is the next one taken; consuming it frees the segments.
    hold.rollback();
    assert_eq!(ids(&take_commit(&ch, 1)), vec![0]);
    assert!(ch.is_empty());
    let last_consumed = segment_of(&layout, base + 49);
    assert!(
        wait_until(Duration::from_secs(5), || segment_ids(&sim, &[dir()])
            .iter()
            .all(|&id| id >= last_consumed)),
        "segments below {last_consumed} still on disk: {:?}",
        segment_ids(&sim, &[dir()])
    );
    assert!(sim.read_file(&seg_path(first)).is_none());
    assert!(m.segments_deleted.load(Relaxed) >= last_consumed - first);
    let active = *segment_ids(&sim, &[dir()]).last().unwrap();
    assert!(
        m.segments_pinned.load(Relaxed) <= active - last_consumed,
        "pinned = {}, active = {active}, last consumed event in {last_consumed}",
        m.segments_pinned.load(Relaxed)
    );
    ch.close().unwrap();
    let ch = open(&sim, &c);
    assert!(ch.is_empty());
    assert_eq!(ch.open_report().pending_events, 0);
}

#[test]
fn orphan_segments_left_by_an_interrupted_deletion_are_swept_at_open() {
    let sim = SimStorage::new();
    let c = cfg_fast_checkpoints();
    let ch = open(&sim, &c);
    put_each(&ch, 0..40);
    let saved: Vec<(PathBuf, Vec<u8>)> = [1, 2]
        .into_iter()
        .map(|id| (seg_path(id), sim.read_file(&seg_path(id)).unwrap()))
        .collect();
    assert_eq!(ids(&drain(&ch)), range(0..40));
    assert!(
        wait_until(Duration::from_secs(5), || saved
            .iter()
            .all(|(p, _)| sim.read_file(p).is_none())),
        "segments 1 and 2 were not deleted"
    );
    put_each(&ch, 40..43);
    ch.close().unwrap();

    // As if the process died after the checkpoint became durable but before the unlinks did.
    for (p, bytes) in &saved {
        sim.write_file(p, bytes).unwrap();
    }
    let ch = open(&sim, &c);
    let r = ch.open_report().clone();
    assert!(
        matches!(r.start, ReplayStart::Checkpoint { .. }),
        "{:?}",
        r.start
    );
    assert_eq!(
        r.orphans,
        saved.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
    );
    for (p, _) in &saved {
        assert!(
            sim.read_file(p).is_none(),
            "{} was not removed",
            p.display()
        );
    }
    assert_eq!(r.damage, vec![]);
    assert_eq!(ids(&peek_all(&ch)), range(40..43));
    ch.close().unwrap();
    // The removal was durable.
    let after = sim.crash(CrashMode::DropUnsynced);
    for (p, _) in &saved {
        assert!(after.read_file(p).is_none(), "{} came back", p.display());
    }
    let ch = open(&after, &c);
    assert_eq!(ch.open_report().orphans, Vec::<PathBuf>::new());
    assert_eq!(ids(&drain(&ch)), range(40..43));
}

#[test]
fn a_crash_at_every_step_of_checkpoint_and_deletion_leaves_an_exact_queue() {
    // A closed channel holding 40 events across several segments, with a checkpoint.
    let base = SimStorage::new();
    let mut c = cfg();
    let ch = open(&base, &c);
    put_each(&ch, 0..40);
    ch.close().unwrap();
    let segs = segment_ids(&base, &[dir()]);
    assert!(segs.len() >= 4, "{segs:?}");

    // Opened from its checkpoint nothing is due, so after the crash is armed the only storage
    // operations are: the take record, then the checkpoint (sync, temp file, rename,
    // directory sync), then the unlinks and their directory sync.
    c.checkpoint_interval_ms = 20;
    c.take_sync_interval_ms = 60_000;
    let mut saw_orphans = 0;
    let mut saw_complete = 0;
    for k in 1..24 {
        let sim = base.crash(CrashMode::KeepAll);
        let ch = open(&sim, &c);
        assert_eq!(ch.open_report().records, 0);
        let m = ch.metrics();
        sim.crash_after_ops(k);
        let mut tx = ch.transaction();
        let mut taken = 0;
        while taken < 30 {
            tx.take().unwrap().unwrap();
            taken += 1;
        }
        tx.commit().unwrap();
        wait_until(Duration::from_secs(2), || {
            m.checkpoint_count.load(Relaxed) > 0
                || m.checkpoint_write_error_count.load(Relaxed) > 0
                || ch.poisoned().is_some()
        });
        std::thread::sleep(Duration::from_millis(10));
        let image = sim.crash(CrashMode::DropUnsynced);
        drop(ch);

        let ch = FileChannel::open_with(c.clone(), Arc::new(image.clone()))
            .unwrap_or_else(|e| panic!("crash after {k} ops: {e}"));
        let r = ch.open_report().clone();
        let got = ids(&peek_all(&ch));
        // The take commit was never followed by a put commit: it may be lost (its events come
        // back), but if a checkpoint recorded it, it holds.
        assert!(
            got == range(30..40) || got == range(0..40),
            "crash after {k} ops: got {got:?}"
        );
        assert_eq!(r.damage, vec![], "crash after {k} ops");
        if !r.orphans.is_empty() {
            saw_orphans += 1;
            assert_eq!(
                got,
                range(30..40),
                "crash after {k} ops: orphans {:?}",
                r.orphans
            );
            for p in &r.orphans {
                assert!(
                    !image.exists(p),
                    "crash after {k} ops: {} kept",
                    p.display()
                );
            }
        }
        if got == range(30..40) && r.orphans.is_empty() {
            saw_complete += 1;
        }
        ch.close().unwrap();
        let ch = FileChannel::open_with(c.clone(), Arc::new(image)).unwrap();
        assert_eq!(ch.open_report().orphans, Vec::<PathBuf>::new());
        assert_eq!(
            ids(&peek_all(&ch)),
            got,
            "crash after {k} ops: second reopen"
        );
    }
    assert!(
        saw_orphans > 0,
        "no crash point fell between the durable checkpoint and the durable unlinks"
    );
    assert!(saw_complete > 0, "no crash point let the deletion complete");
}

/// A workload of puts and takes (3 put, then 2–5 taken, every round but every third).
#[derive(Default, Debug)]
struct Outcome {
    /// Acknowledged puts in commit order.
    acked: Vec<usize>,
    /// Consumed by an acknowledged take commit.
    taken: BTreeSet<usize>,
    /// Consumed by a take commit that a later acknowledged put commit made durable.
    taken_durable: BTreeSet<usize>,
}

fn workload(ch: &FileChannel, rounds: usize) -> Outcome {
    let mut out = Outcome::default();
    let mut pending_takes = Vec::new();
    let mut next = 0;
    for round in 0..rounds {
        let batch: Vec<usize> = (next..next + 3).collect();
        next += 3;
        let mut tx = ch.transaction();
        for &i in &batch {
            tx.put(&big(i)).unwrap();
        }
        tx.commit().unwrap();
        out.acked.extend(&batch);
        out.taken_durable.extend(pending_takes.drain(..));
        if !round.is_multiple_of(3) {
            let mut tx = ch.transaction();
            for _ in 0..(2 + round % 4) {
                match tx.take().unwrap() {
                    Some(e) => pending_takes.push(id_of(&e)),
                    None => break,
                }
            }
            tx.commit().unwrap();
            out.taken.extend(pending_takes.iter().copied());
        }
    }
    out
}

#[test]
fn a_crash_after_checkpoints_and_deletion_loses_nothing_acknowledged() {
    let mut c = cfg();
    c.checkpoint_bytes = 1500;
    for rounds in [30, 45, 61] {
        let sim = SimStorage::new();
        let ch = open(&sim, &c);
        let out = workload(&ch, rounds);
        let m = ch.metrics();
        assert!(
            wait_until(Duration::from_secs(5), || m.segments_deleted.load(Relaxed)
                > 0),
            "{rounds} rounds: nothing deleted"
        );
        assert!(m.checkpoint_count.load(Relaxed) >= 3, "{rounds} rounds");
        // Crash with the channel running.
        let image = sim.crash(CrashMode::DropUnsynced);
        drop(ch);
        let ch = open(&image, &c);
        let r = ch.open_report().clone();
        assert!(
            start_generation(&ch).is_some(),
            "{rounds} rounds: {:?}",
            r.start
        );
        assert_eq!(r.damage, vec![], "{rounds} rounds");
        let got = ids(&peek_all(&ch));
        let order: BTreeMap<usize, usize> =
            out.acked.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        let got_set: BTreeSet<usize> = got.iter().copied().collect();
        assert_eq!(
            got_set.len(),
            got.len(),
            "{rounds} rounds: duplicates in {got:?}"
        );
        for i in &out.acked {
            if !out.taken.contains(i) {
                assert!(
                    got_set.contains(i),
                    "{rounds} rounds: event {i} lost: {got:?}"
                );
            }
        }
        for i in &got {
            assert!(
                order.contains_key(i),
                "{rounds} rounds: {i} never committed"
            );
            assert!(
                !out.taken_durable.contains(i),
                "{rounds} rounds: {i} reappeared after a durable take commit"
            );
        }
        assert!(
            got.windows(2).all(|w| order[&w[0]] < order[&w[1]]),
            "{rounds} rounds: not in commit order: {got:?}"
        );
        let expected: Vec<usize> = out
            .acked
            .iter()
            .copied()
            .filter(|i| !out.taken.contains(i))
            .collect();
        // Only takes after the last put commit may come back.
        let extra: Vec<usize> = got
            .iter()
            .copied()
            .filter(|i| !expected.contains(i))
            .collect();
        assert!(
            extra.len() <= 5,
            "{rounds} rounds: {extra:?} came back beyond the last take commit"
        );
    }
}

/// Segment files in `dir` of the real file system: id → path.
fn real_segments(dir: &Path) -> BTreeMap<u64, PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            file_channel::format::segment_header::parse_segment_file_name(&name).map(|id| (id, p))
        })
        .collect()
}

#[test]
fn two_data_dirs_alternate_segments_and_both_are_cleaned() {
    let base = tempfile::tempdir().unwrap();
    let ch_dir = base.path().join("ch");
    let data = [base.path().join("d0"), base.path().join("d1")];
    let mut c = ChannelConfig::new(&ch_dir);
    c.data_dirs = data.to_vec();
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4096;
    c.checkpoint_interval_ms = 30;
    let ch = FileChannel::open(c.clone()).unwrap();
    put_each(&ch, 0..60);

    let in_dir: Vec<BTreeMap<u64, PathBuf>> = data.iter().map(|d| real_segments(d)).collect();
    assert!(
        real_segments(&ch_dir).is_empty(),
        "segments in the channel dir"
    );
    for (k, segs) in in_dir.iter().enumerate() {
        assert!(segs.len() >= 2, "data dir {k} holds {segs:?}");
        for id in segs.keys() {
            assert_eq!(id % 2, k as u64, "segment {id} is in data dir {k}");
        }
    }
    let mut files: Vec<(u64, Vec<u8>)> = in_dir
        .iter()
        .flat_map(|m| m.iter().map(|(&id, p)| (id, std::fs::read(p).unwrap())))
        .collect();
    files.sort_by_key(|f| f.0);
    let layout = layout_from(files);
    let all_ids: Vec<u64> = layout.iter().map(|&(id, _)| id).collect();
    assert_eq!(
        all_ids,
        (all_ids[0]..all_ids[0] + all_ids.len() as u64).collect::<Vec<_>>()
    );
    let base_seq = layout[0].1;

    assert_eq!(ids(&take_commit(&ch, 45)), range(0..45));
    let last_consumed = segment_of(&layout, base_seq + 44);
    let first_pending = segment_of(&layout, base_seq + 45);
    let on_disk = || -> Vec<u64> {
        let mut v: Vec<u64> = data
            .iter()
            .flat_map(|d| real_segments(d).into_keys())
            .collect();
        v.sort_unstable();
        v
    };
    assert!(
        wait_until(Duration::from_secs(5), || on_disk()
            .iter()
            .all(|&id| id >= last_consumed)),
        "segments below {last_consumed} still on disk: {:?}",
        on_disk()
    );
    let observer = ch.clone();
    ch.close().unwrap();
    // Counted after close, when no deletion can be under way.
    let remaining = on_disk();
    let deleted: Vec<u64> = all_ids
        .iter()
        .copied()
        .filter(|id| !remaining.contains(id))
        .collect();
    assert!(
        deleted.iter().map(|id| id % 2).collect::<BTreeSet<u64>>() == BTreeSet::from([0, 1]),
        "deletion in both data dirs: deleted {deleted:?}"
    );
    for id in all_ids.iter().filter(|&&id| id >= first_pending) {
        assert!(
            data[(id % 2) as usize]
                .join(segment_file_name(*id))
                .exists(),
            "segment {id} holds pending events"
        );
    }
    assert_eq!(
        observer.metrics().segments_deleted.load(Relaxed),
        deleted.len() as u64
    );

    // Checkpoints live in the channel dir only.
    let storage = file_channel::storage::StdStorage::new();
    let cps = list_checkpoints(&storage, &ch_dir).unwrap();
    assert!(!cps.is_empty() && cps.len() <= 2, "{cps:?}");
    for d in &data {
        assert!(list_checkpoints(&storage, d).unwrap().is_empty());
    }
    let ch = FileChannel::open(c.clone()).unwrap();
    assert_eq!(start_generation(&ch), Some(cps[0].0));
    assert_eq!(ch.open_report().orphans, Vec::<PathBuf>::new());
    assert_eq!(ids(&peek_all(&ch)), range(45..60));
    assert_eq!(ids(&drain(&ch)), range(45..60));
    ch.close().unwrap();
    let ch = FileChannel::open(c).unwrap();
    assert!(ch.is_empty());
}
