//! Sink runner units: what one sink runner thread drives. A sink group is one unit (its
//! processor over its sinks); a sink in no group is a unit of its own with the `default`
//! processor. Both [`crate::agent`] (to start runners) and [`crate::reload`] (to tell which
//! runners a new configuration changes) see the configuration through this one grouping.

use crate::config::{AgentConfig, SinkSpec};
use crate::processor::ProcessorSpec;

/// Whether a unit is a sink group or a lone sink (the two have separate namespaces in Flume).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnitKind {
    /// A `sinkgroups` entry.
    Group,
    /// A sink in no group.
    Sink,
}

/// One sink runner's work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkUnit {
    /// Group or lone sink.
    pub kind: UnitKind,
    /// The group's name, or the lone sink's.
    pub name: String,
    /// How its sinks are driven.
    pub processor: ProcessorSpec,
    /// Its sinks, in the group's order, with their channels and settings.
    pub sinks: Vec<SinkSpec>,
}

impl SinkUnit {
    /// `sink group g1` or `sink k1`, for logs and messages.
    pub fn label(&self) -> String {
        match self.kind {
            UnitKind::Group => format!("sink group {}", self.name),
            UnitKind::Sink => format!("sink {}", self.name),
        }
    }

    /// The names of the channels its sinks take from, each once.
    pub fn channel_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.sinks {
            if !out.contains(&s.channel.as_str()) {
                out.push(&s.channel);
            }
        }
        out
    }
}

/// The runner units of `config`: groups in `sinkgroups` order, then lone sinks in `sinks`
/// order. A group member that names no defined sink is skipped (validation reports it).
pub fn sink_units(config: &AgentConfig) -> Vec<SinkUnit> {
    let mut units: Vec<SinkUnit> = config
        .groups
        .iter()
        .map(|g| SinkUnit {
            kind: UnitKind::Group,
            name: g.name.clone(),
            processor: g.processor.clone(),
            sinks: g
                .sinks
                .iter()
                .filter_map(|m| config.sinks.iter().find(|s| &s.name == m).cloned())
                .collect(),
        })
        .collect();
    for s in &config.sinks {
        if !config.groups.iter().any(|g| g.sinks.contains(&s.name)) {
            units.push(SinkUnit {
                kind: UnitKind::Sink,
                name: s.name.clone(),
                processor: ProcessorSpec::Default,
                sinks: vec![s.clone()],
            });
        }
    }
    units
}
