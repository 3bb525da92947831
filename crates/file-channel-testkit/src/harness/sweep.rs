//! The `sweep` layer: the fixed workload ([`super::workload`]) is run once to count its storage
//! operations, then once per operation index `k` with a crash after the `k`-th operation (for
//! each [`CrashMode`] given), or with the `k`-th operation failing with EIO. Each time the image
//! a crash leaves is reopened and checked.

use super::check::Tally;
use super::sim::panic_message;
use super::workload::{fixed_workload, recover_and_check, sweep_config};
use crate::{CrashMode, SimStorage};
use file_channel::FileChannel;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The channel directory of the sweep, inside the simulated storage.
pub const SWEEP_DIR: &str = "/chan";

/// What is injected at operation `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// The process dies after `k` operations succeeded; the image is taken in this mode.
    Crash(CrashMode),
    /// Operation `k` fails with EIO; the workload goes on (or stops at its first error), then
    /// the image is taken without unsynced data.
    Fail,
}

/// Runs the fault-free workload and returns how many storage operations it made after open.
pub fn count_ops() -> Result<u64, String> {
    let sim = SimStorage::new();
    let cfg = sweep_config(SWEEP_DIR);
    let ch = FileChannel::open_with(cfg, Arc::new(sim.clone())).map_err(|e| e.to_string())?;
    let start = sim.op_count();
    let out = fixed_workload(&ch, &|| sim.op_count(), 0);
    if !out.finished {
        return Err("the fault-free workload did not finish".into());
    }
    ch.close().map_err(|e| e.to_string())?;
    Ok(sim.op_count() - start)
}

/// Runs the workload with `injection` at operation `k` (counted from after open) and checks the
/// recovery. `Err` describes a violation, an error or a panic.
pub fn sweep_point(injection: Injection, k: u64) -> Result<super::check::Check, String> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let sim = SimStorage::new();
        let cfg = sweep_config(SWEEP_DIR);
        let ch = FileChannel::open_with(cfg.clone(), Arc::new(sim.clone()))
            .map_err(|e| format!("open failed: {e}"))?;
        match injection {
            Injection::Crash(_) => sim.crash_after_ops(k),
            Injection::Fail => sim.fail_op_at(sim.op_count() + k),
        }
        let out = fixed_workload(&ch, &|| sim.op_count(), 0);
        let mode = match injection {
            Injection::Crash(mode) => mode,
            Injection::Fail => CrashMode::DropUnsynced,
        };
        let image = sim.crash(mode);
        drop(ch);
        let check = recover_and_check(&cfg, Arc::new(image), &out.ledger())?;
        if check.ok() {
            Ok(check)
        } else {
            Err(check.violations.join("; "))
        }
    }));
    match r {
        Ok(r) => r,
        Err(p) => Err(format!("panic: {}", panic_message(&*p))),
    }
}

/// The crash modes the sweep uses, seeded from `seed`.
pub fn sweep_modes(seed: u64) -> Vec<Injection> {
    vec![
        Injection::Crash(CrashMode::DropUnsynced),
        Injection::Crash(CrashMode::KeepAll),
        Injection::Crash(CrashMode::KeepPrefix { seed }),
        Injection::Crash(CrashMode::TornWrite {
            seed,
            sector_bytes: 512,
        }),
        Injection::Crash(CrashMode::TornWrite {
            seed: seed ^ 1,
            sector_bytes: 4096,
        }),
        Injection::Crash(CrashMode::GarbageTail { seed }),
        Injection::Fail,
    ]
}

/// Sweeps every operation index (plus a few past the end) for each injection, calling
/// `keep_going` before each point (return false to stop early, e.g. at a deadline).
pub fn sweep(
    injections: &[Injection],
    every: u64,
    keep_going: &mut dyn FnMut() -> bool,
) -> Result<Tally, String> {
    let n = count_ops()?;
    let mut tally = Tally::default();
    'outer: for &inj in injections {
        let mut k = 0;
        while k < n + 5 {
            if !keep_going() {
                break 'outer;
            }
            match sweep_point(inj, k) {
                Ok(check) => {
                    tally.add_check(&check);
                    tally.finish_case(None);
                }
                Err(e) => {
                    if e.starts_with("panic") {
                        tally.panics += 1;
                    }
                    tally.finish_case(Some(format!("{inj:?} at op {k}: {e}")));
                }
            }
            k += every.max(1);
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_big_enough_to_sweep() {
        let n = count_ops().unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 100, "only {n} operations");
    }

    #[test]
    fn a_coarse_sweep_passes() {
        let t = sweep(&sweep_modes(5), 23, &mut || true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.failed, 0, "{:?}", t.failures);
        assert!(t.crash_states > 50);
    }
}
