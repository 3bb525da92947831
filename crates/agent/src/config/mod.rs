//! Configuration: a Flume properties file → a checked [`AgentConfig`] for one agent.
//!
//! Layers, each in its own module:
//! - [`properties`]: Java `.properties` syntax, with line numbers.
//! - [`substitute`]: `${…}` references in values (`${env:NAME}`, `${NAME}`, `${sys:name}`, and
//!   [`filters`], Flume's config filters `${f1['key']}`).
//! - [`context`]: typed, located access to one component's keys.
//! - [`registry`]: component type names and Flume's class names.
//! - [`build`]: Flume's structure (`<agent>.sources = ...`, `<agent>.sources.<name>.<key>`),
//!   bindings and cross-component checks.
//! - [`problem`]: what is wrong, as `file:line: key: message`.
//! - [`security`]: keys with a security meaning (TLS, Kerberos, SASL, encryption), which are
//!   honoured or refused, never ignored.
//!
//! Flume drops a component with a bad configuration and starts without it; we refuse to start
//! and list every problem at once. Keys we do not know are warnings, not errors, so a Flume
//! file with options we do not implement still loads (each is named) — except keys with a
//! security meaning that nothing reads: those are errors ([`security`]).

pub mod build;
pub mod context;
pub mod filters;
pub mod problem;
pub mod properties;
pub mod registry;
pub mod security;
pub mod substitute;

use crate::channel::ChannelSettings;
use crate::interceptor::Interceptor;
use crate::processor::ProcessorSpec;
use crate::selector::Selector;
use crate::sink::SinkSettings;
use crate::source::SourceSettings;
use problem::{Diagnostics, Problem};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A checked configuration of one agent.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The agent's name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Channels, in `<agent>.channels` order.
    pub channels: Vec<ChannelSpec>,
    /// Sources, in `<agent>.sources` order.
    pub sources: Vec<SourceSpec>,
    /// Sinks, in `<agent>.sinks` order.
    pub sinks: Vec<SinkSpec>,
    /// Sink groups, in `<agent>.sinkgroups` order.
    pub groups: Vec<SinkGroupSpec>,
}

/// A channel.
#[derive(Clone, Debug)]
pub struct ChannelSpec {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub settings: ChannelSettings,
}

/// A source.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    /// Its name.
    pub name: String,
    /// Its channels (`channels`), in order; the selector indexes them.
    pub channels: Vec<String>,
    /// Its channel selector.
    pub selector: Selector,
    /// Its interceptors, in order.
    pub interceptors: Vec<Arc<dyn Interceptor>>,
    /// Its settings.
    pub settings: SourceSettings,
}

/// A sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    /// Its name.
    pub name: String,
    /// The channel it takes from (`channel`).
    pub channel: String,
    /// Its settings.
    pub settings: SinkSettings,
}

/// A sink group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkGroupSpec {
    /// Its name.
    pub name: String,
    /// Its sinks, in order.
    pub sinks: Vec<String>,
    /// How they are driven.
    pub processor: ProcessorSpec,
}

/// A configuration that loaded, with its warnings.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: AgentConfig,
    /// Accepted oddities (unknown keys, unused components, repeated keys).
    pub warnings: Vec<Problem>,
}

/// Why a configuration did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (exit status 2).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is invalid (exit status 1); every problem is listed.
    #[error("{} has {} problem(s)", .file.display(), .diagnostics.errors.len())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Errors and warnings.
        diagnostics: Diagnostics,
    },
}

/// What a load takes from outside the file, besides the environment.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The command line's `-D key=value` system properties: `${sys:key}` in values, and the
    /// agent-wide TLS defaults (`javax.net.ssl.*`, `flume.ssl.*`).
    pub system_properties: BTreeMap<String, String>,
}

/// The `-D` system properties as every component's context carries them (shared, and shown by
/// `Debug` without their values, which may be passwords).
#[derive(Clone, Default)]
pub struct SystemProperties(Arc<BTreeMap<String, String>>);

impl SystemProperties {
    /// Wraps `properties`.
    pub fn new(properties: BTreeMap<String, String>) -> Self {
        Self(Arc::new(properties))
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl fmt::Debug for SystemProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Reads `path` and checks agent `agent`, taking `${env:...}` values from the process
/// environment and `~` from `$HOME`; no system properties ([`load_with`] with the defaults).
pub fn load(path: &Path, agent: &str) -> Result<Loaded, LoadError> {
    load_with(path, agent, &LoadOptions::default())
}

/// Reads `path` and checks agent `agent`: references from the process environment, the
/// system properties of `options`, and config filters (an `external` filter runs its command).
/// Nothing else outside the file is read or changed, so a reload may call it again.
pub fn load_with(path: &Path, agent: &str, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| LoadError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        ),
    })?;
    let env = |name: &str| std::env::var(name).ok();
    let lookups = substitute::Lookups {
        env: &env,
        system_properties: &options.system_properties,
        external: &filters::run_external,
    };
    let (config, diagnostics) = build::build_with(&text, path, agent, &lookups);
    match config {
        Some(config) if diagnostics.is_ok() => Ok(Loaded {
            config,
            warnings: diagnostics.warnings,
        }),
        _ => Err(LoadError::Invalid {
            file: path.to_owned(),
            diagnostics,
        }),
    }
}
