//! Live reload: a new configuration file is applied to the running agent without a restart,
//! touching only the components that changed ([`diff`], [`apply`]). Flume polls its file every
//! 30 s and restarts the whole topology; here a reload is triggered by
//!
//! - SIGHUP, always (also with `--no-reload-conf`: an operator's explicit request);
//! - a change seen by a watch on the file's directory ([`watch`]), unless turned off;
//! - a poll of the file every [`ReloadOptions::poll_interval`] (30 s, as Flume), unless off.
//!
//! A file that does not load or validate leaves the running topology as it is: every error is
//! logged with its `file:line: key`, and `ReloadFailedCount` of `AGENT.<name>` goes up. The same
//! broken bytes are not reported again by the watch or the poll; SIGHUP retries them.

pub mod apply;
pub mod diff;
pub mod watch;

pub use apply::{ReloadError, ReloadSummary};

use crate::agent::Agent;
use crate::config::{LoadError, Loaded};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use watch::{DirWatch, Fingerprint};

/// Flume's default poll interval (`flume-ng`'s file configuration provider).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Environment variable: the poll interval in milliseconds (0 turns polling off).
pub const POLL_ENV: &str = "SLUICE_CONF_POLL_INTERVAL_MS";
/// Environment variable: `0`, `false` or `off` turns the directory watch off (polling stays).
pub const WATCH_ENV: &str = "SLUICE_CONF_WATCH";

/// How the configuration file is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadOptions {
    /// Watch the file's directory for changes.
    pub watch: bool,
    /// Poll the file this often; `None`: never.
    pub poll_interval: Option<Duration>,
}

/// An environment variable with a value we cannot use.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?}: {expected}")]
pub struct OptionError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub expected: &'static str,
}

impl ReloadOptions {
    /// `reload` false (`--no-reload-conf`): neither watch nor poll; else both, as
    /// [`POLL_ENV`] and [`WATCH_ENV`] say, read through `env`.
    pub fn new(reload: bool, env: impl Fn(&str) -> Option<String>) -> Result<Self, OptionError> {
        if !reload {
            return Ok(Self {
                watch: false,
                poll_interval: None,
            });
        }
        let poll_interval = match env(POLL_ENV) {
            None => Some(DEFAULT_POLL_INTERVAL),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(ms) => Some(Duration::from_millis(ms)),
                Err(_) => {
                    return Err(OptionError {
                        name: POLL_ENV,
                        value: v,
                        expected: "milliseconds, a whole number (0: no polling)",
                    })
                }
            },
        };
        let watch = match env(WATCH_ENV).as_deref().map(str::trim) {
            None | Some("1" | "true" | "on") => true,
            Some("0" | "false" | "off") => false,
            Some(v) => {
                return Err(OptionError {
                    name: WATCH_ENV,
                    value: v.to_owned(),
                    expected: "on or off",
                })
            }
        };
        Ok(Self {
            watch,
            poll_interval,
        })
    }
}

/// What made a reload happen (in logs as `trigger`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// The directory watch.
    Watch,
    /// The poll.
    Poll,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "SIGHUP",
            Self::Watch => "file watch",
            Self::Poll => "poll",
        }
    }
}

/// The reload triggers of one agent. Made before the agent starts, so a SIGHUP during start-up
/// is a reload afterwards rather than the signal's default action (ending the process).
pub struct Reloader {
    file: PathBuf,
    hup: Signal,
    watch: Option<DirWatch>,
    poll: Option<tokio::time::Interval>,
    seen: Fingerprint,
}

impl Reloader {
    /// Installs the SIGHUP handler and, as `options` say, the watch and the poll of `file`.
    /// Call from a tokio runtime. A watch that cannot be set up is logged; polling remains.
    pub fn install(file: &Path, options: ReloadOptions) -> std::io::Result<Self> {
        let hup = signal(SignalKind::hangup())?;
        let watch = if options.watch {
            match DirWatch::new(file) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "cannot watch the configuration file's directory; changes are seen by polling only");
                    None
                }
            }
        } else {
            None
        };
        let poll = options.poll_interval.map(|every| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        tracing::info!(
            file = %file.display(),
            watch = watch.is_some(),
            poll_interval_ms = options.poll_interval.map_or(0, |d| d.as_millis() as u64),
            "configuration reload: SIGHUP always; file watch and poll as shown"
        );
        Ok(Self {
            file: file.to_owned(),
            hup,
            watch,
            poll,
            seen: Fingerprint::of(file),
        })
    }

    /// Serves reloads of `agent` until `shutdown` resolves, and returns its output. `load`
    /// reads and checks the file (the same loader the agent was started with).
    pub async fn run<T>(
        mut self,
        agent: &mut Agent,
        load: impl Fn() -> Result<Loaded, LoadError>,
        shutdown: impl Future<Output = T>,
    ) -> T {
        tokio::pin!(shutdown);
        loop {
            let trigger = tokio::select! {
                out = &mut shutdown => return out,
                _ = self.hup.recv() => Trigger::Signal,
                () = watched(&mut self.watch) => Trigger::Watch,
                () = polled(&mut self.poll) => Trigger::Poll,
            };
            let now = Fingerprint::of(&self.file);
            if trigger != Trigger::Signal && (now == self.seen || !now.is_readable()) {
                continue;
            }
            self.seen = now;
            tracing::info!(agent = %agent.config().name, trigger = trigger.as_str(), file = %self.file.display(), "reloading the configuration");
            reload_once(agent, &load).await;
        }
    }
}

/// Loads the file and applies it; a file that does not load is logged error by error and
/// counted as a failed reload.
pub async fn reload_once(
    agent: &mut Agent,
    load: &impl Fn() -> Result<Loaded, LoadError>,
) -> Option<ReloadSummary> {
    match load() {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("{}", w.display(&loaded.config.file));
            }
            agent.reload(loaded.config).await.ok()
        }
        Err(LoadError::Invalid { file, diagnostics }) => {
            for e in &diagnostics.errors {
                tracing::error!(file = %file.display(), line = e.line.unwrap_or(0), "{}", e.display(&file));
            }
            tracing::error!(
                file = %file.display(),
                problems = diagnostics.errors.len(),
                "reload failed: the new configuration is invalid; the running topology is unchanged"
            );
            agent.reload_counters().record(false);
            None
        }
        Err(e @ LoadError::Io { .. }) => {
            tracing::error!(error = %e, "reload failed: the running topology is unchanged");
            agent.reload_counters().record(false);
            None
        }
    }
}

async fn watched(watch: &mut Option<DirWatch>) {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

async fn polled(poll: &mut Option<tokio::time::Interval>) {
    match poll {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn options_default_to_watch_and_flumes_thirty_seconds() {
        let o = ReloadOptions::new(true, env(&[])).expect("ok");
        assert_eq!(
            o,
            ReloadOptions {
                watch: true,
                poll_interval: Some(Duration::from_secs(30))
            }
        );
        let off = ReloadOptions::new(false, env(&[(POLL_ENV, "100")])).expect("ok");
        assert_eq!(
            off,
            ReloadOptions {
                watch: false,
                poll_interval: None
            }
        );
        let o =
            ReloadOptions::new(true, env(&[(POLL_ENV, "250"), (WATCH_ENV, "off")])).expect("ok");
        assert_eq!(o.poll_interval, Some(Duration::from_millis(250)));
        assert!(!o.watch);
        assert_eq!(
            ReloadOptions::new(true, env(&[(POLL_ENV, "0")]))
                .expect("ok")
                .poll_interval,
            None
        );
        let e = ReloadOptions::new(true, env(&[(POLL_ENV, "5s")])).expect_err("not a number");
        assert_eq!(
            e.to_string(),
            "environment variable SLUICE_CONF_POLL_INTERVAL_MS=\"5s\": milliseconds, a whole number (0: no polling)"
        );
    }
}
