//! `kafka`: consumes Kafka topics into the channels (Flume's `KafkaSource`) through librdkafka
//! (the `rdkafka` crate).
//!
//! Keys and Flume 1.11's defaults: `kafka.bootstrap.servers` (required), `kafka.topics` (a
//! comma-separated list) or `kafka.topics.regex` (wins over `kafka.topics`; one of them is
//! required), `kafka.consumer.group.id` (`flume`), `batchSize` (1000), `batchDurationMillis`
//! (1000), `useFlumeEventFormat` (false: the record value is the body; true: the value is
//! Flume's `AvroFlumeEvent` datum, whose headers are kept), `setTopicHeader` (true) with
//! `topicHeader` (`topic`), `header.<flume header>=<kafka header>` (record headers copied into
//! event headers), `backoffSleepIncrement` (1000) and `maxBackoffSleep` (5000), and every other
//! `kafka.consumer.*` key passed to librdkafka ([`crate::kafka`] translates Java names).
//! As in Flume, each event also gets the headers `timestamp` (the record's, in ms), `partition`,
//! `offset` and, when the record has one, `key` — the first three only if not already present.
//!
//! # Offsets
//!
//! Auto commit is off (as Flume forces it). A batch is read until `batchSize` records or
//! `batchDurationMillis` have passed, put into the channels in one transaction, and only after
//! that commit are the offsets after its last records committed to Kafka, synchronously
//! (`KafkaCommitTimer`). If the put fails, every partition of the batch is rewound to the batch's
//! first record, so the same records are read again; if the offset commit fails, the records are
//! in the channel and the offsets are committed with the next batch (a restart in between
//! delivers them twice: at-least-once).
//!
//! # Why a pollable source with a blocking consumer
//!
//! Flume's Kafka source is pollable, and so is this one: a runner thread calls `process`,
//! backing off with Flume's keys when a poll finds nothing. rdkafka's `BaseConsumer` polls on
//! that thread and the channel put blocks on its fsync there too, so neither needs the tokio
//! runtime. The consumer is created (and subscribed) on the first `process`.

use super::{Backoff, PollableSource, SourceContext, SourceError, Status};
use crate::config::context::Ctx;
use crate::event::{has_header, set_header};
use crate::kafka::{self, ClientProperty, Role};
use crate::metrics::{ExtraCounters, Metric, Value};
use file_channel::Event;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flume's default consumer group.
pub const DEFAULT_GROUP_ID: &str = "flume";

/// What the source subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscription {
    /// `kafka.topics`.
    Topics(Vec<String>),
    /// `kafka.topics.regex` (matched against whole topic names, as Java's `Pattern` is).
    Regex(String),
}

/// Configuration of a kafka source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSourceConfig {
    /// `kafka.bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `kafka.topics` or `kafka.topics.regex`.
    pub subscription: Subscription,
    /// `kafka.consumer.group.id`. Default: `flume`.
    pub group_id: String,
    /// `batchSize`. Default: 1000.
    pub batch_size: u32,
    /// `batchDurationMillis`. Default: 1000.
    pub batch_duration_ms: u64,
    /// `useFlumeEventFormat`. Default: false.
    pub use_flume_event_format: bool,
    /// `setTopicHeader`. Default: true.
    pub set_topic_header: bool,
    /// `topicHeader`. Default: `topic`.
    pub topic_header: String,
    /// `header.<flume>=<kafka>`: event header name to Kafka record header name.
    pub record_headers: Vec<(String, String)>,
    /// Other `kafka.consumer.*` keys, translated.
    pub consumer: Vec<ClientProperty>,
    /// Back-off settings.
    pub backoff: Backoff,
}

impl KafkaSourceConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let bootstrap_servers = ctx.required("kafka.bootstrap.servers").unwrap_or_default();
        let regex = ctx
            .string("kafka.topics.regex")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let topics = ctx
            .string("kafka.topics")
            .map(|t| kafka::comma_list(&t))
            .unwrap_or_default();
        let subscription = match regex {
            Some(r) => {
                if let Err(e) = regex::Regex::new(&r) {
                    ctx.error(
                        "kafka.topics.regex",
                        format!("not a regular expression: {e}"),
                    );
                }
                Subscription::Regex(r)
            }
            None => {
                if topics.is_empty() {
                    ctx.error_at(
                        ctx.line("kafka.topics"),
                        "kafka.topics",
                        "at least one Kafka topic must be given (kafka.topics or kafka.topics.regex)",
                    );
                }
                Subscription::Topics(topics)
            }
        };
        let group_id = ctx
            .string("kafka.consumer.group.id")
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| DEFAULT_GROUP_ID.to_owned());
        if ctx.has("kafka.consumer.enable.auto.commit") {
            ctx.warn(
                "kafka.consumer.enable.auto.commit",
                "ignored, as in Flume: the source commits offsets after each channel commit",
            );
        }
        let consumer = kafka::client_properties(
            ctx,
            Role::Consumer,
            &[("bootstrap.servers", "kafka.bootstrap.servers")],
        )
        .into_iter()
        .filter(|p| p.name != "group.id" && p.name != "enable.auto.commit")
        .collect();
        let record_headers = ctx
            .prefixed("header.")
            .into_iter()
            .map(|(flume, e)| (flume.to_owned(), e.value.trim().to_owned()))
            .collect();
        Self {
            bootstrap_servers,
            subscription,
            group_id,
            batch_size: ctx.u32_in(
                "batchSize",
                1000,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
            batch_duration_ms: ctx.u64_in("batchDurationMillis", 1000, 1..=3_600_000),
            use_flume_event_format: ctx.bool("useFlumeEventFormat", false),
            set_topic_header: ctx.bool("setTopicHeader", true),
            topic_header: ctx.string_or("topicHeader", "topic").trim().to_owned(),
            record_headers,
            consumer,
            backoff: Backoff::parse(ctx),
        }
    }
}

/// Flume's `KafkaSourceCounter` additions to `SourceCounter`.
#[derive(Debug, Default)]
pub struct KafkaSourceCounters {
    /// Milliseconds spent polling batches.
    pub kafka_event_get_timer_ms: AtomicU64,
    /// Milliseconds spent committing offsets.
    pub kafka_commit_timer_ms: AtomicU64,
    /// Polls that returned nothing.
    pub kafka_empty_count: AtomicU64,
}

impl ExtraCounters for KafkaSourceCounters {
    fn snapshot(&self) -> Vec<Metric> {
        vec![
            Metric {
                name: "KafkaEventGetTimer",
                value: Value::Counter(self.kafka_event_get_timer_ms.load(Relaxed)),
            },
            Metric {
                name: "KafkaCommitTimer",
                value: Value::Counter(self.kafka_commit_timer_ms.load(Relaxed)),
            },
            Metric {
                name: "KafkaEmptyCount",
                value: Value::Counter(self.kafka_empty_count.load(Relaxed)),
            },
        ]
    }
}

/// Logs librdkafka's errors under the source's name.
struct SourceClientContext {
    source: Arc<str>,
}

impl ClientContext for SourceClientContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(source = %self.source, error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for SourceClientContext {}

/// Per topic-partition: the first offset of the current batch and the offset to commit after it.
type Positions = BTreeMap<(String, i32), (i64, i64)>;

/// The kafka source.
pub struct KafkaSource {
    config: KafkaSourceConfig,
    ctx: SourceContext,
    kafka_counters: Arc<KafkaSourceCounters>,
    consumer: Option<BaseConsumer<SourceClientContext>>,
    /// Offsets whose records are in the channel but whose commit to Kafka failed.
    uncommitted: BTreeMap<(String, i32), i64>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("name", &self.ctx.name)
            .field("connected", &self.consumer.is_some())
            .finish()
    }
}

impl KafkaSource {
    /// A kafka source; the consumer is created on the first `process`.
    pub fn new(config: KafkaSourceConfig, ctx: SourceContext) -> Self {
        let kafka_counters = Arc::new(KafkaSourceCounters::default());
        let _ = ctx.counters.extra.set(kafka_counters.clone());
        ctx.counters.lifetime.started();
        Self {
            config,
            ctx,
            kafka_counters,
            consumer: None,
            uncommitted: BTreeMap::new(),
        }
    }

    fn client_error(&self, reason: String) -> SourceError {
        SourceError::Client {
            source_name: self.ctx.name.to_string(),
            reason,
        }
    }

    fn ensure_consumer(&mut self) -> Result<(), SourceError> {
        if self.consumer.is_some() {
            return Ok(());
        }
        let c = &self.config;
        let config = kafka::client_config(
            &c.consumer,
            &[
                ("bootstrap.servers", c.bootstrap_servers.clone()),
                ("group.id", c.group_id.clone()),
                ("enable.auto.commit", "false".into()),
            ],
        );
        let consumer: BaseConsumer<SourceClientContext> = config
            .create_with_context(SourceClientContext {
                source: self.ctx.name.clone(),
            })
            .map_err(|e| self.client_error(format!("cannot create the Kafka consumer: {e}")))?;
        let patterns: Vec<String> = match &c.subscription {
            Subscription::Topics(t) => t.clone(),
            // librdkafka treats a name starting with ^ as a regex it searches for; anchor both
            // ends so the whole name must match, as with Java's Pattern.matches.
            Subscription::Regex(r) => vec![format!("^({r})$")],
        };
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|e| self.client_error(format!("cannot subscribe to {patterns:?}: {e}")))?;
        tracing::info!(source = %self.ctx.name, servers = %c.bootstrap_servers, group = %c.group_id, topics = ?patterns, "kafka consumer subscribed");
        self.consumer = Some(consumer);
        Ok(())
    }

    /// The event for one record, or `None` if its value is not the expected Avro datum.
    fn to_event(&self, m: &BorrowedMessage<'_>) -> Option<Event> {
        let c = &self.config;
        let value = m.payload().unwrap_or_default();
        let mut event = if c.use_flume_event_format {
            match crate::avro_event::decode(value) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(source = %self.ctx.name, topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "record skipped: useFlumeEventFormat is set but the value is not a Flume event");
                    return None;
                }
            }
        } else {
            Event::new(value.to_vec())
        };
        if !has_header(&event, "timestamp") {
            let ts = m.timestamp().to_millis().unwrap_or(-1);
            set_header(&mut event, "timestamp", ts.to_string());
        }
        if let Some(headers) = m.headers() {
            for (flume, kafka_name) in &c.record_headers {
                for h in headers.iter().filter(|h| h.key == kafka_name) {
                    if let Some(v) = h.value {
                        set_header(&mut event, flume, String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
        }
        if c.set_topic_header && !has_header(&event, &c.topic_header) {
            set_header(&mut event, &c.topic_header, m.topic().to_owned());
        }
        if !has_header(&event, "partition") {
            set_header(&mut event, "partition", m.partition().to_string());
        }
        if !has_header(&event, "offset") {
            set_header(&mut event, "offset", m.offset().to_string());
        }
        if let Some(key) = m.key() {
            set_header(&mut event, "key", String::from_utf8_lossy(key).into_owned());
        }
        Some(event)
    }

    /// Reads one batch: events and the positions they cover.
    fn read_batch(&self) -> (Vec<Event>, Positions) {
        let mut events = Vec::new();
        let mut positions = Positions::new();
        let Some(consumer) = self.consumer.as_ref() else {
            return (events, positions);
        };
        let deadline = Instant::now() + Duration::from_millis(self.config.batch_duration_ms);
        while events.len() < self.config.batch_size as usize {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            match consumer.poll(remaining) {
                None => {
                    self.kafka_counters.kafka_empty_count.fetch_add(1, Relaxed);
                    break;
                }
                Some(Err(e)) => {
                    tracing::warn!(source = %self.ctx.name, error = %e, "kafka poll error");
                }
                Some(Ok(m)) => {
                    let next = m.offset() + 1;
                    positions
                        .entry((m.topic().to_owned(), m.partition()))
                        .and_modify(|p| p.1 = next)
                        .or_insert((m.offset(), next));
                    match self.to_event(&m) {
                        Some(e) => events.push(e),
                        None => {
                            self.ctx.counters.event_read_fail.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
        }
        (events, positions)
    }

    /// Commits the offsets after the batch (and any left from a failed commit).
    fn commit_offsets(&mut self, positions: &Positions) {
        for ((t, p), (_, next)) in positions {
            self.uncommitted.insert((t.clone(), *p), *next);
        }
        let Some(consumer) = self.consumer.as_ref() else {
            return;
        };
        if self.uncommitted.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for ((t, p), next) in &self.uncommitted {
            if let Err(e) = list.add_partition_offset(t, *p, Offset::Offset(*next)) {
                tracing::error!(source = %self.ctx.name, topic = %t, partition = p, error = %e, "cannot list an offset to commit");
            }
        }
        let started = Instant::now();
        match consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => self.uncommitted.clear(),
            Err(e) => {
                tracing::warn!(source = %self.ctx.name, error = %e, "offset commit failed; retrying with the next batch (events may be delivered again after a restart)");
                // Keep only partitions still assigned to us: committing one that moved to
                // another member would fail every later commit too.
                if let Ok(assigned) = consumer.assignment() {
                    self.uncommitted
                        .retain(|(t, p), _| assigned.find_partition(t, *p).is_some());
                }
            }
        }
        self.kafka_counters
            .kafka_commit_timer_ms
            .fetch_add(started.elapsed().as_millis() as u64, Relaxed);
    }

    /// Rewinds every partition of a batch that could not be put, so it is read again.
    fn rewind(&self, positions: &Positions) {
        let Some(consumer) = self.consumer.as_ref() else {
            return;
        };
        for ((t, p), (first, _)) in positions {
            if let Err(e) = consumer.seek(t, *p, Offset::Offset(*first), Duration::from_secs(10)) {
                // Revoked meanwhile: its new owner starts from the committed offset.
                tracing::warn!(source = %self.ctx.name, topic = %t, partition = p, error = %e, "cannot rewind a partition");
            }
        }
    }
}

impl PollableSource for KafkaSource {
    fn process(&mut self) -> Result<Status, SourceError> {
        self.ensure_consumer()?;
        let started = Instant::now();
        let (events, positions) = self.read_batch();
        if events.is_empty() {
            if !positions.is_empty() {
                // Only undecodable records: move past them.
                self.commit_offsets(&positions);
            }
            return Ok(Status::Backoff);
        }
        let n = events.len() as u64;
        let c = &self.ctx.counters;
        self.kafka_counters
            .kafka_event_get_timer_ms
            .fetch_add(started.elapsed().as_millis() as u64, Relaxed);
        c.event_received_count.fetch_add(n, Relaxed);
        c.append_batch_received_count.fetch_add(1, Relaxed);
        match self.ctx.processor.process_batch(events) {
            Ok(()) => {
                c.event_accepted_count.fetch_add(n, Relaxed);
                c.append_batch_accepted_count.fetch_add(1, Relaxed);
                self.commit_offsets(&positions);
                Ok(Status::Ready)
            }
            Err(error) => {
                c.channel_write_fail.fetch_add(1, Relaxed);
                let e = SourceError::Channel {
                    source_name: self.ctx.name.to_string(),
                    error,
                };
                tracing::error!(error = %e, "source could not write to channel; the batch will be read again");
                self.rewind(&positions);
                Ok(Status::Backoff)
            }
        }
    }

    fn backoff(&self) -> Backoff {
        self.config.backoff
    }

    fn stop(&mut self) {
        if self.consumer.is_some() && !self.uncommitted.is_empty() {
            self.commit_offsets(&Positions::new());
        }
        if let Some(consumer) = self.consumer.take() {
            // Leave the group before closing: unsubscribing revokes the partitions, and the
            // revocation is handed to us behind any prefetched records, so poll (dropping those
            // uncommitted records) until the queue is empty. Closing without this leaves the
            // group waiting for the revocation, and the next member waits for our session to
            // time out.
            consumer.unsubscribe();
            let deadline = Instant::now() + Duration::from_secs(5);
            while consumer.poll(Duration::from_millis(100)).is_some() && Instant::now() < deadline {
            }
            drop(consumer);
            tracing::debug!(source = %self.ctx.name, "kafka consumer closed");
        }
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_support::{ctx, entries};

    #[test]
    fn flume_defaults() {
        let list = entries(&[
            ("kafka.bootstrap.servers", "h:9092"),
            ("kafka.topics", "a, b"),
        ]);
        let c = ctx(&list);
        let cfg = KafkaSourceConfig::parse(&c);
        let d = c.finish("kafka source r1");
        assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
        assert_eq!(
            cfg.subscription,
            Subscription::Topics(vec!["a".into(), "b".into()])
        );
        assert_eq!(cfg.group_id, "flume");
        assert_eq!((cfg.batch_size, cfg.batch_duration_ms), (1000, 1000));
        assert!(!cfg.use_flume_event_format);
        assert!(cfg.set_topic_header);
        assert_eq!(cfg.topic_header, "topic");
        assert_eq!(
            cfg.backoff,
            Backoff {
                increment_ms: 1000,
                max_ms: 5000
            }
        );
        assert!(cfg.consumer.is_empty());
    }

    #[test]
    fn flume_keys_and_regex_wins() {
        let list = entries(&[
            ("kafka.bootstrap.servers", "h:9092"),
            ("kafka.topics", "a"),
            ("kafka.topics.regex", "logs-.*"),
            ("kafka.consumer.group.id", "g1"),
            ("kafka.consumer.auto.offset.reset", "earliest"),
            ("batchSize", "10"),
            ("batchDurationMillis", "200"),
            ("useFlumeEventFormat", "true"),
            ("setTopicHeader", "false"),
            ("topicHeader", "t"),
            ("header.trace", "trace-id"),
        ]);
        let c = ctx(&list);
        let cfg = KafkaSourceConfig::parse(&c);
        let d = c.finish("kafka source r1");
        assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
        assert_eq!(cfg.subscription, Subscription::Regex("logs-.*".into()));
        assert_eq!(cfg.group_id, "g1");
        assert_eq!((cfg.batch_size, cfg.batch_duration_ms), (10, 200));
        assert!(cfg.use_flume_event_format);
        assert!(!cfg.set_topic_header);
        assert_eq!(cfg.topic_header, "t");
        assert_eq!(
            cfg.record_headers,
            vec![("trace".into(), "trace-id".into())]
        );
        let props: Vec<(&str, &str)> = cfg
            .consumer
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(props, vec![("auto.offset.reset", "earliest")]);
    }

    #[test]
    fn missing_topics_and_java_only_keys_are_errors() {
        let list = entries(&[
            ("kafka.bootstrap.servers", "h:9092"),
            ("kafka.consumer.max.poll.records", "5"),
            ("kafka.consumer.value.deserializer", "com.example.Avro"),
        ]);
        let c = ctx(&list);
        let _ = KafkaSourceConfig::parse(&c);
        let keys: Vec<String> = c
            .finish("kafka source r1")
            .errors
            .iter()
            .filter_map(|p| p.key.clone())
            .collect();
        assert_eq!(
            keys,
            vec![
                "a1.sources.r1.kafka.topics",
                "a1.sources.r1.kafka.consumer.max.poll.records",
                "a1.sources.r1.kafka.consumer.value.deserializer",
            ]
        );
    }
}
