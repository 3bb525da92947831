//! Choosing a checkpoint at open when one is damaged: a damaged newest checkpoint (bit flip,
//! truncation, garbage, empty) makes open fall back to the older one, two damaged ones to a
//! full replay; a checkpoint naming a segment that does not exist is refused, and falling back
//! to a checkpoint whose segments were deleted replays in full.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::sim_channel::{
    cfg, checkpoints, dir, ids, open, put_each, range, read_checkpoint, seg_path, segment_ids,
    start_generation, take_commit,
};
use common::{drain, peek_all, wait_until};

use file_channel::format::checkpoint::checkpoint_file_name;
use file_channel::format::segment_header::SEGMENT_HEADER_BYTES;
use file_channel::replay::{CheckpointRejection, RejectedCheckpoint, ReplayStart};
use file_channel::ChannelConfig;
use file_channel_testkit::{CrashMode, SimStorage};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Two sessions closed cleanly: generation 1 (20 put, 5 taken) and generation 2 (10 more put,
/// 3 more taken). Returns the closed storage; events 8..30 are pending.
fn two_generations(c: &ChannelConfig) -> SimStorage {
    let sim = SimStorage::new();
    let ch = open(&sim, c);
    put_each(&ch, 0..20);
    assert_eq!(ids(&take_commit(&ch, 5)), range(0..5));
    ch.close().unwrap();
    let ch = open(&sim, c);
    assert_eq!(start_generation(&ch), Some(1));
    put_each(&ch, 20..30);
    assert_eq!(ids(&take_commit(&ch, 3)), range(5..8));
    ch.close().unwrap();
    let gens: Vec<u64> = checkpoints(&sim).into_iter().map(|(g, _)| g).collect();
    assert_eq!(gens, vec![2, 1]);
    sim
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    BitFlip,
    Truncated,
    Garbage,
    Empty,
}

impl Damage {
    const ALL: [Damage; 4] = [
        Damage::BitFlip,
        Damage::Truncated,
        Damage::Garbage,
        Damage::Empty,
    ];

    fn apply(self, sim: &SimStorage, path: &Path) {
        let len = sim.read_file(path).unwrap().len();
        match self {
            Damage::BitFlip => sim.flip_bit(path, 60, 2).unwrap(),
            Damage::Truncated => sim.truncate_file(path, len as u64 - 9).unwrap(),
            Damage::Garbage => {
                let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
                sim.write_file(path, &junk).unwrap();
            }
            Damage::Empty => sim.write_file(path, &[]).unwrap(),
        }
    }

    /// What the refusal reason must say.
    fn reason(self) -> &'static str {
        match self {
            Damage::BitFlip => "checksum mismatch",
            Damage::Truncated | Damage::Empty => "truncated",
            Damage::Garbage => "bad magic",
        }
    }
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_older_one() {
    let c = cfg();
    let base = two_generations(&c);
    let g1 = dir().join(checkpoint_file_name(1));
    let g2 = dir().join(checkpoint_file_name(2));
    for damage in Damage::ALL {
        let sim = base.crash(CrashMode::KeepAll);
        damage.apply(&sim, &g2);
        let ch = open(&sim, &c);
        let r = ch.open_report().clone();
        let ReplayStart::Checkpoint {
            path,
            generation,
            rejected,
        } = &r.start
        else {
            panic!(
                "{damage:?}: expected a start from generation 1, got {:?}",
                r.start
            );
        };
        assert_eq!((path, *generation), (&g1, 1), "{damage:?}");
        assert_eq!(rejected.len(), 1, "{damage:?}: {rejected:?}");
        assert_eq!(rejected[0].path, g2, "{damage:?}");
        assert!(
            rejected[0].reason.to_string().contains(damage.reason()),
            "{damage:?}: reason {:?} does not say {:?}",
            rejected[0].reason.to_string(),
            damage.reason()
        );
        // Generation 1 covers the first session only: the second one's records are replayed.
        assert!(
            r.records >= 11,
            "{damage:?}: replayed {} records after generation 1",
            r.records
        );
        assert_eq!(r.pending_events, 22, "{damage:?}");
        assert_eq!(r.orphans, Vec::<PathBuf>::new(), "{damage:?}");
        assert_eq!(ch.len(), 22, "{damage:?}");
        assert_eq!(ids(&peek_all(&ch)), range(8..30), "{damage:?}");
        // Work goes on, and the next checkpoint gets a generation above the damaged one.
        put_each(&ch, 30..31);
        ch.close().unwrap();
        let ch = open(&sim, &c);
        assert_eq!(start_generation(&ch), Some(3), "{damage:?}");
        assert_eq!(ids(&drain(&ch)), range(8..31), "{damage:?}");
    }
}

#[test]
fn two_damaged_checkpoints_mean_a_full_replay() {
    let c = cfg();
    let base = two_generations(&c);
    let g1 = dir().join(checkpoint_file_name(1));
    let g2 = dir().join(checkpoint_file_name(2));
    for (d2, d1) in [
        (Damage::BitFlip, Damage::Empty),
        (Damage::Garbage, Damage::Truncated),
    ] {
        let sim = base.crash(CrashMode::KeepAll);
        d2.apply(&sim, &g2);
        d1.apply(&sim, &g1);
        let ch = open(&sim, &c);
        let r = ch.open_report().clone();
        let ReplayStart::Full { rejected } = &r.start else {
            panic!("{d2:?}/{d1:?}: expected a full replay, got {:?}", r.start);
        };
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert_eq!(rejected[0].path, g2);
        assert!(
            rejected[0].reason.to_string().contains(d2.reason()),
            "{rejected:?}"
        );
        assert_eq!(rejected[1].path, g1);
        assert!(
            rejected[1].reason.to_string().contains(d1.reason()),
            "{rejected:?}"
        );
        assert!(
            r.records >= 32,
            "a full replay reads 30 put records and 2 take records, read {}",
            r.records
        );
        assert_eq!(r.pending_events, 22);
        assert_eq!(r.damage, vec![]);
        assert_eq!(ids(&peek_all(&ch)), range(8..30));
        // A full replay is followed by a fresh checkpoint right away.
        assert!(
            wait_until(Duration::from_secs(3), || ch
                .metrics()
                .checkpoint_count
                .load(Relaxed)
                >= 1),
            "no checkpoint after a full replay"
        );
        ch.close().unwrap();
        let ch = open(&sim, &c);
        assert_eq!(
            ch.open_report().start,
            ReplayStart::Checkpoint {
                path: dir().join(checkpoint_file_name(3)),
                generation: 3,
                rejected: vec![],
            }
        );
        assert_eq!(ids(&drain(&ch)), range(8..30));
    }
}

#[test]
fn a_checkpoint_naming_a_missing_segment_is_refused() {
    let c = cfg();
    let base = two_generations(&c);
    let sim = base.crash(CrashMode::KeepAll);
    let g2 = dir().join(checkpoint_file_name(2));
    let g3 = dir().join(checkpoint_file_name(3));
    let segs_before = segment_ids(&sim, &[dir()]);
    let missing = segs_before.last().unwrap() + 7;
    // A well-formed generation 3 whose position is in a segment that does not exist. Were it
    // trusted, every existing segment would be below its first live segment and removed.
    let mut cp = read_checkpoint(&sim, &g2);
    cp.generation = 3;
    cp.position = (missing, SEGMENT_HEADER_BYTES as u64);
    cp.read_start = cp.position;
    cp.first_live_segment = missing;
    sim.write_file(&g3, &cp.encode()).unwrap();

    let ch = open(&sim, &c);
    let r = ch.open_report().clone();
    assert_eq!(
        r.start,
        ReplayStart::Checkpoint {
            path: g2.clone(),
            generation: 2,
            rejected: vec![RejectedCheckpoint {
                path: g3,
                reason: CheckpointRejection::NamedSegmentMissing { segment: missing },
            }],
        }
    );
    assert_eq!(
        CheckpointRejection::NamedSegmentMissing { segment: missing }.to_string(),
        format!("segment {missing} it names does not exist")
    );
    assert_eq!(r.orphans, Vec::<PathBuf>::new());
    assert_eq!(segment_ids(&sim, &[dir()]), segs_before);
    assert_eq!(ids(&peek_all(&ch)), range(8..30));
}

#[test]
fn falling_back_to_a_checkpoint_whose_segments_were_deleted_replays_in_full() {
    let c = cfg();
    let sim = SimStorage::new();
    let ch = open(&sim, &c);
    put_each(&ch, 0..60);
    assert_eq!(ids(&take_commit(&ch, 12)), range(0..12));
    ch.close().unwrap();
    let g1 = dir().join(checkpoint_file_name(1));
    let old = read_checkpoint(&sim, &g1);

    let ch = open(&sim, &c);
    assert_eq!(ids(&take_commit(&ch, 38)), range(12..50));
    ch.close().unwrap();
    let g2 = dir().join(checkpoint_file_name(2));
    let new = read_checkpoint(&sim, &g2);
    assert!(
        new.first_live_segment > old.read_start.0,
        "generation 2 must free generation 1's read start: {new:?} / {old:?}"
    );
    assert!(
        sim.read_file(&seg_path(old.read_start.0)).is_none(),
        "close deletes the segments generation 2 freed"
    );

    Damage::BitFlip.apply(&sim, &g2);
    let ch = open(&sim, &c);
    let r = ch.open_report().clone();
    let ReplayStart::Full { rejected } = &r.start else {
        panic!("expected a full replay, got {:?}", r.start);
    };
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].path, g2);
    assert!(
        rejected[0].reason.to_string().contains("checksum mismatch"),
        "{rejected:?}"
    );
    assert_eq!(
        rejected[1],
        RejectedCheckpoint {
            path: g1,
            reason: CheckpointRejection::NamedSegmentMissing {
                segment: old.read_start.0
            },
        }
    );
    assert_eq!(r.damage, vec![]);
    assert_eq!(r.events_lost, 0);
    assert_eq!(r.pending_events, 10);
    assert_eq!(ids(&drain(&ch)), range(50..60));
}
