//! A parser for Java `.properties` files, exactly as `java.util.Properties.load` reads them,
//! keeping the line each property starts on so every later problem can name `file:line`.
//!
//! The syntax, as Java defines it:
//! - A *natural line* ends at `\n`, `\r` or `\r\n`. A *logical line* is one natural line, or
//!   several joined by a backslash at the end (an odd number of trailing backslashes); the
//!   leading whitespace of each continuation line is dropped.
//! - Whitespace is space, tab and form feed. Blank lines are skipped. A line whose first
//!   non-whitespace character is `#` or `!` is a comment; a comment cannot be continued.
//! - The key runs from the first non-whitespace character to the first unescaped `=`, `:` or
//!   whitespace. Whitespace, then at most one `=` or `:`, then whitespace separate it from the
//!   value, which runs to the end of the logical line (trailing whitespace included).
//! - In keys and values `\t`, `\n`, `\r`, `\f` are control characters, `\uXXXX` is a UTF-16
//!   code unit (surrogate pairs combine), and a backslash before any other character stands for
//!   that character.
//! - A key given twice keeps its last value; we also report the repetition (see
//!   [`Properties::duplicates`]).
//!
//! Differences from Java: the file is read as UTF-8 (Flume reads it with the platform charset,
//! which is UTF-8 on every current Linux); a UTF-8 byte-order mark at the start is skipped (Java
//! would make it part of the first key, which then silently matches nothing); and a malformed `\u` escape or an unpaired surrogate
//! is reported with its line instead of aborting the whole load with an exception.

/// One property: key, value and the 1-based line its logical line starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// The key, escapes resolved.
    pub key: String,
    /// The value, escapes resolved, trailing whitespace kept.
    pub value: String,
    /// The line the property starts on (1-based).
    pub line: u32,
}

/// A syntax error: only escapes can be malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    /// The line the logical line starts on.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

/// The parsed file: every property in file order (a repeated key appears once, with its last
/// value and line), plus the repetitions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// Properties in the order their keys first appear.
    pub entries: Vec<Property>,
    /// Keys given more than once: (key, earlier line, later line).
    pub duplicates: Vec<(String, u32, u32)>,
}

impl Properties {
    /// The property for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Property> {
        self.entries.iter().find(|p| p.key == key)
    }
}

/// U+FEFF, which editors on some systems write at the start of a UTF-8 file.
const BYTE_ORDER_MARK: char = '\u{feff}';

/// Parses a whole file. Every malformed escape is reported; the properties that parsed are
/// returned in `Err` too so a validator can go on looking for other problems.
pub fn parse(text: &str) -> Result<Properties, (Properties, Vec<SyntaxError>)> {
    let text = text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(text);
    let mut props = Properties::default();
    let mut errors = Vec::new();
    for (line, raw) in logical_lines(text) {
        let (raw_key, raw_value) = split_key_value(&raw);
        let key = unescape(raw_key);
        let value = unescape(raw_value);
        match (key, value) {
            (Ok(key), Ok(value)) => {
                if let Some(existing) = props.entries.iter_mut().find(|p| p.key == key) {
                    props.duplicates.push((key, existing.line, line));
                    existing.value = value;
                    existing.line = line;
                } else {
                    props.entries.push(Property { key, value, line });
                }
            }
            (Err(message), _) | (_, Err(message)) => errors.push(SyntaxError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(props)
    } else {
        Err((props, errors))
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Splits `text` into logical lines with the line number each starts on. Continuation
/// backslashes are removed; other escapes are left for [`unescape`].
fn logical_lines(text: &str) -> Vec<(u32, String)> {
    let naturals = natural_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < naturals.len() {
        let start_line = i as u32 + 1;
        let first = naturals[i].trim_start_matches(is_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut piece = first;
        loop {
            if ends_with_continuation(piece) && i < naturals.len() {
                logical.push_str(&piece[..piece.len() - 1]);
                // The continuation's leading whitespace is skipped; an empty continuation line
                // ends the logical line (Java reads its line terminator as the end).
                piece = naturals[i].trim_start_matches(is_ws);
                i += 1;
                continue;
            }
            if ends_with_continuation(piece) {
                // A backslash at the very end of the file is dropped.
                logical.push_str(&piece[..piece.len() - 1]);
            } else {
                logical.push_str(piece);
            }
            break;
        }
        out.push((start_line, logical));
    }
    out
}

/// Natural lines: split at `\r\n`, `\n` or `\r`, terminators removed.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Whether the line ends in an odd number of backslashes.
fn ends_with_continuation(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line into raw (still escaped) key and value, as Java's `load0` does.
fn split_key_value(line: &str) -> (&str, &str) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let at = |i: usize| chars.get(i).map_or(line.len(), |c| c.0);
    let mut escaped = false;
    let mut has_sep = false;
    let mut key_len = chars.len();
    let mut value_start = chars.len();
    for (i, &(_, c)) in chars.iter().enumerate() {
        if !escaped && (c == '=' || c == ':') {
            key_len = i;
            value_start = i + 1;
            has_sep = true;
            break;
        }
        if !escaped && is_ws(c) {
            key_len = i;
            value_start = i + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    while let Some(&(_, c)) = chars.get(value_start) {
        if !is_ws(c) {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (&line[..at(key_len)], &line[at(value_start)..])
}

/// Resolves escapes: `\t \n \r \f`, `\uXXXX` (with surrogate pairs), `\x` → `x`.
fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let mut chars = s.chars().peekable();
    let flush = |units: &mut Vec<u16>, out: &mut String| -> Result<(), String> {
        if units.is_empty() {
            return Ok(());
        }
        let decoded = String::from_utf16(units).map_err(|_| {
            format!(
                "\\u{} is an unpaired UTF-16 surrogate",
                units
                    .iter()
                    .map(|u| format!("{u:04X}"))
                    .collect::<Vec<_>>()
                    .join("\\u")
            )
        })?;
        out.push_str(&decoded);
        units.clear();
        Ok(())
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut units, &mut out)?;
            out.push(c);
            continue;
        }
        let Some(next) = chars.next() else {
            break; // a lone trailing backslash stands for nothing
        };
        if next == 'u' {
            let hex: String = chars.by_ref().take(4).collect();
            let unit = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(&hex, 16).ok())
                .flatten()
                .ok_or_else(|| format!("malformed \\uxxxx escape \"\\u{hex}\""))?;
            units.push(unit);
            continue;
        }
        flush(&mut units, &mut out)?;
        out.push(match next {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\u{c}',
            other => other,
        });
    }
    flush(&mut units, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, u32)> {
        parse(text)
            .expect("parses")
            .entries
            .into_iter()
            .map(|p| (p.key, p.value, p.line))
            .collect()
    }

    fn one(text: &str) -> (String, String) {
        let v = kv(text);
        assert_eq!(v.len(), 1, "{v:?}");
        (v[0].0.clone(), v[0].1.clone())
    }

    #[test]
    fn separators_equals_colon_and_whitespace() {
        assert_eq!(one("a=b"), ("a".into(), "b".into()));
        assert_eq!(one("a:b"), ("a".into(), "b".into()));
        assert_eq!(one("a b"), ("a".into(), "b".into()));
        assert_eq!(one("a \t = \t b"), ("a".into(), "b".into()));
        assert_eq!(one("a\tb"), ("a".into(), "b".into()));
        assert_eq!(one("  a = b"), ("a".into(), "b".into()));
        // Only one separator is consumed; the second belongs to the value.
        assert_eq!(one("a==b"), ("a".into(), "=b".into()));
        assert_eq!(one("a = :b"), ("a".into(), ":b".into()));
        assert_eq!(one("a : = b"), ("a".into(), "= b".into()));
        assert_eq!(one("a b=c"), ("a".into(), "b=c".into()));
    }

    #[test]
    fn empty_values_and_keys_without_values() {
        assert_eq!(one("a="), ("a".into(), "".into()));
        assert_eq!(one("a"), ("a".into(), "".into()));
        assert_eq!(one("a =  "), ("a".into(), "".into()));
        assert_eq!(one("a = ="), ("a".into(), "=".into()));
        assert_eq!(one("a =="), ("a".into(), "=".into()));
    }

    #[test]
    fn trailing_whitespace_of_values_is_kept() {
        assert_eq!(one("a = b  "), ("a".into(), "b  ".into()));
    }

    #[test]
    fn comments_and_blank_lines() {
        let v = kv("# comment\n! also a comment\n   # indented comment\n\n  \t\na = 1\n");
        assert_eq!(v, vec![("a".into(), "1".into(), 6)]);
        // A comment marker inside a value is part of the value.
        assert_eq!(
            one("a = b # not a comment"),
            ("a".into(), "b # not a comment".into())
        );
    }

    #[test]
    fn a_comment_cannot_be_continued() {
        let v = kv("# comment \\\na = 1");
        assert_eq!(v, vec![("a".into(), "1".into(), 2)]);
    }

    #[test]
    fn continuation_lines_join_and_skip_leading_whitespace() {
        let v = kv("a = one, \\\n    two, \\\n\tthree\nb = 2\n");
        assert_eq!(
            v,
            vec![
                ("a".into(), "one, two, three".into(), 1),
                ("b".into(), "2".into(), 4)
            ]
        );
    }

    #[test]
    fn a_continuation_can_start_with_a_comment_marker() {
        assert_eq!(one("a = x\\\n  # y"), ("a".into(), "x# y".into()));
    }

    #[test]
    fn an_even_number_of_backslashes_does_not_continue() {
        let v = kv("a = x\\\\\nb = y");
        assert_eq!(
            v,
            vec![("a".into(), "x\\".into(), 1), ("b".into(), "y".into(), 2)]
        );
    }

    #[test]
    fn an_empty_continuation_line_ends_the_value() {
        let v = kv("a = x\\\n\nb = y");
        assert_eq!(
            v,
            vec![("a".into(), "x".into(), 1), ("b".into(), "y".into(), 3)]
        );
    }

    #[test]
    fn a_backslash_at_end_of_file_is_dropped() {
        assert_eq!(one("a = x\\"), ("a".into(), "x".into()));
    }

    #[test]
    fn line_terminators_cr_lf_and_crlf() {
        let v = kv("a=1\r\nb=2\rc=3\nd=4");
        let lines: Vec<u32> = v.iter().map(|e| e.2).collect();
        assert_eq!(lines, vec![1, 2, 3, 4]);
        let v = kv("a = x\\\r\n  y\r\nb=2");
        assert_eq!(
            v,
            vec![("a".into(), "xy".into(), 1), ("b".into(), "2".into(), 3)]
        );
    }

    #[test]
    fn escapes_in_keys_and_values() {
        assert_eq!(one("a\\=b = c"), ("a=b".into(), "c".into()));
        assert_eq!(one("a\\:b:c"), ("a:b".into(), "c".into()));
        assert_eq!(one("a\\ b = c"), ("a b".into(), "c".into()));
        assert_eq!(
            one("k = \\tx\\ny\\rz\\f"),
            ("k".into(), "\tx\ny\rz\u{c}".into())
        );
        assert_eq!(one("k = \\q\\\\"), ("k".into(), "q\\".into()));
        assert_eq!(one("k = \\u0041\\u00e9"), ("k".into(), "Aé".into()));
        assert_eq!(one("k = \\uD83D\\uDE00"), ("k".into(), "😀".into()));
        // An escaped leading space keeps it in the value.
        assert_eq!(one("k = \\  x"), ("k".into(), "  x".into()));
        assert_eq!(one("k = é ü"), ("k".into(), "é ü".into()));
    }

    #[test]
    fn malformed_unicode_escapes_are_reported_with_their_line() {
        let (props, errors) = parse("a = 1\nb = \\u12G4\nc = \\uD83D\nd = 4").unwrap_err();
        assert_eq!(
            errors,
            vec![
                SyntaxError {
                    line: 2,
                    message: "malformed \\uxxxx escape \"\\u12G4\"".into()
                },
                SyntaxError {
                    line: 3,
                    message: "\\uD83D is an unpaired UTF-16 surrogate".into()
                },
            ]
        );
        let keys: Vec<&str> = props.entries.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["a", "d"]);
    }

    #[test]
    fn duplicates_keep_the_last_value_and_are_reported() {
        let p = parse("a = 1\nb = 2\na = 3\n").expect("parses");
        assert_eq!(
            p.get("a").map(|p| (p.value.as_str(), p.line)),
            Some(("3", 3))
        );
        assert_eq!(p.duplicates, vec![("a".to_owned(), 1, 3)]);
    }

    #[test]
    fn line_numbers_count_continued_and_skipped_lines() {
        let v = kv("# c\n\na = 1 \\\n 2 \\\n 3\n\n# d\nb = 4\n");
        assert_eq!(
            v,
            vec![("a".into(), "1 2 3".into(), 3), ("b".into(), "4".into(), 8)]
        );
    }
}
