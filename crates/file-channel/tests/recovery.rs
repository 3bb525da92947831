//! Replay from the logs on the real file system: a torn tail cut at every byte of the last
//! record (truncated, overwritten with garbage, zeroed; with and without prefill), a newest
//! segment whose header never became durable, bit flips in committed records (refused as
//! corruption naming segment and offset), take commits and uncommitted takes across reopen,
//! segments of another channel, and FIFO order across many small segments and reopens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{drain, peek_all, records, seg_files};

use file_channel::format::record::RecordKind;
use file_channel::format::segment_header::{segment_file_name, SEGMENT_HEADER_BYTES};
use file_channel::format::CorruptionKind;
use file_channel::replay::TornTail;
use file_channel::{ChannelConfig, Corruption, Event, FileChannel, OpenError, RecoveryMode};
use std::collections::VecDeque;
use std::path::Path;

fn cfg(dir: &Path) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 64 << 10;
    c
}

/// Removes the checkpoint files of `dir`: the state a crash leaves when it hits the last write
/// before any checkpoint covered it (a checkpoint only ever covers fsynced data).
fn remove_checkpoints(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("checkpoint-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// Copies every regular file of `src` into `dst`.
fn copy_dir(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

fn put_commit(ch: &FileChannel, events: &[Event]) {
    let mut tx = ch.transaction();
    for e in events {
        tx.put(e).unwrap();
    }
    tx.commit().unwrap();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    Truncate,
    Garbage,
    Zeros,
}

fn torn_tail_every_offset(prefill: bool) {
    let base = tempfile::tempdir().unwrap();
    let mut c = cfg(base.path());
    if prefill {
        c.prefill_ahead_bytes = 8 << 10;
    }
    let earlier = vec![
        Event::new(b"a0".to_vec()),
        Event::new(b"a1".to_vec()).with_header("h", "1"),
        Event::new(b"b0-longer-body".to_vec()),
    ];
    // 56 (header) + 6 (event frame) + 2 (body) = 64: no padding, every byte is the record's.
    let last = Event::new(b"c0".to_vec());
    let ch = FileChannel::open(c.clone()).unwrap();
    put_commit(&ch, &earlier[..2]);
    put_commit(&ch, &earlier[2..]);
    put_commit(&ch, std::slice::from_ref(&last));
    if prefill {
        // Let the prefiller write its zeros before closing, so the file has a zero tail.
        let seg = base.path().join(segment_file_name(1));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::metadata(&seg).unwrap().len() < 8 << 10 {
            assert!(
                std::time::Instant::now() < deadline,
                "prefill wrote nothing"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    ch.close().unwrap();
    remove_checkpoints(base.path());

    let segs = seg_files(base.path());
    assert_eq!(segs.len(), 1);
    let seg_name = segs[0].file_name().unwrap().to_owned();
    let original = std::fs::read(&segs[0]).unwrap();
    let recs = records(&original, 1);
    assert_eq!(recs.len(), 3);
    let rec = recs[2];
    assert_eq!(rec.kind, RecordKind::Put);
    assert_eq!(rec.len, 64);
    let rec_start = rec.offset;
    let data_end = rec_start + u64::from(rec.len);
    if prefill {
        assert!(
            original.len() as u64 > data_end,
            "prefill left no zeros after the data ({} bytes)",
            original.len()
        );
    } else {
        assert_eq!(original.len() as u64, data_end);
    }

    for damage in [Damage::Truncate, Damage::Garbage, Damage::Zeros] {
        for k in 0..u64::from(rec.len) {
            let cut = (rec_start + k) as usize;
            let work = tempfile::tempdir().unwrap();
            copy_dir(base.path(), work.path());
            let seg_path = work.path().join(&seg_name);
            let mut bytes = original.clone();
            match damage {
                Damage::Truncate => bytes.truncate(cut),
                Damage::Garbage => bytes[cut..].iter_mut().for_each(|b| *b = !*b),
                Damage::Zeros => bytes[cut..].iter_mut().for_each(|b| *b = 0),
            }
            let file_len = bytes.len() as u64;
            std::fs::write(&seg_path, &bytes).unwrap();

            let what = format!("prefill {prefill}, {damage:?} at record byte {k}");
            let mut c = c.clone();
            c.dir = work.path().to_path_buf();
            let ch = FileChannel::open(c.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
            let expect_tail = match damage {
                Damage::Truncate | Damage::Zeros => k > 0,
                Damage::Garbage => true,
            };
            let expected_tail = expect_tail.then(|| TornTail {
                segment: 1,
                path: seg_path.clone(),
                offset: rec_start,
                bytes: file_len - rec_start,
                removed_file: false,
            });
            assert_eq!(
                ch.metrics()
                    .torn_tail_bytes
                    .load(std::sync::atomic::Ordering::Relaxed),
                expected_tail.as_ref().map_or(0, |t| t.bytes),
                "{what}"
            );
            assert_eq!(ch.open_report().torn_tail, expected_tail, "{what}");
            assert_eq!(ch.len(), 3, "{what}");
            assert_eq!(peek_all(&ch), earlier, "{what}");

            let new = Event::new(format!("new-{k}").into_bytes());
            put_commit(&ch, std::slice::from_ref(&new));
            let mut want = earlier.clone();
            want.push(new);
            assert_eq!(peek_all(&ch), want, "{what}");
            ch.close().unwrap();

            let ch = FileChannel::open(c).unwrap_or_else(|e| panic!("{what}, 2nd open: {e}"));
            assert_eq!(ch.open_report().torn_tail, None, "{what}, 2nd open");
            assert_eq!(drain(&ch), want, "{what}, 2nd open");
            ch.close().unwrap();
        }
    }
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    torn_tail_every_offset(false);
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record_with_prefill() {
    torn_tail_every_offset(true);
}

/// Builds a channel in `dir` whose segment 1 is sealed and segment 2 holds records; returns
/// the events of segment 1 and of segment 2.
fn two_segments(dir: &Path) -> (ChannelConfig, Vec<Event>, Vec<Event>) {
    let mut c = cfg(dir);
    c.segment_bytes_max = 4096;
    let ch = FileChannel::open(c.clone()).unwrap();
    let mut all = Vec::new();
    let mut i = 0;
    while seg_files(dir).len() < 2 {
        let e = Event::new(format!("{i:03}-{}", "x".repeat(400)).into_bytes());
        put_commit(&ch, std::slice::from_ref(&e));
        all.push(e);
        i += 1;
    }
    ch.close().unwrap();
    let segs = seg_files(dir);
    assert_eq!(segs.len(), 2);
    let in_first: u32 = records(&std::fs::read(&segs[0]).unwrap(), 1)
        .iter()
        .filter(|r| r.kind == RecordKind::Put)
        .map(|r| r.event_count)
        .sum();
    let second = all.split_off(in_first as usize);
    assert!(!second.is_empty());
    (c, all, second)
}

#[test]
fn newest_segment_with_a_torn_header_is_removed() {
    let base = tempfile::tempdir().unwrap();
    let (c, first, _) = two_segments(base.path());
    let seg2 = segment_file_name(2);
    let header: Vec<u8> =
        std::fs::read(base.path().join(&seg2)).unwrap()[..SEGMENT_HEADER_BYTES].to_vec();
    let mut bad_crc = header.clone();
    bad_crc[20] ^= 0x10;
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("ten header bytes", header[..10].to_vec()),
        (
            "header minus one byte",
            header[..SEGMENT_HEADER_BYTES - 1].to_vec(),
        ),
        (
            "garbage header",
            (0..SEGMENT_HEADER_BYTES)
                .map(|i| (i * 37 + 11) as u8)
                .collect(),
        ),
        ("header with a flipped bit", bad_crc),
        ("zeros, size journaled, data not", vec![0u8; 4096]),
    ];
    for (what, content) in variants {
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        let path = work.path().join(&seg2);
        std::fs::write(&path, &content).unwrap();
        let mut c = c.clone();
        c.dir = work.path().to_path_buf();
        let ch = FileChannel::open(c.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            ch.open_report().torn_tail,
            Some(TornTail {
                segment: 2,
                path: path.clone(),
                offset: 0,
                bytes: content.len() as u64,
                removed_file: true,
            }),
            "{what}"
        );
        assert_eq!(ch.open_report().segments, 1, "{what}");
        assert_eq!(peek_all(&ch), first, "{what}");
        let new = Event::new(b"after".to_vec());
        put_commit(&ch, std::slice::from_ref(&new));
        ch.close().unwrap();

        let ch = FileChannel::open(c).unwrap_or_else(|e| panic!("{what}, 2nd open: {e}"));
        assert_eq!(ch.open_report().torn_tail, None, "{what}");
        assert_eq!(ch.open_report().segments, 2, "{what}");
        let mut want = first.clone();
        want.push(new);
        assert_eq!(drain(&ch), want, "{what}");
        ch.close().unwrap();
    }
}

#[test]
fn only_segment_with_a_torn_header_is_removed() {
    let work = tempfile::tempdir().unwrap();
    let c = cfg(work.path());
    FileChannel::open(c.clone()).unwrap().close().unwrap();
    let seg1 = work.path().join(segment_file_name(1));
    let len = std::fs::metadata(&seg1).unwrap().len();
    assert_eq!(len, SEGMENT_HEADER_BYTES as u64);
    std::fs::write(&seg1, [0x53, 0x4c, 0x55]).unwrap();
    let ch = FileChannel::open(c.clone()).unwrap();
    assert_eq!(
        ch.open_report().torn_tail,
        Some(TornTail {
            segment: 1,
            path: seg1,
            offset: 0,
            bytes: 3,
            removed_file: true,
        })
    );
    assert!(ch.is_empty());
    put_commit(&ch, &[Event::new(b"x".to_vec())]);
    ch.close().unwrap();
    let ch = FileChannel::open(c).unwrap();
    assert_eq!(drain(&ch), vec![Event::new(b"x".to_vec())]);
}

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

#[test]
fn an_empty_newest_segment_after_a_seal_is_kept_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes_max = 4096;
    let ch = FileChannel::open(c.clone()).unwrap();
    let mut all = Vec::new();
    for i in 0..12 {
        let e = Event::new(format!("{i}-{}", "q".repeat(700)).into_bytes());
        put_commit(&ch, std::slice::from_ref(&e));
        all.push(e);
    }
    ch.close().unwrap();
    let segs = seg_files(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    // The state right after a rotation: the newest segment holds only its header, and its
    // predecessor's seal names it. Its events move nowhere: drop the newest one's records.
    let last = segs.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let n_last = records(&bytes, segs.len() as u64).len();
    std::fs::write(last, &bytes[..SEGMENT_HEADER_BYTES]).unwrap();
    remove_checkpoints(dir.path());
    let expected: Vec<Event> = all[..all.len() - n_last].to_vec();
    for round in 0..2 {
        let ch = FileChannel::open(c.clone()).unwrap();
        assert_eq!(ch.open_report().torn_tail, None, "round {round}");
        assert_eq!(
            seg_files(dir.path()).len(),
            segs.len(),
            "round {round}: a segment was removed or added"
        );
        assert_eq!(peek_all(&ch), expected, "round {round}");
        ch.close().unwrap();
    }
}
