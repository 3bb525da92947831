//! The Kafka sink against librdkafka's in-process mock cluster (the real Kafka protocol on
//! 127.0.0.1): what it publishes (topic, key, partition, headers, Flume's Avro format,
//! transactions) and the abort path: a transaction whose commit is refused is aborted, its take
//! rolled back and sent again; brokers lost mid-batch roll the take back.
mod common;

use agent::event::Event;
use agent::runner::Status;
use agent::sink::Sink;
use common::kafka::{memory_channel, put_all, sink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    topic: String,
    partition: i32,
    key: Option<String>,
    value: Vec<u8>,
    headers: Vec<(String, String)>,
    timestamp_ms: Option<i64>,
}

/// Reads `n` records from the start of every partition of `topics` (fails after 20 s).
fn read_records(
    servers: &str,
    topics: &[(&str, i32)],
    n: usize,
    extra: &[(&str, &str)],
) -> Vec<Record> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", servers)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (t, parts) in topics {
        for p in 0..*parts {
            tpl.add_partition_offset(t, p, Offset::Beginning)
                .expect("add");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n && Instant::now() < deadline {
        if let Some(r) = consumer.poll(Duration::from_millis(200)) {
            let m = r.expect("record");
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Record {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: m.payload().unwrap_or_default().to_vec(),
                headers,
                timestamp_ms: m.timestamp().to_millis(),
            });
        }
    }
    // Anything more than n would be a duplicate: give it a moment to show up.
    while let Some(r) = consumer.poll(Duration::from_millis(300)) {
        let m = r.expect("record");
        out.push(Record {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            key: None,
            value: m.payload().unwrap_or_default().to_vec(),
            headers: vec![],
            timestamp_ms: None,
        });
    }
    out
}

fn body(r: &Record) -> String {
    String::from_utf8_lossy(&r.value).into_owned()
}

#[test]
fn sink_publishes_every_event_with_its_topic_key_partition_and_headers() {
    let cluster = MockCluster::new(3).expect("mock cluster");
    for t in ["logs", "logsweb", "audit"] {
        cluster.create_topic(t, 4, 1).expect("topic");
    }
    let servers = cluster.bootstrap_servers();
    let channel = memory_channel(1000);
    let mut events = Vec::new();
    for i in 0..40 {
        let mut e = Event::new(format!("e{i}"));
        if i % 4 == 0 {
            e = e.with_header("key", format!("k{i}"));
        }
        if i % 5 == 0 {
            e = e.with_header("p", "3");
        }
        if i % 10 == 1 {
            e = e.with_header("app", "web");
        }
        if i == 7 {
            e = e.with_header("topic", "audit");
        }
        e = e
            .with_header("trace", format!("t{i}"))
            .with_header("ts", "1700000000123");
        events.push(e);
    }
    put_all(&channel, &events);
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "logs%{app}"),
            ("flumeBatchSize", "16"),
            ("defaultPartitionId", "1"),
            ("partitionIdHeader", "p"),
            ("timestampHeader", "ts"),
            ("header.trace", "trace-id"),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("batch 1"), Status::Ready);
    assert_eq!(s.process().expect("batch 2"), Status::Ready);
    assert_eq!(s.process().expect("batch 3, partial"), Status::Ready);
    assert_eq!(s.process().expect("empty"), Status::Backoff);
    assert!(channel.is_empty());
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 40);
    assert_eq!(counters.batch_complete_count.load(Relaxed), 2);
    assert_eq!(counters.batch_underflow_count.load(Relaxed), 1);
    assert_eq!(s.kafka_counters().rollback_count.load(Relaxed), 0);
    s.stop();

    let got = read_records(
        &servers,
        &[("logs", 4), ("logsweb", 4), ("audit", 4)],
        40,
        &[],
    );
    assert_eq!(got.len(), 40, "{got:?}");
    let by_body: BTreeMap<String, &Record> = got.iter().map(|r| (body(r), r)).collect();
    for (i, e) in events.iter().enumerate() {
        let r = by_body[&format!("e{i}")];
        let want_topic = match (i, e.header("app")) {
            (7, _) => "audit",
            (_, Some(_)) => "logsweb",
            _ => "logs",
        };
        assert_eq!(r.topic, want_topic, "e{i}");
        assert_eq!(r.partition, if i % 5 == 0 { 3 } else { 1 }, "e{i}");
        assert_eq!(r.key, (i % 4 == 0).then(|| format!("k{i}")), "e{i}");
        assert_eq!(
            r.headers,
            vec![("trace-id".to_owned(), format!("t{i}"))],
            "e{i}"
        );
        assert_eq!(r.timestamp_ms, Some(1_700_000_000_123), "e{i}");
    }
}

#[test]
fn flume_event_format_carries_the_headers() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("avro", 1, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let channel = memory_channel(10);
    put_all(&channel, &[Event::new("hello").with_header("host", "h1")]);
    let (mut s, _) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "avro"),
            ("useFlumeEventFormat", "true"),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("batch"), Status::Ready);
    assert_eq!(s.process().expect("empty"), Status::Backoff);
    let got = read_records(&servers, &[("avro", 1)], 1, &[]);
    assert_eq!(got.len(), 1);
    let e = agent::avro_event::decode(&got[0].value).expect("an AvroFlumeEvent");
    assert_eq!(e.body, b"hello");
    assert_eq!(e.header("host"), Some("h1"));
}

#[test]
fn transactional_batches_are_committed_transactions() {
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster.create_topic("tx", 2, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let channel = memory_channel(100);
    let events: Vec<Event> = (0..25).map(|i| Event::new(format!("t{i}"))).collect();
    put_all(&channel, &events);
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "tx"),
            ("flumeBatchSize", "10"),
            ("kafka.producer.transactional.id", "sluice-k1"),
        ],
        &channel,
    );
    while s.process().expect("batch") == Status::Ready {}
    assert!(channel.is_empty());
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 25);
    s.stop();
    let got = read_records(
        &servers,
        &[("tx", 2)],
        25,
        &[("isolation.level", "read_committed")],
    );
    let mut bodies: Vec<String> = got.iter().map(body).collect();
    bodies.sort();
    let mut want: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
    want.sort();
    assert_eq!(bodies, want);
}

#[test]
fn brokers_lost_mid_batch_roll_the_take_back_and_nothing_is_lost() {
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster.create_topic("events", 3, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let channel = memory_channel(1000);
    let events: Vec<Event> = (0..300).map(|i| Event::new(format!("m{i}"))).collect();
    put_all(&channel, &events);
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "events"),
            ("flumeBatchSize", "100"),
            ("kafka.producer.delivery.timeout.ms", "1500"),
            ("kafka.producer.linger.ms", "0"),
        ],
        &channel,
    );
    // A first batch is sent (and confirmed by the next call).
    assert_eq!(s.process().expect("first batch"), Status::Ready);
    assert_eq!(channel.len(), 200);
    // Slow the brokers down so the next batch is in flight when they all go away.
    for b in 1..=3 {
        cluster
            .broker_round_trip_time(b, Duration::from_millis(400))
            .expect("rtt");
    }
    // The sink keeps one batch in flight (its take open) and confirms it in the next call:
    // call until one fails (whichever batch is in flight when the brokers go).
    let worker = std::thread::spawn(move || {
        let mut r = Ok(Status::Ready);
        for _ in 0..4 {
            r = s.process().map_err(|e| e.to_string());
            if r.is_err() {
                break;
            }
        }
        (s, r)
    });
    std::thread::sleep(Duration::from_millis(150));
    for b in 1..=3 {
        cluster.broker_down(b).expect("down");
    }
    let (mut s, r) = worker.join().expect("sink thread");
    let err = r.expect_err("the batch cannot be confirmed");
    assert!(err.contains("failed to publish events"), "{err}");
    let committed = counters.event_drain_success_count.load(Relaxed);
    assert_eq!(
        channel.len(),
        300 - committed,
        "every take not confirmed was rolled back"
    );
    assert!(channel.len() >= 100, "{} events back", channel.len());
    assert!(s.kafka_counters().rollback_count.load(Relaxed) >= 1);
    assert_eq!(counters.event_write_fail.load(Relaxed), 1);
    // Recovery: every event ends up in Kafka.
    for b in 1..=3 {
        cluster
            .broker_round_trip_time(b, Duration::ZERO)
            .expect("rtt");
        cluster.broker_up(b).expect("up");
    }
    // Until every take is committed: an empty channel is not enough, since the last batches
    // may still be in flight with their takes open (and librdkafka reconnects to a broker
    // that was down after a back-off of up to 10 s, longer than `stop` waits).
    let drained = || counters.event_drain_success_count.load(Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while drained() < 300 && Instant::now() < deadline {
        if let Err(e) = s.process() {
            eprintln!("retrying after: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(
        drained(),
        300,
        "{} events left in the channel",
        channel.len()
    );
    assert!(channel.is_empty(), "{} events left", channel.len());
    s.stop();
    let got = read_records(&servers, &[("events", 3)], 300, &[]);
    let distinct: std::collections::BTreeSet<String> = got.iter().map(body).collect();
    let want: std::collections::BTreeSet<String> = (0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(distinct, want, "every event delivered at least once");
}

#[test]
fn a_transactional_batch_whose_commit_fails_is_aborted_rolled_back_and_sent_again() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster.create_topic("txc", 2, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let channel = memory_channel(1000);
    let events: Vec<Event> = (0..200).map(|i| Event::new(format!("c{i}"))).collect();
    put_all(&channel, &events);
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "txc"),
            ("flumeBatchSize", "100"),
            ("kafka.producer.transactional.id", "sluice-commit-fails"),
            ("kafka.producer.linger.ms", "0"),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("first batch"), Status::Ready);
    // The second batch's records reach the log, then the broker refuses its EndTxn(commit):
    // the sink aborts the Kafka transaction and rolls the take back.
    cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS],
    );
    let err = s.process().expect_err("the commit is refused").to_string();
    assert!(err.contains("cannot commit the transaction"), "{err}");
    assert_eq!(channel.len(), 100, "the take was rolled back");
    assert_eq!(s.kafka_counters().rollback_count.load(Relaxed), 1);
    assert_eq!(counters.event_write_fail.load(Relaxed), 1);
    assert_eq!(s.process().expect("sent again"), Status::Ready);
    assert!(channel.is_empty());
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 200);
    s.stop();
    // The aborted copy is in the log too. librdkafka's mock cluster does not hide aborted
    // records from read_committed readers (a real broker does: kafka_broker.rs), so here the
    // reader sees the 200 events, the second 100 twice: the abort did not lose them, and the
    // retry sent exactly the rolled-back batch again.
    let got = read_records(&servers, &[("txc", 2)], 300, &[]);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got {
        *counts.entry(body(r)).or_default() += 1;
    }
    assert_eq!(counts.len(), 200, "every event");
    let twice: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n == 2)
        .map(|(b, _)| b)
        .collect();
    assert_eq!(twice.len(), 100, "only the aborted batch twice: {twice:?}");
    assert!(counts.values().all(|n| *n <= 2));
}

#[test]
fn a_transactional_batch_the_brokers_lose_is_aborted_and_read_committed_sees_each_event_once() {
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster.create_topic("txa", 2, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let channel = memory_channel(1000);
    let events: Vec<Event> = (0..200).map(|i| Event::new(format!("a{i}"))).collect();
    put_all(&channel, &events);
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "txa"),
            ("flumeBatchSize", "100"),
            ("kafka.producer.transactional.id", "sluice-abort"),
            ("kafka.producer.transaction.timeout.ms", "5000"),
            ("kafka.producer.delivery.timeout.ms", "1500"),
            ("kafka.producer.linger.ms", "0"),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("first batch"), Status::Ready);
    assert_eq!(channel.len(), 100);
    // The second batch is in flight when every broker goes away: it cannot commit, so the
    // sink aborts its Kafka transaction and rolls the take back.
    for b in 1..=3 {
        cluster
            .broker_round_trip_time(b, Duration::from_millis(400))
            .expect("rtt");
    }
    let worker = std::thread::spawn(move || {
        let r = s.process().map_err(|e| e.to_string());
        (s, r)
    });
    std::thread::sleep(Duration::from_millis(150));
    for b in 1..=3 {
        cluster.broker_down(b).expect("down");
    }
    let (mut s, r) = worker.join().expect("sink thread");
    r.expect_err("the transaction cannot commit");
    assert_eq!(channel.len(), 100, "the take was rolled back");
    assert!(s.kafka_counters().rollback_count.load(Relaxed) >= 1);
    for b in 1..=3 {
        cluster
            .broker_round_trip_time(b, Duration::ZERO)
            .expect("rtt");
        cluster.broker_up(b).expect("up");
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while !channel.is_empty() && Instant::now() < deadline {
        if let Err(e) = s.process() {
            eprintln!("retrying after: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(channel.is_empty(), "{} events left", channel.len());
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 200);
    s.stop();
    // The aborted attempt never reached the log (the brokers were gone): every event exactly
    // once.
    let got = read_records(
        &servers,
        &[("txa", 2)],
        200,
        &[("isolation.level", "read_committed")],
    );
    let mut bodies: Vec<String> = got.iter().map(body).collect();
    bodies.sort();
    let mut want: Vec<String> = (0..200).map(|i| format!("a{i}")).collect();
    want.sort();
    assert_eq!(bodies, want, "each event once");
}
