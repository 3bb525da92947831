//! [`OpenReport`]: what opening a channel found and did, built from the replay's outcome.

use crate::replay::{Damage, ReplayStart, Replayed, TornTail};
use std::path::PathBuf;

/// What opening the channel found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Where replay started (checkpoint or full) and which checkpoints were refused, and why.
    pub start: ReplayStart,
    /// Damage skipped (in skip mode) with its location and the events it cost.
    pub damage: Vec<Damage>,
    /// Events lost to that damage.
    pub events_lost: u64,
    /// Orphan segments removed.
    pub orphans: Vec<PathBuf>,
    /// Segment files replayed.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Events pending after replay.
    pub pending_events: u64,
    /// The torn tail cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// Milliseconds spent replaying.
    pub replay_ms: u64,
}

impl OpenReport {
    /// The report of an open whose replay gave `r`.
    pub(crate) fn of(r: &Replayed) -> Self {
        Self {
            start: r.start.clone(),
            damage: r.damage.clone(),
            events_lost: r.events_lost_now(),
            orphans: r.orphans.clone(),
            segments: r.segments.len(),
            records: r.records,
            pending_events: r.pending_events(),
            torn_tail: r.torn_tail.clone(),
            replay_ms: r.took.as_millis() as u64,
        }
    }
}
