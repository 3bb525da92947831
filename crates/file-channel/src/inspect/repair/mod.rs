//! `repair`: turns what [`verify`](super::verify) found into a plan, and applies it under the
//! directory lock.
//!
//! What each finding becomes (`docs/operations.md`, "When something broke", is the operator's
//! version of this list):
//!
//! - **Torn tail** of the newest segment: its non-zero bytes are copied to `quarantine/`, then
//!   the file is cut at the end of the last valid record (or removed, for a newest segment whose
//!   header never became durable). Nothing there was acknowledged.
//! - **Damaged range** inside a segment: its bytes are copied to `quarantine/` with a note, then
//!   overwritten in place with gap records (type 4) that fill it exactly and name the lost
//!   sequence numbers, so every later record keeps its offset and checkpoints stay meaningful.
//!   A range longer than one record (64 MiB) gets several. A finished segment whose end is
//!   damaged (no later valid record) gets gap records up to the end of its data and a new seal
//!   record naming the next segment.
//! - **Damaged segment header** of a segment holding records: rebuilt from the file name, the
//!   channel id and the first sequence number (the previous segment's seal, else the segment's
//!   first record, else the next segment's header). Its 64 old bytes are quarantined. The
//!   records inside are intact, so no event is lost; damage inside the segment is found in the
//!   same pass (replay reads through a damaged header), or else repaired in the next round.
//! - **Missing segment** named by a seal: a tombstone segment is created in its place — header,
//!   a gap record for the events that were in it, and a seal naming the next segment — so the
//!   segment ids stay consecutive (checkpoints require it).
//! - **Invalid `channel.meta`**: moved to `quarantine/` and rewritten from the segment headers.
//! - **Checkpoints**: invalid or disagreeing ones are moved to `quarantine/`; a valid one is
//!   kept when nothing below its position is rewritten (it may reflect take commits whose
//!   records never became durable, which the log alone cannot rebuild), otherwise deleted (it
//!   is derived state, and it would not reflect the events the gap records give up); a leftover
//!   `checkpoint.tmp` is removed. After the log is fixed the channel is opened once through the
//!   engine itself (strict mode), which writes a fresh checkpoint, and closed. When damage
//!   below a checkpoint's position forces a rebuild from the log alone, take commits only that
//!   checkpoint reflected (acknowledged within `take_sync_interval_ms` before a crash) are lost
//!   and their events delivered again: at-least-once, never an event lost.
//! - **Orphan segments** a checkpoint had freed are removed first, as open would remove them.
//!
//! What is not repaired (reported, exit 1): damage that replay refuses even in skip mode (e.g. a
//! record after a seal, a sequence going backwards), files of another channel or not what their
//! name says, a damaged header whose first sequence number nothing tells, and a sequence gap
//! with no damaged bytes to write a gap record into.
//!
//! `strict` refuses the whole repair, changing nothing, if the log holds damage (anything that
//! would lose or rewrite log data other than a torn tail); torn tails, checkpoints and the
//! identity file are still repaired.
//!
//! Durability: every file written is fsynced, every directory changed is fsynced, and every
//! byte overwritten was first copied to `quarantine/` and fsynced. A crash during a repair
//! leaves a directory that opens (checkpoints are moved away before the log is touched) and that
//! a second repair finishes. Finally `quarantine/report.json` lists every action and the exact
//! events and bytes lost (a previous report is kept as `report-<unix ms>.json`).
//!
//! The parts: [`plan()`] decides (read-only), `execute` does one action durably, [`apply()`] runs the
//! rounds under the lock and rebuilds the checkpoint, `outcome` holds what was done, `report`
//! shows it to a human and as JSON, `records` frames the gap and seal records, and `action` is
//! the vocabulary they share.

mod action;
mod apply;
mod execute;
mod outcome;
mod plan;
mod records;
mod report;

pub use action::{Action, SealPlan};
pub use apply::apply;
pub use outcome::{Applied, Reopened, RepairOutcome};
pub use plan::{plan, RepairPlan, Unrepairable};
pub use report::problem_json;

/// Most rounds of analyse-and-fix (a rebuilt header can reveal damage behind it).
pub const MAX_REPAIR_ROUNDS: usize = 8;

/// Options of a repair.
#[derive(Clone, Debug, Default)]
pub struct RepairOptions {
    /// Refuse to repair damage in the log (torn tails, checkpoints and identity only).
    pub strict: bool,
}
