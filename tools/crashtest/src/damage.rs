//! The `damage` layer: cases of `file_channel_testkit::harness::damage` until the budget ends
//! (or only case `--case N`). Each case damages a real, cleanly closed channel directory and
//! holds every view to the loss ledger; a failing case prints its actions, every view that
//! disagreed (expected against reported) and a reproduce line, and the run goes on. With both
//! encryption modes, even cases run plain and odd ones encrypted.

use crate::layers::{Extra, ModeRun};
use crate::Budget;
use file_channel_testkit::harness::check::{json_str, Tally};
use file_channel_testkit::harness::damage::{run_case, CaseReport};
use file_channel_testkit::harness::encrypt::Encryption;
use std::collections::BTreeMap;

/// The views, in the order their mismatch counts are reported.
const VIEWS: [&str; 6] = [
    "replay",
    "verify",
    "repair_plan",
    "open_report",
    "open",
    "repair_apply",
];

/// Figures of a `damage` run beyond the [`Tally`].
#[derive(Debug, Default)]
struct DamageStats {
    actions: u64,
    unknowable_cases: u64,
    missing_unknowable: u64,
    opens_refused: u64,
    /// Sum over views of what the ledger allows at least minus what was reported, where
    /// positive (`committed − recovered − reported` when the check is exact).
    uncounted_losses: u64,
    /// Sum over views of what was reported minus what the ledger allows at most, where
    /// positive.
    overcounted: u64,
    mismatches_by_view: BTreeMap<&'static str, u64>,
    clean_exit_with_loss: BTreeMap<&'static str, u64>,
    deleted_without_copy: u64,
}

impl DamageStats {
    fn add(&mut self, r: &CaseReport) {
        self.actions += r.actions.len() as u64;
        self.unknowable_cases += u64::from(!r.knowable);
        self.missing_unknowable += r.missing_unknowable;
        self.opens_refused += u64::from(r.open_refused);
        for m in &r.mismatches {
            *self.mismatches_by_view.entry(m.view).or_default() += 1;
            self.uncounted_losses += m.expected.saturating_sub(m.reported);
            self.overcounted += m.reported.saturating_sub(m.expected);
        }
        for v in &r.clean_with_loss {
            *self.clean_exit_with_loss.entry(v).or_default() += 1;
        }
        self.deleted_without_copy += r.deleted_without_copy.len() as u64;
    }

    fn extra(&self, cases: u64) -> Extra {
        let by_view = |m: &BTreeMap<&'static str, u64>| {
            let members: Vec<String> = VIEWS
                .iter()
                .map(|v| format!("{}: {}", json_str(v), m.get(v).copied().unwrap_or(0)))
                .collect();
            format!("{{{}}}", members.join(", "))
        };
        vec![
            ("damage_actions", self.actions.to_string()),
            ("unknowable_cases", self.unknowable_cases.to_string()),
            (
                "missing_in_unknowable_cases",
                self.missing_unknowable.to_string(),
            ),
            (
                "knowable_cases",
                (cases - self.unknowable_cases).to_string(),
            ),
            ("opens_refused", self.opens_refused.to_string()),
            ("uncounted_losses", self.uncounted_losses.to_string()),
            ("overcounted_losses", self.overcounted.to_string()),
            ("mismatches_by_view", by_view(&self.mismatches_by_view)),
            ("clean_exit_with_loss", by_view(&self.clean_exit_with_loss)),
            (
                "deleted_without_copy",
                self.deleted_without_copy.to_string(),
            ),
        ]
    }
}

/// Layer `damage`: cases until the budget ends, or only case `only`. Case `k` runs in mode
/// `modes[k % modes.len()]` (its damage and channels are drawn from the seed and `k` alone).
pub fn damage(
    budget: &Budget,
    only: Option<u64>,
    modes: &[Encryption],
) -> anyhow::Result<Vec<ModeRun>> {
    let scratch = tempfile::Builder::new()
        .prefix("crashtest-damage-")
        .tempdir()?;
    // Kept for a look at a failing case (its `damaged/` copy is what the views saw).
    let keep = std::env::var_os("CRASHTEST_KEEP").is_some();
    let root = scratch.path().to_path_buf();
    let _scratch = if keep {
        eprintln!("damage: keeping case directories under {}", root.display());
        let _kept = scratch.keep();
        None
    } else {
        Some(scratch)
    };
    let mut tallies: Vec<(Encryption, Tally, DamageStats)> = modes
        .iter()
        .map(|&m| (m, Tally::default(), DamageStats::default()))
        .collect();
    let total = |t: &[(Encryption, Tally, DamageStats)]| t.iter().map(|(_, t, _)| t.cases).sum();
    let mut case = only.unwrap_or(0);
    while budget.more(total(&tallies)) {
        let which = (case % tallies.len() as u64) as usize;
        let (mode, tally, stats) = &mut tallies[which];
        let r = run_case(budget.seed, case, *mode, &root.join(format!("case-{case}")));
        for c in &r.checks {
            tally.add_check(c);
        }
        tally.panics += r.panics;
        stats.add(&r);
        if r.ok() {
            tally.finish_case(None);
        } else {
            eprintln!(
                "damage: case {case} of seed {} failed (encryption {mode}; {} committed, {} recovered, {}):\n  actions: {}\n  {}\n  reproduce: crashtest damage --seed {} --case {case} --encrypt {mode}",
                budget.seed,
                r.committed,
                r.recovered,
                if r.knowable { "knowable" } else { "unknowable: counts checked as at most" },
                r.actions.join("; "),
                r.failures.join("\n  "),
                budget.seed,
            );
            tally.finish_case(Some(format!(
                "case {case} (encryption {mode}): [{}] {}",
                r.actions.join("; "),
                r.failures.join("; ")
            )));
        }
        if only.is_some() {
            break;
        }
        case += 1;
    }
    Ok(tallies
        .into_iter()
        .map(|(encryption, tally, stats)| ModeRun {
            encryption,
            extra: stats.extra(tally.cases),
            tally,
        })
        .collect())
}
