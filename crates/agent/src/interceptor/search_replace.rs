//! `search_replace`: replaces every match in the body.
//! Keys: `searchPattern` (required), `replaceString` (empty), `charset` (`UTF-8`, the only
//! one supported).
//!
//! `replaceString` uses Java's syntax (`$1`, `${name}`, `\$` for a dollar), translated to the
//! regex crate's, so Flume configurations keep their meaning: in Java `$1a` is group 1
//! followed by `a`, and a group number takes further digits only while it stays a valid group.

use super::Interceptor;
use crate::config::context::Ctx;
use file_channel::Event;

/// The search-and-replace interceptor.
#[derive(Clone, Debug)]
pub struct SearchReplace {
    /// What to find.
    pub search: fancy_regex::Regex,
    /// The replacement, in the regex crate's syntax.
    pub replace: String,
}

impl SearchReplace {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Option<Self> {
        if let Some(cs) = ctx.string("charset") {
            let c = cs.trim().to_ascii_uppercase();
            if c != "UTF-8" && c != "UTF8" {
                ctx.error("charset", format!("only UTF-8 is supported, got \"{cs}\""));
            }
        }
        let replace_java = ctx.string_or("replaceString", "");
        let pattern = ctx.required("searchPattern")?;
        let search = super::compile(ctx, "searchPattern", &pattern)?;
        let replace = match java_replacement(&replace_java, search.captures_len() - 1) {
            Ok(r) => r,
            Err(m) => {
                ctx.error("replaceString", m);
                return None;
            }
        };
        Some(Self { search, replace })
    }
}

/// Translates a Java `Matcher.replaceAll` replacement into the regex crate's syntax.
pub fn java_replacement(java: &str, group_count: usize) -> Result<String, String> {
    let mut out = String::with_capacity(java.len());
    let chars: Vec<char> = java.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = chars
                    .get(i + 1)
                    .ok_or("a replacement cannot end with a backslash")?;
                if *c == '$' {
                    out.push_str("$$");
                } else {
                    out.push(*c);
                }
                i += 2;
            }
            '$' => {
                let next = chars.get(i + 1).ok_or("a replacement cannot end with $")?;
                if *next == '{' {
                    let end = chars[i + 2..]
                        .iter()
                        .position(|c| *c == '}')
                        .ok_or("unterminated ${name} group reference")?;
                    let name: String = chars[i + 2..i + 2 + end].iter().collect();
                    out.push_str(&format!("${{{name}}}"));
                    i += 3 + end;
                } else if let Some(d) = next.to_digit(10) {
                    let mut group = d as usize;
                    if group > group_count {
                        return Err(format!("no group {group} in the search pattern"));
                    }
                    i += 2;
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + d as usize;
                        if longer > group_count {
                            break;
                        }
                        group = longer;
                        i += 1;
                    }
                    out.push_str(&format!("${{{group}}}"));
                } else {
                    return Err(format!("illegal group reference \"${next}\""));
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

impl Interceptor for SearchReplace {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        let body = String::from_utf8_lossy(&event.body);
        match self.search.try_replacen(&body, 0, self.replace.as_str()) {
            Ok(std::borrow::Cow::Owned(s)) => event.body = s.into_bytes(),
            Ok(std::borrow::Cow::Borrowed(_)) => {}
            Err(error) => {
                tracing::warn!(pattern = self.search.as_str(), %error, "regular expression gave up on an event body; left unchanged");
            }
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn run(pairs: &[(&str, &str)], body: &str) -> String {
        let list = entries(pairs);
        let i = SearchReplace::parse(&ctx(&list)).expect("valid");
        String::from_utf8(i.intercept(Event::new(body)).expect("kept").body).expect("utf8")
    }

    #[test]
    fn replaces_all_matches() {
        assert_eq!(
            run(
                &[("searchPattern", "\\d{3}-\\d{4}"), ("replaceString", "XXX")],
                "a 555-1234 b 555-9999"
            ),
            "a XXX b XXX"
        );
        assert_eq!(run(&[("searchPattern", "^#+ *")], "## title"), "title");
    }

    #[test]
    fn java_group_references() {
        assert_eq!(
            run(
                &[
                    ("searchPattern", "(\\w+)@(\\w+)"),
                    ("replaceString", "$2 at $1a \\$")
                ],
                "me@host"
            ),
            "host at mea $"
        );
        assert_eq!(
            run(
                &[
                    ("searchPattern", "(?<user>\\w+)@"),
                    ("replaceString", "${user}:")
                ],
                "me@host"
            ),
            "me:host"
        );
        assert_eq!(java_replacement("$12", 1), Ok("${1}2".into()));
        assert_eq!(java_replacement("$12", 12), Ok("${12}".into()));
        assert!(java_replacement("$2", 1).is_err());
    }

    #[test]
    fn missing_pattern_and_other_charsets_are_refused() {
        let list = entries(&[("charset", "ISO-8859-1")]);
        let c = ctx(&list);
        assert!(SearchReplace::parse(&c).is_none());
        assert_eq!(
            errors(c),
            vec![
                "f:1: a1.sources.r1.interceptors.i1.searchPattern: required key is missing",
                "f:2: a1.sources.r1.interceptors.i1.charset: only UTF-8 is supported, got \"ISO-8859-1\"",
            ]
        );
    }
}
