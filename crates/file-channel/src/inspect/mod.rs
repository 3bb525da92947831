//! Inspection and repair of channel directories: the library behind the `chanctl` tool.
//!
//! The tool is a thin front; everything it shows or does is computed here, with the same parser
//! the channel uses, so the tool and the engine can never disagree about where a record starts,
//! what a torn tail is or how many events a damaged range cost:
//!
//! - [`verify`]: a read-only full replay of the log ([`crate::replay::replay`] with
//!   `ignore_checkpoints`), a second pass over every segment with the engine's
//!   [`Scanner`](crate::segment::scan::Scanner) for per-segment figures and the sequence state at
//!   every position a checkpoint names, and a check of every checkpoint against that log.
//! - [`dump`]: records in log order, decoded, streamed to a callback.
//! - [`stat`] and [`replay_view`]: what opening the channel would do, without writing; `stat`
//!   also lists the keys pending records were sealed with ([`pending::KeyReferences`]).
//! - [`pending`]: the pending events in the order a reader takes them (`replay --data`).
//!
//! Encrypted records ([`encrypted`]): every command reads which key sealed a record without a
//! key; `verify`, `dump` and [`pending`] take keys to authenticate records and show bodies;
//! `repair` never needs one and never drops a record over a key problem.
//! - [`repair`]: a plan built from [`verify`]'s findings, applied under the directory lock.
//!
//! Limits, stated once: nothing here writes unless [`repair::apply`] is called; every length
//! read from disk is bounded before it is used (checkpoint files above
//! [`MAX_CHECKPOINT_FILE_BYTES`] are not read); no input makes these functions panic — damage is
//! a value ([`verify::Problem`]), operating errors are [`InspectError`]s.

mod channel_dir;
pub mod dump;
pub mod encrypted;
mod error;
pub mod json;
pub mod lock;
pub mod pending;
pub mod repair;
pub mod stat;
pub mod verify;
mod view_storage;
mod walk;

pub(crate) use channel_dir::{
    check_obstacles, not_a_directory, not_a_regular_file, read_checkpoint_file, read_segment_header,
};
pub use channel_dir::{
    ChannelDir, CheckpointFile, CheckpointReadError, MetaState, MAX_CHECKPOINT_FILE_BYTES,
};
pub use error::InspectError;
pub use stat::{replay_view, stat, ReplayView, StatReport};
pub use verify::{verify, VerifyReport};

use crate::format::CorruptionKind;

/// A short machine-readable name of a corruption kind (for JSON output).
pub fn kind_code(kind: &CorruptionKind) -> &'static str {
    match kind {
        CorruptionKind::Truncated { .. } => "truncated",
        CorruptionKind::BadLength { .. } => "bad_length",
        CorruptionKind::BadChecksum { .. } => "bad_checksum",
        CorruptionKind::BadMagic => "bad_magic",
        CorruptionKind::UnsupportedVersion { .. } => "unsupported_version",
        CorruptionKind::WrongSegment { .. } => "wrong_segment",
        CorruptionKind::WrongOffset { .. } => "wrong_offset",
        CorruptionKind::WrongChannel { .. } => "wrong_channel",
        CorruptionKind::UnknownRecordType { .. } => "unknown_record_type",
        CorruptionKind::BadPayload { .. } => "bad_payload",
        CorruptionKind::SequenceGap { .. } => "sequence_gap",
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The host name, for lock files and reports.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "an unknown host".to_owned())
}
