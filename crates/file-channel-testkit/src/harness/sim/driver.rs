//! The driver of one case: the real channel on a [`SimStorage`] and the [`Ledger`] model side by
//! side, one [`SimOp`] at a time, with the pending count and the take order compared after every
//! step and the recovery checked after every crash and reopen.

use super::bit_flips::flip_old;
use super::{sim_config, CaseReport, CrashFault, SimOp, SimParams, SLOTS};
use crate::harness::check::{self, event, id_of, Cause, Ledger};
use crate::{CrashMode, SimStorage};
use file_channel::{ChannelConfig, CommitError, FileChannel, PutError, TakeError, Transaction};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to wait for an asynchronous consequence (a poison, a failed checkpoint) to show.
const SETTLE: Duration = Duration::from_secs(10);

#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    Put(Transaction, Vec<u64>),
    Take(Transaction, Vec<u64>),
}

pub(super) struct Harness {
    sim: SimStorage,
    cfg: ChannelConfig,
    ch: Option<FileChannel>,
    slots: [Slot; SLOTS],
    ledger: Ledger,
    /// Ids in open take transactions.
    taken: Vec<u64>,
    next_id: u64,
    poisoned: bool,
    pub(super) report: CaseReport,
    /// Bits flipped so far: media damage does not heal, so a later flip never undoes one.
    flipped: BTreeSet<(PathBuf, u64, u8)>,
}

type Step = Result<(), String>;

fn violation(msg: String) -> String {
    format!("invariant violation: {msg}")
}

impl Harness {
    pub(super) fn new(params: SimParams) -> Result<Self, String> {
        let sim = SimStorage::new();
        let cfg = sim_config(params);
        let ch = FileChannel::open_with(cfg.clone(), Arc::new(sim.clone()))
            .map_err(|e| format!("first open failed: {e}"))?;
        Ok(Self {
            sim,
            cfg,
            ch: Some(ch),
            slots: Default::default(),
            ledger: Ledger::new(),
            taken: Vec::new(),
            next_id: 1,
            poisoned: false,
            report: CaseReport::default(),
            flipped: BTreeSet::new(),
        })
    }

    fn ch(&self) -> Result<&FileChannel, String> {
        self.ch.as_ref().ok_or_else(|| "no channel open".to_owned())
    }

    fn expected_next(&self) -> Option<u64> {
        self.ledger
            .queue()
            .iter()
            .copied()
            .find(|id| !self.taken.contains(id))
    }

    pub(super) fn step(&mut self, op: &SimOp) -> Step {
        match *op {
            SimOp::Put { slot, n } => self.put(slot, n)?,
            SimOp::Take { slot, n } => self.take(slot, n)?,
            SimOp::Commit { slot } => self.commit(slot)?,
            SimOp::Rollback { slot } => self.rollback(slot),
            SimOp::Reopen => self.reopen()?,
            SimOp::Crash(fault) => self.crash(fault)?,
            SimOp::FailNextSync => self.fail_next_sync()?,
            SimOp::DiskFull { slack, n } => self.disk_full(slack, n)?,
            SimOp::OpensFail { n } => self.opens_fail(n)?,
        }
        if !self.poisoned {
            let len = self.ch()?.len();
            if len != self.ledger.acknowledged() as u64 {
                return Err(violation(format!(
                    "pending count {len} after {op:?}, model has {}",
                    self.ledger.acknowledged()
                )));
            }
        }
        Ok(())
    }

    fn new_ids(&mut self, n: u8) -> Vec<u64> {
        let ids: Vec<u64> = (self.next_id..self.next_id + u64::from(n)).collect();
        self.next_id += u64::from(n);
        ids
    }

    fn put(&mut self, slot: usize, n: u8) -> Step {
        if self.poisoned {
            return Ok(());
        }
        let (mut tx, mut ids) = match std::mem::take(&mut self.slots[slot]) {
            Slot::Idle => (self.ch()?.transaction(), Vec::new()),
            // A transaction whose every take found nothing is still untyped.
            Slot::Put(tx, ids) | Slot::Take(tx, ids) if ids.is_empty() => (tx, ids),
            Slot::Put(tx, ids) => (tx, ids),
            Slot::Take(mut tx, ids) => {
                let r = tx.put(&event(0));
                self.slots[slot] = Slot::Take(tx, ids);
                // Refused either way (a space verdict may be checked first).
                return match r {
                    Err(_) => Ok(()),
                    Ok(()) => Err(violation("a put in a take transaction was accepted".into())),
                };
            }
        };
        for id in self.new_ids(n) {
            match tx.put(&event(id)) {
                Ok(()) => ids.push(id),
                // Refused puts (space verdict, poison) are simply never committed.
                Err(PutError::Poisoned(_)) => self.poisoned = true,
                Err(_) => {}
            }
        }
        self.slots[slot] = Slot::Put(tx, ids);
        Ok(())
    }

    fn take(&mut self, slot: usize, n: u8) -> Step {
        if self.poisoned {
            return Ok(());
        }
        let (mut tx, mut ids) = match std::mem::take(&mut self.slots[slot]) {
            Slot::Idle => (self.ch()?.transaction(), Vec::new()),
            // A transaction whose every put was refused is still untyped.
            Slot::Put(tx, ids) | Slot::Take(tx, ids) if ids.is_empty() => (tx, ids),
            Slot::Take(tx, ids) => (tx, ids),
            Slot::Put(mut tx, ids) => {
                let r = tx.take();
                self.slots[slot] = Slot::Put(tx, ids);
                return match r {
                    Err(_) => Ok(()),
                    Ok(got) => Err(violation(format!(
                        "a take in a put transaction was accepted: {got:?}"
                    ))),
                };
            }
        };
        for _ in 0..n {
            let expected = self.expected_next();
            let got = match tx.take() {
                Ok(Some(e)) => Some(id_of(&e).map_err(violation)?),
                Ok(None) => None,
                Err(TakeError::Poisoned(_)) => {
                    self.poisoned = true;
                    break;
                }
                // An untyped slot reused for takes whose transaction the engine typed as a put.
                Err(TakeError::MixedTransaction) if ids.is_empty() => break,
                Err(e) => return Err(format!("take failed: {e}")),
            };
            if got != expected {
                return Err(violation(format!(
                    "take order: got {got:?}, expected {expected:?}"
                )));
            }
            match got {
                Some(id) => {
                    self.taken.push(id);
                    ids.push(id);
                }
                None => break,
            }
        }
        self.slots[slot] = Slot::Take(tx, ids);
        Ok(())
    }

    fn commit(&mut self, slot: usize) -> Step {
        match std::mem::take(&mut self.slots[slot]) {
            Slot::Idle => Ok(()),
            Slot::Put(tx, ids) => self.commit_put(tx, &ids),
            Slot::Take(tx, ids) => {
                self.taken.retain(|id| !ids.contains(id));
                match tx.commit() {
                    Ok(()) => self.ledger.take_acked(&ids),
                    Err(CommitError::Poisoned(_)) => {
                        // Applied in memory or not, a crash may or may not keep it.
                        self.ledger.take_in_flight(&ids);
                        self.poisoned = true;
                    }
                    Err(e) => return Err(violation(format!("take commit failed: {e}"))),
                }
                Ok(())
            }
        }
    }

    fn commit_put(&mut self, tx: Transaction, ids: &[u64]) -> Step {
        match tx.commit() {
            Ok(()) => self.ledger.put_acked(ids),
            Err(CommitError::Poisoned(_)) => {
                self.ledger.put_in_doubt(ids, Cause::PutFsyncFailed);
                self.poisoned = true;
            }
            Err(CommitError::Write { .. } | CommitError::SegmentUnavailable { .. }) => {
                self.ledger.put_in_doubt(ids, Cause::PutWriteFailed);
                self.poisoned = self.ch()?.poisoned().is_some();
            }
            Err(e) => return Err(violation(format!("unexpected commit error {e}"))),
        }
        Ok(())
    }

    fn rollback(&mut self, slot: usize) {
        if let Slot::Take(tx, ids) = std::mem::take(&mut self.slots[slot]) {
            tx.rollback();
            self.taken.retain(|id| !ids.contains(id));
        }
    }

    /// Arms one failing fsync and commits a put into it.
    fn fail_next_sync(&mut self) -> Step {
        if self.poisoned {
            return Ok(());
        }
        self.sim.fail_next_syncs(1);
        let ids = self.new_ids(1);
        let mut tx = self.ch()?.transaction();
        if tx.put(&event(ids[0])).is_err() {
            // Refused (a space verdict): disarm, or the failure would hit a later, unrelated sync.
            self.sim.fail_next_syncs(0);
            return Ok(());
        }
        match tx.commit() {
            Err(CommitError::Poisoned(_)) => {
                self.ledger.put_in_doubt(&ids, Cause::PutFsyncFailed);
                self.poisoned = true;
            }
            Ok(()) => {
                // The failure went to another thread's fsync: the prefiller's (which poisons)
                // or the checkpoint thread's (a failed checkpoint; the channel keeps serving) —
                // or to none yet, if nothing else synced.
                self.ledger.put_acked(&ids);
                let ch = self.ch()?;
                let deadline = Instant::now() + SETTLE;
                let cp_errors = || ch.metrics().checkpoint_write_error_count.load(Relaxed);
                while ch.poisoned().is_none() && cp_errors() == 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if ch.poisoned().is_some() {
                    self.poisoned = true;
                } else if cp_errors() == 0 {
                    return Err(violation("a failed fsync went unnoticed".into()));
                }
            }
            Err(e) => return Err(violation(format!("commit over a failing fsync gave {e}"))),
        }
        Ok(())
    }

    /// Fills the disk to `slack` free bytes, commits a put of `n` events, frees the disk.
    fn disk_full(&mut self, slack: u16, n: u8) -> Step {
        if self.poisoned {
            return Ok(());
        }
        let used: u64 = self
            .sim
            .list_all()
            .iter()
            .filter_map(|p| self.sim.read_file(p))
            .map(|b| b.len() as u64)
            .sum();
        self.sim.set_capacity_bytes(Some(used + u64::from(slack)));
        let ids = self.new_ids(n);
        let mut tx = self.ch()?.transaction();
        let mut put = Vec::new();
        for &id in &ids {
            if tx.put(&event(id)).is_ok() {
                put.push(id);
            }
        }
        let r = self.commit_put(tx, &put);
        self.sim.set_capacity_bytes(None);
        r
    }

    /// Makes every open fail with `EMFILE`, commits a put of `n` events, and lets opens work
    /// again. The put may fail (a rotation that cannot create its segment); the channel must not
    /// be poisoned by the open failures.
    fn opens_fail(&mut self, n: u8) -> Step {
        if self.poisoned {
            return Ok(());
        }
        self.sim.fail_opens_with(Some(libc::EMFILE));
        let ids = self.new_ids(n);
        let mut tx = self.ch()?.transaction();
        let mut put = Vec::new();
        for &id in &ids {
            if tx.put(&event(id)).is_ok() {
                put.push(id);
            }
        }
        let r = self.commit_put(tx, &put);
        self.sim.fail_opens_with(None);
        r?;
        if let Some(p) = self.ch()?.poisoned() {
            let emfile = std::io::Error::from_raw_os_error(libc::EMFILE).to_string();
            if p.to_string().contains(&emfile) {
                return Err(violation(format!(
                    "a file that could not be opened poisoned the channel: {p}"
                )));
            }
            // Poisoned by something else (an fsync failure armed earlier).
            self.poisoned = true;
        }
        Ok(())
    }

    fn drop_slots(&mut self) {
        for s in &mut self.slots {
            *s = Slot::Idle;
        }
        self.taken.clear();
    }

    /// Reads everything pending without consuming it ([`check::peek_all`]).
    fn peek_all(ch: &FileChannel) -> Result<(Vec<u64>, u64), String> {
        check::peek_all(ch).map_err(|e| format!("take after recovery failed: {e}"))
    }

    pub(super) fn reopen(&mut self) -> Step {
        if self.poisoned {
            return self.crash(CrashFault::DropUnsynced);
        }
        self.drop_slots();
        if let Some(ch) = self.ch.take() {
            // An armed fsync failure may have been met by the prefill thread's own fsync after
            // the last operation; the channel is then poisoned (correctly) and the close fails:
            // that is a crash with unsynced data dropped, not a clean close.
            if let Err(file_channel::CloseError::Poisoned(_)) = ch.close() {
                self.poisoned = true;
                return self.crash(CrashFault::DropUnsynced);
            }
        }
        // A clean close syncs every take commit.
        self.ledger.takes_durable();
        let ch = FileChannel::open_with(self.cfg.clone(), Arc::new(self.sim.clone()))
            .map_err(|e| violation(format!("reopen after a clean close failed: {e}")))?;
        let (got, damaged) = Self::peek_all(&ch)?;
        let lost = ch.metrics().events_lost.load(Relaxed);
        let mut check = self.ledger.check(&got, damaged, lost);
        check.count_decrypt_failures(&ch);
        self.ch = Some(ch);
        if check.decrypt_failures > 0 || got != self.ledger.queue() {
            return Err(violation(format!(
                "a clean reopen changed the queue: {:?}",
                check.violations
            )));
        }
        self.report.checks.push(check);
        Ok(())
    }

    fn crash(&mut self, fault: CrashFault) -> Step {
        let mode = match fault {
            CrashFault::DropUnsynced | CrashFault::ZeroTail => CrashMode::DropUnsynced,
            CrashFault::KeepAll => CrashMode::KeepAll,
            CrashFault::KeepPrefix(seed) | CrashFault::FlipOld(seed) => {
                CrashMode::KeepPrefix { seed }
            }
            CrashFault::Torn512(seed) => CrashMode::TornWrite {
                seed,
                sector_bytes: 512,
            },
            CrashFault::Torn4k(seed) => CrashMode::TornWrite {
                seed,
                sector_bytes: 4096,
            },
            CrashFault::GarbageTail(seed) => CrashMode::GarbageTail { seed },
        };
        let live: Vec<(PathBuf, u64)> = self
            .sim
            .list_all()
            .into_iter()
            .filter_map(|p| self.sim.read_file(&p).map(|b| (p, b.len() as u64)))
            .collect();
        let image = self.sim.crash(mode);
        self.drop_slots();
        drop(self.ch.take());
        match fault {
            CrashFault::ZeroTail => {
                for (path, len) in &live {
                    if let Some(now) = image.read_file(path) {
                        if (now.len() as u64) < *len {
                            image
                                .truncate_file(path, *len)
                                .map_err(|e| format!("zero tail: {e}"))?;
                        }
                    }
                }
            }
            CrashFault::FlipOld(seed) => flip_old(&image, seed, &mut self.flipped),
            _ => {}
        }
        self.sim = image;
        let ch = FileChannel::open_with(self.cfg.clone(), Arc::new(self.sim.clone()))
            .map_err(|e| violation(format!("reopen after {fault:?} failed: {e}")))?;
        self.poisoned = false;
        let (got, damaged) = Self::peek_all(&ch)?;
        // Lost to damage found at open or by the reader afterwards (cumulative).
        let lost = ch.metrics().events_lost.load(Relaxed);
        let mut check = match fault {
            CrashFault::FlipOld(_) => self
                .ledger
                .with_damaged_take_records()
                .check(&got, damaged, lost),
            _ => self.ledger.check(&got, damaged, lost),
        };
        check.count_decrypt_failures(&ch);
        self.ch = Some(ch);
        let ok = check.ok();
        let violations = check.violations.join("; ");
        // Kept on failure too, so the figures count what the failing recovery lost.
        self.report.checks.push(check);
        if !ok {
            return Err(format!("after {fault:?}: {violations}"));
        }
        self.ledger.reset_to(&got);
        Ok(())
    }
}
