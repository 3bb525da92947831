//! [`Problem`] and [`Diagnostics`]: what is wrong with a configuration, located by line and key,
//! collected all together so one run of `sluice validate` lists every problem at once.

use std::fmt;
use std::path::Path;

/// One problem (or warning) in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line, when the problem has one (a missing agent has none).
    pub line: Option<u32>,
    /// The full property key the problem is about (for a missing key: the key that should be
    /// there).
    pub key: Option<String>,
    /// What is wrong, as a lowercase sentence a user can act on.
    pub message: String,
}

impl Problem {
    /// A problem at `line` about `key`.
    pub fn at(line: u32, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// Formats the problem for `file` as `file:line: key: message`.
    pub fn display<'a>(&'a self, file: &'a Path) -> impl fmt::Display + 'a {
        DisplayProblem {
            problem: self,
            file,
        }
    }
}

struct DisplayProblem<'a> {
    problem: &'a Problem,
    file: &'a Path,
}

impl fmt::Display for DisplayProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.problem.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.problem.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.problem.message)
    }
}

/// Errors (the configuration is refused) and warnings (it is accepted; something is probably
/// not what the author meant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Problems that make the configuration invalid.
    pub errors: Vec<Problem>,
    /// Problems reported but accepted (unknown keys, unused components, repeated keys).
    pub warnings: Vec<Problem>,
}

impl Diagnostics {
    /// Records an error.
    pub fn error(&mut self, line: u32, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem::at(line, key, message));
    }

    /// Records a warning.
    pub fn warn(&mut self, line: u32, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::at(line, key, message));
    }

    /// Adds everything `other` holds.
    pub fn extend(&mut self, other: Diagnostics) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }

    /// Sorts both lists by line, then key, and removes exact repetitions.
    pub fn sort(&mut self) {
        for list in [&mut self.errors, &mut self.warnings] {
            list.sort_by(|a, b| (a.line, &a.key, &a.message).cmp(&(b.line, &b.key, &b.message)));
            list.dedup();
        }
    }

    /// Whether there is no error (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_line_key_and_message() {
        let p = Problem::at(
            7,
            "a1.channels.c1.capacity",
            "expected an integer, got \"10k\"",
        );
        assert_eq!(
            p.display(Path::new("conf/a.conf")).to_string(),
            "conf/a.conf:7: a1.channels.c1.capacity: expected an integer, got \"10k\""
        );
        let p = Problem {
            line: None,
            key: None,
            message: "no agent named \"x\"".into(),
        };
        assert_eq!(
            p.display(Path::new("a.conf")).to_string(),
            "a.conf: no agent named \"x\""
        );
    }

    #[test]
    fn sort_orders_by_line_and_dedups() {
        let mut d = Diagnostics::default();
        d.error(9, "b", "two");
        d.error(2, "a", "one");
        d.error(9, "b", "two");
        d.sort();
        let lines: Vec<_> = d.errors.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(2), Some(9)]);
    }
}
