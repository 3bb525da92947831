//! Crash-point sweep on the simulated storage: a fixed workload that rotates segments, writes
//! checkpoints and deletes consumed segments is run once to count its I/O operations, then again
//! for every k with a crash after the k-th operation (and, separately, with the k-th operation
//! failing with EIO). Each time, the image a crash leaves is reopened and checked:
//!
//! - every acknowledged put that was not consumed by an acknowledged take is recovered (lost = 0);
//! - nothing appears that was never committed (phantoms = 0; a put whose commit failed is "in
//!   doubt" and may appear whole);
//! - a take commit followed by a successful put commit was durable: its events never reappear;
//! - bodies are intact, order is commit order, no event appears twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use file_channel::storage::{CrashMode, SimStorage};
use file_channel::{ChannelConfig, Event, FileChannel};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new("/chan");
    c.segment_bytes_max = 4096;
    c.checkpoint_bytes = 1500;
    c.prefill_ahead_bytes = 0;
    c.minimum_required_space = 0;
    c.transaction_capacity = 1000;
    c
}

fn event(id: u64) -> Event {
    let mut body = format!("event-{id}-").into_bytes();
    body.extend((0..(id % 97) + 40).map(|i| b'a' + ((i + id) % 26) as u8));
    Event::new(body).with_header("id", id.to_string())
}

fn id_of(e: &Event) -> u64 {
    let id: u64 = e.header("id").expect("id header").parse().unwrap();
    assert_eq!(*e, event(id), "body of event {id} damaged");
    id
}

#[derive(Default, Debug)]
struct Outcome {
    /// Acknowledged puts, in commit order.
    acked: Vec<u64>,
    /// Puts whose commit failed.
    in_doubt: BTreeSet<u64>,
    /// Consumed by an acknowledged take commit.
    taken: BTreeSet<u64>,
    /// Consumed by a take commit that a later acknowledged put commit made durable.
    taken_durable: BTreeSet<u64>,
}

/// Runs the workload until it finishes or the storage fails.
fn workload(ch: &FileChannel) -> Outcome {
    let mut out = Outcome::default();
    let mut pending_takes: Vec<u64> = Vec::new();
    let mut next = 1u64;
    for round in 0..40u64 {
        let ids: Vec<u64> = (next..next + 3).collect();
        next += 3;
        let mut tx = ch.transaction();
        for &id in &ids {
            if tx.put(&event(id)).is_err() {
                return out;
            }
        }
        match tx.commit() {
            Ok(()) => {
                out.acked.extend(&ids);
                out.taken_durable.extend(pending_takes.drain(..));
            }
            Err(_) => {
                out.in_doubt.extend(&ids);
                return out;
            }
        }
        if round % 3 != 0 {
            let mut tx = ch.transaction();
            let mut got = Vec::new();
            for _ in 0..(2 + round % 4) {
                match tx.take() {
                    Ok(Some(e)) => got.push(id_of(&e)),
                    Ok(None) => break,
                    Err(_) => return out,
                }
            }
            if tx.commit().is_err() {
                return out;
            }
            out.taken.extend(&got);
            pending_takes.extend(got);
        }
    }
    out
}

fn recovered(sim: &SimStorage) -> Vec<u64> {
    let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone()))
        .unwrap_or_else(|e| panic!("reopen failed: {e}"));
    let mut tx = ch.transaction();
    let mut ids = Vec::new();
    while let Some(e) = tx.take().unwrap() {
        ids.push(id_of(&e));
    }
    tx.rollback();
    ch.close().unwrap();
    ids
}

fn check(what: &str, out: &Outcome, got: &[u64]) {
    let order: BTreeMap<u64, usize> = out
        .acked
        .iter()
        .chain(out.in_doubt.iter())
        .enumerate()
        .map(|(i, &id)| (id, i))
        .collect();
    let got_set: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(
        got_set.len(),
        got.len(),
        "{what}: an event appears twice: {got:?}"
    );
    for id in &out.acked {
        if !out.taken.contains(id) {
            assert!(
                got_set.contains(id),
                "{what}: acknowledged event {id} lost; got {got:?}"
            );
        }
    }
    for id in got {
        assert!(
            order.contains_key(id),
            "{what}: event {id} was never committed"
        );
        assert!(
            !out.taken_durable.contains(id),
            "{what}: event {id} reappeared after a durable take commit"
        );
    }
    let in_doubt_present = out
        .in_doubt
        .iter()
        .filter(|id| got_set.contains(id))
        .count();
    assert!(
        in_doubt_present == 0 || in_doubt_present == out.in_doubt.len(),
        "{what}: a failed put commit was partly recovered"
    );
    assert!(
        got.windows(2).all(|w| order[&w[0]] < order[&w[1]]),
        "{what}: recovered order is not commit order: {got:?}"
    );
}

fn total_ops() -> u64 {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap();
    let start = sim.op_count();
    let out = workload(&ch);
    assert_eq!(out.acked.len(), 120, "the fault-free workload must finish");
    ch.close().unwrap();
    let n = sim.op_count() - start;
    assert!(n > 100, "workload too small to sweep: {n} ops");
    // It must exercise rotation, checkpoints and deletion.
    let after = recovered(&sim);
    check("fault-free", &out, &after);
    n
}

fn sweep(mode: CrashMode, fail_instead_of_crash: bool) {
    let n = total_ops();
    let mut crashed_runs = 0;
    for k in 0..n + 5 {
        let sim = SimStorage::new();
        let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap();
        if fail_instead_of_crash {
            sim.fail_op_at(sim.op_count() + k);
        } else {
            sim.crash_after_ops(k);
        }
        let out = workload(&ch);
        let image = sim.crash(mode);
        drop(ch);
        if out.acked.len() < 120 {
            crashed_runs += 1;
        }
        let got = recovered(&image);
        check(&format!("{mode:?}, fault at op {k}"), &out, &got);
    }
    assert!(
        crashed_runs > n / 2,
        "the sweep rarely hit the workload ({crashed_runs} of {n})"
    );
}

#[test]
fn workload_rotates_checkpoints_and_deletes() {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap();
    workload(&ch);
    let m = ch.metrics();
    use std::sync::atomic::Ordering::Relaxed;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while m.segments_deleted.load(Relaxed) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(m.segments_created.load(Relaxed) >= 4, "no rotation");
    assert!(m.checkpoint_count.load(Relaxed) >= 3, "no checkpoints");
    assert!(m.segments_deleted.load(Relaxed) >= 1, "no deletion");
}

#[test]
fn crash_at_every_operation_drop_unsynced() {
    sweep(CrashMode::DropUnsynced, false);
}

#[test]
fn crash_at_every_operation_torn_write() {
    sweep(
        CrashMode::TornWrite {
            seed: 7,
            sector_bytes: 512,
        },
        false,
    );
}

#[test]
fn crash_at_every_operation_keep_prefix() {
    sweep(CrashMode::KeepPrefix { seed: 11 }, false);
}

#[test]
fn io_error_at_every_operation() {
    sweep(CrashMode::DropUnsynced, true);
}
