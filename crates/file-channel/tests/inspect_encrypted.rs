//! The inspection library on an encrypted channel (issue 16 §3 and §5): `verify` checks
//! structure and checksums without keys and authenticates every record with them, telling
//! tampering apart from damage and naming a missing or wrong key with its segment; `dump` and
//! the pending listing show bodies only with keys (without, the key id, never ciphertext read
//! as events); `stat` lists exactly the keys pending records need; `repair` needs no key and
//! keeps every encrypted record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use file_channel::encryption::{DataKey, Keyring, OpenFailure};
use file_channel::format::record::{FLAG_ENCRYPTED, RECORD_HEADER_BYTES};
use file_channel::format::segment_header::SEGMENT_HEADER_BYTES;
use file_channel::inspect::dump::{dump, DumpItem, DumpOptions, Payload};
use file_channel::inspect::pending::{pending_events, PendingOptions};
use file_channel::inspect::repair::{apply, RepairOptions};
use file_channel::inspect::verify::{verify, EncryptionFindingKind, VerifyOptions};
use file_channel::inspect::{replay_view, stat, ChannelDir};
use file_channel::{ChannelConfig, Event, FileChannel, RecoveryMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn keyring(keys: &[(&str, u8)], active: Option<&str>) -> Arc<Keyring> {
    let mut k = Keyring::new();
    for (id, byte) in keys {
        k.insert(id, DataKey::new([*byte; 32])).unwrap();
    }
    if let Some(a) = active {
        k.set_active(a).unwrap();
    }
    Arc::new(k)
}

fn config(dir: &Path, keys: Option<Arc<Keyring>>) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.minimum_required_space = 0;
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4 << 10;
    c.keyring = keys;
    c
}

fn put(ch: &FileChannel, prefix: &str, txns: usize, per_txn: usize) {
    for t in 0..txns {
        let mut tx = ch.transaction();
        for e in 0..per_txn {
            tx.put(&Event::new(format!("{prefix}-{t}-{e}")).with_header("n", format!("{e}")))
                .unwrap();
        }
        tx.commit().unwrap();
    }
}

fn take(ch: &FileChannel, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let mut tx = ch.transaction();
        let mut got = 0;
        while got < 50 && out.len() < n {
            match tx.take().unwrap() {
                Some(e) => out.push(String::from_utf8(e.body).unwrap()),
                None => break,
            }
            got += 1;
        }
        tx.commit().unwrap();
        if got == 0 {
            break;
        }
    }
    out
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// A channel holding 40 transactions of 10 events under key-1 (7s), over several segments.
fn sealed_channel(dir: &Path) {
    let ch = FileChannel::open(config(dir, Some(keyring(&[("key-1", 7)], Some("key-1"))))).unwrap();
    put(&ch, "ev", 40, 10);
    ch.close().unwrap();
    assert!(segments(dir).len() >= 3, "the test needs several segments");
}

/// The offset of the first put record of `seg` and its length.
fn first_put(seg: &Path) -> (usize, usize) {
    let b = std::fs::read(seg).unwrap();
    let mut at = SEGMENT_HEADER_BYTES;
    loop {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            len >= RECORD_HEADER_BYTES,
            "no put record in {}",
            seg.display()
        );
        if b[at + 8] == 1 {
            assert_eq!(b[at + 9], FLAG_ENCRYPTED);
            return (at, len);
        }
        at += len.div_ceil(8) * 8;
    }
}

/// Flips a ciphertext byte of the record at `at` and recomputes its checksum.
fn tamper(seg: &Path, at: usize, len: usize) {
    let mut b = std::fs::read(seg).unwrap();
    b[at + len - 20] ^= 0x40;
    let mut h = crc32fast::Hasher::new();
    h.update(&b[24..32]);
    h.update(&b[at + 8..at + len]);
    b[at + 4..at + 8].copy_from_slice(&h.finalize().to_le_bytes());
    std::fs::write(seg, &b).unwrap();
}

fn opts(keys: Option<Arc<Keyring>>) -> VerifyOptions {
    VerifyOptions {
        keyring: keys,
        ..VerifyOptions::default()
    }
}

#[test]
fn verify_checks_without_keys_and_authenticates_every_record_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    sealed_channel(tmp.path());
    let d = ChannelDir::open(tmp.path(), &[]).unwrap();

    let bare = verify(&d, &opts(None)).unwrap();
    assert!(bare.is_clean(), "{:?}", bare.encryption);
    assert_eq!(bare.encryption.records, 40);
    assert_eq!(bare.encryption.authenticated, 0);
    assert!(!bare.encryption.keys_given);
    assert_eq!(bare.encryption.keys.len(), 1);
    assert_eq!(bare.encryption.keys[0].key_id, "key-1");
    assert_eq!(bare.encryption.keys[0].events, 400);

    let keyed = verify(&d, &opts(Some(keyring(&[("key-1", 7)], None)))).unwrap();
    assert!(keyed.is_clean(), "{:?}", keyed.encryption.findings);
    assert_eq!(keyed.encryption.authenticated, 40);

    // A wrong key and a missing one: named with the segment, once per segment, and a
    // problem (the events are pending, the open needs the key).
    for (keys, kind) in [
        (
            keyring(&[("key-1", 8)], None),
            EncryptionFindingKind::WrongKey,
        ),
        (
            keyring(&[("key-2", 7)], None),
            EncryptionFindingKind::MissingKey,
        ),
    ] {
        let r = verify(&d, &opts(Some(keys))).unwrap();
        assert!(!r.is_clean() && !r.is_corrupt(), "not damage: {kind:?}");
        assert_eq!(r.encryption.authenticated, 0);
        let segs: Vec<u64> = r.encryption.findings.iter().map(|f| f.segment).collect();
        let mut unique = segs.clone();
        unique.dedup();
        assert_eq!(segs, unique, "one finding per segment");
        assert!(segs.len() >= 3);
        assert!(r.encryption.findings.iter().all(|f| f.kind == kind
            && f.key_id.as_deref() == Some("key-1")
            && f.needed_at_open
            && f.is_problem()));
        assert_eq!(
            r.encryption.findings.iter().map(|f| f.records).sum::<u64>(),
            40
        );
    }
}

#[test]
fn a_tampered_record_is_reported_as_tampering_apart_from_damage() {
    let tmp = tempfile::tempdir().unwrap();
    sealed_channel(tmp.path());
    let seg = segments(tmp.path())[1].clone();
    let (at, len) = first_put(&seg);
    tamper(&seg, at, len);
    let d = ChannelDir::open(tmp.path(), &[]).unwrap();

    // Without keys the record is a valid record: nothing to report.
    let bare = verify(&d, &opts(None)).unwrap();
    assert!(bare.is_clean());

    let r = verify(&d, &opts(Some(keyring(&[("key-1", 7)], None)))).unwrap();
    assert!(r.problems.is_empty(), "not damage: {:?}", r.problems);
    assert!(!r.is_corrupt() && !r.is_clean());
    assert_eq!(r.encryption.authenticated, 39);
    let [f] = &r.encryption.findings[..] else {
        panic!("{:?}", r.encryption.findings);
    };
    assert_eq!(f.kind, EncryptionFindingKind::Tampered);
    assert_eq!((f.file.clone(), f.offset), (seg.clone(), at as u64));
    assert_eq!(f.key_id.as_deref(), Some("key-1"));

    // Repair does not touch it: it is not damage, and it needs no key.
    let before = std::fs::read(&seg).unwrap();
    let out = apply(&d, &RepairOptions::default(), &VerifyOptions::default()).unwrap();
    assert!(out.applied.is_empty(), "{:?}", out.applied);
    assert_eq!(std::fs::read(&seg).unwrap(), before);
}

#[test]
fn dump_and_the_pending_listing_show_bodies_only_with_keys() {
    let tmp = tempfile::tempdir().unwrap();
    sealed_channel(tmp.path());
    // Consume the first 25 events: the listing starts at the 26th.
    let keys = keyring(&[("key-1", 7)], Some("key-1"));
    let ch = FileChannel::open(config(tmp.path(), Some(keys.clone()))).unwrap();
    assert_eq!(take(&ch, 25).len(), 25);
    ch.close().unwrap();
    let d = ChannelDir::open(tmp.path(), &[]).unwrap();

    let bodies = |keys: Option<Arc<Keyring>>| {
        let mut events = Vec::new();
        let mut sealed = Vec::new();
        let o = DumpOptions {
            data: true,
            keyring: keys,
            ..DumpOptions::default()
        };
        dump(&d, &o, &mut |item| {
            if let DumpItem::Record {
                payload: Some(p),
                seal,
                ..
            } = item
            {
                match p {
                    Payload::Put { events: e, error } => {
                        assert!(error.is_none());
                        assert_eq!(seal.unwrap().opened, Some(Ok(())));
                        events.extend(e.iter().map(|e| e.body.clone()));
                    }
                    Payload::Sealed(f) => {
                        assert_eq!(seal.unwrap().sealed_with.as_ref().unwrap().key_id, "key-1");
                        sealed.push(f.clone());
                    }
                    _ => {}
                }
            }
            Ok(())
        })
        .unwrap();
        (events, sealed)
    };
    let (events, sealed) = bodies(None);
    assert!(events.is_empty(), "no ciphertext read as events");
    assert_eq!(sealed.len(), 40);
    assert!(sealed.iter().all(|f| *f
        == OpenFailure::NoKeys {
            key_id: "key-1".into()
        }));
    let (events, sealed) = bodies(Some(keyring(&[("key-1", 7)], None)));
    assert!(sealed.is_empty());
    assert_eq!(events.len(), 400);
    assert_eq!(events[13], b"ev-1-3");

    // The pending events, in the order a reader takes them.
    let view = replay_view(&d, RecoveryMode::SkipDamaged, None).unwrap();
    assert_eq!(view.pending_events, 375);
    let listing = |keys: Option<Arc<Keyring>>, limit| {
        let mut shown = Vec::new();
        let o = PendingOptions {
            keyring: keys,
            limit,
        };
        let s = pending_events(&d, view.pending_log(), &o, &mut |r| {
            for &(s, e) in r.pending {
                for seq in s..e {
                    let i = (seq - r.header.first_seq) as usize;
                    shown.push(match r.payload {
                        Payload::Put { events, .. } => {
                            String::from_utf8(events[i].body.clone()).unwrap()
                        }
                        Payload::Sealed(f) => format!("sealed:{}", f.key_id().unwrap()),
                        other => panic!("{other:?}"),
                    });
                }
            }
            Ok(())
        })
        .unwrap();
        (shown, s)
    };
    let (shown, s) = listing(Some(keys.clone()), None);
    assert_eq!(shown.len(), 375);
    assert_eq!(shown[0], "ev-2-5");
    assert_eq!(shown[374], "ev-39-9");
    assert!(!s.limited);
    let (shown, s) = listing(None, Some(7));
    assert_eq!(shown, vec!["sealed:key-1".to_string(); 7]);
    assert!(s.limited && s.events == 7);

    // And the engine agrees: the next event taken is the first listed.
    let ch = FileChannel::open(config(tmp.path(), Some(keys))).unwrap();
    assert_eq!(take(&ch, 1), vec!["ev-2-5".to_string()]);
    ch.close().unwrap();
}

#[test]
fn stat_lists_exactly_the_keys_pending_records_need() {
    let tmp = tempfile::tempdir().unwrap();
    sealed_channel(tmp.path());
    let both = keyring(&[("key-1", 7), ("key-2", 9)], Some("key-2"));
    let ch = FileChannel::open(config(tmp.path(), Some(both.clone()))).unwrap();
    put(&ch, "new", 3, 10);
    ch.close().unwrap();

    let keys_of = |dir: &Path| {
        let r = stat(&ChannelDir::open(dir, &[]).unwrap()).unwrap();
        r.keys
            .keys
            .iter()
            .map(|k| (k.key_id.clone(), (k.pending_events, k.pending_records)))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        keys_of(tmp.path()),
        BTreeMap::from([
            ("key-1".to_string(), (400, 40)),
            ("key-2".to_string(), (30, 3))
        ])
    );

    // Part of key-1's events taken: still needed.
    let ch = FileChannel::open(config(tmp.path(), Some(both.clone()))).unwrap();
    assert_eq!(take(&ch, 395).len(), 395);
    ch.close().unwrap();
    assert_eq!(keys_of(tmp.path())["key-1"], (5, 1));
    // The open agrees: without key-1 it refuses.
    let only_2 = keyring(&[("key-2", 9)], Some("key-2"));
    assert!(FileChannel::open(config(tmp.path(), Some(only_2.clone()))).is_err());

    // All of them taken: key-1 is no longer listed, and the open no longer asks for it.
    let ch = FileChannel::open(config(tmp.path(), Some(both))).unwrap();
    assert_eq!(take(&ch, 5).len(), 5);
    ch.close().unwrap();
    let now = keys_of(tmp.path());
    assert_eq!(
        now,
        BTreeMap::from([("key-2".to_string(), (30, 3))]),
        "key-1 can go"
    );
    let ch = FileChannel::open(config(tmp.path(), Some(only_2))).unwrap();
    assert_eq!(take(&ch, 100).len(), 30);
    ch.close().unwrap();
}

#[test]
fn repair_needs_no_key_and_keeps_every_encrypted_record_intact_and_readable() {
    let tmp = tempfile::tempdir().unwrap();
    sealed_channel(tmp.path());
    // Media damage in one record (its checksum fails) of the second segment.
    let seg = segments(tmp.path())[1].clone();
    let (at, len) = first_put(&seg);
    let mut b = std::fs::read(&seg).unwrap();
    b[at + len - 30] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let d = ChannelDir::open(tmp.path(), &[]).unwrap();
    let before = verify(&d, &opts(None)).unwrap();
    assert_eq!(before.problems.len(), 1);
    assert_eq!(before.events_lost(), 10);

    let out = apply(&d, &RepairOptions::default(), &VerifyOptions::default()).unwrap();
    assert!(out.is_clean(), "{:?}", out.reopen_error);
    assert!(out.reopened.is_some(), "the reopen ran without a key");

    // Every other record is intact: it authenticates, and the channel gives back all 390.
    let d = d.reload().unwrap();
    let after = verify(&d, &opts(Some(keyring(&[("key-1", 7)], None)))).unwrap();
    assert!(after.is_clean(), "{:?}", after.encryption.findings);
    assert_eq!(after.encryption.records, 39);
    assert_eq!(after.encryption.authenticated, 39);
    let ch = FileChannel::open(config(
        tmp.path(),
        Some(keyring(&[("key-1", 7)], Some("key-1"))),
    ))
    .unwrap();
    let got = take(&ch, 1000);
    assert_eq!(got.len(), 390);
    assert!(got.iter().all(|b| b.starts_with("ev-")));
    ch.close().unwrap();
}
