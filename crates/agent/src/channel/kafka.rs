//! The `kafka` channel: Flume's `KafkaChannel`, a channel whose events live in a Kafka topic,
//! through librdkafka (the `rdkafka` crate).
//!
//! # Transactions
//!
//! - A put transaction buffers its events. Its commit sends them all (`acks = all`, forced)
//!   and returns only when every record has a successful delivery report; any failure fails
//!   the commit, so the source does not acknowledge (some records may already be in the topic
//!   and are sent again when the source retries: at least once). Rollback discards the buffer.
//! - A take transaction hands out records fetched by a consumer of the channel's group. Its
//!   commit commits, synchronously, the offset after the last record it took of each
//!   partition; a rollback puts its records back at the head, so the same events come again.
//!   Offsets are only ever committed for a prefix of what was handed out, in order.
//!
//! # Consumers
//!
//! A Kafka consumer commits per partition, so two take transactions sharing one consumer
//! could commit each other's records. Flume keeps one consumer per thread; here a take
//! transaction checks a consumer out of the channel's pool for its whole life (creating one
//! when every consumer is in use) and returns it at the end, so there are as many consumers,
//! all in the channel's group, as take transactions run at once (one per sink runner thread).
//! Each consumer keeps the records it fetched and not yet handed out.
//!
//! `take` never waits (see [`super`]): it hands out a fetched record, or polls without waiting.
//! [`KafkaChannel::wait_for_events`] is where a sink runner waits: it polls an idle consumer
//! for up to `pollTimeout` at a time. [`KafkaChannel::len`] is the number of records fetched
//! and not yet taken — an estimate, not the topic's lag.
//!
//! When the group rebalances, the records a consumer holds of a partition taken from it are
//! forgotten (the partition's new owner reads them from the committed offset), and so are such
//! records of a take transaction in progress: its commit does not commit their offsets and its
//! rollback does not put them back. The events may then be delivered twice, never lost.
//!
//! # Records
//!
//! With `parseAsFlumeEvent = true` (the default) a record's value is Flume's `AvroFlumeEvent`
//! as an Avro binary datum ([`crate::avro_event`]), so Flume agents and Sluice agents can share
//! a channel topic; otherwise it is the body and the headers are dropped, as in Flume. The
//! record key is the event's `key` header; a record's key comes back as the `key` header.
//! A record that does not decode is counted (`EventTakeErrorCount`), logged with its topic,
//! partition and offset, and skipped: its offset is committed with the take transaction that
//! passes it. (Flume fails that one `take` and passes the record over on the next; skipping it
//! at once ends the same way without rolling back the sink's batch.)

pub mod config;
pub mod counters;

use crate::event::Event;
pub use config::KafkaChannelConfig;
pub use counters::KafkaChannelCounters;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The header whose value is the record key (Flume's `KEY_HEADER`).
pub const KEY_HEADER: &str = "key";

/// Most records one poll moves into a consumer's buffer.
const FETCH_BATCH: usize = 1000;

/// Why a Kafka channel operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaChannelError {
    /// The channel was closed.
    #[error("kafka channel {0} is closed")]
    Closed(String),
    /// Puts and takes in one transaction.
    #[error("cannot mix puts and takes in one transaction")]
    MixedTransaction,
    /// `partitionIdHeader` held something that is not a partition number.
    #[error("kafka channel {channel}: non-integer partition id \"{value}\" in header {header}")]
    BadPartition {
        /// The channel.
        channel: String,
        /// The header.
        header: String,
        /// Its value.
        value: String,
    },
    /// A client could not be created.
    #[error("kafka channel {channel}: cannot create the Kafka {what}: {reason}")]
    Client {
        /// The channel.
        channel: String,
        /// `producer` or `consumer`.
        what: &'static str,
        /// librdkafka's message.
        reason: String,
    },
    /// A put commit was not acknowledged; nothing of it may be counted on.
    #[error("kafka channel {channel}: put commit failed, topic {topic}: {reason}")]
    Send {
        /// The channel.
        channel: String,
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// A take commit could not commit its offsets: the events may be delivered again after a
    /// restart or a rebalance.
    #[error("kafka channel {channel}: cannot commit consumer offsets of topic {topic} (the events may be delivered again): {reason}")]
    OffsetCommit {
        /// The channel.
        channel: String,
        /// The topic.
        topic: String,
        /// librdkafka's message.
        reason: String,
    },
}

/// The partition epochs of one consumer: bumped for a partition each time it is revoked, so
/// records fetched before are recognised as no longer ours.
type Epochs = Arc<Mutex<HashMap<i32, u64>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Logs librdkafka's errors under the channel's name and tracks partition revocations.
struct ConsumerLog {
    channel: Arc<str>,
    epochs: Epochs,
}

impl ClientContext for ConsumerLog {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(channel = %self.channel, error = %error, reason, "kafka consumer error");
    }
}

impl ConsumerContext for ConsumerLog {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut epochs = lock(&self.epochs);
            for e in list.elements() {
                *epochs.entry(e.partition()).or_default() += 1;
            }
            tracing::info!(channel = %self.channel, partitions = list.count(), "kafka channel partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            tracing::info!(channel = %self.channel, partitions = list.count(), "kafka channel partitions assigned");
        }
    }
}

/// What the delivery reports of one put commit said.
#[derive(Debug, Default)]
struct PutOutcome {
    acknowledged: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

/// Receives the producer's delivery reports (on whichever thread polls) and logs its errors.
struct ProducerLog {
    channel: Arc<str>,
}

impl ClientContext for ProducerLog {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(channel = %self.channel, error = %error, reason, "kafka producer error");
    }
}

impl ProducerContext for ProducerLog {
    type DeliveryOpaque = Arc<PutOutcome>;

    fn delivery(&self, result: &DeliveryResult<'_>, outcome: Arc<PutOutcome>) {
        match result {
            Ok(_) => {
                outcome.acknowledged.fetch_add(1, SeqCst);
            }
            Err((e, m)) => {
                let mut first = lock(&outcome.first_error);
                if first.is_none() {
                    *first = Some(format!("partition {}: {e}", m.partition()));
                }
                drop(first);
                outcome.failed.fetch_add(1, SeqCst);
            }
        }
    }
}

/// A record fetched by a consumer: where it came from and its event (`None`: it did not
/// decode, and is passed over).
#[derive(Clone, Debug)]
struct Fetched {
    partition: i32,
    offset: i64,
    epoch: u64,
    event: Option<Event>,
}

/// One consumer of the channel's group with the records it fetched and not yet handed out.
struct Slot {
    consumer: BaseConsumer<ConsumerLog>,
    epochs: Epochs,
    pending: VecDeque<Fetched>,
    /// Offsets of committed take transactions whose offset commit failed (retried with the
    /// next commit).
    unsent_offsets: BTreeMap<i32, i64>,
}

impl Slot {
    fn is_current(&self, f: &Fetched) -> bool {
        lock(&self.epochs).get(&f.partition).copied().unwrap_or(0) == f.epoch
    }
}

struct Shared {
    name: Arc<str>,
    config: KafkaChannelConfig,
    producer: BaseProducer<ProducerLog>,
    /// `linger.ms` is above 0: a put commit flushes before it waits for its reports, or it
    /// would wait the linger out ([`crate::kafka::lingers`]).
    flush_before_wait: bool,
    idle: Mutex<Vec<Slot>>,
    counters: KafkaChannelCounters,
    closed: AtomicBool,
}

/// A Kafka channel. Cloning shares it.
#[derive(Clone)]
pub struct KafkaChannel {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for KafkaChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaChannel")
            .field("name", &self.shared.name)
            .field("topic", &self.shared.config.topic)
            .finish()
    }
}

impl KafkaChannel {
    /// Creates the producer; consumers are created when first needed. Nothing connects yet:
    /// librdkafka connects in the background and a put commit fails until it can.
    pub fn open(name: &str, config: KafkaChannelConfig) -> Result<Self, KafkaChannelError> {
        let producer: BaseProducer<ProducerLog> = config
            .producer_config()
            .create_with_context(ProducerLog {
                channel: name.into(),
            })
            .map_err(|e| KafkaChannelError::Client {
                channel: name.to_owned(),
                what: "producer",
                reason: e.to_string(),
            })?;
        tracing::info!(channel = name, servers = %config.bootstrap_servers, topic = %config.topic, group = %config.group_id, "kafka channel open");
        Ok(Self {
            shared: Arc::new(Shared {
                name: name.into(),
                flush_before_wait: crate::kafka::lingers(&config.producer),
                config,
                producer,
                idle: Mutex::new(Vec::new()),
                counters: KafkaChannelCounters::default(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaChannelConfig {
        &self.shared.config
    }

    /// The counters.
    pub fn counters(&self) -> &KafkaChannelCounters {
        &self.shared.counters
    }

    /// Starts a transaction.
    pub fn transaction(&self) -> KafkaTransaction {
        KafkaTransaction {
            channel: self.clone(),
            puts: Vec::new(),
            slot: None,
            taken: Vec::new(),
            handed_out: 0,
        }
    }

    /// Records fetched and not yet taken by any transaction (consumers in use not counted).
    pub fn len(&self) -> u64 {
        let idle = lock(&self.shared.idle);
        let n: usize = idle
            .iter()
            .map(|s| {
                s.pending
                    .iter()
                    .filter(|f| f.event.is_some() && s.is_current(f))
                    .count()
            })
            .sum();
        n as u64
    }

    /// Whether no fetched record waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits up to `timeout` for a record to be fetched; returns whether one waits. Polls one
    /// idle consumer (creating one if none is idle), at most `pollTimeout` at a time.
    pub fn wait_for_events(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.closed.load(SeqCst) {
                return false;
            }
            let mut slot = match self.checkout() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(channel = %self.shared.name, error = %e, "kafka channel cannot create a consumer");
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                    return false;
                }
            };
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(self.shared.config.poll_timeout_ms));
            if !has_current(&slot) {
                self.fetch(&mut slot, slice);
            }
            let ready = has_current(&slot);
            self.give_back(slot);
            if ready || Instant::now() >= deadline {
                self.refresh_size();
                return ready;
            }
        }
    }

    /// Flume's channel counters for this channel.
    pub fn metrics(&self) -> Vec<crate::metrics::Metric> {
        self.refresh_size();
        self.shared.counters.snapshot()
    }

    /// Closes the channel: idle consumers commit what is owed and leave the group; the producer
    /// is flushed (a put commit in progress has already waited for its own records).
    pub fn close(&self) {
        self.shared.closed.store(true, SeqCst);
        let slots: Vec<Slot> = std::mem::take(&mut *lock(&self.shared.idle));
        for slot in slots {
            self.retire(slot);
        }
        if let Err(e) = self.shared.producer.flush(Duration::from_secs(5)) {
            tracing::warn!(channel = %self.shared.name, error = %e, "kafka channel producer flush on close did not complete");
        }
        tracing::info!(channel = %self.shared.name, "kafka channel closed");
    }

    fn refresh_size(&self) {
        let n = self.len();
        self.shared.counters.channel_size.store(n, Relaxed);
    }

    /// An idle consumer, or a new one subscribed to the topic.
    fn checkout(&self) -> Result<Slot, KafkaChannelError> {
        if let Some(slot) = lock(&self.shared.idle).pop() {
            return Ok(slot);
        }
        let s = &self.shared;
        let epochs = Epochs::default();
        let consumer: BaseConsumer<ConsumerLog> = s
            .config
            .consumer_config()
            .create_with_context(ConsumerLog {
                channel: s.name.clone(),
                epochs: epochs.clone(),
            })
            .map_err(|e| self.client_error("consumer", e))?;
        consumer
            .subscribe(&[s.config.topic.as_str()])
            .map_err(|e| self.client_error("consumer", e))?;
        tracing::info!(channel = %s.name, topic = %s.config.topic, group = %s.config.group_id, "kafka channel consumer subscribed");
        Ok(Slot {
            consumer,
            epochs,
            pending: VecDeque::new(),
            unsent_offsets: BTreeMap::new(),
        })
    }

    fn client_error(&self, what: &'static str, e: KafkaError) -> KafkaChannelError {
        KafkaChannelError::Client {
            channel: self.shared.name.to_string(),
            what,
            reason: e.to_string(),
        }
    }

    /// Returns a consumer to the pool (or retires it if the channel is closed).
    fn give_back(&self, slot: Slot) {
        if self.shared.closed.load(SeqCst) {
            self.retire(slot);
        } else {
            lock(&self.shared.idle).push(slot);
        }
    }

    /// Commits what a consumer owes and makes it leave the group.
    fn retire(&self, mut slot: Slot) {
        if !slot.unsent_offsets.is_empty() {
            let _ = self.commit_offsets(&mut slot);
        }
        // Unsubscribing revokes the partitions; the revocation is served behind any fetched
        // records, so poll until the queue is empty before dropping the consumer (otherwise
        // the group waits for this member's session to time out).
        slot.consumer.unsubscribe();
        let deadline = Instant::now() + Duration::from_secs(5);
        while slot.consumer.poll(Duration::from_millis(100)).is_some() && Instant::now() < deadline
        {
        }
    }

    /// Polls `slot`'s consumer for up to `timeout`, then without waiting, into its buffer.
    fn fetch(&self, slot: &mut Slot, timeout: Duration) {
        let started = Instant::now();
        let mut wait = timeout;
        for _ in 0..FETCH_BATCH {
            let Some(result) = slot.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match result {
                Ok(m) => {
                    let event = self.decode(&m);
                    let epoch = lock(&slot.epochs).get(&m.partition()).copied().unwrap_or(0);
                    slot.pending.push_back(Fetched {
                        partition: m.partition(),
                        offset: m.offset(),
                        epoch,
                        event,
                    });
                }
                Err(e) => {
                    tracing::warn!(channel = %self.shared.name, error = %e, "kafka channel poll error");
                }
            }
        }
        KafkaChannelCounters::add(
            &self.shared.counters.kafka_event_get_timer_ms,
            started.elapsed().as_millis() as u64,
        );
    }

    /// The event of a record, or `None` (counted and logged) if it does not decode.
    fn decode(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Option<Event> {
        let value = m.payload().unwrap_or_default();
        let mut event = if self.shared.config.parse_as_flume_event {
            match crate::avro_event::decode(value) {
                Ok(e) => e,
                Err(e) => {
                    KafkaChannelCounters::add(&self.shared.counters.event_take_error_count, 1);
                    tracing::error!(channel = %self.shared.name, topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "record skipped: parseAsFlumeEvent is set but the value is not a Flume event");
                    return None;
                }
            }
        } else {
            Event::new(value.to_vec())
        };
        if let Some(key) = m.key() {
            crate::event::set_header(
                &mut event,
                KEY_HEADER,
                String::from_utf8_lossy(key).into_owned(),
            );
        }
        Some(event)
    }

    /// Commits `slot.unsent_offsets` synchronously; on failure keeps those of partitions
    /// still assigned, for the next commit.
    fn commit_offsets(&self, slot: &mut Slot) -> Result<(), KafkaChannelError> {
        let topic = &self.shared.config.topic;
        let mut list = TopicPartitionList::new();
        for (p, next) in &slot.unsent_offsets {
            list.add_partition_offset(topic, *p, Offset::Offset(*next))
                .map_err(|e| self.offset_error(e.to_string()))?;
        }
        let started = Instant::now();
        let result = slot.consumer.commit(&list, CommitMode::Sync);
        KafkaChannelCounters::add(
            &self.shared.counters.kafka_commit_timer_ms,
            started.elapsed().as_millis() as u64,
        );
        match result {
            Ok(()) => {
                slot.unsent_offsets.clear();
                Ok(())
            }
            Err(e) => {
                KafkaChannelCounters::add(&self.shared.counters.event_take_error_count, 1);
                if let Ok(assigned) = slot.consumer.assignment() {
                    slot.unsent_offsets
                        .retain(|p, _| assigned.find_partition(topic, *p).is_some());
                }
                Err(self.offset_error(e.to_string()))
            }
        }
    }

    fn offset_error(&self, reason: String) -> KafkaChannelError {
        KafkaChannelError::OffsetCommit {
            channel: self.shared.name.to_string(),
            topic: self.shared.config.topic.clone(),
            reason,
        }
    }

    /// Sends `events` and waits for every delivery report.
    fn send(&self, events: &[Event]) -> Result<(), KafkaChannelError> {
        let s = &self.shared;
        let c = &s.config;
        let fail = |reason: String| KafkaChannelError::Send {
            channel: s.name.to_string(),
            topic: c.topic.clone(),
            reason,
        };
        let timeout = Duration::from_millis(c.delivery_timeout_ms) + Duration::from_secs(5);
        let deadline = Instant::now() + timeout;
        let outcome = Arc::new(PutOutcome::default());
        for event in events {
            let encoded;
            let payload: &[u8] = if c.parse_as_flume_event {
                encoded = crate::avro_event::encode(event);
                &encoded
            } else {
                &event.body
            };
            let mut record =
                BaseRecord::<str, [u8], Arc<PutOutcome>>::with_opaque_to(&c.topic, outcome.clone())
                    .payload(payload);
            if let Some(k) = event.header(KEY_HEADER) {
                record = record.key(k);
            }
            if let Some(p) = partition_of(c, event)
                .map_err(|(h, v)| fail(format!("non-integer partition id \"{v}\" in header {h}")))?
            {
                record = record.partition(p);
            }
            loop {
                match s.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        record = back;
                        s.producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(fail(format!("cannot send: {e}"))),
                }
            }
        }
        if s.flush_before_wait {
            // Sends what lingers and waits for it (polling the reports in); a timeout shows in
            // the reports counted below. (librdkafka's flush only bypasses the linger while it
            // waits: a zero-timeout flush held a put commit for the whole linger.)
            let _ = s
                .producer
                .flush(deadline.saturating_duration_since(Instant::now()));
        }
        let n = events.len();
        loop {
            let reported = outcome.acknowledged.load(SeqCst) + outcome.failed.load(SeqCst);
            if reported >= n {
                break;
            }
            if Instant::now() >= deadline {
                return Err(fail(format!(
                    "{} of {n} delivery reports missing after {} ms",
                    n - reported,
                    timeout.as_millis()
                )));
            }
            s.producer.poll(Duration::from_millis(1));
        }
        let acknowledged = outcome.acknowledged.load(SeqCst);
        if acknowledged != n {
            return Err(fail(format!(
                "{} of {n} records not acknowledged{}",
                n - acknowledged,
                lock(&outcome.first_error)
                    .as_deref()
                    .map(|e| format!(", first: {e}"))
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }
}

/// Whether `slot` holds a record that is still ours.
fn has_current(slot: &Slot) -> bool {
    slot.pending
        .iter()
        .any(|f| f.event.is_some() && slot.is_current(f))
}

/// The partition an event goes to: `partitionIdHeader`'s value, else `defaultPartitionId`,
/// else none; `Err((header, value))` for a value that is not a partition number.
fn partition_of(c: &KafkaChannelConfig, event: &Event) -> Result<Option<i32>, (String, String)> {
    if let Some(h) = &c.partition_id_header {
        if let Some(v) = event.header(h) {
            return v
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .map(Some)
                .ok_or_else(|| (h.clone(), v.to_owned()));
        }
    }
    Ok(c.default_partition_id)
}

/// A transaction on a [`KafkaChannel`]; dropping it unfinished rolls it back.
pub struct KafkaTransaction {
    channel: KafkaChannel,
    puts: Vec<Event>,
    /// The consumer of a take transaction, held until it ends.
    slot: Option<Slot>,
    /// Every record taken, decodable or not, in order.
    taken: Vec<Fetched>,
    /// Events handed out.
    handed_out: usize,
}

impl std::fmt::Debug for KafkaTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTransaction")
            .field("channel", &self.channel.shared.name)
            .field("puts", &self.puts.len())
            .field("taken", &self.handed_out)
            .finish()
    }
}

impl KafkaTransaction {
    fn closed(&self) -> Result<(), KafkaChannelError> {
        if self.channel.shared.closed.load(SeqCst) {
            return Err(KafkaChannelError::Closed(
                self.channel.shared.name.to_string(),
            ));
        }
        Ok(())
    }

    /// Adds an event (sent at commit); a bad `partitionIdHeader` value is refused here.
    pub fn put(&mut self, event: &Event) -> Result<(), KafkaChannelError> {
        let s = &self.channel.shared;
        KafkaChannelCounters::add(&s.counters.event_put_attempt_count, 1);
        self.closed()?;
        if self.slot.is_some() {
            return Err(KafkaChannelError::MixedTransaction);
        }
        partition_of(&s.config, event).map_err(|(header, value)| {
            KafkaChannelError::BadPartition {
                channel: s.name.to_string(),
                header,
                value,
            }
        })?;
        self.puts.push(event.clone());
        Ok(())
    }

    /// The next fetched event, or `None` if none is waiting (polls without waiting).
    pub fn take(&mut self) -> Result<Option<Event>, KafkaChannelError> {
        self.take_timeout(Duration::ZERO)
    }

    /// The next fetched event, polling the consumer up to `wait` for one when none is
    /// fetched already; `None` if none came.
    pub fn take_timeout(&mut self, wait: Duration) -> Result<Option<Event>, KafkaChannelError> {
        let channel = self.channel.clone();
        KafkaChannelCounters::add(&channel.shared.counters.event_take_attempt_count, 1);
        self.closed()?;
        if !self.puts.is_empty() {
            return Err(KafkaChannelError::MixedTransaction);
        }
        if self.slot.is_none() {
            self.slot = Some(channel.checkout()?);
        }
        let Some(slot) = self.slot.as_mut() else {
            return Ok(None);
        };
        let mut polled = false;
        loop {
            let Some(f) = slot.pending.pop_front() else {
                if polled {
                    return Ok(None);
                }
                polled = true;
                channel.fetch(slot, wait);
                continue;
            };
            if !slot.is_current(&f) {
                continue;
            }
            let event = f.event.clone();
            self.taken.push(f);
            if let Some(e) = event {
                self.handed_out += 1;
                return Ok(Some(e));
            }
        }
    }

    /// Events put or taken so far.
    pub fn len(&self) -> usize {
        self.puts.len() + self.handed_out
    }

    /// Whether nothing was put or taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Commits: a put transaction's events are sent and acknowledged; a take transaction's
    /// offsets are committed.
    pub fn commit(mut self) -> Result<(), KafkaChannelError> {
        let channel = self.channel.clone();
        let s = &channel.shared;
        let puts = std::mem::take(&mut self.puts);
        if !puts.is_empty() {
            let n = puts.len() as u64;
            if let Err(e) = self.closed() {
                KafkaChannelCounters::add(&s.counters.event_put_error_count, n);
                return Err(e);
            }
            let started = Instant::now();
            let result = channel.send(&puts);
            KafkaChannelCounters::add(
                &s.counters.kafka_event_send_timer_ms,
                started.elapsed().as_millis() as u64,
            );
            return match result {
                Ok(()) => {
                    KafkaChannelCounters::add(&s.counters.event_put_success_count, n);
                    Ok(())
                }
                Err(e) => {
                    KafkaChannelCounters::add(&s.counters.event_put_error_count, n);
                    tracing::warn!(channel = %s.name, events = n, error = %e, "kafka channel put commit failed");
                    Err(e)
                }
            };
        }
        let Some(mut slot) = self.slot.take() else {
            return Ok(());
        };
        let taken = std::mem::take(&mut self.taken);
        let handed_out = std::mem::replace(&mut self.handed_out, 0) as u64;
        let current: Vec<(i32, i64)> = taken
            .iter()
            .filter(|f| slot.is_current(f))
            .map(|f| (f.partition, f.offset + 1))
            .collect();
        for (partition, next) in current {
            let entry = slot.unsent_offsets.entry(partition).or_insert(0);
            *entry = (*entry).max(next);
        }
        let result = if slot.unsent_offsets.is_empty() {
            Ok(())
        } else {
            channel.commit_offsets(&mut slot)
        };
        channel.give_back(slot);
        channel.refresh_size();
        match result {
            Ok(()) => {
                KafkaChannelCounters::add(&s.counters.event_take_success_count, handed_out);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(channel = %s.name, error = %e, "kafka channel take commit failed");
                Err(e)
            }
        }
    }

    /// Rolls back: puts are discarded, taken records go back to the head in order.
    pub fn rollback(mut self) {
        self.rollback_in_place();
    }

    fn rollback_in_place(&mut self) {
        self.puts.clear();
        let Some(mut slot) = self.slot.take() else {
            return;
        };
        let taken = std::mem::take(&mut self.taken);
        let handed_out = std::mem::replace(&mut self.handed_out, 0) as u64;
        if handed_out > 0 {
            KafkaChannelCounters::add(&self.channel.shared.counters.rollback_count, handed_out);
        }
        for f in taken.into_iter().rev() {
            if slot.is_current(&f) {
                slot.pending.push_front(f);
            }
        }
        self.channel.give_back(slot);
    }
}

impl Drop for KafkaTransaction {
    fn drop(&mut self) {
        self.rollback_in_place();
    }
}

#[cfg(test)]
mod tests;
