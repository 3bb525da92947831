//! `dump`: the records of a channel directory in log order, decoded, streamed to a callback so
//! a log of any size is shown in the memory of one record.
//!
//! Each segment yields its header, then every valid record (offset, type, transaction, sequence
//! range, length), and for a stretch that is not a valid record a [`DumpItem::Bad`] with the
//! raw header fields as far as they can be read; the walk resumes at the next valid record, as
//! replay does. Checkpoint files come first, decoded.
//!
//! An encrypted put record is shown with the key its envelope names (no key needed); its
//! events are shown only when keys are given ([`DumpOptions::keyring`]) and it opens. Without
//! them, or when it does not open, its payload is [`Payload::Sealed`] saying why — never the
//! ciphertext decoded as if it were events.

use super::encrypted::{sealed_with, SealedWith, Unsealer};
use super::{read_checkpoint_file, ChannelDir, CheckpointReadError, InspectError};
use crate::encryption::{EnvelopeError, Keyring, OpenFailure};
use crate::format::checkpoint::Checkpoint;
use crate::format::record::{
    RecordBinding, RecordHeader, RecordKind, SealPayload, TakePayload, RECORD_HEADER_BYTES,
};
use crate::format::segment_header::SegmentHeader;
use crate::format::{event, CorruptionKind};
use crate::segment::lost_header::binding_behind_lost_header;
use crate::segment::scan::{ScanItem, Scanner};
use crate::Event;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Options of [`dump`].
#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    /// Only this segment.
    pub segment: Option<u64>,
    /// Only records holding (or consuming) sequence numbers at or above this.
    pub from_seq: Option<u64>,
    /// At most this many records.
    pub limit: Option<u64>,
    /// Decode payloads (event headers and bodies, take ranges, seal contents).
    pub data: bool,
    /// Show checkpoint files (before the segments).
    pub checkpoints: bool,
    /// Keys to open encrypted records with: each is authenticated, and with `data` its events
    /// are shown.
    pub keyring: Option<Arc<Keyring>>,
}

/// The raw fields of a record header that does not verify (what its bytes say, unchecked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawHeader {
    /// Length field.
    pub len: u32,
    /// Stored CRC.
    pub crc: u32,
    /// Type byte.
    pub kind: u8,
    /// Event count.
    pub event_count: u32,
    /// Segment id field.
    pub segment_id: u64,
    /// Offset field.
    pub offset: u64,
    /// First sequence number field.
    pub first_seq: u64,
    /// Transaction id field.
    pub txn_id: u64,
}

/// A record's decoded payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A put record's events; `error` says why decoding stopped early, if it did.
    Put {
        /// Events decoded.
        events: Vec<Event>,
        /// Why decoding stopped before `event_count` events.
        error: Option<CorruptionKind>,
    },
    /// A take record's ranges.
    Take(Result<TakePayload, CorruptionKind>),
    /// A seal's next segment and sequence.
    Seal(SealPayload),
    /// A gap record (zeros).
    Gap,
    /// An encrypted put record that was not opened: no keys were given, its key is missing or
    /// wrong, it fails authentication, or its envelope does not parse. The failure names the
    /// key where the envelope tells it.
    Sealed(OpenFailure),
}

/// What is known of an encrypted put record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSeal {
    /// The key its envelope names (read without a key), or why the envelope does not parse.
    pub sealed_with: Result<SealedWith, EnvelopeError>,
    /// With keys given: `Ok` if it opened (authenticated), else why not. `None` without keys.
    pub opened: Option<Result<(), OpenFailure>>,
}

/// One item of a dump.
#[derive(Debug)]
pub enum DumpItem<'a> {
    /// A checkpoint file.
    Checkpoint {
        /// The file.
        path: &'a Path,
        /// Generation from its name.
        generation: u64,
        /// Length.
        bytes: u64,
        /// Its content, or why it does not decode.
        decoded: &'a Result<Checkpoint, CheckpointReadError>,
    },
    /// The start of a segment.
    Segment {
        /// Id.
        id: u64,
        /// File.
        path: &'a Path,
        /// File length.
        file_bytes: u64,
        /// Its header.
        header: &'a Result<SegmentHeader, CorruptionKind>,
    },
    /// A valid record.
    Record {
        /// Its header.
        header: &'a RecordHeader,
        /// Its payload, with `data`.
        payload: Option<&'a Payload>,
        /// For an encrypted put record: its key, and whether it opened.
        seal: Option<&'a RecordSeal>,
    },
    /// Bytes that are not a valid record.
    Bad {
        /// Segment.
        segment: u64,
        /// Offset.
        offset: u64,
        /// What is wrong.
        kind: &'a CorruptionKind,
        /// What the header bytes say, if 56 bytes could be read.
        raw: Option<RawHeader>,
        /// The next valid record, where the dump resumes.
        resumes_at: Option<u64>,
    },
    /// The end of a segment's data.
    End {
        /// Segment.
        segment: u64,
        /// Where data ends.
        offset: u64,
        /// Zero bytes after it (preallocation) to the end of the file.
        file_bytes: u64,
    },
}

/// Totals of a dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpSummary {
    /// Segments shown.
    pub segments: u64,
    /// Records shown.
    pub records: u64,
    /// Damaged stretches shown.
    pub bad: u64,
    /// Whether `limit` stopped the dump.
    pub limited: bool,
}

fn raw_header(file: &crate::storage::DynFile, offset: u64) -> Option<RawHeader> {
    let mut b = [0u8; RECORD_HEADER_BYTES];
    file.read_exact_at(&mut b, offset).ok()?;
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    Some(RawHeader {
        len: u32_at(0),
        crc: u32_at(4),
        kind: b[8],
        event_count: u32_at(12),
        segment_id: u64_at(16),
        offset: u64_at(24),
        first_seq: u64_at(32),
        txn_id: u64_at(40),
    })
}

/// Decodes a record's payload for display. Never panics. An encrypted put record is
/// [`Payload::Sealed`] (with [`OpenFailure::NoKeys`] naming its key): this takes no keys.
pub fn decode_payload(h: &RecordHeader, payload: &[u8]) -> Payload {
    if h.kind == RecordKind::Put && h.is_encrypted() {
        return Payload::Sealed(match sealed_with(payload) {
            Ok(s) => OpenFailure::NoKeys { key_id: s.key_id },
            Err(e) => OpenFailure::Envelope(e),
        });
    }
    decode_plain(h, payload)
}

/// Decodes a plain payload (an encrypted record's once opened).
fn decode_plain(h: &RecordHeader, payload: &[u8]) -> Payload {
    match h.kind {
        RecordKind::Put => {
            let mut events = Vec::new();
            let mut at = 0usize;
            let mut error = None;
            for _ in 0..h.event_count {
                match payload.get(at..).map(event::decode) {
                    Some(Ok((e, used))) => {
                        events.push(e);
                        at += used;
                    }
                    Some(Err(k)) => {
                        error = Some(k);
                        break;
                    }
                    None => {
                        error = Some(CorruptionKind::BadPayload {
                            what: "event runs past the end of the record",
                        });
                        break;
                    }
                }
            }
            Payload::Put { events, error }
        }
        RecordKind::Take => Payload::Take(TakePayload::decode(payload, h.event_count)),
        RecordKind::Seal => Payload::Seal(SealPayload::decode(payload)),
        RecordKind::Gap => Payload::Gap,
    }
}

/// An encrypted record's seal and, with `data`, its payload: opened when keys were given.
pub(crate) fn open_sealed(
    unsealer: &mut Unsealer,
    binding: RecordBinding,
    h: &RecordHeader,
    payload: &[u8],
    data: bool,
) -> (RecordSeal, Option<Payload>) {
    let sealed = sealed_with(payload);
    if !unsealer.has_keys() {
        let decoded = data.then(|| decode_payload(h, payload));
        return (
            RecordSeal {
                sealed_with: sealed,
                opened: None,
            },
            decoded,
        );
    }
    match unsealer.open(binding, h, payload) {
        Ok(plain) => (
            RecordSeal {
                sealed_with: sealed,
                opened: Some(Ok(())),
            },
            data.then(|| decode_plain(h, &plain)),
        ),
        Err(failure) => (
            RecordSeal {
                sealed_with: sealed,
                opened: Some(Err(failure.clone())),
            },
            data.then_some(Payload::Sealed(failure)),
        ),
    }
}

/// Whether a record concerns sequence numbers at or above `from`.
fn wanted(h: &RecordHeader, payload: &[u8], from: u64) -> bool {
    let end = h.first_seq.saturating_add(u64::from(h.event_count));
    match h.kind {
        RecordKind::Put | RecordKind::Gap => end > from,
        RecordKind::Seal => h.first_seq >= from,
        RecordKind::Take => match TakePayload::decode(payload, h.event_count) {
            Ok(t) => t.ranges.iter().any(|&(_, e)| e > from),
            Err(_) => true,
        },
    }
}

/// Dumps `dir` to `sink`. A sink error (e.g. a broken pipe) stops the dump with
/// [`InspectError::Output`].
pub fn dump(
    dir: &ChannelDir,
    opts: &DumpOptions,
    sink: &mut dyn FnMut(DumpItem<'_>) -> io::Result<()>,
) -> Result<DumpSummary, InspectError> {
    let out = |e| InspectError::Output(e);
    let mut summary = DumpSummary::default();
    let mut unsealer = Unsealer::new(opts.keyring.clone());
    if opts.checkpoints {
        for (generation, path) in &dir.checkpoints {
            let (bytes, decoded) = read_checkpoint_file(dir.storage.as_ref(), path);
            sink(DumpItem::Checkpoint {
                path,
                generation: *generation,
                bytes,
                decoded: &decoded,
            })
            .map_err(out)?;
        }
    }
    // Segments whose successor starts at or below `from_seq` hold no wanted put record.
    let mut headers = Vec::with_capacity(dir.segments.len());
    for s in &dir.segments {
        if opts.segment.is_some_and(|id| id != s.id) {
            headers.push(None);
            continue;
        }
        let h = dir
            .segment_header(s)
            .map_err(InspectError::io("read", &s.path))?;
        headers.push(Some(h));
    }
    for (i, s) in dir.segments.iter().enumerate() {
        let Some(Some(header)) = headers.get(i) else {
            continue;
        };
        if let (Some(from), Some(Some(Ok(next)))) = (opts.from_seq, headers.get(i + 1)) {
            if next.first_seq <= from {
                continue;
            }
        }
        if summary.limited {
            break;
        }
        let file = dir
            .storage
            .open(&s.path, false)
            .map_err(InspectError::io("open", &s.path))?;
        let file_bytes = file.len().map_err(InspectError::io("read", &s.path))?;
        summary.segments += 1;
        sink(DumpItem::Segment {
            id: s.id,
            path: &s.path,
            file_bytes,
            header,
        })
        .map_err(out)?;
        let binding = match header {
            Ok(h) => h.binding(),
            Err(_) => binding_behind_lost_header(&file, s.id, &dir.lost_header_bindings())
                .map_err(InspectError::io("read", &s.path))?,
        };
        let mut scanner = Scanner::from_start(file.clone(), s.id, binding);
        loop {
            if opts.limit.is_some_and(|l| summary.records >= l) {
                summary.limited = true;
                break;
            }
            let item = scanner
                .next_item()
                .map_err(InspectError::io("read", &s.path))?;
            match item {
                ScanItem::Record { header, payload } => {
                    if opts
                        .from_seq
                        .is_some_and(|from| !wanted(&header, payload, from))
                    {
                        continue;
                    }
                    let (seal, decoded) = if header.kind == RecordKind::Put && header.is_encrypted()
                    {
                        let (seal, decoded) =
                            open_sealed(&mut unsealer, binding, &header, payload, opts.data);
                        (Some(seal), decoded)
                    } else {
                        (None, opts.data.then(|| decode_plain(&header, payload)))
                    };
                    summary.records += 1;
                    sink(DumpItem::Record {
                        header: &header,
                        payload: decoded.as_ref(),
                        seal: seal.as_ref(),
                    })
                    .map_err(out)?;
                }
                ScanItem::End { offset } => {
                    let later = scanner
                        .find_next_valid(offset + 8)
                        .map_err(InspectError::io("read", &s.path))?;
                    match later {
                        None => {
                            sink(DumpItem::End {
                                segment: s.id,
                                offset,
                                file_bytes,
                            })
                            .map_err(out)?;
                            break;
                        }
                        Some(h) => {
                            summary.bad += 1;
                            let kind = CorruptionKind::BadPayload {
                                what: "zeroed bytes before a later valid record",
                            };
                            sink(DumpItem::Bad {
                                segment: s.id,
                                offset,
                                kind: &kind,
                                raw: None,
                                resumes_at: Some(h.offset),
                            })
                            .map_err(out)?;
                            scanner.seek(h.offset);
                        }
                    }
                }
                ScanItem::Bad { offset, kind } => {
                    let raw = raw_header(&file, offset);
                    let later = scanner
                        .find_next_valid(offset + 8)
                        .map_err(InspectError::io("read", &s.path))?;
                    summary.bad += 1;
                    sink(DumpItem::Bad {
                        segment: s.id,
                        offset,
                        kind: &kind,
                        raw,
                        resumes_at: later.map(|h| h.offset),
                    })
                    .map_err(out)?;
                    match later {
                        Some(h) => scanner.seek(h.offset),
                        None => {
                            sink(DumpItem::End {
                                segment: s.id,
                                offset,
                                file_bytes,
                            })
                            .map_err(out)?;
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(summary)
}
