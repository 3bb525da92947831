//! The Kafka source against librdkafka's in-process mock cluster (the real Kafka protocol on
//! 127.0.0.1): records put with Flume's headers and committed only after the put, a batch the
//! channel refused read again, and the source through a file channel into file_roll in a real
//! agent process, resuming from its committed offsets after a restart.
mod common;

use agent::channel::Channel;
use agent::runner::Status;
use agent::source::kafka::{KafkaSource, KafkaSourceConfig};
use agent::source::PollableSource;
use common::kafka::{memory_channel, parse, source_ctx};
use common::{read_dir_lines, wait_until, write_conf, AgentProcess};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

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
    let ctx = source_ctx(&channel);
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

/// The sum of the offsets `group` has committed on the partitions of `topic`.
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
    let ctx = source_ctx(&channel);
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

/// The agent's configuration. The session timeout is short because librdkafka's mock group
/// coordinator keeps a member that left until its session times out, so the restarted agent
/// would otherwise wait the default 45 s for its assignment.
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
