//! What a repair did: the actions applied with the files they quarantined, what the reopen
//! through the engine found, verify's verdict afterwards, and the exact losses.

use super::action::Action;
use super::plan::{RepairPlan, Unrepairable};
use crate::inspect::verify::{Problem, VerifyReport};
use std::path::PathBuf;

/// An action done, and where its bytes went.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The action.
    pub action: Action,
    /// Files written to `quarantine/` for it.
    pub quarantined: Vec<PathBuf>,
}

/// What reopening the channel did.
#[derive(Clone, Debug)]
pub struct Reopened {
    /// Events pending after the reopen.
    pub pending_events: u64,
    /// Records the engine replayed.
    pub records: u64,
    /// Segments the engine created (a new active segment after a sealed one).
    pub created_segments: Vec<PathBuf>,
    /// Segments the engine deleted (fully consumed, freed by the new checkpoint).
    pub deleted_segments: Vec<PathBuf>,
    /// Checkpoint files now present.
    pub checkpoints: Vec<PathBuf>,
}

/// What `apply` did.
#[derive(Clone, Debug)]
pub struct RepairOutcome {
    /// The first round's plan (what a dry run shows).
    pub plan: RepairPlan,
    /// Rounds run.
    pub rounds: usize,
    /// Every action done, in order.
    pub applied: Vec<Applied>,
    /// Problems left alone.
    pub unrepairable: Vec<Unrepairable>,
    /// With `strict`: the damage that made it refuse.
    pub refused_strict: Vec<Problem>,
    /// The reopen that rebuilt the checkpoint, if it ran.
    pub reopened: Option<Reopened>,
    /// Why the reopen failed, if it did.
    pub reopen_error: Option<String>,
    /// Verify after the repair.
    pub after: Option<VerifyReport>,
    /// `quarantine/report.json`, if written.
    pub report_path: Option<PathBuf>,
}

impl RepairOutcome {
    /// Events lost (given up for damage), exactly.
    pub fn events_lost(&self) -> u64 {
        // The loss verify counted before the repair: one ledger in every view, also where the
        // events are gone with no bytes left to write a gap record over. Not the sequence
        // ranges the gap records cover (they can include consumed events), and not again for
        // the rounds that repair what a rebuilt header revealed (verify's replay rebuilds
        // headers too, so the first count already holds it).
        self.plan.events_lost()
    }

    /// Damaged bytes replaced by gap records.
    pub fn bytes_lost(&self) -> u64 {
        self.applied
            .iter()
            .map(|a| match &a.action {
                Action::FillWithGap { damaged_bytes, .. } => *damaged_bytes,
                _ => 0,
            })
            .sum()
    }

    /// Torn-tail bytes cut (never acknowledged).
    pub fn torn_bytes(&self) -> u64 {
        self.applied
            .iter()
            .map(|a| match &a.action {
                Action::TruncateTornTail { bytes, .. }
                | Action::RemoveTornSegment { bytes, .. } => *bytes,
                _ => 0,
            })
            .sum()
    }

    /// Whether the directory verifies clean now.
    pub fn is_clean(&self) -> bool {
        self.refused_strict.is_empty()
            && self.unrepairable.is_empty()
            && self.reopen_error.is_none()
            && !matches!(&self.after, Some(a) if a.is_corrupt())
    }
}
