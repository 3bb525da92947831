//! The [`Tally`]: many [`Check`]s summed into the figures a layer reports, as its final JSON
//! summary line and its plain `N passed, N failed` line.

use super::{Cause, Check};
use std::collections::BTreeMap;
use std::fmt;

/// Sums of many checks: the figures a layer reports.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Cases run (workloads, sweep points, kill rounds).
    pub cases: u64,
    /// Cases whose checks all held.
    pub passed: u64,
    /// Cases with a violation, an unexpected error or a panic.
    pub failed: u64,
    /// Crash states recovered and checked.
    pub crash_states: u64,
    /// Sum of [`Check::acknowledged`].
    pub acknowledged: u64,
    /// Sum of [`Check::recovered`].
    pub recovered: u64,
    /// Sum of [`Check::lost`].
    pub lost: u64,
    /// Sum of [`Check::lost_to_reported_damage`].
    pub lost_to_reported_damage: u64,
    /// Sum of [`Check::phantoms`].
    pub phantoms: u64,
    /// Sum of [`Check::damaged`].
    pub damaged: u64,
    /// Sum of twice, partial and order violations.
    pub other_violations: u64,
    /// Panics caught (engine or harness).
    pub panics: u64,
    /// Sum of [`Check::decrypt_failures`].
    pub decrypt_failures: u64,
    /// Allowed re-appearances by cause.
    pub duplicates: BTreeMap<Cause, u64>,
    /// The first failures, for the report.
    pub failures: Vec<String>,
}

/// Most failure descriptions a tally keeps.
pub const MAX_FAILURES_KEPT: usize = 20;

impl Tally {
    /// Adds one recovery's check.
    pub fn add_check(&mut self, c: &Check) {
        self.crash_states += 1;
        self.acknowledged += c.acknowledged;
        self.recovered += c.recovered;
        self.lost += c.lost;
        self.lost_to_reported_damage += c.lost_to_reported_damage;
        self.phantoms += c.phantoms;
        self.damaged += c.damaged;
        self.other_violations += c.twice + c.partial + c.order_violations;
        self.decrypt_failures += c.decrypt_failures;
        for (cause, n) in &c.duplicates {
            *self.duplicates.entry(*cause).or_default() += n;
        }
    }

    /// Records the end of one case.
    pub fn finish_case(&mut self, failure: Option<String>) {
        self.cases += 1;
        match failure {
            None => self.passed += 1,
            Some(f) => {
                self.failed += 1;
                if self.failures.len() < MAX_FAILURES_KEPT {
                    self.failures.push(f);
                }
            }
        }
    }

    /// Adds another tally's figures.
    pub fn merge(&mut self, o: &Tally) {
        self.cases += o.cases;
        self.passed += o.passed;
        self.failed += o.failed;
        self.crash_states += o.crash_states;
        self.acknowledged += o.acknowledged;
        self.recovered += o.recovered;
        self.lost += o.lost;
        self.lost_to_reported_damage += o.lost_to_reported_damage;
        self.phantoms += o.phantoms;
        self.damaged += o.damaged;
        self.other_violations += o.other_violations;
        self.panics += o.panics;
        self.decrypt_failures += o.decrypt_failures;
        for (cause, n) in &o.duplicates {
            *self.duplicates.entry(*cause).or_default() += n;
        }
        for f in &o.failures {
            if self.failures.len() < MAX_FAILURES_KEPT {
                self.failures.push(f.clone());
            }
        }
    }

    /// The figures as one JSON object (no trailing newline). `extra` is spliced in as further
    /// `"key": value` members (already encoded).
    pub fn to_json(&self, layer: &str, seed: u64, extra: &[(&str, String)]) -> String {
        let mut s = String::from("{");
        s.push_str(&format!("\"layer\": {}, \"seed\": {seed}", json_str(layer)));
        for (k, v) in [
            ("cases", self.cases),
            ("passed", self.passed),
            ("failed", self.failed),
            ("crash_states", self.crash_states),
            ("acknowledged", self.acknowledged),
            ("recovered", self.recovered),
            ("lost", self.lost),
            ("lost_to_reported_damage", self.lost_to_reported_damage),
            ("phantoms", self.phantoms),
            ("damaged", self.damaged),
            ("other_violations", self.other_violations),
            ("panics", self.panics),
            ("decrypt_failures", self.decrypt_failures),
        ] {
            s.push_str(&format!(", \"{k}\": {v}"));
        }
        s.push_str(", \"duplicates\": {");
        for (i, cause) in Cause::ALL.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let n = self.duplicates.get(cause).copied().unwrap_or(0);
            s.push_str(&format!("\"{}\": {n}", cause.name()));
        }
        s.push('}');
        for (k, v) in extra {
            s.push_str(&format!(", {}: {v}", json_str(k)));
        }
        s.push_str(", \"failures\": [");
        for (i, f) in self.failures.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&json_str(f));
        }
        s.push_str("]}");
        s
    }
}

impl fmt::Display for Tally {
    /// The final plain line every layer prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    format!("\"{}\"", file_channel::quarantine::json_escape(s))
}
