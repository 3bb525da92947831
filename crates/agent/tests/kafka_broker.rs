//! The Kafka sink and source against a real Kafka-compatible broker process (tansu, on
//! 127.0.0.1, `tests/common/broker.rs`), where librdkafka's mock cluster stands in elsewhere:
//! - kafka-python, an independent client, reads what the sink wrote and writes what the source
//!   reads;
//! - the source's abort path: a batch the channel refuses is not committed and is read again;
//! - two real agents, netcat → file channel → Kafka sink → broker → Kafka source → file
//!   channel → file_roll, each killed with SIGKILL mid-stream and restarted: every line
//!   acknowledged to netcat arrives.
mod common;

use agent::channel::Channel;
use agent::event::Event;
use agent::runner::Status;
use agent::sink::Sink;
use agent::source::kafka::{KafkaSource, KafkaSourceConfig};
use agent::source::PollableSource;
use common::broker::Broker;
use common::kafka::{memory_channel, parse, put_all, sink, source_ctx};
use common::{free_port, read_dir_lines, stream_lines, wait_until, write_conf, AgentProcess, Pace};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

// tansu 0.6.0 answers a Fetch only from the first offset of a record batch: a consumer that
// resumes inside a batch (from a committed offset, or after a seek back) gets nothing, forever.
// A real broker returns the batch that holds the offset. So the producers here send one record
// per batch (`batch.num.messages = 1`), and every offset starts a batch.

const KAFKA_PYTHON: &str = "kafka-python==3.0.12";

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kafka_peer.py")
}

/// Takes everything waiting, in transactions of at most 10 (the smallest channel's capacity).
fn drain(channel: &Channel) -> Vec<String> {
    let mut v = Vec::new();
    loop {
        let mut tx = channel.transaction();
        let mut n = 0;
        while n < 10 {
            let Some(e) = tx.take().expect("take") else {
                break;
            };
            v.push(String::from_utf8_lossy(&e.body).into_owned());
            n += 1;
        }
        tx.commit().expect("commit");
        if n < 10 {
            return v;
        }
    }
}

fn produce(servers: &str, topic: &str, range: std::ops::Range<u32>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("acks", "all")
        .set("batch.num.messages", "1")
        .create()
        .expect("producer");
    for i in range {
        let body = format!("r{i}");
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(&body))
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(20)).expect("flush");
}

#[test]
fn kafka_python_reads_what_the_sink_wrote_and_writes_what_the_source_reads() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("to-python", 1);
    broker.create_topic("from-python", 1);
    let servers = broker.bootstrap();

    let channel = memory_channel(100);
    let events: Vec<Event> = (0..20)
        .map(|i| {
            Event::new(format!("s{i}"))
                .with_header("key", format!("k{i}"))
                .with_header("trace", format!("t{i}"))
        })
        .collect();
    put_all(&channel, &events);
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "to-python"),
            ("header.trace", "trace-id"),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("batch"), Status::Ready);
    // The batch is in flight; a call that takes nothing confirms it.
    assert_eq!(s.process().expect("empty"), Status::Backoff);
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 20);
    s.stop();
    let out = common::python::run_python_ok(
        &[KAFKA_PYTHON],
        &script(),
        &["consume", &servers, "to-python", "20", "auto"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}\n{}", broker.log());
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["value"], format!("s{i}"));
        assert_eq!(v["key"], format!("k{i}"));
        assert_eq!(v["headers"]["trace-id"], format!("t{i}"));
    }

    common::python::run_python_ok(
        &[KAFKA_PYTHON],
        &script(),
        &["produce", &servers, "from-python", "25", "auto"],
    );
    let channel = memory_channel(100);
    let cfg = parse(
        "a1.sources.r1.",
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topics", "from-python"),
            ("kafka.consumer.group.id", "g-python"),
            ("kafka.consumer.auto.offset.reset", "earliest"),
            ("batchDurationMillis", "500"),
            ("header.trace", "trace-id"),
        ],
        KafkaSourceConfig::parse,
    );
    let mut source = KafkaSource::new(cfg, source_ctx(&channel));
    let deadline = Instant::now() + Duration::from_secs(30);
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
    assert_eq!(got.len(), 25, "{}", broker.log());
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.body, format!("p{i}").into_bytes());
        assert_eq!(e.header("key"), Some(format!("pk{i}").as_str()));
        assert_eq!(e.header("trace"), Some(format!("pt{i}").as_str()));
        assert_eq!(e.header("topic"), Some("from-python"));
    }
}

#[test]
fn a_batch_the_channel_refuses_is_not_committed_and_is_read_again() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("small", 1);
    let servers = broker.bootstrap();
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while channel.len() < 10 && Instant::now() < deadline {
        source.process().expect("process");
    }
    assert_eq!(channel.len(), 10, "{}", broker.log());
    // The channel is full: the next batch is refused and rolled back, its offsets uncommitted.
    assert_eq!(source.process().expect("process"), Status::Backoff);
    assert_eq!(counters.channel_write_fail.load(Relaxed), 1);
    let mut got = drain(&channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 25 && Instant::now() < deadline {
        source.process().expect("process");
        got.extend(drain(&channel));
    }
    source.stop();
    let want: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want, "every record once, in order");

    // A new consumer in the same group starts after the committed offsets: nothing is left.
    let channel = memory_channel(100);
    let cfg = parse(
        "a1.sources.r1.",
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topics", "small"),
            ("kafka.consumer.group.id", "g-full"),
            ("batchDurationMillis", "300"),
        ],
        KafkaSourceConfig::parse,
    );
    let mut again = KafkaSource::new(cfg, source_ctx(&channel));
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        again.process().expect("process");
    }
    again.stop();
    assert!(
        drain(&channel).is_empty(),
        "the refused batch was committed once it was put"
    );
}

/// Agent A: netcat → file channel → Kafka sink.
fn producer_conf(port: u16, servers: &str, dir: &Path) -> String {
    format!(
        "a.sources = r1\n\
         a.channels = c1\n\
         a.sinks = k1\n\
         a.sources.r1.type = netcat\n\
         a.sources.r1.bind = 127.0.0.1\n\
         a.sources.r1.port = {port}\n\
         a.sources.r1.batch-size = 50\n\
         a.sources.r1.channels = c1\n\
         a.channels.c1.type = file\n\
         a.channels.c1.checkpointDir = {cp}\n\
         a.channels.c1.dataDirs = {data}\n\
         a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a.sinks.k1.channel = c1\n\
         a.sinks.k1.kafka.bootstrap.servers = {servers}\n\
         a.sinks.k1.kafka.topic = relay\n\
         a.sinks.k1.flumeBatchSize = 100\n\
         a.sinks.k1.kafka.producer.batch.num.messages = 1\n",
        cp = dir.join("cp").display(),
        data = dir.join("data").display(),
    )
}

/// Agent B: Kafka source → file channel → file_roll. The session timeout is short so that the
/// broker drops a killed member's partitions in seconds, not the default 45 s.
fn consumer_conf(servers: &str, dir: &Path, out: &Path) -> String {
    format!(
        "b.sources = r1\n\
         b.channels = c1\n\
         b.sinks = k1\n\
         b.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
         b.sources.r1.channels = c1\n\
         b.sources.r1.kafka.bootstrap.servers = {servers}\n\
         b.sources.r1.kafka.topics = relay\n\
         b.sources.r1.kafka.consumer.group.id = relay-b\n\
         b.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         b.sources.r1.kafka.consumer.session.timeout.ms = 6000\n\
         b.sources.r1.kafka.consumer.heartbeat.interval.ms = 500\n\
         b.sources.r1.batchSize = 100\n\
         b.sources.r1.batchDurationMillis = 200\n\
         b.channels.c1.type = file\n\
         b.channels.c1.checkpointDir = {cp}\n\
         b.channels.c1.dataDirs = {data}\n\
         b.sinks.k1.type = file_roll\n\
         b.sinks.k1.channel = c1\n\
         b.sinks.k1.sink.directory = {out}\n\
         b.sinks.k1.sink.rollInterval = 0\n",
        cp = dir.join("cp").display(),
        data = dir.join("data").display(),
        out = out.display(),
    )
}

const PACE: Pace = Pace {
    every: 20,
    pause: Duration::from_millis(5),
};

#[test]
fn two_agents_relaying_through_the_broker_lose_nothing_acknowledged_across_sigkills() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("relay", 3);
    let servers = broker.bootstrap();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let port = free_port();
    let a_conf = write_conf(
        tmp.path(),
        "a.conf",
        &producer_conf(port, &servers, &tmp.path().join("a")),
    );
    let b_conf = write_conf(
        tmp.path(),
        "b.conf",
        &consumer_conf(&servers, &tmp.path().join("b"), &out),
    );
    let mut acked_lines = BTreeSet::new();
    let mut sent_lines = BTreeSet::new();
    for round in 0..2u32 {
        let mut a = AgentProcess::start(tmp.path(), &a_conf, "a", false);
        a.wait_started();
        let mut b = AgentProcess::start(tmp.path(), &b_conf, "b", false);
        b.wait_started();
        let relayed_before = read_dir_lines(&out).len();
        let acked = Arc::new(AtomicUsize::new(0));
        let client = stream_lines(port, round, acked.clone(), PACE, None);
        let relayed = wait_until(Duration::from_secs(60), || {
            acked.load(SeqCst) >= 2000 && read_dir_lines(&out).len() >= relayed_before + 500
        });
        assert!(
            relayed,
            "a:\n{}\nb:\n{}\nbroker:\n{}",
            a.log(),
            b.log(),
            broker.log()
        );
        // Both die mid-stream: A with events in its channel and batches in flight to the
        // broker, B with records read and not yet committed.
        b.kill9();
        a.kill9();
        let sent = client.join().expect("client");
        let n = acked.load(SeqCst);
        acked_lines.extend((0..n).map(|i| format!("line-{round}-{i:07}")));
        sent_lines.extend((0..sent).map(|i| format!("line-{round}-{i:07}")));
        eprintln!("round {round}: sent {sent}, acknowledged {n}");
    }
    // Restarted, A drains its channel into the broker and B everything into file_roll.
    let mut a = AgentProcess::start(tmp.path(), &a_conf, "a", false);
    a.wait_started();
    let mut b = AgentProcess::start(tmp.path(), &b_conf, "b", false);
    b.wait_started();
    let ok = wait_until(Duration::from_secs(90), || {
        let have: BTreeSet<String> = read_dir_lines(&out).into_iter().collect();
        acked_lines.iter().all(|l| have.contains(l))
    });
    let have = read_dir_lines(&out);
    let (sa, la) = a.terminate();
    let (sb, lb) = b.terminate();
    assert!(sa.success() && sb.success(), "a:\n{la}\nb:\n{lb}");
    let set: BTreeSet<&String> = have.iter().collect();
    let missing: Vec<&String> = acked_lines
        .iter()
        .filter(|l| !set.contains(l))
        .take(10)
        .collect();
    assert!(
        ok,
        "acknowledged but not relayed (first 10): {missing:?}\n{lb}"
    );
    for l in &have {
        assert!(sent_lines.contains(l), "{l:?} was never sent");
    }
    eprintln!(
        "acknowledged {}, relayed {} ({} distinct)",
        acked_lines.len(),
        have.len(),
        set.len()
    );
}
