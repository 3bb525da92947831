//! The `sim` layer: random workloads against the [`Ledger`](super::check::Ledger) model on
//! [`SimStorage`], with crashes and faults as operations.
//!
//! A case is a list of [`SimOp`]s generated from a seed ([`gen_ops`]) or decoded from fuzz
//! bytes ([`ops_from_bytes`]). [`run_case`] drives the real channel and the model with it and
//! checks, after every step, that the pending count agrees and that takes come in commit order;
//! after every crash it reopens the channel on the crash image and checks the recovery with
//! [`Ledger::check`](super::check::Ledger::check). [`shrink`] cuts a failing case down to a short
//! one.
//!
//! Faults: dropping unsynced data (file contents and directory entries alike: creations, renames
//! and unlinks not yet covered by a directory fsync are lost), keeping a random prefix of them,
//! a torn last write at 512 B or 4 KiB sectors, garbage or zero tails, a failing fsync (EIO with
//! Linux's semantics: the data is dropped and a retry "succeeds"), a full disk (ENOSPC with a
//! short write) and bit flips in old data (sealed segments and checkpoints).
//!
//! A case runs with encryption off or on ([`SimParams::encryption`]); the checks are the same,
//! and after every recovery no record may fail to decrypt ([`Check::count_decrypt_failures`]):
//! a torn write or a flipped bit is damage, never tampering.
//!
//! | module | job |
//! |---|---|
//! | `generate` | cases from a seed ([`gen_ops`]) or from fuzz bytes ([`ops_from_bytes`]) |
//! | `driver` | runs a case: the channel and the model side by side, checks after every step |
//! | `bit_flips` | the bit-flip fault in old data |

mod bit_flips;
mod driver;
mod generate;
#[cfg(test)]
mod tests;

pub use generate::{gen_ops, gen_ops_with, ops_from_bytes, without_bit_flips};

use super::check::Check;
use super::encrypt::Encryption;
use crate::SimStorage;
use driver::Harness;
use file_channel::storage::Storage;
use file_channel::ChannelConfig;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

/// Open transaction slots a case can interleave.
pub const SLOTS: usize = 2;

/// Most operations in a generated case.
pub const MAX_OPS: usize = 80;

/// How a simulated crash treats what was not durable, plus optional damage to old data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashFault {
    /// Only synced data and directory entries survive.
    DropUnsynced,
    /// Everything survives (a process kill).
    KeepAll,
    /// A random prefix of the unsynced changes survives.
    KeepPrefix(u64),
    /// A random prefix survives and the next write is torn at 512-byte sectors.
    Torn512(u64),
    /// A random prefix survives and the next write is torn at 4 KiB sectors.
    Torn4k(u64),
    /// Unsynced file extensions survive as garbage.
    GarbageTail(u64),
    /// Unsynced file extensions survive as zeros.
    ZeroTail,
    /// A random prefix survives, then one bit of a sealed segment or a checkpoint flips.
    FlipOld(u64),
}

/// One step of a sim case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimOp {
    /// Put `n` new events in the transaction of `slot` (opening a put transaction if idle).
    Put {
        /// Transaction slot.
        slot: usize,
        /// Events to put.
        n: u8,
    },
    /// Take up to `n` events in the transaction of `slot`.
    Take {
        /// Transaction slot.
        slot: usize,
        /// Events to take.
        n: u8,
    },
    /// Commit the transaction of `slot`.
    Commit {
        /// Transaction slot.
        slot: usize,
    },
    /// Roll back the transaction of `slot`.
    Rollback {
        /// Transaction slot.
        slot: usize,
    },
    /// Close cleanly and reopen; nothing may change.
    Reopen,
    /// Crash and reopen on the crash image.
    Crash(CrashFault),
    /// The next fsync fails (EIO); a put is committed into it.
    FailNextSync,
    /// The disk fills up `slack` bytes from now; a put of `n` events is committed into it.
    DiskFull {
        /// Free bytes left.
        slack: u16,
        /// Events to put.
        n: u8,
    },
    /// Every open fails with `EMFILE` (the process is out of descriptors) while a put of `n`
    /// events is committed; the put may fail, the channel must not be poisoned for it.
    OpensFail {
        /// Events to put.
        n: u8,
    },
}

/// Channel shape of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimParams {
    /// Segment size: 4 KiB rotates constantly, 64 KiB rarely.
    pub segment_bytes_max: u64,
    /// Whether the prefill thread runs.
    pub prefill: bool,
    /// Whether every put record is encrypted (the test key of [`crate::harness::encrypt`]).
    pub encryption: Encryption,
}

/// The figures of one case.
#[derive(Clone, Debug, Default)]
pub struct CaseReport {
    /// One check per recovery (crashes, reopens and the final reopen).
    pub checks: Vec<Check>,
}

/// The channel directory inside the simulated storage.
pub const SIM_DIR: &str = "/chan";

/// The configuration a sim case opens its channel with.
pub fn sim_config(params: SimParams) -> ChannelConfig {
    let mut cfg = ChannelConfig::new(SIM_DIR);
    cfg.segment_bytes_max = params.segment_bytes_max;
    cfg.prefill_ahead_bytes = if params.prefill { 4096 } else { 0 };
    cfg.transaction_capacity = 50_000;
    cfg.capacity = 100_000;
    cfg.checkpoint_bytes = 2048;
    cfg.minimum_required_space = 0;
    cfg.keep_alive_ms = 0;
    params.encryption.apply(cfg)
}

/// Runs one case to the end (a final clean reopen included). `Err` names the first violation,
/// unexpected error or panic.
pub fn run_case(ops: &[SimOp], params: SimParams) -> Result<CaseReport, String> {
    match run_case_report(ops, params) {
        (report, None) => Ok(report),
        (_, Some(failure)) => Err(failure),
    }
}

/// Like [`run_case`], but returns the checks made up to a failure as well (a failing
/// recovery's check included), so the figures count what it lost.
pub fn run_case_report(ops: &[SimOp], params: SimParams) -> (CaseReport, Option<String>) {
    let mut report = CaseReport::default();
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let mut h = Harness::new(params)?;
        let mut run = || -> Result<(), String> {
            for (i, op) in ops.iter().enumerate() {
                h.step(op).map_err(|e| format!("op {i} {op:?}: {e}"))?;
            }
            h.reopen().map_err(|e| format!("final reopen: {e}"))
        };
        let r = run();
        report = std::mem::take(&mut h.report);
        r
    }));
    match result {
        Ok(Ok(())) => (report, None),
        Ok(Err(e)) => (report, Some(e)),
        Err(panic) => (report, Some(format!("panic: {}", panic_message(&*panic)))),
    }
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_owned()
    }
}

/// Shrinks a failing case: removes chunks of operations, halving the chunk size, while the case
/// still fails, within `budget` reruns. Returns the smallest failing case and its failure.
pub fn shrink(
    ops: &[SimOp],
    params: SimParams,
    failure: String,
    budget: usize,
) -> (Vec<SimOp>, String) {
    let mut best = ops.to_vec();
    let mut best_failure = failure;
    let mut runs = 0;
    let mut chunk = best.len().div_ceil(2).max(1);
    while runs < budget {
        let mut i = 0;
        let mut improved = false;
        while i < best.len() && runs < budget {
            let mut candidate = best.clone();
            candidate.drain(i..(i + chunk).min(best.len()));
            runs += 1;
            if let Err(f) = run_case(&candidate, params) {
                best = candidate;
                best_failure = f;
                improved = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !improved {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    (best, best_failure)
}

/// The channel directory path inside the simulated storage.
pub fn sim_dir() -> &'static Path {
    Path::new(SIM_DIR)
}

/// The storage trait object of a simulated storage (for callers that open channels directly).
pub fn dyn_storage(sim: &SimStorage) -> Arc<dyn Storage> {
    Arc::new(sim.clone())
}
