//! `crashtest`: the crash-recovery harness of the Sluice file channel.
//!
//! One subcommand per layer (`sim`, `sweep`, `states`, `kill`, `damage`) and `all`, each printing a JSON
//! summary line and a final plain line `N passed, N failed`. Every run is deterministic from
//! the seed it prints (the `kill` layer up to the timing of the kills). Exit status: 0 when
//! every case passed, 1 when a case failed, 2 on a usage or I/O error. The checks and
//! workloads live in `file_channel_testkit::harness`; `docs/testing.md` describes the fault model.
//!
//! Every layer runs with encryption at rest off, on, or both (`--encrypt`, default both): the
//! same checks, figures per mode (one JSON line each, `"encryption": "off"` / `"on"`, and with
//! both a line for the two together, `"both"`).

mod damage;
mod kill;
mod layers;

use clap::{Args, Parser, Subcommand};
use file_channel_testkit::harness::check::{json_str, Tally};
use file_channel_testkit::harness::encrypt::Encryption;
use layers::ModeRun;
use std::collections::BTreeMap;
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
    /// Encryption at rest: `off` (plain records), `on` (every put record sealed with a test
    /// key) or `both` (`sim` and `damage` alternate by case, `sweep` and `states` check every
    /// point in both, `kill` runs plain then encrypted on one directory; figures per mode).
    #[arg(long, value_enum, default_value_t = EncryptArg::Both)]
    encrypt: EncryptArg,
}

/// The `--encrypt` choice.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum EncryptArg {
    /// Plain records only.
    Off,
    /// Encrypted records only.
    On,
    /// Both, with figures per mode.
    Both,
}

impl EncryptArg {
    fn modes(self) -> &'static [Encryption] {
        match self {
            EncryptArg::Off => &[Encryption::Off],
            EncryptArg::On => &[Encryption::On],
            EncryptArg::Both => &Encryption::BOTH,
        }
    }
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

    /// The next of `parts_left` equal consecutive parts of what is left, `done` cases having
    /// run: an equal share of the remaining time and of the remaining cases (rounded up).
    pub fn part(&self, done: u64, parts_left: u64) -> Budget {
        let parts = parts_left.clamp(1, u64::from(u32::MAX));
        let now = Instant::now();
        Budget {
            seed: self.seed,
            deadline: self
                .deadline
                .map(|d| now + d.saturating_duration_since(now) / parts as u32),
            cases: self.cases.map(|n| n.saturating_sub(done).div_ceil(parts)),
        }
    }
}

/// The JSON member naming a mode.
fn mode_member(name: &str) -> (&'static str, String) {
    ("encryption", json_str(name))
}

/// Prints a layer's JSON summaries — one per encryption mode and, with several, one for all of
/// them (`"encryption": "both"`) — and its plain line; returns the figures per mode.
fn report(layer: &str, seed: u64, runs: Vec<ModeRun>, secs: f64) -> Vec<(Encryption, Tally)> {
    let seconds = ("seconds", format!("{secs:.1}"));
    let mut total = Tally::default();
    for r in &runs {
        let mut extra = vec![mode_member(r.encryption.name())];
        extra.extend(r.extra.iter().cloned());
        if runs.len() == 1 {
            extra.push(seconds.clone());
        }
        println!("{}", r.tally.to_json(layer, seed, &extra));
        total.merge(&r.tally);
    }
    if runs.len() > 1 {
        println!(
            "{}",
            total.to_json(layer, seed, &[mode_member("both"), seconds])
        );
    }
    println!("{total}");
    runs.into_iter().map(|r| (r.encryption, r.tally)).collect()
}

/// Runs one layer with its default flags (`all`).
fn run_layer(
    layer: &str,
    common: &Common,
    bit_flips: bool,
) -> anyhow::Result<Vec<(Encryption, Tally)>> {
    let budget = Budget::from(common);
    let modes = common.encrypt.modes();
    eprintln!("crashtest {layer}: seed {}", budget.seed);
    let start = Instant::now();
    let runs = match layer {
        "sim" => layers::sim(&budget, None, 300, bit_flips, modes)?,
        "sweep" => layers::sweep(&budget, 1, modes)?,
        "states" => layers::states(&budget, 1, modes)?,
        "damage" => damage::damage(&budget, None, modes)?,
        _ => kill::parent(&budget, None, modes)?,
    };
    Ok(report(
        layer,
        budget.seed,
        runs,
        start.elapsed().as_secs_f64(),
    ))
}

/// The sum of a layer's figures over its modes.
fn merged(runs: &[(Encryption, Tally)]) -> Tally {
    let mut t = Tally::default();
    for (_, r) in runs {
        t.merge(r);
    }
    t
}

/// Runs one layer's command: prints its seed, runs it, reports it.
fn layer_command(
    layer: &str,
    common: &Common,
    run: impl FnOnce(&Budget, &'static [Encryption]) -> anyhow::Result<Vec<ModeRun>>,
) -> anyhow::Result<Tally> {
    let budget = Budget::from(common);
    eprintln!("crashtest {layer}: seed {}", budget.seed);
    let start = Instant::now();
    let runs = run(&budget, common.encrypt.modes())?;
    Ok(merged(&report(
        layer,
        budget.seed,
        runs,
        start.elapsed().as_secs_f64(),
    )))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<Tally> {
        match cli.layer {
            Layer::Sim(a) => layer_command("sim", &a.common, |b, modes| {
                layers::sim(b, a.case, a.shrink_budget, !a.no_bit_flips, modes)
            }),
            Layer::Sweep(a) => layer_command("sweep", &a.common, |b, modes| {
                layers::sweep(b, a.every, modes)
            }),
            Layer::States(a) => layer_command("states", &a.common, |b, modes| {
                layers::states(b, a.every, modes)
            }),
            Layer::Kill(a) => layer_command("kill", &a.common, |b, modes| {
                kill::parent(b, a.dir.as_deref(), modes)
            }),
            Layer::Damage(a) => layer_command("damage", &a.common, |b, modes| {
                damage::damage(b, a.case, modes)
            }),
            Layer::All(a) => {
                let common = Common {
                    seed: Some(Budget::from(&a.common).seed),
                    ..a.common
                };
                let mut by_mode: BTreeMap<Encryption, Tally> = BTreeMap::new();
                for layer in ["sim", "sweep", "states", "kill", "damage"] {
                    for (mode, t) in run_layer(layer, &common, !a.no_bit_flips)? {
                        by_mode.entry(mode).or_default().merge(&t);
                    }
                }
                let seed = common.seed.unwrap_or_default();
                let mut total = Tally::default();
                for (mode, t) in &by_mode {
                    if by_mode.len() > 1 {
                        println!("{}", t.to_json("all", seed, &[mode_member(mode.name())]));
                    }
                    total.merge(t);
                }
                let all = if by_mode.len() > 1 {
                    "both"
                } else {
                    common.encrypt.modes()[0].name()
                };
                println!("{}", total.to_json("all", seed, &[mode_member(all)]));
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
