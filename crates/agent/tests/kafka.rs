//! The Kafka sink and source against librdkafka's in-process mock cluster (the real Kafka
//! protocol on 127.0.0.1): what the sink publishes (topic, key, partition, headers, Flume's
//! Avro format, transactions), rollback when the brokers go away mid-batch, the source through a
//! file channel into file_roll in a real agent process, resuming from its committed offsets
//! after a restart, and kafka-python (an independent client) on the other end of both.

mod common;

use agent::channel::{Channel, MemoryChannelConfig};
use agent::channel_processor::ChannelProcessor;
use agent::config::context::{Ctx, Entry};
use agent::event::Event;
use agent::metrics::SinkCounters;
use agent::runner::Status;
use agent::selector::Selector;
use agent::sink::kafka::{KafkaSink, KafkaSinkConfig};
use agent::sink::{Sink, SinkContext};
use agent::source::kafka::{KafkaSource, KafkaSourceConfig};
use agent::source::{PollableSource, SourceContext};
use common::{read_dir_lines, wait_until, write_conf, AgentProcess};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KAFKA_PYTHON: &str = "kafka-python==3.0.12";

/// Entries `prefix + key = value`, on lines 2, 3, ...
fn entries(prefix: &str, pairs: &[(&str, &str)]) -> Vec<Entry> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Entry {
            key: format!("{prefix}{k}"),
            value: (*v).into(),
            line: i as u32 + 2,
        })
        .collect()
}

fn parse<T>(prefix: &str, pairs: &[(&str, &str)], f: impl Fn(&Ctx<'_>) -> T) -> T {
    let list = entries(prefix, pairs);
    let ctx = Ctx::new(
        prefix,
        list.iter()
            .map(|e| (e.key.strip_prefix(prefix).unwrap_or(""), e))
            .collect(),
        1,
    );
    let cfg = f(&ctx);
    let d = ctx.finish("test component");
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    cfg
}

fn memory_channel(capacity: u64) -> Channel {
    Channel::memory(
        "c1",
        MemoryChannelConfig {
            capacity,
            transaction_capacity: capacity as u32,
            keep_alive_ms: 10,
            ..MemoryChannelConfig::default()
        },
    )
}

fn put_all(channel: &Channel, events: &[Event]) {
    let mut tx = channel.transaction();
    for e in events {
        tx.put(e).expect("put");
    }
    tx.commit().expect("commit");
}

fn sink(pairs: &[(&str, &str)], channel: &Channel) -> (KafkaSink, Arc<SinkCounters>) {
    let cfg = parse("a1.sinks.k1.", pairs, KafkaSinkConfig::parse);
    let counters = Arc::new(SinkCounters::default());
    let ctx = SinkContext {
        name: "k1".into(),
        channel: channel.clone(),
        counters: counters.clone(),
    };
    (KafkaSink::new(cfg, ctx), counters)
}

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
    // A first batch goes through.
    assert_eq!(s.process().expect("first batch"), Status::Ready);
    assert_eq!(channel.len(), 200);
    // Slow the brokers down so the next batch is in flight when they all go away.
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
    let err = r.expect_err("the batch cannot be confirmed");
    assert!(err.contains("failed to publish events"), "{err}");
    assert_eq!(channel.len(), 200, "the take was rolled back");
    assert_eq!(s.kafka_counters().rollback_count.load(Relaxed), 1);
    assert_eq!(counters.event_write_fail.load(Relaxed), 1);
    // Recovery: every event ends up in Kafka.
    for b in 1..=3 {
        cluster
            .broker_round_trip_time(b, Duration::ZERO)
            .expect("rtt");
        cluster.broker_up(b).expect("up");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !channel.is_empty() && Instant::now() < deadline {
        if let Err(e) = s.process() {
            eprintln!("retrying after: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(channel.is_empty(), "{} events left", channel.len());
    s.stop();
    let got = read_records(&servers, &[("events", 3)], 300, &[]);
    let distinct: std::collections::BTreeSet<String> = got.iter().map(body).collect();
    let want: std::collections::BTreeSet<String> = (0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(distinct, want, "every event delivered at least once");
}

fn produce(servers: &str, topic: &str, range: std::ops::Range<u32>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("producer");
    for i in range {
        let body = format!("r{i}");
        let key = format!("key{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "trace-id",
            value: Some(format!("t{i}").as_bytes()),
        });
        producer
            .send(
                BaseRecord::to(topic)
                    .payload(&body)
                    .key(&key)
                    .headers(headers),
            )
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

#[test]
fn source_puts_records_with_flume_headers_and_commits_after_the_put() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("in", 2, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    produce(&servers, "in", 0..30);
    let channel = memory_channel(1000);
    let cfg = parse(
        "a1.sources.r1.",
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topics", "in"),
            ("kafka.consumer.group.id", "g-unit"),
            ("kafka.consumer.auto.offset.reset", "earliest"),
            ("batchSize", "50"),
            ("batchDurationMillis", "3000"),
            ("header.trace", "trace-id"),
        ],
        KafkaSourceConfig::parse,
    );
    let processor = ChannelProcessor::new(
        "r1",
        vec![],
        Selector::Replicating {
            required: vec![0],
            optional: vec![],
        },
        vec![channel.clone()],
    );
    let ctx = SourceContext {
        name: "r1".into(),
        processor: Arc::new(processor),
        counters: Arc::default(),
    };
    let counters = ctx.counters.clone();
    let mut source = KafkaSource::new(cfg, ctx);
    let deadline = Instant::now() + Duration::from_secs(20);
    while channel.len() < 30 && Instant::now() < deadline {
        source.process().expect("process");
    }
    assert_eq!(channel.len(), 30);
    assert_eq!(counters.event_accepted_count.load(Relaxed), 30);
    source.stop();
    let mut tx = channel.transaction();
    let mut seen = BTreeMap::new();
    while let Some(e) = tx.take().expect("take") {
        seen.insert(String::from_utf8(e.body.clone()).expect("utf8"), e);
    }
    tx.commit().expect("commit");
    for i in 0..30 {
        let e = &seen[&format!("r{i}")];
        assert_eq!(e.header("topic"), Some("in"));
        assert_eq!(e.header("key"), Some(format!("key{i}").as_str()));
        assert_eq!(e.header("trace"), Some(format!("t{i}").as_str()));
        assert!(e.header("partition").is_some_and(|p| p == "0" || p == "1"));
        assert!(e.header("offset").is_some());
        assert!(e
            .header("timestamp")
            .is_some_and(|t| t.parse::<i64>().is_ok()));
    }
    // The group's committed offsets cover all 30 records.
    assert_eq!(committed_total(&servers, "g-unit", "in", 2), 30);
}

/// The agent's configuration. The session timeout is short because librdkafka's mock group
/// coordinator keeps a member that left until its session times out, so the restarted agent
/// would otherwise wait the default 45 s for its assignment.
fn committed_total(servers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    reader
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed")
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
        .sum()
}

fn drain(channel: &Channel) -> Vec<String> {
    let mut tx = channel.transaction();
    let mut v = Vec::new();
    for _ in 0..channel.len() {
        let e = tx.take().expect("take").expect("an event");
        v.push(String::from_utf8(e.body).expect("utf8"));
    }
    tx.commit().expect("commit");
    v
}

#[test]
fn source_commits_nothing_for_a_batch_the_channel_refused_and_reads_it_again() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("small", 1, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    produce(&servers, "small", 0..25);
    // Room for one batch only.
    let channel = memory_channel(10);
    let cfg = parse(
        "a1.sources.r1.",
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topics", "small"),
            ("kafka.consumer.group.id", "g-full"),
            ("kafka.consumer.auto.offset.reset", "earliest"),
            ("batchSize", "10"),
            ("batchDurationMillis", "2000"),
        ],
        KafkaSourceConfig::parse,
    );
    let ctx = SourceContext {
        name: "r1".into(),
        processor: Arc::new(ChannelProcessor::new(
            "r1",
            vec![],
            Selector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![channel.clone()],
        )),
        counters: Arc::default(),
    };
    let counters = ctx.counters.clone();
    let mut source = KafkaSource::new(cfg, ctx);
    let deadline = Instant::now() + Duration::from_secs(20);
    while channel.len() < 10 && Instant::now() < deadline {
        source.process().expect("process");
    }
    assert_eq!(channel.len(), 10);
    assert_eq!(committed_total(&servers, "g-full", "small", 1), 10);
    // The channel is full: the next batch is refused, nothing more is committed.
    assert_eq!(source.process().expect("process"), Status::Backoff);
    assert_eq!(counters.channel_write_fail.load(Relaxed), 1);
    assert_eq!(committed_total(&servers, "g-full", "small", 1), 10);
    // Drained, the refused records are read again, then the rest.
    let mut got = drain(&channel);
    while got.len() < 25 && Instant::now() < deadline {
        source.process().expect("process");
        got.extend(drain(&channel));
    }
    source.stop();
    let want: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want, "every record once, in order");
    assert_eq!(committed_total(&servers, "g-full", "small", 1), 25);
}

fn agent_conf(servers: &str, channel_dir: &Path, out: &Path) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.kafka.bootstrap.servers = {servers}\n\
         a1.sources.r1.kafka.topics = feed\n\
         a1.sources.r1.kafka.consumer.group.id = sluice-it\n\
         a1.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         a1.sources.r1.kafka.consumer.session.timeout.ms = 6000\n\
         a1.sources.r1.kafka.consumer.heartbeat.interval.ms = 500\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.batchDurationMillis = 200\n\
         a1.sources.r1.backoffSleepIncrement = 50\n\
         a1.sources.r1.maxBackoffSleep = 200\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {out}\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
        cp = channel_dir.join("cp").display(),
        data = channel_dir.join("data").display(),
        out = out.display(),
    )
}

#[test]
fn agent_source_to_file_channel_to_file_roll_resumes_from_committed_offsets() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("feed", 3, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let conf = write_conf(
        tmp.path(),
        "a.conf",
        &agent_conf(&servers, &tmp.path().join("ch"), &out),
    );
    produce(&servers, "feed", 0..500);
    let mut agent = AgentProcess::start(tmp.path(), &conf, "a1", true);
    agent.wait_started();
    let ok = wait_until(Duration::from_secs(30), || {
        read_dir_lines(&out).len() >= 500
    });
    assert!(
        ok,
        "{} of 500 lines\n{}",
        read_dir_lines(&out).len(),
        agent.log()
    );
    // Flume's KafkaSourceCounter names are served next to the SourceCounter ones.
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), 500);
    let m = agent.metrics();
    for name in ["KafkaEventGetTimer", "KafkaCommitTimer", "KafkaEmptyCount"] {
        assert!(m["SOURCE.r1"][name].is_string(), "{name} missing: {m}");
    }
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");

    // While it is down, more records arrive; after the restart only those are read.
    produce(&servers, "feed", 500..800);
    let mut agent = AgentProcess::start(tmp.path(), &conf, "a1", false);
    agent.wait_started();
    let ok = wait_until(Duration::from_secs(30), || {
        read_dir_lines(&out).len() >= 800
    });
    assert!(
        ok,
        "{} of 800 lines\n{}",
        read_dir_lines(&out).len(),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let mut lines = read_dir_lines(&out);
    lines.sort();
    let mut want: Vec<String> = (0..800).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(
        lines, want,
        "every record once: resumed from the committed offsets"
    );
}

#[test]
fn kafka_python_reads_what_the_sink_wrote_and_writes_what_the_source_reads() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("to-python", 1, 1).expect("topic");
    cluster.create_topic("from-python", 1, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kafka_peer.py");

    // Sluice sink -> kafka-python consumer.
    let channel = memory_channel(100);
    let events: Vec<Event> = (0..20)
        .map(|i| {
            Event::new(format!("s{i}"))
                .with_header("key", format!("k{i}"))
                .with_header("trace", format!("t{i}"))
        })
        .collect();
    put_all(&channel, &events);
    let (mut s, _) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "to-python"),
            ("header.trace", "trace-id"),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("batch"), Status::Ready);
    assert_eq!(s.process().expect("empty"), Status::Backoff);
    s.stop();
    let out = common::python::run_python_ok(
        &[KAFKA_PYTHON],
        &script,
        &["consume", &servers, "to-python", "20"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["value"], format!("s{i}"));
        assert_eq!(v["key"], format!("k{i}"));
        assert_eq!(v["headers"]["trace-id"], format!("t{i}"));
    }

    // kafka-python producer -> Sluice source.
    common::python::run_python_ok(
        &[KAFKA_PYTHON],
        &script,
        &["produce", &servers, "from-python", "25"],
    );
    let channel = memory_channel(100);
    let cfg = parse(
        "a1.sources.r1.",
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topics", "from-python"),
            ("kafka.consumer.auto.offset.reset", "earliest"),
            ("batchDurationMillis", "500"),
            ("header.trace", "trace-id"),
        ],
        KafkaSourceConfig::parse,
    );
    let ctx = SourceContext {
        name: "r1".into(),
        processor: Arc::new(ChannelProcessor::new(
            "r1",
            vec![],
            Selector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![channel.clone()],
        )),
        counters: Arc::default(),
    };
    let mut source = KafkaSource::new(cfg, ctx);
    let deadline = Instant::now() + Duration::from_secs(20);
    while channel.len() < 25 && Instant::now() < deadline {
        source.process().expect("process");
    }
    source.stop();
    let mut tx = channel.transaction();
    let mut got = Vec::new();
    while let Some(e) = tx.take().expect("take") {
        got.push(e);
    }
    tx.commit().expect("commit");
    assert_eq!(got.len(), 25);
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.body, format!("p{i}").into_bytes());
        assert_eq!(e.header("key"), Some(format!("pk{i}").as_str()));
        assert_eq!(e.header("trace"), Some(format!("pt{i}").as_str()));
        assert_eq!(e.header("topic"), Some("from-python"));
    }
}
