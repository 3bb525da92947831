//! Sources: where events come from. Two shapes, as in Flume:
//!
//! - [`PollableSource`]: called in a loop by a runner thread ([`crate::runner`]), backing off
//!   when it reports [`Status::Backoff`] (Flume's `PollableSource`; here: `seq`).
//! - [`EventDrivenSource`]: started once on the tokio runtime; it binds what it needs, then
//!   serves until the agent stops (Flume's `EventDrivenSource`; here: `netcat`). Network I/O
//!   is async; putting into channels blocks (a commit waits for its fsync), so such sources
//!   call [`ChannelProcessor`] through `tokio::task::spawn_blocking`.
//!
//! Every source gets a [`SourceContext`]: its name, its [`ChannelProcessor`] (interceptors,
//! selector, channels) and its [`SourceCounters`].
//!
//! To add a source: a module with a config struct parsed from a [`Ctx`] (Flume's keys and
//! defaults), a type implementing one of the two traits, an entry in [`SOURCE_TYPES`] (its
//! names and parse function), and arms in [`SourceSettings`], [`SourceSettings::batch_size`]
//! and [`build`] (exhaustive matches: the compiler lists what is missing); remove it from
//! `config::registry::FLUME_ONLY_SOURCES`. A TCP source also reads [`net::ConnectionLimits`]
//! and admits its connections through a [`net::Guard`] (`maxConnections`, `readTimeout`), as
//! every other one does: no client may hold it without limit.

pub mod avro;
pub mod commit;
pub mod durable_file;
pub mod exec;
pub mod http;
pub mod kafka;
pub mod net;
pub mod netcat;
pub mod netcat_udp;
pub mod seq;
pub mod spooldir;
pub mod syslog;
pub mod taildir;
pub mod thrift;

use crate::channel_processor::ChannelProcessor;
use crate::config::context::Ctx;
use crate::config::registry::Registration;
use crate::metrics::SourceCounters;
pub use crate::runner::Status;
use crate::stop::Stop;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Parses a source's keys into its configuration.
pub type ParseSource = fn(&Ctx<'_>) -> SourceSettings;

/// The source types we implement (the registration table of sources).
pub const SOURCE_TYPES: &[Registration<ParseSource>] = &[
    Registration {
        alias: "netcat",
        classes: &["org.apache.flume.source.NetcatSource"],
        parse: |ctx| SourceSettings::Netcat(netcat::NetcatConfig::parse(ctx)),
    },
    Registration {
        alias: "seq",
        classes: &["org.apache.flume.source.SequenceGeneratorSource"],
        parse: |ctx| SourceSettings::Seq(seq::SeqConfig::parse(ctx)),
    },
    Registration {
        alias: "netcatudp",
        classes: &["org.apache.flume.source.NetcatUdpSource"],
        parse: |ctx| SourceSettings::NetcatUdp(netcat_udp::NetcatUdpConfig::parse(ctx)),
    },
    Registration {
        alias: "exec",
        classes: &["org.apache.flume.source.ExecSource"],
        parse: |ctx| SourceSettings::Exec(exec::ExecConfig::parse(ctx)),
    },
    Registration {
        alias: "http",
        classes: &["org.apache.flume.source.http.HTTPSource"],
        parse: |ctx| SourceSettings::Http(http::HttpConfig::parse(ctx)),
    },
    Registration {
        alias: "syslogtcp",
        classes: &["org.apache.flume.source.SyslogTcpSource"],
        parse: |ctx| {
            SourceSettings::Syslog(syslog::SyslogConfig::parse(syslog::SyslogKind::Tcp, ctx))
        },
    },
    Registration {
        alias: "multiport_syslogtcp",
        classes: &["org.apache.flume.source.MultiportSyslogTCPSource"],
        parse: |ctx| {
            SourceSettings::Syslog(syslog::SyslogConfig::parse(
                syslog::SyslogKind::MultiportTcp,
                ctx,
            ))
        },
    },
    Registration {
        alias: "syslogudp",
        classes: &["org.apache.flume.source.SyslogUDPSource"],
        parse: |ctx| {
            SourceSettings::Syslog(syslog::SyslogConfig::parse(syslog::SyslogKind::Udp, ctx))
        },
    },
    Registration {
        alias: "spooldir",
        classes: &["org.apache.flume.source.SpoolDirectorySource"],
        parse: |ctx| SourceSettings::SpoolDir(spooldir::SpoolDirConfig::parse(ctx)),
    },
    Registration {
        alias: "avro",
        classes: &["org.apache.flume.source.AvroSource"],
        parse: |ctx| SourceSettings::Avro(avro::AvroSourceConfig::parse(ctx)),
    },
    Registration {
        alias: "taildir",
        classes: &["org.apache.flume.source.taildir.TaildirSource"],
        parse: |ctx| SourceSettings::Taildir(taildir::TaildirConfig::parse(ctx)),
    },
    Registration {
        alias: "thrift",
        classes: &["org.apache.flume.source.ThriftSource"],
        parse: |ctx| SourceSettings::Thrift(thrift::ThriftSourceConfig::parse(ctx)),
    },
    Registration {
        alias: "kafka",
        classes: &["org.apache.flume.source.kafka.KafkaSource"],
        parse: |ctx| SourceSettings::Kafka(kafka::KafkaSourceConfig::parse(ctx)),
    },
];

/// Why a source failed to start or to process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Binding a listening socket failed.
    #[error("source {source_name}: cannot listen on {addr}: {error}")]
    Bind {
        /// The source.
        source_name: String,
        /// The address.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
    /// A client library (for example librdkafka) could not be set up.
    #[error("source {source_name}: {reason}")]
    Client {
        /// The source.
        source_name: String,
        /// What happened.
        reason: String,
    },
    /// Putting into a required channel failed.
    #[error("source {source_name}: {error}")]
    Channel {
        /// The source.
        source_name: String,
        /// Why.
        error: crate::channel_processor::ProcessError,
    },
}

/// A boxed future, for object-safe async methods.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Flume's back-off settings of a pollable source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// `backoffSleepIncrement`. Default: 1000.
    pub increment_ms: u64,
    /// `maxBackoffSleep`. Default: 5000.
    pub max_ms: u64,
}

impl Backoff {
    /// Reads `backoffSleepIncrement` and `maxBackoffSleep`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            increment_ms: ctx.u64_in("backoffSleepIncrement", 1000, 1..=3_600_000),
            max_ms: ctx.u64_in("maxBackoffSleep", 5000, 1..=3_600_000),
        }
    }
}

/// A source a runner thread calls in a loop.
pub trait PollableSource: Send {
    /// Produces and puts what is available now.
    fn process(&mut self) -> Result<Status, SourceError>;
    /// Its back-off settings.
    fn backoff(&self) -> Backoff;
    /// Called once after the last `process`.
    fn stop(&mut self) {}
}

/// A source that serves on its own once started.
pub trait EventDrivenSource: Send {
    /// Binds (an error here stops the agent from starting) and returns the serving future,
    /// which runs until `stop` is set and returns once in-flight work is finished.
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>>;
}

/// A built source.
pub enum Source {
    /// Driven by a runner thread.
    Pollable(Box<dyn PollableSource>),
    /// Started on the runtime.
    EventDriven(Box<dyn EventDrivenSource>),
}

/// What every source is built with.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// The source's name.
    pub name: Arc<str>,
    /// Where it puts events.
    pub processor: Arc<ChannelProcessor>,
    /// Its counters (also registered for the metrics endpoint).
    pub counters: Arc<SourceCounters>,
}

impl SourceContext {
    /// Binds a TCP listener on `bind:port` for this source. Returns it with the address it
    /// listens on (the real port when `port` is 0); a failure names the source and the address.
    pub async fn bind_tcp(
        &self,
        bind: &str,
        port: u16,
    ) -> Result<(tokio::net::TcpListener, String), SourceError> {
        let addr = format!("{bind}:{port}");
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|error| SourceError::Bind {
                source_name: self.name.to_string(),
                addr: addr.clone(),
                error,
            })?;
        let local = listener
            .local_addr()
            .map_or_else(|_| addr, |a| a.to_string());
        Ok((listener, local))
    }
}

/// Config contexts over literal keys for the sources' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::config::context::test_support::{ctx_under, entries_under};
    use crate::config::context::{Ctx, Entry};

    /// Entries for `pairs` under `a1.sources.r1.`, on lines 2, 3, ...
    pub fn entries(pairs: &[(&str, &str)]) -> Vec<Entry> {
        entries_under("a1.sources.r1.", pairs)
    }

    /// A context over `list`.
    pub fn ctx(list: &[Entry]) -> Ctx<'_> {
        ctx_under("a1.sources.r1.", list)
    }
}

/// A context for source `r1` over one memory channel `c1` of `capacity` events (transactions up
/// to `transaction_capacity`), for the sources' unit tests.
#[cfg(test)]
pub(crate) fn test_context(
    capacity: u64,
    transaction_capacity: u32,
) -> (SourceContext, crate::channel::Channel) {
    use crate::channel::{Channel, MemoryChannelConfig};
    use crate::selector::Selector;
    let ch = Channel::memory(
        "c1",
        MemoryChannelConfig {
            capacity,
            transaction_capacity,
            keep_alive_ms: 10,
            ..MemoryChannelConfig::default()
        },
    );
    let processor = ChannelProcessor::new(
        "r1",
        vec![],
        Selector::Replicating {
            required: vec![0],
            optional: vec![],
        },
        vec![ch.clone()],
    );
    let ctx = SourceContext {
        name: "r1".into(),
        processor: Arc::new(processor),
        counters: Arc::default(),
    };
    (ctx, ch)
}

/// A source's configuration by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSettings {
    /// `netcat`.
    Netcat(netcat::NetcatConfig),
    /// `seq`.
    Seq(seq::SeqConfig),
    /// `netcatudp`.
    NetcatUdp(netcat_udp::NetcatUdpConfig),
    /// `exec`.
    Exec(exec::ExecConfig),
    /// `http`.
    Http(http::HttpConfig),
    /// `syslogtcp`, `multiport_syslogtcp`, `syslogudp`.
    Syslog(syslog::SyslogConfig),
    /// `spooldir`.
    SpoolDir(spooldir::SpoolDirConfig),
    /// `TAILDIR`.
    Taildir(taildir::TaildirConfig),
    /// `avro`.
    Avro(avro::AvroSourceConfig),
    /// `thrift`.
    Thrift(thrift::ThriftSourceConfig),
    /// `kafka`.
    Kafka(kafka::KafkaSourceConfig),
}

impl SourceSettings {
    /// The most events the source puts in one transaction, and the key that says so.
    pub fn batch_size(&self) -> (&'static str, u64) {
        match self {
            Self::Netcat(c) => ("batch-size", u64::from(c.batch_size)),
            Self::Seq(c) => ("batchSize", u64::from(c.batch_size)),
            // Datagrams queued together are committed together.
            Self::NetcatUdp(_) => ("type", netcat_udp::MAX_BATCH_EVENTS as u64),
            Self::Exec(c) => ("batchSize", u64::from(c.batch_size)),
            // One request is one transaction, however many events it holds.
            Self::Http(_) => ("type", 1),
            Self::Syslog(c) => match c.kind {
                syslog::SyslogKind::MultiportTcp => ("batchSize", u64::from(c.batch_size)),
                syslog::SyslogKind::Tcp | syslog::SyslogKind::Udp => {
                    ("type", u64::from(c.batch_size))
                }
            },
            Self::SpoolDir(c) => ("batchSize", u64::from(c.batch_size)),
            Self::Taildir(c) => ("batchSize", u64::from(c.batch_size)),
            // One call is one transaction; its size is the sender's batch size.
            Self::Avro(_) => ("type", 1),
            // One call is one transaction; Flume has no key bounding its size.
            Self::Thrift(_) => ("type", 1),
            Self::Kafka(c) => ("batchSize", u64::from(c.batch_size)),
        }
    }
}

/// Builds the source.
pub fn build(settings: &SourceSettings, ctx: SourceContext) -> Source {
    match settings {
        SourceSettings::Netcat(c) => {
            Source::EventDriven(Box::new(netcat::NetcatSource::new(c.clone(), ctx)))
        }
        SourceSettings::Seq(c) => Source::Pollable(Box::new(seq::SeqSource::new(c.clone(), ctx))),
        SourceSettings::NetcatUdp(c) => {
            Source::EventDriven(Box::new(netcat_udp::NetcatUdpSource::new(c.clone(), ctx)))
        }
        SourceSettings::Exec(c) => {
            Source::EventDriven(Box::new(exec::ExecSource::new(c.clone(), ctx)))
        }
        SourceSettings::Http(c) => {
            Source::EventDriven(Box::new(http::HttpSource::new(c.clone(), ctx)))
        }
        SourceSettings::Syslog(c) => {
            Source::EventDriven(Box::new(syslog::SyslogSource::new(c.clone(), ctx)))
        }
        SourceSettings::SpoolDir(c) => {
            Source::Pollable(Box::new(spooldir::SpoolDirSource::new(c.clone(), ctx)))
        }
        SourceSettings::Taildir(c) => {
            Source::Pollable(Box::new(taildir::TaildirSource::new(c.clone(), ctx)))
        }
        SourceSettings::Avro(c) => {
            Source::EventDriven(Box::new(avro::AvroSource::new(c.clone(), ctx)))
        }
        SourceSettings::Thrift(c) => {
            Source::EventDriven(Box::new(thrift::ThriftSource::new(c.clone(), ctx)))
        }
        SourceSettings::Kafka(c) => {
            Source::Pollable(Box::new(kafka::KafkaSource::new(c.clone(), ctx)))
        }
    }
}
