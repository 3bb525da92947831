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
//! * **duplicates by cause**: ids present that the caller may already have seen or given up on,
//!   allowed by the contract (at-least-once) and counted per cause ([`Cause`]).

use file_channel::{Event, FileChannel, TakeError, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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
                }
            }
        }
        self.queue.retain(|id| !set.contains(id));
    }

    /// Every acknowledged take commit so far is durable (a put commit, a sync or a clean close
    /// followed it).
    pub fn takes_durable(&mut self) {
        for s in self.status.values_mut() {
            if *s == Status::Maybe(Cause::TakeNotDurable) {
                *s = Status::Consumed;
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
}

/// Sums of many checks: the figures a layer reports.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Cases run (workloads, sweep points, kill rounds).
    pub cases: u64,
    /// Cases whose checks all held.
    pub passed: u64,
    /// Cases with a violation, an unexpected error or a panic.
    pub failed: u64,
    /// Crash states recovered and checked.
    pub crash_states: u64,
    /// Sum of [`Check::acknowledged`].
    pub acknowledged: u64,
    /// Sum of [`Check::recovered`].
    pub recovered: u64,
    /// Sum of [`Check::lost`].
    pub lost: u64,
    /// Sum of [`Check::lost_to_reported_damage`].
    pub lost_to_reported_damage: u64,
    /// Sum of [`Check::phantoms`].
    pub phantoms: u64,
    /// Sum of [`Check::damaged`].
    pub damaged: u64,
    /// Sum of twice, partial and order violations.
    pub other_violations: u64,
    /// Panics caught (engine or harness).
    pub panics: u64,
    /// Allowed re-appearances by cause.
    pub duplicates: BTreeMap<Cause, u64>,
    /// The first failures, for the report.
    pub failures: Vec<String>,
}

/// Most failure descriptions a tally keeps.
pub const MAX_FAILURES_KEPT: usize = 20;

impl Tally {
    /// Adds one recovery's check.
    pub fn add_check(&mut self, c: &Check) {
        self.crash_states += 1;
        self.acknowledged += c.acknowledged;
        self.recovered += c.recovered;
        self.lost += c.lost;
        self.lost_to_reported_damage += c.lost_to_reported_damage;
        self.phantoms += c.phantoms;
        self.damaged += c.damaged;
        self.other_violations += c.twice + c.partial + c.order_violations;
        for (cause, n) in &c.duplicates {
            *self.duplicates.entry(*cause).or_default() += n;
        }
    }

    /// Records the end of one case.
    pub fn finish_case(&mut self, failure: Option<String>) {
        self.cases += 1;
        match failure {
            None => self.passed += 1,
            Some(f) => {
                self.failed += 1;
                if self.failures.len() < MAX_FAILURES_KEPT {
                    self.failures.push(f);
                }
            }
        }
    }

    /// Adds another tally's figures.
    pub fn merge(&mut self, o: &Tally) {
        self.cases += o.cases;
        self.passed += o.passed;
        self.failed += o.failed;
        self.crash_states += o.crash_states;
        self.acknowledged += o.acknowledged;
        self.recovered += o.recovered;
        self.lost += o.lost;
        self.lost_to_reported_damage += o.lost_to_reported_damage;
        self.phantoms += o.phantoms;
        self.damaged += o.damaged;
        self.other_violations += o.other_violations;
        self.panics += o.panics;
        for (cause, n) in &o.duplicates {
            *self.duplicates.entry(*cause).or_default() += n;
        }
        for f in &o.failures {
            if self.failures.len() < MAX_FAILURES_KEPT {
                self.failures.push(f.clone());
            }
        }
    }

    /// The figures as one JSON object (no trailing newline). `extra` is spliced in as further
    /// `"key": value` members (already encoded).
    pub fn to_json(&self, layer: &str, seed: u64, extra: &[(&str, String)]) -> String {
        let mut s = String::from("{");
        s.push_str(&format!("\"layer\": {}, \"seed\": {seed}", json_str(layer)));
        for (k, v) in [
            ("cases", self.cases),
            ("passed", self.passed),
            ("failed", self.failed),
            ("crash_states", self.crash_states),
            ("acknowledged", self.acknowledged),
            ("recovered", self.recovered),
            ("lost", self.lost),
            ("lost_to_reported_damage", self.lost_to_reported_damage),
            ("phantoms", self.phantoms),
            ("damaged", self.damaged),
            ("other_violations", self.other_violations),
            ("panics", self.panics),
        ] {
            s.push_str(&format!(", \"{k}\": {v}"));
        }
        s.push_str(", \"duplicates\": {");
        for (i, cause) in Cause::ALL.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let n = self.duplicates.get(cause).copied().unwrap_or(0);
            s.push_str(&format!("\"{}\": {n}", cause.name()));
        }
        s.push('}');
        for (k, v) in extra {
            s.push_str(&format!(", {}: {v}", json_str(k)));
        }
        s.push_str(", \"failures\": [");
        for (i, f) in self.failures.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&json_str(f));
        }
        s.push_str("]}");
        s
    }
}

impl fmt::Display for Tally {
    /// The final plain line every layer prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    format!("\"{}\"", file_channel::quarantine::json_escape(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_prove_their_integrity() {
        for id in [0u64, 1, 17, 34, 299, 1 << 40] {
            assert_eq!(id_of(&event(id)), Ok(id));
        }
        let mut e = event(17);
        e.body[100] ^= 1;
        assert!(id_of(&e).is_err());
        let e = event(5).with_header("x", "y");
        assert!(id_of(&e).is_err());
    }

    #[test]
    fn ledger_finds_every_kind_of_violation() {
        let mut l = Ledger::new();
        l.put_acked(&[1, 2, 3]);
        l.put_in_doubt(&[4, 5], Cause::PutFsyncFailed);
        assert!(l.check(&[1, 2, 3], 0, 0).ok());
        assert!(l.check(&[1, 2, 3, 4, 5], 0, 0).ok());
        let c = l.check(&[1, 2, 3, 4], 0, 0);
        assert_eq!(c.partial, 1);
        let c = l.check(&[1, 3], 0, 0);
        assert_eq!(c.lost, 1);
        assert!(
            l.check(&[1, 3], 0, 1).ok(),
            "reported damage accounts for it"
        );
        assert_eq!(l.check(&[1, 2, 3, 9], 0, 0).phantoms, 1);
        assert_eq!(l.check(&[2, 1, 3], 0, 0).order_violations, 1);
        assert_eq!(l.check(&[1, 1, 2, 3], 0, 0).twice, 1);
        assert!(!l.check(&[1, 2, 3], 1, 0).ok());

        l.take_acked(&[1]);
        assert_eq!(l.queue(), &[2, 3]);
        let c = l.check(&[1, 2, 3], 0, 0);
        assert!(c.ok());
        assert_eq!(c.duplicates.get(&Cause::TakeNotDurable), Some(&1));
        l.put_acked(&[6]);
        assert_eq!(
            l.check(&[1, 2, 3, 6], 0, 0).phantoms,
            1,
            "the take is durable now"
        );
        let damaged = l.with_damaged_take_records();
        let c = damaged.check(&[1, 2, 3, 6], 0, 0);
        assert!(c.ok());
        assert_eq!(c.duplicates.get(&Cause::TakeRecordDamaged), Some(&1));
        l.reset_to(&[2, 3, 6]);
        assert_eq!(l.check(&[2, 3, 4, 5, 6], 0, 0).phantoms, 2);
        assert!(l.check(&[2, 3, 6], 0, 0).ok());
    }

    #[test]
    fn overlapping_put_commits_may_be_recovered_in_either_order() {
        let mut l = Ledger::new();
        l.put_acked(&[1]);
        // 2 and 3 are committed concurrently; 4 begins after both were answered.
        l.put_begun(&[2]);
        l.put_begun(&[3]);
        l.put_acked(&[3]);
        l.put_acked(&[2]);
        l.put_begun(&[4]);
        l.put_in_doubt(&[4], Cause::PutInFlight);
        assert!(l.check(&[1, 2, 3, 4], 0, 0).ok());
        assert!(l.check(&[1, 3, 2, 4], 0, 0).ok());
        assert!(l.check(&[1, 3, 2], 0, 0).ok());
        assert_eq!(l.check(&[2, 1, 3], 0, 0).order_violations, 1);
        assert_eq!(l.check(&[1, 4, 2, 3], 0, 0).order_violations, 2);
        assert_eq!(l.check(&[1, 2, 4, 3], 0, 0).order_violations, 1);

        // 5 and 6 began in one commit that was never answered: all or nothing of it.
        l.put_begun(&[5, 6]);
        l.unanswered_puts_in_doubt(Cause::PutInFlight);
        assert!(l.check(&[1, 2, 3, 5, 6], 0, 0).ok());
        assert!(l.check(&[1, 2, 3], 0, 0).ok());
        assert_eq!(l.check(&[1, 2, 3, 5], 0, 0).partial, 1);
        l.unanswered_puts_in_doubt(Cause::PutInFlight);
        assert_eq!(
            l.check(&[1, 2, 3, 5], 0, 0).partial,
            1,
            "made in doubt once"
        );
    }

    #[test]
    fn peek_all_reads_past_the_transaction_capacity_and_consumes_nothing() {
        let mut cfg = file_channel::ChannelConfig::new("/chan");
        cfg.transaction_capacity = 3;
        cfg.prefill_ahead_bytes = 0;
        let storage = std::sync::Arc::new(crate::SimStorage::new());
        let ch = FileChannel::open_with(cfg, storage).expect("open");
        for chunk in [[0u64, 1, 2], [3, 4, 5], [6, 7, 8]] {
            let mut tx = ch.transaction();
            for id in chunk {
                tx.put(&event(id)).expect("put");
            }
            tx.commit().expect("commit");
        }
        let (ids, damaged) = peek_all(&ch).expect("peek");
        assert_eq!(ids, (0..9).collect::<Vec<_>>());
        assert_eq!(damaged, 0);
        assert_eq!(ch.len(), 9, "nothing consumed");
        assert_eq!(
            peek_all(&ch).expect("peek again").0,
            ids,
            "same order again"
        );
    }

    #[test]
    fn tally_json_names_every_figure() {
        let mut t = Tally::default();
        let mut l = Ledger::new();
        l.put_acked(&[1]);
        t.add_check(&l.check(&[1], 0, 0));
        t.finish_case(None);
        t.finish_case(Some("x \"quoted\"".into()));
        let j = t.to_json("sim", 7, &[("workloads", "3".into())]);
        assert!(j.contains("\"crash_states\": 1"));
        assert!(j.contains("\"take_commit_not_durable\": 0"));
        assert!(j.contains("\"take_record_damaged\": 0"));
        assert!(j.contains("\"workloads\": 3"));
        assert!(j.contains("x \\\"quoted\\\""));
        assert_eq!(t.to_string(), "1 passed, 1 failed");
    }
}
