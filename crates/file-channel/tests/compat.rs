//! Format compatibility: every checked-in fixture (`tests/fixtures/format-v<N>/`, a channel
//! directory written by the engine of format version N) must open with today's engine and
//! drain exactly the events its `expected.json` lists — same order, same headers in the same
//! order, same bodies — and `inspect::verify` must find it clean.
//!
//! Each fixture is opened three ways, on a fresh copy each time (never in place: opening
//! writes): as written (from its newest checkpoint), from its older checkpoint only (replaying
//! the later records on top of it), and from the log alone (checkpoints removed, a full
//! replay). Recovery is strict, so damage fails the test instead of being skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use file_channel::encryption::{DataKey, Keyring};
use file_channel::inspect::verify::{verify, CheckpointStatus, VerifyOptions};
use file_channel::inspect::ChannelDir;
use file_channel::replay::ReplayStart;
use file_channel::{ChannelConfig, Event, FileChannel, RecoveryMode};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("format-v{version}"))
}

/// The drain `expected.json` lists.
fn expected(fixture: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(fixture.join("expected.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["events"]
        .as_array()
        .expect("expected.json: events")
        .iter()
        .map(|e| {
            let headers = e["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|kv| {
                    let kv = kv.as_array().expect("a [key, value] pair");
                    assert_eq!(kv.len(), 2, "a [key, value] pair");
                    (
                        kv[0].as_str().expect("key").to_owned(),
                        kv[1].as_str().expect("value").to_owned(),
                    )
                })
                .collect();
            Event {
                headers,
                body: hex(e["body_hex"].as_str().expect("body_hex")),
            }
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A fresh copy of the fixture's channel directory.
fn copy_channel(fixture: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture.join("channel")).unwrap() {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "{:?}", entry.path());
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

/// Checkpoint files in `dir`, oldest generation first.
fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect();
    out.sort();
    out
}

fn segment_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count()
}

/// The name of the checkpoint file an open started from (`None`: a full replay).
fn checkpoint_used(start: &ReplayStart) -> Option<&OsStr> {
    match start {
        ReplayStart::Checkpoint { path, .. } => path.file_name(),
        ReplayStart::Full { .. } => None,
    }
}

/// The fixtures' configuration: strict recovery, 4 KiB segments, no prefill.
fn config(dir: &Path) -> ChannelConfig {
    let mut cfg = ChannelConfig::new(dir);
    cfg.recovery_mode = RecoveryMode::Strict;
    cfg.segment_bytes_max = 4096;
    cfg.prefill_ahead_bytes = 0;
    cfg.minimum_required_space = 0;
    cfg
}

/// The fixture's key (`key.bin`, id `fixture-key`), if it is encrypted.
fn fixture_keys(fixture: &Path) -> Option<Arc<Keyring>> {
    let bytes = std::fs::read(fixture.join("key.bin")).ok()?;
    let mut keys = Keyring::new();
    keys.insert("fixture-key", DataKey::from_slice(&bytes).unwrap())
        .unwrap();
    keys.set_active("fixture-key").unwrap();
    Some(keys.shared())
}

/// Opens `dir` strictly and takes everything, committing in transactions of three events.
fn open_and_drain(dir: &Path, keys: Option<Arc<Keyring>>) -> (ReplayStart, Vec<Event>) {
    let mut cfg = config(dir);
    cfg.keyring = keys;
    let ch = FileChannel::open(cfg).unwrap();
    let report = ch.open_report();
    assert!(report.damage.is_empty(), "{report:?}");
    assert_eq!(report.events_lost, 0);
    assert!(report.torn_tail.is_none(), "{report:?}");
    let start = report.start.clone();
    let pending = ch.len();
    let mut drained = Vec::new();
    loop {
        let mut tx = ch.transaction();
        let mut got = 0;
        while got < 3 {
            match tx.take().unwrap() {
                Some(e) => {
                    drained.push(e);
                    got += 1;
                }
                None => break,
            }
        }
        tx.commit().unwrap();
        if got == 0 {
            break;
        }
    }
    assert_eq!(pending, drained.len() as u64, "len() before the drain");
    assert_eq!(ch.len(), 0);
    ch.close().unwrap();
    (start, drained)
}

/// Compares event by event, so a failure names the first event that differs.
fn assert_same_drain(what: &str, got: &[Event], want: &[Event]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: event {i} of the drain differs");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: drained {} events, expected {}",
        got.len(),
        want.len()
    );
}

fn check_fixture(version: u32) {
    let fixture = fixture(version);
    let want = expected(&fixture);
    let keys = fixture_keys(&fixture);
    assert!(!want.is_empty(), "expected.json lists no event");

    // Verify, on a copy nobody opened.
    let copy = copy_channel(&fixture);
    assert!(
        segment_count(copy.path()) >= 2,
        "the fixture spans segments"
    );
    let cps = checkpoints(copy.path());
    assert!(cps.len() >= 2, "the fixture has two checkpoints: {cps:?}");
    let dir = ChannelDir::open(copy.path(), &[]).unwrap();
    let report = verify(&dir, &VerifyOptions::default()).unwrap();
    assert!(!report.is_corrupt(), "{report:?}");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.torn_tail.is_none(), "{:?}", report.torn_tail);
    assert!(report.other_files.is_empty(), "{:?}", report.other_files);
    for c in &report.checkpoints {
        assert_eq!(c.status, CheckpointStatus::Valid, "{}", c.path.display());
    }

    // As written: from the newest checkpoint.
    let (start, got) = open_and_drain(copy.path(), keys.clone());
    assert_eq!(checkpoint_used(&start), cps.last().unwrap().file_name());
    assert_same_drain("from the newest checkpoint", &got, &want);

    // From the older checkpoint, with the records after it replayed on top.
    let copy = copy_channel(&fixture);
    let cps = checkpoints(copy.path());
    std::fs::remove_file(cps.last().unwrap()).unwrap();
    let (start, got) = open_and_drain(copy.path(), keys.clone());
    assert_eq!(checkpoint_used(&start), cps[cps.len() - 2].file_name());
    assert_same_drain("from the older checkpoint", &got, &want);

    // From the log alone.
    let copy = copy_channel(&fixture);
    for cp in checkpoints(copy.path()) {
        std::fs::remove_file(cp).unwrap();
    }
    let (start, got) = open_and_drain(copy.path(), keys.clone());
    assert_eq!(checkpoint_used(&start), None, "{start:?}");
    assert_same_drain("by a full replay", &got, &want);
}

#[test]
fn format_v1_fixture_opens_and_drains_as_written() {
    check_fixture(1);
}

#[test]
fn format_v2_fixture_opens_and_drains_as_written() {
    check_fixture(2);
}

#[test]
fn format_v3_encrypted_fixture_verifies_without_a_key_and_drains_with_it() {
    check_fixture(3);
    let fixture = fixture(3);
    assert!(fixture_keys(&fixture).is_some());
    // No key, a wrong key: refused at open, nothing read.
    for keys in [None, {
        let mut k = Keyring::new();
        k.insert("fixture-key", DataKey::new([0; 32])).unwrap();
        k.set_active("fixture-key").unwrap();
        Some(k.shared())
    }] {
        let copy = copy_channel(&fixture);
        let mut cfg = config(copy.path());
        cfg.keyring = keys;
        let err = FileChannel::open(cfg).unwrap_err();
        assert!(
            matches!(&err, file_channel::OpenError::Key { key_id, .. } if key_id == "fixture-key"),
            "{err}"
        );
    }
}

#[test]
fn a_format_2_channel_turns_encryption_on_old_records_plain_new_ones_sealed() {
    use file_channel::encryption::{DataKey, Keyring};
    let fixture = fixture(2);
    let mut want = expected(&fixture);
    let copy = copy_channel(&fixture);
    let dir = copy.path();
    let before = segment_count(dir);
    let mut keys = Keyring::new();
    keys.insert("key-1", DataKey::new([5; 32])).unwrap();
    keys.set_active("key-1").unwrap();
    let keys = keys.shared();
    let mut cfg = config(dir);
    cfg.keyring = Some(keys.clone());
    let ch = FileChannel::open(cfg.clone()).unwrap();
    let added: Vec<Event> = (0..6)
        .map(|i| Event::new(format!("sealed after the upgrade {i}")))
        .collect();
    let mut tx = ch.transaction();
    for e in &added {
        tx.put(e).unwrap();
    }
    tx.commit().unwrap();
    ch.close().unwrap();
    want.extend(added);
    // The open format-2 segment was sealed; the encrypted records went to a new one.
    assert_eq!(segment_count(dir), before + 1);
    assert_eq!(format_version_of(&dir.join("channel.meta")), 2);
    assert_eq!(format_version_of(&segment_path(dir, before as u64)), 2);
    assert_eq!(
        format_version_of(&segment_path(dir, before as u64 + 1)),
        file_channel::format::FORMAT_VERSION
    );
    let newest = std::fs::read(segment_path(dir, before as u64 + 1)).unwrap();
    assert!(!newest
        .windows(b"after the upgrade".len())
        .any(|w| w == b"after the upgrade"));
    let report = verify(
        &ChannelDir::open(dir, &[]).unwrap(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let ch = FileChannel::open(cfg).unwrap();
    let mut tx = ch.transaction();
    let mut drained = Vec::new();
    while let Some(e) = tx.take().unwrap() {
        drained.push(e);
    }
    tx.commit().unwrap();
    assert_eq!(drained, want);
    ch.close().unwrap();
}

/// The format version in a segment header or `channel.meta` (bytes 8..12 of either).
fn format_version_of(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(file_channel::format::segment_header::segment_file_name(id))
}

#[test]
fn a_format_1_channel_keeps_its_segments_and_continues_in_today_s_format() {
    let fixture = fixture(1);
    let mut want = expected(&fixture);
    let copy = copy_channel(&fixture);
    let dir = copy.path();
    assert_eq!(segment_count(dir), 2);
    // Appends go on in the open format-1 segment (format-1 records), until it is full; the
    // segment after it is today's format.
    let ch = FileChannel::open(config(dir)).unwrap();
    let added: Vec<Event> = (0..12)
        .map(|i| Event::new(format!("after the upgrade {i} {}", "z".repeat(400))))
        .collect();
    for chunk in added.chunks(2) {
        let mut tx = ch.transaction();
        for e in chunk {
            tx.put(e).unwrap();
        }
        tx.commit().unwrap();
    }
    ch.close().unwrap();
    want.extend(added);
    assert!(
        segment_count(dir) >= 3,
        "the upgrade rotated into a new segment"
    );
    assert_eq!(format_version_of(&dir.join("channel.meta")), 1);
    assert_eq!(format_version_of(&segment_path(dir, 2)), 1);
    assert_eq!(
        format_version_of(&segment_path(dir, 3)),
        file_channel::format::FORMAT_VERSION
    );
    let report = verify(
        &ChannelDir::open(dir, &[]).unwrap(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    let each_way = |what: &str, prepare: &dyn Fn(&Path)| {
        let again = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), again.path().join(entry.file_name())).unwrap();
            }
        }
        prepare(again.path());
        let mut cfg = config(again.path());
        cfg.recovery_mode = RecoveryMode::SkipDamaged;
        let ch = FileChannel::open(cfg).unwrap();
        assert_eq!(ch.open_report().events_lost, 0, "{what}");
        let mut got = Vec::new();
        loop {
            let mut tx = ch.transaction();
            let Some(e) = tx.take().unwrap() else { break };
            got.push(e);
            tx.commit().unwrap();
        }
        ch.close().unwrap();
        assert_same_drain(what, &got, &want);
    };
    let zero_header = |dir: &Path, id: u64| {
        let path = segment_path(dir, id);
        let mut b = std::fs::read(&path).unwrap();
        b[..64].fill(0);
        std::fs::write(&path, b).unwrap();
    };
    let no_checkpoints = |dir: &Path| {
        for cp in checkpoints(dir) {
            std::fs::remove_file(cp).unwrap();
        }
    };
    each_way("from the checkpoint", &|_| {});
    each_way("by a full replay", &no_checkpoints);
    // A lost header of a format-1 segment: rebuilt from its unbound records.
    each_way("behind a lost format-1 header", &|d| {
        no_checkpoints(d);
        zero_header(d, 2);
    });
    // A lost header of the format-2 segment: rebuilt from its records bound to this channel.
    each_way("behind a lost format-2 header", &|d| {
        no_checkpoints(d);
        zero_header(d, 3);
    });
}

#[test]
fn a_format_2_channel_never_reads_unbound_records_behind_a_lost_header() {
    // The two fixtures hold the same events at the same places; only the binding differs. Put
    // the format-1 copy of segment 2, header lost, into the format-2 channel: its records are
    // not this channel's, so its events are lost (and counted), not read.
    let copy = copy_channel(&fixture(2));
    let dir = copy.path();
    let mut v1_segment = std::fs::read(segment_path(&fixture(1).join("channel"), 2)).unwrap();
    v1_segment[..64].fill(0);
    std::fs::write(segment_path(dir, 2), &v1_segment).unwrap();
    let mut cfg = config(dir);
    cfg.recovery_mode = RecoveryMode::SkipDamaged;
    let ch = FileChannel::open(cfg).unwrap();
    let lost = ch.open_report().events_lost;
    let pending = ch.len();
    ch.close().unwrap();
    // Segment 2 held seq 10..15, all pending.
    assert_eq!(lost, 5);
    assert_eq!(pending, expected(&fixture(2)).len() as u64 - 5);
}
