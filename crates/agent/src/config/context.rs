//! [`Ctx`]: the keys of one component (`a1.sources.r1.*`), with typed getters that record a
//! located problem instead of failing, and that remember which keys were read so the rest can
//! be reported as unknown.
//!
//! Getters take the key relative to the component (`"port"`, `"sink.batchSize"`); problems
//! name the full key and its line, or for a missing key the line of the component's `type`.
//! Numbers are parsed like Flume's `Context.getLong` (surrounding whitespace ignored, optional
//! sign, decimal digits only); booleans must be `true` or `false` (any case) where Flume would
//! read every other word as `false`.

use super::problem::Diagnostics;
use super::security::{unread_key_problem, UnreadKey};
use super::SystemProperties;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;

/// One property of the agent, after `${…}` substitution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The full key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Its line.
    pub line: u32,
}

/// The keys of one component and the problems found reading them.
#[derive(Debug)]
pub struct Ctx<'a> {
    prefix: String,
    entries: Vec<(&'a str, &'a Entry)>,
    anchor_line: u32,
    used: RefCell<BTreeSet<String>>,
    diag: RefCell<Diagnostics>,
    system_properties: SystemProperties,
}

impl<'a> Ctx<'a> {
    /// A context over `entries` (keys relative to `prefix`, which ends with a dot). Problems
    /// about missing keys are placed on `anchor_line`.
    pub fn new(
        prefix: impl Into<String>,
        entries: Vec<(&'a str, &'a Entry)>,
        anchor_line: u32,
    ) -> Self {
        Self {
            prefix: prefix.into(),
            entries,
            anchor_line,
            used: RefCell::default(),
            diag: RefCell::default(),
            system_properties: SystemProperties::default(),
        }
    }

    /// This context, with the command line's `-D` system properties (none by default).
    pub fn with_system_properties(mut self, properties: SystemProperties) -> Self {
        self.system_properties = properties;
        self
    }

    /// The `-D` system property `name`, if set (e.g. `javax.net.ssl.trustStore`).
    pub fn system_property(&self, name: &str) -> Option<&str> {
        self.system_properties.get(name)
    }

    /// The full key of `sub`.
    pub fn full_key(&self, sub: &str) -> String {
        format!("{}{sub}", self.prefix)
    }

    /// The line of `sub`, or the component's line when it is absent.
    pub fn line(&self, sub: &str) -> u32 {
        self.peek(sub).map_or(self.anchor_line, |e| e.line)
    }

    /// The line problems about absent keys are placed on.
    pub fn anchor_line(&self) -> u32 {
        self.anchor_line
    }

    fn peek(&self, sub: &str) -> Option<&'a Entry> {
        self.entries
            .iter()
            .find(|(k, _)| *k == sub)
            .map(|(_, e)| *e)
    }

    /// Marks `sub` as known without reading it.
    pub fn mark_used(&self, sub: &str) {
        self.used.borrow_mut().insert(sub.to_owned());
    }

    /// The entry for `sub`, marking it read.
    pub fn get(&self, sub: &str) -> Option<&'a Entry> {
        self.mark_used(sub);
        self.peek(sub)
    }

    /// Whether `sub` is present.
    pub fn has(&self, sub: &str) -> bool {
        self.peek(sub).is_some()
    }

    /// The value of `sub`, if present.
    pub fn string(&self, sub: &str) -> Option<String> {
        self.get(sub).map(|e| e.value.clone())
    }

    /// The value of `sub`, or `default`.
    pub fn string_or(&self, sub: &str, default: &str) -> String {
        self.string(sub).unwrap_or_else(|| default.to_owned())
    }

    /// The value of a key that must be present and not blank.
    pub fn required(&self, sub: &str) -> Option<String> {
        match self.get(sub) {
            None => {
                self.error_at(self.anchor_line, sub, "required key is missing");
                None
            }
            Some(e) if e.value.trim().is_empty() => {
                self.error(sub, "must not be empty");
                None
            }
            Some(e) => Some(e.value.trim().to_owned()),
        }
    }

    /// The whitespace-separated words of `sub` (empty when absent).
    pub fn list(&self, sub: &str) -> Vec<String> {
        self.string(sub)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// An integer in `range`, or `default` when absent. A malformed or out-of-range value is
    /// recorded and `default` returned.
    pub fn u64_in(&self, sub: &str, default: u64, range: RangeInclusive<u64>) -> u64 {
        let Some(v) = self.integer(sub) else {
            return default;
        };
        if v < i128::from(*range.start()) || v > i128::from(*range.end()) {
            self.error(
                sub,
                range_message(
                    v,
                    self.get(sub).map_or("", |e| e.value.trim()),
                    *range.start() as i128,
                    *range.end() as i128,
                    u64::MAX as i128,
                ),
            );
            return default;
        }
        v as u64
    }

    /// A signed integer in `range`, or `default` when absent.
    pub fn i64_in(&self, sub: &str, default: i64, range: RangeInclusive<i64>) -> i64 {
        let Some(v) = self.integer(sub) else {
            return default;
        };
        if v < i128::from(*range.start()) || v > i128::from(*range.end()) {
            self.error(
                sub,
                range_message(
                    v,
                    self.get(sub).map_or("", |e| e.value.trim()),
                    *range.start() as i128,
                    *range.end() as i128,
                    i64::MAX as i128,
                ),
            );
            return default;
        }
        v as i64
    }

    /// An integer that fits `u32`, in `range`.
    pub fn u32_in(&self, sub: &str, default: u32, range: RangeInclusive<u32>) -> u32 {
        self.u64_in(
            sub,
            u64::from(default),
            u64::from(*range.start())..=u64::from(*range.end()),
        ) as u32
    }

    /// Whether `sub` parses as an integer; records the problem if it does not.
    fn integer(&self, sub: &str) -> Option<i128> {
        let e = self.get(sub)?;
        match parse_integer(&e.value) {
            Some(v) => Some(v),
            None => {
                self.error(sub, format!("expected an integer, got \"{}\"", e.value));
                None
            }
        }
    }

    /// `true` or `false` (any case), or `default` when absent.
    pub fn bool(&self, sub: &str, default: bool) -> bool {
        let Some(e) = self.get(sub) else {
            return default;
        };
        match e.value.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                self.error(sub, format!("expected true or false, got \"{}\"", e.value));
                default
            }
        }
    }

    /// Every key under `prefix` (relative to this component), with the rest of the key after
    /// the prefix, in file order; marks them read, security keys included, so the caller must
    /// interpret every one (header mappings, priorities). A component that forwards the keys to
    /// something else uses [`Ctx::passthrough`] instead.
    pub fn prefixed(&self, prefix: &str) -> Vec<(&'a str, &'a Entry)> {
        let found: Vec<_> = self
            .entries
            .iter()
            .filter_map(|(k, e)| k.strip_prefix(prefix).map(|rest| (rest, *e)))
            .collect();
        for (k, _) in &self.entries {
            if k.starts_with(prefix) {
                self.mark_used(k);
            }
        }
        found
    }

    /// Every key (relative to this component) for which `keep` holds, in file order; marks
    /// them read, so the caller must interpret (or refuse) every one. For key families matched
    /// by more than a literal prefix (the file channel's `encryption` keys, in any case).
    pub fn keys_where(&self, keep: impl Fn(&str) -> bool) -> Vec<(&'a str, &'a Entry)> {
        let found: Vec<_> = self
            .entries
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, e)| (*k, *e))
            .collect();
        for (k, _) in &found {
            self.mark_used(k);
        }
        found
    }

    /// Records an error about `sub`, on its line.
    pub fn error(&self, sub: &str, message: impl Into<String>) {
        self.error_at(self.line(sub), sub, message);
    }

    /// Records an error about `sub` on `line`.
    pub fn error_at(&self, line: u32, sub: &str, message: impl Into<String>) {
        self.diag
            .borrow_mut()
            .error(line, self.full_key(sub), message);
    }

    /// Records a warning about `sub`, on its line.
    pub fn warn(&self, sub: &str, message: impl Into<String>) {
        let line = self.line(sub);
        self.diag
            .borrow_mut()
            .warn(line, self.full_key(sub), message);
    }

    /// Whether an error was recorded about `sub`.
    pub fn has_error_for(&self, sub: &str) -> bool {
        let key = self.full_key(sub);
        self.diag
            .borrow()
            .errors
            .iter()
            .any(|p| p.key.as_deref() == Some(key.as_str()))
    }

    /// Whether an error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.diag.borrow().errors.is_empty()
    }

    /// The problems found, without judging the keys nobody read: for a component refused as a
    /// whole (its `type` is missing, unknown, or a Flume type Sluice does not implement), where
    /// no key was read because nothing could read it. Saying of each security key that the
    /// component "does not read it, so it would be silently ignored" would be false (nothing of
    /// the component runs) and would bury the one error that matters, the type.
    pub fn finish_refused(self) -> Diagnostics {
        let mut diag = self.diag.into_inner();
        diag.sort();
        diag
    }

    /// The problems found, plus one for each key nobody read, described as belonging to `what`
    /// (for example "netcat source r1"): an error if the key asks for a security feature
    /// (see [`super::security`]: such a key is honoured or refused, never ignored), a warning
    /// otherwise.
    pub fn finish(self, what: &str) -> Diagnostics {
        let used = self.used.into_inner();
        let mut diag = self.diag.into_inner();
        for (k, e) in &self.entries {
            if !used.contains(*k) {
                match unread_key_problem(k, &e.value, what) {
                    UnreadKey::Refused(m) => diag.error(e.line, e.key.clone(), m),
                    UnreadKey::Ignored(m) => diag.warn(e.line, e.key.clone(), m),
                }
            }
        }
        diag.sort();
        diag
    }
}

/// Why `v` (written `shown` in the file) is outside `min..=max`: above the range it says the
/// maximum ("too large"), below it the minimum; "between" only when both bounds are the key's
/// own. `type_max` is the largest value the key's type holds.
fn range_message(v: i128, shown: &str, min: i128, max: i128, type_max: i128) -> String {
    if v > max {
        format!("too large: the maximum is {max}, got {shown}")
    } else if min == 0 && v < 0 {
        format!("must not be negative, got {shown}")
    } else if max == type_max {
        format!("must be at least {min}, got {shown}")
    } else {
        format!("must be between {min} and {max}, got {shown}")
    }
}

/// Parses like Java's `Long.parseLong(value.trim())`: optional sign, then ASCII digits.
pub fn parse_integer(value: &str) -> Option<i128> {
    let t = value.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More digits than i128 holds: still an integer, and out of every key's range, so it
    // saturates (the range check then says "too large" rather than "not an integer").
    t.parse().ok().or(Some(if t.starts_with('-') {
        i128::MIN
    } else {
        i128::MAX
    }))
}

/// Contexts over literal keys, for the components' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Ctx, Entry};

    /// Entries for `pairs` under `prefix` (e.g. `a1.sinks.k1.`), on lines 2, 3, ...
    pub fn entries_under(prefix: &str, pairs: &[(&str, &str)]) -> Vec<Entry> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Entry {
                key: format!("{prefix}{k}"),
                value: (*v).into(),
                line: i as u32 + 2,
            })
            .collect()
    }

    /// A context for the component at `prefix` over `list`.
    pub fn ctx_under<'a>(prefix: &str, list: &'a [Entry]) -> Ctx<'a> {
        Ctx::new(
            prefix,
            list.iter()
                .map(|e| (e.key.strip_prefix(prefix).unwrap_or(""), e))
                .collect(),
            1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str, u32)]) -> Vec<Entry> {
        pairs
            .iter()
            .map(|(k, v, l)| Entry {
                key: format!("a1.channels.c1.{k}"),
                value: (*v).into(),
                line: *l,
            })
            .collect()
    }

    fn ctx(list: &[Entry]) -> Ctx<'_> {
        Ctx::new(
            "a1.channels.c1.",
            list.iter()
                .map(|e| (e.key.strip_prefix("a1.channels.c1.").unwrap_or(""), e))
                .collect(),
            3,
        )
    }

    fn errors(d: &Diagnostics) -> Vec<String> {
        d.errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect()
    }

    #[test]
    fn integers_parse_like_java_and_report_with_line() {
        let list = entries(&[
            ("capacity", " 42 ", 4),
            ("a", "10k", 5),
            ("b", "0", 6),
            ("c", "-1", 7),
            ("d", "+7", 8),
            ("e", "99999999999999999999999", 9),
        ]);
        let c = ctx(&list);
        assert_eq!(c.u64_in("capacity", 1, 1..=u64::MAX), 42);
        assert_eq!(c.u64_in("a", 1, 1..=u64::MAX), 1);
        assert_eq!(c.u64_in("b", 1, 1..=100), 1);
        assert_eq!(c.u64_in("c", 5, 0..=u64::MAX), 5);
        assert_eq!(c.i64_in("d", 0, i64::MIN..=i64::MAX), 7);
        assert_eq!(c.u64_in("e", 1, 1..=u64::MAX), 1);
        assert_eq!(c.u64_in("missing", 9, 1..=u64::MAX), 9);
        assert_eq!(
            errors(&c.finish("x")),
            vec![
                "f:5: a1.channels.c1.a: expected an integer, got \"10k\"",
                "f:6: a1.channels.c1.b: must be between 1 and 100, got 0",
                "f:7: a1.channels.c1.c: must not be negative, got -1",
                "f:9: a1.channels.c1.e: too large: the maximum is 18446744073709551615, got 99999999999999999999999",
            ]
        );
    }

    #[test]
    fn booleans_are_strict() {
        let list = entries(&[("x", "TRUE", 4), ("y", "yes", 5)]);
        let c = ctx(&list);
        assert!(c.bool("x", false));
        assert!(!c.bool("y", false));
        assert!(c.bool("z", true));
        assert_eq!(
            errors(&c.finish("x")),
            vec!["f:5: a1.channels.c1.y: expected true or false, got \"yes\""]
        );
    }

    #[test]
    fn required_keys_are_reported_on_the_anchor_line() {
        let list = entries(&[("bind", "  ", 4)]);
        let c = ctx(&list);
        assert_eq!(c.required("port"), None);
        assert_eq!(c.required("bind"), None);
        assert_eq!(
            errors(&c.finish("x")),
            vec![
                "f:3: a1.channels.c1.port: required key is missing",
                "f:4: a1.channels.c1.bind: must not be empty",
            ]
        );
    }

    #[test]
    fn unread_keys_become_warnings() {
        let list = entries(&[("capacity", "1", 4), ("capacty", "2", 5), ("m.a", "x", 6)]);
        let c = ctx(&list);
        c.u64_in("capacity", 1, 1..=10);
        assert_eq!(c.prefixed("m.").len(), 1);
        let d = c.finish("memory channel c1");
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(
            d.warnings[0].display(std::path::Path::new("f")).to_string(),
            "f:5: a1.channels.c1.capacty: unknown key for memory channel c1; it is ignored"
        );
    }
}
