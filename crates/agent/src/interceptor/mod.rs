//! Interceptors: Flume's per-source event rewriters and filters, applied in the order
//! `a1.sources.r1.interceptors` lists them, before the channel selector sees the event.
//!
//! Each module holds one interceptor: its keys and Flume's defaults, and its behaviour.
//! Regular expressions are Java's, through [`crate::java_regex`] (`fancy-regex`, with Java's
//! ASCII `\d \w \s` and `\Q…\E`): look-around and back-references work; the interceptors
//! search the body as Flume's `Matcher.find()` does.
//! Bodies are read as UTF-8; invalid bytes become U+FFFD where a body is rewritten, as Java's
//! `new String(bytes, UTF_8)` does.

pub mod host;
pub mod regex_extractor;
pub mod regex_filter;
pub mod remove_header;
pub mod search_replace;
pub mod static_header;
pub mod timestamp;
pub mod uuid;

use crate::config::context::Ctx;
use crate::config::registry::Registration;
use file_channel::Event;
use std::sync::Arc;

/// Rewrites or drops one event at a time.
pub trait Interceptor: Send + Sync + std::fmt::Debug {
    /// The event to pass on, or `None` to drop it.
    fn intercept(&self, event: Event) -> Option<Event>;
}

/// Builds an interceptor from its keys; `None` when its keys are wrong (the problems are
/// recorded in the context).
pub type BuildInterceptor = fn(&Ctx<'_>) -> Option<Arc<dyn Interceptor>>;

/// The interceptor types we implement (the registration table of interceptors).
pub const INTERCEPTOR_TYPES: &[Registration<BuildInterceptor>] = &[
    Registration {
        alias: "timestamp",
        classes: &["org.apache.flume.interceptor.TimestampInterceptor$Builder"],
        parse: |ctx| Some(Arc::new(timestamp::Timestamp::parse(ctx))),
    },
    Registration {
        alias: "host",
        classes: &["org.apache.flume.interceptor.HostInterceptor$Builder"],
        parse: |ctx| Some(Arc::new(host::Host::parse(ctx))),
    },
    Registration {
        alias: "static",
        classes: &["org.apache.flume.interceptor.StaticInterceptor$Builder"],
        parse: |ctx| Some(Arc::new(static_header::Static::parse(ctx))),
    },
    Registration {
        alias: "remove_header",
        classes: &["org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder"],
        parse: |ctx| remove_header::RemoveHeader::parse(ctx).map(|i| Arc::new(i) as _),
    },
    Registration {
        alias: "search_replace",
        classes: &["org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder"],
        parse: |ctx| search_replace::SearchReplace::parse(ctx).map(|i| Arc::new(i) as _),
    },
    Registration {
        alias: "regex_filter",
        classes: &["org.apache.flume.interceptor.RegexFilteringInterceptor$Builder"],
        parse: |ctx| regex_filter::RegexFilter::parse(ctx).map(|i| Arc::new(i) as _),
    },
    Registration {
        alias: "regex_extractor",
        classes: &["org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"],
        parse: |ctx| regex_extractor::RegexExtractor::parse(ctx).map(|i| Arc::new(i) as _),
    },
    Registration {
        alias: "uuid",
        classes: &["org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder"],
        parse: |ctx| Some(Arc::new(uuid::Uuid::parse(ctx))),
    },
];

/// Builds the interceptor `registration` from its keys; `None` if a problem was recorded in
/// `ctx`.
pub fn build(
    registration: &Registration<BuildInterceptor>,
    ctx: &Ctx<'_>,
) -> Option<Arc<dyn Interceptor>> {
    ctx.mark_used("type");
    let built = (registration.parse)(ctx);
    if ctx.has_errors() {
        None
    } else {
        built
    }
}

/// Runs `events` through `chain` in order, dropping what an interceptor drops.
pub fn intercept_all(chain: &[Arc<dyn Interceptor>], events: Vec<Event>) -> Vec<Event> {
    if chain.is_empty() {
        return events;
    }
    events
        .into_iter()
        .filter_map(|e| chain.iter().try_fold(e, |e, i| i.intercept(e)))
        .collect()
}

/// Compiles the Java pattern `pattern` of key `sub`, recording a problem on that key if it
/// does not compile.
pub(crate) fn compile(ctx: &Ctx<'_>, sub: &str, pattern: &str) -> Option<fancy_regex::Regex> {
    on_key(ctx, sub, crate::java_regex::compile(pattern))
}

/// [`compile`] for a pattern that must match a whole string (Java's `matches()`).
pub(crate) fn compile_whole(ctx: &Ctx<'_>, sub: &str, pattern: &str) -> Option<fancy_regex::Regex> {
    on_key(ctx, sub, crate::java_regex::compile_whole(pattern))
}

fn on_key(
    ctx: &Ctx<'_>,
    sub: &str,
    compiled: Result<fancy_regex::Regex, crate::java_regex::PatternError>,
) -> Option<fancy_regex::Regex> {
    compiled.map_err(|e| ctx.error(sub, e.to_string())).ok()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A context over literal keys for interceptor tests.
    use crate::config::context::test_support::{ctx_under, entries_under};
    use crate::config::context::{Ctx, Entry};

    /// Entries for `pairs` under `a1.sources.r1.interceptors.i1.`, on lines 2, 3, ...
    pub fn entries(pairs: &[(&str, &str)]) -> Vec<Entry> {
        entries_under("a1.sources.r1.interceptors.i1.", pairs)
    }

    /// A context over `list`.
    pub fn ctx(list: &[Entry]) -> Ctx<'_> {
        ctx_under("a1.sources.r1.interceptors.i1.", list)
    }

    /// The errors of a finished context, as `f:line: key: message`.
    pub fn errors(ctx: Ctx<'_>) -> Vec<String> {
        ctx.finish("interceptor i1")
            .errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn chain_applies_in_order_and_drops() {
        let list = entries(&[("regex", "^keep"), ("key", "k"), ("value", "v")]);
        let c = ctx(&list);
        let registered = |alias: &str| {
            INTERCEPTOR_TYPES
                .iter()
                .find(|t| t.alias == alias)
                .expect("registered")
        };
        let filter = build(registered("regex_filter"), &c).expect("valid");
        let stat = build(registered("static"), &c).expect("valid");
        let out = intercept_all(
            &[filter, stat],
            vec![
                Event::new("keep 1"),
                Event::new("drop"),
                Event::new("keep 2"),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].header("k"), Some("v"));
        assert_eq!(out[1].body, b"keep 2");
    }
}
