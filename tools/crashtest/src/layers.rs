//! The `sim`, `sweep` and `states` layers: loops over `file_channel_testkit::harness` with a
//! budget, in each encryption mode asked for ([`ModeRun`]: one tally per mode).

use crate::Budget;
use file_channel_testkit::harness::check::Tally;
use file_channel_testkit::harness::encrypt::Encryption;
use file_channel_testkit::harness::rng::Rng;
use file_channel_testkit::harness::{sim as hsim, states as hstates, sweep as hsweep};

/// Extra JSON members of a summary.
pub type Extra = Vec<(&'static str, String)>;

/// What a layer found in one encryption mode.
#[derive(Debug)]
pub struct ModeRun {
    /// The mode.
    pub encryption: Encryption,
    /// Its figures.
    pub tally: Tally,
    /// The layer's own figures in that mode.
    pub extra: Extra,
}

impl ModeRun {
    fn new(encryption: Encryption) -> Self {
        Self {
            encryption,
            tally: Tally::default(),
            extra: Extra::new(),
        }
    }
}

/// Total cases over every mode.
pub fn cases(runs: &[ModeRun]) -> u64 {
    runs.iter().map(|r| r.tally.cases).sum()
}

/// Layer `sim`: generated cases until the budget ends (or only case `only`). Case `k` runs in
/// mode `modes[k % modes.len()]`; its operations depend on the seed and `k` only, so with both
/// modes the even cases run plain and the odd ones encrypted.
pub fn sim(
    budget: &Budget,
    only: Option<u64>,
    shrink_budget: usize,
    bit_flips: bool,
    modes: &[Encryption],
) -> anyhow::Result<Vec<ModeRun>> {
    let mut runs: Vec<ModeRun> = modes.iter().map(|&m| ModeRun::new(m)).collect();
    let mut ops_run = vec![0u64; runs.len()];
    let mut case = only.unwrap_or(0);
    while budget.more(cases(&runs)) {
        let which = (case % runs.len() as u64) as usize;
        let run = &mut runs[which];
        let tally = &mut run.tally;
        let (ops, mut params) = hsim::gen_ops_with(&mut Rng::fork(budget.seed, case), bit_flips);
        params.encryption = run.encryption;
        ops_run[which] += ops.len() as u64;
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
                    "sim: case {case} of seed {} failed (encryption {}): {failure}\n  reproduce: crashtest sim --seed {} --case {case} --encrypt {}{}",
                    budget.seed,
                    run.encryption,
                    budget.seed,
                    run.encryption,
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
    for (run, ops) in runs.iter_mut().zip(ops_run) {
        run.extra.push(("operations", ops.to_string()));
    }
    Ok(runs)
}

/// Layer `sweep`: every operation index of the fixed workload, for every injection, each index
/// in every mode.
pub fn sweep(budget: &Budget, every: u64, modes: &[Encryption]) -> anyhow::Result<Vec<ModeRun>> {
    let injections = hsweep::sweep_modes(budget.seed);
    let mut done = 0u64;
    let runs = hsweep::sweep(&injections, modes, every, &mut || {
        done += 1;
        budget.more(done - 1)
    })
    .map_err(anyhow::Error::msg)?;
    Ok(runs
        .into_iter()
        .map(|r| {
            for f in &r.tally.failures {
                eprintln!("sweep: {f}");
            }
            ModeRun {
                encryption: r.encryption,
                tally: r.tally,
                extra: vec![
                    ("workload_ops", r.workload_ops.to_string()),
                    ("injections", injections.len().to_string()),
                ],
            }
        })
        .collect())
}

/// Layer `states`: the crash states of recorded workloads (variant 0, 1, 2, … of the fixed
/// workload, each recorded once per mode) on real directories, until the budget ends.
pub fn states(budget: &Budget, every: usize, modes: &[Encryption]) -> anyhow::Result<Vec<ModeRun>> {
    let scratch = tempfile::Builder::new()
        .prefix("crashtest-states-")
        .tempdir()?;
    let mut runs: Vec<ModeRun> = modes.iter().map(|&m| ModeRun::new(m)).collect();
    // Per mode: workloads, trace operations, states generated, distinct states.
    let mut stats = vec![[0u64; 4]; runs.len()];
    let mut variant = 0u64;
    'variants: while budget.more(cases(&runs)) {
        for (which, stat) in stats.iter_mut().enumerate() {
            if !budget.more(cases(&runs)) {
                break 'variants;
            }
            let mode = runs[which].encryption;
            let rec = hstates::record_workload(variant, mode).map_err(anyhow::Error::msg)?;
            let dir = scratch.path().join(format!("v{variant}-{mode}"));
            let mut done = cases(&runs);
            let (tally, s) =
                hstates::run_states(&rec, budget.seed ^ variant, every, &dir, &mut || {
                    done += 1;
                    budget.more(done - 1)
                });
            for f in &tally.failures {
                eprintln!("states: workload variant {variant}, encryption {mode}: {f}");
            }
            runs[which].tally.merge(&tally);
            *stat = [
                stat[0] + 1,
                stat[1] + s.trace_ops,
                stat[2] + s.generated,
                stat[3] + s.distinct,
            ];
        }
        variant += 1;
    }
    for (run, [workloads, trace_ops, generated, distinct]) in runs.iter_mut().zip(stats) {
        run.extra = vec![
            ("workloads", workloads.to_string()),
            ("trace_ops", trace_ops.to_string()),
            ("states_generated", generated.to_string()),
            ("states_distinct", distinct.to_string()),
        ];
    }
    Ok(runs)
}
