//! The Kafka channel's counters, with the names of Flume's `KafkaChannelCounter` (which extends
//! `ChannelCounter`): `EventPutAttemptCount`, `EventPutSuccessCount`, `EventTakeAttemptCount`,
//! `EventTakeSuccessCount`, `RollbackCount`, `KafkaEventGetTimer`, `KafkaEventSendTimer` and
//! `KafkaCommitTimer` (milliseconds), and `ChannelSize`.
//!
//! Flume has no counter for the failures an operator alerts on; they get the names Flume's
//! file channel uses for its own: `EventPutErrorCount` (events whose put commit failed: the
//! source was told, nothing was acknowledged) and `EventTakeErrorCount` (records that did not
//! decode and were skipped, and offset commits that failed).

use crate::metrics::{Metric, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one Kafka channel.
#[derive(Debug, Default)]
pub struct KafkaChannelCounters {
    /// Records fetched from Kafka and not yet taken (an estimate of what is waiting).
    pub channel_size: AtomicU64,
    /// Events given to `put`.
    pub event_put_attempt_count: AtomicU64,
    /// Events of put transactions that committed (acknowledged by Kafka with acks=all).
    pub event_put_success_count: AtomicU64,
    /// Events of put transactions whose commit failed.
    pub event_put_error_count: AtomicU64,
    /// Calls to `take`.
    pub event_take_attempt_count: AtomicU64,
    /// Events of take transactions that committed.
    pub event_take_success_count: AtomicU64,
    /// Records skipped because they did not decode, plus failed offset commits.
    pub event_take_error_count: AtomicU64,
    /// Events of take transactions rolled back.
    pub rollback_count: AtomicU64,
    /// Milliseconds spent polling Kafka for records.
    pub kafka_event_get_timer_ms: AtomicU64,
    /// Milliseconds spent sending put commits until acknowledged.
    pub kafka_event_send_timer_ms: AtomicU64,
    /// Milliseconds spent committing offsets.
    pub kafka_commit_timer_ms: AtomicU64,
}

impl KafkaChannelCounters {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Every counter, Flume's names.
    pub fn snapshot(&self) -> Vec<Metric> {
        let counter = |name, c: &AtomicU64| Metric {
            name,
            value: Value::Counter(c.load(Relaxed)),
        };
        vec![
            Metric {
                name: "ChannelSize",
                value: Value::Gauge(self.channel_size.load(Relaxed)),
            },
            counter("EventPutAttemptCount", &self.event_put_attempt_count),
            counter("EventPutSuccessCount", &self.event_put_success_count),
            counter("EventPutErrorCount", &self.event_put_error_count),
            counter("EventTakeAttemptCount", &self.event_take_attempt_count),
            counter("EventTakeSuccessCount", &self.event_take_success_count),
            counter("EventTakeErrorCount", &self.event_take_error_count),
            counter("RollbackCount", &self.rollback_count),
            counter("KafkaEventGetTimer", &self.kafka_event_get_timer_ms),
            counter("KafkaEventSendTimer", &self.kafka_event_send_timer_ms),
            counter("KafkaCommitTimer", &self.kafka_commit_timer_ms),
        ]
    }
}
