//! The loss ledger: what the checkpoints knew was committed, against what the log still holds.
//!
//! Every checkpoint file that decodes and names this channel is evidence, whether replay
//! started from it or refused it: events in `[low_water_mark, next_seq)` that it does not list
//! as consumed were acknowledged and pending when it was written. Consumption only grows, so
//! the union of what the checkpoints and the log's take records say is consumed is consumed
//! (take records of events older than the first surviving segment included: they are how a
//! refused older checkpoint's pending events are known delivered when a newer checkpoint that
//! freed their segments is damaged).
//!
//! After the segments are replayed, committed events the log no longer holds are counted lost:
//! below the first surviving segment (the oldest was deleted), beyond the last surviving record
//! (the newest segment was deleted, truncated or overwritten), or — with no segment left — all
//! of them. Each loss is a [`CorruptionKind::SequenceGap`] damage (or is added to the damage
//! that explains it), so every view built on replay — open, `chanctl replay`, `verify`, the
//! repair plan, `report.json`, the metrics and the log — reports the same number. Jumps inside
//! the log are counted by `apply` with the same rule: only events no evidence lists as
//! consumed.
//!
//! The ledger never counts what nothing durable knew of: events past the last commit a
//! checkpoint or a record vouches for are a torn tail, not a loss.

use super::State;
use crate::consumed::ConsumedSet;
use crate::error::OpenError;
use crate::format::checkpoint::Checkpoint;
use crate::format::CorruptionKind;
use std::path::Path;

impl State<'_> {
    /// The checkpoints that are evidence for this channel.
    fn evidence(&self) -> impl Iterator<Item = &Checkpoint> + '_ {
        let id = self.channel_id;
        self.evidence
            .iter()
            .filter(move |cp| id.is_none_or(|id| id == cp.channel_id))
    }

    /// Whether any checkpoint of this channel is evidence.
    pub(super) fn has_evidence(&self) -> bool {
        self.evidence().next().is_some()
    }

    /// What the checkpoints say is consumed: everything below the highest low-water mark, and
    /// every range any of them lists.
    fn known_consumed(&self) -> ConsumedSet {
        let lwm = self
            .evidence()
            .map(|cp| cp.low_water_mark)
            .max()
            .unwrap_or(0);
        let mut known = ConsumedSet::new(lwm);
        for cp in self.evidence() {
            for &(s, e) in &cp.ranges {
                known.insert(s, e);
            }
        }
        known
    }

    /// The lifetime count of lost events the newest evidence carries.
    pub(super) fn evidence_events_lost(&self) -> u64 {
        self.evidence()
            .max_by_key(|cp| cp.generation)
            .map_or(0, |cp| cp.events_lost)
    }

    /// Events of `[start, end)` that no checkpoint lists as consumed.
    pub(super) fn unconsumed_in(&self, start: u64, end: u64) -> u64 {
        if start >= end {
            return 0;
        }
        (end - start) - self.known_consumed().count_in(start, end)
    }

    /// Whether a checkpoint knew segment `id` (so its header had been made durable, and a
    /// newest segment without a readable header is damage, not a torn creation).
    pub(super) fn header_known_durable(&self, id: u64) -> bool {
        self.evidence()
            .any(|cp| cp.position.0 >= id || cp.read_start.0 >= id)
    }

    /// How far into segment `id` a checkpoint knew the log was durable: its position when it
    /// lies in that segment, the whole segment when it lies in a later one.
    pub(super) fn durable_known_in(&self, id: u64) -> Option<u64> {
        self.evidence()
            .filter(|cp| cp.position.0 >= id)
            .map(|cp| {
                if cp.position.0 == id {
                    cp.position.1
                } else {
                    u64::MAX
                }
            })
            .max()
    }

    /// Counts `lost` events as the loss of `[expected, found)`: added to the damage that
    /// explains the gap when there is one, else recorded as a sequence gap at `file`.
    fn count_loss(
        &mut self,
        file: &Path,
        segment: u64,
        offset: u64,
        expected: u64,
        found: u64,
        lost: u64,
    ) -> Result<(), OpenError> {
        if lost == 0 {
            return Ok(());
        }
        tracing::error!(file = %file.display(), segment, first_seq = expected, end_seq = found,
            events_lost = lost, "committed events the log no longer holds");
        if self.gap_owner.is_none() {
            let c = self.corrupt(
                file,
                segment,
                offset,
                CorruptionKind::SequenceGap { expected, found },
            );
            self.damage(c, None, 0)?;
        }
        if let Some(i) = self.gap_owner.take() {
            self.out.damage[i].events_lost += lost;
        }
        Ok(())
    }

    /// Settles the ledger after the last segment: counts committed events below the first
    /// surviving segment and beyond the last surviving record, moves the sequence past them,
    /// and marks consumed what the checkpoints knew was consumed.
    pub(super) fn settle_ledger(&mut self) -> Result<(), OpenError> {
        if self.evidence().next().is_none() {
            return Ok(());
        }
        let known = self.known_consumed();
        let committed_end = self.evidence().map(|cp| cp.next_seq).max().unwrap_or(0);
        let first = self.out.segments.first().map(|s| (s.id, s.path.clone()));
        let last = self
            .out
            .segments
            .last()
            .map(|s| (s.id, s.path.clone(), s.end));
        if !self.started {
            // No segment is left: every pending event the checkpoints knew of is gone.
            let from = known.low_water_mark();
            self.out.next_seq = from;
            self.out.consumed = ConsumedSet::new(from);
            self.started = true;
            self.log_start = Some(from);
        }
        // Head: the oldest surviving segment starts above events that were still pending.
        if let (Some(start), Some((id, path))) = (self.log_start, first.clone()) {
            let from = known.low_water_mark();
            let to = start.min(committed_end);
            if to > from {
                let mut delivered = known.clone();
                let taken = &self.taken_below_start;
                delivered.insert(0, taken.low_water_mark());
                for (s, e) in taken.ranges() {
                    delivered.insert(s, e);
                }
                let lost = (to - from) - delivered.count_in(from, to);
                self.gap_owner = None;
                self.count_loss(&path, id, 0, from, start, lost)?;
            }
        }
        // Tail: the log ends before the last commit a checkpoint knew of.
        let next = self.out.next_seq;
        if committed_end > next {
            let lost = (committed_end - next) - known.count_in(next, committed_end);
            let (id, path, end) = last.unwrap_or((0, self.dir.clone(), 0));
            self.count_loss(&path, id, end, next, committed_end, lost)?;
            self.out.consumed.insert(next, committed_end);
            self.out.next_seq = committed_end;
        }
        // What the checkpoints knew was consumed stays consumed, even where the take records
        // that said so are gone.
        let next = self.out.next_seq;
        self.out
            .consumed
            .insert(0, known.low_water_mark().min(next));
        for (s, e) in known.ranges() {
            if s < next {
                self.out.consumed.insert(s, e.min(next));
            }
        }
        Ok(())
    }
}
