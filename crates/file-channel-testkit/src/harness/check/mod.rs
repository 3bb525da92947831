//! The invariants every layer checks, in one place: the [`Ledger`] of what the workload was
//! told, and [`Ledger::check`] of what a recovery produced against it.
//!
//! Events carry their id in a header and in a body derived from the id, so a recovered event
//! proves its own integrity ([`id_of`]). After a recovery, with `R` the recovered ids:
//!
//! * **lost**: an acknowledged put that no acknowledged take commit consumed is missing from
//!   `R`, beyond the events the engine itself reported as lost to damage. Must be 0.
//! * **phantom**: an id in `R` that was never committed (rolled back, failed before its commit,
//!   or never issued), or that was consumed by a take commit known to be durable. Must be 0.
//! * **damaged**: a recovered body or header that differs from what was put. Must be 0.
//! * **order**: `R` is not in commit order. Must not happen. With concurrent committers only
//!   part of the order is known: a put commit that was answered before another one began must
//!   come first ([`Ledger::put_begun`]).
//! * **twice**: an id appears twice in `R`. Must not happen.
//! * **partial**: a put transaction in doubt is recovered in part. Must not happen.
//! * **decrypt failures**: with encryption on, an encrypted record the recovered channel could
//!   not open (a missing or wrong key, or damage taken for tampering: a good checksum whose
//!   authentication fails). Damage must be counted as damage. Must be 0
//!   ([`Check::count_decrypt_failures`]).
//! * **duplicates by cause**: ids present that the caller may already have seen or given up on,
//!   allowed by the contract (at-least-once) and counted per cause ([`Cause`]).
//!
//! The sums over many checks ([`Tally`]) are in the `tally` module.

mod tally;
#[cfg(test)]
mod tests;

pub use tally::{json_str, Tally, MAX_FAILURES_KEPT};

use file_channel::{Event, FileChannel, TakeError, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;

/// Why an event may legitimately be recovered although the caller was not promised it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// Consumed by an acknowledged take commit whose record was not yet durable.
    TakeNotDurable,
    /// A take commit was in progress at the crash.
    TakeInFlight,
    /// A put commit failed because an fsync failed (the channel was poisoned).
    PutFsyncFailed,
    /// A put commit failed with a write error (ENOSPC).
    PutWriteFailed,
    /// A put commit was in progress at the crash (no answer yet).
    PutInFlight,
    /// Consumed by a durable take commit whose record media damage destroyed (by design only
    /// redelivery, `docs/design.md`).
    TakeRecordDamaged,
}

impl Cause {
    /// Every cause, for reports.
    pub const ALL: [Cause; 6] = [
        Cause::TakeNotDurable,
        Cause::TakeInFlight,
        Cause::PutFsyncFailed,
        Cause::PutWriteFailed,
        Cause::PutInFlight,
        Cause::TakeRecordDamaged,
    ];

    /// The name used in JSON summaries.
    pub fn name(self) -> &'static str {
        match self {
            Cause::TakeNotDurable => "take_commit_not_durable",
            Cause::TakeInFlight => "take_commit_in_flight",
            Cause::PutFsyncFailed => "put_commit_fsync_failed",
            Cause::PutWriteFailed => "put_commit_write_failed",
            Cause::PutInFlight => "put_commit_in_flight",
            Cause::TakeRecordDamaged => "take_record_damaged",
        }
    }
}

/// The event with id `id`: an `id` header and a body of 8 id bytes plus a filler derived from
/// the id (`extra` selects a size class: 0 → up to 300 bytes, larger values give bigger bodies).
pub fn event(id: u64) -> Event {
    Event::new(body(id)).with_header("id", id.to_string())
}

/// The body of event `id`.
pub fn body(id: u64) -> Vec<u8> {
    let mut b = id.to_le_bytes().to_vec();
    let filler = match id % 17 {
        0 => 1500 + id % 1000, // now and then a record spanning sectors
        _ => id % 300,
    };
    b.extend((0..filler).map(|i| (i as u8) ^ (id as u8).wrapping_mul(31)));
    b
}

/// What a recovered channel holds, without consuming it: the ids of every pending event in
/// order, and how many events came back damaged ([`id_of`] failed). Takes everything in as many
/// transactions as `transaction_capacity` requires, then rolls them all back.
///
/// # Errors
/// The first take that fails for another reason than a full transaction.
pub fn peek_all(ch: &FileChannel) -> Result<(Vec<u64>, u64), TakeError> {
    let mut done: Vec<Transaction> = Vec::new();
    let mut tx = ch.transaction();
    let mut ids = Vec::new();
    let mut damaged = 0;
    loop {
        match tx.take() {
            Ok(Some(e)) => match id_of(&e) {
                Ok(id) => ids.push(id),
                Err(_) => damaged += 1,
            },
            Ok(None) => break,
            Err(TakeError::TransactionFull { .. }) => {
                done.push(std::mem::replace(&mut tx, ch.transaction()));
            }
            Err(e) => return Err(e),
        }
    }
    tx.rollback();
    for t in done.into_iter().rev() {
        t.rollback();
    }
    Ok((ids, damaged))
}

/// The id of a recovered event, or a description of its damage.
pub fn id_of(e: &Event) -> Result<u64, String> {
    if e.body.len() < 8 {
        return Err(format!("body of {} bytes is too short", e.body.len()));
    }
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&e.body[..8]);
    let id = u64::from_le_bytes(raw);
    if e.body != body(id) {
        return Err(format!("body of event {id} damaged"));
    }
    if e.header("id") != Some(id.to_string().as_str()) || e.headers.len() != 1 {
        return Err(format!("headers of event {id} damaged"));
    }
    Ok(id)
}

/// What the workload knows about one event id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Acknowledged put, not consumed: must be recovered.
    Acked,
    /// May or may not be recovered, for this reason.
    Maybe(Cause),
    /// Consumed by a durable take commit: must never appear again (unless media damage hit
    /// the take record, [`Ledger::with_damaged_take_records`]).
    Consumed,
    /// Never to appear again: an in-doubt put that did not come back, or an event lost to
    /// reported damage.
    Gone,
}

/// What a workload was told, in commit order: the model every recovery is checked against.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    status: BTreeMap<u64, Status>,
    /// For every id that ever had a status: when its put commit began and was answered, on the
    /// ledger's clock (the same tick for a commit that was not reported as begun), and its
    /// place in that commit. The answer tick also names the commit.
    order: BTreeMap<u64, (u64, u64, usize)>,
    next_order: u64,
    /// Put commits that began and have not been answered yet, by first id: their ids and the
    /// tick they began at.
    begun: BTreeMap<u64, (Vec<u64>, u64)>,
    /// Put transactions in doubt: all or nothing of each.
    groups: Vec<Vec<u64>>,
    /// Acknowledged, unconsumed ids in commit order (what a taker sees).
    queue: Vec<u64>,
    /// Ids consumed by acknowledged take commits not yet known to be durable: what
    /// [`Ledger::takes_durable`] settles, without walking every id the ledger ever saw (the
    /// `kill` layer's ledger keeps growing, and every put acknowledgement settles them).
    takes_not_durable: Vec<u64>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    fn assign_order(&mut self, ids: &[u64]) {
        let answered = self.tick();
        let began = ids
            .first()
            .and_then(|first| self.begun.remove(first))
            .map_or(answered, |(_, began)| began);
        for (index, &id) in ids.iter().enumerate() {
            self.order.insert(id, (began, answered, index));
        }
    }

    /// A put commit of `ids` began (its answer comes later, through [`Ledger::put_acked`] or
    /// [`Ledger::put_in_doubt`]). Only needed with concurrent committers: commits whose
    /// begin-to-answer spans overlap may be recovered in either order.
    pub fn put_begun(&mut self, ids: &[u64]) {
        let began = self.tick();
        if let Some(&first) = ids.first() {
            self.begun.insert(first, (ids.to_vec(), began));
        }
    }

    /// Every put commit that began and got no answer (the process died): in doubt for `cause`.
    pub fn unanswered_puts_in_doubt(&mut self, cause: Cause) {
        let unanswered: Vec<Vec<u64>> = self.begun.values().map(|(ids, _)| ids.clone()).collect();
        for ids in unanswered {
            self.put_in_doubt(&ids, cause);
        }
    }

    /// A put commit of `ids` was acknowledged. Its fsync made every earlier take commit durable
    /// (an empty put commit syncs nothing, so it changes nothing).
    pub fn put_acked(&mut self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        self.assign_order(ids);
        for &id in ids {
            self.status.insert(id, Status::Acked);
        }
        self.queue.extend_from_slice(ids);
        self.takes_durable();
    }

    /// A put commit of `ids` failed or had no answer: all or none of it may be recovered.
    pub fn put_in_doubt(&mut self, ids: &[u64], cause: Cause) {
        if ids.is_empty() {
            return;
        }
        self.assign_order(ids);
        for &id in ids {
            self.status.insert(id, Status::Maybe(cause));
        }
        self.groups.push(ids.to_vec());
    }

    /// A take commit of `ids` was acknowledged; its record may not be durable yet.
    pub fn take_acked(&mut self, ids: &[u64]) {
        self.take_with(ids, Cause::TakeNotDurable);
    }

    /// A take commit of `ids` was started but not answered.
    pub fn take_in_flight(&mut self, ids: &[u64]) {
        self.take_with(ids, Cause::TakeInFlight);
    }

    fn take_with(&mut self, ids: &[u64], cause: Cause) {
        let set: BTreeSet<u64> = ids.iter().copied().collect();
        for &id in ids {
            if let Some(s) = self.status.get_mut(&id) {
                if *s == Status::Acked {
                    *s = Status::Maybe(cause);
                    if cause == Cause::TakeNotDurable {
                        self.takes_not_durable.push(id);
                    }
                }
            }
        }
        self.queue.retain(|id| !set.contains(id));
    }

    /// Every acknowledged take commit so far is durable (a put commit, a sync or a clean close
    /// followed it).
    pub fn takes_durable(&mut self) {
        for id in std::mem::take(&mut self.takes_not_durable) {
            if let Some(s) = self.status.get_mut(&id) {
                if *s == Status::Maybe(Cause::TakeNotDurable) {
                    *s = Status::Consumed;
                }
            }
        }
    }

    /// This ledger as a check after media damage: events consumed by durable take commits may
    /// come back, since a damaged take record only costs redelivery.
    pub fn with_damaged_take_records(&self) -> Ledger {
        let mut l = self.clone();
        for s in l.status.values_mut() {
            if *s == Status::Consumed {
                *s = Status::Maybe(Cause::TakeRecordDamaged);
            }
        }
        l
    }

    /// Acknowledged, unconsumed ids in commit order: what takers must see, in this order.
    pub fn queue(&self) -> &[u64] {
        &self.queue
    }

    /// Ids that must be recovered.
    pub fn acknowledged(&self) -> usize {
        self.queue.len()
    }

    /// Checks a recovery: `recovered` are the ids read back in order, `damaged` the number of
    /// events whose body or headers did not match, `reported_lost` the events the engine said
    /// it lost to damage (`OpenReport::events_lost`).
    pub fn check(&self, recovered: &[u64], damaged: u64, reported_lost: u64) -> Check {
        let mut c = Check {
            acknowledged: self.queue.len() as u64,
            recovered: recovered.len() as u64,
            damaged,
            reported_lost,
            ..Check::default()
        };
        if damaged > 0 {
            c.violations
                .push(format!("{damaged} recovered events have damaged bodies"));
        }
        let mut seen = BTreeSet::new();
        for &id in recovered {
            if !seen.insert(id) {
                c.twice += 1;
                c.violations.push(format!("event {id} recovered twice"));
                continue;
            }
            match self.status.get(&id) {
                None => {
                    c.phantoms += 1;
                    c.violations
                        .push(format!("event {id} recovered but never committed"));
                }
                Some(Status::Consumed) => {
                    c.phantoms += 1;
                    c.violations.push(format!(
                        "event {id} recovered after a durable take commit consumed it"
                    ));
                }
                Some(Status::Gone) => {
                    c.phantoms += 1;
                    c.violations.push(format!(
                        "event {id} recovered after an earlier recovery did not have it"
                    ));
                }
                Some(Status::Maybe(cause)) => {
                    *c.duplicates.entry(*cause).or_default() += 1;
                }
                Some(Status::Acked) => {}
            }
        }
        let missing: Vec<u64> = self
            .queue
            .iter()
            .copied()
            .filter(|id| !seen.contains(id))
            .collect();
        let missing_n = missing.len() as u64;
        c.lost_to_reported_damage = missing_n.min(reported_lost);
        c.lost = missing_n - c.lost_to_reported_damage;
        if c.lost > 0 {
            c.violations.push(format!(
                "{} acknowledged events lost (engine reported {reported_lost} lost to damage): first {:?}",
                c.lost,
                &missing[..missing.len().min(10)]
            ));
        }
        for g in &self.groups {
            let present = g.iter().filter(|id| seen.contains(id)).count();
            if present != 0 && present != g.len() {
                c.partial += 1;
                c.violations.push(format!(
                    "put transaction {:?} recovered in part ({present} of {})",
                    &g[..g.len().min(5)],
                    g.len()
                ));
            }
        }
        // Out of order: an id whose commit was answered before the commit of an id recovered
        // ahead of it began, or that comes after a later id of its own commit.
        let mut latest_begin: Option<u64> = None;
        let mut last_index: BTreeMap<u64, usize> = BTreeMap::new();
        for &id in recovered {
            if let Some(&(began, answered, index)) = self.order.get(&id) {
                let before_a_later_commit = latest_begin.is_some_and(|b| answered < b);
                let behind_in_its_commit = last_index.get(&answered).is_some_and(|&i| index <= i);
                last_index.insert(answered, index);
                if before_a_later_commit || behind_in_its_commit {
                    c.order_violations += 1;
                    c.violations
                        .push(format!("event {id} recovered out of commit order"));
                }
                latest_begin = Some(latest_begin.map_or(began, |b| b.max(began)));
            }
        }
        c
    }

    /// After a recovery: the recovered ids become the acknowledged queue (in recovered order),
    /// and everything else that was ever committed must never appear again.
    pub fn reset_to(&mut self, recovered: &[u64]) {
        for s in self.status.values_mut() {
            *s = match *s {
                // Not recovered: the take record (or a checkpoint) says consumed.
                Status::Consumed
                | Status::Maybe(Cause::TakeNotDurable | Cause::TakeInFlight)
                | Status::Maybe(Cause::TakeRecordDamaged) => Status::Consumed,
                _ => Status::Gone,
            };
        }
        let mut queue = Vec::with_capacity(recovered.len());
        for &id in recovered {
            if self.order.contains_key(&id) && self.status.insert(id, Status::Acked).is_some() {
                queue.push(id);
            }
        }
        self.queue = queue;
        self.groups.clear();
        self.begun.clear();
        self.takes_not_durable.clear();
    }
}

/// The verdict on one recovery.
#[derive(Clone, Debug, Default)]
pub struct Check {
    /// Acknowledged, unconsumed events that had to be recovered.
    pub acknowledged: u64,
    /// Events recovered.
    pub recovered: u64,
    /// Acknowledged events missing beyond what the engine reported lost. Must be 0.
    pub lost: u64,
    /// Acknowledged events missing and accounted for by the engine's damage report.
    pub lost_to_reported_damage: u64,
    /// What the engine reported lost to damage.
    pub reported_lost: u64,
    /// Events recovered that must not exist. Must be 0.
    pub phantoms: u64,
    /// Events with a damaged body or header. Must be 0.
    pub damaged: u64,
    /// Ids recovered twice. Must be 0.
    pub twice: u64,
    /// In-doubt transactions recovered in part. Must be 0.
    pub partial: u64,
    /// Recovered events out of commit order. Must be 0.
    pub order_violations: u64,
    /// Encrypted records a reader of the recovered channel could not open (missing or wrong
    /// key, or a good checksum failing authentication: taken for tampering). Damage must be
    /// counted as damage. Must be 0.
    pub decrypt_failures: u64,
    /// Allowed re-appearances, by cause.
    pub duplicates: BTreeMap<Cause, u64>,
    /// Human-readable descriptions of every violation ("invariant violation: …").
    pub violations: Vec<String>,
}

impl Check {
    /// Whether every invariant held.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Adds what the recovered channel's readers failed to decrypt so far (its
    /// `DecryptErrorCount` and `TamperedRecordCount`); any is a violation.
    pub fn count_decrypt_failures(&mut self, ch: &FileChannel) {
        let m = ch.metrics();
        let failures = m.decrypt_error_count.load(Relaxed);
        let tampered = m.tampered_records.load(Relaxed);
        self.decrypt_failures += failures.max(tampered);
        if failures > 0 || tampered > 0 {
            self.violations.push(format!(
                "{failures} encrypted records could not be opened after the recovery, {tampered} of them taken for tampering (damage must be counted as damage)"
            ));
        }
    }
}
