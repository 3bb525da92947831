//! Tests of the kafka sink.

use super::*;
use crate::sink::test_support::{ctx, entries};

#[test]
fn flume_defaults() {
    let list = entries(&[("kafka.bootstrap.servers", "h:9092")]);
    let c = ctx(&list);
    let cfg = KafkaSinkConfig::parse(&c);
    assert!(!c.has_errors());
    assert_eq!(cfg.topic, "default-flume-topic");
    assert_eq!(cfg.batch_size, 100);
    assert!(!cfg.use_flume_event_format);
    assert_eq!(cfg.default_partition_id, None);
    assert_eq!(cfg.partition_id_header, None);
    assert!(cfg.allow_topic_override);
    assert_eq!(cfg.topic_header, "topic");
    assert_eq!(cfg.timestamp_header, None);
    assert_eq!(kafka::find(&cfg.producer, &["acks"]), Some("1"));
    assert_eq!(cfg.delivery_timeout_ms, 120_000);
    assert_eq!(kafka::find(&cfg.producer, &["linger.ms"]), Some("0"));
    assert_eq!(cfg.transactional_id, None);
}

#[test]
fn flume_keys() {
    let list = entries(&[
        ("kafka.bootstrap.servers", "h:9092"),
        ("kafka.topic", "logs-%{app}"),
        ("flumeBatchSize", "7"),
        ("kafka.producer.acks", "-1"),
        ("useFlumeEventFormat", "true"),
        ("defaultPartitionId", "2"),
        ("partitionIdHeader", "p"),
        ("allowTopicOverride", "false"),
        ("topicHeader", "t"),
        ("timestampHeader", "ts"),
        ("header.trace", "trace-id"),
        ("kafka.producer.delivery.timeout.ms", "3000"),
        ("kafka.producer.transactional.id", "tx1"),
    ]);
    let c = ctx(&list);
    let cfg = KafkaSinkConfig::parse(&c);
    let d = c.finish("kafka sink k1");
    assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
    assert_eq!(cfg.topic, "logs-%{app}");
    assert_eq!(cfg.batch_size, 7);
    assert!(cfg.use_flume_event_format);
    assert_eq!(cfg.default_partition_id, Some(2));
    assert_eq!(cfg.partition_id_header.as_deref(), Some("p"));
    assert!(!cfg.allow_topic_override);
    assert_eq!(cfg.topic_header, "t");
    assert_eq!(cfg.timestamp_header.as_deref(), Some("ts"));
    assert_eq!(
        cfg.record_headers,
        vec![("trace".into(), "trace-id".into())]
    );
    assert_eq!(kafka::find(&cfg.producer, &["acks"]), Some("-1"));
    assert_eq!(cfg.delivery_timeout_ms, 3000);
    assert_eq!(cfg.transactional_id.as_deref(), Some("tx1"));
}

#[test]
fn bad_values_are_reported_by_key() {
    let list = entries(&[
        ("kafka.topic", "t-%Y"),
        ("flumeBatchSize", "0"),
        ("defaultPartitionId", "x"),
        ("kafka.producer.acks", "sometimes"),
    ]);
    let c = ctx(&list);
    let _ = KafkaSinkConfig::parse(&c);
    let keys: Vec<String> = c
        .finish("kafka sink k1")
        .errors
        .iter()
        .filter_map(|p| p.key.clone())
        .collect();
    assert_eq!(
        keys,
        vec![
            "a1.sinks.k1.kafka.bootstrap.servers",
            "a1.sinks.k1.kafka.topic",
            "a1.sinks.k1.flumeBatchSize",
            "a1.sinks.k1.defaultPartitionId",
            "a1.sinks.k1.kafka.producer.acks",
        ]
    );
}

#[test]
fn topic_header_escapes() {
    let e = Event::new("b")
        .with_header("app", "web")
        .with_header("dc", "eu");
    assert_eq!(substitute_headers("logs-%{app}-%{dc}", &e), "logs-web-eu");
    assert_eq!(substitute_headers("x-%{missing}", &e), "x-");
    assert_eq!(substitute_headers("open-%{app", &e), "open-%{app");
    assert_eq!(substitute_headers("plain", &e), "plain");
}

/// A sink on `ctx`'s channel sending to `servers`, topic `t`, batches of `batch_size`.
fn mock_sink(servers: &str, batch_size: &str, sink_ctx: SinkContext) -> KafkaSink {
    let list = entries(&[
        ("kafka.bootstrap.servers", servers),
        ("kafka.topic", "t"),
        ("flumeBatchSize", batch_size),
        ("kafka.producer.delivery.timeout.ms", "5000"),
    ]);
    let c = ctx(&list);
    let cfg = KafkaSinkConfig::parse(&c);
    assert!(!c.has_errors());
    KafkaSink::new(cfg, sink_ctx)
}

fn stored_records(servers: &str, topic: &str, partitions: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", "check")
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .sum()
}

/// A mock cluster of three brokers with topic `t` of three partitions, and a sink of
/// `flumeBatchSize` 100 on a memory channel holding `events` events `e0`, `e1`, …
fn three_brokers_and_a_sink(
    events: usize,
) -> (
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
    crate::channel::Channel,
    Arc<crate::metrics::SinkCounters>,
    KafkaSink,
) {
    let cluster = rdkafka::mocking::MockCluster::new(3).expect("mock cluster");
    cluster.create_topic("t", 3, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let bodies: Vec<String> = (0..events).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let sink_ctx = crate::sink::test_support::sink_ctx(&refs);
    let channel = sink_ctx.channel.clone();
    let counters = sink_ctx.counters.clone();
    let sink = mock_sink(&servers, "100", sink_ctx);
    (cluster, servers, channel, counters, sink)
}

#[test]
fn a_batch_with_one_failed_delivery_is_rolled_back_and_counted() {
    use crate::sink::Sink;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (cluster, servers, channel, counters, mut s) = three_brokers_and_a_sink(60);
    // The next produce request (one partition leader's share of the batch) fails for good;
    // the others are acknowledged.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    // The first call sends the batch; the next confirms it (its take stays open meanwhile).
    assert_eq!(s.process().expect("sent"), crate::runner::Status::Ready);
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 0);
    let err = s.process().expect_err("one request's records were refused");
    assert!(err.to_string().contains("not acknowledged"), "{err}");
    assert_eq!(channel.len(), 60, "the whole take was rolled back");
    assert_eq!(s.kafka_counters().rollback_count.load(Relaxed), 1);
    assert_eq!(counters.event_write_fail.load(Relaxed), 1);
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 0);
    let partly = stored_records(&servers, "t", 3);
    assert!(partly < 60, "{partly} records stored by the failed batch");
    // The retry delivers the whole batch again (at least once).
    assert_eq!(s.process().expect("retry"), crate::runner::Status::Ready);
    // Nothing left to take: the call confirms the batch and backs off.
    assert_eq!(
        s.process().expect("confirmed"),
        crate::runner::Status::Backoff
    );
    assert!(channel.is_empty());
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 60);
    assert_eq!(stored_records(&servers, "t", 3), partly + 60);
    s.stop();
}

#[test]
fn a_take_commits_only_after_its_records_are_stored() {
    use crate::sink::Sink;
    let (_cluster, servers, channel, counters, mut s) = three_brokers_and_a_sink(250);
    let mut calls = 0;
    while s.process().expect("batch") == crate::runner::Status::Ready {
        calls += 1;
        let committed = counters.event_drain_success_count.load(Relaxed) as i64;
        assert!(committed <= stored_records(&servers, "t", 3));
        // At most BATCHES_IN_FLIGHT batches are taken and not committed.
        let in_flight = 250 - channel.len() as i64 - committed;
        assert!(in_flight <= 100 * BATCHES_IN_FLIGHT as i64, "{in_flight}");
    }
    // Three batches sent; the last is confirmed by the call that found nothing to take.
    assert_eq!(calls, 3);
    assert!(channel.is_empty());
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 250);
    assert_eq!(stored_records(&servers, "t", 3), 250);
    assert_eq!(s.kafka_counters().rollback_count.load(Relaxed), 0);
    s.stop();
}

#[test]
fn stop_confirms_the_batch_in_flight() {
    use crate::sink::Sink;
    use rdkafka::mocking::MockCluster;
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 1, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let sink_ctx = crate::sink::test_support::sink_ctx(&["a", "b", "c"]);
    let channel = sink_ctx.channel.clone();
    let counters = sink_ctx.counters.clone();
    let mut s = mock_sink(&servers, "100", sink_ctx);
    assert_eq!(s.process().expect("sent"), crate::runner::Status::Ready);
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 0);
    s.stop();
    assert!(channel.is_empty());
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 3);
    assert_eq!(stored_records(&servers, "t", 1), 3);
}

#[test]
fn a_batch_is_flushed_not_held_for_a_configured_linger() {
    use crate::sink::Sink;
    use rdkafka::mocking::MockCluster;
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 1, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let sink_ctx = crate::sink::test_support::sink_ctx(&["a", "b", "c"]);
    let counters = sink_ctx.counters.clone();
    let list = entries(&[
        ("kafka.bootstrap.servers", servers.as_str()),
        ("kafka.topic", "t"),
        ("kafka.producer.linger.ms", "60000"),
    ]);
    let c = ctx(&list);
    let cfg = KafkaSinkConfig::parse(&c);
    assert!(!c.has_errors());
    let mut s = KafkaSink::new(cfg, sink_ctx);
    let started = Instant::now();
    assert_eq!(s.process().expect("sent"), crate::runner::Status::Ready);
    assert_eq!(
        s.process().expect("confirmed"),
        crate::runner::Status::Backoff
    );
    // Held for its linger, the batch would have been confirmed after 60 s.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the batch waited {:?}",
        started.elapsed()
    );
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 3);
    assert_eq!(stored_records(&servers, "t", 1), 3);
    s.stop();
}
