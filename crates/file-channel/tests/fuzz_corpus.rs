//! Replays every input under `fuzz/corpus/<target>/` through the fuzz target bodies, so the
//! checked-in corpus and every past crash input run on stable in the normal test suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "corpus {} is empty", dir.display());
    out
}

#[test]
fn record_decoder_corpus() {
    for (path, data) in inputs("record_decoder") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::record_decoder(&data);
    }
}

#[test]
fn segment_scan_corpus() {
    for (path, data) in inputs("segment_scan") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::segment_scan(&data);
    }
}

#[test]
fn seed_records_really_decode() {
    // The seeds must exercise the decoding paths, not only the error paths.
    let (_, put) = &inputs("record_decoder")
        .into_iter()
        .find(|(p, _)| p.ends_with("put-two-events"))
        .unwrap();
    // Written before format 2: unbound.
    let decoded = file_channel::format::record::decode(
        put,
        file_channel::format::record::RecordBinding::Unbound,
        1,
        64,
    )
    .unwrap();
    assert!(
        matches!(decoded, file_channel::format::record::Decoded::Record(h, _) if h.event_count == 2),
        "seed put record does not decode as two events"
    );
}

#[test]
fn checkpoint_decoder_corpus() {
    for (path, data) in inputs("checkpoint_decoder") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::checkpoint_decoder(&data);
    }
}

#[test]
fn open_dir_corpus() {
    for (path, data) in inputs("open_dir") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::open_dir(&data);
    }
}

#[test]
fn channel_ops_corpus() {
    for (path, data) in inputs("channel_ops") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::channel_ops(&data);
    }
}

#[test]
fn seed_checkpoint_really_decodes() {
    let (_, cp) = &inputs("checkpoint_decoder")
        .into_iter()
        .find(|(p, _)| p.ends_with("two-ranges"))
        .unwrap();
    let decoded = file_channel::format::checkpoint::Checkpoint::decode(cp).unwrap();
    assert_eq!(decoded.ranges, vec![(4, 5), (7, 9)]);
}

// Encrypted seeds (format 3). They were written by `write_encrypted_seeds` below (the salts
// are fresh, so writing them again gives other bytes with the same meaning); the tests here
// check that each one reaches what it is for.

mod encrypted_seeds {
    use super::inputs;
    use file_channel::encryption::envelope::Sealer;
    use file_channel::encryption::{DataKey, Opener};
    use file_channel::format::event;
    use file_channel::format::record::{
        self, Decoded, PendingRecord, RecordBinding, RecordKind, RecordPlace, TakePayload,
    };
    use file_channel::{ChannelConfig, Event, FileChannel};
    use file_channel_testkit::fuzzing::{open_dir_outcome, FUZZ_CHANNEL_ID};
    use file_channel_testkit::harness::encrypt::{test_keyring, Encryption, TEST_KEY_ID};
    use file_channel_testkit::harness::sim::ops_from_bytes;
    use file_channel_testkit::SimStorage;
    use std::path::PathBuf;
    use std::sync::Arc;

    const BINDING: RecordBinding = RecordBinding::Channel(FUZZ_CHANNEL_ID);

    fn corpus(target: &str, name: &str) -> Vec<u8> {
        inputs(target)
            .into_iter()
            .find(|(p, _)| p.ends_with(name))
            .unwrap_or_else(|| panic!("no seed {target}/{name}"))
            .1
    }

    fn events(bodies: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in bodies {
            event::encode_into(&Event::new(*b).with_header("host", "web-1"), &mut out);
        }
        out
    }

    /// A put record of `bodies` at `offset` of segment 1 of channel 7, sealed with key `id`.
    fn sealed_put(
        id: &str,
        key: &DataKey,
        offset: u64,
        first_seq: u64,
        bodies: &[&str],
    ) -> Vec<u8> {
        let mut p = PendingRecord::new(RecordKind::Put, 1);
        p.bytes.extend_from_slice(&events(bodies));
        p.event_count = bodies.len() as u32;
        p.seal_payload();
        let sealer = Sealer::new(id, key, FUZZ_CHANNEL_ID, 1).unwrap();
        let place = RecordPlace {
            segment_id: 1,
            offset,
            durable_mark: offset,
            binding: BINDING,
        };
        let mut out = Vec::new();
        p.frame_sealed_into(place, first_seq, &sealer, &mut out)
            .unwrap();
        out
    }

    fn take(offset: u64, first: u64, n: u64) -> Vec<u8> {
        let mut p = PendingRecord::new(RecordKind::Take, 2);
        TakePayload {
            bytes: 40 * n,
            ranges: vec![(first, first + n)],
        }
        .encode_into(&mut p.bytes);
        p.event_count = n as u32;
        p.seal_payload();
        let place = RecordPlace {
            segment_id: 1,
            offset,
            durable_mark: offset,
            binding: BINDING,
        };
        let mut out = Vec::new();
        p.frame_into(place, 0, &mut out);
        out
    }

    /// The files of a small channel written by the engine with encryption on (4 KiB segments,
    /// 40 events in 8 put commits, 12 taken), as `open_dir` input files of kind 0 (raw bytes).
    fn encrypted_channel_files() -> Vec<u8> {
        let sim = SimStorage::new();
        let mut cfg = Encryption::On.apply(ChannelConfig::new("/fuzzdir"));
        cfg.segment_bytes_max = 4096;
        cfg.minimum_required_space = 0;
        cfg.prefill_ahead_bytes = 0;
        let ch = FileChannel::open_with(cfg, Arc::new(sim.clone())).unwrap();
        for i in 0..8 {
            let mut tx = ch.transaction();
            for j in 0..5 {
                tx.put(&Event::new(format!("event {i}-{j}")).with_header("n", "1"))
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        let mut tx = ch.transaction();
        for _ in 0..12 {
            tx.take().unwrap().unwrap();
        }
        tx.commit().unwrap();
        ch.close().unwrap();
        let names = [
            "channel.meta",
            "checkpoint-00000000000000000001.ckpt",
            "checkpoint-00000000000000000002.ckpt",
            "log-00000000000000000000.seg",
            "log-00000000000000000001.seg",
            "log-00000000000000000002.seg",
            "log-00000000000000000003.seg",
        ];
        let mut out = Vec::new();
        let mut files: Vec<PathBuf> = sim.list_all();
        files.sort();
        for path in files {
            let name = path.strip_prefix("/fuzzdir").unwrap().to_string_lossy();
            if name == "in_use.lock" {
                continue;
            }
            let Some(selector) = names.iter().position(|n| *n == name) else {
                panic!("the engine wrote {name}, which open_dir cannot name");
            };
            // The selector indexes open_dir's own list of names.
            let selector = [0u8, 3, 4, 5, 6, 7, 8][selector];
            let bytes = sim.read_file(&path).unwrap();
            out.push(selector);
            out.push(0);
            out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Writes the encrypted seeds into `fuzz/corpus/`.
    #[test]
    #[ignore = "writes the encrypted seed corpus; run by hand"]
    fn write_encrypted_seeds() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let write = |target: &str, name: &str, bytes: &[u8]| {
            std::fs::write(root.join(target).join(name), bytes).unwrap();
        };
        let test = test_keyring();
        let (id, key) = test.active().unwrap();
        let put = sealed_put(id, key, 64, 0, &["hello", "world"]);
        write("record_decoder", "encrypted-put-two-events", &put);
        let other = DataKey::new([9; 32]);
        write(
            "record_decoder",
            "encrypted-put-under-another-key-id",
            &sealed_put("another-key", &other, 64, 0, &["hello"]),
        );
        let env = &put[record::RECORD_HEADER_BYTES..];
        write("record_decoder", "envelope-alone", env);

        let mut seg = put.clone();
        let second = seg.len() as u64 + 64;
        seg.extend(take(second, 0, 1));
        let third = seg.len() as u64 + 64;
        seg.extend(sealed_put(id, key, third, 2, &["again", "and again", "!"]));
        write("segment_scan", "encrypted-put-take-put", &seg);

        let files = encrypted_channel_files();
        for (flags, name) in [
            (0b010u8, "encrypted-channel-with-its-key"),
            (0b100, "encrypted-channel-wrong-key"),
            (0b000, "encrypted-channel-no-keys"),
            (0b110, "encrypted-channel-key-not-active"),
            (0b011, "encrypted-channel-with-its-key-strict"),
        ] {
            let mut input = vec![flags];
            input.extend_from_slice(&files);
            write("open_dir", name, &input);
        }

        for (plain, name) in [
            ("put-take-crash-drop", "encrypted-put-take-crash-drop"),
            ("torn-512", "encrypted-torn-512"),
            ("disk-full-flip", "encrypted-disk-full-flip"),
            ("fsync-fails", "encrypted-fsync-fails"),
            (
                "same-bit-flipped-twice-restores-a-lost-record",
                "encrypted-same-bit-flipped-twice",
            ),
        ] {
            let mut input = corpus("channel_ops", plain);
            input[0] |= 0x08;
            write("channel_ops", name, &input);
        }
    }

    fn open_test(rec: &[u8], offset: u64) -> Vec<Event> {
        let Ok(Decoded::Record(h, payload)) = record::decode(rec, BINDING, 1, offset) else {
            panic!("does not decode at {offset}");
        };
        assert!(h.is_encrypted());
        let mut opener = Opener::new(Some(test_keyring()), FUZZ_CHANNEL_ID);
        let plain = opener.open(&h.aad_bytes(), 1, offset, payload).unwrap();
        let mut at = 0;
        (0..h.event_count)
            .map(|_| {
                let (e, used) = event::decode(&plain[at..]).unwrap();
                at += used;
                e
            })
            .collect()
    }

    #[test]
    fn encrypted_seed_records_really_open() {
        let got = open_test(&corpus("record_decoder", "encrypted-put-two-events"), 64);
        let bodies: Vec<&[u8]> = got.iter().map(|e| e.body.as_slice()).collect();
        assert_eq!(bodies, [b"hello".as_slice(), b"world"]);
        let other = corpus("record_decoder", "encrypted-put-under-another-key-id");
        let Ok(Decoded::Record(_, payload)) = record::decode(&other, BINDING, 1, 64) else {
            panic!("does not decode");
        };
        let env = file_channel::encryption::envelope::parse(payload).unwrap();
        assert_eq!(env.key_id, "another-key");
        let alone = corpus("record_decoder", "envelope-alone");
        assert_eq!(
            file_channel::encryption::envelope::parse(&alone)
                .unwrap()
                .key_id,
            TEST_KEY_ID
        );
    }

    #[test]
    fn encrypted_seed_segment_holds_sealed_puts_around_a_take() {
        let seg = corpus("segment_scan", "encrypted-put-take-put");
        let first = open_test(&seg, 64);
        assert_eq!(first.len(), 2);
        let len = |at: usize| u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        let second = len(0).div_ceil(8) * 8;
        let third = second + len(second).div_ceil(8) * 8;
        assert_eq!(seg[second + 8], RecordKind::Take as u8);
        assert_eq!(open_test(&seg[third..], 64 + third as u64).len(), 3);
    }

    #[test]
    fn encrypted_open_dir_seeds_open_only_with_their_key() {
        for name in [
            "encrypted-channel-with-its-key",
            "encrypted-channel-with-its-key-strict",
        ] {
            let got = open_dir_outcome(&corpus("open_dir", name)).unwrap();
            assert_eq!(got.taken, 28, "{name}: {got:?}");
            assert_eq!(got.take_error, None, "{name}");
        }
        for (name, says) in [
            ("encrypted-channel-wrong-key", "another key"),
            ("encrypted-channel-no-keys", "encryption is off"),
            ("encrypted-channel-key-not-active", "encryption is off"),
        ] {
            let err = open_dir_outcome(&corpus("open_dir", name)).unwrap_err();
            assert!(
                err.contains(TEST_KEY_ID) && err.contains(says),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn encrypted_channel_ops_seeds_run_encrypted_and_the_old_ones_plain() {
        for (path, data) in inputs("channel_ops") {
            let encrypted = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("encrypted-"));
            let want = if encrypted {
                Encryption::On
            } else {
                Encryption::Off
            };
            assert_eq!(
                ops_from_bytes(&data).1.encryption,
                want,
                "{}",
                path.display()
            );
        }
    }
}
