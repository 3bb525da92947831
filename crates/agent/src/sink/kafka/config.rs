//! The kafka sink's keys, Flume 1.11's defaults and the producer properties they make
//! (`KafkaSinkConfig`).

use super::*;

/// Flume's `DEFAULT_TOPIC`.
pub const DEFAULT_TOPIC: &str = "default-flume-topic";
/// Java's `delivery.timeout.ms` default.
pub const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 120_000;
/// librdkafka's and Java's `transaction.timeout.ms` default.
pub const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 60_000;
/// The header whose value is the record key (Flume's `KEY_HEADER`).
pub const KEY_HEADER: &str = "key";

/// Configuration of a kafka sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSinkConfig {
    /// `kafka.bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `kafka.topic`, possibly with `%{header}`. Default: `default-flume-topic`.
    pub topic: String,
    /// `flumeBatchSize`. Default: 100.
    pub batch_size: u32,
    /// `useFlumeEventFormat`. Default: false.
    pub use_flume_event_format: bool,
    /// `defaultPartitionId`. Default: none.
    pub default_partition_id: Option<i32>,
    /// `partitionIdHeader`. Default: none.
    pub partition_id_header: Option<String>,
    /// `allowTopicOverride`. Default: true.
    pub allow_topic_override: bool,
    /// `topicHeader`. Default: `topic`.
    pub topic_header: String,
    /// `timestampHeader`. Default: none.
    pub timestamp_header: Option<String>,
    /// `header.<flume>=<kafka>`: Flume header name to Kafka record header name, in file order.
    pub record_headers: Vec<(String, String)>,
    /// `kafka.producer.*`, translated to librdkafka names (acks included).
    pub producer: Vec<ClientProperty>,
    /// The delivery timeout in force (from the producer properties or Java's default).
    pub delivery_timeout_ms: u64,
    /// `kafka.producer.transactional.id`, if set.
    pub transactional_id: Option<String>,
}

impl KafkaSinkConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let bootstrap_servers = ctx.required("kafka.bootstrap.servers").unwrap_or_default();
        let topic = ctx
            .string("kafka.topic")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_TOPIC.to_owned());
        if let Some(i) = topic.find('%') {
            if !topic[i..].starts_with("%{") {
                ctx.error(
                    "kafka.topic",
                    "only %{header} escapes are supported in a Kafka topic",
                );
            }
        }
        let batch_size = ctx.u32_in(
            "flumeBatchSize",
            100,
            1..=file_channel::limits::MAX_EVENTS_PER_TXN,
        );
        let default_partition_id = ctx
            .has("defaultPartitionId")
            .then(|| ctx.u64_in("defaultPartitionId", 0, 0..=i32::MAX as u64) as i32);
        let mut producer = kafka::client_properties(
            ctx,
            Role::Producer,
            &[("bootstrap.servers", "kafka.bootstrap.servers")],
        );
        // Java's producer sends at once by default (linger.ms = 0); librdkafka waits 5 ms.
        if kafka::find(&producer, &["linger.ms", "queue.buffering.max.ms"]).is_none() {
            producer.push(ClientProperty {
                name: "linger.ms".into(),
                value: "0".into(),
                key: "kafka.producer.linger.ms".into(),
            });
        }
        let transactional_id = kafka::find(&producer, &["transactional.id"]).map(str::to_owned);
        match kafka::find(&producer, &["acks", "request.required.acks"]) {
            // Transactions need every in-sync replica's acknowledgement (as in Java).
            None if transactional_id.is_some() => producer.insert(
                0,
                ClientProperty {
                    name: "acks".into(),
                    value: "all".into(),
                    key: "kafka.producer.acks".into(),
                },
            ),
            None => producer.insert(
                0,
                ClientProperty {
                    name: "acks".into(),
                    value: "1".into(),
                    key: "kafka.producer.acks".into(),
                },
            ),
            Some(acks) if transactional_id.is_some() && !matches!(acks.trim(), "all" | "-1") => {
                ctx.error(
                    "kafka.producer.acks",
                    "must be all (or -1) when kafka.producer.transactional.id is set",
                );
            }
            Some(_) => {}
        }
        // librdkafka requires a transactional producer's delivery timeout to fit in its
        // transaction timeout (60 s by default, as in Java).
        let transaction_timeout_ms = transactional_id.as_ref().map(|_| {
            kafka::find(&producer, &["transaction.timeout.ms"])
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(DEFAULT_TRANSACTION_TIMEOUT_MS)
        });
        let delivery_timeout_ms = match kafka::find(
            &producer,
            &["delivery.timeout.ms", "message.timeout.ms"],
        ) {
            Some(v) => {
                let ms = v.trim().parse().unwrap_or(DEFAULT_DELIVERY_TIMEOUT_MS);
                if transaction_timeout_ms.is_some_and(|t| ms > t) {
                    ctx.error(
                            "kafka.producer.delivery.timeout.ms",
                            "must not exceed kafka.producer.transaction.timeout.ms (60000 by default) when kafka.producer.transactional.id is set",
                        );
                }
                ms
            }
            None => {
                let ms = transaction_timeout_ms.map_or(DEFAULT_DELIVERY_TIMEOUT_MS, |t| {
                    t.min(DEFAULT_DELIVERY_TIMEOUT_MS)
                });
                producer.push(ClientProperty {
                    name: "delivery.timeout.ms".into(),
                    value: ms.to_string(),
                    key: "kafka.producer.delivery.timeout.ms".into(),
                });
                ms
            }
        };
        let record_headers = ctx
            .prefixed("header.")
            .into_iter()
            .map(|(flume, e)| (flume.to_owned(), e.value.trim().to_owned()))
            .collect();
        Self {
            bootstrap_servers,
            topic,
            batch_size,
            use_flume_event_format: ctx.bool("useFlumeEventFormat", false),
            default_partition_id,
            partition_id_header: ctx.string("partitionIdHeader").map(|s| s.trim().to_owned()),
            allow_topic_override: ctx.bool("allowTopicOverride", true),
            topic_header: ctx.string_or("topicHeader", "topic").trim().to_owned(),
            timestamp_header: ctx.string("timestampHeader").map(|s| s.trim().to_owned()),
            record_headers,
            producer,
            delivery_timeout_ms,
            transactional_id,
        }
    }
}
