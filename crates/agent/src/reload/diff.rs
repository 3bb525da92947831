//! The diff of a live reload: the running configuration against a new one, by component name
//! and settings, as a [`Plan`] of what to open, start, restart, re-bind, stop and close. Pure:
//! it looks at configurations only (whether a removed channel still holds events is checked
//! by the agent when it applies the plan).
//!
//! - A channel is added, removed, or kept; one whose settings changed cannot be changed live
//!   (a file channel's directory, capacity or keys belong to data already written) and is a
//!   [`Plan::refusals`] entry, which refuses the whole reload.
//! - A sink runner unit ([`SinkUnit`]: a group, or a sink in no group) is kept if it is equal
//!   in everything (processor, member sinks, their channels and settings), else restarted.
//! - A source whose settings are equal but whose `channels`, selector or interceptors differ
//!   is re-bound in place; one whose own settings differ is restarted.

use crate::config::{AgentConfig, ChannelSpec, SourceSpec};
use crate::topology::{sink_units, SinkUnit};

/// What a reload does, in the order it does it.
#[derive(Debug, Default)]
pub struct Plan {
    /// Channels to open first.
    pub open_channels: Vec<ChannelSpec>,
    /// Sink runner units whose running version is stopped and the new one started.
    pub restart_sinks: Vec<SinkUnit>,
    /// New sink runner units.
    pub start_sinks: Vec<SinkUnit>,
    /// Sources stopped and started again with new settings.
    pub restart_sources: Vec<SourceSpec>,
    /// Sources whose events go elsewhere, re-bound without a restart.
    pub rebind_sources: Vec<SourceSpec>,
    /// New sources.
    pub start_sources: Vec<SourceSpec>,
    /// Sources to stop (removed from the file).
    pub stop_sources: Vec<String>,
    /// Sink runner units to stop (removed from the file).
    pub stop_sinks: Vec<SinkUnit>,
    /// Channels to close last (removed from the file).
    pub close_channels: Vec<String>,
    /// Changes that cannot be made live; any refuses the reload.
    pub refusals: Vec<String>,
    /// Components left as they run.
    pub unchanged: Vec<String>,
}

impl Plan {
    /// Whether the new configuration changes nothing.
    pub fn is_empty(&self) -> bool {
        self.open_channels.is_empty()
            && self.restart_sinks.is_empty()
            && self.start_sinks.is_empty()
            && self.restart_sources.is_empty()
            && self.rebind_sources.is_empty()
            && self.start_sources.is_empty()
            && self.stop_sources.is_empty()
            && self.stop_sinks.is_empty()
            && self.close_channels.is_empty()
            && self.refusals.is_empty()
    }
}

/// How `running` becomes `new`.
pub fn diff(running: &AgentConfig, new: &AgentConfig) -> Plan {
    let mut plan = Plan::default();

    for c in &new.channels {
        match running.channels.iter().find(|r| r.name == c.name) {
            None => plan.open_channels.push(c.clone()),
            Some(r) if same_channel(r, c) => plan.unchanged.push(format!("channel {}", c.name)),
            Some(r) => plan.refusals.push(channel_change(r, c)),
        }
    }
    for r in &running.channels {
        if !new.channels.iter().any(|c| c.name == r.name) {
            plan.close_channels.push(r.name.clone());
        }
    }

    let (old_units, new_units) = (sink_units(running), sink_units(new));
    for u in &new_units {
        match old_units
            .iter()
            .find(|o| o.kind == u.kind && o.name == u.name)
        {
            None => plan.start_sinks.push(u.clone()),
            Some(o) if o == u => plan.unchanged.push(u.label()),
            Some(_) => plan.restart_sinks.push(u.clone()),
        }
    }
    for o in old_units {
        if !new_units
            .iter()
            .any(|u| u.kind == o.kind && u.name == o.name)
        {
            plan.stop_sinks.push(o);
        }
    }

    for s in &new.sources {
        match running.sources.iter().find(|r| r.name == s.name) {
            None => plan.start_sources.push(s.clone()),
            Some(r) if r.settings != s.settings => plan.restart_sources.push(s.clone()),
            Some(r) if !same_binding(r, s) => plan.rebind_sources.push(s.clone()),
            Some(_) => plan.unchanged.push(format!("source {}", s.name)),
        }
    }
    for r in &running.sources {
        if !new.sources.iter().any(|s| s.name == r.name) {
            plan.stop_sources.push(r.name.clone());
        }
    }
    plan
}

/// Channel settings have no `PartialEq` (a file channel's holds key material); their debug
/// form lists every setting, so equal forms are equal settings. It is compared, never logged.
fn same_channel(a: &ChannelSpec, b: &ChannelSpec) -> bool {
    format!("{:?}", a.settings) == format!("{:?}", b.settings)
}

fn channel_change(old: &ChannelSpec, new: &ChannelSpec) -> String {
    let what = if old.settings.type_name() != new.settings.type_name() {
        format!(
            "its type changed from {} to {}",
            old.settings.type_name(),
            new.settings.type_name()
        )
    } else {
        format!("its {} channel settings changed", new.settings.type_name())
    };
    format!(
        "channel {}: {what}; a running channel's settings are not changed by a reload \
         (restart the agent, or add a channel under a new name and move its users to it)",
        new.name
    )
}

/// Interceptors are trait objects without `PartialEq`; their debug forms hold their settings.
fn same_binding(a: &SourceSpec, b: &SourceSpec) -> bool {
    a.channels == b.channels
        && a.selector == b.selector
        && format!("{:?}", a.interceptors) == format!("{:?}", b.interceptors)
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
a1.sources.r1.port = 4000
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
";

    fn names(units: &[SinkUnit]) -> Vec<String> {
        units.iter().map(SinkUnit::label).collect()
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let plan = diff(&conf(BASE), &conf(BASE));
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(
            plan.unchanged,
            vec!["channel c1", "sink k1", "source r1"],
            "{plan:?}"
        );
    }

    #[test]
    fn a_second_channel_and_sink_rebind_the_source_and_leave_the_rest() {
        let new = BASE
            .replace("a1.channels = c1", "a1.channels = c1 c2")
            .replace("a1.sinks = k1", "a1.sinks = k1 k2")
            .replace("r1.channels = c1", "r1.channels = c1 c2")
            + "a1.channels.c2.type = memory\na1.sinks.k2.type = null\na1.sinks.k2.channel = c2\n";
        let plan = diff(&conf(BASE), &conf(&new));
        assert_eq!(
            plan.open_channels
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            vec!["c2"]
        );
        assert_eq!(names(&plan.start_sinks), vec!["sink k2"]);
        assert_eq!(plan.rebind_sources.len(), 1);
        assert_eq!(plan.rebind_sources[0].channels, vec!["c1", "c2"]);
        assert!(plan.restart_sources.is_empty() && plan.restart_sinks.is_empty());
        assert!(plan.refusals.is_empty());
        assert_eq!(plan.unchanged, vec!["channel c1", "sink k1"]);
    }

    #[test]
    fn a_source_setting_restarts_the_source_an_interceptor_only_rebinds_it() {
        let port = BASE.replace("port = 4000", "port = 4001");
        let plan = diff(&conf(BASE), &conf(&port));
        assert_eq!(plan.restart_sources.len(), 1);
        assert!(plan.rebind_sources.is_empty());

        let icpt = format!(
            "{BASE}a1.sources.r1.interceptors = i1\na1.sources.r1.interceptors.i1.type = static\n\
             a1.sources.r1.interceptors.i1.key = k\na1.sources.r1.interceptors.i1.value = v\n"
        );
        let plan = diff(&conf(BASE), &conf(&icpt));
        assert!(plan.restart_sources.is_empty());
        assert_eq!(plan.rebind_sources.len(), 1);
        // A different value is a different binding too.
        let plan = diff(&conf(&icpt), &conf(&icpt.replace("value = v", "value = w")));
        assert_eq!(plan.rebind_sources.len(), 1);
    }

    #[test]
    fn a_sink_setting_or_channel_restarts_its_runner() {
        let two = BASE
            .replace("a1.channels = c1", "a1.channels = c1 c2")
            .replace("r1.channels = c1", "r1.channels = c1 c2")
            + "a1.channels.c2.type = memory\n";
        let moved = two.replace("k1.channel = c1", "k1.channel = c2");
        let plan = diff(&conf(&two), &conf(&moved));
        assert_eq!(names(&plan.restart_sinks), vec!["sink k1"]);
        assert_eq!(plan.restart_sinks[0].sinks[0].channel, "c2");
        assert!(plan.start_sinks.is_empty() && plan.stop_sinks.is_empty());
    }

    #[test]
    fn grouping_a_sink_stops_its_lone_runner_and_starts_the_group() {
        let grouped = format!(
            "{BASE}a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1\n\
             a1.sinkgroups.g1.processor.type = failover\n"
        );
        let plan = diff(&conf(BASE), &conf(&grouped));
        assert_eq!(names(&plan.start_sinks), vec!["sink group g1"]);
        assert_eq!(names(&plan.stop_sinks), vec!["sink k1"]);
    }

    #[test]
    fn removals_are_planned_and_a_changed_channel_is_refused() {
        let two = BASE
            .replace("a1.channels = c1", "a1.channels = c1 c2")
            .replace("a1.sinks = k1", "a1.sinks = k1 k2")
            .replace("a1.sources = r1", "a1.sources = r1 r2")
            + "a1.channels.c2.type = memory\na1.sinks.k2.type = null\na1.sinks.k2.channel = c2\n\
               a1.sources.r2.type = seq\na1.sources.r2.channels = c2\n";
        let plan = diff(&conf(&two), &conf(BASE));
        assert_eq!(plan.stop_sources, vec!["r2"]);
        assert_eq!(names(&plan.stop_sinks), vec!["sink k2"]);
        assert_eq!(plan.close_channels, vec!["c2"]);
        assert!(plan.refusals.is_empty());

        let bigger = BASE.replace(
            "c1.type = memory",
            "c1.type = memory\na1.channels.c1.capacity = 5000",
        );
        let plan = diff(&conf(BASE), &conf(&bigger));
        assert_eq!(plan.refusals.len(), 1, "{plan:?}");
        assert!(
            plan.refusals[0].starts_with("channel c1: its memory channel settings changed"),
            "{}",
            plan.refusals[0]
        );
        let file = BASE.replace(
            "c1.type = memory",
            "c1.type = file\na1.channels.c1.checkpointDir = /x/cp\na1.channels.c1.dataDirs = /x/d",
        );
        let plan = diff(&conf(BASE), &conf(&file));
        assert!(
            plan.refusals[0].contains("its type changed from memory to file"),
            "{}",
            plan.refusals[0]
        );
    }
}
