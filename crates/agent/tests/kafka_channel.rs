//! The Kafka channel (Flume's `KafkaChannel`).
//!
//! Against librdkafka's in-process mock cluster (always run; fault injection): a put commit
//! that Kafka does not acknowledge fails and counts, a put commit is not held for a configured
//! linger, a rolled-back take comes again, a take commit commits the offsets, a record that
//! does not decode is skipped and counted.
//!
//! Against the tansu broker (a real process; skipped unless it is installed, a failure under
//! SLUICE_REQUIRE_INTEROP): the `sluice` binary killed with SIGKILL after acknowledging lines
//! into a Kafka channel, and a second agent draining that channel into files: every
//! acknowledged line arrives; two agents sharing one channel topic and group take each event
//! once; kafka-python (an independent client) reads and decodes the AvroFlumeEvent records the
//! channel wrote.
mod common;

use agent::channel::{Channel, ChannelError, ChannelSettings, KafkaChannelConfig};
use agent::event::Event;
use common::broker::Broker;
use common::kafka::parse;
use common::{read_dir_lines, stream_lines, wait_until, write_conf, AgentProcess, Pace};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const KAFKA_PYTHON: &str = "kafka-python==3.0.12";

/// A Kafka channel named c1 on `servers` with these extra keys.
fn channel(servers: &str, extra: &[(&str, &str)]) -> Channel {
    let mut pairs = vec![("kafka.bootstrap.servers", servers)];
    pairs.extend_from_slice(extra);
    let cfg = parse("a1.channels.c1.", &pairs, KafkaChannelConfig::parse);
    Channel::open("c1", &ChannelSettings::Kafka(cfg)).expect("open kafka channel")
}

fn put(channel: &Channel, events: &[Event]) -> Result<(), ChannelError> {
    let mut tx = channel.transaction();
    for e in events {
        tx.put(e)?;
    }
    tx.commit()
}

fn metric(channel: &Channel, name: &str) -> u64 {
    let m = channel
        .metrics()
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name}"));
    match m.value {
        agent::metrics::Value::Counter(n) | agent::metrics::Value::Gauge(n) => n,
        other => panic!("{name} is {other:?}"),
    }
}

/// Takes `n` events in one transaction, as a sink runner does: wait for the channel to
/// have an event, then take (`take` never waits; it polls without waiting), retrying for up
/// to 20 s while fewer than `n` came.
fn take_n(channel: &Channel, n: usize) -> (agent::channel::Txn, Vec<Event>) {
    assert!(
        wait_until(Duration::from_secs(20), || channel
            .wait_for_events(Duration::from_millis(200))),
        "no event fetched in 20 s"
    );
    let mut tx = channel.transaction();
    let mut got = Vec::new();
    let ok = wait_until(Duration::from_secs(20), || {
        while got.len() < n {
            match tx.take().expect("take") {
                Some(e) => got.push(e),
                None => break,
            }
        }
        got.len() >= n
    });
    assert!(ok, "only {} of {n} events taken", got.len());
    (tx, got)
}

fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect()
}

/// The group's committed offset of `topic` partition 0.
fn committed(servers: &str, group: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    match got.find_partition(topic, 0).expect("partition").offset() {
        Offset::Offset(n) => n,
        other => panic!("no committed offset: {other:?}"),
    }
}

/// A one-broker mock cluster with the topic `ch` (one partition), and its bootstrap servers.
fn mock_cluster_with_topic_ch() -> (MockCluster<'static, DefaultProducerContext>, String) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("ch", 1, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    (cluster, servers)
}

#[test]
fn rollback_delivers_again_and_commit_commits_the_offsets() {
    let (_cluster, servers) = mock_cluster_with_topic_ch();
    let c = channel(
        &servers,
        &[("kafka.topic", "ch"), ("kafka.consumer.group.id", "g")],
    );
    let events: Vec<Event> = (0..10)
        .map(|i| {
            Event::new(format!("e{i}"))
                .with_header("host", "h1")
                .with_header("key", format!("k{i}"))
        })
        .collect();
    put(&c, &events).expect("put commit");
    assert_eq!(metric(&c, "EventPutSuccessCount"), 10);

    let (tx, first) = take_n(&c, 10);
    assert_eq!(bodies(&first), bodies(&events));
    assert_eq!(first[3].header("host"), Some("h1"));
    assert_eq!(first[3].header("key"), Some("k3"));
    tx.rollback();
    assert_eq!(metric(&c, "RollbackCount"), 10);

    // The same events again, in the same order; this time committed.
    let (tx, again) = take_n(&c, 10);
    assert_eq!(bodies(&again), bodies(&events));
    tx.commit().expect("take commit");
    assert_eq!(metric(&c, "EventTakeSuccessCount"), 10);
    assert_eq!(committed(&servers, "g", "ch"), 10);

    // A partly taken, dropped transaction rolls back: its events come first next time.
    put(&c, &[Event::new("x1"), Event::new("x2")]).expect("put");
    let (tx, got) = take_n(&c, 1);
    assert_eq!(bodies(&got), ["x1"]);
    drop(tx);
    let (tx, got) = take_n(&c, 2);
    assert_eq!(bodies(&got), ["x1", "x2"]);
    tx.commit().expect("commit");
    assert_eq!(committed(&servers, "g", "ch"), 12);
    c.close().expect("close");
}

#[test]
fn a_put_commit_is_not_held_for_a_configured_linger() {
    let (_cluster, servers) = mock_cluster_with_topic_ch();
    let c = channel(
        &servers,
        &[("kafka.topic", "ch"), ("kafka.producer.linger.ms", "60000")],
    );
    let started = std::time::Instant::now();
    put(&c, &[Event::new("a"), Event::new("b")]).expect("put commit");
    // Held for its linger, the commit would have returned after 60 s.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the put commit waited {:?}",
        started.elapsed()
    );
    assert_eq!(metric(&c, "EventPutSuccessCount"), 2);
    c.close().expect("close");
}

#[test]
fn a_put_commit_kafka_does_not_acknowledge_fails_and_is_counted() {
    let (cluster, servers) = mock_cluster_with_topic_ch();
    let c = channel(
        &servers,
        &[
            ("kafka.topic", "ch"),
            ("kafka.producer.delivery.timeout.ms", "2000"),
        ],
    );
    // Every produce request refused for longer than the delivery timeout (a retriable
    // error: librdkafka retries until the timeout, then reports the records failed).
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 500],
    );
    let err = put(&c, &[Event::new("a"), Event::new("b")]).expect_err("not acknowledged");
    let text = err.to_string();
    assert!(
        text.contains("put commit failed") && text.contains("not acknowledged"),
        "{text}"
    );
    assert_eq!(metric(&c, "EventPutErrorCount"), 2);
    assert_eq!(metric(&c, "EventPutSuccessCount"), 0);

    // Once the broker accepts again, a put commits; only it is in the channel.
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    put(&c, &[Event::new("c")]).expect("put commit");
    let (tx, got) = take_n(&c, 1);
    assert_eq!(bodies(&got), ["c"]);
    tx.commit().expect("commit");
    assert!(!c.wait_for_events(Duration::from_millis(500)));

    // A partition header that is not a number fails the put itself.
    let c2 = channel(
        &servers,
        &[("kafka.topic", "ch"), ("partitionIdHeader", "p")],
    );
    let mut tx = c2.transaction();
    let err = tx
        .put(&Event::new("z").with_header("p", "one"))
        .expect_err("bad partition");
    assert!(err
        .to_string()
        .contains("non-integer partition id \"one\" in header p"));
    c.close().expect("close");
    c2.close().expect("close");
}

#[test]
fn a_record_that_does_not_decode_is_skipped_counted_and_committed_past() {
    let (_cluster, servers) = mock_cluster_with_topic_ch();
    let raw: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .expect("producer");
    raw.send(BaseRecord::<(), [u8]>::to("ch").payload(&[0x02_u8][..]))
        .expect("send");
    raw.flush(Duration::from_secs(10)).expect("flush");
    let c = channel(
        &servers,
        &[("kafka.topic", "ch"), ("kafka.consumer.group.id", "g")],
    );
    put(&c, &[Event::new("good")]).expect("put");
    let (tx, got) = take_n(&c, 1);
    assert_eq!(bodies(&got), ["good"]);
    tx.commit().expect("commit");
    assert_eq!(metric(&c, "EventTakeErrorCount"), 1);
    assert_eq!(committed(&servers, "g", "ch"), 2);
    c.close().expect("close");
}

fn agent_conf(
    dir: &Path,
    name: &str,
    servers: &str,
    topic: &str,
    source_port: Option<u16>,
) -> std::path::PathBuf {
    let mut text = format!(
        "a1.channels = c1
a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c1.kafka.bootstrap.servers = {servers}
a1.channels.c1.kafka.topic = {topic}
a1.channels.c1.kafka.consumer.group.id = sluice-test
a1.channels.c1.pollTimeout = 200
"
    );
    match source_port {
        Some(port) => text.push_str(&format!(
            "a1.sources = r1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.batch-size = 50
a1.sources.r1.channels = c1
"
        )),
        None => text.push_str(
            "a1.sinks = k1
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 100
",
        ),
    }
    write_conf(dir, name, &text)
}

#[test]
fn kill9_after_acknowledging_loses_nothing() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("kill9", 2);
    let dir = tempfile::tempdir().expect("tmp");
    let port = common::free_port();
    let conf_a = agent_conf(
        dir.path(),
        "a.conf",
        &broker.bootstrap(),
        "kill9",
        Some(port),
    );
    let mut a = AgentProcess::start(dir.path(), &conf_a, "a1", false);
    a.wait_started();
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = stream_lines(
        port,
        0,
        acked.clone(),
        Pace {
            every: 100,
            pause: Duration::from_millis(5),
        },
        None,
    );
    assert!(
        wait_until(Duration::from_secs(60), || acked.load(SeqCst) >= 2000),
        "only {} lines acknowledged:\n{}\n{}",
        acked.load(SeqCst),
        a.log(),
        broker.log()
    );
    a.kill9();
    let sent = sender.join().expect("sender");
    let acknowledged = acked.load(SeqCst);
    assert!(acknowledged >= 2000 && sent >= acknowledged);

    let b_dir = dir.path().join("b");
    std::fs::create_dir_all(&b_dir).expect("dir");
    let conf_b = agent_conf(&b_dir, "b.conf", &broker.bootstrap(), "kill9", None);
    let mut b = AgentProcess::start(&b_dir, &conf_b, "a1", false);
    b.wait_started();
    let want: Vec<String> = (0..acknowledged)
        .map(|n| format!("line-0-{n:07}"))
        .collect();
    let arrived =
        || -> BTreeSet<String> { read_dir_lines(&b_dir.join("out")).into_iter().collect() };
    let ok = wait_until(Duration::from_secs(90), || {
        let got = arrived();
        want.iter().all(|l| got.contains(l))
    });
    let got = arrived();
    let missing: Vec<&String> = want.iter().filter(|l| !got.contains(*l)).collect();
    assert!(
        ok,
        "{} of {acknowledged} acknowledged lines missing (first {:?}):\n{}",
        missing.len(),
        missing.first(),
        b.log()
    );
    // Nothing that was not sent.
    for l in &got {
        let n: usize = l
            .strip_prefix("line-0-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {l:?}"));
        assert!(n < sent, "line {l} was never sent in full");
    }
    let (status, log) = b.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn two_agents_share_a_channel_topic_and_take_each_event_once() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("shared", 2);
    let root = tempfile::tempdir().expect("tmp");
    let mut agents = Vec::new();
    for name in ["x", "y"] {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let conf = agent_conf(&dir, "a.conf", &broker.bootstrap(), "shared", None);
        let mut a = AgentProcess::start(&dir, &conf, "a1", false);
        a.wait_started();
        agents.push((dir, a));
    }
    // Both members hold partitions before anything is put (a rebalance with takes in flight
    // may deliver twice, which is allowed; this test is about sharing the work).
    // Either agent may join first and hold both partitions until the second joins; what
    // counts is that each one's latest assignment is one partition.
    let holds_one = |log: &str| {
        log.lines()
            .rfind(|l| l.contains("kafka channel partitions "))
            .is_some_and(|l| l.contains("partitions assigned") && l.contains("partitions=1"))
    };
    let joined = wait_until(Duration::from_secs(60), || {
        agents.iter().all(|(_, a)| holds_one(&a.log()))
    });
    assert!(
        joined,
        "the two agents did not share the partitions:\n{}\n{}",
        agents[0].1.log(),
        agents[1].1.log()
    );
    let producer = channel(&broker.bootstrap(), &[("kafka.topic", "shared")]);
    let n = 400;
    let events: Vec<Event> = (0..n)
        .map(|i| Event::new(format!("s{i:04}")).with_header("key", format!("k{i}")))
        .collect();
    for chunk in events.chunks(50) {
        put(&producer, chunk).expect("put commit");
    }
    producer.close().expect("close");
    let lines = |dir: &Path| read_dir_lines(&dir.join("out"));
    let ok = wait_until(Duration::from_secs(60), || {
        agents.iter().map(|(d, _)| lines(d).len()).sum::<usize>() >= n
    });
    let x = lines(&agents[0].0);
    let y = lines(&agents[1].0);
    assert!(ok, "only {} + {} of {n} arrived", x.len(), y.len());
    std::thread::sleep(Duration::from_secs(1));
    let x = lines(&agents[0].0);
    let y = lines(&agents[1].0);
    assert!(
        !x.is_empty() && !y.is_empty(),
        "one agent took everything: {} + {}",
        x.len(),
        y.len()
    );
    let mut all: Vec<String> = x.iter().chain(&y).cloned().collect();
    all.sort();
    let want: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
    assert_eq!(all, want, "each event exactly once across the two agents");
    for (_, a) in agents {
        let (status, log) = a.terminate();
        assert!(status.success(), "{log}");
    }
}

#[test]
fn kafka_python_reads_the_flume_events_the_channel_wrote() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("avro-ch", 1);
    let c = channel(&broker.bootstrap(), &[("kafka.topic", "avro-ch")]);
    let events: Vec<Event> = (0..20)
        .map(|i| {
            Event::new(format!("body-{i} é"))
                .with_header("host", format!("h{i}"))
                .with_header("key", format!("k{i}"))
        })
        .collect();
    put(&c, &events).expect("put commit");
    c.close().expect("close");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kafka_channel_peer.py");
    let out = common::python::run_python_ok(
        &[KAFKA_PYTHON],
        &script,
        &[&broker.bootstrap(), "avro-ch", "1", "20"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["body"], format!("body-{i} é"));
        assert_eq!(v["headers"]["host"], format!("h{i}"));
        assert_eq!(v["headers"]["key"], format!("k{i}"));
        assert_eq!(v["key"], format!("k{i}"));
    }
}
