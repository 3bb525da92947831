//! The checker's own tests: events prove their integrity, the ledger finds every kind of
//! violation, and the tally names every figure.

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
