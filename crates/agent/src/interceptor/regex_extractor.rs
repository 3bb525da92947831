//! `regex_extractor`: copies the groups of the first match in the body into headers.
//! Keys: `regex` (required), `serializers` (required: space-separated names), and for each name
//! `serializers.<name>.name` (the header, required) and `serializers.<name>.type` (Flume's
//! `org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer`, the
//! default, also spelled `passthrough`). Group *n* goes to the *n*-th serializer; groups beyond
//! the serializers, and groups that did not take part in the match, are skipped.
//!
//! Flume's `RegexExtractorInterceptorMillisSerializer` (Joda date patterns) is not supported;
//! a configuration naming it is refused.

use super::Interceptor;
use crate::config::context::Ctx;
use crate::event::set_header;
use file_channel::Event;

const PASS_THROUGH: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer";
const MILLIS: &str = "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer";

/// The regex extractor interceptor.
#[derive(Clone, Debug)]
pub struct RegexExtractor {
    /// The pattern.
    pub regex: fancy_regex::Regex,
    /// Header names for groups 1, 2, ...
    pub headers: Vec<String>,
}

impl RegexExtractor {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Option<Self> {
        let pattern = ctx.required("regex");
        let names = ctx.list("serializers");
        if names.is_empty() {
            if ctx.has("serializers") {
                ctx.error("serializers", "must name at least one serializer");
            } else {
                ctx.error_at(ctx.anchor_line(), "serializers", "required key is missing");
            }
        }
        let mut headers = Vec::new();
        for n in &names {
            let ty_key = format!("serializers.{n}.type");
            if let Some(ty) = ctx.string(&ty_key) {
                let t = ty.trim();
                if t == MILLIS {
                    ctx.error(&ty_key, "the millis serializer (Joda date patterns) is not supported; use the default pass-through serializer");
                } else if t != PASS_THROUGH && !t.eq_ignore_ascii_case("passthrough") {
                    ctx.error(
                        &ty_key,
                        format!(
                            "unknown serializer type \"{t}\"; known: passthrough ({PASS_THROUGH})"
                        ),
                    );
                }
            }
            if let Some(h) = ctx.required(&format!("serializers.{n}.name")) {
                headers.push(h);
            }
        }
        let regex = super::compile(ctx, "regex", &pattern?)?;
        (!ctx.has_errors()).then_some(Self { regex, headers })
    }
}

impl Interceptor for RegexExtractor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        let body = String::from_utf8_lossy(&event.body).into_owned();
        let caps = self.regex.captures(&body).unwrap_or_else(|error| {
            tracing::warn!(pattern = self.regex.as_str(), %error, "regular expression gave up on an event body; no header extracted");
            None
        });
        if let Some(caps) = caps {
            for (i, header) in self.headers.iter().enumerate() {
                if let Some(m) = caps.get(i + 1) {
                    set_header(&mut event, header, m.as_str().to_owned());
                }
            }
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn groups_become_headers() {
        let list = entries(&[
            ("regex", "(\\d+):(\\d+):(\\d+)"),
            ("serializers", "s1 s2"),
            ("serializers.s1.name", "one"),
            ("serializers.s2.name", "two"),
            ("serializers.s2.type", PASS_THROUGH),
        ]);
        let i = RegexExtractor::parse(&ctx(&list)).expect("valid");
        let e = i.intercept(Event::new("at 1:2:3 and 4:5:6")).expect("kept");
        assert_eq!(e.header("one"), Some("1"));
        assert_eq!(e.header("two"), Some("2"));
        assert_eq!(e.headers.len(), 2, "group 3 has no serializer");
        let e = i.intercept(Event::new("no digits")).expect("kept");
        assert!(e.headers.is_empty());
    }

    #[test]
    fn refuses_missing_keys_and_the_millis_serializer() {
        let list = entries(&[
            ("regex", "(x)"),
            ("serializers", "s1"),
            ("serializers.s1.type", MILLIS),
        ]);
        let c = ctx(&list);
        assert!(RegexExtractor::parse(&c).is_none());
        assert_eq!(
            errors(c),
            vec![
                "f:1: a1.sources.r1.interceptors.i1.serializers.s1.name: required key is missing",
                "f:4: a1.sources.r1.interceptors.i1.serializers.s1.type: the millis serializer (Joda date patterns) is not supported; use the default pass-through serializer",
            ]
        );
    }
}
