//! Model test: proptest drives the real channel (on the simulated storage) and a plain in-memory
//! model with the same random sequence of put / take / commit / rollback / close+reopen /
//! crash+reopen / failing fsync, and checks after every step that they agree.
//!
//! What the model knows exactly: acknowledged put commits (they must survive any crash),
//! rolled-back puts (they must never appear), FIFO order, and redelivery of rolled-back takes
//! first. What it allows after a crash: a take commit not yet durable may be redelivered, and a
//! put commit that failed (in doubt) may be present as a whole or absent as a whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use file_channel::{
    ChannelConfig, CommitError, Event, FileChannel, PutError, TakeError, Transaction,
};
use file_channel_testkit::{CrashMode, SimStorage};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    Put { slot: usize, n: u8 },
    Take { slot: usize, n: u8 },
    Commit { slot: usize },
    Rollback { slot: usize },
    Reopen,
    Crash { mode: CrashMode },
    FailNextSync,
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(CrashMode::DropUnsynced),
        Just(CrashMode::KeepAll),
        any::<u64>().prop_map(|seed| CrashMode::KeepPrefix { seed }),
        any::<u64>().prop_map(|seed| CrashMode::TornWrite {
            seed,
            sector_bytes: 512
        }),
        any::<u64>().prop_map(|seed| CrashMode::GarbageTail { seed }),
    ];
    prop_oneof![
        6 => (0..2usize, 1..6u8).prop_map(|(slot, n)| Op::Put { slot, n }),
        5 => (0..2usize, 1..6u8).prop_map(|(slot, n)| Op::Take { slot, n }),
        6 => (0..2usize).prop_map(|slot| Op::Commit { slot }),
        2 => (0..2usize).prop_map(|slot| Op::Rollback { slot }),
        1 => Just(Op::Reopen),
        2 => mode.prop_map(|mode| Op::Crash { mode }),
        1 => Just(Op::FailNextSync),
    ]
}

/// Body of event `id`: its id and a deterministic filler, so corruption of a body is caught.
fn body(id: u64) -> Vec<u8> {
    let mut b = id.to_le_bytes().to_vec();
    b.extend((0..(id % 300)).map(|i| (i as u8) ^ (id as u8)));
    b
}

fn id_of(e: &Event) -> u64 {
    assert!(e.body.len() >= 8, "invariant violation: body too short");
    let id = u64::from_le_bytes(e.body[..8].try_into().unwrap());
    assert_eq!(
        e.body,
        body(id),
        "invariant violation: body of event {id} damaged"
    );
    assert_eq!(
        e.header("id"),
        Some(id.to_string().as_str()),
        "invariant violation: header of {id}"
    );
    id
}

#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    Put(Transaction, Vec<u64>),
    Take(Transaction, Vec<u64>),
}

struct Harness {
    sim: SimStorage,
    cfg: ChannelConfig,
    ch: Option<FileChannel>,
    slots: [Slot; 2],
    /// Acknowledged, not consumed (taken-in-open-transactions included), in commit order.
    committed: Vec<u64>,
    /// Commit order of every acknowledged or in-doubt event.
    order: HashMap<u64, u64>,
    next_order: u64,
    /// Ids in open take transactions.
    taken: BTreeSet<u64>,
    /// Consumed by an acknowledged take commit that may not be durable yet.
    maybe_consumed: BTreeSet<u64>,
    /// Events of put commits that failed: all present or all absent after recovery.
    in_doubt: Vec<Vec<u64>>,
    next_id: u64,
    poisoned: bool,
}

impl Harness {
    fn new(segment_bytes_max: u64, prefill: bool) -> Self {
        let sim = SimStorage::new();
        let mut cfg = ChannelConfig::new("/chan");
        cfg.segment_bytes_max = segment_bytes_max;
        cfg.prefill_ahead_bytes = if prefill { 4096 } else { 0 };
        cfg.transaction_capacity = 50_000;
        cfg.capacity = 100_000;
        // Checkpoints (and with small segments, deletions) every couple of KiB of log.
        cfg.checkpoint_bytes = 2048;
        cfg.minimum_required_space = 0;
        let ch = FileChannel::open_with(cfg.clone(), Arc::new(sim.clone())).unwrap();
        Self {
            sim,
            cfg,
            ch: Some(ch),
            slots: Default::default(),
            committed: Vec::new(),
            order: HashMap::new(),
            next_order: 0,
            taken: BTreeSet::new(),
            maybe_consumed: BTreeSet::new(),
            in_doubt: Vec::new(),
            next_id: 1,
            poisoned: false,
        }
    }

    fn ch(&self) -> &FileChannel {
        self.ch.as_ref().unwrap()
    }

    fn expected_next(&self) -> Option<u64> {
        self.committed
            .iter()
            .copied()
            .find(|id| !self.taken.contains(id))
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Put { slot, n } => self.put(slot, n),
            Op::Take { slot, n } => self.take(slot, n),
            Op::Commit { slot } => self.commit(slot),
            Op::Rollback { slot } => self.rollback(slot),
            Op::Reopen => self.reopen(),
            Op::Crash { mode } => self.crash(mode),
            Op::FailNextSync => self.fail_next_sync(),
        }
        if !self.poisoned {
            assert_eq!(
                self.ch().len(),
                self.committed.len() as u64,
                "invariant violation: pending count after {op:?}"
            );
        }
    }

    fn put(&mut self, slot: usize, n: u8) {
        if self.poisoned {
            return;
        }
        let (mut tx, mut ids) = match std::mem::take(&mut self.slots[slot]) {
            Slot::Idle => (self.ch().transaction(), Vec::new()),
            Slot::Put(tx, ids) => (tx, ids),
            Slot::Take(mut tx, ids) => {
                let e = Event::new("x");
                let r = tx.put(&e);
                assert!(
                    matches!(r, Err(PutError::MixedTransaction)),
                    "invariant violation: put in a take transaction gave {r:?}"
                );
                self.slots[slot] = Slot::Take(tx, ids);
                return;
            }
        };
        for _ in 0..n {
            let id = self.next_id;
            self.next_id += 1;
            let e = Event::new(body(id)).with_header("id", id.to_string());
            tx.put(&e).unwrap();
            ids.push(id);
        }
        self.slots[slot] = Slot::Put(tx, ids);
    }

    fn take(&mut self, slot: usize, n: u8) {
        if self.poisoned {
            return;
        }
        let (mut tx, mut ids) = match std::mem::take(&mut self.slots[slot]) {
            Slot::Idle => (self.ch().transaction(), Vec::new()),
            Slot::Take(tx, ids) => (tx, ids),
            Slot::Put(mut tx, ids) => {
                let r = tx.take();
                assert!(
                    matches!(r, Err(TakeError::MixedTransaction)),
                    "invariant violation: take in a put transaction gave {r:?}"
                );
                self.slots[slot] = Slot::Put(tx, ids);
                return;
            }
        };
        for _ in 0..n {
            let expected = self.expected_next();
            let got = tx.take().unwrap().map(|e| id_of(&e));
            assert_eq!(got, expected, "invariant violation: take order");
            match got {
                Some(id) => {
                    self.taken.insert(id);
                    ids.push(id);
                }
                None => break,
            }
        }
        self.slots[slot] = Slot::Take(tx, ids);
    }

    fn commit(&mut self, slot: usize) {
        match std::mem::take(&mut self.slots[slot]) {
            Slot::Idle => {}
            Slot::Put(tx, ids) => match tx.commit() {
                Ok(()) => {
                    for &id in &ids {
                        self.order.insert(id, self.next_order);
                        self.next_order += 1;
                    }
                    self.committed.extend(ids);
                    // The put's fsync covered every take record queued before it.
                    self.maybe_consumed.clear();
                }
                Err(CommitError::Poisoned(_)) => {
                    for &id in &ids {
                        self.order.insert(id, self.next_order);
                        self.next_order += 1;
                    }
                    self.in_doubt.push(ids);
                    self.poisoned = true;
                }
                Err(e) => panic!("invariant violation: unexpected commit error {e}"),
            },
            Slot::Take(tx, ids) => match tx.commit() {
                Ok(()) => {
                    for id in ids {
                        self.taken.remove(&id);
                        self.committed.retain(|&c| c != id);
                        self.maybe_consumed.insert(id);
                    }
                }
                Err(CommitError::Poisoned(_)) => {
                    for id in ids {
                        self.taken.remove(&id);
                    }
                    self.poisoned = true;
                }
                Err(e) => panic!("invariant violation: unexpected commit error {e}"),
            },
        }
    }

    /// Arms one failing fsync and commits a put into it: the commit must fail, poison the
    /// channel, and leave its events in doubt.
    fn fail_next_sync(&mut self) {
        if self.poisoned {
            return;
        }
        self.sim.fail_next_syncs(1);
        let id = self.next_id;
        self.next_id += 1;
        let mut tx = self.ch().transaction();
        tx.put(&Event::new(body(id)).with_header("id", id.to_string()))
            .unwrap();
        let r = tx.commit();
        // The failure goes to whichever thread syncs the file next: the commit's own fsync
        // (the commit fails, its event is in doubt) or the prefill thread's, after the commit's
        // fsync succeeded (the commit stands, and the channel is poisoned right after).
        match r {
            Err(CommitError::Poisoned(_)) => {
                self.order.insert(id, self.next_order);
                self.next_order += 1;
                self.in_doubt.push(vec![id]);
            }
            Ok(()) => {
                // The failure went to another thread's fsync: the prefiller's (which poisons
                // the channel) or the checkpoint thread's (a failed checkpoint; the previous
                // one stays valid and the channel keeps serving).
                self.order.insert(id, self.next_order);
                self.next_order += 1;
                self.committed.push(id);
                self.maybe_consumed.clear();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                let cp_errors = || {
                    self.ch()
                        .metrics()
                        .checkpoint_write_error_count
                        .load(std::sync::atomic::Ordering::Relaxed)
                };
                while self.ch().poisoned().is_none()
                    && cp_errors() == 0
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                if self.ch().poisoned().is_none() {
                    assert!(
                        cp_errors() > 0,
                        "invariant violation: a failed fsync went unnoticed"
                    );
                    return;
                }
            }
            Err(e) => panic!("invariant violation: commit over a failing fsync gave {e}"),
        }
        assert!(
            self.ch().poisoned().is_some(),
            "invariant violation: not poisoned"
        );
        assert_eq!(
            self.ch()
                .metrics()
                .unhealthy
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        self.poisoned = true;
    }

    fn rollback(&mut self, slot: usize) {
        match std::mem::take(&mut self.slots[slot]) {
            Slot::Idle | Slot::Put(..) => {}
            Slot::Take(tx, ids) => {
                tx.rollback();
                for id in ids {
                    self.taken.remove(&id);
                }
            }
        }
    }

    fn drop_slots(&mut self) {
        for s in &mut self.slots {
            *s = Slot::Idle;
        }
        self.taken.clear();
    }

    /// Takes everything pending in one transaction, then rolls it back.
    fn peek_all(&self) -> Vec<u64> {
        let mut tx = self.ch().transaction();
        let mut ids = Vec::new();
        while let Some(e) = tx.take().unwrap() {
            ids.push(id_of(&e));
        }
        tx.rollback();
        ids
    }

    fn reopen(&mut self) {
        if self.poisoned {
            return self.crash(CrashMode::DropUnsynced);
        }
        self.drop_slots();
        self.ch.take().unwrap().close().unwrap();
        let ch = FileChannel::open_with(self.cfg.clone(), Arc::new(self.sim.clone())).unwrap();
        self.ch = Some(ch);
        let got = self.peek_all();
        assert_eq!(
            got, self.committed,
            "invariant violation: clean reopen changed the queue"
        );
        self.maybe_consumed.clear();
    }

    fn crash(&mut self, mode: CrashMode) {
        let new = self.sim.crash(mode);
        self.drop_slots();
        drop(self.ch.take());
        self.sim = new;
        let ch = FileChannel::open_with(self.cfg.clone(), Arc::new(self.sim.clone()))
            .unwrap_or_else(|e| panic!("invariant violation: reopen after {mode:?} failed: {e}"));
        self.ch = Some(ch);
        self.poisoned = false;
        let got = self.peek_all();
        let must: BTreeSet<u64> = self.committed.iter().copied().collect();
        let doubt: HashMap<u64, usize> = self
            .in_doubt
            .iter()
            .enumerate()
            .flat_map(|(i, ids)| ids.iter().map(move |&id| (id, i)))
            .collect();
        let got_set: BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(
            got_set.len(),
            got.len(),
            "invariant violation: duplicates after {mode:?}"
        );
        for id in &must {
            assert!(
                got_set.contains(id),
                "invariant violation: acknowledged event {id} lost after {mode:?}"
            );
        }
        for id in &got {
            assert!(
                must.contains(id) || self.maybe_consumed.contains(id) || doubt.contains_key(id),
                "invariant violation: event {id} appeared after {mode:?} but was never committed"
            );
        }
        for (i, ids) in self.in_doubt.iter().enumerate() {
            let present = ids.iter().filter(|id| got_set.contains(id)).count();
            assert!(
                present == 0 || present == ids.len(),
                "invariant violation: in-doubt transaction {i} partially recovered ({present} of {})",
                ids.len()
            );
        }
        let orders: Vec<u64> = got.iter().map(|id| self.order[id]).collect();
        assert!(
            orders.windows(2).all(|w| w[0] < w[1]),
            "invariant violation: recovered order is not commit order: {got:?}"
        );
        self.committed = got;
        self.maybe_consumed.clear();
        self.in_doubt.clear();
    }
}

fn run(ops: &[Op], segment_bytes_max: u64, prefill: bool) {
    let mut h = Harness::new(segment_bytes_max, prefill);
    for op in ops {
        h.step(op);
    }
    h.reopen();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn channel_agrees_with_model(ops in prop::collection::vec(op(), 1..60), small in any::<bool>(), prefill in any::<bool>()) {
        run(&ops, if small { 4096 } else { 64 << 10 }, prefill);
    }
}

#[test]
fn crash_after_rollback_of_take_keeps_everything() {
    run(
        &[
            Op::Put { slot: 0, n: 5 },
            Op::Commit { slot: 0 },
            Op::Take { slot: 1, n: 3 },
            Op::Rollback { slot: 1 },
            Op::Take { slot: 1, n: 2 },
            Op::Commit { slot: 1 },
            Op::Crash {
                mode: CrashMode::DropUnsynced,
            },
        ],
        4096,
        false,
    );
}
