//! Flume 1.10's config filters: `<agent>.configfilters = f1 f2` declares them,
//! `<agent>.configfilters.f1.type` says what each one is, and a value refers to one as
//! `${f1['key']}` (also `${f1["key"]}` and `${f1[key]}`), resolved in [`super::substitute`].
//!
//! Types (Flume's aliases or class names, any case):
//! - `env` (`org.apache.flume.configfilter.EnvironmentVariableConfigFilter`): the environment
//!   variable `key`.
//! - `external` (`…ExternalProcessConfigFilter`): runs `command` (split at whitespace, no shell)
//!   with `key` as its last argument; the first line of its standard output is the value.
//!   `charset` must be UTF-8 (Flume's default). A command that does not finish within
//!   [`EXTERNAL_TIMEOUT`] is killed (with its process group); that, a non-zero exit, or no output
//!   is an error naming the filter and key — Flume logs it and leaves `${f1['key']}` in the value.
//! - `hadoop` (`…HadoopCredentialStoreConfigFilter`) is refused: there is no Hadoop credential
//!   provider here. Any other type (a custom class) is refused too.

use super::context::Entry;
use super::problem::Diagnostics;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an `external` filter's command may run for one key.
pub const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a declared filter is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterKind {
    /// `env`: environment variables.
    Env,
    /// `external`: the command to run (the key is appended as its last argument).
    External {
        /// `command`, as written.
        command: String,
    },
}

/// The filters declared for an agent, by name; a listed filter whose declaration is wrong is
/// present as `None` (its error is already recorded), so references to it are not reported
/// again as references to an undeclared filter.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Filter name → its kind, `None` when its declaration is invalid.
    pub by_name: BTreeMap<String, Option<FilterKind>>,
    /// The line of `<agent>.configfilters`, if given.
    pub list_line: Option<u32>,
}

const ENV_CLASS: &str = "org.apache.flume.configfilter.environmentvariableconfigfilter";
const EXTERNAL_CLASS: &str = "org.apache.flume.configfilter.externalprocessconfigfilter";
const HADOOP_CLASS: &str = "org.apache.flume.configfilter.hadoopcredentialstoreconfigfilter";

/// Reads the filter declarations among `entries` (`<prefix>configfilters` and
/// `<prefix>configfilters.<name>.<key>`, values already substituted), recording problems.
pub fn declare(entries: &[&Entry], prefix: &str, diag: &mut Diagnostics) -> Filters {
    let list_key = format!("{prefix}configfilters");
    let mut filters = Filters::default();
    let mut keys: BTreeMap<&str, Vec<(&str, &Entry)>> = BTreeMap::new();
    for e in entries {
        if e.key == list_key {
            filters.list_line = Some(e.line);
            for name in e.value.split_whitespace() {
                if filters.by_name.insert(name.to_owned(), None).is_some() {
                    diag.error(e.line, &e.key, format!("lists {name} twice"));
                }
            }
            continue;
        }
        let rest = &e.key[list_key.len() + 1..];
        match rest.split_once('.') {
            Some((name, sub)) if !name.is_empty() && !sub.is_empty() => {
                keys.entry(name).or_default().push((sub, e));
            }
            _ => diag.warn(e.line, &e.key, "unknown key; it is ignored"),
        }
    }
    for (name, subs) in &keys {
        if !filters.by_name.contains_key(*name) {
            diag.warn(
                subs[0].1.line,
                format!("{list_key}.{name}"),
                format!("config filter {name} is configured but not listed in {list_key}; it is ignored"),
            );
        }
    }
    let names: Vec<String> = filters.by_name.keys().cloned().collect();
    for name in names {
        let subs = keys.get(name.as_str()).cloned().unwrap_or_default();
        let kind = declare_one(
            &name,
            &subs,
            &list_key,
            filters.list_line.unwrap_or(1),
            diag,
        );
        filters.by_name.insert(name, kind);
    }
    filters
}

fn declare_one(
    name: &str,
    subs: &[(&str, &Entry)],
    list_key: &str,
    list_line: u32,
    diag: &mut Diagnostics,
) -> Option<FilterKind> {
    let get = |k: &str| subs.iter().find(|(s, _)| *s == k).map(|(_, e)| *e);
    let Some(type_entry) = get("type") else {
        diag.error(
            list_line,
            format!("{list_key}.{name}.type"),
            "required key is missing (env or external)",
        );
        return None;
    };
    let ty = type_entry.value.trim().to_ascii_lowercase();
    let (kind, known): (Option<FilterKind>, &[&str]) = match ty.as_str() {
        "env" | ENV_CLASS => (Some(FilterKind::Env), &["type"]),
        "external" | EXTERNAL_CLASS => {
            let kind = match get("command") {
                Some(c) if !c.value.trim().is_empty() => Some(FilterKind::External {
                    command: c.value.trim().to_owned(),
                }),
                Some(c) => {
                    diag.error(c.line, &c.key, "is empty; name the command to run");
                    None
                }
                None => {
                    diag.error(
                        type_entry.line,
                        format!("{list_key}.{name}.command"),
                        "required key is missing: an external filter runs this command with the key as its last argument",
                    );
                    None
                }
            };
            if let Some(c) = get("charset") {
                let cs = c.value.trim().to_ascii_lowercase();
                if cs != "utf-8" && cs != "utf8" {
                    diag.error(
                        c.line,
                        &c.key,
                        format!(
                            "charset {:?} is not supported: the command's output must be UTF-8",
                            c.value.trim()
                        ),
                    );
                    return None;
                }
            }
            (kind, &["type", "command", "charset"])
        }
        "hadoop" | HADOOP_CLASS => {
            diag.error(
                type_entry.line,
                &type_entry.key,
                "the hadoop credential store filter is not supported (there is no Hadoop credential provider here); use an external filter with a command that prints the secret, or env",
            );
            return None;
        }
        _ => {
            diag.error(
                type_entry.line,
                &type_entry.key,
                format!(
                    "unknown config filter type {:?}: the known types are env and external (custom filter classes cannot be loaded)",
                    type_entry.value.trim()
                ),
            );
            return None;
        }
    };
    for (sub, e) in subs {
        if !known.contains(sub) {
            diag.warn(
                e.line,
                &e.key,
                "unknown key for this config filter; it is ignored",
            );
        }
    }
    kind
}

/// Runs an `external` filter's `command` with `key` appended, for at most `timeout`; the
/// command's whole standard output, or why there is none.
pub fn run_external(command: &str, key: &str, timeout: Duration) -> Result<String, String> {
    use std::os::unix::process::CommandExt as _;
    let mut parts = command.split_whitespace();
    let program = parts.next().ok_or("the command is empty")?;
    let mut child = Command::new(program)
        .args(parts)
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pipe_reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            // At most 1 MiB: a value, not a stream.
            let _ = pipe.by_ref().take(1 << 20).read_to_end(&mut buf);
            buf
        })
    };
    let out = child.stdout.take().map(|p| pipe_reader(Box::new(p)));
    let err = child.stderr.take().map(|p| pipe_reader(Box::new(p)));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // The `kill` utility reaches the whole process group (no `unsafe` kill(2)).
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{command} {key}` did not finish within {} s and was killed",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("cannot wait for `{command} {key}`: {e}")),
        }
    };
    let stdout = out.and_then(|t| t.join().ok()).unwrap_or_default();
    if !status.success() {
        let stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr);
        let first = stderr.lines().next().unwrap_or("").trim();
        let what = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_owned(),
        };
        return Err(if first.is_empty() {
            format!("`{command} {key}` {what}")
        } else {
            format!("`{command} {key}` {what}: {first}")
        });
    }
    String::from_utf8(stdout)
        .map_err(|_| format!("`{command} {key}` printed bytes that are not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &[(&str, &str)]) -> Vec<Entry> {
        text.iter()
            .enumerate()
            .map(|(i, (k, v))| Entry {
                key: (*k).into(),
                value: (*v).into(),
                line: i as u32 + 1,
            })
            .collect()
    }

    fn declared(pairs: &[(&str, &str)]) -> (Filters, Vec<String>) {
        let list = entries(pairs);
        let refs: Vec<&Entry> = list.iter().collect();
        let mut diag = Diagnostics::default();
        let f = declare(&refs, "a1.", &mut diag);
        diag.sort();
        let path = std::path::Path::new("f.conf");
        let msgs = diag
            .errors
            .iter()
            .map(|p| p.display(path).to_string())
            .chain(
                diag.warnings
                    .iter()
                    .map(|p| format!("warning: {}", p.display(path))),
            )
            .collect();
        (f, msgs)
    }

    #[test]
    fn env_and_external_by_alias_or_class() {
        let (f, msgs) = declared(&[
            ("a1.configfilters", "f1 f2 f3"),
            ("a1.configfilters.f1.type", "env"),
            (
                "a1.configfilters.f2.type",
                "org.apache.flume.configfilter.ExternalProcessConfigFilter",
            ),
            ("a1.configfilters.f2.command", " /bin/echo -n "),
            ("a1.configfilters.f2.charset", "utf-8"),
            ("a1.configfilters.f3.type", "EXTERNAL"),
            ("a1.configfilters.f3.command", "x"),
            ("a1.configfilters.f3.colour", "red"),
        ]);
        assert_eq!(f.by_name["f1"], Some(FilterKind::Env));
        assert_eq!(
            f.by_name["f2"],
            Some(FilterKind::External {
                command: "/bin/echo -n".into()
            })
        );
        assert_eq!(
            msgs,
            vec!["warning: f.conf:8: a1.configfilters.f3.colour: unknown key for this config filter; it is ignored"]
        );
    }

    #[test]
    fn hadoop_unknown_missing_and_unlisted_are_reported() {
        let (f, msgs) = declared(&[
            ("a1.configfilters", "h u m e c"),
            ("a1.configfilters.h.type", "hadoop"),
            ("a1.configfilters.u.type", "com.example.MyFilter"),
            ("a1.configfilters.e.type", "external"),
            ("a1.configfilters.c.type", "external"),
            ("a1.configfilters.c.command", "x"),
            ("a1.configfilters.c.charset", "ISO-8859-1"),
            ("a1.configfilters.z.type", "env"),
        ]);
        assert!(f.by_name.values().all(Option::is_none), "{f:?}");
        assert_eq!(msgs, vec![
            "f.conf:1: a1.configfilters.m.type: required key is missing (env or external)",
            "f.conf:2: a1.configfilters.h.type: the hadoop credential store filter is not supported (there is no Hadoop credential provider here); use an external filter with a command that prints the secret, or env",
            "f.conf:3: a1.configfilters.u.type: unknown config filter type \"com.example.MyFilter\": the known types are env and external (custom filter classes cannot be loaded)",
            "f.conf:4: a1.configfilters.e.command: required key is missing: an external filter runs this command with the key as its last argument",
            "f.conf:7: a1.configfilters.c.charset: charset \"ISO-8859-1\" is not supported: the command's output must be UTF-8",
            "warning: f.conf:8: a1.configfilters.z: config filter z is configured but not listed in a1.configfilters; it is ignored",
        ]);
    }

    #[test]
    fn external_command_output_exit_status_and_timeout() {
        let t = Duration::from_secs(10);
        assert_eq!(run_external("echo -n", "key-1", t).as_deref(), Ok("key-1"));
        assert_eq!(
            run_external("sh -c", "echo oops >&2; exit 3", t),
            Err("`sh -c echo oops >&2; exit 3` exited with status 3: oops".into())
        );
        let e = run_external("/nonexistent/prog", "k", t).expect_err("no such program");
        assert!(e.starts_with("cannot run /nonexistent/prog: "), "{e}");
        // A command that outlives the timeout, with a grandchild holding the pipe: killed.
        let e = run_external("sh -c", "sleep 30 & sleep 30", Duration::from_millis(200))
            .expect_err("timeout");
        assert_eq!(
            e,
            "`sh -c sleep 30 & sleep 30` did not finish within 0.2 s and was killed"
        );
    }
}
