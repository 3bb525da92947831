//! The byte-level on-disk format: segment headers, record frames and the event encoding.
//!
//! Everything is little-endian. `docs/format.md` is the specification this module implements;
//! the encoders assert what the decoders re-check, and the decoders never panic or allocate
//! more than a bound from [`crate::limits`] on any input.

pub mod checkpoint;
pub mod event;
pub mod record;
pub mod segment_header;

use crate::limits::{
    MAX_EVENT_BYTES, MAX_RECORD_BYTES, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, RECORD_ALIGN_BYTES,
};
use record::RECORD_HEADER_BYTES;
use segment_header::SEGMENT_HEADER_BYTES;
use std::fmt;

// The engine's bounds (`crate::limits`) against the sizes of the format's headers.
const _: () = assert!(MAX_EVENT_BYTES + RECORD_HEADER_BYTES as u64 <= MAX_RECORD_BYTES);
const _: () = assert!(MIN_SEGMENT_BYTES > (SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES) as u64);
const _: () = assert!(MAX_SEGMENT_BYTES >= MAX_RECORD_BYTES + SEGMENT_HEADER_BYTES as u64);
const _: () = assert!((RECORD_HEADER_BYTES as u64).is_multiple_of(RECORD_ALIGN_BYTES));
const _: () = assert!((SEGMENT_HEADER_BYTES as u64).is_multiple_of(RECORD_ALIGN_BYTES));

/// The format version new segment headers and new `channel.meta` files are written in. See
/// `docs/format.md` for the history; version 2 binds every record to its channel, version 3
/// adds encrypted put records.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest format version this build reads (and keeps appending to: a format-1 segment
/// that is still open gets format-1 records).
pub const OLDEST_READABLE_FORMAT_VERSION: u32 = 1;

/// What is wrong with a stretch of bytes on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The bytes end before the structure does.
    Truncated {
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// A length field is out of its bounds.
    BadLength {
        /// The length found.
        len: u64,
    },
    /// A checksum does not match the bytes it covers.
    BadChecksum {
        /// The checksum stored on disk.
        expected: u32,
        /// The checksum of the bytes as read.
        actual: u32,
    },
    /// The magic bytes are not Sluice's.
    BadMagic,
    /// A format version this build cannot read.
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The record names another segment (a stale record from a recycled file, or misplaced bytes).
    WrongSegment {
        /// The segment id in the record.
        found: u64,
    },
    /// The record names another offset than the one it was read from.
    WrongOffset {
        /// The offset in the record.
        found: u64,
    },
    /// The segment belongs to another channel.
    WrongChannel {
        /// The channel id found.
        found: u64,
    },
    /// An unknown record type byte.
    UnknownRecordType {
        /// The type byte found.
        kind: u8,
    },
    /// The payload does not decode as its record type says.
    BadPayload {
        /// What is wrong.
        what: &'static str,
    },
    /// Sequence numbers are not contiguous: events are missing.
    SequenceGap {
        /// The sequence number expected next.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} present")
            }
            Self::BadLength { len } => write!(f, "length {len} out of bounds"),
            Self::BadChecksum { expected, actual } => write!(
                f,
                "checksum mismatch: stored {expected:#010x}, computed {actual:#010x}"
            ),
            Self::BadMagic => write!(f, "bad magic bytes"),
            Self::UnsupportedVersion { version } => {
                write!(f, "unsupported format version {version}")
            }
            Self::WrongSegment { found } => write!(f, "record belongs to segment {found}"),
            Self::WrongOffset { found } => write!(f, "record claims offset {found}"),
            Self::WrongChannel { found } => write!(f, "belongs to channel {found:#018x}"),
            Self::UnknownRecordType { kind } => write!(f, "unknown record type {kind}"),
            Self::BadPayload { what } => write!(f, "bad payload: {what}"),
            Self::SequenceGap { expected, found } => write!(
                f,
                "sequence gap: expected {expected}, found {found} ({} events missing)",
                found.saturating_sub(*expected)
            ),
        }
    }
}

/// Little-endian field access on a byte slice whose length the caller has checked.
pub(crate) mod le {
    use byteorder::{ByteOrder, LittleEndian};

    pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
        LittleEndian::read_u16(&b[at..at + 2])
    }
    pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
        LittleEndian::read_u32(&b[at..at + 4])
    }
    pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
        LittleEndian::read_u64(&b[at..at + 8])
    }
    pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
        LittleEndian::write_u16(&mut b[at..at + 2], v);
    }
    pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
        LittleEndian::write_u32(&mut b[at..at + 4], v);
    }
    pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
        LittleEndian::write_u64(&mut b[at..at + 8], v);
    }
}
