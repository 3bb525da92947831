//! Fuzz target bodies. They live in the library so that the `fuzz/` workspace (cargo-fuzz,
//! libFuzzer) and the stable test suite (which replays the checked-in corpus and every past
//! crash input) run exactly the same code. Each body must never panic on any input; the
//! assertions inside are the properties the fuzzer checks.

use crate::format::event;
use crate::format::record::{self, Decoded, PendingRecord, RecordPlace};
use crate::format::segment_header::{segment_file_name, SegmentHeader};
use crate::replay::{replay, ReplayOptions};
use crate::segment::scan::{ScanItem, Scanner};
use crate::storage::{SimStorage, Storage};
use std::path::Path;
use std::sync::Arc;

/// Decodes `data` as a record at offset 64 of segment 1; a record that decodes must re-encode
/// to the same bytes, and its events (for a put) must decode without panicking.
pub fn record_decoder(data: &[u8]) {
    if let Ok(Decoded::Record(h, payload)) = record::decode(data, 1, 64) {
        let mut p = PendingRecord::new(h.kind, h.txn_id);
        p.bytes.extend_from_slice(payload);
        p.event_count = h.event_count;
        p.seal_payload();
        let mut out = Vec::new();
        let place = RecordPlace {
            segment_id: h.segment_id,
            offset: h.offset,
            durable_mark: h.durable_mark,
        };
        p.frame_into(place, h.first_seq, &mut out);
        assert_eq!(
            &out[..h.len as usize],
            &data[..h.len as usize],
            "re-encoding differs"
        );
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
    let _ = SegmentHeader::decode(data);
}

/// Writes `data` as a segment file (after a valid header) and scans and replays it read-only:
/// nothing may panic, and every record the scanner accepts must lie inside the file.
pub fn segment_scan(data: &[u8]) {
    let sim = SimStorage::new();
    let dir = Path::new("/fuzz");
    let mut bytes = SegmentHeader {
        segment_id: 1,
        channel_id: 7,
        first_seq: 0,
        created_unix_ms: 0,
    }
    .encode()
    .to_vec();
    bytes.extend_from_slice(data);
    let path = dir.join(segment_file_name(1));
    if sim.write_file(&path, &bytes).is_err() {
        return;
    }
    if let Ok(file) = sim.open(&path, false) {
        let mut scanner = Scanner::from_start(file, 1);
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
