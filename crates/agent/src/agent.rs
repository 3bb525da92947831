//! [`Agent`]: starts a checked configuration in dependency order and stops it cleanly.
//!
//! Start: open every channel (a file channel replays its log) → start sink runners → start
//! sources (an event-driven source binds here; a failure stops everything started so far and
//! is returned) → serve metrics. Stop, the reverse: sources stop taking input and finish the
//! puts in flight (clients get their answers) → optional-channel writers drain → sink runners
//! finish the batch in flight and close their outputs → channels close (a file channel syncs
//! and releases its directory) → the metrics server stops.

use crate::channel::{Channel, OpenError};
use crate::channel_processor::ChannelProcessor;
use crate::config::AgentConfig;
use crate::metrics::{Registry, SinkCounters, SourceCounters};
use crate::processor::{ProcessorSpec, SystemClock};
use crate::runner::{spawn_sink_runner, spawn_source_runner};
use crate::sink::SinkContext;
use crate::source::{Source, SourceContext, SourceError};
use crate::stop::Stop;
use std::collections::BTreeMap;
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

/// A running agent.
pub struct Agent {
    name: String,
    channels: Vec<Channel>,
    processors: Vec<Arc<ChannelProcessor>>,
    source_stop: Stop,
    source_threads: Vec<(String, JoinHandle<()>)>,
    source_tasks: Vec<(String, tokio::task::JoinHandle<()>)>,
    sink_stop: Stop,
    sink_threads: Vec<(String, JoinHandle<()>)>,
    registry: Arc<Registry>,
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
        let mut agent = Self {
            name: config.name.clone(),
            channels: Vec::new(),
            processors: Vec::new(),
            source_stop: Stop::new(),
            source_threads: Vec::new(),
            source_tasks: Vec::new(),
            sink_stop: Stop::new(),
            sink_threads: Vec::new(),
            registry: Arc::default(),
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
        let mut registry = Registry::default();
        // Channels.
        let mut by_name: BTreeMap<String, Channel> = BTreeMap::new();
        for spec in &config.channels {
            let (name, settings) = (spec.name.clone(), spec.settings.clone());
            let opened = tokio::task::spawn_blocking(move || Channel::open(&name, &settings))
                .await
                .map_err(|e| StartError::Thread {
                    what: format!("channel {}", spec.name),
                    source: std::io::Error::other(e.to_string()),
                })??;
            registry.add_channel(opened.clone());
            by_name.insert(spec.name.clone(), opened.clone());
            self.channels.push(opened);
        }
        let channel = |name: &str| by_name.get(name).cloned();

        // Sinks, grouped: each group gets one runner; a sink in no group runs alone.
        let clock: Arc<SystemClock> = Arc::default();
        let mut groups: Vec<(String, ProcessorSpec, Vec<String>)> = config
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.processor.clone(), g.sinks.clone()))
            .collect();
        for s in &config.sinks {
            if !config.groups.iter().any(|g| g.sinks.contains(&s.name)) {
                groups.push((s.name.clone(), ProcessorSpec::Default, vec![s.name.clone()]));
            }
        }
        for (group, spec, members) in groups {
            let mut sinks = Vec::new();
            let mut channels: Vec<Channel> = Vec::new();
            for m in &members {
                let Some(s) = config.sinks.iter().find(|s| &s.name == m) else {
                    continue;
                };
                let Some(ch) = channel(&s.channel) else {
                    continue;
                };
                let counters = Arc::new(SinkCounters::default());
                registry.add_sink(&s.name, counters.clone());
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
            let processor = crate::processor::build(&group, &spec, sinks, clock.clone());
            let t = spawn_sink_runner(&group, processor, channels, self.sink_stop.clone())
                .map_err(|source| StartError::Thread {
                    what: format!("sink {group}"),
                    source,
                })?;
            self.sink_threads.push((group, t));
        }

        // Sources.
        for s in &config.sources {
            let channels: Vec<Channel> = s.channels.iter().filter_map(|c| channel(c)).collect();
            let processor = Arc::new(ChannelProcessor::new(
                &s.name,
                s.interceptors.clone(),
                s.selector.clone(),
                channels,
            ));
            self.processors.push(processor.clone());
            let counters = Arc::new(SourceCounters::default());
            registry.add_source(&s.name, counters.clone());
            processor.report_to(counters.clone());
            let ctx = SourceContext {
                name: s.name.as_str().into(),
                processor,
                counters,
            };
            match crate::source::build(&s.settings, ctx) {
                Source::Pollable(p) => {
                    let t = spawn_source_runner(&s.name, p, self.source_stop.clone()).map_err(
                        |source| StartError::Thread {
                            what: format!("source {}", s.name),
                            source,
                        },
                    )?;
                    self.source_threads.push((s.name.clone(), t));
                }
                Source::EventDriven(e) => {
                    let serve = e.start(self.source_stop.clone()).await?;
                    self.source_tasks
                        .push((s.name.clone(), tokio::spawn(serve)));
                }
            }
        }
        self.registry = Arc::new(registry);

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

    /// Every component's metrics.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
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
        self.source_stop.trigger();
        for (name, task) in self.source_tasks.drain(..) {
            match tokio::time::timeout(SOURCE_STOP_TIMEOUT, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(format!("source {name}: {e}")),
                Err(_) => problems.push(format!(
                    "source {name} did not stop within {} s",
                    SOURCE_STOP_TIMEOUT.as_secs()
                )),
            }
        }
        let threads = std::mem::take(&mut self.source_threads);
        problems.extend(join_all(threads, "source").await);
        let processors = std::mem::take(&mut self.processors);
        let _ = tokio::task::spawn_blocking(move || {
            for p in processors {
                p.close();
            }
        })
        .await;
        tracing::info!(agent = %self.name, "stopping sinks (in-flight batches finish)");
        self.sink_stop.trigger();
        let threads = std::mem::take(&mut self.sink_threads);
        problems.extend(join_all(threads, "sink").await);
        tracing::info!(agent = %self.name, "closing channels");
        let channels = std::mem::take(&mut self.channels);
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
        match closed {
            Ok(p) => problems.extend(p),
            Err(e) => problems.push(format!("closing channels: {e}")),
        }
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
