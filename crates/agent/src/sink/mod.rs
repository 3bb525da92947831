//! Sinks: take events from one channel and deliver them, one transaction per batch; the
//! take commits only after the delivery succeeded, so a failed delivery rolls the events back
//! into the channel for the next attempt (or for another sink of a failover or load-balancing
//! group).
//!
//! Every sink runs the one drain loop of [`drain`] (take → deliver → commit, or roll back; back
//! off only when the channel gave nothing): a sink implements [`Deliver`], which says how to
//! deliver a batch, and is thereby a [`Sink`].
//!
//! To add a sink: a module with a config struct parsed from a [`Ctx`] (Flume's keys and
//! defaults), a type implementing [`Deliver`], an entry in [`SINK_TYPES`] (its names and
//! parse function), and arms in [`SinkSettings`], [`SinkSettings::batch_size`] and [`build`]
//! (exhaustive matches: the compiler lists what is missing).

pub mod avro;
pub mod drain;
pub mod file_roll;
pub mod hdfs;
pub mod kafka;
pub mod logger;
pub mod null;
pub mod serializer;
pub mod thrift;

pub use drain::Deliver;

use crate::channel::{Channel, ChannelError};
use crate::config::context::Ctx;
use crate::config::registry::Registration;
use crate::metrics::SinkCounters;
use crate::runner::Status;
use std::path::PathBuf;
use std::sync::Arc;

/// Parses a sink's keys into its configuration.
pub type ParseSink = fn(&Ctx<'_>) -> SinkSettings;

/// The sink types we implement (the registration table of sinks).
pub const SINK_TYPES: &[Registration<ParseSink>] = &[
    Registration {
        alias: "logger",
        classes: &["org.apache.flume.sink.LoggerSink"],
        parse: |ctx| SinkSettings::Logger(logger::LoggerConfig::parse(ctx)),
    },
    Registration {
        alias: "file_roll",
        classes: &["org.apache.flume.sink.RollingFileSink"],
        parse: |ctx| SinkSettings::FileRoll(file_roll::FileRollConfig::parse(ctx)),
    },
    Registration {
        alias: "null",
        classes: &["org.apache.flume.sink.NullSink"],
        parse: |ctx| SinkSettings::Null(null::NullConfig::parse(ctx)),
    },
    Registration {
        alias: "avro",
        classes: &["org.apache.flume.sink.AvroSink"],
        parse: |ctx| SinkSettings::Avro(avro::AvroSinkConfig::parse(ctx)),
    },
    Registration {
        alias: "thrift",
        classes: &["org.apache.flume.sink.ThriftSink"],
        parse: |ctx| SinkSettings::Thrift(thrift::ThriftSinkConfig::parse(ctx)),
    },
    Registration {
        alias: "kafka",
        classes: &["org.apache.flume.sink.kafka.KafkaSink"],
        parse: |ctx| SinkSettings::Kafka(kafka::KafkaSinkConfig::parse(ctx)),
    },
    Registration {
        alias: "hdfs",
        classes: &["org.apache.flume.sink.hdfs.HDFSEventSink"],
        parse: |ctx| SinkSettings::Hdfs(Box::new(hdfs::HdfsConfig::parse(ctx))),
    },
];

/// Why a sink's `process` failed. Its events were rolled back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Taking or committing failed.
    #[error("sink {sink}: channel {channel}: {source}")]
    Channel {
        /// The sink.
        sink: String,
        /// The channel.
        channel: String,
        /// Why.
        #[source]
        source: ChannelError,
    },
    /// Writing the output failed.
    #[error("sink {sink}: cannot {op} {path}: {source}")]
    Io {
        /// The sink.
        sink: String,
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Delivering to the next hop failed (connection, timeout, refusal).
    #[error("sink {sink}: delivery to {peer} failed: {reason}")]
    Delivery {
        /// The sink.
        sink: String,
        /// Where it delivers (host:port).
        peer: String,
        /// What happened.
        reason: String,
    },
    /// A Thrift RPC delivery failed or was not answered `OK`.
    #[error("sink {sink}: {source}")]
    Thrift {
        /// The sink.
        sink: String,
        /// Why.
        #[source]
        source: thrift::DeliveryError,
    },
    /// Every sink of a group failed (or is backed off).
    #[error("sink group {group}: {reason}")]
    GroupFailed {
        /// The group.
        group: String,
        /// What happened.
        reason: String,
    },
}

/// A sink, as its sink processor drives it. Called from one runner thread; `process` may block
/// on output. Every sink of ours is a [`Deliver`] and gets this trait from [`drain`].
pub trait Sink: Send {
    /// The sink's name.
    fn name(&self) -> &str;
    /// Takes up to one batch and delivers it: [`Status::Backoff`] if the channel had nothing,
    /// [`Status::Ready`] otherwise (a partial batch too).
    fn process(&mut self) -> Result<Status, SinkError>;
    /// Flushes and closes the output; called once, after the last `process`.
    fn stop(&mut self) {}
}

/// What every sink is built with.
#[derive(Clone, Debug)]
pub struct SinkContext {
    /// The sink's name.
    pub name: Arc<str>,
    /// The channel it takes from.
    pub channel: Channel,
    /// Its counters (also registered for the metrics endpoint).
    pub counters: Arc<SinkCounters>,
}

impl SinkContext {
    /// Wraps a channel error.
    pub fn channel_error(&self, source: ChannelError) -> SinkError {
        SinkError::Channel {
            sink: self.name.to_string(),
            channel: self.channel.name().to_owned(),
            source,
        }
    }
}

/// A sink's configuration by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSettings {
    /// `logger`.
    Logger(logger::LoggerConfig),
    /// `file_roll`.
    FileRoll(file_roll::FileRollConfig),
    /// `null`.
    Null(null::NullConfig),
    /// `avro`.
    Avro(avro::AvroSinkConfig),
    /// `thrift`.
    Thrift(thrift::ThriftSinkConfig),
    /// `kafka`.
    Kafka(kafka::KafkaSinkConfig),
    /// `hdfs`.
    Hdfs(Box<hdfs::HdfsConfig>),
}

impl SinkSettings {
    /// The batch size and the key it was given by, checked against the channel's
    /// `transactionCapacity`.
    pub fn batch_size(&self) -> (&'static str, u64) {
        match self {
            Self::Logger(_) => ("type", 1),
            Self::FileRoll(c) => ("sink.batchSize", u64::from(c.batch_size)),
            Self::Null(c) => ("batchSize", u64::from(c.batch_size)),
            Self::Avro(c) => ("batch-size", u64::from(c.batch_size)),
            Self::Thrift(c) => ("batch-size", u64::from(c.batch_size)),
            Self::Kafka(c) => ("flumeBatchSize", u64::from(c.batch_size)),
            Self::Hdfs(c) => ("hdfs.batchSize", u64::from(c.batch_size)),
        }
    }
}

/// Builds the sink.
pub fn build(settings: &SinkSettings, ctx: SinkContext) -> Box<dyn Sink> {
    match settings {
        SinkSettings::Logger(c) => Box::new(logger::LoggerSink::new(c.clone(), ctx)),
        SinkSettings::FileRoll(c) => Box::new(file_roll::FileRollSink::new(c.clone(), ctx)),
        SinkSettings::Null(c) => Box::new(null::NullSink::new(c.clone(), ctx)),
        SinkSettings::Avro(c) => Box::new(avro::AvroSink::new(c.clone(), ctx)),
        SinkSettings::Thrift(c) => Box::new(thrift::ThriftSink::new(c.clone(), ctx)),
        SinkSettings::Kafka(c) => Box::new(kafka::KafkaSink::new(c.clone(), ctx)),
        SinkSettings::Hdfs(c) => Box::new(hdfs::HdfsSink::new((**c).clone(), ctx)),
    }
}

/// Counts a finished batch of `taken` events out of `batch_size` (Flume's batch counters).
pub fn count_batch(counters: &SinkCounters, taken: usize, batch_size: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    if taken == 0 {
        counters.batch_empty_count.fetch_add(1, Relaxed);
    } else if taken < batch_size {
        counters.batch_underflow_count.fetch_add(1, Relaxed);
    } else {
        counters.batch_complete_count.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Contexts and channels for sink tests.
    use super::*;
    use crate::channel::MemoryChannelConfig;
    use crate::config::context::test_support::{ctx_under, entries_under};
    use crate::config::context::Entry;
    use file_channel::Event;

    /// Entries for `pairs` under `a1.sinks.k1.`, on lines 2, 3, ...
    pub fn entries(pairs: &[(&str, &str)]) -> Vec<Entry> {
        entries_under("a1.sinks.k1.", pairs)
    }

    /// A context over `list`.
    pub fn ctx(list: &[Entry]) -> Ctx<'_> {
        ctx_under("a1.sinks.k1.", list)
    }

    /// A sink context over a memory channel holding `bodies`.
    pub fn sink_ctx(bodies: &[&str]) -> SinkContext {
        let channel = Channel::memory(
            "c1",
            MemoryChannelConfig {
                capacity: 1000,
                transaction_capacity: 1000,
                ..MemoryChannelConfig::default()
            },
        );
        let mut tx = channel.transaction();
        for b in bodies {
            tx.put(&Event::new(*b).with_header("h", "v")).expect("put");
        }
        tx.commit().expect("commit");
        SinkContext {
            name: "k1".into(),
            channel,
            counters: Arc::default(),
        }
    }
}
