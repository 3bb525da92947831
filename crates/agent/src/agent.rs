//! [`Agent`]: starts a checked configuration in dependency order and stops it cleanly.
//!
//! Start: open every channel (a file channel replays its log) → start sink runners → start
//! sources (an event-driven source binds here; a failure stops everything started so far and
//! is returned) → serve metrics. Stop, the reverse: sources stop taking input and finish the
//! puts in flight (clients get their answers) → optional-channel writers drain → sink runners
//! finish the batch in flight and close their outputs → channels close (a file channel syncs
//! and releases its directory) → the metrics server stops.
//!
//! Every source and sink runner has its own stop flag, so a live reload
//! ([`crate::reload::apply`]) can stop, start or re-bind one of them while the rest run.

use crate::channel::{Channel, OpenError};
use crate::channel_processor::ChannelProcessor;
use crate::config::{AgentConfig, ChannelSpec, SourceSpec};
use crate::metrics::{Registry, ReloadCounters, SinkCounters, SourceCounters};
use crate::processor::SystemClock;
use crate::runner::{spawn_sink_runner, spawn_source_runner};
use crate::sink::SinkContext;
use crate::source::{Source, SourceContext, SourceError};
use crate::stop::Stop;
use crate::topology::{sink_units, SinkUnit};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest wait for sources to finish their in-flight work at shutdown.
pub const SOURCE_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the agent did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A channel did not open.
    #[error(transparent)]
    Channel(#[from] OpenError),
    /// A source did not start.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint: cannot listen on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread for {what}: {source}")]
    Thread {
        /// Which component.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Problems met while stopping; the agent stopped anyway.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct StopError(pub Vec<String>);

/// A source that runs, with what stops it.
pub(crate) struct RunningSource {
    pub(crate) name: String,
    pub(crate) stop: Stop,
    pub(crate) processor: Arc<ChannelProcessor>,
    run: SourceRun,
}

enum SourceRun {
    Thread(JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

/// A sink runner that runs, with what stops it.
pub(crate) struct RunningSinks {
    pub(crate) unit: SinkUnit,
    stop: Stop,
    thread: JoinHandle<()>,
}

/// A running agent.
pub struct Agent {
    pub(crate) name: String,
    /// The configuration the running topology is, component for component (after a reload
    /// that failed midway: what actually runs).
    pub(crate) config: AgentConfig,
    pub(crate) channels: Vec<Channel>,
    pub(crate) sources: Vec<RunningSource>,
    pub(crate) sinks: Vec<RunningSinks>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) reloads: Arc<ReloadCounters>,
    clock: Arc<SystemClock>,
    metrics_stop: Stop,
    metrics_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    metrics_addr: Option<SocketAddr>,
}

impl Agent {
    /// Starts `config`; serves metrics on `metrics_addr` if given. Call from a tokio runtime.
    pub async fn start(
        config: AgentConfig,
        metrics_addr: Option<SocketAddr>,
    ) -> Result<Self, StartError> {
        let registry = Arc::new(Registry::default());
        let reloads = Arc::new(ReloadCounters::default());
        reloads.lifetime.started();
        registry.add_agent(&config.name, reloads.clone());
        let mut agent = Self {
            name: config.name.clone(),
            config: config.clone(),
            channels: Vec::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
            registry,
            reloads,
            clock: Arc::default(),
            metrics_stop: Stop::new(),
            metrics_task: None,
            metrics_addr: None,
        };
        match agent.start_all(&config, metrics_addr).await {
            Ok(()) => {
                tracing::info!(agent = %agent.name, "agent started");
                Ok(agent)
            }
            Err(e) => {
                if let Err(stop) = agent.stop().await {
                    tracing::error!(error = %stop, "stopping after a failed start");
                }
                Err(e)
            }
        }
    }

    async fn start_all(
        &mut self,
        config: &AgentConfig,
        metrics_addr: Option<SocketAddr>,
    ) -> Result<(), StartError> {
        for spec in &config.channels {
            let opened = open_channel(spec).await?;
            self.registry.add_channel(opened.clone());
            self.channels.push(opened);
        }
        // Sinks: each group gets one runner; a sink in no group runs alone.
        for unit in sink_units(config) {
            let running = self.start_sinks(unit)?;
            self.sinks.push(running);
        }
        for s in &config.sources {
            let running = self.start_source(s).await?;
            self.sources.push(running);
        }

        // Metrics.
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Metrics { addr, source })?;
            let local = listener.local_addr().unwrap_or(addr);
            tracing::info!(addr = %local, "metrics endpoint listening: GET /metrics, GET /metrics/prometheus");
            self.metrics_addr = Some(local);
            self.metrics_task = Some(tokio::spawn(crate::metrics::http::serve(
                listener,
                self.registry.clone(),
                self.metrics_stop.clone(),
            )));
        }
        Ok(())
    }

    /// The running channel called `name`.
    pub(crate) fn channel(&self, name: &str) -> Option<Channel> {
        self.channels.iter().find(|c| c.name() == name).cloned()
    }

    /// The running channels called `names`, in that order (unknown names skipped: validation
    /// has already refused them).
    pub(crate) fn channels_named(&self, names: &[String]) -> Vec<Channel> {
        names.iter().filter_map(|n| self.channel(n)).collect()
    }

    /// Builds the sinks of `unit` over the running channels and starts its runner thread; its
    /// sinks' counters are registered.
    pub(crate) fn start_sinks(&self, unit: SinkUnit) -> Result<RunningSinks, StartError> {
        let mut sinks = Vec::new();
        let mut channels: Vec<Channel> = Vec::new();
        for s in &unit.sinks {
            let Some(ch) = self.channel(&s.channel) else {
                continue;
            };
            let counters = Arc::new(SinkCounters::default());
            self.registry.add_sink(&s.name, counters.clone());
            if !channels.iter().any(|c| c.name() == ch.name()) {
                channels.push(ch.clone());
            }
            sinks.push(crate::sink::build(
                &s.settings,
                SinkContext {
                    name: s.name.as_str().into(),
                    channel: ch,
                    counters,
                },
            ));
        }
        let processor =
            crate::processor::build(&unit.name, &unit.processor, sinks, self.clock.clone());
        let stop = Stop::new();
        let thread =
            spawn_sink_runner(&unit.name, processor, channels, stop.clone()).map_err(|source| {
                StartError::Thread {
                    what: unit.label(),
                    source,
                }
            })?;
        Ok(RunningSinks { unit, stop, thread })
    }

    /// Builds source `s` over the running channels and starts it (an event-driven source
    /// binds here); its counters are registered.
    pub(crate) async fn start_source(&self, s: &SourceSpec) -> Result<RunningSource, StartError> {
        let processor = Arc::new(ChannelProcessor::new(
            &s.name,
            s.interceptors.clone(),
            s.selector.clone(),
            self.channels_named(&s.channels),
        ));
        let counters = Arc::new(SourceCounters::default());
        self.registry.add_source(&s.name, counters.clone());
        processor.report_to(counters.clone());
        let ctx = SourceContext {
            name: s.name.as_str().into(),
            processor: processor.clone(),
            counters,
        };
        let stop = Stop::new();
        let run = match crate::source::build(&s.settings, ctx) {
            Source::Pollable(p) => {
                SourceRun::Thread(spawn_source_runner(&s.name, p, stop.clone()).map_err(
                    |source| StartError::Thread {
                        what: format!("source {}", s.name),
                        source,
                    },
                )?)
            }
            Source::EventDriven(e) => match e.start(stop.clone()).await {
                Ok(serve) => SourceRun::Task(tokio::spawn(serve)),
                Err(e) => {
                    let processor = processor.clone();
                    let _ = tokio::task::spawn_blocking(move || processor.close()).await;
                    return Err(e.into());
                }
            },
        };
        Ok(RunningSource {
            name: s.name.clone(),
            stop,
            processor,
            run,
        })
    }

    /// Every component's metrics.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The counters of live reloads (`AGENT.<name>`); a trigger that could not even load the
    /// file counts its failure here.
    pub fn reload_counters(&self) -> Arc<ReloadCounters> {
        self.reloads.clone()
    }

    /// The configuration that runs now.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The address the metrics endpoint listens on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops everything in order (see the module doc). Problems are returned after the stop
    /// completed as far as it could.
    pub async fn stop(mut self) -> Result<(), StopError> {
        let mut problems = Vec::new();
        tracing::info!(agent = %self.name, "stopping: sources first");
        let sources = std::mem::take(&mut self.sources);
        for s in &sources {
            s.stop.trigger();
        }
        for s in sources {
            problems.extend(stop_source(s).await);
        }
        tracing::info!(agent = %self.name, "stopping sinks (in-flight batches finish)");
        let sinks = std::mem::take(&mut self.sinks);
        for s in &sinks {
            s.stop.trigger();
        }
        for s in sinks {
            problems.extend(stop_sinks(s).await);
        }
        tracing::info!(agent = %self.name, "closing channels");
        let channels = std::mem::take(&mut self.channels);
        problems.extend(close_channels(channels).await);
        self.metrics_stop.trigger();
        if let Some(t) = self.metrics_task.take() {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(format!("metrics endpoint: {e}")),
                Err(e) => problems.push(format!("metrics endpoint: {e}")),
            }
        }
        if problems.is_empty() {
            tracing::info!(agent = %self.name, "agent stopped cleanly");
            Ok(())
        } else {
            Err(StopError(problems))
        }
    }
}

/// Opens the channel of `spec` (a file channel replays its log) off the runtime's threads.
pub(crate) async fn open_channel(spec: &ChannelSpec) -> Result<Channel, StartError> {
    let (name, settings) = (spec.name.clone(), spec.settings.clone());
    tokio::task::spawn_blocking(move || Channel::open(&name, &settings))
        .await
        .map_err(|e| StartError::Thread {
            what: format!("channel {}", spec.name),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(StartError::from)
}

/// Stops one source: it stops taking input and finishes the puts in flight (clients get their
/// answers), then its optional-channel writer drains. Returns the problems met.
pub(crate) async fn stop_source(s: RunningSource) -> Vec<String> {
    let mut problems = Vec::new();
    s.stop.trigger();
    match s.run {
        SourceRun::Task(task) => match tokio::time::timeout(SOURCE_STOP_TIMEOUT, task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(format!("source {}: {e}", s.name)),
            Err(_) => problems.push(format!(
                "source {} did not stop within {} s",
                s.name,
                SOURCE_STOP_TIMEOUT.as_secs()
            )),
        },
        SourceRun::Thread(t) => {
            problems.extend(join_all(vec![(s.name.clone(), t)], "source").await)
        }
    }
    let processor = s.processor;
    let _ = tokio::task::spawn_blocking(move || processor.close()).await;
    problems
}

/// Stops one sink runner: the batch in flight finishes, its sinks close their outputs.
pub(crate) async fn stop_sinks(s: RunningSinks) -> Vec<String> {
    s.stop.trigger();
    join_all(vec![(s.unit.label(), s.thread)], "runner of").await
}

/// Closes `channels` (a file channel syncs and releases its directory).
pub(crate) async fn close_channels(channels: Vec<Channel>) -> Vec<String> {
    let closed = tokio::task::spawn_blocking(move || {
        channels
            .iter()
            .filter_map(|c| {
                c.close()
                    .err()
                    .map(|e| format!("channel {}: {e}", c.name()))
            })
            .collect::<Vec<_>>()
    })
    .await;
    closed.unwrap_or_else(|e| vec![format!("closing channels: {e}")])
}

async fn join_all(threads: Vec<(String, JoinHandle<()>)>, what: &'static str) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .filter_map(|(name, t)| {
                t.join()
                    .err()
                    .map(|_| format!("{what} {name}: its thread panicked"))
            })
            .collect()
    })
    .await
    .unwrap_or_else(|e| vec![format!("{what} threads: {e}")])
}
