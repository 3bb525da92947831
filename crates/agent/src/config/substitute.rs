//! `${…}` references in property values, every form Flume 1.11 reads:
//!
//! | form | value |
//! |---|---|
//! | `${env:NAME}` | the environment variable `NAME` |
//! | `${sys:name}` | the system property `name`, i.e. a `-Dname=value` of the command line |
//! | `${NAME}` | the environment variable `NAME` (Flume's `EnvVarResolverProperties`) |
//! | `${f1['key']}`, `${f1["key"]}`, `${f1[key]}` | config filter `f1` ([`super::filters`]) for `key` |
//! | `${env:NAME:-default}`, `${sys:name:-default}`, `${NAME:-default}` | `default` when unset |
//! | `$${` | a literal `${` |
//!
//! A `$` that does not start `${` stays as written. Every reference must resolve: an unset
//! variable, an undeclared filter, a failed filter command or a malformed `${…}` is an error
//! naming the line and key (Flume leaves the reference in the value, so a component gets e.g. a
//! directory literally named `${DATA}`). Substitution applies to values only, never to keys,
//! and its results are not substituted again.

use super::context::Entry;
use super::filters::{self, FilterKind, Filters};
use super::problem::Diagnostics;
use super::properties::Property;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Where references are looked up.
pub struct Lookups<'a> {
    /// Environment variables.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// System properties (`-D`).
    pub system_properties: &'a BTreeMap<String, String>,
    /// Runs an `external` filter's command for a key (command, key, timeout) → its standard
    /// output ([`filters::run_external`] outside tests).
    pub external: &'a dyn Fn(&str, &str, Duration) -> Result<String, String>,
}

/// The agent's properties (those starting with `prefix`, i.e. `<agent>.`) with every value
/// substituted, in file order, without the `configfilters` keys (read here). Problems are
/// recorded on `diag`; a value that fails keeps its text as written.
pub fn resolve_agent(
    props: &[Property],
    prefix: &str,
    lookups: &Lookups<'_>,
    diag: &mut Diagnostics,
) -> Vec<Entry> {
    let filter_key = format!("{prefix}configfilters");
    let is_filter_key = |k: &str| {
        k == filter_key
            || k.strip_prefix(filter_key.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
    };
    let no_filters = Filters::default();
    let resolver = Resolver {
        lookups,
        filters: &no_filters,
        cache: RefCell::default(),
    };
    // Filter declarations: env, sys and plain references only.
    let declarations: Vec<Entry> = props
        .iter()
        .filter(|p| is_filter_key(&p.key))
        .map(|p| resolver.entry(p, diag))
        .collect();
    let refs: Vec<&Entry> = declarations.iter().collect();
    let filters = filters::declare(&refs, prefix, diag);
    let resolver = Resolver {
        filters: &filters,
        ..resolver
    };
    props
        .iter()
        .filter(|p| p.key.starts_with(prefix) && !is_filter_key(&p.key))
        .map(|p| resolver.entry(p, diag))
        .collect()
}

struct Resolver<'a> {
    lookups: &'a Lookups<'a>,
    filters: &'a Filters,
    /// (filter, key) → value or error: each external command runs once per key.
    cache: RefCell<HashMap<(String, String), Result<String, String>>>,
}

impl Resolver<'_> {
    fn entry(&self, p: &Property, diag: &mut Diagnostics) -> Entry {
        let value = match self.value(&p.value) {
            Ok((v, warnings)) => {
                for w in warnings {
                    diag.warn(p.line, &p.key, w);
                }
                v
            }
            Err(m) => {
                diag.error(p.line, &p.key, m);
                p.value.clone()
            }
        };
        Entry {
            key: p.key.clone(),
            value,
            line: p.line,
        }
    }

    /// The substituted value and its warnings, or the first problem.
    fn value(&self, value: &str) -> Result<(String, Vec<String>), String> {
        let mut warnings = Vec::new();
        if !value.contains("${") {
            return Ok((value.to_owned(), warnings));
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            // `$${` is a literal `${`.
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!(
                    "unterminated \"${{\" in {value:?} (write $${{ for a literal ${{)"
                ));
            };
            let body = &after[..end];
            out.push_str(&self.reference(body, &mut warnings)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok((out, warnings))
    }

    /// The value of `${body}`.
    fn reference(&self, body: &str, warnings: &mut Vec<String>) -> Result<String, String> {
        let shown = format!("${{{body}}}");
        if body.contains("${") {
            return Err(format!("nested references are not supported: {shown}"));
        }
        if let Some(open) = body.find('[') {
            let name = &body[..open];
            if is_word(name) && body.ends_with(']') {
                return self.filter(name, &body[open + 1..body.len() - 1], &shown, warnings);
            }
        }
        let (var, default) = match body.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (body, None),
        };
        let found = if let Some(name) = var.strip_prefix("env:") {
            if !is_env_name(name) {
                return Err(format!(
                    "{name:?} is not a valid environment variable name in {shown}"
                ));
            }
            (self.lookups.env)(name).ok_or_else(|| {
                format!("environment variable {name} is not set (referenced as {shown})")
            })
        } else if let Some(name) = var.strip_prefix("sys:") {
            if name.is_empty() {
                return Err(format!("{shown} names no system property"));
            }
            self.lookups
                .system_properties
                .get(name)
                .cloned()
                .ok_or_else(|| {
                    format!("system property {name} is not set: pass -D{name}=VALUE (referenced as {shown})")
                })
        } else if is_word(var) {
            (self.lookups.env)(var).ok_or_else(|| {
                format!("environment variable {var} is not set (referenced as {shown})")
            })
        } else if let Some((prefix, _)) = var.split_once(':').filter(|(p, _)| is_word(p)) {
            return Err(format!(
                "unsupported lookup \"{prefix}:\" in {shown}: the lookups are env: and sys: (write $${{ for a literal ${{)"
            ));
        } else {
            return Err(format!(
                "{shown} is not a reference: expected ${{NAME}}, ${{env:NAME}}, ${{sys:name}} or ${{filter['key']}} (write $${{ for a literal ${{)"
            ));
        };
        match (found, default) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(d)) => Ok(d.to_owned()),
            (Err(e), None) => Err(e),
        }
    }

    /// `${name[quoted]}`: config filter `name` for the key in `quoted` (`'k'`, `"k"` or `k`).
    fn filter(
        &self,
        name: &str,
        quoted: &str,
        shown: &str,
        warnings: &mut Vec<String>,
    ) -> Result<String, String> {
        let key = ["'", "\""]
            .iter()
            .find_map(|q| quoted.strip_prefix(q).and_then(|k| k.strip_suffix(q)))
            .unwrap_or(quoted);
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !key_ok {
            return Err(format!(
                "malformed config filter reference {shown}: the key must be letters, digits, '-' or '_', in matching quotes or none"
            ));
        }
        let kind = match self.filters.by_name.get(name) {
            Some(Some(kind)) => kind,
            // Its declaration is wrong; that error is already recorded.
            Some(None) => return Err(format!("config filter {name} is not usable (see its declaration)")),
            None => {
                return Err(format!(
                    "{shown} refers to config filter {name}, which is not declared (add it to <agent>.configfilters with a type)"
                ))
            }
        };
        match kind {
            FilterKind::Env => (self.lookups.env)(key).ok_or_else(|| {
                format!("config filter {name} (env): environment variable {key} is not set (referenced as {shown})")
            }),
            FilterKind::External { command } => {
                let cached = self
                    .cache
                    .borrow()
                    .get(&(name.to_owned(), key.to_owned()))
                    .cloned();
                let result = cached.unwrap_or_else(|| {
                    let r = (self.lookups.external)(command, key, filters::EXTERNAL_TIMEOUT);
                    self.cache
                        .borrow_mut()
                        .insert((name.to_owned(), key.to_owned()), r.clone());
                    r
                });
                let output = result.map_err(|e| {
                    format!("config filter {name} (external) for key {key}: {e}")
                })?;
                let mut lines = output.lines();
                let Some(first) = lines.next() else {
                    return Err(format!(
                        "config filter {name} (external) for key {key}: `{command} {key}` printed nothing"
                    ));
                };
                if lines.next().is_some() {
                    warnings.push(format!(
                        "config filter {name} (external) for key {key}: the command printed more than one line; only the first is used, as in Flume"
                    ));
                }
                Ok(first.to_owned())
            }
        }
    }
}

/// `[A-Za-z0-9_]+`, Flume's `\w+`.
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && is_word(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "EMPTY" => Some(String::new()),
            "my_password_key" => Some("s3cret".into()),
            _ => None,
        }
    }

    fn external(command: &str, key: &str, _: Duration) -> Result<String, String> {
        match (command, key) {
            (_, "fails") => Err(format!("`{command} {key}` exited with status 1: denied")),
            (_, "silent") => Ok(String::new()),
            (_, "two") => Ok("first\nsecond\n".into()),
            _ => Ok(format!("{command}:{key}\n")),
        }
    }

    /// (key → value, errors then warnings as `file:line: key: message`).
    fn resolve(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
        let props = super::super::properties::parse(text)
            .expect("parses")
            .entries;
        let sys: BTreeMap<String, String> = [("flume.data".to_owned(), "/srv".to_owned())].into();
        let lookups = Lookups {
            env: &env,
            system_properties: &sys,
            external: &external,
        };
        let mut diag = Diagnostics::default();
        let entries = resolve_agent(&props, "a1.", &lookups, &mut diag);
        let file = Path::new("s.conf");
        let msgs = diag
            .errors
            .iter()
            .map(|p| p.display(file).to_string())
            .chain(
                diag.warnings
                    .iter()
                    .map(|p| format!("warning: {}", p.display(file))),
            )
            .collect();
        (
            entries.into_iter().map(|e| (e.key, e.value)).collect(),
            msgs,
        )
    }

    #[test]
    fn every_form_resolves() {
        let (v, msgs) = resolve(
            "a1.configfilters = f1 f2
a1.configfilters.f1.type = env
a1.configfilters.f2.type = external
a1.configfilters.f2.command = ${HOME}/bin/secret
a1.a = ${env:HOME}/x:${HOME}
a1.b = ${sys:flume.data}/d
a1.c = ${f1['my_password_key']} ${f1[\"my_password_key\"]} ${f1[my_password_key]}
a1.d = ${f2['db-pass']}
a1.e = ${env:NOPE:-fallback} ${NOPE:-} ${sys:nope:-x} ${env:HOME:-unused}
a1.f = $HOME $ 5$ $${HOME} {x} x${EMPTY}y
b1.g = ${NOPE}
",
        );
        assert_eq!(msgs, Vec::<String>::new());
        assert_eq!(v["a1.a"], "/home/u/x:/home/u");
        assert_eq!(v["a1.b"], "/srv/d");
        assert_eq!(v["a1.c"], "s3cret s3cret s3cret");
        assert_eq!(v["a1.d"], "/home/u/bin/secret:db-pass");
        assert_eq!(v["a1.e"], "fallback  x /home/u");
        assert_eq!(v["a1.f"], "$HOME $ 5$ ${HOME} {x} xy");
        assert!(!v.contains_key("b1.g"), "other agents' keys are left alone");
        assert!(!v.keys().any(|k| k.contains("configfilters")));
    }

    #[test]
    fn each_problem_names_line_and_key() {
        let (_, msgs) = resolve(
            "a1.configfilters = f1 f2
a1.configfilters.f1.type = env
a1.configfilters.f2.type = external
a1.configfilters.f2.command = /bin/secret
a1.a = ${env:NOPE}
a1.b = ${NOPE}
a1.c = ${sys:nope}
a1.d = ${f1['unset_var']}
a1.e = ${f3['k']}
a1.f = ${f2['fails']}
a1.g = ${f2['silent']}
a1.h = ${f1['a b']}
a1.i = ${f1['k\"]}
a1.j = ${java:version}
a1.k = ${2,3}
a1.l = x ${HOME
a1.m = ${env:1X}
a1.n = ${${HOME}}
a1.o = ${f2['two']}
",
        );
        assert_eq!(msgs, vec![
            "s.conf:5: a1.a: environment variable NOPE is not set (referenced as ${env:NOPE})",
            "s.conf:6: a1.b: environment variable NOPE is not set (referenced as ${NOPE})",
            "s.conf:7: a1.c: system property nope is not set: pass -Dnope=VALUE (referenced as ${sys:nope})",
            "s.conf:8: a1.d: config filter f1 (env): environment variable unset_var is not set (referenced as ${f1['unset_var']})",
            "s.conf:9: a1.e: ${f3['k']} refers to config filter f3, which is not declared (add it to <agent>.configfilters with a type)",
            "s.conf:10: a1.f: config filter f2 (external) for key fails: `/bin/secret fails` exited with status 1: denied",
            "s.conf:11: a1.g: config filter f2 (external) for key silent: `/bin/secret silent` printed nothing",
            "s.conf:12: a1.h: malformed config filter reference ${f1['a b']}: the key must be letters, digits, '-' or '_', in matching quotes or none",
            "s.conf:13: a1.i: malformed config filter reference ${f1['k\"]}: the key must be letters, digits, '-' or '_', in matching quotes or none",
            "s.conf:14: a1.j: unsupported lookup \"java:\" in ${java:version}: the lookups are env: and sys: (write $${ for a literal ${)",
            "s.conf:15: a1.k: ${2,3} is not a reference: expected ${NAME}, ${env:NAME}, ${sys:name} or ${filter['key']} (write $${ for a literal ${)",
            "s.conf:16: a1.l: unterminated \"${\" in \"x ${HOME\" (write $${ for a literal ${)",
            "s.conf:17: a1.m: \"1X\" is not a valid environment variable name in ${env:1X}",
            "s.conf:18: a1.n: nested references are not supported: ${${HOME}",
            "warning: s.conf:19: a1.o: config filter f2 (external) for key two: the command printed more than one line; only the first is used, as in Flume",
        ]);
    }

    #[test]
    fn an_external_command_runs_once_per_key() {
        use std::cell::Cell;
        let calls = Cell::new(0);
        let counting = |c: &str, k: &str, t: Duration| {
            calls.set(calls.get() + 1);
            external(c, k, t)
        };
        let props = super::super::properties::parse(
            "a1.configfilters = f\na1.configfilters.f.type = external\na1.configfilters.f.command = c\na1.x = ${f['k']}\na1.y = ${f['k']}${f['j']}\n",
        )
        .expect("parses")
        .entries;
        let lookups = Lookups {
            env: &env,
            system_properties: &BTreeMap::new(),
            external: &counting,
        };
        let mut diag = Diagnostics::default();
        let e = resolve_agent(&props, "a1.", &lookups, &mut diag);
        assert!(diag.is_ok());
        assert_eq!(e[1].value, "c:kc:j");
        assert_eq!(calls.get(), 2);
    }
}
