//! Tests of the memory channel.

use super::*;

fn cfg(capacity: u64, tc: u32) -> MemoryChannelConfig {
    MemoryChannelConfig {
        capacity,
        transaction_capacity: tc,
        byte_capacity: 0,
        byte_capacity_buffer_percentage: 20,
        keep_alive_ms: 50,
    }
}

fn put_all(ch: &MemoryChannel, bodies: &[&str]) -> Result<(), MemoryError> {
    let mut tx = ch.transaction();
    for b in bodies {
        tx.put(&Event::new(*b))?;
    }
    tx.commit()
}

fn take_n(ch: &MemoryChannel, n: usize) -> (MemoryTransaction, Vec<String>) {
    let mut tx = ch.transaction();
    let mut got = Vec::new();
    for _ in 0..n {
        match tx.take().expect("take") {
            Some(e) => got.push(String::from_utf8(e.body).expect("utf8")),
            None => break,
        }
    }
    (tx, got)
}

#[test]
fn puts_are_invisible_until_commit_and_fifo_after() {
    let ch = MemoryChannel::new(cfg(10, 10));
    let mut tx = ch.transaction();
    tx.put(&Event::new("a")).expect("put");
    assert_eq!(take_n(&ch, 1).1, Vec::<String>::new());
    tx.commit().expect("commit");
    put_all(&ch, &["b", "c"]).expect("commit");
    let (tx, got) = take_n(&ch, 5);
    assert_eq!(got, vec!["a", "b", "c"]);
    tx.commit().expect("commit");
    assert!(ch.is_empty());
}

#[test]
fn rolled_back_puts_vanish_and_takes_return_to_the_head_in_order() {
    let ch = MemoryChannel::new(cfg(10, 10));
    let mut tx = ch.transaction();
    tx.put(&Event::new("x")).expect("put");
    tx.rollback();
    put_all(&ch, &["a", "b", "c"]).expect("commit");
    let (tx, got) = take_n(&ch, 2);
    assert_eq!(got, vec!["a", "b"]);
    drop(tx); // drop = rollback
    let (_tx, got) = take_n(&ch, 3);
    assert_eq!(got, vec!["a", "b", "c"]);
}

#[test]
fn transaction_capacity_limits_puts_and_takes_with_flumes_messages() {
    let ch = MemoryChannel::new(cfg(10, 2));
    let mut tx = ch.transaction();
    tx.put(&Event::new("a")).expect("put");
    tx.put(&Event::new("b")).expect("put");
    let e = tx.put(&Event::new("c")).expect_err("full");
    assert_eq!(e.to_string(), "Put queue for MemoryTransaction of capacity 2 full, consider committing more frequently, increasing capacity or increasing thread count");
    tx.commit().expect("commit");
    put_all(&ch, &["c"]).expect("commit");
    let mut tx = ch.transaction();
    tx.take().expect("take");
    tx.take().expect("take");
    let e = tx.take().expect_err("full");
    assert_eq!(e, MemoryError::TakeListFull(2));
}

#[test]
fn capacity_is_checked_at_commit_after_keep_alive_and_counts_uncommitted_takes() {
    let ch = MemoryChannel::new(cfg(3, 3));
    put_all(&ch, &["a", "b"]).expect("commit");
    let started = Instant::now();
    let e = put_all(&ch, &["c", "d"]).expect_err("no room for two");
    assert_eq!(e, MemoryError::ChannelFull);
    assert!(started.elapsed() >= Duration::from_millis(50));
    // A take that has not committed still holds its room.
    let (tx, _) = take_n(&ch, 1);
    assert_eq!(put_all(&ch, &["c", "d"]), Err(MemoryError::ChannelFull));
    tx.commit().expect("commit");
    put_all(&ch, &["c", "d"]).expect("room after the take committed");
    assert_eq!(ch.len(), 3);
}

#[test]
fn a_waiting_commit_proceeds_when_room_appears() {
    let mut c = cfg(1, 1);
    c.keep_alive_ms = 5000;
    let ch = MemoryChannel::new(c);
    put_all(&ch, &["a"]).expect("commit");
    let ch2 = ch.clone();
    let t = std::thread::spawn(move || put_all(&ch2, &["b"]));
    std::thread::sleep(Duration::from_millis(50));
    let (tx, got) = take_n(&ch, 1);
    assert_eq!(got, vec!["a"]);
    tx.commit().expect("commit");
    t.join()
        .expect("thread")
        .expect("commit after room appeared");
    assert_eq!(take_n(&ch, 1).1, vec!["b"]);
}

#[test]
fn byte_capacity_counts_body_slots_with_the_buffer_percentage() {
    let mut c = cfg(100, 100);
    // 1000 bytes, 20 % buffer: 800 bytes = 8 slots of 100.
    c.byte_capacity = 1000;
    assert_eq!(c.byte_slots(), 8);
    let ch = MemoryChannel::new(c);
    let body_250 = "x".repeat(250); // 3 slots
    put_all(&ch, &[&body_250, &body_250]).expect("6 slots fit");
    let e = put_all(&ch, &[&body_250]).expect_err("9 slots do not");
    assert_eq!(e, MemoryError::ByteCapacityFull(800));
    put_all(&ch, &["", "y"]).expect("two 1-slot events fit");
    let (tx, _) = take_n(&ch, 1);
    tx.commit().expect("commit frees 3 slots");
    put_all(&ch, &[&body_250]).expect("fits again");
}

#[test]
fn unlimited_bytes_when_below_one_slot() {
    let mut c = cfg(10, 10);
    c.byte_capacity = 0;
    assert_eq!(c.byte_slots(), u64::MAX);
    c.byte_capacity = 1000;
    c.byte_capacity_buffer_percentage = 100;
    assert_eq!(c.byte_slots(), u64::MAX);
}

#[test]
fn puts_and_takes_do_not_mix() {
    let ch = MemoryChannel::new(cfg(10, 10));
    put_all(&ch, &["a"]).expect("commit");
    let mut tx = ch.transaction();
    tx.take().expect("take");
    assert_eq!(tx.put(&Event::new("b")), Err(MemoryError::MixedTransaction));
}

#[test]
fn counters_use_flumes_names() {
    let ch = MemoryChannel::new(cfg(4, 4));
    put_all(&ch, &["a", "b"]).expect("commit");
    let (tx, _) = take_n(&ch, 1);
    tx.commit().expect("commit");
    let m: std::collections::HashMap<_, _> = ch
        .metrics()
        .into_iter()
        .map(|m| (m.name, m.value))
        .collect();
    assert_eq!(m["ChannelSize"], Value::Gauge(1));
    assert_eq!(m["ChannelCapacity"], Value::Gauge(4));
    assert_eq!(m["EventPutAttemptCount"], Value::Counter(2));
    assert_eq!(m["EventPutSuccessCount"], Value::Counter(2));
    assert_eq!(m["EventTakeSuccessCount"], Value::Counter(1));
    assert_eq!(m["ChannelFillPercentage"], Value::Ratio(25.0));
}

#[test]
fn wait_for_events_wakes_on_commit() {
    let ch = MemoryChannel::new(cfg(4, 4));
    assert!(!ch.wait_for_events(Duration::from_millis(10)));
    let ch2 = ch.clone();
    let t = std::thread::spawn(move || ch2.wait_for_events(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(20));
    put_all(&ch, &["a"]).expect("commit");
    assert!(t.join().expect("thread"));
}

#[test]
fn take_timeout_wakes_on_commit_and_counts_one_attempt() {
    let ch = MemoryChannel::new(cfg(4, 4));
    let mut tx = ch.transaction();
    assert!(tx
        .take_timeout(Duration::from_millis(10))
        .expect("take")
        .is_none());
    let ch2 = ch.clone();
    let putter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        put_all(&ch2, &["a"]).expect("commit");
    });
    let e = tx.take_timeout(Duration::from_secs(10)).expect("take");
    putter.join().expect("putter");
    assert_eq!(e.map(|e| e.body), Some(b"a".to_vec()));
    tx.commit().expect("commit");
    // One attempt per call, however long it waited.
    let attempts = ch
        .metrics()
        .into_iter()
        .find(|m| m.name == "EventTakeAttemptCount")
        .map(|m| m.value);
    assert_eq!(attempts, Some(Value::Counter(2)));
}
