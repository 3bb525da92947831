//! The record frame: one per committed put transaction, one per take commit, one seal per
//! finished segment.
//!
//! ```text
//!  0  u32  record length in bytes, header included, padding excluded (0 = end of data)
//!  4  u32  CRC-32 of the binding (format 2: the channel id, 8 bytes) followed by bytes
//!          8..length (header fields after the CRC, and the payload)
//!  8  u8   record type: 1 put, 2 take, 3 seal, 4 gap (written by repair over damage)
//!  9  u8   flags: bit 0 (put records, format 3) the payload is an encryption envelope
//!          (`crate::encryption::envelope`); every other bit 0
//! 10  u16  reserved, 0
//! 12  u32  event count (put: events in the payload; take: events consumed; seal: 0)
//! 16  u64  segment id the record was written to
//! 24  u64  offset of the record inside that segment
//! 32  u64  first sequence number (put: of its first event; take: lowest consumed; seal: next;
//!          gap: first lost)
//! 40  u64  transaction id
//! 48  u64  durable mark: the segment offset up to which data was known durable (fsynced) when
//!          this record was written
//! 56       payload, then zero padding up to the next multiple of 8
//! ```
//!
//! The segment id and offset inside the checksummed header reject stale records left in a
//! recycled file and bytes copied to the wrong place; the durable mark tells recovery whether
//! damage before a valid record hit data that was already durable (corruption) or only the last
//! unsynced write (a torn tail). The [`RecordBinding`] folded into the checksum (format 2)
//! makes a record of another channel invalid here even where it sits at the same segment id
//! and offset, as in a segment copied in from another channel whose header is lost.

use super::le::{put_u32, put_u64, u32_at, u64_at};
use super::CorruptionKind;
use crate::encryption::envelope::{EnvelopeError, Sealer, PREFIX_BYTES_MAX};
use crate::limits::{MAX_RECORD_BYTES, MAX_TAKE_RANGES, RECORD_ALIGN_BYTES};

/// Size of the fixed record header.
pub const RECORD_HEADER_BYTES: usize = 56;

/// Flag bit: the put record's payload is encrypted (format 3).
pub const FLAG_ENCRYPTED: u8 = 1;

/// Bytes of a record header that are associated data of an encrypted record: all but the CRC.
pub const AAD_HEADER_BYTES: usize = RECORD_HEADER_BYTES - 4;
const _: () = assert!(AAD_HEADER_BYTES == crate::encryption::HEADER_AAD_BYTES);

/// Payload size of a seal record.
pub const SEAL_PAYLOAD_BYTES: usize = 16;

/// Bytes of a complete seal record including padding.
pub const SEAL_RECORD_BYTES: u64 = align_up((RECORD_HEADER_BYTES + SEAL_PAYLOAD_BYTES) as u64);

/// What a record's checksum covers besides the record's own bytes: the format version of the
/// segment the record is in decides it (`docs/format.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordBinding {
    /// Format 1: the checksum covers the record's bytes only, so records of two channels at
    /// the same segment id and offset are interchangeable.
    Unbound,
    /// Format 2: the checksum starts with this channel id (8 bytes, little-endian), so a record
    /// of another channel fails it.
    Channel(u64),
}

impl RecordBinding {
    /// The binding of a segment of this format version, in channel `channel_id`.
    pub fn for_version(format_version: u32, channel_id: u64) -> Self {
        if format_version >= 2 {
            Self::Channel(channel_id)
        } else {
            Self::Unbound
        }
    }

    /// The format version of segments whose records carry this binding.
    pub fn format_version(self) -> u32 {
        match self {
            Self::Unbound => 1,
            Self::Channel(_) => 2,
        }
    }

    /// A checksum already fed with the binding; the record's bytes from 8 on follow.
    fn hasher(self) -> crc32fast::Hasher {
        let mut h = crc32fast::Hasher::new();
        if let Self::Channel(id) = self {
            h.update(&id.to_le_bytes());
        }
        h
    }
}

/// The type of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A committed put transaction: its events, in order.
    Put = 1,
    /// A committed take transaction: the sequence ranges it consumed.
    Take = 2,
    /// The last record of a finished segment: names the next segment.
    Seal = 3,
    /// Written by repair over a damaged range: `event_count` events from `first_seq` on were
    /// lost there. Its payload is zeros (it fills the damaged range exactly).
    Gap = 4,
}

impl RecordKind {
    fn from_byte(b: u8) -> Result<Self, CorruptionKind> {
        match b {
            1 => Ok(Self::Put),
            2 => Ok(Self::Take),
            3 => Ok(Self::Seal),
            4 => Ok(Self::Gap),
            kind => Err(CorruptionKind::UnknownRecordType { kind }),
        }
    }
}

/// The fields of a record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Record length, header included, padding excluded.
    pub len: u32,
    /// Record type.
    pub kind: RecordKind,
    /// Flags: [`FLAG_ENCRYPTED`] or 0.
    pub flags: u8,
    /// Events in (put) or consumed by (take) the record.
    pub event_count: u32,
    /// Segment the record belongs to.
    pub segment_id: u64,
    /// Offset of the record in its segment.
    pub offset: u64,
    /// First sequence number (see the module doc).
    pub first_seq: u64,
    /// Transaction id.
    pub txn_id: u64,
    /// Offset up to which the segment was durable when the record was written.
    pub durable_mark: u64,
}

impl RecordHeader {
    /// Bytes the record occupies on disk, padding included.
    pub fn aligned_len(&self) -> u64 {
        align_up(u64::from(self.len))
    }

    /// Payload bytes.
    pub fn payload_len(&self) -> usize {
        self.len as usize - RECORD_HEADER_BYTES
    }

    /// Whether the payload is an encryption envelope.
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }

    /// The header as stored, without its CRC (bytes 0..4 then 8..56): the associated data of
    /// an encrypted record.
    pub fn aad_bytes(&self) -> [u8; AAD_HEADER_BYTES] {
        let mut h = [0u8; RECORD_HEADER_BYTES];
        put_u32(&mut h, 0, self.len);
        h[8] = self.kind as u8;
        h[9] = self.flags;
        put_u32(&mut h, 12, self.event_count);
        put_u64(&mut h, 16, self.segment_id);
        put_u64(&mut h, 24, self.offset);
        put_u64(&mut h, 32, self.first_seq);
        put_u64(&mut h, 40, self.txn_id);
        put_u64(&mut h, 48, self.durable_mark);
        aad_of(&h)
    }
}

/// The associated data of the stored header `h` (56 bytes): all but the CRC.
fn aad_of(h: &[u8]) -> [u8; AAD_HEADER_BYTES] {
    let mut a = [0u8; AAD_HEADER_BYTES];
    a[..4].copy_from_slice(&h[..4]);
    a[4..].copy_from_slice(&h[8..RECORD_HEADER_BYTES]);
    a
}

/// Rounds `n` up to the record alignment.
pub const fn align_up(n: u64) -> u64 {
    n.div_ceil(RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES
}

/// The buffer a record starts with unless told to start larger ([`PendingRecord::new`]).
pub const RECORD_CAPACITY_MIN_BYTES: usize = 4096;

/// A record being built by a committer: payload bytes behind a reserved header, with the
/// payload's CRC computed off the writer's critical path.
#[derive(Debug)]
pub struct PendingRecord {
    /// Header placeholder followed by the payload.
    pub bytes: Vec<u8>,
    /// Record type.
    pub kind: RecordKind,
    /// Event count for the header.
    pub event_count: u32,
    /// Transaction id for the header.
    pub txn_id: u64,
    /// First sequence number for take and seal records (the writer assigns it for puts).
    pub first_seq: u64,
    /// CRC of the payload, once [`Self::seal_payload`] computed it (a put record the writer
    /// encrypts does not need it: its CRC covers the ciphertext).
    payload_crc: Option<crc32fast::Hasher>,
    /// CRC of the payload's first `folded_to - RECORD_HEADER_BYTES` bytes, folded in while
    /// they were still in the cache ([`Self::fold_payload`]).
    folding: crc32fast::Hasher,
    folded_to: usize,
}

impl PendingRecord {
    /// Starts a record whose payload will be appended to `bytes` after the header placeholder.
    pub fn new(kind: RecordKind, txn_id: u64) -> Self {
        Self::with_capacity(kind, txn_id, RECORD_CAPACITY_MIN_BYTES)
    }

    /// Like [`Self::new`], with room for `capacity` bytes (header included) before it grows.
    pub fn with_capacity(kind: RecordKind, txn_id: u64, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity.max(RECORD_HEADER_BYTES));
        bytes.resize(RECORD_HEADER_BYTES, 0);
        Self {
            bytes,
            kind,
            event_count: 0,
            txn_id,
            first_seq: 0,
            payload_crc: None,
            folding: crc32fast::Hasher::new(),
            folded_to: RECORD_HEADER_BYTES,
        }
    }

    /// Folds the payload bytes appended since the last call into the payload's CRC: a put
    /// calls it after each event, while the event's bytes are still in the cache, so the
    /// commit does not read the whole payload again.
    pub fn fold_payload(&mut self) {
        if let Some(new) = self.bytes.get(self.folded_to..) {
            self.folding.update(new);
            self.folded_to = self.bytes.len();
        }
    }

    /// Finishes the payload: computes its CRC (from what [`Self::fold_payload`] folded, plus
    /// the rest). Call once, after the last payload byte.
    pub fn seal_payload(&mut self) {
        let h = if self.folded_to <= self.bytes.len() {
            self.fold_payload();
            self.folding.clone()
        } else {
            // The payload shrank after it was folded: start again.
            let mut h = crc32fast::Hasher::new();
            h.update(&self.bytes[RECORD_HEADER_BYTES..]);
            h
        };
        self.payload_crc = Some(h);
    }

    /// Length of the record without padding.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether the record has no payload.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == RECORD_HEADER_BYTES
    }

    /// Writes the header for its final place and appends the record plus padding to `out`.
    /// `first_seq` and the place are only known to the writer.
    pub fn frame_into(&self, place: RecordPlace, first_seq: u64, out: &mut Vec<u8>) {
        assert!(self.len() <= MAX_RECORD_BYTES, "record over the size limit");
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        self.finish_frame(place, first_seq, &mut out[start..]);
        let padded = start + align_up(self.len()) as usize;
        out.resize(padded, 0);
    }

    /// Like [`Self::frame_into`], but frames the record in its own buffer and returns it (header
    /// filled in, padding appended): the writer hands large records to the file as they are
    /// instead of copying them into its batch buffer.
    pub fn into_framed(mut self, place: RecordPlace, first_seq: u64) -> Vec<u8> {
        assert!(self.len() <= MAX_RECORD_BYTES, "record over the size limit");
        let mut bytes = std::mem::take(&mut self.bytes);
        self.finish_frame(place, first_seq, &mut bytes);
        let padded = align_up(bytes.len() as u64) as usize;
        bytes.resize(padded, 0);
        bytes
    }

    /// Fills in the header of `rec` (this record's bytes, header placeholder first, no padding)
    /// and its CRC.
    fn finish_frame(&self, place: RecordPlace, first_seq: u64, rec: &mut [u8]) {
        // Callers assert the length against MAX_RECORD_BYTES (64 MiB): it fits.
        let len = rec.len() as u32;
        let h = &mut rec[..RECORD_HEADER_BYTES];
        put_u32(h, 0, len);
        h[8] = self.kind as u8;
        h[9] = 0;
        h[10] = 0;
        h[11] = 0;
        put_u32(h, 12, self.event_count);
        put_u64(h, 16, place.segment_id);
        put_u64(h, 24, place.offset);
        put_u64(h, 32, first_seq);
        put_u64(h, 40, self.txn_id);
        put_u64(h, 48, place.durable_mark);
        let mut crc = place.binding.hasher();
        match &self.payload_crc {
            Some(payload) => {
                crc.update(&rec[8..RECORD_HEADER_BYTES]);
                crc.combine(payload);
            }
            None => crc.update(&rec[8..]),
        }
        put_u32(rec, 4, crc.finalize());
    }

    /// Length of the record once framed, with `sealer`'s envelope if there is one.
    pub fn framed_len(&self, sealer: Option<&Sealer>) -> u64 {
        match sealer {
            Some(s) if self.kind == RecordKind::Put => self.len() + s.overhead() as u64,
            _ => self.len(),
        }
    }

    /// Like [`Self::frame_into`], but a put record is sealed by `sealer` (format 3): its payload
    /// becomes an encryption envelope, and the CRC covers the stored (encrypted) bytes.
    pub fn frame_sealed_into(
        &self,
        place: RecordPlace,
        first_seq: u64,
        sealer: &Sealer,
        out: &mut Vec<u8>,
    ) -> Result<(), EnvelopeError> {
        if self.kind != RecordKind::Put {
            self.frame_into(place, first_seq, out);
            return Ok(());
        }
        let len = self.framed_len(Some(sealer));
        assert!(len <= MAX_RECORD_BYTES, "record over the size limit");
        let start = out.len();
        out.resize(start + RECORD_HEADER_BYTES, 0);
        {
            let h = &mut out[start..];
            put_u32(h, 0, len as u32);
            h[8] = self.kind as u8;
            h[9] = FLAG_ENCRYPTED;
            put_u32(h, 12, self.event_count);
            put_u64(h, 16, place.segment_id);
            put_u64(h, 24, place.offset);
            put_u64(h, 32, first_seq);
            put_u64(h, 40, self.txn_id);
            put_u64(h, 48, place.durable_mark);
        }
        sealer.write_prefix(out);
        let body = out.len();
        // On the stack, as the reader's `Opener` builds it: no allocation per sealed record.
        let prefix = &out[start + RECORD_HEADER_BYTES..body];
        let mut aad = [0u8; AAD_HEADER_BYTES + PREFIX_BYTES_MAX];
        aad[..AAD_HEADER_BYTES].copy_from_slice(&aad_of(&out[start..start + RECORD_HEADER_BYTES]));
        aad[AAD_HEADER_BYTES..AAD_HEADER_BYTES + prefix.len()].copy_from_slice(prefix);
        let aad_len = AAD_HEADER_BYTES + prefix.len();
        out.extend_from_slice(&self.bytes[RECORD_HEADER_BYTES..]);
        let tag = sealer.seal(place.offset, &aad[..aad_len], &mut out[body..])?;
        out.extend_from_slice(tag.as_ref());
        let mut crc = place.binding.hasher();
        crc.update(&out[start + 8..]);
        let crc = crc.finalize();
        put_u32(&mut out[start..], 4, crc);
        let padded = start + align_up(len) as usize;
        out.resize(padded, 0);
        Ok(())
    }
}

/// Where a record is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordPlace {
    /// The segment.
    pub segment_id: u64,
    /// The record's offset in it.
    pub offset: u64,
    /// The durable mark to store.
    pub durable_mark: u64,
    /// What the checksum binds the record to (the segment's format).
    pub binding: RecordBinding,
}

/// The result of trying to decode a record at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record.
    Record(RecordHeader, &'a [u8]),
    /// The end of data: a zero length field, or fewer than four bytes left.
    End,
}

/// Decodes the record starting at `b[0]`, which was read from `offset` of segment `segment_id`
/// (whose format gives `binding`). `b` holds the bytes up to the end of the readable data.
/// Never panics.
pub fn decode(
    b: &[u8],
    binding: RecordBinding,
    segment_id: u64,
    offset: u64,
) -> Result<Decoded<'_>, CorruptionKind> {
    if b.len() < 4 {
        return if b.iter().all(|&x| x == 0) {
            Ok(Decoded::End)
        } else {
            Err(CorruptionKind::Truncated {
                needed: 4,
                available: b.len() as u64,
            })
        };
    }
    let len = u32_at(b, 0);
    if len == 0 {
        return Ok(Decoded::End);
    }
    if (len as usize) < RECORD_HEADER_BYTES || u64::from(len) > MAX_RECORD_BYTES {
        return Err(CorruptionKind::BadLength {
            len: u64::from(len),
        });
    }
    if b.len() < len as usize {
        return Err(CorruptionKind::Truncated {
            needed: u64::from(len),
            available: b.len() as u64,
        });
    }
    let rec = &b[..len as usize];
    let expected = u32_at(rec, 4);
    let mut crc = binding.hasher();
    crc.update(&rec[8..]);
    let actual = crc.finalize();
    if expected != actual {
        return Err(CorruptionKind::BadChecksum { expected, actual });
    }
    let kind = RecordKind::from_byte(rec[8])?;
    let flags_known = match (kind, binding) {
        // Encryption came with format 3, whose records are bound to their channel.
        (RecordKind::Put, RecordBinding::Channel(_)) => rec[9] & !FLAG_ENCRYPTED == 0,
        _ => rec[9] == 0,
    };
    if !flags_known || rec[10..12] != [0, 0] {
        // Checksummed, so written that way: by a newer format this build cannot read.
        return Err(CorruptionKind::BadPayload {
            what: "record flags or reserved bytes are not zero",
        });
    }
    let header = RecordHeader {
        len,
        kind,
        flags: rec[9],
        event_count: u32_at(rec, 12),
        segment_id: u64_at(rec, 16),
        offset: u64_at(rec, 24),
        first_seq: u64_at(rec, 32),
        txn_id: u64_at(rec, 40),
        durable_mark: u64_at(rec, 48),
    };
    if header.segment_id != segment_id {
        return Err(CorruptionKind::WrongSegment {
            found: header.segment_id,
        });
    }
    if header.offset != offset {
        return Err(CorruptionKind::WrongOffset {
            found: header.offset,
        });
    }
    let payload = &rec[RECORD_HEADER_BYTES..];
    match header.kind {
        RecordKind::Seal if payload.len() != SEAL_PAYLOAD_BYTES => {
            return Err(CorruptionKind::BadPayload {
                what: "seal payload has the wrong size",
            })
        }
        RecordKind::Gap if payload.iter().any(|&b| b != 0) => {
            return Err(CorruptionKind::BadPayload {
                what: "gap record payload is not zeros",
            })
        }
        RecordKind::Put if header.event_count == 0 => {
            return Err(CorruptionKind::BadPayload {
                what: "put record without events",
            })
        }
        _ => {}
    }
    if header
        .first_seq
        .checked_add(u64::from(header.event_count))
        .is_none()
    {
        return Err(CorruptionKind::BadPayload {
            what: "sequence range overflows",
        });
    }
    Ok(Decoded::Record(header, payload))
}

/// The fields of a stored record header, read without checking the CRC (which covers the
/// payload too): for a reader that only looks ahead and whose results are checked against a
/// record [`decode`] accepted. `None` when a field is out of bounds.
pub fn peek_header(h: &[u8; RECORD_HEADER_BYTES]) -> Option<RecordHeader> {
    let len = u32_at(h, 0);
    if (len as usize) < RECORD_HEADER_BYTES || u64::from(len) > MAX_RECORD_BYTES {
        return None;
    }
    Some(RecordHeader {
        len,
        kind: RecordKind::from_byte(h[8]).ok()?,
        flags: h[9],
        event_count: u32_at(h, 12),
        segment_id: u64_at(h, 16),
        offset: u64_at(h, 24),
        first_seq: u64_at(h, 32),
        txn_id: u64_at(h, 40),
        durable_mark: u64_at(h, 48),
    })
}

/// A take record's payload: the bytes consumed and the sequence ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TakePayload {
    /// Encoded bytes of the consumed events (for the channel's byte accounting).
    pub bytes: u64,
    /// Consumed ranges, each `[start, end)`.
    pub ranges: Vec<(u64, u64)>,
}

impl TakePayload {
    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + 16 + 16 * self.ranges.len(), 0);
        put_u64(out, at, self.bytes);
        put_u32(out, at + 8, self.ranges.len() as u32);
        for (i, &(s, e)) in self.ranges.iter().enumerate() {
            debug_assert!(s < e, "empty take range");
            put_u64(out, at + 16 + 16 * i, s);
            put_u64(out, at + 24 + 16 * i, e);
        }
    }

    /// Decodes and validates a take payload against its header's event count.
    pub fn decode(payload: &[u8], event_count: u32) -> Result<Self, CorruptionKind> {
        if payload.len() < 16 {
            return Err(CorruptionKind::BadPayload {
                what: "take payload too short",
            });
        }
        let bytes = u64_at(payload, 0);
        let n = u32_at(payload, 8);
        if n > MAX_TAKE_RANGES || payload.len() != 16 + 16 * n as usize {
            return Err(CorruptionKind::BadPayload {
                what: "take range count does not match its length",
            });
        }
        let mut ranges = Vec::with_capacity(n as usize);
        let mut total = 0u64;
        for i in 0..n as usize {
            let s = u64_at(payload, 16 + 16 * i);
            let e = u64_at(payload, 24 + 16 * i);
            if s >= e {
                return Err(CorruptionKind::BadPayload {
                    what: "empty or reversed take range",
                });
            }
            total = total.saturating_add(e - s);
            ranges.push((s, e));
        }
        if total != u64::from(event_count) {
            return Err(CorruptionKind::BadPayload {
                what: "take ranges do not add up to the event count",
            });
        }
        Ok(Self { bytes, ranges })
    }
}

/// A seal record's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealPayload {
    /// The segment that follows.
    pub next_segment_id: u64,
    /// The channel's next sequence number when the segment was sealed.
    pub next_seq: u64,
}

impl SealPayload {
    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + SEAL_PAYLOAD_BYTES, 0);
        put_u64(out, at, self.next_segment_id);
        put_u64(out, at + 8, self.next_seq);
    }

    /// Decodes a seal payload (its size was checked by [`decode`]).
    pub fn decode(payload: &[u8]) -> Self {
        Self {
            next_segment_id: u64_at(payload, 0),
            next_seq: u64_at(payload, 8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(kind: RecordKind, payload: &[u8], count: u32, place: RecordPlace) -> Vec<u8> {
        let mut p = PendingRecord::new(kind, 9);
        p.bytes.extend_from_slice(payload);
        p.event_count = count;
        p.seal_payload();
        let mut out = vec![];
        p.frame_into(place, 100, &mut out);
        out
    }

    const CHANNEL: RecordBinding = RecordBinding::Channel(0x5eed_cafe);

    const PLACE: RecordPlace = RecordPlace {
        segment_id: 3,
        offset: 64,
        durable_mark: 64,
        binding: CHANNEL,
    };

    #[test]
    fn round_trip_with_padding() {
        let out = framed(RecordKind::Put, b"abcde", 1, PLACE);
        assert_eq!(out.len() as u64, align_up((RECORD_HEADER_BYTES + 5) as u64));
        let Ok(Decoded::Record(h, payload)) = decode(&out, CHANNEL, 3, 64) else {
            panic!("did not decode");
        };
        assert_eq!(payload, b"abcde");
        assert_eq!(
            (h.kind, h.event_count, h.first_seq, h.txn_id, h.durable_mark),
            (RecordKind::Put, 1, 100, 9, 64)
        );
    }

    #[test]
    fn framing_in_place_writes_the_same_bytes_as_framing_into_a_buffer() {
        for (payload, sealed) in [
            (&b"abcde"[..], true),
            (&b"abcdefgh"[..], true),
            (&b""[..], false),
        ] {
            let record = || {
                let mut p = PendingRecord::new(RecordKind::Put, 9);
                p.bytes.extend_from_slice(payload);
                p.event_count = 1;
                if sealed {
                    p.seal_payload();
                }
                p
            };
            let mut out = vec![7u8; 3];
            record().frame_into(PLACE, 100, &mut out);
            let in_place = record().into_framed(PLACE, 100);
            assert_eq!(in_place, out[3..], "payload {payload:?}");
            assert!(matches!(
                decode(&in_place, CHANNEL, 3, 64),
                Ok(Decoded::Record(_, p)) if p == payload
            ));
        }
    }

    #[test]
    fn a_payload_folded_event_by_event_has_the_crc_of_the_whole() {
        let whole = framed(RecordKind::Put, b"onetwothree", 3, PLACE);
        let mut p = PendingRecord::new(RecordKind::Put, 9);
        for part in [&b"one"[..], b"two", b"three"] {
            p.bytes.extend_from_slice(part);
            p.fold_payload();
        }
        p.event_count = 3;
        p.seal_payload();
        let mut out = vec![];
        p.frame_into(PLACE, 100, &mut out);
        assert_eq!(out, whole);
        // Folded, then cut back: the CRC is computed again from what is left.
        let mut p = PendingRecord::new(RecordKind::Put, 9);
        p.bytes.extend_from_slice(b"onetwothreeXX");
        p.fold_payload();
        p.bytes.truncate(p.bytes.len() - 2);
        p.event_count = 3;
        p.seal_payload();
        let mut out = vec![];
        p.frame_into(PLACE, 100, &mut out);
        assert_eq!(out, whole);
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let out = framed(RecordKind::Put, b"payload!", 1, PLACE);
        let len = RECORD_HEADER_BYTES + 8;
        for bit in 0..len * 8 {
            let mut c = out.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            let r = decode(&c, CHANNEL, 3, 64);
            assert!(
                !matches!(r, Ok(Decoded::Record(..))),
                "flip of bit {bit} decoded as a record"
            );
        }
    }

    #[test]
    fn stale_or_misplaced_records_are_rejected() {
        let out = framed(RecordKind::Put, b"x", 1, PLACE);
        assert_eq!(
            decode(&out, CHANNEL, 4, 64),
            Err(CorruptionKind::WrongSegment { found: 3 })
        );
        assert_eq!(
            decode(&out, CHANNEL, 3, 72),
            Err(CorruptionKind::WrongOffset { found: 64 })
        );
    }

    #[test]
    fn a_record_of_another_channel_or_format_is_rejected() {
        let out = framed(RecordKind::Put, b"x", 1, PLACE);
        for other in [
            RecordBinding::Channel(0x5eed_cafe ^ 1),
            RecordBinding::Unbound,
        ] {
            assert!(
                matches!(
                    decode(&out, other, 3, 64),
                    Err(CorruptionKind::BadChecksum { .. })
                ),
                "{other:?}"
            );
        }
        let v1 = framed(
            RecordKind::Put,
            b"x",
            1,
            RecordPlace {
                binding: RecordBinding::Unbound,
                ..PLACE
            },
        );
        assert!(matches!(
            decode(&v1, RecordBinding::Unbound, 3, 64),
            Ok(Decoded::Record(..))
        ));
        assert!(decode(&v1, CHANNEL, 3, 64).is_err());
        assert_eq!(RecordBinding::for_version(1, 7), RecordBinding::Unbound);
        assert_eq!(RecordBinding::for_version(2, 7), RecordBinding::Channel(7));
    }

    #[test]
    fn lengths_are_bounded_before_use() {
        let mut b = vec![0u8; 64];
        assert_eq!(decode(&b, CHANNEL, 0, 0), Ok(Decoded::End));
        put_u32(&mut b, 0, (RECORD_HEADER_BYTES - 1) as u32);
        assert!(matches!(
            decode(&b, CHANNEL, 0, 0),
            Err(CorruptionKind::BadLength { .. })
        ));
        put_u32(&mut b, 0, u32::MAX);
        assert_eq!(
            decode(&b, CHANNEL, 0, 0),
            Err(CorruptionKind::BadLength {
                len: u64::from(u32::MAX)
            })
        );
        put_u32(&mut b, 0, 1000);
        assert_eq!(
            decode(&b, CHANNEL, 0, 0),
            Err(CorruptionKind::Truncated {
                needed: 1000,
                available: 64
            })
        );
        assert_eq!(decode(&[0, 0], CHANNEL, 0, 0), Ok(Decoded::End));
        assert!(decode(&[1], CHANNEL, 0, 0).is_err());
    }

    #[test]
    fn take_payload_round_trip_and_checks() {
        let t = TakePayload {
            bytes: 77,
            ranges: vec![(1, 5), (9, 10)],
        };
        let mut out = vec![];
        t.encode_into(&mut out);
        assert_eq!(TakePayload::decode(&out, 5), Ok(t));
        assert!(TakePayload::decode(&out, 4).is_err());
        assert!(TakePayload::decode(&out[..20], 5).is_err());
    }
}
