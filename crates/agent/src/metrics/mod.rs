//! Component metrics under Flume's names, so Flume dashboards and scripts carry over:
//! [`SourceCounters`] and [`SinkCounters`] mirror Flume's `SourceCounter` and `SinkCounter`,
//! channels report Flume's `ChannelCounter` names plus the engine's own (fsyncs, bytes on disk,
//! events lost to corruption). [`Registry`] holds every component of the agent;
//! [`render`] turns a snapshot into Flume's JSON shape or Prometheus text, and [`http`] serves
//! both.

pub mod http;
pub mod render;

use crate::channel::Channel;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// One value, typed for Prometheus.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// Only ever grows.
    Counter(u64),
    /// Goes up and down.
    Gauge(u64),
    /// A gauge with a fraction (Flume's `ChannelFillPercentage`).
    Ratio(f64),
    /// A yes/no state (Flume's `Open`): `"true"`/`"false"` in JSON as Flume's boolean
    /// attributes are, a 1/0 gauge in Prometheus.
    Flag(bool),
}

/// A named value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    /// Flume's attribute name (`EventAcceptedCount`).
    pub name: &'static str,
    /// The value.
    pub value: Value,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When a component started and stopped (Flume's `StartTime` and `StopTime`, 0 when not yet).
#[derive(Debug, Default)]
pub struct Lifetime {
    /// Milliseconds since the epoch at start, 0 before.
    pub start_time_ms: AtomicU64,
    /// Milliseconds since the epoch at stop, 0 while running.
    pub stop_time_ms: AtomicU64,
}

impl Lifetime {
    /// Records the start.
    pub fn started(&self) {
        self.start_time_ms.store(now_epoch_ms(), Relaxed);
        self.stop_time_ms.store(0, Relaxed);
    }

    /// Records the stop.
    pub fn stopped(&self) {
        self.stop_time_ms.store(now_epoch_ms(), Relaxed);
    }

    /// `StartTime` and `StopTime`.
    pub fn snapshot(&self) -> [Metric; 2] {
        [
            Metric {
                name: "StartTime",
                value: Value::Gauge(self.start_time_ms.load(Relaxed)),
            },
            Metric {
                name: "StopTime",
                value: Value::Gauge(self.stop_time_ms.load(Relaxed)),
            },
        ]
    }
}

/// Counters of one component type beyond Flume's common set (for example the Kafka sink's
/// `KafkaEventSendTimer` and `RollbackCount`).
pub trait ExtraCounters: std::fmt::Debug + Send + Sync {
    /// Every value by its Flume name, in a fixed order.
    fn snapshot(&self) -> Vec<Metric>;
}

macro_rules! counter_group {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $field:ident => $export:literal : $kind:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$doc])* pub $field: AtomicU64,)*
            /// Start and stop times.
            pub lifetime: Lifetime,
            /// Counters a component type adds to Flume's set (as Flume's `KafkaSinkCounter`
            /// extends `SinkCounter`), reported after the common ones; set once when built.
            pub extra: OnceLock<Arc<dyn ExtraCounters>>,
        }

        impl $name {
            /// Every value by its Flume name, in a fixed order.
            pub fn snapshot(&self) -> Vec<Metric> {
                let mut v = vec![$(Metric { name: $export, value: Value::$kind(self.$field.load(Relaxed)) },)*];
                if let Some(extra) = self.extra.get() {
                    v.extend(extra.snapshot());
                }
                v.extend(self.lifetime.snapshot());
                v
            }

            /// Adds `n` to a counter.
            pub fn add(counter: &AtomicU64, n: u64) {
                counter.fetch_add(n, Relaxed);
            }
        }
    };
}

counter_group! {
    /// Flume's `SourceCounter`.
    SourceCounters {
        /// Events received from clients (before interceptors and channels).
        event_received_count => "EventReceivedCount": Counter,
        /// Events committed to every required channel.
        event_accepted_count => "EventAcceptedCount": Counter,
        /// Single-event appends received (Flume's RPC sources).
        append_received_count => "AppendReceivedCount": Counter,
        /// Single-event appends accepted.
        append_accepted_count => "AppendAcceptedCount": Counter,
        /// Batches received.
        append_batch_received_count => "AppendBatchReceivedCount": Counter,
        /// Batches committed to every required channel.
        append_batch_accepted_count => "AppendBatchAcceptedCount": Counter,
        /// Client connections open now.
        open_connection_count => "OpenConnectionCount": Gauge,
        /// Puts that failed on a required channel (the client was told).
        channel_write_fail => "ChannelWriteFail": Counter,
        /// Input that could not be read or was refused (too long, malformed).
        event_read_fail => "EventReadFail": Counter,
        /// Other failures.
        generic_processing_fail => "GenericProcessingFail": Counter,
        /// Events the channel selector sent to no channel (a multiplexing selector without
        /// `selector.default`, an unmatched header value): dropped, as Flume drops them.
        event_unrouted_count => "EventUnroutedCount": Counter,
    }
}

counter_group! {
    /// Flume's `SinkCounter`.
    SinkCounters {
        /// Output connections or files opened.
        connection_created_count => "ConnectionCreatedCount": Counter,
        /// Output connections or files closed.
        connection_closed_count => "ConnectionClosedCount": Counter,
        /// Output connections or files that failed to open or close.
        connection_failed_count => "ConnectionFailedCount": Counter,
        /// Batches that took no event.
        batch_empty_count => "BatchEmptyCount": Counter,
        /// Batches smaller than the batch size.
        batch_underflow_count => "BatchUnderflowCount": Counter,
        /// Full batches.
        batch_complete_count => "BatchCompleteCount": Counter,
        /// Events taken and attempted.
        event_drain_attempt_count => "EventDrainAttemptCount": Counter,
        /// Events delivered and committed.
        event_drain_success_count => "EventDrainSuccessCount": Counter,
        /// Deliveries that failed to write (their events were rolled back).
        event_write_fail => "EventWriteFail": Counter,
        /// Takes or take commits that failed.
        channel_read_fail => "ChannelReadFail": Counter,
    }
}

counter_group! {
    /// Flume's `ChannelCounter`, for channels that have no engine metrics of their own.
    ChannelCounters {
        /// Events committed and not taken.
        channel_size => "ChannelSize": Gauge,
        /// The configured capacity.
        channel_capacity => "ChannelCapacity": Gauge,
        /// Calls to put.
        event_put_attempt_count => "EventPutAttemptCount": Counter,
        /// Events in committed put transactions.
        event_put_success_count => "EventPutSuccessCount": Counter,
        /// Calls to take.
        event_take_attempt_count => "EventTakeAttemptCount": Counter,
        /// Events in committed take transactions.
        event_take_success_count => "EventTakeSuccessCount": Counter,
    }
}

counter_group! {
    /// The agent's own events: live reloads of its configuration (`AGENT.<name>` in the JSON,
    /// `sluice_agent_*` in Prometheus).
    ReloadCounters {
        /// Reloads that changed the running topology or found nothing to change.
        reload_count => "ReloadCount": Counter,
        /// Reloads refused or failed: a file that did not load or validate, a change that
        /// cannot be made live, or a component that failed to start (alert on this).
        reload_failed_count => "ReloadFailedCount": Counter,
        /// When the last reload ended, in milliseconds since the epoch (0: none yet).
        last_reload_time => "LastReloadTime": Gauge,
        /// 1 if the last reload succeeded, 0 if it failed or there was none.
        last_reload_succeeded => "LastReloadSucceeded": Gauge,
    }
}

impl ReloadCounters {
    /// Counts one reload and its outcome.
    pub fn record(&self, succeeded: bool) {
        if succeeded {
            Self::add(&self.reload_count, 1);
        } else {
            Self::add(&self.reload_failed_count, 1);
        }
        self.last_reload_time.store(now_epoch_ms(), Relaxed);
        self.last_reload_succeeded
            .store(u64::from(succeeded), Relaxed);
    }
}

/// Flume's component types, as they prefix JSON keys (`SOURCE.r1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ComponentType {
    /// The agent itself (Sluice's: its reloads).
    Agent,
    /// A source.
    Source,
    /// A channel.
    Channel,
    /// A sink.
    Sink,
}

impl ComponentType {
    /// `AGENT`, `SOURCE`, `CHANNEL` or `SINK`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "AGENT",
            Self::Source => "SOURCE",
            Self::Channel => "CHANNEL",
            Self::Sink => "SINK",
        }
    }
}

#[derive(Clone, Debug)]
enum Provider {
    Agent(Arc<ReloadCounters>),
    Source(Arc<SourceCounters>),
    Sink(Arc<SinkCounters>),
    Channel(Channel),
}

/// The metrics of one component at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentSnapshot {
    /// Its type.
    pub kind: ComponentType,
    /// Its name.
    pub name: String,
    /// Its values.
    pub metrics: Vec<Metric>,
}

/// Every component of the agent that reports metrics. Components come and go with live
/// reloads, so the list is behind a lock; a snapshot sees one consistent list.
#[derive(Debug, Default)]
pub struct Registry {
    components: RwLock<Vec<(ComponentType, String, Provider)>>,
}

impl Registry {
    fn push(&self, kind: ComponentType, name: &str, provider: Provider) {
        let mut list = self
            .components
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        list.retain(|(k, n, _)| !(*k == kind && n == name));
        list.push((kind, name.to_owned(), provider));
    }

    /// Adds the agent's own counters (replacing any of the same name).
    pub fn add_agent(&self, name: &str, counters: Arc<ReloadCounters>) {
        self.push(ComponentType::Agent, name, Provider::Agent(counters));
    }

    /// Adds a source (replacing any of the same name).
    pub fn add_source(&self, name: &str, counters: Arc<SourceCounters>) {
        self.push(ComponentType::Source, name, Provider::Source(counters));
    }

    /// Adds a sink (replacing any of the same name).
    pub fn add_sink(&self, name: &str, counters: Arc<SinkCounters>) {
        self.push(ComponentType::Sink, name, Provider::Sink(counters));
    }

    /// Adds a channel (replacing any of the same name).
    pub fn add_channel(&self, channel: Channel) {
        let name = channel.name().to_owned();
        self.push(ComponentType::Channel, &name, Provider::Channel(channel));
    }

    /// Removes a component (one a reload stopped).
    pub fn remove(&self, kind: ComponentType, name: &str) {
        self.components
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(k, n, _)| !(*k == kind && n == name));
    }

    /// Every component's values now, ordered by type then name.
    pub fn snapshot(&self) -> Vec<ComponentSnapshot> {
        let mut out: Vec<_> = self
            .components
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(kind, name, p)| ComponentSnapshot {
                kind: *kind,
                name: name.clone(),
                metrics: match p {
                    Provider::Agent(c) => c.snapshot(),
                    Provider::Source(c) => c.snapshot(),
                    Provider::Sink(c) => c.snapshot(),
                    Provider::Channel(c) => c.metrics(),
                },
            })
            .collect();
        out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        out
    }
}
