//! Damage in the default recovery mode (`skip-damaged`): a bit flip inside a committed record
//! of an older segment is skipped, its bytes are copied to `quarantine/` with a JSON note, the
//! events lost are counted exactly, and the channel keeps serving every other event in order —
//! both when open finds the damage (full replay) and when a reader meets it later (the
//! checkpoint let open skip those bytes). `strict` refusing the same damage is in recovery.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{drain, records, seg_files};

use file_channel::format::record::RecordHeader;
use file_channel::format::CorruptionKind;
use file_channel::replay::ReplayStart;
use file_channel::{ChannelConfig, Event, FileChannel};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

fn cfg(dir: &Path) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4096;
    c.minimum_required_space = 0;
    c
}

fn ev(round: u32, i: u32) -> Event {
    Event::new(format!("r{round}-e{i}-{}", "p".repeat(300)).into_bytes())
        .with_header("round", round.to_string())
}

/// A closed channel of 12 put transactions of 3 events (several segments): its config, every
/// event in order, and segment 2's path.
fn closed_channel(dir: &Path) -> (ChannelConfig, Vec<Event>, PathBuf) {
    let c = cfg(dir);
    let ch = FileChannel::open(c.clone()).unwrap();
    let mut all = Vec::new();
    for round in 0..12 {
        let mut tx = ch.transaction();
        for i in 0..3 {
            let e = ev(round, i);
            tx.put(&e).unwrap();
            all.push(e);
        }
        tx.commit().unwrap();
    }
    ch.close().unwrap();
    let segs = seg_files(dir);
    assert!(segs.len() >= 3, "{segs:?}");
    (c, all, segs[1].clone())
}

/// Builds a channel of 12 put transactions of 3 events (several segments), closes it, and
/// flips a bit in the payload of the second record of segment 2. Returns the channel config,
/// every event in order, the damaged record and its file.
fn damaged_channel(dir: &Path) -> (ChannelConfig, Vec<Event>, RecordHeader, PathBuf) {
    let (c, all, path) = closed_channel(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let recs = records(&bytes, 2);
    assert!(recs.len() >= 2, "{recs:?}");
    let victim = recs[1];
    assert_eq!(victim.event_count, 3);
    bytes[(victim.offset + 100) as usize] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    (c, all, victim, path)
}

fn expected_after_loss(all: &[Event], victim: &RecordHeader) -> Vec<Event> {
    let lost =
        victim.first_seq as usize..(victim.first_seq + u64::from(victim.event_count)) as usize;
    all.iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .map(|(_, e)| e.clone())
        .collect()
}

fn assert_quarantined(dir: &Path, victim: &RecordHeader, events_lost: u64) {
    let q = dir.join("quarantine");
    let stem = format!("segment-2-offset-{}", victim.offset);
    let bin = std::fs::read(q.join(format!("{stem}.bin"))).unwrap();
    assert_eq!(
        bin.len() as u64,
        victim.aligned_len(),
        "quarantined bytes = the damaged record"
    );
    assert_eq!(
        u32::from_le_bytes(bin[0..4].try_into().unwrap()),
        victim.len,
        "the quarantined copy starts with the damaged record"
    );
    let note = std::fs::read_to_string(q.join(format!("{stem}.json"))).unwrap();
    assert!(note.contains("\"segment\":2"), "{note}");
    assert!(
        note.contains(&format!("\"offset\":{}", victim.offset)),
        "{note}"
    );
    assert!(
        note.contains(&format!("\"events_lost\":{events_lost}")),
        "{note}"
    );
    assert!(note.contains("checksum mismatch"), "{note}");
}

#[test]
fn open_skips_a_damaged_record_counts_its_events_and_quarantines_it() {
    let dir = tempfile::tempdir().unwrap();
    let (c, all, victim, path) = damaged_channel(dir.path());
    // No checkpoint: open replays every segment and meets the damage itself.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ckpt") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let ch = FileChannel::open(c.clone()).unwrap();
    let r = ch.open_report().clone();
    assert!(matches!(r.start, ReplayStart::Full { .. }), "{:?}", r.start);
    assert_eq!(r.damage.len(), 1, "{:?}", r.damage);
    let d = &r.damage[0];
    assert_eq!(
        (d.at.file.clone(), d.at.segment, d.at.offset),
        (path, 2, victim.offset)
    );
    assert!(
        matches!(d.at.kind, CorruptionKind::BadChecksum { .. }),
        "{:?}",
        d.at.kind
    );
    assert_eq!(d.events_lost, 3);
    assert_eq!(r.events_lost, 3);
    assert_eq!(ch.metrics().events_lost.load(Relaxed), 3);
    assert_eq!(ch.metrics().corrupt_record_count.load(Relaxed), 1);
    assert_eq!(ch.len(), all.len() as u64 - 3);
    assert_quarantined(dir.path(), &victim, 3);
    assert_eq!(drain(&ch), expected_after_loss(&all, &victim));
    ch.close().unwrap();

    // The loss is counted once: the next open starts from the checkpoint written since.
    let ch = FileChannel::open(c).unwrap();
    assert!(matches!(
        ch.open_report().start,
        ReplayStart::Checkpoint { .. }
    ));
    assert!(ch.open_report().damage.is_empty());
    assert_eq!(
        ch.metrics().events_lost.load(Relaxed),
        3,
        "cumulative, from the checkpoint"
    );
    assert_eq!(ch.len(), 0);
}

#[test]
fn a_reader_meeting_damage_below_the_checkpoint_skips_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (c, all, victim, _) = damaged_channel(dir.path());
    // With the checkpoint from the clean close, open does not read the damaged bytes.
    let ch = FileChannel::open(c).unwrap();
    assert!(matches!(
        ch.open_report().start,
        ReplayStart::Checkpoint { .. }
    ));
    assert!(ch.open_report().damage.is_empty());
    assert_eq!(ch.len(), all.len() as u64);
    let got = drain(&ch);
    assert_eq!(got, expected_after_loss(&all, &victim));
    assert_eq!(ch.metrics().events_lost.load(Relaxed), 3);
    assert_eq!(ch.metrics().corrupt_record_count.load(Relaxed), 1);
    assert_eq!(ch.len(), 0);
    assert_quarantined(dir.path(), &victim, 3);
}

/// Builds the same channel as [`damaged_channel`] but flips bit `bit` of byte `byte` of segment
/// 2's 64-byte header instead of a record. Returns the config, every event and segment 2's path.
fn channel_with_damaged_header(
    dir: &Path,
    byte: usize,
    bit: u8,
) -> (ChannelConfig, Vec<Event>, PathBuf) {
    let (c, all, path) = closed_channel(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[byte] ^= 1 << bit;
    std::fs::write(&path, &bytes).unwrap();
    (c, all, path)
}

/// Found by `crashtest sim --seed 504` (cases 1346 and 13195): a bit flip in the header of an
/// older segment covered by the checkpoint made open leave the whole segment out, so its pending
/// events vanished without being counted (`EventsLost` 0). The records name their segment inside
/// their own checksums, so the header is now rebuilt from them and nothing is lost.
#[test]
fn damaged_header_of_checkpointed_segment_is_rebuilt_and_nothing_is_lost() {
    for (byte, bit) in [(7, 3), (20, 0), (48, 6), (63, 7)] {
        let dir = tempfile::tempdir().unwrap();
        let (c, all, path) = channel_with_damaged_header(dir.path(), byte, bit);
        let ch = FileChannel::open(c.clone()).unwrap();
        assert!(
            matches!(ch.open_report().start, ReplayStart::Checkpoint { .. }),
            "{:?}",
            ch.open_report().start
        );
        let damage = &ch.open_report().damage;
        assert_eq!(damage.len(), 1, "byte {byte}: {damage:?}");
        assert_eq!(damage[0].at.file, path);
        assert_eq!(damage[0].at.offset, 0);
        assert_eq!(damage[0].events_lost, 0);
        assert_eq!(ch.len(), all.len() as u64);
        assert_eq!(drain(&ch), all, "byte {byte}: every event, in order");
        assert_eq!(ch.metrics().events_lost.load(Relaxed), 0);
        ch.close().unwrap();
        // The header was rewritten: the next open finds nothing, and the original header
        // bytes are in quarantine.
        let ch = FileChannel::open(c).unwrap();
        assert!(ch.open_report().damage.is_empty(), "{:?}", ch.open_report());
        let q = std::fs::read(dir.path().join("quarantine/segment-2-offset-0.bin")).unwrap();
        assert_eq!(q.len(), 64, "the damaged header is quarantined");
    }
}

/// The same damage found by a full replay (no checkpoint): the header is rebuilt, the
/// segment's events are replayed, and no sequence gap is counted as lost.
#[test]
fn damaged_header_found_by_full_replay_is_rebuilt_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (c, all, _) = channel_with_damaged_header(dir.path(), 7, 1);
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ckpt") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let ch = FileChannel::open(c).unwrap();
    assert!(
        matches!(ch.open_report().start, ReplayStart::Full { .. }),
        "{:?}",
        ch.open_report().start
    );
    assert_eq!(ch.open_report().damage.len(), 1);
    assert_eq!(ch.open_report().damage[0].events_lost, 0);
    assert_eq!(drain(&ch), all);
    assert_eq!(ch.metrics().events_lost.load(Relaxed), 0);
}

/// `strict` refuses a damaged header (it is damage outside a torn tail), naming the file.
#[test]
fn strict_refuses_a_damaged_segment_header() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _, path) = channel_with_damaged_header(dir.path(), 7, 1);
    c.recovery_mode = file_channel::RecoveryMode::Strict;
    let err = FileChannel::open(c).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}
