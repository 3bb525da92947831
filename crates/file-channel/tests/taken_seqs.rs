//! `Transaction::taken_seqs`: the numbers a sink records to recognise an event delivered
//! again. They must be the same for the same event across a rollback and across a crash that
//! lost a take commit (the at-least-once redelivery sinks count as duplicates), and distinct
//! for distinct events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::sim_channel::{cfg, id_of, open, put_each};
use file_channel::FileChannel;
use file_channel_testkit::{CrashMode, SimStorage};

/// Takes `n` events; their ids and sequence numbers, and the open transaction.
fn take_n(ch: &FileChannel, n: usize) -> (Vec<usize>, Vec<u64>, file_channel::Transaction) {
    let mut tx = ch.transaction();
    let ids = (0..n)
        .map(|_| id_of(&tx.take().unwrap().unwrap()))
        .collect();
    let seqs = tx.taken_seqs();
    (ids, seqs, tx)
}

#[test]
fn an_event_keeps_its_number_across_a_rollback_and_a_crash_that_lost_its_take_commit() {
    let sim = SimStorage::new();
    let mut c = cfg();
    // No take commit is made durable by the clock during the test: only a put's fsync would.
    c.take_sync_interval_ms = 600_000;
    let ch = open(&sim, &c);
    let channel_id = ch.channel_id();
    put_each(&ch, 0..10);

    let (ids, first, tx) = take_n(&ch, 4);
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(first.len(), 4);
    let mut distinct = first.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        4,
        "distinct events, distinct numbers: {first:?}"
    );
    tx.rollback();

    let (ids, again, tx) = take_n(&ch, 4);
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(
        again, first,
        "a rolled-back event comes back with its number"
    );
    tx.commit().unwrap(); // acknowledged, not yet durable

    let (ids, later, tx) = take_n(&ch, 2);
    assert_eq!(ids, [4, 5]);
    assert!(
        later.iter().all(|s| !first.contains(s)),
        "{later:?} reuses one of {first:?}"
    );
    drop(tx);

    // A crash that keeps only what was fsynced: the take commit is lost, the puts are not.
    let image = sim.crash(CrashMode::DropUnsynced);
    drop(ch);
    let ch = open(&image, &c);
    assert_eq!(ch.channel_id(), channel_id);
    let (ids, after_crash, tx) = take_n(&ch, 6);
    assert_eq!(ids, [0, 1, 2, 3, 4, 5], "the lost take commit redelivers");
    assert_eq!(&after_crash[..4], &first[..], "same events, same numbers");
    assert_eq!(&after_crash[4..], &later[..]);
    tx.commit().unwrap();
    put_each(&ch, 10..12);
    let (ids, newer, _tx) = take_n(&ch, 6);
    assert_eq!(ids, [6, 7, 8, 9, 10, 11]);
    assert!(
        newer.iter().all(|s| !after_crash.contains(s)),
        "numbers are never reused after a restart: {newer:?} vs {after_crash:?}"
    );
}

#[test]
fn a_put_transaction_has_no_taken_numbers() {
    let sim = SimStorage::new();
    let ch = open(&sim, &cfg());
    let mut tx = ch.transaction();
    assert!(tx.taken_seqs().is_empty());
    tx.put(&file_channel::Event::new(b"x".to_vec())).unwrap();
    assert!(tx.taken_seqs().is_empty());
    tx.commit().unwrap();
}
