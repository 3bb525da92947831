//! # file_channel — Sluice's durable write-ahead-log channel
//!
//! A channel is a durable FIFO queue of [`Event`]s with Flume's transaction semantics:
//! producers put events in *put transactions*, consumers take them in *take transactions*,
//! and nothing is visible to takers before its commit is durable. Events live in segmented,
//! checksummed, append-only log files; the in-memory queue is only a position in those logs,
//! so memory does not grow with the number of pending events.
//!
//! ```no_run
//! use file_channel::{ChannelConfig, Event, FileChannel};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = FileChannel::open(ChannelConfig::new("/var/lib/sluice/c1"))?;
//! let mut tx = channel.transaction();
//! tx.put(&Event::new("hello").with_header("host", "web-1"))?;
//! tx.commit()?; // durable once this returns
//!
//! let mut tx = channel.transaction();
//! let event = tx.take()?.expect("just committed");
//! assert_eq!(event.body, b"hello");
//! tx.commit()?; // consumed
//! channel.close()?;
//! # Ok(()) }
//! ```
//!
//! See `docs/design.md` for the paths and invariants and `docs/format.md` for the bytes.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod channel;
mod checkpoint;
pub mod config;
pub mod consumed;
mod decrypt_ahead;
pub mod encryption;
mod error;
mod event;
pub mod flume_files;
pub mod format;
pub mod identity;
pub mod inspect;
mod keys_at_open;
pub mod limits;
mod metrics;
mod open;
mod open_report;
mod poison;
pub mod quarantine;
mod queue;
pub mod replay;
mod running;
pub mod segment;
mod segment_deletion;
mod shared;
mod space_reserve;
pub mod storage;
mod take_inbox;
mod txn;
mod writer;

pub use channel::FileChannel;
pub use config::{ChannelConfig, RecoveryMode, SyncPolicy};
pub use error::{
    CloseError, CommitError, Corruption, FullLimit, IoFailure, KeyProblem, OpenError, PoisonCause,
    Poisoned, PutError, TakeError,
};
pub use event::Event;
pub use metrics::ChannelMetrics;
pub use open_report::OpenReport;
pub use txn::{PendingCommit, Transaction};
