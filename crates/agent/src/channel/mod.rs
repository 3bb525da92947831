//! Channels: one [`Channel`] type over the durable engine (`file`), the in-memory channel
//! (`memory`) and Flume's Kafka channel (`kafka`, a topic as the channel), with one transaction
//! type and one error type, so sources and sinks never care which they talk to.
//!
//! Both keep Flume's rules: a transaction is a put or a take transaction; puts become visible
//! at commit; a rolled-back take returns its events to the head; dropping an unfinished
//! transaction rolls it back. `take` never waits: sink runners wait for events with
//! [`Channel::wait_for_events`] instead; only a sink filling a batch that has its first
//! event waits inside its take ([`Txn::take_timeout`], `file_roll`'s linger).

pub mod file;
pub mod file_counters;
pub mod kafka;
pub mod memory;

use crate::config::context::Ctx;
use crate::config::registry::Registration;
use crate::metrics::{Lifetime, Metric, Value};
use file_channel::{Event, FileChannel};
use file_counters::{Direction, FileCounters};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use file::{DualCheckpointOptions, FileChannelSettings};
pub use kafka::{KafkaChannel, KafkaChannelConfig, KafkaChannelError};
pub use memory::{MemoryChannel, MemoryChannelConfig, MemoryError};

/// Parses a channel's keys into its configuration; the second argument is `$HOME`, for the
/// file channel's default directories.
pub type ParseChannel = fn(&Ctx<'_>, Option<&str>) -> ChannelSettings;

/// The channel types we implement (the registration table of channels).
pub const CHANNEL_TYPES: &[Registration<ParseChannel>] = &[
    Registration {
        alias: "file",
        classes: &["org.apache.flume.channel.file.FileChannel"],
        parse: |ctx, home| ChannelSettings::File(FileChannelSettings::parse(ctx, home)),
    },
    Registration {
        alias: "memory",
        classes: &["org.apache.flume.channel.MemoryChannel"],
        parse: |ctx, _| ChannelSettings::Memory(MemoryChannelConfig::parse(ctx)),
    },
    Registration {
        alias: "kafka",
        classes: &["org.apache.flume.channel.kafka.KafkaChannel"],
        parse: |ctx, _| ChannelSettings::Kafka(KafkaChannelConfig::parse(ctx)),
    },
];

/// A channel's configuration by type.
#[derive(Clone, Debug)]
pub enum ChannelSettings {
    /// `file`.
    File(FileChannelSettings),
    /// `memory`.
    Memory(MemoryChannelConfig),
    /// `kafka`.
    Kafka(KafkaChannelConfig),
}

impl ChannelSettings {
    /// Most events one transaction may hold.
    pub fn transaction_capacity(&self) -> u32 {
        match self {
            Self::File(s) => s.config.transaction_capacity,
            Self::Memory(c) => c.transaction_capacity,
            // Flume's Kafka channel has no transaction capacity.
            Self::Kafka(_) => file_channel::limits::MAX_EVENTS_PER_TXN,
        }
    }

    /// `file`, `memory` or `kafka`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Memory(_) => "memory",
            Self::Kafka(_) => "kafka",
        }
    }
}

/// Any failure of a channel operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A file-channel put failed.
    #[error(transparent)]
    Put(#[from] file_channel::PutError),
    /// A file-channel take failed.
    #[error(transparent)]
    Take(#[from] file_channel::TakeError),
    /// A file-channel commit failed.
    #[error(transparent)]
    Commit(#[from] file_channel::CommitError),
    /// A memory-channel operation failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// A Kafka-channel operation failed (boxed: its messages carry names and reasons).
    #[error(transparent)]
    Kafka(Box<KafkaChannelError>),
}

impl From<KafkaChannelError> for ChannelError {
    fn from(e: KafkaChannelError) -> Self {
        Self::Kafka(Box::new(e))
    }
}

/// Failure to open a channel.
#[derive(Debug, thiserror::Error)]
#[error("cannot open channel {name}: {source}")]
pub struct OpenError {
    /// The channel.
    pub name: String,
    /// Why.
    #[source]
    pub source: OpenCause,
}

/// Why a channel did not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenCause {
    /// The file channel's engine refused.
    #[error(transparent)]
    File(#[from] file_channel::OpenError),
    /// The Kafka client could not be created.
    #[error(transparent)]
    Kafka(Box<KafkaChannelError>),
}

impl From<KafkaChannelError> for OpenCause {
    fn from(e: KafkaChannelError) -> Self {
        Self::Kafka(Box::new(e))
    }
}

#[derive(Clone, Debug)]
enum Kind {
    File(FileChannel, Arc<FileCounters>),
    Memory(MemoryChannel),
    Kafka(KafkaChannel),
}

/// An open channel. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Channel {
    name: Arc<str>,
    kind: Kind,
    lifetime: Arc<Lifetime>,
}

impl Channel {
    /// Opens the channel `name` (a file channel replays its log here).
    pub fn open(name: &str, settings: &ChannelSettings) -> Result<Self, OpenError> {
        let kind = match settings {
            ChannelSettings::File(s) => {
                for w in s.no_effect_warnings() {
                    tracing::warn!(channel = name, "{w}");
                }
                let fc = FileChannel::open(s.config.clone()).map_err(|source| OpenError {
                    name: name.to_owned(),
                    source: source.into(),
                })?;
                let r = fc.open_report();
                tracing::info!(
                    channel = name,
                    dir = %s.config.dir.display(),
                    pending = r.pending_events,
                    replay_ms = r.replay_ms,
                    "file channel open"
                );
                Self::file_kind(fc)
            }
            ChannelSettings::Memory(c) => Kind::Memory(MemoryChannel::new(c.clone())),
            ChannelSettings::Kafka(c) => {
                Kind::Kafka(KafkaChannel::open(name, c.clone()).map_err(|e| OpenError {
                    name: name.to_owned(),
                    source: e.into(),
                })?)
            }
        };
        Ok(Self::with_kind(name, kind))
    }

    /// A channel named `name` of `kind`, its lifetime started.
    fn with_kind(name: &str, kind: Kind) -> Self {
        let lifetime = Arc::new(Lifetime::default());
        lifetime.started();
        Self {
            name: name.into(),
            kind,
            lifetime,
        }
    }

    /// An open file channel with its agent-side counters.
    fn file_kind(channel: FileChannel) -> Kind {
        let counters = Arc::new(FileCounters::default());
        counters.set_open(true);
        Kind::File(channel, counters)
    }

    /// A memory channel named `name` (for tests and tools).
    pub fn memory(name: &str, config: MemoryChannelConfig) -> Self {
        Self::from_memory(name, MemoryChannel::new(config))
    }

    /// Wraps an open file channel (tests and tools: one on simulated storage, say).
    pub fn from_file(name: &str, channel: FileChannel) -> Self {
        Self::with_kind(name, Self::file_kind(channel))
    }

    /// Wraps an existing memory channel.
    pub fn from_memory(name: &str, channel: MemoryChannel) -> Self {
        Self::with_kind(name, Kind::Memory(channel))
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts a transaction.
    pub fn transaction(&self) -> Txn {
        match &self.kind {
            Kind::File(c, counters) => Txn::File(FileTxn {
                tx: c.transaction(),
                channel_id: c.channel_id(),
                counters: counters.clone(),
                direction: None,
            }),
            Kind::Memory(c) => Txn::Memory(c.transaction()),
            Kind::Kafka(c) => Txn::Kafka(c.transaction()),
        }
    }

    /// How long a file channel may keep a take commit before making it durable (a crash
    /// within it delivers the events again); `None` for a memory channel.
    pub fn take_sync_interval_ms(&self) -> Option<u64> {
        match &self.kind {
            Kind::File(c, _) => Some(c.config().take_sync_interval_ms),
            Kind::Memory(_) | Kind::Kafka(_) => None,
        }
    }

    /// Most events one transaction may hold.
    pub fn transaction_capacity(&self) -> u32 {
        match &self.kind {
            Kind::File(c, _) => c.config().transaction_capacity,
            Kind::Memory(c) => c.config().transaction_capacity,
            Kind::Kafka(_) => file_channel::limits::MAX_EVENTS_PER_TXN,
        }
    }

    /// Events committed and not taken (for a Kafka channel: records fetched and not yet
    /// taken, an estimate).
    pub fn len(&self) -> u64 {
        match &self.kind {
            Kind::File(c, _) => c.len(),
            Kind::Memory(c) => c.len(),
            Kind::Kafka(c) => c.len(),
        }
    }

    /// Whether no event is waiting (a Kafka channel polls, without waiting, to know).
    pub fn is_empty(&self) -> bool {
        match &self.kind {
            Kind::Kafka(c) => !c.wait_for_events(Duration::ZERO),
            _ => self.len() == 0,
        }
    }

    /// Waits up to `timeout` for an event to be committed; returns whether one is waiting.
    pub fn wait_for_events(&self, timeout: Duration) -> bool {
        match &self.kind {
            Kind::File(c, _) => c.wait_for_len(1, timeout),
            Kind::Memory(c) => c.wait_for_events(timeout),
            Kind::Kafka(c) => c.wait_for_events(timeout),
        }
    }

    /// Flume's channel metrics (and for a file channel every engine counter), plus
    /// `ChannelFillPercentage`, `StartTime` and `StopTime`.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut v = match &self.kind {
            Kind::File(c, counters) => {
                let m = c.metrics();
                let mut v: Vec<Metric> = m
                    .snapshot()
                    .into_iter()
                    .map(|(name, n)| Metric {
                        name,
                        value: if ENGINE_GAUGES.contains(&name) {
                            Value::Gauge(n)
                        } else {
                            Value::Counter(n)
                        },
                    })
                    .collect();
                v.push(Metric {
                    name: "ChannelFillPercentage",
                    value: Value::Ratio(m.fill_percentage()),
                });
                v.extend(counters.snapshot());
                v
            }
            Kind::Memory(c) => c.metrics(),
            Kind::Kafka(c) => c.metrics(),
        };
        v.retain(|m| m.name != "StartTime" && m.name != "StopTime");
        v.extend(self.lifetime.snapshot());
        v
    }

    /// Closes the channel: a file channel syncs and releases its directory; a memory channel
    /// drops what it holds (logged with the count).
    pub fn close(&self) -> Result<(), file_channel::CloseError> {
        self.lifetime.stopped();
        match &self.kind {
            Kind::File(c, counters) => {
                counters.set_open(false);
                c.clone().close()
            }
            Kind::Memory(c) => {
                let lost = c.close();
                if lost > 0 {
                    tracing::warn!(channel = %self.name, events = lost, "memory channel closed with events in it; they are lost");
                }
                Ok(())
            }
            Kind::Kafka(c) => {
                c.close();
                Ok(())
            }
        }
    }
}

/// Engine values that go up and down (the rest only grow).
const ENGINE_GAUGES: &[&str] = &[
    "ChannelSize",
    "ChannelCapacity",
    "Unhealthy",
    "SegmentCount",
    "BytesOnDisk",
    "PendingBytes",
    "ReplayRecords",
    "ReplayMillis",
    "TornTailBytes",
    "SegmentsPinned",
    "DiskSpaceLow",
    "CheckpointMillis",
    "LastCheckpointUnixMillis",
];

/// A transaction on a [`Channel`]; dropping it unfinished rolls it back.
#[derive(Debug)]
pub enum Txn {
    /// On a file channel.
    File(FileTxn),
    /// On a memory channel.
    Memory(memory::MemoryTransaction),
    /// On a Kafka channel.
    Kafka(kafka::KafkaTransaction),
}

/// What identifies the events of a take across restarts: the channel's id and each event's
/// sequence number, in take order ([`file_channel::Transaction::taken_seqs`]). An event the
/// channel delivers again (after a rollback, or after a crash lost a take commit that was not
/// yet durable) comes back with the same number, so a sink that records the numbers it wrote
/// can recognise it. Only the file channel numbers its events: a memory channel loses them in
/// a crash, and redelivers only after a rollback the sink sees itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryNumbers {
    /// The channel's id (`file_channel::FileChannel::channel_id`).
    pub channel_id: u64,
    /// One per event taken, in order.
    pub seqs: Vec<u64>,
}

/// A file-channel transaction with the channel's agent-side counters.
#[derive(Debug)]
pub struct FileTxn {
    tx: file_channel::Transaction,
    channel_id: u64,
    counters: Arc<FileCounters>,
    /// Set by the first successful put or take.
    direction: Option<Direction>,
}

impl Txn {
    /// Adds an event.
    pub fn put(&mut self, event: &Event) -> Result<(), ChannelError> {
        match self {
            Self::File(t) => match t.tx.put(event) {
                Ok(()) => {
                    t.direction = Some(Direction::Put);
                    Ok(())
                }
                Err(e) => {
                    t.counters.put_failed(&e);
                    Err(e.into())
                }
            },
            Self::Memory(t) => t.put(event).map_err(Into::into),
            Self::Kafka(t) => t.put(event).map_err(Into::into),
        }
    }

    /// Takes the next event, or `None` if none is waiting.
    pub fn take(&mut self) -> Result<Option<Event>, ChannelError> {
        self.take_timeout(Duration::ZERO)
    }

    /// Takes the next event, waiting up to `wait` for one; `None` if none came. Each channel
    /// waits its own way: the file and memory channels on their queue, the Kafka channel in
    /// its consumer's poll. (Not [`Channel::wait_for_events`]: a file channel counts the
    /// events this very transaction holds as waiting.)
    pub fn take_timeout(&mut self, wait: Duration) -> Result<Option<Event>, ChannelError> {
        match self {
            Self::File(t) => match t.tx.take_timeout(wait) {
                Ok(event) => {
                    if event.is_some() {
                        t.direction = Some(Direction::Take);
                    }
                    Ok(event)
                }
                Err(e) => {
                    t.counters.take_failed(&e);
                    Err(e.into())
                }
            },
            Self::Memory(t) => t.take_timeout(wait).map_err(Into::into),
            Self::Kafka(t) => t.take_timeout(wait).map_err(Into::into),
        }
    }

    /// The numbers of the events taken so far, if the channel numbers them (a file channel).
    pub fn delivery_numbers(&self) -> Option<DeliveryNumbers> {
        match self {
            Self::File(t) => Some(DeliveryNumbers {
                channel_id: t.channel_id,
                seqs: t.tx.taken_seqs(),
            }),
            Self::Memory(_) | Self::Kafka(_) => None,
        }
    }

    /// Events put or taken so far.
    pub fn len(&self) -> usize {
        match self {
            Self::File(t) => t.tx.len(),
            Self::Memory(t) => t.len(),
            Self::Kafka(t) => t.len(),
        }
    }

    /// Whether nothing was put or taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Commits.
    pub fn commit(self) -> Result<(), ChannelError> {
        self.submit()?.wait()
    }

    /// The first half of [`Txn::commit`]: a file channel's commit is handed to its writer
    /// ([`file_channel::Transaction::commit_submit`]) and [`Submitted::wait`] waits for its
    /// sync; the memory and Kafka channels commit here, and their wait has nothing left to do.
    pub fn submit(self) -> Result<Submitted, ChannelError> {
        match self {
            Self::File(t) => match t.tx.commit_submit() {
                Ok(pending) => Ok(Submitted::File {
                    pending,
                    counters: t.counters,
                    direction: t.direction,
                }),
                Err(e) => Err(file_commit_failed(&t.counters, t.direction, e)),
            },
            Self::Memory(t) => t.commit().map(|()| Submitted::Done).map_err(Into::into),
            Self::Kafka(t) => t.commit().map(|()| Submitted::Done).map_err(Into::into),
        }
    }

    /// Rolls back.
    pub fn rollback(self) {
        match self {
            Self::File(t) => t.tx.rollback(),
            Self::Memory(t) => t.rollback(),
            Self::Kafka(t) => t.rollback(),
        }
    }
}

/// A commit [`Txn::submit`] handed over.
#[derive(Debug)]
#[must_use = "a submitted commit is known durable only once waited for"]
pub enum Submitted {
    /// A file channel's commit, waiting for its sync.
    File {
        /// The engine's half of it.
        pending: file_channel::PendingCommit,
        /// The channel's agent-side counters, for a failure.
        counters: Arc<FileCounters>,
        /// Put or take.
        direction: Option<Direction>,
    },
    /// Committed already.
    Done,
}

impl Submitted {
    /// Waits for the commit: `Ok` exactly when [`Txn::commit`] would have returned `Ok`.
    pub fn wait(self) -> Result<(), ChannelError> {
        match self {
            Self::File {
                pending,
                counters,
                direction,
            } => pending
                .wait()
                .map_err(|e| file_commit_failed(&counters, direction, e)),
            Self::Done => Ok(()),
        }
    }
}

fn file_commit_failed(
    counters: &FileCounters,
    direction: Option<Direction>,
    e: file_channel::CommitError,
) -> ChannelError {
    if let Some(d) = direction {
        counters.commit_failed(d, &e);
    }
    e.into()
}

/// Waits up to `timeout` for any of `channels` to hold an event, or for `stop`; returns
/// whether an event is waiting. One channel is waited on directly; several are polled every
/// 50 ms.
pub fn wait_for_any(channels: &[Channel], timeout: Duration, stop: &crate::stop::Stop) -> bool {
    const SLICE: Duration = Duration::from_millis(50);
    let deadline = Instant::now() + timeout;
    loop {
        if stop.is_triggered() {
            return false;
        }
        if channels.iter().any(|c| !c.is_empty()) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let slice = SLICE.min(deadline - now);
        match channels {
            [one] => {
                if one.wait_for_events(slice) {
                    return true;
                }
            }
            _ => {
                if stop.sleep(slice) {
                    return false;
                }
            }
        }
    }
}
