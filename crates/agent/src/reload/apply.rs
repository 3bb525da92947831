//! [`Agent::reload`]: applies a [`Plan`] to the running agent, in the order that loses nothing:
//!
//! 1. open new channels (before anything uses them);
//! 2. restart changed sink runners and start new ones (a runner finishes its batch in flight
//!    before it stops, so an event it took is either delivered and committed or rolled back
//!    into its channel);
//! 3. restart sources whose own settings changed (stop, then start the new one), re-bind in
//!    place those whose channels, selector or interceptors changed, start new ones;
//! 4. stop removed sources;
//! 5. stop removed sink runners, once the channels being removed are empty;
//! 6. close removed channels.
//!
//! Before step 1 the reload is refused as a whole, nothing changed, if a channel's settings
//! changed or a channel to remove still holds events. A failure after that (a new channel
//! that does not open: nothing changed yet; a source that cannot bind its new address: its
//! old settings are started again) leaves a consistent topology, and the agent's record of
//! what runs says what actually runs, so the next reload tries again what failed.

use super::diff::{diff, Plan};
use crate::agent::{close_channels, open_channel, stop_sinks, stop_source, Agent};
use crate::config::{AgentConfig, SourceSpec};
use crate::metrics::ComponentType;
use crate::topology::{SinkUnit, UnitKind};
use std::fmt;
use std::time::{Duration, Instant};

/// Longest wait, after every source stopped writing to a channel being removed, for its sinks
/// to take what was put meanwhile before they stop.
pub const REMOVED_CHANNEL_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a reload did, one entry per component (`opened channel c2`, `re-bound source r1`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// The changes, in the order they were made.
    pub actions: Vec<String>,
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            f.write_str("nothing changed")
        } else {
            f.write_str(&self.actions.join(", "))
        }
    }
}

/// Why a reload did not fully happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The new configuration cannot be applied live; nothing changed.
    #[error("reload refused, nothing changed: {}", .reasons.join("; "))]
    Refused {
        /// Every reason.
        reasons: Vec<String>,
    },
    /// Some changes were made and some failed; what runs is consistent and logged.
    #[error("reload failed partway ({done}): {}", .problems.join("; "))]
    Failed {
        /// What was changed.
        done: ReloadSummary,
        /// What failed.
        problems: Vec<String>,
    },
}

impl Agent {
    /// Changes the running topology into `new`, touching only what differs (see the module
    /// doc). Counts the reload, successful or not, in the `AGENT.<name>` metrics.
    pub async fn reload(&mut self, new: AgentConfig) -> Result<ReloadSummary, ReloadError> {
        let outcome = self.apply(new).await;
        self.reloads.record(outcome.is_ok());
        match &outcome {
            Ok(summary) => tracing::info!(agent = %self.name, changes = %summary, "reload done"),
            Err(e) => tracing::error!(agent = %self.name, error = %e, "reload failed"),
        }
        outcome
    }

    async fn apply(&mut self, new: AgentConfig) -> Result<ReloadSummary, ReloadError> {
        let mut plan = diff(&self.config, &new);
        for name in &plan.close_channels {
            let pending = self.channel(name).map_or(0, |c| c.len());
            if pending > 0 {
                plan.refusals.push(format!(
                    "channel {name} is removed from the file but holds {pending} event(s) not \
                     yet taken; removing it would strand them: keep it and its sink until its \
                     ChannelSize is 0, then remove it"
                ));
            }
        }
        if !plan.refusals.is_empty() {
            return Err(ReloadError::Refused {
                reasons: plan.refusals,
            });
        }
        if plan.is_empty() {
            self.config = new;
            return Ok(ReloadSummary::default());
        }
        let mut run = Applying {
            running: new,
            done: ReloadSummary::default(),
            problems: Vec::new(),
        };
        self.open_channels(&plan, &mut run).await?;
        self.apply_sinks(&plan, &mut run).await;
        self.apply_sources(&plan, &mut run).await;
        self.remove_old(&plan, &mut run).await;
        self.config = run.running;
        if run.problems.is_empty() {
            Ok(run.done)
        } else {
            Err(ReloadError::Failed {
                done: run.done,
                problems: run.problems,
            })
        }
    }

    /// Step 1. A channel that does not open undoes the ones opened before it: nothing changed.
    async fn open_channels(&mut self, plan: &Plan, run: &mut Applying) -> Result<(), ReloadError> {
        let mut opened = Vec::new();
        for spec in &plan.open_channels {
            match open_channel(spec).await {
                Ok(c) => opened.push(c),
                Err(e) => {
                    let mut problems = vec![format!("channel {}: {e}", spec.name)];
                    problems.extend(close_channels(opened).await);
                    return Err(ReloadError::Failed {
                        done: ReloadSummary::default(),
                        problems,
                    });
                }
            }
        }
        for c in opened {
            tracing::info!(agent = %self.name, channel = c.name(), "reload: channel opened");
            run.done
                .actions
                .push(format!("opened channel {}", c.name()));
            self.registry.add_channel(c.clone());
            self.channels.push(c);
        }
        Ok(())
    }

    /// Step 2, and the early part of step 5: a removed runner that shares a sink with a new
    /// one (a sink moved into or out of a group) stops before the new one starts, so no sink
    /// ever runs twice.
    async fn apply_sinks(&mut self, plan: &Plan, run: &mut Applying) {
        let starting: Vec<&SinkUnit> = plan.restart_sinks.iter().chain(&plan.start_sinks).collect();
        for old in &plan.stop_sinks {
            let shares = old.sinks.iter().any(|s| {
                starting
                    .iter()
                    .any(|u| u.sinks.iter().any(|n| n.name == s.name))
            });
            if shares {
                self.stop_unit(old, run, "stopped").await;
            }
        }
        for unit in &plan.restart_sinks {
            self.stop_unit(unit, run, "").await;
            self.start_unit(unit.clone(), run, "restarted");
        }
        for unit in &plan.start_sinks {
            self.start_unit(unit.clone(), run, "started");
        }
    }

    /// Stops the running unit of `unit`'s kind and name, if any, and unregisters its sinks.
    async fn stop_unit(&mut self, unit: &SinkUnit, run: &mut Applying, verb: &str) {
        let Some(i) = self
            .sinks
            .iter()
            .position(|r| r.unit.kind == unit.kind && r.unit.name == unit.name)
        else {
            return;
        };
        let running = self.sinks.remove(i);
        for s in &running.unit.sinks {
            self.registry.remove(ComponentType::Sink, &s.name);
        }
        let label = running.unit.label();
        run.problems.extend(stop_sinks(running).await);
        if !verb.is_empty() {
            tracing::info!(agent = %self.name, runner = %label, "reload: sink runner stopped");
            run.done.actions.push(format!("{verb} {label}"));
        }
    }

    fn start_unit(&mut self, unit: SinkUnit, run: &mut Applying, verb: &str) {
        let label = unit.label();
        match self.start_sinks(unit.clone()) {
            Ok(r) => {
                tracing::info!(agent = %self.name, runner = %label, "reload: sink runner {verb}");
                run.done.actions.push(format!("{verb} {label}"));
                self.sinks.push(r);
            }
            Err(e) => {
                for s in &unit.sinks {
                    self.registry.remove(ComponentType::Sink, &s.name);
                }
                run.problems.push(format!("{label}: {e}"));
                run.forget_unit(&unit);
            }
        }
    }

    /// Step 3.
    async fn apply_sources(&mut self, plan: &Plan, run: &mut Applying) {
        for spec in &plan.restart_sources {
            if let Some(old) = self.take_source(&spec.name) {
                run.problems.extend(stop_source(old).await);
            }
            match self.start_source(spec).await {
                Ok(r) => {
                    tracing::info!(agent = %self.name, source = %spec.name, "reload: source restarted");
                    run.done
                        .actions
                        .push(format!("restarted source {}", spec.name));
                    self.sources.push(r);
                }
                Err(e) => {
                    run.problems.push(format!("source {}: {e}", spec.name));
                    let old_spec = self.config.sources.iter().find(|s| s.name == spec.name);
                    match old_spec {
                        Some(old_spec) => match self.start_source(old_spec).await {
                            Ok(r) => {
                                tracing::warn!(agent = %self.name, source = %spec.name, "reload: new settings failed; source runs with its old settings");
                                self.sources.push(r);
                                run.keep_source(old_spec.clone());
                            }
                            Err(e) => {
                                run.problems.push(format!(
                                    "source {}: its old settings did not start again either: {e}",
                                    spec.name
                                ));
                                self.registry.remove(ComponentType::Source, &spec.name);
                                run.forget_source(&spec.name);
                            }
                        },
                        None => run.forget_source(&spec.name),
                    }
                }
            }
        }
        for spec in &plan.rebind_sources {
            let Some(source) = self.sources.iter().find(|s| s.name == spec.name) else {
                continue;
            };
            let processor = source.processor.clone();
            let (interceptors, selector) = (spec.interceptors.clone(), spec.selector.clone());
            let channels = self.channels_named(&spec.channels);
            // Waits for the puts in flight through the old binding.
            let rebound = tokio::task::spawn_blocking(move || {
                processor.rebind(interceptors, selector, channels);
            })
            .await;
            match rebound {
                Ok(()) => {
                    tracing::info!(agent = %self.name, source = %spec.name, channels = ?spec.channels, "reload: source re-bound in place");
                    run.done
                        .actions
                        .push(format!("re-bound source {}", spec.name));
                }
                Err(e) => run
                    .problems
                    .push(format!("source {}: re-bind: {e}", spec.name)),
            }
        }
        for spec in &plan.start_sources {
            match self.start_source(spec).await {
                Ok(r) => {
                    tracing::info!(agent = %self.name, source = %spec.name, "reload: source started");
                    run.done
                        .actions
                        .push(format!("started source {}", spec.name));
                    self.sources.push(r);
                }
                Err(e) => {
                    self.registry.remove(ComponentType::Source, &spec.name);
                    run.problems.push(format!("source {}: {e}", spec.name));
                    run.forget_source(&spec.name);
                }
            }
        }
    }

    fn take_source(&mut self, name: &str) -> Option<crate::agent::RunningSource> {
        let i = self.sources.iter().position(|s| s.name == name)?;
        Some(self.sources.remove(i))
    }

    /// Steps 4 to 6.
    async fn remove_old(&mut self, plan: &Plan, run: &mut Applying) {
        for name in &plan.stop_sources {
            if let Some(old) = self.take_source(name) {
                run.problems.extend(stop_source(old).await);
                self.registry.remove(ComponentType::Source, name);
                tracing::info!(agent = %self.name, source = %name, "reload: source stopped");
                run.done.actions.push(format!("stopped source {name}"));
            }
        }
        // Events put between the refusal check and the re-binds are taken before the sinks go.
        let closing: Vec<_> = plan
            .close_channels
            .iter()
            .filter_map(|n| self.channel(n))
            .collect();
        let deadline = Instant::now() + REMOVED_CHANNEL_DRAIN_TIMEOUT;
        while closing.iter().any(|c| !c.is_empty()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for unit in &plan.stop_sinks {
            self.stop_unit(unit, run, "stopped").await;
        }
        for c in closing {
            let pending = c.len();
            if pending > 0 {
                run.problems.push(format!(
                    "channel {}: closed with {pending} event(s) its sinks did not take in {} s \
                     (a file channel keeps them in its directory)",
                    c.name(),
                    REMOVED_CHANNEL_DRAIN_TIMEOUT.as_secs()
                ));
            }
            self.channels.retain(|r| r.name() != c.name());
            self.registry.remove(ComponentType::Channel, c.name());
            let name = c.name().to_owned();
            run.problems.extend(close_channels(vec![c]).await);
            tracing::info!(agent = %self.name, channel = %name, "reload: channel closed");
            run.done.actions.push(format!("closed channel {name}"));
        }
    }
}

/// The state of one reload: the configuration that will be recorded as running (the new one,
/// corrected wherever a component failed to start), what was done and what failed.
struct Applying {
    running: AgentConfig,
    done: ReloadSummary,
    problems: Vec<String>,
}

impl Applying {
    /// A source that does not run: recorded as absent, so the next reload starts it.
    fn forget_source(&mut self, name: &str) {
        self.running.sources.retain(|s| s.name != name);
    }

    /// A source that runs with its old settings.
    fn keep_source(&mut self, old: SourceSpec) {
        if let Some(s) = self.running.sources.iter_mut().find(|s| s.name == old.name) {
            *s = old;
        }
    }

    /// A sink runner that does not run: recorded as absent.
    fn forget_unit(&mut self, unit: &SinkUnit) {
        let names: Vec<&str> = unit.sinks.iter().map(|s| s.name.as_str()).collect();
        self.running
            .sinks
            .retain(|s| !names.contains(&s.name.as_str()));
        if unit.kind == UnitKind::Group {
            self.running.groups.retain(|g| g.name != unit.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::build::build;
    use std::path::Path;

    fn conf(text: &str) -> AgentConfig {
        let (c, d) = build(text, Path::new("a.conf"), "a1", |_| None);
        assert!(d.is_ok(), "{:?}", d.errors);
        c.expect("config")
    }

    const BASE: &str = "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 0
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
";

    fn with_r2_c2_k2(port: u16) -> String {
        BASE.replace("a1.sources = r1", "a1.sources = r1 r2")
            .replace("a1.channels = c1", "a1.channels = c1 c2")
            .replace("a1.sinks = k1", "a1.sinks = k1 k2")
            + &format!(
                "a1.sources.r2.type = netcat\na1.sources.r2.bind = 127.0.0.1\n\
                 a1.sources.r2.port = {port}\na1.sources.r2.channels = c2\n\
                 a1.channels.c2.type = memory\na1.sinks.k2.type = null\na1.sinks.k2.channel = c2\n"
            )
    }

    fn names(agent: &Agent) -> Vec<String> {
        agent
            .registry()
            .snapshot()
            .iter()
            .map(|c| format!("{}.{}", c.kind.as_str(), c.name))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_that_cannot_bind_fails_the_reload_and_is_started_by_the_next() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let mut agent = Agent::start(conf(BASE), None).await.expect("start");
        let new = conf(&with_r2_c2_k2(port));
        let err = agent.reload(new.clone()).await.expect_err("port in use");
        let ReloadError::Failed { done, problems } = &err else {
            panic!("{err}");
        };
        assert_eq!(
            done.actions,
            vec!["opened channel c2", "started sink k2"],
            "{err}"
        );
        assert!(problems[0].starts_with("source r2: "), "{problems:?}");
        // What runs is recorded: r2 is not running, the rest of the new file is.
        let running: Vec<&str> = agent
            .config()
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(running, vec!["r1"]);
        assert_eq!(
            names(&agent),
            vec![
                "AGENT.a1",
                "SOURCE.r1",
                "CHANNEL.c1",
                "CHANNEL.c2",
                "SINK.k1",
                "SINK.k2"
            ]
        );
        let counters = agent.reload_counters();
        assert_eq!(
            (
                counters
                    .reload_count
                    .load(std::sync::atomic::Ordering::Relaxed),
                counters
                    .reload_failed_count
                    .load(std::sync::atomic::Ordering::Relaxed)
            ),
            (0, 1)
        );

        drop(taken);
        let summary = agent.reload(new).await.expect("the port is free now");
        assert_eq!(summary.to_string(), "started source r2");
        agent.stop().await.expect("stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_channel_that_does_not_open_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").expect("write");
        let mut agent = Agent::start(conf(BASE), None).await.expect("start");
        let bad = with_r2_c2_k2(0).replace(
            "a1.channels.c2.type = memory\n",
            &format!(
                "a1.channels.c2.type = file\na1.channels.c2.checkpointDir = {0}/cp\n\
                 a1.channels.c2.dataDirs = {0}/data\n",
                file.display()
            ),
        );
        let err = agent.reload(conf(&bad)).await.expect_err("cannot open");
        let ReloadError::Failed { done, problems } = &err else {
            panic!("{err}");
        };
        assert!(done.actions.is_empty(), "{err}");
        assert!(problems[0].starts_with("channel c2: "), "{problems:?}");
        assert_eq!(agent.config().channels.len(), 1);
        assert_eq!(
            names(&agent),
            vec!["AGENT.a1", "SOURCE.r1", "CHANNEL.c1", "SINK.k1"]
        );
        agent.stop().await.expect("stop");
    }
}
