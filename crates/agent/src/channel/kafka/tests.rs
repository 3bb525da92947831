//! The Kafka channel's keys: Flume's defaults, deprecated names, and what is refused.

use super::*;
use crate::sink::test_support::{ctx, entries};

fn problems(d: &crate::config::problem::Diagnostics) -> Vec<String> {
    d.errors
        .iter()
        .chain(&d.warnings)
        .map(|p| format!("{}: {}", p.key.as_deref().unwrap_or(""), p.message))
        .collect()
}

#[test]
fn flume_defaults() {
    let list = entries(&[("kafka.bootstrap.servers", "h:9092")]);
    let c = ctx(&list);
    let cfg = KafkaChannelConfig::parse(&c);
    let d = c.finish("kafka channel c1");
    assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
    assert_eq!(cfg.topic, "flume-channel");
    assert_eq!(cfg.group_id, "flume");
    assert!(cfg.parse_as_flume_event);
    assert_eq!(cfg.poll_timeout_ms, 500);
    assert_eq!(cfg.default_partition_id, None);
    assert_eq!(cfg.partition_id_header, None);
    assert_eq!(crate::kafka::find(&cfg.producer, &["acks"]), Some("all"));
    assert_eq!(crate::kafka::find(&cfg.producer, &["linger.ms"]), Some("0"));
    assert_eq!(cfg.delivery_timeout_ms, 120_000);
    assert_eq!(
        crate::kafka::find(&cfg.consumer, &["auto.offset.reset"]),
        Some("earliest")
    );
}

#[test]
fn flume_keys_and_deprecated_names() {
    let list = entries(&[
        ("brokerList", "h:9092"),
        ("topic", "t1"),
        ("groupId", "g1"),
        ("readSmallestOffset", "false"),
        ("parseAsFlumeEvent", "false"),
        ("pollTimeout", "50"),
        ("defaultPartitionId", "2"),
        ("partitionIdHeader", "part"),
        ("kafka.producer.acks", "-1"),
        ("kafka.producer.delivery.timeout.ms", "3000"),
        ("migrateZookeeperOffsets", "false"),
        ("kafka.consumer.enable.auto.commit", "false"),
    ]);
    let c = ctx(&list);
    let cfg = KafkaChannelConfig::parse(&c);
    let d = c.finish("kafka channel c1");
    assert!(d.errors.is_empty(), "{d:?}");
    assert_eq!(d.warnings.len(), 4, "{:?}", problems(&d));
    assert_eq!(cfg.bootstrap_servers, "h:9092");
    assert_eq!((cfg.topic.as_str(), cfg.group_id.as_str()), ("t1", "g1"));
    assert!(!cfg.parse_as_flume_event);
    assert_eq!(cfg.poll_timeout_ms, 50);
    assert_eq!(cfg.default_partition_id, Some(2));
    assert_eq!(cfg.partition_id_header.as_deref(), Some("part"));
    assert_eq!(cfg.delivery_timeout_ms, 3000);
    assert_eq!(
        crate::kafka::find(&cfg.consumer, &["auto.offset.reset"]),
        Some("latest")
    );
    assert!(crate::kafka::find(&cfg.consumer, &["enable.auto.commit"]).is_none());
}

#[test]
fn durability_and_java_only_keys_are_refused_by_key() {
    let list = entries(&[
        ("kafka.producer.acks", "1"),
        ("kafka.consumer.enable.auto.commit", "true"),
        ("migrateZookeeperOffsets", "true"),
        ("zookeeperConnect", "zk:2181"),
        ("kafka.producer.max.block.ms", "10"),
        ("kafka.consumer.max.poll.records", "10"),
        ("transactionCapacity", "1000"),
    ]);
    let c = ctx(&list);
    let _ = KafkaChannelConfig::parse(&c);
    let d = c.finish("kafka channel c1");
    let errors: Vec<String> = d
        .errors
        .iter()
        .map(|p| format!("{}: {}", p.key.as_deref().unwrap_or(""), p.message))
        .collect();
    let has = |key: &str, words: &str| {
        errors
            .iter()
            .any(|e| e.contains(&format!(".{key}:")) && e.contains(words))
    };
    assert!(has("kafka.bootstrap.servers", "required"), "{errors:?}");
    assert!(has("kafka.producer.acks", "must be all"), "{errors:?}");
    assert!(
        has("kafka.consumer.enable.auto.commit", "must be false"),
        "{errors:?}"
    );
    assert!(
        has("migrateZookeeperOffsets", "not supported"),
        "{errors:?}"
    );
    assert!(has("zookeeperConnect", "not supported"), "{errors:?}");
    assert!(
        has("kafka.producer.max.block.ms", "not supported"),
        "{errors:?}"
    );
    assert!(
        has("kafka.consumer.max.poll.records", "not supported"),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 7, "{errors:?}");
    assert_eq!(d.warnings.len(), 1);
    assert!(
        d.warnings[0]
            .message
            .contains("no effect on a Kafka channel"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn partition_header_wins_and_bad_values_are_refused() {
    let list = entries(&[
        ("kafka.bootstrap.servers", "h:9092"),
        ("defaultPartitionId", "1"),
        ("partitionIdHeader", "p"),
    ]);
    let c = ctx(&list);
    let cfg = KafkaChannelConfig::parse(&c);
    assert_eq!(partition_of(&cfg, &Event::new("x")), Ok(Some(1)));
    assert_eq!(
        partition_of(&cfg, &Event::new("x").with_header("p", "3")),
        Ok(Some(3))
    );
    assert_eq!(
        partition_of(&cfg, &Event::new("x").with_header("p", "three")),
        Err(("p".to_owned(), "three".to_owned()))
    );
}
