//! The `sweep` layer: the fixed workload ([`super::workload`]) is run once to count its storage
//! operations, then once per operation index `k` with a crash after the `k`-th operation (for
//! each [`CrashMode`] given), or with the `k`-th operation failing with EIO. Each time the image
//! a crash leaves is reopened and checked. A sweep runs in one or both encryption modes: at each
//! index the point is checked in every mode asked for (an encrypted workload writes bigger put
//! records, so its operation count, and what operation `k` is, differ).

use super::check::Tally;
use super::encrypt::Encryption;
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
pub fn count_ops(encryption: Encryption) -> Result<u64, String> {
    let sim = SimStorage::new();
    let cfg = sweep_config(SWEEP_DIR, encryption);
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
pub fn sweep_point(
    injection: Injection,
    k: u64,
    encryption: Encryption,
) -> Result<super::check::Check, String> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let sim = SimStorage::new();
        let cfg = sweep_config(SWEEP_DIR, encryption);
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

/// One encryption mode's share of a sweep.
#[derive(Clone, Debug)]
pub struct SweepRun {
    /// The mode.
    pub encryption: Encryption,
    /// Storage operations of the fault-free workload in this mode.
    pub workload_ops: u64,
    /// The points checked in this mode.
    pub tally: Tally,
}

/// Sweeps every operation index (plus a few past the end) for each injection, in each mode of
/// `modes` at every index, calling `keep_going` before each point (return false to stop early,
/// e.g. at a deadline). Returns one [`SweepRun`] per mode, in the order of `modes`.
pub fn sweep(
    injections: &[Injection],
    modes: &[Encryption],
    every: u64,
    keep_going: &mut dyn FnMut() -> bool,
) -> Result<Vec<SweepRun>, String> {
    let mut runs = modes
        .iter()
        .map(|&encryption| {
            Ok(SweepRun {
                encryption,
                workload_ops: count_ops(encryption)?,
                tally: Tally::default(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let last = runs.iter().map(|r| r.workload_ops).max().unwrap_or(0) + 5;
    'outer: for &inj in injections {
        let mut k = 0;
        while k < last {
            for run in &mut runs {
                if k >= run.workload_ops + 5 {
                    continue;
                }
                if !keep_going() {
                    break 'outer;
                }
                let tally = &mut run.tally;
                match sweep_point(inj, k, run.encryption) {
                    Ok(check) => {
                        tally.add_check(&check);
                        tally.finish_case(None);
                    }
                    Err(e) => {
                        if e.starts_with("panic") {
                            tally.panics += 1;
                        }
                        tally.finish_case(Some(format!(
                            "{inj:?} at op {k}, encryption {}: {e}",
                            run.encryption
                        )));
                    }
                }
            }
            k += every.max(1);
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_big_enough_to_sweep() {
        for encryption in Encryption::BOTH {
            let n = count_ops(encryption).unwrap_or_else(|e| panic!("{e}"));
            assert!(n > 100, "only {n} operations with encryption {encryption}");
        }
    }

    #[test]
    fn a_coarse_sweep_passes_in_both_modes() {
        let runs = sweep(&sweep_modes(5), &Encryption::BOTH, 23, &mut || true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(runs.len(), 2);
        for r in &runs {
            let t = &r.tally;
            assert_eq!(t.failed, 0, "{}: {:?}", r.encryption, t.failures);
            assert!(t.crash_states > 50, "{}", r.encryption);
        }
    }
}
