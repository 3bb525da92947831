//! Every limit of the channel at its edge: exactly at the limit is accepted, one past is refused
//! with the right typed error (and the error's fields are checked). Covers transaction
//! capacity (puts and takes), capacity and byte limit with keep-alive, a put waiting for room a
//! concurrent take frees, the per-event limits, a record too large for a segment, configuration
//! validation, mixed transactions and `take_timeout`.
//!
//! One topic kept in one file of about 600 lines: each test is one limit's edge, short and
//! independent of the others, and together they read as the channel's table of limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::drain;

use file_channel::config::ConfigError;
use file_channel::format::event::EventTooLarge;
use file_channel::format::record::{align_up, RECORD_HEADER_BYTES, SEAL_RECORD_BYTES};
use file_channel::format::segment_header::SEGMENT_HEADER_BYTES;
use file_channel::limits::{
    MAX_EVENTS_PER_TXN, MAX_EVENT_BYTES, MAX_HEADERS_PER_EVENT, MAX_HEADER_FIELD_BYTES,
    MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES,
};
use file_channel::{ChannelConfig, Event, FileChannel, FullLimit, OpenError, PutError, TakeError};
use file_channel_testkit::SimStorage;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEEP_ALIVE_MS: u64 = 50;

fn cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new("/chan");
    c.prefill_ahead_bytes = 0;
    c.keep_alive_ms = KEEP_ALIVE_MS;
    c
}

fn open(cfg: ChannelConfig) -> FileChannel {
    FileChannel::open_with(cfg, Arc::new(SimStorage::new())).unwrap()
}

fn ev(body: &str) -> Event {
    Event::new(body.as_bytes().to_vec())
}

fn put_commit(ch: &FileChannel, bodies: &[&str]) {
    let mut tx = ch.transaction();
    for b in bodies {
        tx.put(&ev(b)).unwrap();
    }
    tx.commit().unwrap();
}

fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8(e.body.clone()).unwrap())
        .collect()
}

#[test]
fn put_transaction_capacity_edge() {
    let mut c = cfg();
    c.transaction_capacity = 5;
    let ch = open(c);
    let mut tx = ch.transaction();
    for i in 0..5 {
        tx.put(&ev(&format!("e{i}"))).unwrap();
    }
    assert_eq!(tx.len(), 5);
    match tx.put(&ev("e5")) {
        Err(PutError::TransactionFull { capacity }) => assert_eq!(capacity, 5),
        other => panic!("expected TransactionFull, got {other:?}"),
    }
    assert_eq!(
        tx.len(),
        5,
        "the refused put must not be in the transaction"
    );
    tx.commit().unwrap();
    assert_eq!(ch.len(), 5);
    assert_eq!(bodies(&drain(&ch)), ["e0", "e1", "e2", "e3", "e4"]);
}

#[test]
fn take_transaction_capacity_edge() {
    let mut c = cfg();
    c.transaction_capacity = 5;
    let ch = open(c);
    put_commit(&ch, &["a", "b", "c", "d"]);
    put_commit(&ch, &["e", "f", "g"]);
    let mut tx = ch.transaction();
    let mut taken = Vec::new();
    for _ in 0..5 {
        taken.push(tx.take().unwrap().unwrap());
    }
    assert_eq!(bodies(&taken), ["a", "b", "c", "d", "e"]);
    match tx.take() {
        Err(TakeError::TransactionFull { capacity }) => assert_eq!(capacity, 5),
        other => panic!("expected TransactionFull, got {other:?}"),
    }
    match tx.take_timeout(Duration::from_millis(1)) {
        Err(TakeError::TransactionFull { capacity }) => assert_eq!(capacity, 5),
        other => panic!("expected TransactionFull, got {other:?}"),
    }
    assert_eq!(tx.len(), 5);
    tx.commit().unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!(bodies(&drain(&ch)), ["f", "g"]);
}

#[test]
fn capacity_edge_waits_keep_alive_then_refuses() {
    let mut c = cfg();
    c.capacity = 10;
    c.transaction_capacity = 10;
    let ch = open(c);
    let names: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    put_commit(&ch, &refs);
    assert_eq!(ch.len(), 10, "exactly capacity events are accepted");

    let mut tx = ch.transaction();
    let started = Instant::now();
    let err = tx.put(&ev("one too many")).unwrap_err();
    let elapsed = started.elapsed();
    match err {
        PutError::ChannelFull { limit, waited_ms } => {
            assert_eq!(limit, FullLimit::Capacity(10));
            assert!(
                waited_ms >= KEEP_ALIVE_MS,
                "waited_ms {waited_ms} < keep-alive"
            );
        }
        other => panic!("expected ChannelFull, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(KEEP_ALIVE_MS),
        "refused after {elapsed:?}, before keep-alive"
    );
    assert!(tx.is_empty());
    drop(tx);
    assert_eq!(ch.metrics().channel_full_count.load(Ordering::Relaxed), 1);

    // Taking one frees exactly one slot.
    let mut t = ch.transaction();
    assert_eq!(t.take().unwrap().unwrap().body, b"e0");
    t.commit().unwrap();
    let mut tx = ch.transaction();
    tx.put(&ev("e10")).unwrap();
    match tx.put(&ev("e11")) {
        Err(PutError::ChannelFull { limit, .. }) => assert_eq!(limit, FullLimit::Capacity(10)),
        other => panic!("expected ChannelFull, got {other:?}"),
    }
    tx.commit().unwrap();
    assert_eq!(ch.len(), 10);
    let got = drain(&ch);
    assert_eq!(got.len(), 10);
    assert_eq!(got[0].body, b"e1");
    assert_eq!(got[9].body, b"e10");
}

#[test]
fn capacity_counts_puts_in_open_transactions() {
    let mut c = cfg();
    c.capacity = 10;
    c.transaction_capacity = 10;
    let ch = open(c);
    let mut a = ch.transaction();
    for i in 0..6 {
        a.put(&ev(&format!("a{i}"))).unwrap();
    }
    let mut b = ch.transaction();
    for i in 0..4 {
        b.put(&ev(&format!("b{i}"))).unwrap();
    }
    match b.put(&ev("b4")) {
        Err(PutError::ChannelFull { limit, waited_ms }) => {
            assert_eq!(limit, FullLimit::Capacity(10));
            assert!(waited_ms >= KEEP_ALIVE_MS);
        }
        other => panic!("expected ChannelFull, got {other:?}"),
    }
    a.rollback();
    b.put(&ev("b4")).unwrap();
    b.commit().unwrap();
    assert_eq!(bodies(&drain(&ch)), ["b0", "b1", "b2", "b3", "b4"]);
}

#[test]
fn bytes_max_edge() {
    // Each of these events encodes to 2 + 4 + 14 = 20 bytes.
    let e = |i: u32| Event::new(format!("event-numbr-{i:02}").into_bytes());
    assert_eq!(e(0).encoded_len(), 20);
    let mut c = cfg();
    c.bytes_max = Some(60);
    let ch = open(c);
    let mut tx = ch.transaction();
    for i in 0..3 {
        tx.put(&e(i)).unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(
        ch.pending_bytes(),
        60,
        "exactly bytes_max bytes are accepted"
    );

    let mut tx = ch.transaction();
    let started = Instant::now();
    // Even the smallest event (6 bytes) does not fit.
    match tx.put(&Event::new(Vec::new())) {
        Err(PutError::ChannelFull { limit, waited_ms }) => {
            assert_eq!(limit, FullLimit::Bytes(60));
            assert!(waited_ms >= KEEP_ALIVE_MS, "waited_ms {waited_ms}");
        }
        other => panic!("expected ChannelFull(Bytes), got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(KEEP_ALIVE_MS));
    drop(tx);

    // Free 20 bytes: an event of exactly 20 fits, one of 21 does not.
    let mut t = ch.transaction();
    assert_eq!(t.take().unwrap().unwrap(), e(0));
    t.commit().unwrap();
    assert_eq!(ch.pending_bytes(), 40);
    let mut tx = ch.transaction();
    let big = Event::new(vec![b'x'; 15]);
    assert_eq!(big.encoded_len(), 21);
    match tx.put(&big) {
        Err(PutError::ChannelFull { limit, .. }) => assert_eq!(limit, FullLimit::Bytes(60)),
        other => panic!("expected ChannelFull(Bytes), got {other:?}"),
    }
    tx.put(&e(3)).unwrap();
    tx.commit().unwrap();
    assert_eq!(ch.pending_bytes(), 60);
    assert_eq!(drain(&ch), vec![e(1), e(2), e(3)]);
}

#[test]
fn bytes_max_refuses_an_event_larger_than_the_limit_alone() {
    let mut c = cfg();
    c.bytes_max = Some(100);
    let ch = open(c);
    let mut tx = ch.transaction();
    let exact = Event::new(vec![7u8; 94]);
    assert_eq!(exact.encoded_len(), 100);
    tx.put(&exact).unwrap();
    tx.rollback();
    let mut tx = ch.transaction();
    match tx.put(&Event::new(vec![7u8; 95])) {
        Err(PutError::ChannelFull { limit, .. }) => assert_eq!(limit, FullLimit::Bytes(100)),
        other => panic!("expected ChannelFull(Bytes), got {other:?}"),
    }
    tx.put(&exact).unwrap();
    tx.commit().unwrap();
    assert_eq!(drain(&ch), vec![exact]);
}

#[test]
fn put_waits_for_room_freed_by_a_concurrent_take_commit() {
    let mut c = cfg();
    c.capacity = 4;
    c.transaction_capacity = 4;
    c.keep_alive_ms = 20_000;
    let ch = open(c);
    put_commit(&ch, &["e0", "e1", "e2", "e3"]);
    let committing = Arc::new(AtomicBool::new(false));
    let taker = {
        let ch = ch.clone();
        let committing = committing.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut t = ch.transaction();
            let e = t.take().unwrap().unwrap();
            committing.store(true, Ordering::SeqCst);
            t.commit().unwrap();
            e
        })
    };
    let mut tx = ch.transaction();
    tx.put(&ev("e4")).unwrap();
    assert!(
        committing.load(Ordering::SeqCst),
        "the put succeeded before any room was freed"
    );
    tx.commit().unwrap();
    assert_eq!(taker.join().unwrap().body, b"e0");
    assert_eq!(ch.metrics().channel_full_count.load(Ordering::Relaxed), 0);
    assert_eq!(bodies(&drain(&ch)), ["e1", "e2", "e3", "e4"]);
}

#[test]
fn put_waits_for_bytes_freed_by_a_concurrent_take_commit() {
    let mut c = cfg();
    // Two events of 16 encoded bytes fill 32 of 34; the third (18 bytes) fits only once one of
    // the first two is consumed, and then exactly (16 + 18 = 34).
    c.bytes_max = Some(34);
    c.keep_alive_ms = 20_000;
    let ch = open(c);
    assert_eq!(ev("0123456789").encoded_len(), 16);
    assert_eq!(ev("klmnopqrstuv").encoded_len(), 18);
    put_commit(&ch, &["0123456789", "abcdefghij"]);
    let committing = Arc::new(AtomicBool::new(false));
    let taker = {
        let ch = ch.clone();
        let committing = committing.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut t = ch.transaction();
            let e = t.take().unwrap().unwrap();
            committing.store(true, Ordering::SeqCst);
            t.commit().unwrap();
            e
        })
    };
    let mut tx = ch.transaction();
    tx.put(&ev("klmnopqrstuv")).unwrap();
    assert!(committing.load(Ordering::SeqCst));
    tx.commit().unwrap();
    assert_eq!(ch.pending_bytes(), 34);
    assert_eq!(taker.join().unwrap().body, b"0123456789");
    assert_eq!(bodies(&drain(&ch)), ["abcdefghij", "klmnopqrstuv"]);
}

#[test]
fn event_header_count_edge() {
    let ch = open(cfg());
    let mut at_limit = Event::new(b"h".to_vec());
    at_limit.headers = (0..MAX_HEADERS_PER_EVENT)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let mut tx = ch.transaction();
    tx.put(&at_limit).unwrap();
    let mut over = at_limit.clone();
    over.headers.push(("one".into(), "more".into()));
    match tx.put(&over) {
        Err(PutError::Event(EventTooLarge::TooManyHeaders { count })) => {
            assert_eq!(count, MAX_HEADERS_PER_EVENT + 1);
        }
        other => panic!("expected TooManyHeaders, got {other:?}"),
    }
    assert_eq!(tx.len(), 1);
    tx.commit().unwrap();
    assert_eq!(drain(&ch), vec![at_limit]);
}

#[test]
fn event_header_field_length_edge() {
    let ch = open(cfg());
    let long_value = Event::new(b"v".to_vec()).with_header("k", "v".repeat(MAX_HEADER_FIELD_BYTES));
    let long_key = Event::new(b"k".to_vec()).with_header("k".repeat(MAX_HEADER_FIELD_BYTES), "v");
    let mut tx = ch.transaction();
    tx.put(&long_value).unwrap();
    tx.put(&long_key).unwrap();
    match tx.put(&Event::new(vec![]).with_header("key", "v".repeat(MAX_HEADER_FIELD_BYTES + 1))) {
        Err(PutError::Event(EventTooLarge::HeaderTooLong { key, len })) => {
            assert_eq!(key, "key");
            assert_eq!(len, MAX_HEADER_FIELD_BYTES + 1);
        }
        other => panic!("expected HeaderTooLong, got {other:?}"),
    }
    match tx.put(&Event::new(vec![]).with_header("K".repeat(MAX_HEADER_FIELD_BYTES + 1), "v")) {
        Err(PutError::Event(EventTooLarge::HeaderTooLong { key, len })) => {
            assert_eq!(key, "K".repeat(64), "the key is cut to 64 characters");
            assert_eq!(len, MAX_HEADER_FIELD_BYTES + 1);
        }
        other => panic!("expected HeaderTooLong, got {other:?}"),
    }
    assert_eq!(tx.len(), 2);
    tx.commit().unwrap();
    assert_eq!(drain(&ch), vec![long_value, long_key]);
}

#[test]
fn event_size_edge() {
    let ch = open(cfg());
    let body_at_limit = (MAX_EVENT_BYTES - 6) as usize;
    let mut body = vec![0u8; body_at_limit];
    for (i, b) in body.iter_mut().enumerate().step_by(4093) {
        *b = (i % 251) as u8;
    }
    let at_limit = Event::new(body);
    assert_eq!(at_limit.encoded_len(), MAX_EVENT_BYTES);
    let mut tx = ch.transaction();
    tx.put(&at_limit).unwrap();
    tx.commit().unwrap();
    let mut tx = ch.transaction();
    match tx.put(&Event::new(vec![1u8; body_at_limit + 1])) {
        Err(PutError::Event(EventTooLarge::TooLarge { len })) => {
            assert_eq!(len, MAX_EVENT_BYTES + 1);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Headers count towards the limit too.
    match tx.put(&Event::new(vec![1u8; body_at_limit]).with_header("", "")) {
        Err(PutError::Event(EventTooLarge::TooLarge { len })) => {
            assert_eq!(len, MAX_EVENT_BYTES + 4);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(tx.is_empty());
    drop(tx);
    let got = drain(&ch);
    assert_eq!(got.len(), 1);
    assert!(got[0] == at_limit, "the largest event did not round-trip");
}

#[test]
fn transaction_record_larger_than_a_segment_is_refused() {
    let mut c = cfg();
    c.segment_bytes_max = MIN_SEGMENT_BYTES;
    let limit = MIN_SEGMENT_BYTES - SEGMENT_HEADER_BYTES as u64 - SEAL_RECORD_BYTES;
    assert_eq!(limit % 8, 0);
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(c.clone(), Arc::new(sim.clone())).unwrap();

    // One event whose record is exactly the limit.
    let body = (limit - RECORD_HEADER_BYTES as u64 - 6) as usize;
    let exact = Event::new(vec![b'x'; body]);
    let mut tx = ch.transaction();
    tx.put(&exact).unwrap();
    tx.rollback();
    let mut tx = ch.transaction();
    match tx.put(&Event::new(vec![b'x'; body + 1])) {
        Err(PutError::TransactionTooLarge { bytes, limit: l }) => {
            assert_eq!(l, limit);
            assert_eq!(bytes, limit + 8);
        }
        other => panic!("expected TransactionTooLarge, got {other:?}"),
    }
    assert!(tx.is_empty());
    drop(tx);

    // Several events: a record of exactly the limit is accepted; one byte more is refused, and
    // the transaction keeps (and commits) the events put before.
    let first = Event::new(vec![b'a'; 1000]);
    let first_len = RECORD_HEADER_BYTES as u64 + first.encoded_len();
    let fill = Event::new(vec![b'b'; (limit - first_len - 6) as usize]);
    assert_eq!(align_up(first_len + fill.encoded_len()), limit);
    let mut tx = ch.transaction();
    tx.put(&first).unwrap();
    tx.put(&fill).unwrap();
    tx.rollback();
    let over = Event::new(vec![b'b'; (limit - first_len - 6) as usize + 1]);
    let would_be = align_up(first_len + over.encoded_len());
    assert_eq!(would_be, limit + 8);
    let mut tx = ch.transaction();
    tx.put(&first).unwrap();
    match tx.put(&over) {
        Err(PutError::TransactionTooLarge { bytes, limit: l }) => {
            assert_eq!((bytes, l), (would_be, limit));
        }
        other => panic!("expected TransactionTooLarge, got {other:?}"),
    }
    assert_eq!(tx.len(), 1);
    tx.commit().unwrap();

    // A record of exactly the limit is written (it fills a fresh segment) and replays.
    let mut tx = ch.transaction();
    tx.put(&exact).unwrap();
    tx.commit().unwrap();
    put_commit(&ch, &["after"]);
    ch.close().unwrap();
    let ch = FileChannel::open_with(c, Arc::new(sim)).unwrap();
    assert_eq!(ch.len(), 3);
    assert!(ch.open_report().segments >= 3, "{:?}", ch.open_report());
    assert_eq!(drain(&ch), vec![first, exact, ev("after")]);
}

fn config_key(c: &ChannelConfig) -> &'static str {
    let err: ConfigError = c.validate().unwrap_err();
    assert!(
        err.to_string().contains(err.key),
        "message {err} does not name {}",
        err.key
    );
    err.key
}

#[test]
fn config_validation_names_the_key() {
    let base = ChannelConfig::new("/chan");
    base.validate().unwrap();

    let mut c = base.clone();
    c.capacity = 0;
    assert_eq!(config_key(&c), "capacity");
    c.capacity = 1;
    c.transaction_capacity = 1;
    c.validate().unwrap();

    let mut c = base.clone();
    c.transaction_capacity = 0;
    assert_eq!(config_key(&c), "transaction_capacity");

    let mut c = base.clone();
    c.capacity = 100;
    c.transaction_capacity = 101;
    assert_eq!(config_key(&c), "transaction_capacity");
    c.transaction_capacity = 100;
    c.validate().unwrap();

    let mut c = base.clone();
    c.capacity = u64::from(MAX_EVENTS_PER_TXN) * 2;
    c.transaction_capacity = MAX_EVENTS_PER_TXN + 1;
    assert_eq!(config_key(&c), "transaction_capacity");
    c.transaction_capacity = MAX_EVENTS_PER_TXN;
    c.validate().unwrap();

    let mut c = base.clone();
    c.segment_bytes_max = MIN_SEGMENT_BYTES - 1;
    assert_eq!(config_key(&c), "segment_bytes_max");
    c.segment_bytes_max = MIN_SEGMENT_BYTES;
    c.validate().unwrap();
    c.segment_bytes_max = MAX_SEGMENT_BYTES;
    c.validate().unwrap();
    c.segment_bytes_max = MAX_SEGMENT_BYTES + 1;
    assert_eq!(config_key(&c), "segment_bytes_max");

    let mut c = base.clone();
    c.data_dirs = vec![PathBuf::from("/d1"), PathBuf::from("/d2")];
    c.validate().unwrap();
    c.data_dirs = vec![
        PathBuf::from("/d1"),
        PathBuf::from("/d2"),
        PathBuf::from("/d1"),
    ];
    assert_eq!(config_key(&c), "data_dirs");
}

#[test]
fn open_refuses_an_invalid_config_with_the_key() {
    let mut c = cfg();
    c.transaction_capacity = 0;
    let sim = SimStorage::new();
    match FileChannel::open_with(c, Arc::new(sim.clone())) {
        Err(OpenError::Config(e)) => assert_eq!(e.key, "transaction_capacity"),
        other => panic!("expected OpenError::Config, got {other:?}"),
    }
    assert!(sim.list_all().is_empty(), "an invalid config created files");
}

#[test]
fn take_in_a_put_transaction_is_refused() {
    let ch = open(cfg());
    put_commit(&ch, &["old"]);
    let mut tx = ch.transaction();
    tx.put(&ev("new")).unwrap();
    match tx.take() {
        Err(TakeError::MixedTransaction) => {}
        other => panic!("expected MixedTransaction, got {other:?}"),
    }
    match tx.take_timeout(Duration::from_millis(1)) {
        Err(TakeError::MixedTransaction) => {}
        other => panic!("expected MixedTransaction, got {other:?}"),
    }
    assert_eq!(tx.len(), 1);
    tx.commit().unwrap();
    assert_eq!(bodies(&drain(&ch)), ["old", "new"]);
}

#[test]
fn put_in_a_take_transaction_is_refused() {
    let ch = open(cfg());
    put_commit(&ch, &["a", "b"]);
    let mut tx = ch.transaction();
    assert_eq!(tx.take().unwrap().unwrap().body, b"a");
    match tx.put(&ev("c")) {
        Err(PutError::MixedTransaction) => {}
        other => panic!("expected MixedTransaction, got {other:?}"),
    }
    assert_eq!(tx.len(), 1);
    tx.rollback();
    assert_eq!(ch.len(), 2, "the refused put must not have been added");
    assert_eq!(bodies(&drain(&ch)), ["a", "b"]);
}

#[test]
fn take_timeout_returns_none_after_the_timeout_on_an_empty_channel() {
    let ch = open(cfg());
    let mut tx = ch.transaction();
    let started = Instant::now();
    assert_eq!(tx.take_timeout(Duration::from_millis(100)).unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(tx.is_empty());
    tx.commit().unwrap();
}

#[test]
fn take_timeout_returns_an_event_committed_while_waiting() {
    let ch = open(cfg());
    let producer = {
        let ch = ch.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            put_commit(&ch, &["late"]);
        })
    };
    let mut tx = ch.transaction();
    let got = tx.take_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(got, Some(ev("late")));
    tx.commit().unwrap();
    producer.join().unwrap();
    assert_eq!(ch.len(), 0);
}
