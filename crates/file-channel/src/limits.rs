//! Every bound of the engine as a named constant, related to each other by compile-time asserts.
//!
//! Each length read from disk is checked against one of these before anything is allocated, and
//! each value a caller configures is validated against them, so no input can make the engine
//! allocate without bound.
//!
//! The bounds that involve the sizes of on-disk headers are asserted in `format`, which knows
//! them, so this module imports nothing.

/// Largest record (header included) the engine writes or accepts when reading: 64 MiB.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// Largest encoded event (headers and body with their length fields): 32 MiB.
pub const MAX_EVENT_BYTES: u64 = 32 << 20;

/// Most headers one event may carry.
pub const MAX_HEADERS_PER_EVENT: usize = 1024;

/// Longest header key or value in bytes (stored with a 16-bit length).
pub const MAX_HEADER_FIELD_BYTES: usize = u16::MAX as usize;

/// Most events one transaction may hold (upper bound for `transaction_capacity`).
pub const MAX_EVENTS_PER_TXN: u32 = 1_000_000;

/// Largest segment file: 16 GiB.
pub const MAX_SEGMENT_BYTES: u64 = 16 << 30;

/// Smallest configurable segment size: 4 KiB, so tests can rotate often.
pub const MIN_SEGMENT_BYTES: u64 = 4 << 10;

/// Most segment files a channel keeps at once; opening a directory with more is refused.
pub const MAX_SEGMENTS: usize = 1 << 20;

/// Most sequence ranges one take record lists.
pub const MAX_TAKE_RANGES: u32 = MAX_EVENTS_PER_TXN;

/// Smallest encoded event: body length (4) + header count (2).
pub const MIN_EVENT_BYTES: u64 = 6;

/// Alignment of every record's start offset inside a segment.
pub const RECORD_ALIGN_BYTES: u64 = 8;

const _: () = assert!(
    MAX_RECORD_BYTES <= u32::MAX as u64,
    "record length is stored in 32 bits"
);
const _: () = assert!(
    (MAX_EVENTS_PER_TXN as u64) * MIN_EVENT_BYTES <= MAX_RECORD_BYTES,
    "a full transaction of the smallest events must fit in one record"
);
const _: () = assert!(MAX_HEADER_FIELD_BYTES <= u16::MAX as usize);
const _: () = assert!((16 + 4) * (MAX_TAKE_RANGES as u64) <= MAX_RECORD_BYTES);
