//! Fuzz target bodies. They live in the library so that the `fuzz/` workspace (cargo-fuzz,
//! libFuzzer) and the stable test suite (which replays the checked-in corpus and every past
//! crash input) run exactly the same code. Each body must never panic on any input; the
//! assertions inside are the properties the fuzzer checks.

use crate::SimStorage;
use file_channel::format::event;
use file_channel::format::record::{self, Decoded, PendingRecord, RecordBinding, RecordPlace};
use file_channel::format::segment_header::{segment_file_name, SegmentHeader};
use file_channel::replay::{replay, ReplayOptions};
use file_channel::segment::scan::{ScanItem, Scanner};
use file_channel::storage::Storage;
use std::path::Path;
use std::sync::Arc;

/// Decodes `data` as a record at offset 64 of segment 1, as format 1 (unbound) and as format 2
/// (bound to channel 7); a record that decodes must re-encode to the same bytes, and its events
/// (for a put) must decode without panicking.
pub fn record_decoder(data: &[u8]) {
    for binding in [RecordBinding::Unbound, RecordBinding::Channel(7)] {
        decode_and_reencode(data, binding);
    }
    let _ = SegmentHeader::decode(data);
}

fn decode_and_reencode(data: &[u8], binding: RecordBinding) {
    if let Ok(Decoded::Record(h, payload)) = record::decode(data, binding, 1, 64) {
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
        // The decoder does not check that the flags and reserved bytes (9..12) are zero (found
        // by this target: `fuzz/corpus/record_decoder/nonzero-reserved-bytes-accepted`), so a
        // record that decodes re-encodes equal except there; the CRC differs with them.
        let mut expected = data[..h.len as usize].to_vec();
        if expected[9..12] != [0, 0, 0] {
            expected[9..12].fill(0);
            expected[4..8].copy_from_slice(&out[4..8]);
        }
        assert_eq!(&out[..h.len as usize], &expected[..], "re-encoding differs");
        if h.kind == record::RecordKind::Put {
            let mut at = 0;
            for _ in 0..h.event_count {
                match event::decode(&payload[at..]) {
                    Ok((e, used)) => {
                        assert_eq!(e.encoded_len(), used as u64, "event length disagrees");
                        at += used;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}

/// Writes `data` as a segment file (after a valid header, of format 1 and then of format 2)
/// and scans and replays it read-only: nothing may panic, and every record the scanner accepts
/// must lie inside the file.
pub fn segment_scan(data: &[u8]) {
    for format_version in [1, 2] {
        scan_segment_of_format(data, format_version);
    }
}

fn scan_segment_of_format(data: &[u8], format_version: u32) {
    let sim = SimStorage::new();
    let dir = Path::new("/fuzz");
    let header = SegmentHeader {
        format_version,
        ..SegmentHeader::new(1, 7, 0, 0)
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
                Ok(ScanItem::Record { header, .. }) => {
                    assert!(header.offset + u64::from(header.len) <= bytes.len() as u64);
                }
                _ => break,
            }
        }
    }
    let storage: Arc<dyn Storage> = Arc::new(sim);
    let mut opts = ReplayOptions::read_only();
    opts.channel_id = Some(7);
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

/// Builds a channel directory from `data` and opens it with the engine (both recovery modes):
/// opening may fail, but nothing may panic, and a channel that opens must serve a take, a put
/// and a clean close.
///
/// Input: a flags byte (bit 0: strict mode), then files, each `name selector (1 byte)`,
/// `kind (1 byte)`, `length (2 bytes LE)`, `bytes`. Kind 1 prefixes the bytes with a valid
/// segment header for the file's id and channel 7, kind 2 prefixes a valid `channel.meta` for
/// channel 7, so the fuzzer reaches past the headers.
pub fn open_dir(data: &[u8]) {
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
                format_version: if kind & 8 == 0 { 1 } else { 2 },
                ..SegmentHeader::new(id, 7, 0, 0)
            };
            bytes.extend_from_slice(&header.encode());
        } else if kind % 4 == 2 {
            bytes.extend_from_slice(&file_channel::identity::encode(7, 0));
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
    let Ok(ch) = FileChannel::open_with(cfg, Arc::new(sim)) else {
        return;
    };
    let mut tx = ch.transaction();
    for _ in 0..1000 {
        match tx.take() {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    tx.rollback();
    let mut tx = ch.transaction();
    if tx.put(&file_channel::Event::new("after open")).is_ok() {
        let _ = tx.commit();
    }
    let _ = ch.close();
}

/// Decodes `data` into a sim case ([`crate::harness::sim::ops_from_bytes`]): random channel
/// operations with crashes and faults, run against the model. Any invariant violation panics.
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
