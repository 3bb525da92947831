//! The records a repair writes into the log: gap records over a damaged range (cut into pieces
//! no longer than a record may be), seal records and whole tombstone segments, framed by the
//! engine's own encoder so they decode exactly as the writer's records do.

use crate::format::record::{
    PendingRecord, RecordBinding, RecordKind, RecordPlace, SealPayload, RECORD_HEADER_BYTES,
};
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::limits::MAX_RECORD_BYTES;
use crate::storage::DynFile;

/// Smallest record: a gap record needs at least this many bytes.
pub(super) const MIN_GAP_BYTES: u64 = RECORD_HEADER_BYTES as u64;

/// The pieces `[start, end)` is cut into: records of at most [`MAX_RECORD_BYTES`], none shorter
/// than a record header.
fn gap_pieces(start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let rem = end - pos;
        let len = if rem <= MAX_RECORD_BYTES {
            rem
        } else if rem - MAX_RECORD_BYTES >= MIN_GAP_BYTES {
            MAX_RECORD_BYTES
        } else {
            rem - MIN_GAP_BYTES
        };
        out.push((pos, len));
        pos += len;
    }
    out
}

pub(super) fn gap_counts_fit(len: u64, events: u64) -> bool {
    let pieces = gap_pieces(0, len).len() as u64;
    pieces.saturating_mul(u64::from(u32::MAX)) >= events
}

fn gap_record(
    binding: RecordBinding,
    segment: u64,
    offset: u64,
    len: u64,
    first_seq: u64,
    events: u32,
) -> Vec<u8> {
    assert!(
        len >= MIN_GAP_BYTES && len & 7 == 0 && len <= MAX_RECORD_BYTES,
        "gap record of {len} bytes"
    );
    let mut p = PendingRecord::new(RecordKind::Gap, 0);
    p.bytes.resize(len as usize, 0);
    p.event_count = events;
    p.seal_payload();
    let mut out = Vec::with_capacity(len as usize);
    p.frame_into(
        RecordPlace {
            segment_id: segment,
            offset,
            durable_mark: offset,
            binding,
        },
        first_seq,
        &mut out,
    );
    out
}

pub(super) fn seal_record(
    binding: RecordBinding,
    segment: u64,
    offset: u64,
    next_segment: u64,
    next_seq: u64,
) -> Vec<u8> {
    let mut p = PendingRecord::new(RecordKind::Seal, 0);
    p.first_seq = next_seq;
    SealPayload {
        next_segment_id: next_segment,
        next_seq,
    }
    .encode_into(&mut p.bytes);
    p.seal_payload();
    let mut out = Vec::new();
    p.frame_into(
        RecordPlace {
            segment_id: segment,
            offset,
            durable_mark: offset,
            binding,
        },
        next_seq,
        &mut out,
    );
    out
}

/// The whole file of a tombstone for a missing segment: `header`, gap records naming the
/// `events` lost from its first sequence number on, and a seal naming the next segment at
/// `next_seq`.
pub(super) fn tombstone_segment(header: SegmentHeader, events: u64, next_seq: u64) -> Vec<u8> {
    let segment = header.segment_id;
    let mut bytes = header.encode().to_vec();
    let mut at = SEGMENT_HEADER_BYTES as u64;
    if events > 0 {
        let mut left = events;
        let mut seq = header.first_seq;
        while left > 0 {
            let n = left.min(u64::from(u32::MAX));
            bytes.extend(gap_record(
                header.binding(),
                segment,
                at,
                MIN_GAP_BYTES,
                seq,
                n as u32,
            ));
            at += MIN_GAP_BYTES;
            seq += n;
            left -= n;
        }
    }
    bytes.extend(seal_record(
        header.binding(),
        segment,
        at,
        segment + 1,
        next_seq,
    ));
    bytes
}

/// Writes gap records (bound as the segment's format says) over `[start, end)` of `file`,
/// carrying `events` lost events from `first_seq` on.
pub(super) fn write_gaps(
    file: &DynFile,
    binding: RecordBinding,
    segment: u64,
    start: u64,
    end: u64,
    first_seq: u64,
    events: u64,
) -> std::io::Result<()> {
    let pieces = gap_pieces(start, end);
    if let Some((pos, len)) = pieces
        .iter()
        .find(|&&(pos, len)| pos & 7 != 0 || len & 7 != 0 || len < MIN_GAP_BYTES)
    {
        // The plan aligns its ranges; a range that is not is refused here, never half-written.
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("cannot write a gap record of {len} bytes at offset {pos}: records are 8-byte aligned and at least {MIN_GAP_BYTES} bytes"),
        ));
    }
    let mut seq = first_seq;
    let mut left = events;
    for (pos, len) in pieces {
        let n = left.min(u64::from(u32::MAX));
        file.write_at(&gap_record(binding, segment, pos, len, seq, n as u32), pos)?;
        seq += n;
        left -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::{decode, Decoded};

    const B: RecordBinding = RecordBinding::Channel(0xabc);

    #[test]
    fn gap_pieces_cover_exactly_and_respect_bounds() {
        for len in [
            56u64,
            64,
            4096,
            MAX_RECORD_BYTES,
            MAX_RECORD_BYTES + 8,
            MAX_RECORD_BYTES + 56,
            3 * MAX_RECORD_BYTES + 48,
        ] {
            let pieces = gap_pieces(64, 64 + len);
            let total: u64 = pieces.iter().map(|p| p.1).sum();
            assert_eq!(total, len);
            let mut at = 64;
            for (pos, l) in pieces {
                assert_eq!(pos, at);
                assert!((MIN_GAP_BYTES..=MAX_RECORD_BYTES).contains(&l), "{l}");
                assert_eq!(l % 8, 0);
                at += l;
            }
        }
    }

    #[test]
    fn gap_and_seal_records_decode_where_they_are_written() {
        let g = gap_record(B, 3, 128, 200, 10, 7);
        assert_eq!(g.len(), 200);
        let Ok(Decoded::Record(h, payload)) = decode(&g, B, 3, 128) else {
            panic!("gap record does not decode");
        };
        assert_eq!(
            (h.kind, h.first_seq, h.event_count),
            (RecordKind::Gap, 10, 7)
        );
        assert!(payload.iter().all(|&b| b == 0));
        let s = seal_record(B, 3, 328, 4, 17);
        let Ok(Decoded::Record(h, payload)) = decode(&s, B, 3, 328) else {
            panic!("seal does not decode");
        };
        assert_eq!(h.kind, RecordKind::Seal);
        assert_eq!(
            SealPayload::decode(payload),
            SealPayload {
                next_segment_id: 4,
                next_seq: 17
            }
        );
    }

    #[test]
    fn a_tombstone_is_a_header_a_gap_record_for_the_lost_events_and_a_seal() {
        let header = SegmentHeader::new(5, 0xabc, 100, 1);
        let t = tombstone_segment(header, 7, 107);
        assert_eq!(
            SegmentHeader::decode(&t[..SEGMENT_HEADER_BYTES]),
            Ok(header)
        );
        let gap_at = SEGMENT_HEADER_BYTES as u64;
        let Ok(Decoded::Record(h, _)) = decode(&t[gap_at as usize..], B, 5, gap_at) else {
            panic!("gap record does not decode");
        };
        assert_eq!(
            (h.kind, h.first_seq, h.event_count),
            (RecordKind::Gap, 100, 7)
        );
        let seal_at = gap_at + MIN_GAP_BYTES;
        let Ok(Decoded::Record(h, payload)) = decode(&t[seal_at as usize..], B, 5, seal_at) else {
            panic!("seal does not decode");
        };
        assert_eq!(h.kind, RecordKind::Seal);
        assert_eq!(
            SealPayload::decode(payload),
            SealPayload {
                next_segment_id: 6,
                next_seq: 107
            }
        );
        // Nothing lost: no gap record, the seal follows the header.
        let t = tombstone_segment(header, 0, 100);
        let Ok(Decoded::Record(h, _)) = decode(&t[gap_at as usize..], B, 5, gap_at) else {
            panic!("seal does not decode");
        };
        assert_eq!(h.kind, RecordKind::Seal);
    }
}
