//! The `states` layer: record the storage operation trace of a workload, enumerate the crash
//! states the persistence model allows, materialise each into a real directory, open it with the
//! real engine ([`StdStorage`]) and check it.
//!
//! [`TraceStorage`] wraps a [`SimStorage`] and records every successful mutating operation
//! (create, open for writing, write, set_len, fsync, rename, remove, directory fsync, directory
//! creation) with its arguments, in execution order (one lock serialises the recording and the
//! forwarding, so the order is the order the simulated disk saw). A crash state is "the trace
//! cut after operation `k`" taken through one persistence rule:
//!
//! * `KeepAll` — everything issued survives (a process kill: the page cache survives);
//! * `DropUnsynced` — only what an fsync covered (file data) or a directory fsync covered
//!   (creations, renames, unlinks) survives;
//! * `KeepPrefix` / `TornWrite` at 512 B and 4 KiB — a random prefix of the unsynced changes
//!   survives, and the next write is torn sector by sector;
//! * a torn last write: operation `k` is a write and only its first `j` sectors (of 512 B)
//!   reach the disk, everything else issued before it surviving.
//!
//! [`materialise`] replays the cut trace onto a fresh [`SimStorage`] (the persistence model),
//! crashes it in the chosen mode and copies the resulting files into a real directory. What was
//! acknowledged at cut `k` comes from the workload's answers tagged with trace positions
//! ([`super::workload::Outcome::ledger_at`]). Identical images are checked once. A workload is
//! recorded with encryption off or on ([`Recording::encryption`]); its crash states are opened
//! with the same keys.
//!
//! The recording storage is in the `trace` module.

mod trace;

pub use trace::{TraceOp, TraceStorage};

use super::check::{Check, Tally};
use super::encrypt::Encryption;
use super::sim::panic_message;
use super::workload::{fixed_workload, recover_and_check, sweep_config, Outcome};
use crate::{CrashMode, SimStorage};
use file_channel::storage::{DynFile, DynStorage, StdStorage, Storage};
use file_channel::FileChannel;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The channel directory inside the traced storage.
pub const TRACE_DIR: &str = "/chan";

/// Sector size of the explicit torn-last-write states.
pub const TORN_SECTOR_BYTES: usize = 512;

/// Most torn variants of one write.
pub const MAX_TORN_VARIANTS: usize = 4;

/// Which persistence rule a crash state applies to the cut trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateRule {
    /// A crash in this mode after the first `k` operations.
    Mode(CrashMode),
    /// Everything up to `k` survives, and of operation `k` (a write) only the first `sectors`
    /// 512-byte sectors.
    TornLast {
        /// Sectors of the last write that reached the disk.
        sectors: usize,
    },
}

/// Replays the first `k` operations of `ops` onto a fresh simulated storage and applies `rule`.
/// Returns the crash image.
pub fn crash_state(ops: &[TraceOp], k: usize, rule: StateRule) -> io::Result<SimStorage> {
    let sim = SimStorage::new();
    let mut handles: BTreeMap<u64, DynFile> = BTreeMap::new();
    let k = k.min(ops.len());
    for op in &ops[..k] {
        apply(&sim, &mut handles, op)?;
    }
    match rule {
        StateRule::Mode(mode) => Ok(sim.crash(mode)),
        StateRule::TornLast { sectors } => {
            if let Some(TraceOp::Write {
                handle,
                offset,
                data,
            }) = ops.get(k)
            {
                let cut = (sectors * TORN_SECTOR_BYTES).min(data.len());
                if let Some(f) = handles.get(handle) {
                    f.write_at(&data[..cut], *offset)?;
                }
            }
            Ok(sim.crash(CrashMode::KeepAll))
        }
    }
}

fn apply(sim: &SimStorage, handles: &mut BTreeMap<u64, DynFile>, op: &TraceOp) -> io::Result<()> {
    let file = |handles: &BTreeMap<u64, DynFile>, h: &u64| {
        handles
            .get(h)
            .cloned()
            .ok_or_else(|| io::Error::other(format!("trace names unknown handle {h}")))
    };
    match op {
        TraceOp::Create { handle, path } => {
            handles.insert(*handle, sim.create(path)?);
        }
        TraceOp::Open { handle, path } => {
            handles.insert(*handle, sim.open(path, true)?);
        }
        TraceOp::Write {
            handle,
            offset,
            data,
        } => file(handles, handle)?.write_at(data, *offset)?,
        TraceOp::SetLen { handle, len } => file(handles, handle)?.set_len(*len)?,
        TraceOp::SyncData { handle } => file(handles, handle)?.sync_data()?,
        TraceOp::Rename { from, to } => sim.rename(from, to)?,
        TraceOp::Remove { path } => sim.remove(path)?,
        TraceOp::SyncDir { dir } => sim.sync_dir(dir)?,
        TraceOp::CreateDirAll { dir } => sim.create_dir_all(dir)?,
    }
    Ok(())
}

/// The files of a simulated image under `TRACE_DIR`, relative names and contents, sorted.
pub fn image_files(image: &SimStorage) -> Vec<(PathBuf, Vec<u8>)> {
    image
        .list_all()
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(TRACE_DIR).ok()?.to_path_buf();
            let bytes = image.read_file(&p)?;
            Some((rel, bytes))
        })
        .collect()
}

/// Writes `files` into the real directory `dir` (created if missing).
pub fn materialise(files: &[(PathBuf, Vec<u8>)], dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}

/// A recorded workload: its trace and what it was told.
#[derive(Clone, Debug)]
pub struct Recording {
    /// The operations, in order.
    pub ops: Vec<TraceOp>,
    /// The answers, tagged with trace positions.
    pub outcome: Outcome,
    /// Whether the channel encrypted its records (its crash states are opened the same way).
    pub encryption: Encryption,
}

/// Runs variant `variant` of the fixed workload on a [`TraceStorage`] (clean close included),
/// with encryption off or on, and returns the trace.
pub fn record_workload(variant: u64, encryption: Encryption) -> Result<Recording, String> {
    let trace = TraceStorage::new();
    let storage: DynStorage = Arc::new(trace.clone());
    let cfg = sweep_config(TRACE_DIR, encryption);
    let ch = FileChannel::open_with(cfg, storage).map_err(|e| e.to_string())?;
    let t = trace.clone();
    let outcome = fixed_workload(&ch, &move || t.len(), variant);
    if !outcome.finished {
        return Err("the recorded workload did not finish".into());
    }
    ch.close().map_err(|e| e.to_string())?;
    Ok(Recording {
        ops: trace.ops(),
        outcome,
        encryption,
    })
}

/// Every crash state of cut `k`: the crash modes (seeded by `seed` and `k`) and, if operation
/// `k` is a write, its torn variants.
pub fn rules_at(ops: &[TraceOp], k: usize, seed: u64) -> Vec<StateRule> {
    let s = seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rules = vec![
        StateRule::Mode(CrashMode::KeepAll),
        StateRule::Mode(CrashMode::DropUnsynced),
        StateRule::Mode(CrashMode::KeepPrefix { seed: s }),
        StateRule::Mode(CrashMode::TornWrite {
            seed: s,
            sector_bytes: 512,
        }),
        StateRule::Mode(CrashMode::TornWrite {
            seed: s ^ 1,
            sector_bytes: 4096,
        }),
        StateRule::Mode(CrashMode::GarbageTail { seed: s }),
    ];
    if let Some(TraceOp::Write { data, .. }) = ops.get(k) {
        let sectors = data.len().div_ceil(TORN_SECTOR_BYTES);
        let step = sectors.div_ceil(MAX_TORN_VARIANTS).max(1);
        let mut j = 0;
        while j < sectors {
            rules.push(StateRule::TornLast { sectors: j });
            j += step;
        }
    }
    rules
}

/// Counters of a `states` run beyond the [`Tally`].
#[derive(Clone, Debug, Default)]
pub struct StatesStats {
    /// Crash states generated (before removing identical images).
    pub generated: u64,
    /// Distinct images checked.
    pub distinct: u64,
    /// Trace length of the recorded workload.
    pub trace_ops: u64,
}

/// Checks one crash state: materialises it under `scratch` (which must not exist or be empty)
/// and opens it with the real engine.
pub fn check_state(
    rec: &Recording,
    files: &[(PathBuf, Vec<u8>)],
    k: usize,
    scratch: &Path,
) -> Result<Check, String> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        materialise(files, scratch).map_err(|e| format!("materialise: {e}"))?;
        let cfg = sweep_config(&scratch.to_string_lossy(), rec.encryption);
        let ledger = rec.outcome.ledger_at(k as u64);
        let check = recover_and_check(&cfg, Arc::new(StdStorage::new()), &ledger)?;
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

/// Enumerates and checks crash states of a recorded workload, cut points `0..=len` stepping by
/// `every`, in directories `scratch/<n>` (each removed after its check). `keep_going` is asked
/// before each state.
pub fn run_states(
    rec: &Recording,
    seed: u64,
    every: usize,
    scratch: &Path,
    keep_going: &mut dyn FnMut() -> bool,
) -> (Tally, StatesStats) {
    let mut tally = Tally::default();
    let mut stats = StatesStats {
        trace_ops: rec.ops.len() as u64,
        ..StatesStats::default()
    };
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut n = 0u64;
    let mut k = 0;
    'outer: while k <= rec.ops.len() {
        for rule in rules_at(&rec.ops, k, seed) {
            if !keep_going() {
                break 'outer;
            }
            stats.generated += 1;
            let image = match crash_state(&rec.ops, k, rule) {
                Ok(i) => i,
                Err(e) => {
                    tally.finish_case(Some(format!("cut {k} {rule:?}: replaying the trace: {e}")));
                    continue;
                }
            };
            let files = image_files(&image);
            if !seen.insert(fingerprint(&files)) {
                continue;
            }
            stats.distinct += 1;
            let dir = scratch.join(n.to_string());
            n += 1;
            match check_state(rec, &files, k, &dir) {
                Ok(c) => {
                    tally.add_check(&c);
                    tally.finish_case(None);
                }
                Err(e) => {
                    if e.starts_with("panic") {
                        tally.panics += 1;
                    }
                    tally.finish_case(Some(format!("cut {k} {rule:?}: {e}")));
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        k += every.max(1);
    }
    (tally, stats)
}

/// A 64-bit FNV-1a fingerprint of an image (names and contents).
fn fingerprint(files: &[(PathBuf, Vec<u8>)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for (p, b) in files {
        eat(p.as_os_str().as_encoded_bytes());
        eat(&(b.len() as u64).to_le_bytes());
        eat(b);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaying_the_whole_trace_gives_the_final_image() {
        let rec = record_workload(0, Encryption::Off).unwrap_or_else(|e| panic!("{e}"));
        assert!(rec.ops.len() > 100);
        let image = crash_state(&rec.ops, rec.ops.len(), StateRule::Mode(CrashMode::KeepAll))
            .unwrap_or_else(|e| panic!("{e}"));
        let files = image_files(&image);
        assert!(files
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with(".seg")));
        assert!(files
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with(".ckpt")));
    }

    #[test]
    fn the_crash_states_of_an_encrypted_workload_pass() {
        let rec = record_workload(1, Encryption::On).unwrap_or_else(|e| panic!("{e}"));
        let scratch = std::env::temp_dir().join(format!("states-test-{}", std::process::id()));
        let (tally, stats) = run_states(&rec, 3, 17, &scratch, &mut || true);
        let _ = std::fs::remove_dir_all(&scratch);
        assert_eq!(tally.failed, 0, "{:?}", tally.failures);
        assert!(stats.distinct > 20, "{stats:?}");
        assert_eq!(tally.decrypt_failures, 0);
    }

    #[test]
    fn unsynced_creation_is_lost_and_torn_writes_are_cut() {
        let ops = vec![
            TraceOp::CreateDirAll {
                dir: PathBuf::from("/chan"),
            },
            TraceOp::Create {
                handle: 0,
                path: PathBuf::from("/chan/f"),
            },
            TraceOp::Write {
                handle: 0,
                offset: 0,
                data: vec![7; 1500],
            },
        ];
        let dropped = crash_state(&ops, 3, StateRule::Mode(CrashMode::DropUnsynced))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(image_files(&dropped).is_empty());
        let torn = crash_state(&ops, 2, StateRule::TornLast { sectors: 2 })
            .unwrap_or_else(|e| panic!("{e}"));
        let files = image_files(&torn);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].1.len(), 1024);
        let rules = rules_at(&ops, 2, 1);
        assert_eq!(rules.len(), 6 + 3, "0, 1 and 2 sectors of a 3-sector write");
    }
}
