//! Channel selectors: which of a source's channels an event must go to (required: a failure
//! fails the put and the client is told) and which it may go to (optional: failures are
//! logged and ignored).
//!
//! - `replicating` (default): every channel is required except those in `selector.optional`.
//! - `multiplexing`: the value of header `selector.header` (default `flume.selector.header`)
//!   picks `selector.mapping.<value>`; a missing or blank header, or a value with no mapping,
//!   picks `selector.default`. `selector.optional.<value>` adds optional channels (minus the
//!   required ones).
//!
//! Without `selector.default`, as in Flume 1.11's `MultiplexingChannelSelector`: an event
//! whose header is missing, blank or unmapped has no required channel; it still goes to the
//! optional channels of its header value, and with none it is dropped (the put succeeds). The
//! configuration gets a warning, and the source counts such events in `EventUnroutedCount`
//! (see [`crate::channel_processor`]). Safer than Flume: every channel named in a selector must
//! be one of the source's channels.
//!
//! Channels are held as indices into the source's channel list.

use crate::config::context::Ctx;
use crate::config::registry::Registration;
use file_channel::Event;
use std::collections::BTreeMap;

/// Parses `selector.*` of a source whose channels are the second argument.
pub type ParseSelector = fn(&Ctx<'_>, &[String]) -> Selector;

/// The selector types we implement (the registration table of channel selectors).
pub const SELECTOR_TYPES: &[Registration<ParseSelector>] = &[
    Registration {
        alias: "replicating",
        classes: &["org.apache.flume.channel.ReplicatingChannelSelector"],
        parse: Selector::parse_replicating,
    },
    Registration {
        alias: "multiplexing",
        classes: &["org.apache.flume.channel.MultiplexingChannelSelector"],
        parse: Selector::parse_multiplexing,
    },
];

/// Flume's default multiplexing header.
pub const DEFAULT_HEADER: &str = "flume.selector.header";

/// A configured selector over the source's channels `0..n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Every channel, some optional.
    Replicating {
        /// Required channels.
        required: Vec<usize>,
        /// Optional channels.
        optional: Vec<usize>,
    },
    /// By header value.
    Multiplexing {
        /// The header looked at.
        header: String,
        /// Required channels per header value.
        mapping: BTreeMap<String, Vec<usize>>,
        /// Optional channels per header value.
        optional: BTreeMap<String, Vec<usize>>,
        /// Required channels when no mapping applies.
        default: Vec<usize>,
    },
}

impl Selector {
    /// Required channels for `event`.
    pub fn required(&self, event: &Event) -> &[usize] {
        match self {
            Self::Replicating { required, .. } => required,
            Self::Multiplexing {
                header,
                mapping,
                default,
                ..
            } => match event.header(header) {
                Some(v) if !v.trim().is_empty() => mapping.get(v).unwrap_or(default),
                _ => default,
            },
        }
    }

    /// Optional channels for `event`.
    pub fn optional(&self, event: &Event) -> &[usize] {
        match self {
            Self::Replicating { optional, .. } => optional,
            Self::Multiplexing {
                header, optional, ..
            } => event
                .header(header)
                .and_then(|v| optional.get(v))
                .map_or(&[], Vec::as_slice),
        }
    }

    /// Parses `selector.*` of a `replicating` selector over the source's `channels`. Problems
    /// are recorded in `ctx`.
    pub fn parse_replicating(ctx: &Ctx<'_>, channels: &[String]) -> Self {
        ctx.mark_used("selector.type");
        let optional = ctx
            .string("selector.optional")
            .map(|v| channel_indices(ctx, channels, "selector.optional", &v))
            .unwrap_or_default();
        let required = (0..channels.len())
            .filter(|i| !optional.contains(i))
            .collect();
        Self::Replicating { required, optional }
    }

    /// Parses `selector.*` of a `multiplexing` selector over the source's `channels`.
    /// Problems are recorded in `ctx`.
    pub fn parse_multiplexing(ctx: &Ctx<'_>, channels: &[String]) -> Self {
        ctx.mark_used("selector.type");
        let resolve = |sub: &str, value: &str| channel_indices(ctx, channels, sub, value);
        let header = ctx.string_or("selector.header", DEFAULT_HEADER);
        let mut mapping = BTreeMap::new();
        for (value, e) in ctx.prefixed("selector.mapping.") {
            let sub = format!("selector.mapping.{value}");
            let chans = resolve(&sub, &e.value);
            if e.value.trim().is_empty() {
                ctx.error(&sub, "maps the header value to no channel");
            }
            mapping.insert(value.to_owned(), chans);
        }
        let default = match ctx.string("selector.default") {
            Some(v) => {
                let d = resolve("selector.default", &v);
                if v.trim().is_empty() {
                    ctx.error("selector.default", "names no channel");
                }
                d
            }
            None => {
                ctx.warn(
                    "selector.type",
                    "multiplexing without selector.default: as in Flume, an event whose header is missing, blank or matches no mapping goes only to the optional channels of its value, or is dropped (counted in the source's EventUnroutedCount)",
                );
                Vec::new()
            }
        };
        let mut optional = BTreeMap::new();
        for (value, e) in ctx.prefixed("selector.optional.") {
            let sub = format!("selector.optional.{value}");
            let required = mapping
                .get(value)
                .filter(|v: &&Vec<usize>| !v.is_empty())
                .unwrap_or(&default);
            let chans: Vec<usize> = resolve(&sub, &e.value)
                .into_iter()
                .filter(|c| !required.contains(c))
                .collect();
            optional.insert(value.to_owned(), chans);
        }
        Self::Multiplexing {
            header,
            mapping,
            optional,
            default,
        }
    }
}

/// The indices in `channels` of the channel names listed in `value` (key `sub`), each once;
/// a name that is not one of them is recorded as a problem.
fn channel_indices(ctx: &Ctx<'_>, channels: &[String], sub: &str, value: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for name in value.split_whitespace() {
        match channels.iter().position(|c| c == name) {
            Some(i) if !out.contains(&i) => out.push(i),
            Some(_) => {}
            None => ctx.error(
                sub,
                format!(
                    "channel \"{name}\" is not one of this source's channels ({})",
                    channels.join(" ")
                ),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::context::test_support::{ctx_under, entries_under};

    fn parse(alias: &str, pairs: &[(&str, &str)], channels: &[&str]) -> (Selector, Vec<String>) {
        let list = entries_under("a1.sources.r1.", pairs);
        let ctx = ctx_under("a1.sources.r1.", &list);
        let channels: Vec<String> = channels.iter().map(|s| (*s).to_owned()).collect();
        let registration = SELECTOR_TYPES
            .iter()
            .find(|t| t.alias == alias)
            .expect("registered");
        let s = (registration.parse)(&ctx, &channels);
        let errs = ctx
            .finish("source r1")
            .errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect();
        (s, errs)
    }

    #[test]
    fn replicating_with_optional() {
        let (s, errs) = parse(
            "replicating",
            &[("selector.optional", "c2")],
            &["c1", "c2", "c3"],
        );
        assert!(errs.is_empty(), "{errs:?}");
        let e = Event::new("x");
        assert_eq!(s.required(&e), &[0, 2]);
        assert_eq!(s.optional(&e), &[1]);
        let (s, _) = parse("replicating", &[], &["c1", "c2"]);
        assert_eq!(s.required(&e), &[0, 1]);
        assert!(s.optional(&e).is_empty());
    }

    #[test]
    fn multiplexing_by_header_with_default_and_optional() {
        let (s, errs) = parse(
            "multiplexing",
            &[
                ("selector.type", "multiplexing"),
                ("selector.header", "state"),
                ("selector.mapping.CZ", "c1"),
                ("selector.mapping.US", "c2 c3"),
                ("selector.default", "c3"),
                ("selector.optional.CZ", "c1 c2"),
                ("selector.optional.XX", "c3 c1"),
            ],
            &["c1", "c2", "c3"],
        );
        assert!(errs.is_empty(), "{errs:?}");
        let ev = |v: &str| Event::new("x").with_header("state", v);
        assert_eq!(s.required(&ev("CZ")), &[0]);
        assert_eq!(
            s.optional(&ev("CZ")),
            &[1],
            "c1 is required, so not optional"
        );
        assert_eq!(s.required(&ev("US")), &[1, 2]);
        assert!(s.optional(&ev("US")).is_empty());
        assert_eq!(s.required(&ev("FR")), &[2], "unmapped value: default");
        assert_eq!(s.required(&ev("  ")), &[2], "blank value: default");
        assert_eq!(s.required(&Event::new("x")), &[2], "no header: default");
        // XX has no mapping, so its required channels are the default (c3).
        assert_eq!(s.optional(&ev("XX")), &[0]);
    }

    #[test]
    fn multiplexing_problems() {
        let (_, errs) = parse(
            "multiplexing",
            &[
                ("selector.type", "multiplexing"),
                ("selector.mapping.A", "c9"),
                ("selector.mapping.B", ""),
            ],
            &["c1"],
        );
        assert_eq!(
            errs,
            vec![
                "f:3: a1.sources.r1.selector.mapping.A: channel \"c9\" is not one of this source's channels (c1)",
                "f:4: a1.sources.r1.selector.mapping.B: maps the header value to no channel",
            ]
        );
    }

    #[test]
    fn multiplexing_without_default_routes_unmatched_events_as_flume_does() {
        let list = entries_under(
            "a1.sources.r1.",
            &[
                ("selector.type", "multiplexing"),
                ("selector.header", "state"),
                ("selector.mapping.CZ", "c1"),
                ("selector.optional.FR", "c2"),
                ("selector.optional.CZ", "c2"),
            ],
        );
        let ctx = ctx_under("a1.sources.r1.", &list);
        let channels = ["c1".to_owned(), "c2".to_owned()];
        let s = Selector::parse_multiplexing(&ctx, &channels);
        let d = ctx.finish("source r1");
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        let w = d.warnings[0].display(std::path::Path::new("f")).to_string();
        assert!(
            w.starts_with(
                "f:2: a1.sources.r1.selector.type: multiplexing without selector.default"
            ),
            "{w}"
        );
        let ev = |v: &str| Event::new("x").with_header("state", v);
        assert_eq!(s.required(&ev("CZ")), &[0]);
        assert_eq!(s.optional(&ev("CZ")), &[1]);
        // Unmapped, but with optional channels: those only.
        assert!(s.required(&ev("FR")).is_empty());
        assert_eq!(s.optional(&ev("FR")), &[1]);
        // Unmapped, no optional channel, no header, blank: nowhere.
        for e in [ev("US"), ev(" "), Event::new("x")] {
            assert!(s.required(&e).is_empty());
            assert!(s.optional(&e).is_empty());
        }
    }
}
