//! Encryption at rest, end to end on a real directory: no byte of a body reaches the disk in
//! any form; a missing, wrong or switched-off key is refused at open with the directory left
//! byte for byte as it was; keys rotate; a plain channel turns encryption on; tampering with a
//! record whose checksum is recomputed is told apart from damage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use file_channel::encryption::{DataKey, Keyring, OpenFailure};
use file_channel::format::record::{FLAG_ENCRYPTED, RECORD_HEADER_BYTES};
use file_channel::format::segment_header::SEGMENT_HEADER_BYTES;
use file_channel::{ChannelConfig, Event, FileChannel, KeyProblem, OpenError, TakeError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MARKER: &str = "Zq7-marker-body-4f1e9b2c-never-on-disk";

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
    c.segment_bytes_max = 64 << 10;
    c.keyring = keys;
    c
}

fn put(ch: &FileChannel, bodies: impl IntoIterator<Item = String>) {
    let mut tx = ch.transaction();
    for b in bodies {
        tx.put(&Event::new(b.clone()).with_header("h", b)).unwrap();
    }
    tx.commit().unwrap();
}

fn drain(ch: &FileChannel) -> Vec<String> {
    let mut out = vec![];
    loop {
        let mut tx = ch.transaction();
        let mut got = 0;
        while let Some(e) = tx.take().unwrap() {
            out.push(String::from_utf8(e.body.clone()).unwrap());
            got += 1;
            if got == 100 {
                break;
            }
        }
        tx.commit().unwrap();
        if got == 0 {
            return out;
        }
    }
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_byte_of_a_marker_body_reaches_the_disk_in_any_form() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keyring(&[("key-1", 7)], Some("key-1"));
    let ch = FileChannel::open(config(tmp.path(), Some(keys.clone()))).unwrap();
    for i in 0..200 {
        put(&ch, (0..5).map(|j| format!("{MARKER}-{i}-{j}")));
    }
    // Take some, so take records, checkpoints and rotation all happened.
    let mut tx = ch.transaction();
    for _ in 0..300 {
        tx.take().unwrap().unwrap();
    }
    tx.commit().unwrap();
    ch.close().unwrap();

    let files = snapshot(tmp.path());
    assert!(files.keys().any(|p| p.to_string_lossy().ends_with(".seg")));
    // The marker's distinctive middle in raw, hex, upper hex, reversed and UTF-16 forms; 12
    // bytes of it are enough to tell.
    let core = "4f1e9b2c-never-on-disk";
    let hexed: String = core.bytes().map(|b| format!("{b:02x}")).collect();
    let forms: Vec<Vec<u8>> = vec![
        core.as_bytes().to_vec(),
        hexed.clone().into_bytes(),
        hexed.to_uppercase().into_bytes(),
        core.bytes().rev().collect(),
        core.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "Zq7-marker".as_bytes().to_vec(),
    ];
    for (path, bytes) in &files {
        for f in &forms {
            assert!(
                !contains(bytes, f),
                "{} holds the marker as {:?}",
                path.display(),
                String::from_utf8_lossy(f)
            );
        }
    }

    // And the events are all there, in order, once the key is given again.
    let ch = FileChannel::open(config(tmp.path(), Some(keys))).unwrap();
    let got = drain(&ch);
    assert_eq!(got.len(), 700);
    assert_eq!(got[0], format!("{MARKER}-60-0"));
    assert_eq!(got[699], format!("{MARKER}-199-4"));
    ch.close().unwrap();
}

/// A channel with events pending under key-1 (7s).
fn pending_under_key_1(dir: &Path) {
    let ch = FileChannel::open(config(dir, Some(keyring(&[("key-1", 7)], Some("key-1"))))).unwrap();
    for i in 0..50 {
        put(&ch, (0..10).map(|j| format!("ev-{i}-{j}")));
    }
    ch.close().unwrap();
}

#[test]
fn a_missing_wrong_or_switched_off_key_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    pending_under_key_1(tmp.path());
    // A torn tail and a stale temp checkpoint, which a replay would cut and remove.
    let seg = snapshot(tmp.path())
        .into_keys()
        .filter(|p| p.to_string_lossy().ends_with(".seg"))
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let torn_at = end.div_ceil(8) * 8;
    bytes[torn_at..torn_at + 40].fill(0x5a);
    std::fs::write(&seg, &bytes).unwrap();
    std::fs::write(tmp.path().join("checkpoint.tmp"), b"half").unwrap();
    let before = snapshot(tmp.path());

    let cases: Vec<(Option<Arc<Keyring>>, &str)> = vec![
        (Some(keyring(&[("key-1", 8)], Some("key-1"))), "wrong"),
        (Some(keyring(&[("key-2", 7)], Some("key-2"))), "missing"),
        (None, "off"),
        (Some(keyring(&[("key-1", 7)], None)), "off"),
    ];
    for (keys, want) in cases {
        let err = FileChannel::open(config(tmp.path(), keys)).unwrap_err();
        let OpenError::Key {
            key_id,
            problem,
            segment,
            ..
        } = &err
        else {
            panic!("{want}: {err}");
        };
        assert_eq!(key_id, "key-1");
        assert!(*segment >= 1);
        match (want, &**problem) {
            ("wrong", KeyProblem::Wrong { .. })
            | ("missing", KeyProblem::Missing { .. })
            | ("off", KeyProblem::EncryptionOff) => {}
            _ => panic!("{want}: {err}"),
        }
        let text = err.to_string();
        assert!(text.contains("key-1") && text.contains("segment"), "{text}");
        assert_eq!(
            snapshot(tmp.path()),
            before,
            "{want}: the directory changed"
        );
    }
    // With the right key it opens and drains.
    let ch = FileChannel::open(config(
        tmp.path(),
        Some(keyring(&[("key-1", 7)], Some("key-1"))),
    ))
    .unwrap();
    assert_eq!(drain(&ch).len(), 500);
    ch.close().unwrap();
}

#[test]
fn keys_rotate_and_old_records_stay_readable_while_their_key_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    pending_under_key_1(tmp.path());
    let both = keyring(&[("key-1", 7), ("key-2", 9)], Some("key-2"));
    let ch = FileChannel::open(config(tmp.path(), Some(both.clone()))).unwrap();
    put(&ch, (0..10).map(|j| format!("new-{j}")));
    ch.close().unwrap();
    // key-1 is still needed: refused without it.
    let err = FileChannel::open(config(
        tmp.path(),
        Some(keyring(&[("key-2", 9)], Some("key-2"))),
    ))
    .unwrap_err();
    assert!(
        matches!(&err, OpenError::Key { key_id, problem, .. }
            if key_id == "key-1" && matches!(**problem, KeyProblem::Missing { .. })),
        "{err}"
    );
    let ch = FileChannel::open(config(tmp.path(), Some(both))).unwrap();
    let got = drain(&ch);
    assert_eq!(got.len(), 510);
    assert_eq!(got[0], "ev-0-0");
    assert_eq!(got[509], "new-9");
    ch.close().unwrap();
}

#[test]
fn a_plain_channel_turns_encryption_on_and_then_off_once_drained() {
    let tmp = tempfile::tempdir().unwrap();
    let ch = FileChannel::open(config(tmp.path(), None)).unwrap();
    put(&ch, (0..10).map(|j| format!("plain-{j}")));
    ch.close().unwrap();
    let keys = keyring(&[("key-1", 7)], Some("key-1"));
    let ch = FileChannel::open(config(tmp.path(), Some(keys.clone()))).unwrap();
    put(&ch, (0..10).map(|j| format!("sealed-{j}")));
    ch.close().unwrap();
    let files = snapshot(tmp.path());
    let all: Vec<u8> = files.values().flatten().copied().collect();
    assert!(contains(&all, b"plain-3"), "old records stay plain");
    assert!(!contains(&all, b"sealed-3"), "new records are encrypted");

    let ch = FileChannel::open(config(tmp.path(), Some(keys))).unwrap();
    let got = drain(&ch);
    assert_eq!(got.len(), 20);
    assert_eq!((got[0].as_str(), got[19].as_str()), ("plain-0", "sealed-9"));
    ch.close().unwrap();
    // Drained: encryption may be turned off.
    let ch = FileChannel::open(config(tmp.path(), None)).unwrap();
    put(&ch, ["after".to_string()]);
    assert_eq!(drain(&ch), vec!["after".to_string()]);
    ch.close().unwrap();
}

#[test]
fn a_tampered_record_with_a_recomputed_checksum_is_reported_as_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keyring(&[("key-1", 7)], Some("key-1"));
    let ch = FileChannel::open(config(tmp.path(), Some(keys.clone()))).unwrap();
    put(&ch, (0..3).map(|j| format!("body-{j}")));
    ch.close().unwrap();
    let seg = snapshot(tmp.path())
        .into_keys()
        .filter(|p| p.to_string_lossy().ends_with(".seg"))
        .max()
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    // The first record of the newest segment is the put; flip a ciphertext byte near its end
    // and recompute the CRC (binding: the channel id from the segment header).
    let r = SEGMENT_HEADER_BYTES;
    assert_eq!(b[r + 8], 1, "a put record");
    assert_eq!(b[r + 9], FLAG_ENCRYPTED);
    let len = u32::from_le_bytes(b[r..r + 4].try_into().unwrap()) as usize;
    b[r + len - 20] ^= 0x01;
    let channel_id = &b[24..32].to_vec();
    let mut h = crc32fast::Hasher::new();
    h.update(channel_id);
    h.update(&b[r + 8..r + len]);
    let crc = h.finalize();
    b[r + 4..r + 8].copy_from_slice(&crc.to_le_bytes());
    assert!(len > RECORD_HEADER_BYTES);
    std::fs::write(&seg, &b).unwrap();

    let ch = FileChannel::open(config(tmp.path(), Some(keys))).unwrap();
    let mut tx = ch.transaction();
    let err = tx.take().unwrap_err();
    let TakeError::Encrypted { failure, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        matches!(failure, OpenFailure::Tampered { key_id } if key_id == "key-1"),
        "{err}"
    );
    assert!(err.to_string().contains("tampered"), "{err}");
    tx.rollback();
    let m: BTreeMap<_, _> = ch.metrics_snapshot().into_iter().collect();
    assert_eq!(m["TamperedRecordCount"], 1);
    assert_eq!(m["EventsLost"], 0, "tampering is not counted as damage");
    ch.close().unwrap();
}

/// Records of a few KiB (which the decrypt-ahead thread opens for the reader) across many
/// segments, taken while a producer keeps committing: every body comes back once, in order.
#[test]
fn large_records_decrypted_ahead_come_back_in_order_while_puts_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keyring(&[("key-1", 7)], Some("key-1"));
    let ch = std::sync::Arc::new(FileChannel::open(config(tmp.path(), Some(keys))).unwrap());
    let body = |i: usize| format!("{i:08}-{}", "x".repeat(1000 + i % 700));
    let total = 3000;
    let producer = {
        let ch = ch.clone();
        std::thread::spawn(move || {
            for start in (0..total).step_by(4) {
                put(&ch, (start..start + 4).map(body));
            }
        })
    };
    let mut got = Vec::new();
    while got.len() < total {
        let mut tx = ch.transaction();
        for _ in 0..50 {
            match tx
                .take_timeout(std::time::Duration::from_millis(20))
                .unwrap()
            {
                Some(e) => got.push(String::from_utf8(e.body).unwrap()),
                None => break,
            }
        }
        tx.commit().unwrap();
    }
    producer.join().unwrap();
    for (i, b) in got.iter().enumerate() {
        assert_eq!(b, &body(i), "event {i}");
    }
    let m: BTreeMap<_, _> = ch.metrics_snapshot().into_iter().collect();
    assert!(m["SegmentsCreated"] > 10, "{m:?}");
    assert_eq!(m["DecryptErrorCount"], 0);
    std::sync::Arc::try_unwrap(ch)
        .ok()
        .unwrap()
        .close()
        .unwrap();
}
