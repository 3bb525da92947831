//! `regex_filter`: keeps (or, with `excludeEvents`, drops) events whose body contains a match.
//! Keys: `regex` (`.*`), `excludeEvents` (false).

use super::Interceptor;
use crate::config::context::Ctx;
use file_channel::Event;

/// The regex filtering interceptor.
#[derive(Clone, Debug)]
pub struct RegexFilter {
    /// The pattern, searched anywhere in the body.
    pub regex: fancy_regex::Regex,
    /// Drop matching events instead of keeping them.
    pub exclude: bool,
}

impl RegexFilter {
    /// Reads `regex` and `excludeEvents`.
    pub fn parse(ctx: &Ctx<'_>) -> Option<Self> {
        let exclude = ctx.bool("excludeEvents", false);
        let pattern = ctx.string_or("regex", ".*");
        let regex = super::compile(ctx, "regex", &pattern)?;
        Some(Self { regex, exclude })
    }
}

impl Interceptor for RegexFilter {
    fn intercept(&self, event: Event) -> Option<Event> {
        let body = String::from_utf8_lossy(&event.body);
        let matched = crate::java_regex::is_match(&self.regex, &body);
        (matched != self.exclude).then_some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn include_and_exclude() {
        let list = entries(&[("regex", "ERR|WARN")]);
        let i = RegexFilter::parse(&ctx(&list)).expect("valid");
        assert!(i.intercept(Event::new("an ERROR here")).is_some());
        assert!(i.intercept(Event::new("all fine")).is_none());

        let list = entries(&[("regex", "^DEBUG"), ("excludeEvents", "true")]);
        let i = RegexFilter::parse(&ctx(&list)).expect("valid");
        assert!(i.intercept(Event::new("DEBUG x")).is_none());
        assert!(i.intercept(Event::new("INFO x")).is_some());

        let list = entries(&[]);
        let i = RegexFilter::parse(&ctx(&list)).expect("valid");
        assert!(
            i.intercept(Event::new("")).is_some(),
            "default .* keeps everything"
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_their_line() {
        let list = entries(&[("regex", "(unclosed")]);
        let c = ctx(&list);
        assert!(RegexFilter::parse(&c).is_none());
        let errs = errors(c);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("f:2: a1.sources.r1.interceptors.i1.regex: invalid regular expression \"(unclosed\": "),
            "{errs:?}"
        );
    }
}
