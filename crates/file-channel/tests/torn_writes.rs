//! Replay of what a crash tears, on the real file system: a torn tail cut at every byte of the
//! last record (truncated, overwritten with garbage, zeroed; with and without prefill), a newest
//! or only segment whose header never became durable, and an empty newest segment after a seal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::disk_channel::{cfg, copy_dir, put_commit};
use common::{drain, peek_all, records, seg_files};

use file_channel::format::record::RecordKind;
use file_channel::format::segment_header::{segment_file_name, SEGMENT_HEADER_BYTES};
use file_channel::replay::TornTail;
use file_channel::{ChannelConfig, Event, FileChannel};
use std::path::Path;

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

/// A torn creation is only a torn tail while nothing durable knew the segment: the copies here
/// leave out the checkpoints (which were written after segment 2's header was durable); the
/// same damage under a checkpoint that knew segment 2 is counted lost
/// (`newest_segment_a_checkpoint_knew_with_a_torn_header_is_counted_lost`).
#[test]
fn newest_segment_with_a_torn_header_is_removed() {
    let base = tempfile::tempdir().unwrap();
    let (c, first, _) = two_segments(base.path());
    for e in std::fs::read_dir(base.path()).unwrap() {
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
fn newest_segment_a_checkpoint_knew_with_a_torn_header_is_counted_lost() {
    let base = tempfile::tempdir().unwrap();
    let (c, first, second) = two_segments(base.path());
    let seg2 = segment_file_name(2);
    for (what, content) in [
        ("empty", Vec::new()),
        ("ten header bytes", b"SLUICESEG\0".to_vec()),
        ("zeros", vec![0u8; 4096]),
    ] {
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        std::fs::write(work.path().join(&seg2), &content).unwrap();
        let mut c = c.clone();
        c.dir = work.path().to_path_buf();
        let ch = FileChannel::open(c.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ch.open_report().torn_tail, None, "{what}");
        assert_eq!(
            ch.open_report().events_lost,
            second.len() as u64,
            "{what}: {:?}",
            ch.open_report()
        );
        assert_eq!(drain(&ch), first, "{what}");
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
