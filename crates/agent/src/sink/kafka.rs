//! `kafka`: publishes events to Kafka topics (Flume's `KafkaSink`) through librdkafka (the
//! `rdkafka` crate), never a Kafka protocol of our own.
//!
//! Keys and Flume 1.11's defaults: `kafka.bootstrap.servers` (required), `kafka.topic`
//! (`default-flume-topic`; `%{header}` is replaced by the event's header), `flumeBatchSize`
//! (100), `kafka.producer.acks` (`1`, Flume's default, where librdkafka's is `all`),
//! `useFlumeEventFormat` (false: the body alone; true: Flume's `AvroFlumeEvent` datum with the
//! headers, readable by Flume's Kafka source and channel), `defaultPartitionId` (none: the
//! producer's partitioner picks), `partitionIdHeader` (none; overrides `defaultPartitionId`),
//! `allowTopicOverride` (true) with `topicHeader` (`topic`), `timestampHeader` (none: the
//! record's timestamp is the send time), `header.<flume header>=<kafka header>` (record headers)
//! and the `key` header as the record key. Every other `kafka.producer.*` key goes to
//! librdkafka ([`crate::kafka`] translates Java names). With `kafka.producer.transactional.id`
//! each batch is one Kafka transaction.
//!
//! # Delivery: batches in flight, takes open until acknowledged
//!
//! The sink runs its own take/commit loop (the counters and back-off rule of [`super::drain`],
//! which it does not use): each call takes up to `flumeBatchSize` events in a channel
//! transaction and hands them all to the producer without waiting; then it confirms the oldest
//! batches sent until at most four ([`BATCHES_IN_FLIGHT`]) are left unconfirmed. Confirming a
//! batch waits for its delivery reports (they mostly arrived while later batches were taken)
//! and, only when every record was acknowledged (and, with transactions, the transaction
//! committed), commits its take. A take stays open (uncommitted) until its last
//! acknowledgement: nothing is committed before Kafka has it, and a crash loses no event (the
//! open takes come back). A call that takes nothing confirms every batch in flight and backs
//! off, so no batch waits across a back-off; `stop` confirms them too (or leaves their events
//! in the channel). With `kafka.producer.transactional.id` (one open transaction per producer)
//! each batch is confirmed in the call that sent it.
//!
//! Any failure — an unknown topic, a non-numeric partition header, brokers unreachable until
//! the delivery timeout — purges what is still queued, aborts the transaction, rolls back every
//! take not confirmed (each counted in `RollbackCount`; `EventWriteFail` once) and returns the
//! error, so the runner retries later: at-least-once, a rolled-back batch may already be partly
//! in Kafka and is sent again. An event that cannot be prepared (a non-numeric partition
//! header) fails its batch before any of it is sent.
//!
//! # Why a threaded producer and a condvar
//!
//! `Sink::process` is synchronous, on the sink's own runner thread. rdkafka's
//! `ThreadedProducer` enqueues without blocking and handles delivery reports on its own
//! polling thread, in our [`ProducerContext`], which counts them per batch and wakes the sink's
//! thread once, when a batch's last report is in. Polling on the sink's thread instead costs
//! whole slices: rdkafka's `poll(t)` and `flush(t)` always run until `t` is over, which held a
//! batch of 100 for ~2 ms (0.09–0.13× rdkafka alone). A `FutureProducer` would need the tokio
//! runtime only to be blocked on from this thread.
//!
//! The delivery timeout is Java's `delivery.timeout.ms` default, 120 s (librdkafka's own default
//! is 300 s; with transactions it is capped at `transaction.timeout.ms`, 60 s by default), unless
//! `kafka.producer.delivery.timeout.ms` or `message.timeout.ms` says otherwise, and `linger.ms`
//! is Java's default 0 (librdkafka's is 5 ms) unless set; a batch's reports are awaited at most
//! that long plus a margin. With a linger set, confirming a batch flushes the producer first,
//! as Flume's sink flushes every batch, so no batch is held for its linger. The producer is
//! created on the first `process` (and again after a failed transactional setup), so a broken
//! cluster is counted in `ConnectionFailedCount` and retried, not a start-up failure.

use super::{Sink, SinkContext, SinkError};
use crate::channel::Txn;
use crate::config::context::Ctx;
use crate::kafka::{self, ClientProperty, Role};
use crate::metrics::{ExtraCounters, Metric, Value};
use crate::runner::Status;
use file_channel::Event;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::PurgeConfig;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

mod config;
pub use config::{
    KafkaSinkConfig, DEFAULT_DELIVERY_TIMEOUT_MS, DEFAULT_TOPIC, DEFAULT_TRANSACTION_TIMEOUT_MS,
    KEY_HEADER,
};

/// Replaces every `%{name}` in `template` by the event's header `name` (empty when absent), as
/// Flume's `BucketPath` does for header escapes.
pub fn substitute_headers(template: &str, event: &Event) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push_str(event.header(&after[..end]).unwrap_or(""));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Flume's `KafkaSinkCounter` additions to `SinkCounter`.
#[derive(Debug, Default)]
pub struct KafkaSinkCounters {
    /// Milliseconds spent sending batches (take to last acknowledgement).
    pub kafka_event_send_timer_ms: AtomicU64,
    /// Batches rolled back.
    pub rollback_count: AtomicU64,
}

impl ExtraCounters for KafkaSinkCounters {
    fn snapshot(&self) -> Vec<Metric> {
        vec![
            Metric {
                name: "KafkaEventSendTimer",
                value: Value::Counter(self.kafka_event_send_timer_ms.load(Relaxed)),
            },
            Metric {
                name: "RollbackCount",
                value: Value::Counter(self.rollback_count.load(Relaxed)),
            },
        ]
    }
}

/// What the delivery reports of one batch said so far.
#[derive(Debug)]
struct Outcome {
    batch: usize,
    /// Records sent in the batch: it is settled when this many reports are in.
    expected: usize,
    acknowledged: usize,
    failed: usize,
    first_error: Option<String>,
}

impl Outcome {
    fn settled(&self) -> bool {
        self.acknowledged + self.failed >= self.expected
    }
}

/// Receives librdkafka's delivery reports and errors on the producer's polling thread, counts
/// them per batch (at most two are in flight), and wakes the sink's thread when a batch's last
/// report is in. Reports of a batch it no longer tracks (one that failed and was purged) are
/// ignored.
#[derive(Debug)]
struct DeliveryContext {
    sink: Arc<str>,
    batches: Mutex<Vec<Outcome>>,
    /// Signalled when a batch's last report arrives.
    settled: Condvar,
    counters: Arc<crate::metrics::SinkCounters>,
    /// The latest error that refused the connection itself (authentication, TLS), named in
    /// the error of a batch that fails after it: librdkafka reports such batches only as
    /// timed out.
    refused: Mutex<Option<String>>,
}

impl DeliveryContext {
    fn batches(&self) -> std::sync::MutexGuard<'_, Vec<Outcome>> {
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts counting the reports of batch `batch` of `expected` records.
    fn start_batch(&self, batch: usize, expected: usize) {
        self.batches().push(Outcome {
            batch,
            expected,
            acknowledged: 0,
            failed: 0,
            first_error: None,
        });
    }

    /// The refusal recorded since the last failed batch, if any (see `refused`).
    fn take_refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Stops counting every batch (after a failure purged them).
    fn forget_all(&self) {
        self.batches().clear();
    }

    /// Waits until every record of `batch` has a report, or `deadline`; `Ok` only if every
    /// report is an acknowledgement. The batch is forgotten either way.
    fn wait_for(&self, batch: usize, deadline: Instant) -> Result<(), String> {
        let mut batches = self.batches();
        loop {
            let Some(i) = batches.iter().position(|o| o.batch == batch) else {
                return Err(format!("batch {batch} is not tracked"));
            };
            let o = &batches[i];
            if o.settled() {
                let o = batches.remove(i);
                if o.acknowledged == o.expected {
                    return Ok(());
                }
                return Err(format!(
                    "{} of {} records not acknowledged{}",
                    o.expected - o.acknowledged,
                    o.expected,
                    o.first_error
                        .as_deref()
                        .map(|e| format!(", first: {e}"))
                        .unwrap_or_default()
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                let o = batches.remove(i);
                return Err(format!(
                    "{} of {} delivery reports missing at the delivery timeout",
                    o.expected - o.acknowledged - o.failed,
                    o.expected
                ));
            }
            batches = self
                .settled
                .wait_timeout(batches, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                self.counters.connection_failed_count.fetch_add(1, Relaxed);
            }
            Some(
                RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::SSL,
            ) => {
                self.counters.connection_failed_count.fetch_add(1, Relaxed);
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("{error}: {reason}"));
            }
            _ => {}
        }
        tracing::warn!(sink = %self.sink, error = %error, reason, "kafka client error");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: usize) {
        let mut batches = self.batches();
        let Some(o) = batches.iter_mut().find(|o| o.batch == batch) else {
            tracing::debug!(sink = %self.sink, batch, "delivery report of a failed batch ignored");
            return;
        };
        match result {
            Ok(_) => o.acknowledged += 1,
            Err((e, msg)) => {
                o.failed += 1;
                if o.first_error.is_none() {
                    o.first_error = Some(format!(
                        "topic {} partition {}: {e}",
                        msg.topic(),
                        msg.partition()
                    ));
                }
            }
        }
        if o.settled() {
            self.settled.notify_all();
        }
    }
}

/// A batch sent and not yet confirmed: its take stays open (uncommitted) until every record
/// has an acknowledgement.
struct InFlight {
    txn: Txn,
    batch: usize,
    taken: usize,
    /// When its take began (for `KafkaEventSendTimer`).
    started: Instant,
    /// When its delivery reports are overdue.
    deadline: Instant,
}

/// One record, prepared from an event; it borrows from the event and the configuration
/// wherever it can, so an event costs no allocation of ours unless a topic is made from
/// headers, record headers are configured or the Flume event format is on.
struct Prepared<'a> {
    topic: Cow<'a, str>,
    partition: Option<i32>,
    key: Option<&'a str>,
    timestamp_ms: Option<i64>,
    headers: Option<OwnedHeaders>,
    payload: Cow<'a, [u8]>,
}

/// The kafka sink.
pub struct KafkaSink {
    config: KafkaSinkConfig,
    ctx: SinkContext,
    kafka_counters: Arc<KafkaSinkCounters>,
    producer: Option<ThreadedProducer<DeliveryContext>>,
    /// Numbers the batches, so each report is counted for its own batch.
    batch_seq: usize,
    /// The batches sent and not yet confirmed, oldest first.
    in_flight: std::collections::VecDeque<InFlight>,
    /// Whether `linger.ms` is above 0: then confirming a batch flushes the producer first, as
    /// Flume's sink flushes each batch, so no batch waits for its linger. (With a zero linger
    /// records go out at once; a flush would only wake every broker thread once more.)
    flush_before_confirm: bool,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.ctx.name)
            .field("connected", &self.producer.is_some())
            .finish()
    }
}

impl KafkaSink {
    /// A kafka sink; the producer is created on the first `process`.
    pub fn new(config: KafkaSinkConfig, ctx: SinkContext) -> Self {
        let kafka_counters = Arc::new(KafkaSinkCounters::default());
        let _ = ctx.counters.extra.set(kafka_counters.clone());
        ctx.counters.lifetime.started();
        let flush_before_confirm = kafka::lingers(&config.producer);
        Self {
            config,
            ctx,
            kafka_counters,
            producer: None,
            batch_seq: 0,
            in_flight: std::collections::VecDeque::new(),
            flush_before_confirm,
        }
    }

    /// Flume's counters added by the Kafka sink.
    pub fn kafka_counters(&self) -> &Arc<KafkaSinkCounters> {
        &self.kafka_counters
    }

    fn failure(&self, reason: impl Into<String>) -> SinkError {
        SinkError::Delivery {
            sink: self.ctx.name.to_string(),
            peer: format!("kafka {}", self.config.bootstrap_servers),
            reason: reason.into(),
        }
    }

    fn flush_timeout(&self) -> Duration {
        Duration::from_millis(self.config.delivery_timeout_ms) + Duration::from_secs(5)
    }

    /// Creates the producer (and sets up transactions) if there is none.
    fn ensure_producer(&mut self) -> Result<(), SinkError> {
        if self.producer.is_some() {
            return Ok(());
        }
        let config = kafka::client_config(
            &self.config.producer,
            &[("bootstrap.servers", self.config.bootstrap_servers.clone())],
        );
        let context = DeliveryContext {
            sink: self.ctx.name.clone(),
            batches: Mutex::default(),
            settled: Condvar::new(),
            counters: self.ctx.counters.clone(),
            refused: Mutex::default(),
        };
        let c = &self.ctx.counters;
        let producer: ThreadedProducer<DeliveryContext> = match config.create_with_context(context)
        {
            Ok(p) => p,
            Err(e) => {
                c.connection_failed_count.fetch_add(1, Relaxed);
                return Err(self.failure(format!("cannot create the Kafka producer: {e}")));
            }
        };
        if self.config.transactional_id.is_some() {
            if let Err(e) = producer.init_transactions(self.flush_timeout()) {
                c.connection_failed_count.fetch_add(1, Relaxed);
                return Err(self.failure(format!("cannot initialise Kafka transactions: {e}")));
            }
        }
        c.connection_created_count.fetch_add(1, Relaxed);
        tracing::info!(sink = %self.ctx.name, servers = %self.config.bootstrap_servers, "kafka producer created");
        self.producer = Some(producer);
        Ok(())
    }

    /// The record for `event`, or why it cannot be sent.
    fn prepare<'a>(&'a self, event: &'a Event) -> Result<Prepared<'a>, String> {
        let c = &self.config;
        let topic = match c
            .allow_topic_override
            .then(|| event.header(&c.topic_header))
            .flatten()
        {
            Some(t) => Cow::Borrowed(t),
            None if !c.topic.contains("%{") => Cow::Borrowed(c.topic.as_str()),
            None => Cow::Owned(substitute_headers(&c.topic, event)),
        };
        let mut partition = c.default_partition_id;
        if let Some(h) = &c.partition_id_header {
            if let Some(v) = event.header(h) {
                partition = Some(
                    v.trim()
                        .parse::<i32>()
                        .map_err(|_| format!("non-integer partition id \"{v}\" in header {h}"))?,
                );
            }
        }
        let timestamp_ms = c.timestamp_header.as_deref().and_then(|h| {
            let v = event.header(h)?;
            match v.trim().parse::<i64>() {
                Ok(ms) => Some(ms),
                Err(_) => {
                    tracing::warn!(sink = %self.ctx.name, header = h, value = v, "invalid timestamp header; using the send time");
                    None
                }
            }
        });
        let mut headers: Option<OwnedHeaders> = None;
        for (flume, kafka_name) in &c.record_headers {
            if let Some(v) = event.header(flume) {
                headers = Some(headers.unwrap_or_default().insert(Header {
                    key: kafka_name,
                    value: Some(v.as_bytes()),
                }));
            }
        }
        let payload = if c.use_flume_event_format {
            Cow::Owned(crate::avro_event::encode(event))
        } else {
            Cow::Borrowed(event.body.as_slice())
        };
        Ok(Prepared {
            topic,
            partition,
            key: event.header(KEY_HEADER),
            timestamp_ms,
            headers,
            payload,
        })
    }

    /// Sends `records` as batch number `batch`, without waiting for their reports; a
    /// transactional batch begins its transaction first.
    fn send_batch(
        &self,
        batch: usize,
        records: Vec<Prepared<'_>>,
        deadline: Instant,
    ) -> Result<(), String> {
        let Some(producer) = self.producer.as_ref() else {
            return Err("no producer".into());
        };
        producer.context().start_batch(batch, records.len());
        if self.config.transactional_id.is_some() {
            producer
                .begin_transaction()
                .map_err(|e| format!("cannot begin a transaction: {e}"))?;
        }
        for r in records {
            let mut record =
                BaseRecord::<str, [u8], usize>::with_opaque_to(&r.topic, batch).payload(&r.payload);
            if let Some(k) = r.key {
                record = record.key(k);
            }
            if let Some(p) = r.partition {
                record = record.partition(p);
            }
            if let Some(ts) = r.timestamp_ms {
                record = record.timestamp(ts);
            }
            if let Some(h) = r.headers {
                record = record.headers(h);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    // The producer's queue is full: its polling thread drains it as reports
                    // come in.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(format!("cannot send to topic {}: {e}", r.topic)),
                }
            }
        }
        Ok(())
    }

    /// Confirms the oldest batch in flight: waits for every report of it (the producer's
    /// polling thread counts them in [`DeliveryContext`] and wakes this thread once, when the
    /// last is in), commits its Kafka transaction if any, then commits its take. On a failed
    /// delivery its take and those of every later batch in flight are rolled back.
    fn confirm_oldest(&mut self) -> Result<(), SinkError> {
        let Some(batch) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let delivered = match self.producer.as_ref() {
            None => Err("no producer".to_owned()),
            Some(p) => {
                if self.flush_before_confirm {
                    // Sends what lingers and waits for it (the later batches' records too);
                    // a timeout shows in the reports awaited below.
                    let _ = p.flush(batch.deadline.saturating_duration_since(Instant::now()));
                }
                p.context()
                    .wait_for(batch.batch, batch.deadline)
                    .and_then(|()| {
                        if self.config.transactional_id.is_none() {
                            return Ok(());
                        }
                        p.commit_transaction(
                            batch.deadline.saturating_duration_since(Instant::now()),
                        )
                        .map_err(|e| format!("cannot commit the transaction: {e}"))
                    })
            }
        };
        if let Err(why) = delivered {
            let later: Vec<InFlight> = self.in_flight.drain(..).rev().collect();
            return Err(self.fail(why, later.into_iter().chain([batch])));
        }
        let counters = &self.ctx.counters;
        if let Err(e) = batch.txn.commit() {
            // Delivered, but the take did not commit: delivered again (at least once).
            counters.channel_read_fail.fetch_add(1, Relaxed);
            return Err(self.ctx.channel_error(e));
        }
        counters
            .event_drain_success_count
            .fetch_add(batch.taken as u64, Relaxed);
        self.kafka_counters
            .kafka_event_send_timer_ms
            .fetch_add(batch.started.elapsed().as_millis() as u64, Relaxed);
        tracing::debug!(sink = %self.ctx.name, events = batch.taken, "batch published");
        Ok(())
    }

    /// Confirms every batch in flight, oldest first.
    fn confirm_all(&mut self) -> Result<(), SinkError> {
        while !self.in_flight.is_empty() {
            self.confirm_oldest()?;
        }
        Ok(())
    }

    /// A failed delivery: drops whatever is still queued, ends the Kafka transaction, and rolls
    /// back the takes of `batches` (newest first, so the oldest events are first again).
    fn fail(&mut self, mut why: String, batches: impl IntoIterator<Item = InFlight>) -> SinkError {
        self.ctx.counters.event_write_fail.fetch_add(1, Relaxed);
        if let Some(refused) = self
            .producer
            .as_ref()
            .and_then(|p| p.context().take_refusal())
        {
            why = format!("{why} (the broker refused the connection: {refused})");
        }
        if let Some(producer) = self.producer.as_ref() {
            producer.purge(PurgeConfig::default().queue().inflight());
            producer.context().forget_all();
            if self.config.transactional_id.is_some() {
                if let Err(e) = producer.abort_transaction(self.flush_timeout()) {
                    tracing::warn!(sink = %self.ctx.name, error = %e, "cannot abort the Kafka transaction; recreating the producer");
                    self.producer = None;
                }
            }
        }
        for b in batches {
            b.txn.rollback();
            self.kafka_counters.rollback_count.fetch_add(1, Relaxed);
        }
        self.failure(format!("failed to publish events: {why}"))
    }

    /// One call: take a batch and send it; then confirm the oldest batches in flight until
    /// at most [`BATCHES_IN_FLIGHT`] are left (their reports arrived while later batches were
    /// taken). With transactions (one open transaction per producer) every batch is confirmed
    /// in the call that sent it; a call that takes nothing confirms them all.
    fn pipelined_process(&mut self) -> Result<Status, SinkError> {
        self.ensure_producer()?;
        let started = Instant::now();
        let (txn, events) = match super::drain::take_batch(
            &self.ctx,
            self.config.batch_size as usize,
            std::time::Duration::ZERO,
        ) {
            Ok(taken) => taken,
            Err(e) => {
                // The failed take was rolled back.
                self.kafka_counters.rollback_count.fetch_add(1, Relaxed);
                self.confirm_all()?;
                return Err(e);
            }
        };
        let taken = events.len();
        if taken == 0 {
            if let Err(e) = txn.commit() {
                self.ctx.counters.channel_read_fail.fetch_add(1, Relaxed);
                self.confirm_all()?;
                return Err(self.ctx.channel_error(e));
            }
            // Flume's rule: back off when the channel gave nothing; nothing stays in flight
            // across the back-off.
            self.confirm_all()?;
            return Ok(Status::Backoff);
        }
        self.batch_seq = self.batch_seq.wrapping_add(1);
        let batch = self.batch_seq;
        let deadline = Instant::now() + self.flush_timeout();
        // Every record is prepared before any is sent: an event that cannot be sent fails its
        // batch before anything of it reaches Kafka.
        let prepared = events
            .iter()
            .map(|e| self.prepare(e))
            .collect::<Result<Vec<_>, _>>();
        let records = match prepared {
            Ok(r) => r,
            Err(why) => {
                txn.rollback();
                self.kafka_counters.rollback_count.fetch_add(1, Relaxed);
                self.ctx.counters.event_write_fail.fetch_add(1, Relaxed);
                self.confirm_all()?;
                return Err(self.failure(format!("failed to publish events: {why}")));
            }
        };
        let this = InFlight {
            txn,
            batch,
            taken,
            started,
            deadline,
        };
        if let Err(why) = self.send_batch(batch, records, deadline) {
            let earlier: Vec<InFlight> = self.in_flight.drain(..).rev().collect();
            return Err(self.fail(why, [this].into_iter().chain(earlier)));
        }
        self.in_flight.push_back(this);
        let keep = if self.config.transactional_id.is_some() {
            0
        } else {
            BATCHES_IN_FLIGHT
        };
        while self.in_flight.len() > keep {
            self.confirm_oldest()?;
        }
        Ok(Status::Ready)
    }
}

/// Batches a call leaves sent and unconfirmed (their takes open), so that their round trips
/// overlap the next takes.
const BATCHES_IN_FLIGHT: usize = 4;

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.ctx.name
    }

    fn process(&mut self) -> Result<Status, SinkError> {
        self.pipelined_process()
    }

    fn stop(&mut self) {
        let stop_by = Instant::now() + Duration::from_secs(5);
        for b in &mut self.in_flight {
            b.deadline = b.deadline.min(stop_by);
        }
        if let Err(e) = self.confirm_all() {
            tracing::warn!(sink = %self.ctx.name, error = %e, "the batches in flight were not confirmed on stop; their events stay in the channel");
        }
        if let Some(p) = self.producer.take() {
            if let Err(e) = p.flush(Duration::from_secs(5)) {
                tracing::warn!(sink = %self.ctx.name, error = %e, "flush on stop did not complete");
            }
            self.ctx
                .counters
                .connection_closed_count
                .fetch_add(1, Relaxed);
        }
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests;
