//! The loss ledger (issue 14 §1): every acknowledged event recovery cannot return is counted,
//! and every view — open, `replay` (the replay view), `verify`, the repair plan — reports the
//! same number: `reported lost = committed − recovered`.
//!
//! Each test builds a real channel over several small segments, damages the directory the way
//! an unlucky operator or a failing disk would, and checks every view against what draining the
//! reopened channel actually returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::disk_channel::{cfg, put_commit};
use common::{drain, seg_files};
use file_channel::format::record::RecordBinding;
use file_channel::inspect::repair::{plan, RepairOptions};
use file_channel::inspect::replay_view;
use file_channel::inspect::verify::{verify, VerifyOptions};
use file_channel::inspect::ChannelDir;
use file_channel::segment::scan::Scanner;
use file_channel::storage::{DynFile, StdStorage, Storage};
use file_channel::{Event, FileChannel, RecoveryMode};
use std::path::Path;

const EVENTS: usize = 3000;

/// A channel in `dir` holding `EVENTS` committed, untaken events over several 64 KiB segments,
/// closed cleanly (so a checkpoint knows all of them).
fn build(dir: &Path) -> u64 {
    let id = build_with(dir, EVENTS);
    assert!(seg_files(dir).len() >= 4, "the test needs several segments");
    id
}

/// A channel in `dir` holding `events` committed, untaken events, closed cleanly.
fn build_with(dir: &Path, events: usize) -> u64 {
    let ch = FileChannel::open(cfg(dir)).unwrap();
    for chunk in (0..events).collect::<Vec<_>>().chunks(100) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|i| Event::new(format!("event-{i:06}-{}", "x".repeat(60))))
            .collect();
        put_commit(&ch, &events);
    }
    let id = ch.channel_id();
    ch.close().unwrap();
    id
}

/// What every view says is lost, and what draining the reopened channel returns.
#[derive(Debug)]
struct Views {
    replay_view: u64,
    replay_view_corrupt: bool,
    verify: u64,
    verify_corrupt: bool,
    repair_plan: u64,
    open: u64,
    recovered: u64,
}

fn views(dir: &Path) -> Views {
    let d = ChannelDir::open(dir, &[]).unwrap();
    let rv = replay_view(&d, RecoveryMode::SkipDamaged, None).unwrap();
    let vr = verify(&d, &VerifyOptions::default()).unwrap();
    let rp = plan(&d, &RepairOptions::default(), &VerifyOptions::default()).unwrap();
    if std::env::var("LEDGER_DEBUG").is_ok() {
        eprintln!("{:#?} {:#?}", rp.actions, rp.unrepairable);
    }
    let ch = FileChannel::open(cfg(dir)).unwrap();
    let open = ch.open_report().events_lost;
    let recovered = drain(&ch).len() as u64;
    ch.close().unwrap();
    Views {
        replay_view: rv.events_lost_now(),
        replay_view_corrupt: rv.is_corrupt(),
        verify: vr.events_lost(),
        verify_corrupt: vr.is_corrupt(),
        repair_plan: rp.events_lost(),
        open,
        recovered,
    }
}

/// Every view reports exactly `committed − recovered`, and it is not zero.
fn assert_ledger(v: &Views) {
    let lost = EVENTS as u64 - v.recovered;
    assert!(lost > 0, "the damage should cost events: {v:?}");
    assert_eq!(v.replay_view, lost, "replay view: {v:?}");
    assert_eq!(v.verify, lost, "verify: {v:?}");
    assert_eq!(v.repair_plan, lost, "repair plan: {v:?}");
    assert_eq!(v.open, lost, "open report: {v:?}");
    assert!(
        v.replay_view_corrupt && v.verify_corrupt,
        "replay and verify exit 1: {v:?}"
    );
}

fn quarantined_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("quarantine")).map_or(0, |r| r.count())
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_segment_overwritten_with_garbage_under_the_checkpoint_is_counted_not_cut_as_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    let newest = seg_files(t.path()).pop().unwrap();
    let len = std::fs::metadata(&newest).unwrap().len() as usize;
    std::fs::write(&newest, garbage(len, 7)).unwrap();
    let v = views(t.path());
    assert_ledger(&v);
    assert!(
        quarantined_files(t.path()) > 0,
        "the garbage was kept in quarantine/"
    );
}

#[test]
fn the_oldest_segment_deleted_is_counted_lost_in_every_view() {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    std::fs::remove_file(&seg_files(t.path())[0]).unwrap();
    assert_ledger(&views(t.path()));
}

#[test]
fn the_newest_segment_deleted_is_counted_lost_in_every_view() {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    std::fs::remove_file(seg_files(t.path()).pop().unwrap()).unwrap();
    assert_ledger(&views(t.path()));
}

#[test]
fn the_newest_segment_truncated_is_counted_lost_in_every_view() {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    let newest = seg_files(t.path()).pop().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len(4096).unwrap();
    assert_ledger(&views(t.path()));
}

#[test]
fn every_file_garbage_makes_replay_and_verify_report_a_problem() {
    for events in [EVENTS, 50] {
        every_file_garbage(events);
    }
}

fn every_file_garbage(events: usize) {
    let t = tempfile::tempdir().unwrap();
    build_with(t.path(), events);
    for (i, e) in std::fs::read_dir(t.path()).unwrap().enumerate() {
        let p = e.unwrap().path();
        if p.is_file() && !p.ends_with(".lock") {
            let len = std::fs::metadata(&p).unwrap().len().max(256) as usize;
            std::fs::write(&p, garbage(len, 11 + i as u64)).unwrap();
        }
    }
    let d = ChannelDir::open(t.path(), &[]).unwrap();
    let rv = replay_view(&d, RecoveryMode::SkipDamaged, None).unwrap();
    assert!(
        rv.is_corrupt(),
        "replay exits 1 on a directory of garbage: {rv:?}"
    );
    let vr = verify(&d, &VerifyOptions::default()).unwrap();
    assert!(vr.is_corrupt(), "verify exits 1 on a directory of garbage");
}

#[test]
fn a_foreign_channels_segment_as_the_newest_is_not_deleted_without_a_quarantine_copy() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    build(ours.path());
    build(theirs.path());
    let next_id = seg_files(ours.path()).len() as u64 + 1;
    let foreign = seg_files(theirs.path())[1].clone();
    let name_of_last = seg_files(ours.path()).pop().unwrap();
    // Name it the way our segments are named, one above our newest.
    let target = name_of_last.with_file_name(
        file_channel::format::segment_header::segment_file_name(next_id),
    );
    std::fs::copy(&foreign, &target).unwrap();
    let before = std::fs::read(&target).unwrap();
    let result = FileChannel::open(cfg(ours.path()));
    let kept = std::fs::read(&target).ok() == Some(before.clone())
        || std::fs::read_dir(ours.path().join("quarantine"))
            .into_iter()
            .flatten()
            .any(|e| std::fs::read(e.unwrap().path()).ok() == Some(before.clone()));
    assert!(
        kept,
        "the foreign segment's bytes survive, in place or in quarantine/"
    );
    if let Ok(ch) = result {
        assert_eq!(drain(&ch).len(), EVENTS, "none of our events are lost");
        ch.close().unwrap();
    }
}

#[test]
fn searching_garbage_for_the_next_valid_record_is_linear_in_the_bytes_scanned() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("garbage.seg");
    // Length fields that all look plausible: every 8-byte word starts with a small length.
    let mut bytes = garbage(8 << 20, 3);
    for w in bytes.chunks_mut(8) {
        w[..4].copy_from_slice(&(1u32 << 20).to_le_bytes());
    }
    std::fs::write(&path, &bytes).unwrap();
    let file: DynFile = StdStorage.open(&path, false).unwrap();
    let mut scanner = Scanner::from_start(file, 1, RecordBinding::Channel(7));
    assert!(scanner.find_next_valid(64).unwrap().is_none());
    assert!(
        scanner.search_decoded_bytes() <= bytes.len() as u64,
        "checksummed {} bytes to search {} bytes",
        scanner.search_decoded_bytes(),
        bytes.len()
    );
}

#[test]
fn replay_verify_and_the_repair_plan_agree_on_damage_inside_what_the_checkpoint_covers() {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    // Garble a record in the middle of the second segment: the checkpoint covers it, so an
    // open trusts it and meets the damage only while reading.
    let second = seg_files(t.path())[1].clone();
    let mut bytes = std::fs::read(&second).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 300] {
        *b ^= 0x5a;
    }
    std::fs::write(&second, &bytes).unwrap();
    let d = ChannelDir::open(t.path(), &[]).unwrap();
    let rv = replay_view(&d, RecoveryMode::SkipDamaged, None).unwrap();
    let vr = verify(&d, &VerifyOptions::default()).unwrap();
    let rp = plan(&d, &RepairOptions::default(), &VerifyOptions::default()).unwrap();
    let ch = FileChannel::open(cfg(t.path())).unwrap();
    let recovered = drain(&ch).len() as u64;
    let lost_counted = ch
        .metrics_snapshot()
        .into_iter()
        .find(|(name, _)| *name == "EventsLost")
        .map(|(_, v)| v)
        .unwrap();
    ch.close().unwrap();
    let lost = EVENTS as u64 - recovered;
    assert!(lost > 0);
    assert!(rv.is_corrupt() && vr.is_corrupt());
    assert_eq!(rv.events_lost_now(), lost, "replay view");
    assert_eq!(vr.events_lost(), lost, "verify");
    assert_eq!(rp.events_lost(), lost, "repair plan");
    assert_eq!(
        lost_counted, lost,
        "the open's EventsLost once the reader met the damage"
    );
}

#[test]
fn damage_followed_only_by_take_records_is_counted_when_the_reader_reaches_the_end() {
    let t = tempfile::tempdir().unwrap();
    let ch = FileChannel::open(cfg(t.path())).unwrap();
    let events: Vec<Event> = (0..8).map(|i| Event::new(format!("event-{i}"))).collect();
    put_commit(&ch, &events);
    let mut tx = ch.transaction();
    tx.take().unwrap().unwrap();
    tx.take().unwrap().unwrap();
    tx.commit().unwrap();
    ch.close().unwrap();
    // Garble the put record (the first record of the only segment); the take record after it
    // survives, and tells nothing about the sequence.
    let seg = seg_files(t.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    for b in &mut bytes[100..140] {
        *b ^= 0xff;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let ch = FileChannel::open(cfg(t.path())).unwrap();
    assert_eq!(drain(&ch).len(), 0);
    let lost = ch
        .metrics_snapshot()
        .into_iter()
        .find(|(name, _)| *name == "EventsLost")
        .map(|(_, v)| v);
    assert_eq!(lost, Some(6), "the six events committed and not taken");
    assert_eq!(
        ch.len(),
        0,
        "nothing is left pending that can never be delivered"
    );
    ch.close().unwrap();
}

#[test]
fn a_cut_below_what_a_checkpoint_knew_is_damage_not_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    let newest = seg_files(t.path()).pop().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len(4100).unwrap();
    let ch = FileChannel::open(cfg(t.path())).unwrap();
    let r = ch.open_report().clone();
    assert_eq!(r.torn_tail, None, "{r:?}");
    assert!(
        r.damage.iter().any(|d| d.at.file == newest),
        "the cut is damage in the newest segment: {r:?}"
    );
    let recovered = drain(&ch).len() as u64;
    assert_eq!(r.events_lost, EVENTS as u64 - recovered);
    ch.close().unwrap();
}

#[test]
fn another_channels_segment_of_the_same_id_behind_a_destroyed_header_is_not_taken_for_ours() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    build(ours.path());
    // Another channel with the same segment ids but other sequence boundaries.
    let ch = FileChannel::open(cfg(theirs.path())).unwrap();
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(37) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|i| Event::new(format!("theirs-{i}-{}", "y".repeat(90))))
            .collect();
        put_commit(&ch, &events);
    }
    ch.close().unwrap();
    let victim = seg_files(ours.path())[1].clone();
    let name = victim.file_name().unwrap().to_owned();
    let mut bytes = std::fs::read(theirs.path().join(&name)).unwrap();
    for b in &mut bytes[..64] {
        *b = 0x5a;
    }
    std::fs::write(&victim, &bytes).unwrap();
    let ch = FileChannel::open(cfg(ours.path())).unwrap();
    let got = drain(&ch);
    assert!(
        got.iter().all(|e| !e.body.starts_with(b"theirs-")),
        "another channel's events were delivered as ours"
    );
    let lost = ch
        .metrics_snapshot()
        .into_iter()
        .find(|(name, _)| *name == "EventsLost")
        .map(|(_, v)| v);
    assert_eq!(lost, Some(EVENTS as u64 - got.len() as u64));
    ch.close().unwrap();
}

/// A channel like [`build`]'s, of other events with other sequence boundaries: the same segment
/// ids, other records.
fn build_theirs(dir: &Path) {
    let ch = FileChannel::open(cfg(dir)).unwrap();
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(37) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|i| Event::new(format!("theirs-{i}-{}", "y".repeat(90))))
            .collect();
        put_commit(&ch, &events);
    }
    ch.close().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn another_channels_segment_as_the_newest_behind_a_destroyed_header_is_not_taken_for_ours() {
    // The case the crashtest damage layer found (seed 519, case 870): the newest segment has
    // no next segment whose header its seal must lead into, so only the records' binding to
    // their channel (format 2) tells another channel's records from ours.
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    build(ours.path());
    build_theirs(theirs.path());
    let victim = seg_files(ours.path()).pop().unwrap();
    let name = victim.file_name().unwrap().to_owned();
    let mut bytes = std::fs::read(theirs.path().join(&name)).unwrap();
    bytes[..64].fill(0);
    std::fs::write(&victim, &bytes).unwrap();

    let copy = tempfile::tempdir().unwrap();
    copy_dir(ours.path(), copy.path());
    assert_ledger(&views(copy.path()));

    let ch = FileChannel::open(cfg(ours.path())).unwrap();
    let got = drain(&ch);
    assert!(
        got.iter().all(|e| !e.body.starts_with(b"theirs-")),
        "another channel's events were delivered as ours"
    );
    let lost = ch
        .metrics_snapshot()
        .into_iter()
        .find(|(name, _)| *name == "EventsLost")
        .map(|(_, v)| v);
    assert!(got.len() < EVENTS, "the newest segment's events are gone");
    assert_eq!(lost, Some(EVENTS as u64 - got.len() as u64));
    ch.close().unwrap();
    let probe = &bytes[64..64 + 512];
    assert!(
        std::fs::read_dir(ours.path().join("quarantine"))
            .unwrap()
            .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
            .any(|q| q.windows(probe.len()).any(|w| w == probe)),
        "the foreign bytes are kept in quarantine/"
    );
}
