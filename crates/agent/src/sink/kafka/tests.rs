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
