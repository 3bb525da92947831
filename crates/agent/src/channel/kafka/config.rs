//! The Kafka channel's keys, with Flume 1.11's defaults (`KafkaChannelConfiguration`), and the
//! librdkafka producer and consumer properties they make.
//!
//! Durability keys are honoured or refused, never ignored: `kafka.producer.acks` is `all`
//! (Flume's default) and a lower value is refused, since a put commit must mean every in-sync
//! replica has the events; `kafka.consumer.enable.auto.commit = true` is refused, since a take
//! commit is what moves the group's offsets. `migrateZookeeperOffsets = true` and
//! `zookeeperConnect` are refused: ZooKeeper offset migration is a Java-only step from Kafka
//! 0.8 days that librdkafka cannot do.

use crate::config::context::Ctx;
use crate::kafka::{self, ClientProperty, Role};

/// Flume's `DEFAULT_TOPIC` for the channel.
pub const DEFAULT_TOPIC: &str = "flume-channel";
/// Flume's `DEFAULT_GROUP_ID`.
pub const DEFAULT_GROUP_ID: &str = "flume";
/// Flume's `DEFAULT_POLL_TIMEOUT`, in milliseconds.
pub const DEFAULT_POLL_TIMEOUT_MS: u64 = 500;
/// Java's `delivery.timeout.ms` default (librdkafka's is 300 s).
pub const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 120_000;

/// Keys a file or memory channel reads that mean nothing for a Kafka channel (Flume's
/// `KafkaChannel` does not read them either): what it holds is bounded by the topic's
/// retention, and a transaction by memory.
const CAPACITY_KEYS: &[&str] = &[
    "capacity",
    "transactionCapacity",
    "byteCapacity",
    "byteCapacityBufferPercentage",
    "keep-alive",
];

/// Configuration of a Kafka channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaChannelConfig {
    /// `kafka.bootstrap.servers` (Flume 1.6's `brokerList` is read too, with a warning).
    pub bootstrap_servers: String,
    /// `kafka.topic` (or the deprecated `topic`). Default: `flume-channel`.
    pub topic: String,
    /// `kafka.consumer.group.id` (or the deprecated `groupId`). Default: `flume`.
    pub group_id: String,
    /// `parseAsFlumeEvent`: records are Avro `AvroFlumeEvent` datums (true) or bare bodies.
    /// Default: true.
    pub parse_as_flume_event: bool,
    /// `pollTimeout`: the longest one consumer poll waits for records. Default: 500 ms.
    pub poll_timeout_ms: u64,
    /// `defaultPartitionId`. Default: none (the producer's partitioner picks).
    pub default_partition_id: Option<i32>,
    /// `partitionIdHeader`: the header whose value is the partition (wins over
    /// `defaultPartitionId`). Default: none.
    pub partition_id_header: Option<String>,
    /// `kafka.producer.*`, translated; `acks = all` always.
    pub producer: Vec<ClientProperty>,
    /// `kafka.consumer.*`, translated, without `group.id` and `enable.auto.commit`.
    pub consumer: Vec<ClientProperty>,
    /// The delivery timeout in force: a put commit waits at most this (plus a margin).
    pub delivery_timeout_ms: u64,
}

impl KafkaChannelConfig {
    /// Reads the keys, recording problems on `ctx`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let bootstrap_servers = match trimmed(ctx, "kafka.bootstrap.servers") {
            Some(s) => s,
            None => match trimmed(ctx, "brokerList") {
                Some(s) => {
                    ctx.warn("brokerList", "deprecated; use kafka.bootstrap.servers");
                    s
                }
                None => {
                    ctx.error(
                        "kafka.bootstrap.servers",
                        "required: the Kafka brokers to connect to",
                    );
                    String::new()
                }
            },
        };
        let topic = match trimmed(ctx, "kafka.topic") {
            Some(t) => t,
            None => match trimmed(ctx, "topic") {
                Some(t) => {
                    ctx.warn("topic", "deprecated; use kafka.topic");
                    t
                }
                None => DEFAULT_TOPIC.to_owned(),
            },
        };
        let group_id = match trimmed(ctx, "kafka.consumer.group.id") {
            Some(g) => g,
            None => match trimmed(ctx, "groupId") {
                Some(g) => {
                    ctx.warn("groupId", "deprecated; use kafka.consumer.group.id");
                    g
                }
                None => DEFAULT_GROUP_ID.to_owned(),
            },
        };
        if ctx.bool("migrateZookeeperOffsets", false) {
            ctx.error(
                "migrateZookeeperOffsets",
                "not supported: migrating offsets from ZooKeeper needs Kafka's Java ZooKeeper \
                 client; migrate them with Flume or Kafka's tools first, then set it to false",
            );
        }
        if ctx.has("zookeeperConnect") {
            ctx.mark_used("zookeeperConnect");
            ctx.error(
                "zookeeperConnect",
                "not supported: Sluice reads and commits offsets in Kafka only (ZooKeeper offset \
                 migration is Java-only)",
            );
        }
        for key in CAPACITY_KEYS {
            if ctx.has(key) {
                ctx.mark_used(key);
                ctx.warn(
                    key,
                    "has no effect on a Kafka channel (Flume's KafkaChannel ignores it too): the \
                     topic's retention bounds what the channel holds",
                );
            }
        }
        let parse_as_flume_event = ctx.bool("parseAsFlumeEvent", true);
        let poll_timeout_ms = ctx.u64_in("pollTimeout", DEFAULT_POLL_TIMEOUT_MS, 1..=3_600_000);
        let default_partition_id = ctx
            .has("defaultPartitionId")
            .then(|| ctx.u64_in("defaultPartitionId", 0, 0..=i32::MAX as u64) as i32);
        let partition_id_header = trimmed(ctx, "partitionIdHeader");
        let producer = producer_properties(ctx);
        let delivery_timeout_ms =
            kafka::find(&producer, &["delivery.timeout.ms", "message.timeout.ms"])
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_DELIVERY_TIMEOUT_MS);
        let consumer = consumer_properties(ctx);
        Self {
            bootstrap_servers,
            topic,
            group_id,
            parse_as_flume_event,
            poll_timeout_ms,
            default_partition_id,
            partition_id_header,
            producer,
            consumer,
            delivery_timeout_ms,
        }
    }

    /// The producer's librdkafka configuration.
    pub fn producer_config(&self) -> rdkafka::ClientConfig {
        kafka::client_config(
            &self.producer,
            &[("bootstrap.servers", self.bootstrap_servers.clone())],
        )
    }

    /// The consumer's librdkafka configuration: auto commit off, always.
    pub fn consumer_config(&self) -> rdkafka::ClientConfig {
        kafka::client_config(
            &self.consumer,
            &[
                ("bootstrap.servers", self.bootstrap_servers.clone()),
                ("group.id", self.group_id.clone()),
                ("enable.auto.commit", "false".into()),
            ],
        )
    }
}

/// The value of `key`, trimmed, if given and not blank.
fn trimmed(ctx: &Ctx<'_>, key: &str) -> Option<String> {
    ctx.string(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `kafka.producer.*` with Flume's and Java's defaults: `acks = all` (a lower value refused),
/// `linger.ms = 0`, `delivery.timeout.ms = 120000`.
fn producer_properties(ctx: &Ctx<'_>) -> Vec<ClientProperty> {
    let mut producer = kafka::client_properties(
        ctx,
        Role::Producer,
        &[("bootstrap.servers", "kafka.bootstrap.servers")],
    );
    match kafka::find(&producer, &["acks", "request.required.acks"]) {
        None => producer.insert(
            0,
            ClientProperty {
                name: "acks".into(),
                value: "all".into(),
                key: "kafka.producer.acks".into(),
            },
        ),
        Some(acks) if !matches!(acks.trim(), "all" | "-1") => {
            let key = producer
                .iter()
                .rev()
                .find(|p| p.name == "acks" || p.name == "request.required.acks")
                .map(|p| p.key.clone())
                .unwrap_or_else(|| "kafka.producer.acks".into());
            ctx.error(
                &key,
                format!(
                    "must be all (or -1) on a Kafka channel, not \"{}\": a put commit means every \
                     in-sync replica has the events",
                    acks.trim()
                ),
            );
        }
        Some(_) => {}
    }
    if kafka::find(&producer, &["linger.ms", "queue.buffering.max.ms"]).is_none() {
        producer.push(ClientProperty {
            name: "linger.ms".into(),
            value: "0".into(),
            key: "kafka.producer.linger.ms".into(),
        });
    }
    if kafka::find(&producer, &["delivery.timeout.ms", "message.timeout.ms"]).is_none() {
        producer.push(ClientProperty {
            name: "delivery.timeout.ms".into(),
            value: DEFAULT_DELIVERY_TIMEOUT_MS.to_string(),
            key: "kafka.producer.delivery.timeout.ms".into(),
        });
    }
    producer
}

/// `kafka.consumer.*` with Flume's `auto.offset.reset = earliest` default (the deprecated
/// `readSmallestOffset` read too); `group.id` is the channel's, and auto commit is refused.
fn consumer_properties(ctx: &Ctx<'_>) -> Vec<ClientProperty> {
    let auto_commit = ctx.bool("kafka.consumer.enable.auto.commit", false);
    if auto_commit {
        ctx.error(
            "kafka.consumer.enable.auto.commit",
            "must be false on a Kafka channel: offsets are committed when a take transaction \
             commits, or events not yet delivered could be skipped",
        );
    }
    let mut consumer: Vec<ClientProperty> = kafka::client_properties(
        ctx,
        Role::Consumer,
        &[("bootstrap.servers", "kafka.bootstrap.servers")],
    )
    .into_iter()
    .filter(|p| p.name != "group.id" && p.name != "enable.auto.commit")
    .collect();
    if kafka::find(&consumer, &["auto.offset.reset"]).is_none() {
        let reset = if ctx.has("readSmallestOffset") {
            ctx.warn(
                "readSmallestOffset",
                "deprecated; use kafka.consumer.auto.offset.reset",
            );
            if ctx.bool("readSmallestOffset", true) {
                "earliest"
            } else {
                "latest"
            }
        } else {
            "earliest"
        };
        consumer.push(ClientProperty {
            name: "auto.offset.reset".into(),
            value: reset.into(),
            key: "kafka.consumer.auto.offset.reset".into(),
        });
    }
    consumer
}
