//! `remove_header`: removes headers by name, by list, or by a pattern matching the whole name.
//! Keys: `withName`, `fromList`, `fromListSeparator` (`\s*,\s*`), `matching`.

use super::Interceptor;
use crate::config::context::Ctx;
use file_channel::Event;

/// The remove-header interceptor.
#[derive(Clone, Debug)]
pub struct RemoveHeader {
    /// Remove this header.
    pub with_name: Option<String>,
    /// Remove these headers.
    pub from_list: Vec<String>,
    /// Remove headers whose whole name matches.
    pub matching: Option<fancy_regex::Regex>,
}

impl RemoveHeader {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Option<Self> {
        let with_name = ctx.string("withName");
        let separator = ctx.string_or("fromListSeparator", "\\s*,\\s*");
        let sep = super::compile(ctx, "fromListSeparator", &separator);
        let from_list = match (ctx.string("fromList"), &sep) {
            (Some(list), Some(sep)) => sep
                .split(&list)
                .filter_map(Result::ok)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let matching = match ctx.string("matching") {
            Some(p) => Some(super::compile_whole(ctx, "matching", &p)?),
            None => None,
        };
        sep?;
        Some(Self {
            with_name,
            from_list,
            matching,
        })
    }
}

impl Interceptor for RemoveHeader {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        event.headers.retain(|(k, _)| {
            let named = self.with_name.as_deref() == Some(k.as_str());
            let listed = self.from_list.iter().any(|l| l == k);
            let matched = self
                .matching
                .as_ref()
                .is_some_and(|r| crate::java_regex::is_match(r, k));
            !(named || listed || matched)
        });
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn by_name_list_and_full_match() {
        let list = entries(&[
            ("withName", "a"),
            ("fromList", "b , c,d"),
            ("matching", "tmp.*"),
        ]);
        let i = RemoveHeader::parse(&ctx(&list)).expect("valid");
        let e = Event::new("x")
            .with_header("a", "1")
            .with_header("b", "2")
            .with_header("c", "3")
            .with_header("d", "4")
            .with_header("tmp_x", "5")
            .with_header("x_tmp", "6")
            .with_header("keep", "7");
        let out = i.intercept(e).expect("kept");
        let keys: Vec<&str> = out.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["x_tmp", "keep"]);
    }

    #[test]
    fn custom_separator() {
        let list = entries(&[("fromList", "a;b"), ("fromListSeparator", ";")]);
        let i = RemoveHeader::parse(&ctx(&list)).expect("valid");
        let out = i
            .intercept(
                Event::new("x")
                    .with_header("a", "1")
                    .with_header("b", "2")
                    .with_header("c", "3"),
            )
            .expect("kept");
        assert_eq!(out.headers, vec![("c".to_owned(), "3".to_owned())]);
    }
}
