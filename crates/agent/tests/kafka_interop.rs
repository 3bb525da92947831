//! kafka-python (an independent client, installed from PyPI on first use) on the other end of
//! the Kafka sink and source, through librdkafka's in-process mock cluster: it reads what the
//! sink wrote and writes what the source reads.
mod common;

use agent::event::Event;
use agent::runner::Status;
use agent::sink::Sink;
use agent::source::kafka::{KafkaSource, KafkaSourceConfig};
use agent::source::PollableSource;
use common::kafka::{memory_channel, parse, put_all, sink, source_ctx};
use rdkafka::mocking::MockCluster;
use std::path::Path;
use std::time::{Duration, Instant};

const KAFKA_PYTHON: &str = "kafka-python==3.0.12";

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
    let ctx = source_ctx(&channel);
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
