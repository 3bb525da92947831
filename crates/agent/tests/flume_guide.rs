//! Every configuration example of Flume's user guide, run through `agent::config::load`.
//!
//! The fixtures are in `tests/fixtures/flume-guide/` (one file per example, the guide's lines
//! unchanged, fragments completed in a marked trailing block; see its README). Their expected
//! outcomes are in `expectations.txt` beside them, one line per fixture:
//!
//! - `validates`: the file loads.
//! - `unsupported NAME...`: the file is refused, and every error names (in its key or message)
//!   one of the NAMEs, each a Flume component type or key Sluice does not implement, and says
//!   so; every NAME is named by some error. A confusing error about valid Flume syntax fails.
//! - `refused NAME...`: the file is refused, and every error names (in its key or message) one
//!   of the NAMEs and every NAME is named by some error, but the errors need not say that Sluice
//!   lacks something: for examples that depend on this machine (a command under `/usr/bin` the
//!   guide's config filter runs) or use a key Sluice refuses on purpose (Flume's deprecated TLS
//!   key names, see `docs/agent.md`).
//!
//! A fixture without an expectation, or an expectation without a fixture, fails the test.

use agent::config::{load, LoadError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Words an error uses to say that Sluice does not have something (as opposed to "this value
/// is wrong").
const UNSUPPORTED_WORDS: &[&str] = &[
    "does not implement",
    "not supported",
    "cannot speak",
    "is refused",
    "not implemented",
    "built without",
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flume-guide")
}

#[derive(Debug)]
enum Outcome {
    Validates,
    Unsupported(Vec<String>),
    Refused(Vec<String>),
}

struct Expectation {
    agent: String,
    outcome: Outcome,
    line: usize,
}

/// Parses `expectations.txt`: `FILE AGENT OUTCOME [NAME...]`, `#` starts a comment.
fn expectations(text: &str) -> Result<BTreeMap<String, Expectation>, String> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut words = content.split_whitespace();
        let (Some(file), Some(agent), Some(kind)) = (words.next(), words.next(), words.next())
        else {
            return Err(format!(
                "expectations.txt:{line}: expected FILE AGENT OUTCOME, got {raw:?}"
            ));
        };
        let rest: Vec<String> = words.map(str::to_owned).collect();
        let outcome = match (kind, rest.is_empty()) {
            ("validates", true) => Outcome::Validates,
            ("refused", false) => Outcome::Refused(rest),
            ("unsupported", false) => Outcome::Unsupported(rest),
            _ => {
                return Err(format!(
                "expectations.txt:{line}: unknown outcome {kind:?} (or wrong arguments): {raw:?}"
            ))
            }
        };
        let previous = out.insert(
            file.to_owned(),
            Expectation {
                agent: agent.to_owned(),
                outcome,
                line,
            },
        );
        if previous.is_some() {
            return Err(format!("expectations.txt:{line}: {file} is listed twice"));
        }
    }
    Ok(out)
}

/// Every error of a refused load, as `line: key: message`.
fn errors(path: &Path, agent: &str) -> Result<Vec<String>, String> {
    match load(path, agent) {
        Ok(_) => Ok(Vec::new()),
        Err(LoadError::Invalid { diagnostics, .. }) => Ok(diagnostics
            .errors
            .iter()
            .map(|p| {
                format!(
                    "{}: {}: {}",
                    p.line.map_or("-".to_owned(), |l| l.to_string()),
                    p.key.as_deref().unwrap_or("-"),
                    p.message
                )
            })
            .collect()),
        Err(e) => Err(format!("cannot load: {e}")),
    }
}

/// What is wrong with `file`'s outcome, if anything.
fn check(file: &str, path: &Path, expected: &Expectation) -> Option<String> {
    let errors = match errors(path, &expected.agent) {
        Ok(e) => e,
        Err(e) => return Some(e),
    };
    let listed = || errors.join("\n    ");
    match &expected.outcome {
        Outcome::Validates if errors.is_empty() => None,
        Outcome::Validates => Some(format!("expected to validate, got:\n    {}", listed())),
        Outcome::Unsupported(_) | Outcome::Refused(_) if errors.is_empty() => Some(format!(
            "expected to be refused, but it validates (expectations.txt line {})",
            expected.line
        )),
        Outcome::Unsupported(names) | Outcome::Refused(names) => {
            let must_say_unsupported = matches!(expected.outcome, Outcome::Unsupported(_));
            let mut wrong = Vec::new();
            // The list of known types every type error ends with names what we do have; a
            // NAME found only there proves nothing.
            let subject = |e: &str| e.split("; known ").next().unwrap_or(e).to_ascii_lowercase();
            for e in &errors {
                let lower = subject(e);
                let names_one = names
                    .iter()
                    .any(|n| lower.contains(&n.to_ascii_lowercase()));
                let says_unsupported = UNSUPPORTED_WORDS.iter().any(|w| lower.contains(w));
                if !names_one || (must_say_unsupported && !says_unsupported) {
                    wrong.push(format!("not about an unimplemented {names:?}: {e}"));
                }
            }
            for n in names {
                let n_lower = n.to_ascii_lowercase();
                if !errors.iter().any(|e| subject(e).contains(&n_lower)) {
                    wrong.push(format!("no error names {n}"));
                }
            }
            if wrong.is_empty() {
                None
            } else {
                Some(format!(
                    "{}\n  all errors:\n    {}",
                    wrong.join("\n  "),
                    listed()
                ))
            }
        }
    }
    .map(|m| format!("{file}: {m}"))
}

#[test]
fn every_guide_example_validates_or_names_what_sluice_lacks() {
    // The guide's own environment: `${NC_PORT}` (Using environment variables) and
    // `${f1['my_keystore_password']}` (Environment Variable Config Filter). Set once, before any
    // load (the other test reads no environment).
    std::env::set_var("NC_PORT", "44444");
    std::env::set_var("my_keystore_password", "Secret123");
    // The file channels without directories default under `~/.flume` (and are refused without
    // a `$HOME`): a home of their own, whatever the machine's is.
    let home = tempfile::tempdir().expect("temp home");
    std::env::set_var("HOME", home.path());

    let dir = fixture_dir();
    let table = std::fs::read_to_string(dir.join("expectations.txt")).expect("expectations.txt");
    let table = expectations(&table).unwrap_or_else(|e| panic!("{e}"));
    let mut fixtures: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".conf"))
        .collect();
    fixtures.sort();

    let mut failures = Vec::new();
    for f in &fixtures {
        if !table.contains_key(f) {
            failures.push(format!("{f}: has no line in expectations.txt"));
        }
    }
    for f in table.keys() {
        if !fixtures.contains(f) {
            failures.push(format!(
                "{f}: in expectations.txt but there is no such fixture"
            ));
        }
    }
    let mut counts = BTreeMap::<&str, usize>::new();
    for (file, expected) in &table {
        if !fixtures.contains(file) {
            continue;
        }
        *counts
            .entry(match expected.outcome {
                Outcome::Validates => "validates",
                Outcome::Unsupported(_) => "unsupported",
                Outcome::Refused(_) => "refused",
            })
            .or_default() += 1;
        if let Some(f) = check(file, &dir.join(file), expected) {
            failures.push(f);
        }
    }
    eprintln!(
        "flume guide corpus: {} fixtures, {counts:?}",
        fixtures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} guide examples are not as expected:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

/// The expectation table's own checks can fail: a missing outcome word, a duplicate.
#[test]
fn the_expectation_table_rejects_bad_lines() {
    assert!(expectations("a.conf a1").is_err());
    assert!(expectations("a.conf a1 maybe").is_err());
    assert!(expectations("a.conf a1 unsupported").is_err());
    assert!(expectations("a.conf a1 refused").is_err());
    assert!(expectations("a.conf a1 validates\na.conf a1 validates").is_err());
    let ok = expectations("# comment\na.conf a1 unsupported hdfs jms # why\n").unwrap();
    assert!(matches!(&ok["a.conf"].outcome, Outcome::Unsupported(n) if n == &["hdfs", "jms"]));
}
