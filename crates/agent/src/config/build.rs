//! From properties to a checked [`AgentConfig`]: Flume's key structure, every component's
//! keys, the bindings between components, and the checks that span components.
//!
//! Structure, as Flume reads it: `<agent>.sources`, `<agent>.channels`, `<agent>.sinks` and
//! `<agent>.sinkgroups` list component names (whitespace separated); `<agent>.<kind>.<name>.<key>`
//! configures one. A source puts into `channels` (one or more), a sink takes from `channel`
//! (exactly one), a sink group drives `sinks`.
//!
//! Errors (the agent refuses to start; Flume would drop the component, or the event, silently):
//! a missing or unknown `type` (the message lists the known ones); a source without channels
//! or naming an undefined one; a sink without a channel, with two, or naming an undefined one;
//! a group naming an undefined sink, or a sink in two groups; a batch size above the
//! `transactionCapacity` of a channel it is used with; duplicate failover priorities;
//! malformed numbers and booleans; two file channels sharing a directory; two netcat sources
//! on one address; a list naming a component twice; a `${…}` reference that does not resolve
//! ([`super::substitute`]), or a config filter declared wrong ([`super::filters`]); a key
//! with a security meaning (`ssl`, `keystore*`, `encryption.*`, … see [`super::security`])
//! that its component or the agent does not read.
//!
//! Warnings (loaded anyway): unknown keys, components configured but not listed (Flume ignores
//! them too), channels nothing uses, keys given twice.
//!
//! This module reads the channels and sources sections; `sinks` reads the sinks and sink
//! groups, `cross_checks` what spans components (shared directories, ports).

use super::context::{Ctx, Entry};
use super::problem::{Diagnostics, Problem};
use super::registry::{
    resolve, unknown_message, FlumeType, Registration, Resolved, FLUME_ONLY_CHANNELS,
    FLUME_ONLY_INTERCEPTORS, FLUME_ONLY_PROCESSORS, FLUME_ONLY_SELECTORS, FLUME_ONLY_SINKS,
    FLUME_ONLY_SOURCES,
};
use super::security::{unread_key_problem, UnreadKey};
use super::substitute::{self, Lookups};
use super::{
    filters, properties, AgentConfig, ChannelSpec, SinkGroupSpec, SinkSpec, SourceSpec,
    SystemProperties,
};
use crate::channel::{ChannelSettings, CHANNEL_TYPES};
use crate::interceptor::INTERCEPTOR_TYPES;
use crate::processor::{ProcessorSpec, PROCESSOR_TYPES};
use crate::selector::{Selector, SELECTOR_TYPES};
use crate::sink::SINK_TYPES;
use crate::source::{SourceSettings, SOURCE_TYPES};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The four component sections of an agent.
const SECTIONS: [&str; 4] = ["sources", "channels", "sinks", "sinkgroups"];

/// One section: its list key and the keys of each component named under it.
#[derive(Default)]
struct Section<'a> {
    /// The `-D` system properties, handed to every component's context.
    system_properties: SystemProperties,
    list: Option<&'a Entry>,
    names: Vec<String>,
    /// component name → (key relative to the component, entry), in file order.
    keys: BTreeMap<String, Vec<(&'a str, &'a Entry)>>,
}

impl<'a> Section<'a> {
    fn ctx(&self, prefix: &str, name: &str) -> Ctx<'a> {
        let keys = self.keys.get(name).cloned().unwrap_or_default();
        let anchor = keys
            .iter()
            .find(|(k, _)| *k == "type")
            .or(keys.first())
            .map(|(_, e)| e.line)
            .or(self.list.map(|e| e.line))
            .unwrap_or(1);
        Ctx::new(format!("{prefix}{name}."), keys, anchor)
            .with_system_properties(self.system_properties.clone())
    }
}

/// What later checks need to know about a valid channel.
struct ChannelInfo {
    transaction_capacity: u32,
    capacity_line: u32,
}

/// Parses `text` (the file `file`) and checks agent `agent`. `env` looks up environment
/// variables (`${env:NAME}`, and `HOME` for the file channel's default directories); no system
/// properties are set and `external` config filters run their commands.
pub fn build(
    text: &str,
    file: &Path,
    agent: &str,
    env: impl Fn(&str) -> Option<String>,
) -> (Option<AgentConfig>, Diagnostics) {
    let none = BTreeMap::new();
    let lookups = Lookups {
        env: &env,
        system_properties: &none,
        external: &filters::run_external,
    };
    build_with(text, file, agent, &lookups)
}

/// [`build`], with references looked up in `lookups` (environment, `-D` system properties,
/// config filter commands).
pub fn build_with(
    text: &str,
    file: &Path,
    agent: &str,
    lookups: &Lookups<'_>,
) -> (Option<AgentConfig>, Diagnostics) {
    let mut diag = Diagnostics::default();
    let props = match properties::parse(text) {
        Ok(p) => p,
        Err((p, errors)) => {
            for e in errors {
                diag.errors.push(Problem {
                    line: Some(e.line),
                    key: None,
                    message: e.message,
                });
            }
            p
        }
    };
    let prefix = format!("{agent}.");
    for (key, first, later) in &props.duplicates {
        if key.starts_with(&prefix) {
            diag.warn(
                *later,
                key,
                format!("is also set on line {first}; the last value is used"),
            );
        }
    }
    let mine: Vec<_> = props
        .entries
        .iter()
        .filter(|p| p.key.starts_with(&prefix))
        .collect();
    if mine.is_empty() {
        let agents: BTreeSet<&str> = props
            .entries
            .iter()
            .filter_map(|p| {
                let mut parts = p.key.splitn(3, '.');
                let a = parts.next()?;
                let kind = parts.next()?;
                SECTIONS.contains(&kind).then_some(a)
            })
            .collect();
        let found = if agents.is_empty() {
            "it defines no agent".to_owned()
        } else {
            format!(
                "agents defined: {}",
                agents.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        diag.errors.push(Problem {
            line: None,
            key: None,
            message: format!("no agent named \"{agent}\" in this file ({found})"),
        });
        diag.sort();
        return (None, diag);
    }
    let entries = substitute::resolve_agent(&props.entries, &prefix, lookups, &mut diag);
    let system_properties = SystemProperties::new(lookups.system_properties.clone());

    let mut sections: BTreeMap<&str, Section<'_>> = SECTIONS
        .iter()
        .map(|s| {
            let section = Section {
                system_properties: system_properties.clone(),
                ..Section::default()
            };
            (*s, section)
        })
        .collect();
    for e in &entries {
        let rest = &e.key[prefix.len()..];
        let (kind, after) = rest.split_once('.').unwrap_or((rest, ""));
        let Some(section) = sections.get_mut(kind) else {
            // The same rule as a component's unread keys: `a1.ssl = true` is refused.
            match unread_key_problem(rest, &e.value, &format!("agent {agent}")) {
                UnreadKey::Refused(m) => diag.error(e.line, &e.key, m),
                UnreadKey::Ignored(m) => diag.warn(e.line, &e.key, m),
            }
            continue;
        };
        if after.is_empty() {
            section.list = Some(e);
            continue;
        }
        match after.split_once('.') {
            Some((name, sub)) if !name.is_empty() && !sub.is_empty() => {
                section
                    .keys
                    .entry(name.to_owned())
                    .or_default()
                    .push((sub, e));
            }
            _ => diag.warn(
                e.line,
                &e.key,
                format!("unknown key for agent {agent}; it is ignored"),
            ),
        }
    }
    for (kind, section) in sections.iter_mut() {
        let Some(list) = section.list else { continue };
        for name in list.value.split_whitespace() {
            if section.names.iter().any(|n| n == name) {
                diag.error(list.line, &list.key, format!("lists {name} twice"));
            } else {
                section.names.push(name.to_owned());
            }
        }
        if section.names.is_empty() && *kind == "channels" {
            diag.error(
                list.line,
                &list.key,
                "names no channel; an agent needs at least one",
            );
        }
    }
    for (kind, section) in &sections {
        for (name, keys) in &section.keys {
            if !section.names.contains(name) {
                let singular = singular(kind);
                diag.warn(
                    keys[0].1.line,
                    format!("{prefix}{kind}.{name}"),
                    format!("{singular} {name} is configured but not listed in {prefix}{kind}; it is ignored"),
                );
            }
        }
    }
    if sections["channels"].list.is_none() {
        let line = entries.iter().map(|e| e.line).min().unwrap_or(1);
        diag.error(
            line,
            format!("{prefix}channels"),
            "required key is missing: an agent needs at least one channel",
        );
    }

    let home = (lookups.env)("HOME");
    let mut b = Builder {
        prefix,
        diag,
        sections,
        channel_info: BTreeMap::new(),
    };
    let channels = b.channels(home.as_deref());
    let sources = b.sources();
    let sinks = b.sinks();
    let groups = b.groups();
    b.cross_checks(&channels, &sources, &sinks);
    let mut diag = b.diag;
    diag.sort();
    if !diag.is_ok() {
        return (None, diag);
    }
    let config = AgentConfig {
        name: agent.to_owned(),
        file: file.to_owned(),
        channels,
        sources,
        sinks,
        groups,
    };
    (Some(config), diag)
}

fn singular(kind: &str) -> &'static str {
    match kind {
        "sources" => "source",
        "channels" => "channel",
        "sinks" => "sink",
        _ => "sink group",
    }
}

struct Builder<'a> {
    prefix: String,
    diag: Diagnostics,
    sections: BTreeMap<&'static str, Section<'a>>,
    /// Listed channels; `None` for those whose configuration is invalid.
    channel_info: BTreeMap<String, Option<ChannelInfo>>,
}

impl<'a> Builder<'a> {
    fn section_prefix(&self, kind: &str) -> String {
        format!("{}{kind}.", self.prefix)
    }

    /// Resolves `type`; records the problem and returns `None` if it is missing or unknown.
    fn resolve_type<P>(
        ctx: &Ctx<'_>,
        kind: &str,
        known: &'static [Registration<P>],
        flume_only: &'static [FlumeType],
    ) -> Option<&'static Registration<P>> {
        let Some(e) = ctx.get("type") else {
            ctx.error_at(ctx.anchor_line(), "type", "required key is missing");
            return None;
        };
        match resolve(&e.value, known, flume_only) {
            Resolved::Known(a) => Some(a),
            other => {
                ctx.error("type", unknown_message(kind, &e.value, &other, known));
                None
            }
        }
    }

    /// Merges a finished context: errors always; warnings, and the verdicts on keys nobody
    /// read, only if its type was valid (`what` names it). A component without a valid type
    /// is refused by that one error; its other keys are not judged ([`Ctx::finish_refused`]).
    fn merge(&mut self, ctx: Ctx<'_>, what: Option<String>) {
        match what {
            Some(w) => self.diag.extend(ctx.finish(&w)),
            None => self.diag.errors.extend(ctx.finish_refused().errors),
        }
    }

    fn channels(&mut self, home: Option<&str>) -> Vec<ChannelSpec> {
        let prefix = self.section_prefix("channels");
        let names = self.sections["channels"].names.clone();
        let mut out = Vec::new();
        for name in names {
            let ctx = self.sections["channels"].ctx(&prefix, &name);
            let Some(registration) =
                Self::resolve_type(&ctx, "channel", CHANNEL_TYPES, FLUME_ONLY_CHANNELS)
            else {
                self.channel_info.insert(name.clone(), None);
                self.merge(ctx, None);
                continue;
            };
            let settings = (registration.parse)(&ctx, home);
            let info = ChannelInfo {
                transaction_capacity: settings.transaction_capacity(),
                capacity_line: ctx.line("transactionCapacity"),
            };
            // Batch sizes are checked against a transactionCapacity that parsed, even when
            // other keys of the channel are wrong.
            let ok = !ctx.has_error_for("transactionCapacity");
            self.channel_info.insert(name.clone(), ok.then_some(info));
            self.merge(ctx, Some(format!("{} channel {name}", registration.alias)));
            out.push(ChannelSpec { name, settings });
        }
        out
    }

    /// Checks that `name` is a listed channel; records the problem on `sub` otherwise.
    fn check_channel(&self, ctx: &Ctx<'_>, sub: &str, name: &str) -> bool {
        if self.channel_info.contains_key(name) {
            return true;
        }
        let defined: Vec<&str> = self.sections["channels"]
            .names
            .iter()
            .map(String::as_str)
            .collect();
        ctx.error(
            sub,
            format!(
                "channel \"{name}\" is not defined in {}channels (defined: {})",
                self.prefix,
                if defined.is_empty() {
                    "none".to_owned()
                } else {
                    defined.join(" ")
                }
            ),
        );
        false
    }

    /// Records a problem if a batch of `size` does not fit `channel`'s transactions.
    fn check_batch(&self, ctx: &Ctx<'_>, key: &str, size: u64, channel: &str) {
        if let Some(Some(info)) = self.channel_info.get(channel) {
            if size > u64::from(info.transaction_capacity) {
                let shown = if key == "type" {
                    "its batch".to_owned()
                } else {
                    key.to_owned()
                };
                ctx.error(
                    key,
                    format!(
                        "batch size {size} ({shown}) is larger than the transactionCapacity {} of channel {channel} (line {}); a batch must fit in one transaction",
                        info.transaction_capacity, info.capacity_line
                    ),
                );
            }
        }
    }

    fn sources(&mut self) -> Vec<SourceSpec> {
        let prefix = self.section_prefix("sources");
        let names = self.sections["sources"].names.clone();
        let mut out = Vec::new();
        for name in names {
            let ctx = self.sections["sources"].ctx(&prefix, &name);
            let registration = Self::resolve_type(&ctx, "source", SOURCE_TYPES, FLUME_ONLY_SOURCES);
            let channels = ctx.list("channels");
            if !ctx.has("channels") {
                ctx.error_at(
                    ctx.anchor_line(),
                    "channels",
                    "required key is missing: a source puts into at least one channel",
                );
            } else if channels.is_empty() {
                ctx.error("channels", "names no channel");
            }
            let mut seen = BTreeSet::new();
            for c in &channels {
                if !seen.insert(c.as_str()) {
                    ctx.error("channels", format!("lists channel {c} twice"));
                }
                self.check_channel(&ctx, "channels", c);
            }
            let Some(registration) = registration else {
                self.merge(ctx, None);
                continue;
            };
            let alias = registration.alias;
            let selector_type = ctx.string_or("selector.type", "replicating");
            let selector = match resolve(&selector_type, SELECTOR_TYPES, FLUME_ONLY_SELECTORS) {
                Resolved::Known(sel) => (sel.parse)(&ctx, &channels),
                other => {
                    ctx.error(
                        "selector.type",
                        unknown_message("selector", &selector_type, &other, SELECTOR_TYPES),
                    );
                    Selector::Replicating {
                        required: vec![],
                        optional: vec![],
                    }
                }
            };
            let interceptors = self.interceptors(&ctx, &name);
            let settings = (registration.parse)(&ctx);
            let (key, size) = settings.batch_size();
            for c in &channels {
                self.check_batch(&ctx, key, size, c);
            }
            self.merge(ctx, Some(format!("{alias} source {name}")));
            out.push(SourceSpec {
                name,
                channels,
                selector,
                interceptors,
                settings,
            });
        }
        out
    }

    fn interceptors(
        &mut self,
        ctx: &Ctx<'_>,
        source: &str,
    ) -> Vec<std::sync::Arc<dyn crate::interceptor::Interceptor>> {
        let mut out = Vec::new();
        let names = ctx.list("interceptors");
        for name in names {
            let sub_prefix = format!("interceptors.{name}.");
            let keys = ctx.prefixed(&sub_prefix);
            let anchor = keys
                .iter()
                .find(|(k, _)| *k == "type")
                .map(|(_, e)| e.line)
                .unwrap_or_else(|| ctx.line("interceptors"));
            let ictx = Ctx::new(ctx.full_key(&sub_prefix), keys, anchor);
            match Self::resolve_type(
                &ictx,
                "interceptor",
                INTERCEPTOR_TYPES,
                FLUME_ONLY_INTERCEPTORS,
            ) {
                Some(registration) => {
                    if let Some(i) = crate::interceptor::build(registration, &ictx) {
                        out.push(i);
                    }
                    let alias = registration.alias;
                    self.merge(
                        ictx,
                        Some(format!("{alias} interceptor {name} of source {source}")),
                    );
                }
                None => self.merge(ictx, None),
            }
        }
        out
    }
}

mod cross_checks;
mod sinks;

#[cfg(test)]
mod tests;
