//! Replay from the logs on the real file system: bit flips in committed records (refused as
//! corruption naming segment and offset), take commits and uncommitted takes across reopen,
//! segments of another channel, and FIFO order across many small segments and reopens. What a
//! crash tears (the last record, the newest segment's header) is in torn_writes.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::disk_channel::{cfg, copy_dir, put_commit};
use common::{drain, peek_all, records, seg_files};

use file_channel::format::record::RecordKind;
use file_channel::format::CorruptionKind;
use file_channel::{Corruption, Event, FileChannel, OpenError, RecoveryMode};
use std::collections::VecDeque;
use std::path::Path;

fn flip(path: &Path, offset: u64, bit: u8) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 1 << bit;
    std::fs::write(path, b).unwrap();
}

#[test]
fn bit_flip_in_a_sealed_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.recovery_mode = RecoveryMode::Strict;
    c.segment_bytes_max = 4096;
    let ch = FileChannel::open(c.clone()).unwrap();
    for i in 0..16 {
        put_commit(
            &ch,
            &[
                Event::new(format!("{i}-a-{}", "y".repeat(600)).into_bytes()),
                Event::new(format!("{i}-b").into_bytes()).with_header("i", i.to_string()),
            ],
        );
    }
    ch.close().unwrap();
    let segs = seg_files(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");

    // Damage the second record of segment 2 (sealed, not the last segment): in its payload,
    // then (separately) in its header.
    let path = &segs[1];
    let original = std::fs::read(path).unwrap();
    let recs = records(&original, 2);
    assert!(recs.len() >= 3, "{recs:?}");
    let victim = recs[1];
    for (what, at) in [
        ("payload", victim.offset + 56 + 9),
        ("transaction id", victim.offset + 41),
    ] {
        std::fs::write(path, &original).unwrap();
        flip(path, at, 3);
        match FileChannel::open(c.clone()) {
            Err(OpenError::Corrupt(Corruption {
                file,
                segment,
                offset,
                kind,
            })) => {
                assert_eq!(file, *path, "{what}");
                assert_eq!(segment, 2, "{what}");
                assert_eq!(offset, victim.offset, "{what}");
                assert!(
                    matches!(kind, CorruptionKind::BadChecksum { .. }),
                    "{what}: {kind:?}"
                );
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(
            std::fs::read(path).unwrap().len(),
            original.len(),
            "{what}: a refused open must not truncate"
        );
    }
    // Undamaged again: it opens with everything.
    std::fs::write(path, &original).unwrap();
    let ch = FileChannel::open(c).unwrap();
    assert_eq!(ch.len(), 32);
}

#[test]
fn bit_flip_before_a_later_durable_record_in_the_last_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.recovery_mode = RecoveryMode::Strict;
    let ch = FileChannel::open(c.clone()).unwrap();
    for i in 0..4 {
        put_commit(
            &ch,
            &[Event::new(
                format!("event {i} {}", "z".repeat(50)).into_bytes(),
            )],
        );
    }
    ch.close().unwrap();
    let segs = seg_files(dir.path());
    assert_eq!(segs.len(), 1);
    let path = &segs[0];
    let original = std::fs::read(path).unwrap();
    let recs = records(&original, 1);
    assert_eq!(recs.len(), 4);
    // Each commit was fsynced before the next record was written: its durable mark proves it.
    for w in recs.windows(2) {
        assert!(w[1].durable_mark > w[0].offset, "{recs:?}");
    }
    for victim in [recs[1], recs[2]] {
        std::fs::write(path, &original).unwrap();
        flip(path, victim.offset + 60, 0);
        match FileChannel::open(c.clone()) {
            Err(OpenError::Corrupt(Corruption {
                file,
                segment,
                offset,
                ..
            })) => {
                assert_eq!((file, segment, offset), (path.clone(), 1, victim.offset));
            }
            other => panic!("expected Corrupt at {}, got {other:?}", victim.offset),
        }
        assert_eq!(
            std::fs::read(path).unwrap().len(),
            original.len(),
            "the log must not be truncated"
        );
    }
}

#[test]
fn take_commits_survive_reopen_and_uncommitted_takes_are_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let e = |i: usize| Event::new(format!("e{i}").into_bytes()).with_header("n", i.to_string());
    let ch = FileChannel::open(c.clone()).unwrap();
    put_commit(&ch, &(0..6).map(e).collect::<Vec<_>>());
    put_commit(&ch, &(6..12).map(e).collect::<Vec<_>>());

    let mut t = ch.transaction();
    for i in 0..4 {
        assert_eq!(t.take().unwrap().unwrap(), e(i));
    }
    t.commit().unwrap();

    let mut t = ch.transaction();
    assert_eq!(t.take().unwrap().unwrap(), e(4));
    assert_eq!(t.take().unwrap().unwrap(), e(5));
    drop(t); // rolled back: redelivered first
    let mut t = ch.transaction();
    assert_eq!(t.take().unwrap().unwrap(), e(4));
    t.commit().unwrap();

    // Out-of-order completion: B commits e7, A (e5, e6) rolls back.
    let mut a = ch.transaction();
    assert_eq!(a.take().unwrap().unwrap(), e(5));
    assert_eq!(a.take().unwrap().unwrap(), e(6));
    let mut b = ch.transaction();
    assert_eq!(b.take().unwrap().unwrap(), e(7));
    b.commit().unwrap();
    a.rollback();

    // Taken but never committed when the channel closes.
    let mut open_take = ch.transaction();
    assert_eq!(open_take.take().unwrap().unwrap(), e(5));
    assert_eq!(open_take.take().unwrap().unwrap(), e(6));
    assert_eq!(ch.len(), 6);
    ch.close().unwrap();
    drop(open_take);

    let ch = FileChannel::open(c.clone()).unwrap();
    assert_eq!(ch.len(), 6);
    assert_eq!(ch.open_report().pending_events, 6);
    let want: Vec<Event> = [5, 6, 8, 9, 10, 11].into_iter().map(e).collect();
    assert_eq!(peek_all(&ch), want);
    let mut t = ch.transaction();
    assert_eq!(t.take().unwrap().unwrap(), e(5));
    t.commit().unwrap();
    ch.close().unwrap();

    let ch = FileChannel::open(c.clone()).unwrap();
    assert_eq!(drain(&ch), want[1..].to_vec());
    ch.close().unwrap();

    let ch = FileChannel::open(c).unwrap();
    assert_eq!(ch.len(), 0);
    assert_eq!(peek_all(&ch), Vec::<Event>::new());
}

#[test]
fn segments_of_another_channel_are_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut ca = cfg(a.path());
    ca.segment_bytes_max = 4096;
    let mut cb = cfg(b.path());
    cb.segment_bytes_max = 4096;
    for c in [&ca, &cb] {
        let ch = FileChannel::open(c.clone()).unwrap();
        for i in 0..8 {
            put_commit(
                &ch,
                &[Event::new(format!("{i}{}", "q".repeat(900)).into_bytes())],
            );
        }
        ch.close().unwrap();
    }
    let segs_a = seg_files(a.path());
    let segs_b = seg_files(b.path());
    assert!(segs_a.len() >= 2);
    assert_eq!(segs_a.len(), segs_b.len());
    let a_id = FileChannel::open(ca.clone()).unwrap().channel_id();
    let b_id = FileChannel::open(cb.clone()).unwrap().channel_id();
    assert_ne!(a_id, b_id);

    // B's first and B's last segment, each in place of A's file of the same name.
    for idx in [0, segs_a.len() - 1] {
        let work = tempfile::tempdir().unwrap();
        copy_dir(a.path(), work.path());
        let name = segs_a[idx].file_name().unwrap();
        let target = work.path().join(name);
        std::fs::copy(&segs_b[idx], &target).unwrap();
        let mut c = ca.clone();
        c.dir = work.path().to_path_buf();
        match FileChannel::open(c) {
            Err(OpenError::Foreign { path, reason }) => {
                assert_eq!(path, target);
                assert!(
                    reason.contains(&format!("{b_id:#018x}")),
                    "reason does not name the foreign channel: {reason}"
                );
            }
            other => panic!("segment {idx}: expected Foreign, got {other:?}"),
        }
    }
}

/// A tiny deterministic generator.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn rotation_with_reopens(segment_bytes_max: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes_max = segment_bytes_max;
    let mut rng = Lcg(segment_bytes_max);
    let mut model: VecDeque<Event> = VecDeque::new();
    let mut ch = FileChannel::open(c.clone()).unwrap();
    let mut n = 0u64;
    for step in 0..70u64 {
        if step % 5 == 4 {
            let want = 1 + rng.next(6) as usize;
            let mut t = ch.transaction();
            let mut got = Vec::new();
            while got.len() < want {
                match t.take().unwrap() {
                    Some(e) => got.push(e),
                    None => break,
                }
            }
            let expected: Vec<Event> = model.iter().take(got.len()).cloned().collect();
            assert_eq!(got, expected, "step {step}");
            if rng.next(3) == 0 {
                t.rollback();
            } else {
                t.commit().unwrap();
                model.drain(..got.len());
            }
        } else {
            let count = 1 + rng.next(4);
            let mut events = Vec::new();
            for _ in 0..count {
                let len = 20 + rng.next(500) as usize;
                let body: Vec<u8> = (0..len).map(|j| (n as usize * 7 + j) as u8).collect();
                events.push(Event::new(body).with_header("seq", n.to_string()));
                n += 1;
            }
            put_commit(&ch, &events);
            model.extend(events);
        }
        if step % 12 == 11 {
            ch.close().unwrap();
            ch = FileChannel::open(c.clone()).unwrap();
            assert_eq!(ch.len(), model.len() as u64, "step {step}");
            assert_eq!(ch.open_report().torn_tail, None);
        }
    }
    ch.close().unwrap();
    let ch = FileChannel::open(c).unwrap();
    assert!(
        ch.open_report().segments >= 5,
        "too few segments to test rotation: {:?}",
        ch.open_report()
    );
    let segs = seg_files(dir.path());
    for (i, p) in segs.iter().enumerate() {
        let id: u64 = p.file_name().unwrap().to_str().unwrap()[4..24]
            .parse()
            .unwrap();
        let recs = records(&std::fs::read(p).unwrap(), id);
        if i + 1 < segs.len() {
            assert_eq!(recs.last().map(|r| r.kind), Some(RecordKind::Seal), "{p:?}");
        }
        assert!(std::fs::metadata(p).unwrap().len() <= segment_bytes_max);
    }
    assert_eq!(drain(&ch), Vec::from(model));
}

#[test]
fn rotation_across_4k_segments_with_reopens_keeps_fifo() {
    rotation_with_reopens(4096);
}

#[test]
fn rotation_across_8k_segments_with_reopens_keeps_fifo() {
    rotation_with_reopens(8192);
}
