//! The `sim`, `sweep` and `states` layers: loops over `file_channel_testkit::harness` with a budget.

use crate::Budget;
use file_channel_testkit::harness::check::Tally;
use file_channel_testkit::harness::rng::Rng;
use file_channel_testkit::harness::{sim as hsim, states as hstates, sweep as hsweep};

/// Extra JSON members of a summary.
pub type Extra = Vec<(&'static str, String)>;

/// Layer `sim`: generated cases until the budget ends (or only case `only`).
pub fn sim(
    budget: &Budget,
    only: Option<u64>,
    shrink_budget: usize,
    bit_flips: bool,
) -> anyhow::Result<(Tally, Extra)> {
    let mut tally = Tally::default();
    let mut ops_run = 0u64;
    let mut case = only.unwrap_or(0);
    while budget.more(tally.cases) {
        let (ops, params) = hsim::gen_ops_with(&mut Rng::fork(budget.seed, case), bit_flips);
        ops_run += ops.len() as u64;
        let (report, failure) = hsim::run_case_report(&ops, params);
        for c in &report.checks {
            tally.add_check(c);
        }
        match failure {
            None => tally.finish_case(None),
            Some(failure) => {
                if failure.contains("panic") {
                    tally.panics += 1;
                }
                eprintln!(
                    "sim: case {case} of seed {} failed: {failure}\n  reproduce: crashtest sim --seed {} --case {case}{}",
                    budget.seed,
                    budget.seed,
                    if bit_flips { "" } else { " --no-bit-flips" }
                );
                let (small, why) = hsim::shrink(&ops, params, failure.clone(), shrink_budget);
                eprintln!(
                    "  shrunk to {} ops ({params:?}): {small:?}\n  failure: {why}",
                    small.len()
                );
                tally.finish_case(Some(format!(
                    "case {case}: {why}; shrunk case {params:?} {small:?}"
                )));
            }
        }
        if only.is_some() {
            break;
        }
        case += 1;
    }
    Ok((tally, vec![("operations", ops_run.to_string())]))
}

/// Layer `sweep`: every operation index of the fixed workload, for every injection.
pub fn sweep(budget: &Budget, every: u64) -> anyhow::Result<(Tally, Extra)> {
    let n = hsweep::count_ops().map_err(anyhow::Error::msg)?;
    let injections = hsweep::sweep_modes(budget.seed);
    let mut done = 0u64;
    let tally = hsweep::sweep(&injections, every, &mut || {
        done += 1;
        budget.more(done - 1)
    })
    .map_err(anyhow::Error::msg)?;
    for f in &tally.failures {
        eprintln!("sweep: {f}");
    }
    Ok((
        tally,
        vec![
            ("workload_ops", n.to_string()),
            ("injections", injections.len().to_string()),
        ],
    ))
}

/// Layer `states`: the crash states of recorded workloads (variant 0, 1, 2, … of the fixed
/// workload) on real directories, until the budget ends.
pub fn states(budget: &Budget, every: usize) -> anyhow::Result<(Tally, Extra)> {
    let scratch = tempfile::Builder::new()
        .prefix("crashtest-states-")
        .tempdir()?;
    let mut total = Tally::default();
    let (mut generated, mut distinct, mut trace_ops) = (0u64, 0u64, 0u64);
    let mut variant = 0u64;
    while budget.more(total.cases) {
        let rec = hstates::record_workload(variant).map_err(anyhow::Error::msg)?;
        let dir = scratch.path().join(format!("v{variant}"));
        let mut done = total.cases;
        let (tally, stats) =
            hstates::run_states(&rec, budget.seed ^ variant, every, &dir, &mut || {
                done += 1;
                budget.more(done - 1)
            });
        for f in &tally.failures {
            eprintln!("states: workload variant {variant}: {f}");
        }
        total.merge(&tally);
        generated += stats.generated;
        distinct += stats.distinct;
        trace_ops += stats.trace_ops;
        variant += 1;
    }
    Ok((
        total,
        vec![
            ("workloads", variant.to_string()),
            ("trace_ops", trace_ops.to_string()),
            ("states_generated", generated.to_string()),
            ("states_distinct", distinct.to_string()),
        ],
    ))
}
