//! Fuzz target bodies. They live in the library so that the `fuzz/` workspace (cargo-fuzz,
//! libFuzzer) and the stable test suite (which replays the checked-in corpus and every past
//! crash input) run exactly the same code. Each body must never panic on any input; the
//! assertions inside are the properties the fuzzer checks.
//!
//! Encryption at rest (format 3) is in every target: the decoders meet records with the
//! encrypted flag and arbitrary envelopes (their checks are in the `sealed` module), `open_dir`
//! opens directories with the harness's test key, a wrong key, a key listed but not active, or
//! none, and `channel_ops` runs its cases with every put record sealed when its first byte says
//! so. Seed inputs with real encrypted records are in `fuzz/corpus/`.

mod sealed;

use crate::SimStorage;
use file_channel::format::event;
use file_channel::format::record::{
    self, Decoded, PendingRecord, RecordBinding, RecordPlace, RECORD_HEADER_BYTES,
};
use file_channel::format::segment_header::{segment_file_name, SegmentHeader};
use file_channel::replay::{replay, ReplayOptions};
use file_channel::segment::scan::{ScanItem, Scanner};
use file_channel::storage::Storage;
use std::path::Path;
use std::sync::Arc;

/// The channel the decoder targets bind records to.
pub const FUZZ_CHANNEL_ID: u64 = 7;

/// Decodes `data` as a record at offset 64 of segment 1, as format 1 (unbound) and as formats
/// 2 and 3 (bound to channel 7); a plain record that decodes must re-encode to the same bytes,
/// and its events (for a put) must decode without panicking; an encrypted put record must
/// behave as [`sealed`] checks. `data` is also read as a segment header and as an encryption
/// envelope.
pub fn record_decoder(data: &[u8]) {
    for binding in [
        RecordBinding::Unbound,
        RecordBinding::Channel(FUZZ_CHANNEL_ID),
    ] {
        decode_and_reencode(data, binding);
    }
    let _ = SegmentHeader::decode(data);
    sealed::envelope_invariants(data);
}

fn decode_and_reencode(data: &[u8], binding: RecordBinding) {
    let Ok(Decoded::Record(h, payload)) = record::decode(data, binding, 1, 64) else {
        return;
    };
    if h.is_encrypted() {
        assert_eq!(
            binding,
            RecordBinding::Channel(FUZZ_CHANNEL_ID),
            "an unbound record was accepted with the encrypted flag"
        );
        if let Some(plain) = sealed::check_encrypted_record(
            &h,
            &data[..RECORD_HEADER_BYTES],
            payload,
            FUZZ_CHANNEL_ID,
        ) {
            decode_events(&plain, h.event_count);
        }
        return;
    }
    let mut p = PendingRecord::new(h.kind, h.txn_id);
    p.bytes.extend_from_slice(payload);
    p.event_count = h.event_count;
    p.seal_payload();
    let mut out = Vec::new();
    let place = RecordPlace {
        segment_id: h.segment_id,
        offset: h.offset,
        durable_mark: h.durable_mark,
        binding,
    };
    p.frame_into(place, h.first_seq, &mut out);
    // The decoder refuses non-zero flags and reserved bytes (9..12) but the encrypted flag of
    // a bound put record (it once accepted them: found by this target,
    // `fuzz/corpus/record_decoder/nonzero-reserved-bytes-accepted`), so a plain record
    // re-encodes to exactly its bytes.
    assert_eq!(
        &out[..h.len as usize],
        &data[..h.len as usize],
        "re-encoding differs"
    );
    if h.kind == record::RecordKind::Put {
        decode_events(payload, h.event_count);
    }
}

/// Decodes up to `count` events from a put payload; what decodes must say its own length.
fn decode_events(payload: &[u8], count: u32) {
    let mut at = 0;
    for _ in 0..count {
        match event::decode(&payload[at..]) {
            Ok((e, used)) => {
                assert_eq!(e.encoded_len(), used as u64, "event length disagrees");
                at += used;
            }
            Err(_) => break,
        }
    }
}

/// Writes `data` as a segment file (after a valid header, of format 1, 2 and then 3) and
/// scans and replays it read-only: nothing may panic, every record the scanner accepts must lie
/// inside the file, and every encrypted put record it accepts must behave as [`sealed`]
/// checks.
pub fn segment_scan(data: &[u8]) {
    for format_version in [1, 2, 3] {
        scan_segment_of_format(data, format_version);
    }
}

fn scan_segment_of_format(data: &[u8], format_version: u32) {
    let sim = SimStorage::new();
    let dir = Path::new("/fuzz");
    let header = SegmentHeader {
        format_version,
        ..SegmentHeader::new(1, FUZZ_CHANNEL_ID, 0, 0)
    };
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(data);
    let path = dir.join(segment_file_name(1));
    if sim.write_file(&path, &bytes).is_err() {
        return;
    }
    if let Ok(file) = sim.open(&path, false) {
        let mut scanner = Scanner::from_start(file, 1, header.binding());
        for _ in 0..10_000 {
            match scanner.next_item() {
                Ok(ScanItem::Record { header, payload }) => {
                    let end = header.offset + u64::from(header.len);
                    assert!(end <= bytes.len() as u64);
                    if header.is_encrypted() {
                        let at = header.offset as usize;
                        let stored = &bytes[at..at + RECORD_HEADER_BYTES];
                        sealed::check_encrypted_record(&header, stored, payload, FUZZ_CHANNEL_ID);
                    }
                }
                _ => break,
            }
        }
    }
    let storage: Arc<dyn Storage> = Arc::new(sim);
    let mut opts = ReplayOptions::read_only();
    opts.channel_id = Some(FUZZ_CHANNEL_ID);
    let _ = replay(storage.as_ref(), dir, &[dir.to_path_buf()], opts);
}

/// Decodes `data` as a checkpoint file; a checkpoint that decodes must re-encode to bytes that
/// decode to the same checkpoint, and satisfy the checks the decoder promises (ranges ascending,
/// disjoint, above the low-water mark and below the next sequence number).
pub fn checkpoint_decoder(data: &[u8]) {
    use file_channel::format::checkpoint::Checkpoint;
    if let Ok(cp) = Checkpoint::decode(data) {
        let again = Checkpoint::decode(&cp.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&cp),
            "re-encoding changes the checkpoint"
        );
        let mut prev = cp.low_water_mark;
        for &(s, e) in &cp.ranges {
            assert!(
                s > prev && e > s && e <= cp.next_seq,
                "decoder let bad ranges through"
            );
            prev = e;
        }
    }
}

/// File names [`open_dir`] can create: every name the engine looks at, and one it ignores.
const OPEN_DIR_NAMES: [&str; 12] = [
    "channel.meta",
    "channel.meta.tmp",
    "checkpoint.tmp",
    "checkpoint-00000000000000000001.ckpt",
    "checkpoint-00000000000000000002.ckpt",
    "log-00000000000000000000.seg",
    "log-00000000000000000001.seg",
    "log-00000000000000000002.seg",
    "log-00000000000000000003.seg",
    "log-00000000000000000007.seg",
    "quarantine/segment-1-offset-64.bin",
    "unrelated.txt",
];

/// What [`open_dir_outcome`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenDirOutcome {
    /// Events the take after the open delivered.
    pub taken: usize,
    /// Why the take stopped, if not at the end of the queue.
    pub take_error: Option<String>,
}

/// Builds a channel directory from `data` and opens it with the engine: opening may fail, but
/// nothing may panic, and a channel that opens must serve a take, a put and a clean close.
///
/// Input: a flags byte, then files, each `name selector (1 byte)`, `kind (1 byte)`,
/// `length (2 bytes LE)`, `bytes`. Flags: bit 0 strict mode (else skip-damaged); bits 1–2 the
/// keys: 0 none, 1 the harness's test key, active
/// ([`test_keyring`](crate::harness::encrypt::test_keyring)), 2 another key under the test key's
/// id, active, 3 the test key listed but not active (encryption off). Kind 1 prefixes the bytes
/// with a valid segment header for the file's id and channel 7 (format 1, or 2 with kind bit 3,
/// or 3 with kind bit 4), kind 2 prefixes a valid `channel.meta` for channel 7, so the fuzzer
/// reaches past the headers.
pub fn open_dir(data: &[u8]) {
    let _ = open_dir_outcome(data);
}

/// [`open_dir`], saying how the open and the take went (`Err`: the open's refusal).
pub fn open_dir_outcome(data: &[u8]) -> Result<OpenDirOutcome, String> {
    use file_channel::{ChannelConfig, FileChannel, RecoveryMode};
    let sim = SimStorage::new();
    let dir = Path::new("/fuzzdir");
    let flags = data.first().copied().unwrap_or(0);
    let mut at = 1;
    let mut files = 0;
    while at + 4 <= data.len() && files < 16 {
        let name = OPEN_DIR_NAMES[usize::from(data[at]) % OPEN_DIR_NAMES.len()];
        let kind = data[at + 1];
        let len = usize::from(u16::from_le_bytes([data[at + 2], data[at + 3]]));
        at += 4;
        let end = (at + len).min(data.len());
        let mut bytes = Vec::new();
        if kind % 4 == 1 {
            let id = name
                .strip_prefix("log-")
                .and_then(|s| s.strip_suffix(".seg"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            let header = SegmentHeader {
                format_version: match (kind >> 3) & 3 {
                    0 => 1,
                    1 => 2,
                    _ => 3,
                },
                ..SegmentHeader::new(id, FUZZ_CHANNEL_ID, 0, 0)
            };
            bytes.extend_from_slice(&header.encode());
        } else if kind % 4 == 2 {
            bytes.extend_from_slice(&file_channel::identity::encode(FUZZ_CHANNEL_ID, 0));
        }
        bytes.extend_from_slice(&data[at..end]);
        at = end;
        files += 1;
        let _ = sim.write_file(&dir.join(name), &bytes);
    }
    let mut cfg = ChannelConfig::new(dir);
    cfg.segment_bytes_max = 4096;
    cfg.minimum_required_space = 0;
    cfg.prefill_ahead_bytes = 0;
    cfg.recovery_mode = if flags & 1 == 1 {
        RecoveryMode::Strict
    } else {
        RecoveryMode::SkipDamaged
    };
    cfg.keyring = open_dir_keys((flags >> 1) & 3);
    let ch = FileChannel::open_with(cfg, Arc::new(sim)).map_err(|e| e.to_string())?;
    let mut outcome = OpenDirOutcome {
        taken: 0,
        take_error: None,
    };
    let mut tx = ch.transaction();
    for _ in 0..1000 {
        match tx.take() {
            Ok(Some(_)) => outcome.taken += 1,
            Ok(None) => break,
            Err(e) => {
                outcome.take_error = Some(e.to_string());
                break;
            }
        }
    }
    tx.rollback();
    let mut tx = ch.transaction();
    if tx.put(&file_channel::Event::new("after open")).is_ok() {
        let _ = tx.commit();
    }
    let _ = ch.close();
    Ok(outcome)
}

/// The keys of [`open_dir`]'s flag bits 1–2.
fn open_dir_keys(choice: u8) -> Option<Arc<file_channel::encryption::Keyring>> {
    use crate::harness::encrypt::{test_key, test_keyring, TEST_KEY_ID};
    use file_channel::encryption::{DataKey, Keyring};
    let listed = |key: DataKey, active: bool| {
        let mut k = Keyring::new();
        let _ = k.insert(TEST_KEY_ID, key);
        if active {
            let _ = k.set_active(TEST_KEY_ID);
        }
        Some(Arc::new(k))
    };
    match choice {
        0 => None,
        1 => Some(test_keyring()),
        2 => listed(DataKey::new([0xa5; 32]), true),
        _ => listed(test_key(), false),
    }
}

/// Decodes `data` into a sim case ([`crate::harness::sim::ops_from_bytes`]): random channel
/// operations with crashes and faults, run against the model, with encryption on when bit 3 of
/// the first byte is set. Any invariant violation panics.
///
/// Bit flips in old data (media damage) are included, as in the `sim` layer: the two engine
/// findings that kept them out (loss accounting after a checkpoint-based open, damaged segment
/// headers) are fixed (`docs/testing.md`, Findings).
#[allow(clippy::panic)] // a panic is how a fuzz target reports a finding
pub fn channel_ops(data: &[u8]) {
    let (ops, params) = crate::harness::sim::ops_from_bytes(data);
    if let Err(failure) = crate::harness::sim::run_case(&ops, params) {
        panic!("{failure}\ncase: {params:?} {ops:?}");
    }
}
