//! `crashtest`: the crash-recovery harness of the Sluice file channel.
//!
//! One subcommand per layer (`sim`, `sweep`, `states`, `kill`, `damage`) and `all`, each printing a JSON
//! summary line and a final plain line `N passed, N failed`. Every run is deterministic from
//! the seed it prints (the `kill` layer up to the timing of the kills). Exit status: 0 when
//! every case passed, 1 when a case failed, 2 on a usage or I/O error. The checks and
//! workloads live in `file_channel_testkit::harness`; `docs/testing.md` describes the fault model.

mod damage;
mod kill;
mod layers;

use clap::{Args, Parser, Subcommand};
use file_channel_testkit::harness::check::Tally;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Crash-recovery harness for the Sluice file channel.
#[derive(Parser, Debug)]
#[command(name = "crashtest", version, about)]
struct Cli {
    #[command(subcommand)]
    layer: Layer,
}

#[derive(Subcommand, Debug)]
enum Layer {
    /// Random workloads against the model on the simulated storage, with crashes and faults.
    Sim(SimArgs),
    /// A crash (in several modes) or an EIO at every storage operation of a fixed workload.
    Sweep(SweepArgs),
    /// Crash states enumerated from an operation trace, opened on real directories.
    States(StatesArgs),
    /// A child process running a real channel, SIGKILLed at random moments.
    Kill(KillArgs),
    /// Real channel directories damaged on purpose, every view held to the loss ledger.
    Damage(DamageArgs),
    /// Every layer in turn, each with the given budget.
    All(AllArgs),
    /// The child of the `kill` layer (internal).
    #[command(hide = true)]
    KillChild(kill::ChildArgs),
}

/// Flags every layer takes.
#[derive(Args, Debug, Clone)]
struct Common {
    /// Seed of every random choice; printed, so a run can be repeated. Default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this many seconds. Default: 60, or no limit when --cases is given.
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Stop after this many cases. Default: no limit.
    #[arg(long)]
    cases: Option<u64>,
}

#[derive(Args, Debug)]
struct SimArgs {
    #[command(flatten)]
    common: Common,
    /// Run only case number N of the seed (to reproduce a failure).
    #[arg(long)]
    case: Option<u64>,
    /// Reruns allowed for shrinking a failing case. Default: 300.
    #[arg(long, default_value_t = 300)]
    shrink_budget: usize,
    /// Leave out bit flips in old data (media damage), keeping every crash fault.
    #[arg(long)]
    no_bit_flips: bool,
}

#[derive(Args, Debug)]
struct DamageArgs {
    #[command(flatten)]
    common: Common,
    /// Run only case number N of the seed (to reproduce a failure).
    #[arg(long)]
    case: Option<u64>,
}

#[derive(Args, Debug)]
struct AllArgs {
    #[command(flatten)]
    common: Common,
    /// Leave out bit flips in old data in the `sim` layer.
    #[arg(long)]
    no_bit_flips: bool,
}

#[derive(Args, Debug)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// Check every N-th operation index only. Default: 1 (all).
    #[arg(long, default_value_t = 1)]
    every: u64,
}

#[derive(Args, Debug)]
struct StatesArgs {
    #[command(flatten)]
    common: Common,
    /// Cut the trace at every N-th operation only. Default: 1 (all).
    #[arg(long, default_value_t = 1)]
    every: usize,
}

#[derive(Args, Debug)]
struct KillArgs {
    #[command(flatten)]
    common: Common,
    /// Directory to run the channel in. Default: a fresh temporary directory.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// When a layer must stop.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// The seed.
    pub seed: u64,
    deadline: Option<Instant>,
    cases: Option<u64>,
}

impl Budget {
    fn from(c: &Common) -> Self {
        let seed = c.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let secs = match (c.duration_secs, c.cases) {
            (Some(s), _) => Some(s),
            (None, Some(_)) => None,
            (None, None) => Some(60),
        };
        Budget {
            seed,
            deadline: secs.map(|s| Instant::now() + Duration::from_secs(s)),
            cases: c.cases,
        }
    }

    /// Whether another case may start after `done` cases.
    pub fn more(&self, done: u64) -> bool {
        self.cases.is_none_or(|n| done < n) && self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

/// Prints a layer's JSON summary and its plain line.
fn report(layer: &str, seed: u64, tally: &Tally, extra: &[(&str, String)], secs: f64) {
    let mut extra = extra.to_vec();
    extra.push(("seconds", format!("{secs:.1}")));
    println!("{}", tally.to_json(layer, seed, &extra));
    println!("{tally}");
}

fn run_layer(layer: &str, common: &Common, bit_flips: bool) -> anyhow::Result<Tally> {
    let budget = Budget::from(common);
    eprintln!("crashtest {layer}: seed {}", budget.seed);
    let start = Instant::now();
    let (tally, extra) = match layer {
        "sim" => layers::sim(&budget, None, 300, bit_flips)?,
        "sweep" => layers::sweep(&budget, 1)?,
        "states" => layers::states(&budget, 1)?,
        "damage" => damage::damage(&budget, None)?,
        _ => kill::parent(&budget, None)?,
    };
    report(
        layer,
        budget.seed,
        &tally,
        &extra,
        start.elapsed().as_secs_f64(),
    );
    Ok(tally)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<Tally> {
        match cli.layer {
            Layer::Sim(a) => {
                let budget = Budget::from(&a.common);
                eprintln!("crashtest sim: seed {}", budget.seed);
                let start = Instant::now();
                let (t, extra) = layers::sim(&budget, a.case, a.shrink_budget, !a.no_bit_flips)?;
                report(
                    "sim",
                    budget.seed,
                    &t,
                    &extra,
                    start.elapsed().as_secs_f64(),
                );
                Ok(t)
            }
            Layer::Sweep(a) => {
                let budget = Budget::from(&a.common);
                eprintln!("crashtest sweep: seed {}", budget.seed);
                let start = Instant::now();
                let (t, extra) = layers::sweep(&budget, a.every)?;
                report(
                    "sweep",
                    budget.seed,
                    &t,
                    &extra,
                    start.elapsed().as_secs_f64(),
                );
                Ok(t)
            }
            Layer::States(a) => {
                let budget = Budget::from(&a.common);
                eprintln!("crashtest states: seed {}", budget.seed);
                let start = Instant::now();
                let (t, extra) = layers::states(&budget, a.every)?;
                report(
                    "states",
                    budget.seed,
                    &t,
                    &extra,
                    start.elapsed().as_secs_f64(),
                );
                Ok(t)
            }
            Layer::Kill(a) => {
                let budget = Budget::from(&a.common);
                eprintln!("crashtest kill: seed {}", budget.seed);
                let start = Instant::now();
                let (t, extra) = kill::parent(&budget, a.dir.as_deref())?;
                report(
                    "kill",
                    budget.seed,
                    &t,
                    &extra,
                    start.elapsed().as_secs_f64(),
                );
                Ok(t)
            }
            Layer::Damage(a) => {
                let budget = Budget::from(&a.common);
                eprintln!("crashtest damage: seed {}", budget.seed);
                let start = Instant::now();
                let (t, extra) = damage::damage(&budget, a.case)?;
                report(
                    "damage",
                    budget.seed,
                    &t,
                    &extra,
                    start.elapsed().as_secs_f64(),
                );
                Ok(t)
            }
            Layer::All(a) => {
                let common = Common {
                    seed: Some(Budget::from(&a.common).seed),
                    ..a.common
                };
                let mut total = Tally::default();
                for layer in ["sim", "sweep", "states", "kill", "damage"] {
                    total.merge(&run_layer(layer, &common, !a.no_bit_flips)?);
                }
                let seed = common.seed.unwrap_or_default();
                println!("{}", total.to_json("all", seed, &[]));
                println!("{total}");
                Ok(total)
            }
            Layer::KillChild(a) => {
                kill::child(&a)?;
                Ok(Tally::default())
            }
        }
    })();
    match result {
        Ok(t) if t.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("crashtest: {e:#}");
            ExitCode::from(2)
        }
    }
}
