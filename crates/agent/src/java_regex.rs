//! Java regular expressions (`java.util.regex.Pattern`), as Flume configurations write them,
//! compiled with `fancy-regex`.
//!
//! `fancy-regex` gives what Rust's `regex` lacks and Flume users write: look-ahead and
//! look-behind, back-references (`\1`, `\k<name>`), atomic groups and possessive quantifiers.
//! Where Java and `fancy-regex` read the same text differently, the pattern is translated
//! first ([`translate`]):
//!
//! - `\Q…\E` quotes everything between (to the end of the pattern without `\E`);
//! - `\d \D \w \W \s \S` are ASCII-only in Java (without `(?U)`), Unicode in Rust: they become
//!   the ASCII classes Java means (`\d` = `[0-9]`, `\w` = `[a-zA-Z_0-9]`, `\s` =
//!   `[ \t\n\x0B\f\r]`), inside and outside brackets.
//!
//! Whole-string matching (Java's `Matcher.matches()`, which Flume uses for file names in
//! `TAILDIR` and `spooldir`) is [`compile_whole`]; substring search (`find()`, what the
//! interceptors use) is [`compile`]. The `\\` of a `.properties` file is undone by the
//! configuration reader before a pattern gets here, as Java's `Properties.load` does.
//!
//! Not translated (documented in docs/agent.md): Java's `.` and `$` also stop at `\r`,
//! `\u0085`, `\u2028` and `\u2029`, where Rust's stop at `\n` only; `(?U)` and other Java-only
//! flags are refused by the compiler. A match that exceeds `fancy-regex`'s backtracking limit
//! (Java would run on, possibly for hours) is an error at match time that callers treat as no
//! match, with a warning.

use std::fmt;

/// A pattern that does not compile: the pattern and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as configured.
    pub pattern: String,
    /// The compiler's reason.
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid regular expression \"{}\": {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

/// Java's `\d`, `\w`, `\s` as the contents of a character class.
fn ascii_class_body(c: char) -> Option<&'static str> {
    match c.to_ascii_lowercase() {
        'd' => Some("0-9"),
        'w' => Some("a-zA-Z_0-9"),
        's' => Some(" \\t\\n\\x0B\\f\\r"),
        _ => None,
    }
}

/// Rewrites a Java pattern into `fancy-regex` syntax with the same meaning (see the module
/// documentation for what is rewritten).
pub fn translate(java: &str) -> String {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::with_capacity(java.len() + 8);
    // Depth of `[` … `]` brackets (Java nests them: `[a-z&&[^b]]`).
    let mut class_depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let n = chars[i + 1];
                if n == 'Q' {
                    let start = i + 2;
                    let mut end = start;
                    while end < chars.len()
                        && !(chars[end] == '\\' && chars.get(end + 1) == Some(&'E'))
                    {
                        end += 1;
                    }
                    let literal: String = chars[start..end].iter().collect();
                    out.push_str(&fancy_regex::escape(&literal));
                    i = if end < chars.len() { end + 2 } else { end };
                    continue;
                }
                if let Some(body) = ascii_class_body(n) {
                    let negated = n.is_ascii_uppercase();
                    match (class_depth > 0, negated) {
                        (true, false) => out.push_str(body),
                        _ => {
                            out.push('[');
                            if negated {
                                out.push('^');
                            }
                            out.push_str(body);
                            out.push(']');
                        }
                    }
                } else {
                    out.push('\\');
                    out.push(n);
                }
                i += 2;
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                i += 1;
                // A `^` right after the bracket belongs to it.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn build(pattern: &str, translated: &str) -> Result<fancy_regex::Regex, PatternError> {
    fancy_regex::Regex::new(translated).map_err(|e| PatternError {
        pattern: pattern.to_owned(),
        reason: e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned(),
    })
}

/// Compiles a Java pattern for searching (Java's `Matcher.find()`).
pub fn compile(java: &str) -> Result<fancy_regex::Regex, PatternError> {
    build(java, &translate(java))
}

/// Compiles a Java pattern that must match a whole string (Java's `Matcher.matches()`).
pub fn compile_whole(java: &str) -> Result<fancy_regex::Regex, PatternError> {
    build(java, &format!("\\A(?:{})\\z", translate(java)))
}

/// Whether `re` matches in `text`; a match that fails at run time (the backtracking limit) is
/// logged and counts as no match.
pub fn is_match(re: &fancy_regex::Regex, text: &str) -> bool {
    re.is_match(text).unwrap_or_else(|error| {
        tracing::warn!(pattern = re.as_str(), %error, "regular expression gave up on an input; treated as no match");
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(p: &str, text: &str) -> bool {
        is_match(&compile(p).expect("compiles"), text)
    }

    #[test]
    fn look_around_and_back_references_work() {
        assert!(finds(r"(?<=user=)\w+", "user=bob"));
        assert!(!finds(r"(?<!no )error", "no error"));
        assert!(finds(r"foo(?=bar)", "foobar"));
        assert!(!finds(r"foo(?!bar)", "foobar"));
        assert!(finds(r"(\w+) \1", "hello hello"));
        assert!(!finds(r"(\w+) \1\b", "hello help"));
        assert!(finds(r"(?<tag>\w+)=\k<tag>", "a=a"));
        assert!(finds(r"(?>a+)b", "aaab"));
        assert!(!finds(r"a*+a", "aaa"), "possessive: gives nothing back");
    }

    #[test]
    fn java_classes_are_ascii() {
        assert!(
            !finds(r"^\d$", "٣"),
            "Arabic-Indic digit is not \\d in Java"
        );
        assert!(finds(r"^\d$", "3"));
        assert!(!finds(r"^\w+$", "é"));
        assert!(finds(r"^\W$", "é"));
        assert!(!finds(r"^\s$", "\u{a0}"));
        assert!(finds(r"^[\w.]+$", "a_b.c"));
        assert!(!finds(r"^[\w.]+$", "é"));
        assert!(finds(r"^[^\d]+$", "abc"));
        assert!(finds(r"^[\D]+$", "abc"));
        assert!(!finds(r"^[\D]+$", "a1"));
        assert!(finds(r"^[a-z&&[^b]]+$", "ac"));
        assert!(!finds(r"^[a-z&&[^b]]+$", "ab"));
    }

    #[test]
    fn quoting() {
        assert!(finds(r"\Qa.b*\E+", "a.b*a.b*"));
        assert!(!finds(r"\Qa.b\E", "axb"));
        assert!(finds(r"x\Q[y", "x[y"), "unterminated \\Q quotes to the end");
        assert_eq!(translate(r"\Q\E"), "");
    }

    #[test]
    fn whole_string_versus_search() {
        let whole = compile_whole(r"app\.log|other").expect("compiles");
        assert!(is_match(&whole, "app.log"));
        assert!(is_match(&whole, "other"));
        assert!(!is_match(&whole, "app.log.1"));
        assert!(!is_match(&whole, "xother"));
        assert!(finds(r"app\.log", "app.log.1"));
    }

    #[test]
    fn a_bad_pattern_names_itself() {
        let e = compile("(unclosed").expect_err("refused");
        assert_eq!(e.pattern, "(unclosed");
        assert!(
            e.to_string()
                .starts_with("invalid regular expression \"(unclosed\": "),
            "{e}"
        );
    }
}
