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
//! ([`super::workload::Outcome::ledger_at`]). Identical images are checked once.

use super::check::{Check, Tally};
use super::sim::panic_message;
use super::workload::{fixed_workload, recover_and_check, sweep_config, Outcome};
use crate::{CrashMode, SimStorage};
use file_channel::storage::{
    DynFile, DynStorage, LockError, LockGuard, StdStorage, Storage, StorageFile,
};
use file_channel::FileChannel;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The channel directory inside the traced storage.
pub const TRACE_DIR: &str = "/chan";

/// Sector size of the explicit torn-last-write states.
pub const TORN_SECTOR_BYTES: usize = 512;

/// Most torn variants of one write.
pub const MAX_TORN_VARIANTS: usize = 4;

/// One recorded storage operation. Files are named by a handle number assigned at create/open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceOp {
    /// `create(path)` → handle.
    Create {
        /// Handle number.
        handle: u64,
        /// Path.
        path: PathBuf,
    },
    /// `open(path, writable = true)` → handle.
    Open {
        /// Handle number.
        handle: u64,
        /// Path.
        path: PathBuf,
    },
    /// `write_at`.
    Write {
        /// Handle number.
        handle: u64,
        /// Offset.
        offset: u64,
        /// Bytes written.
        data: Vec<u8>,
    },
    /// `set_len`.
    SetLen {
        /// Handle number.
        handle: u64,
        /// New length.
        len: u64,
    },
    /// `sync_data`.
    SyncData {
        /// Handle number.
        handle: u64,
    },
    /// `rename`.
    Rename {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
    },
    /// `remove`.
    Remove {
        /// Path.
        path: PathBuf,
    },
    /// `sync_dir`.
    SyncDir {
        /// Directory.
        dir: PathBuf,
    },
    /// `create_dir_all`.
    CreateDirAll {
        /// Directory.
        dir: PathBuf,
    },
}

#[derive(Debug, Default)]
struct Recorder {
    ops: Vec<TraceOp>,
    next_handle: u64,
}

/// A [`Storage`] that forwards to a [`SimStorage`] and records every successful mutating
/// operation. Clones share the trace.
#[derive(Clone, Debug)]
pub struct TraceStorage {
    inner: SimStorage,
    rec: Arc<Mutex<Recorder>>,
}

impl Default for TraceStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceStorage {
    /// A traced, empty simulated file system.
    pub fn new() -> Self {
        Self {
            inner: SimStorage::new(),
            rec: Arc::default(),
        }
    }

    fn rec(&self) -> MutexGuard<'_, Recorder> {
        self.rec.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Operations recorded so far.
    pub fn len(&self) -> u64 {
        self.rec().ops.len() as u64
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the trace.
    pub fn ops(&self) -> Vec<TraceOp> {
        self.rec().ops.clone()
    }

    /// The simulated storage underneath.
    pub fn inner(&self) -> &SimStorage {
        &self.inner
    }
}

struct TraceFile {
    inner: DynFile,
    handle: u64,
    rec: Arc<Mutex<Recorder>>,
}

impl fmt::Debug for TraceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceFile({})", self.handle)
    }
}

impl TraceFile {
    fn record<T>(&self, op: TraceOp, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let mut rec = self.rec.lock().unwrap_or_else(PoisonError::into_inner);
        let r = f()?;
        rec.ops.push(op);
        Ok(r)
    }
}

impl StorageFile for TraceFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let op = TraceOp::Write {
            handle: self.handle,
            offset,
            data: buf.to_vec(),
        };
        self.record(op, || self.inner.write_at(buf, offset))
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let op = TraceOp::SetLen {
            handle: self.handle,
            len,
        };
        self.record(op, || self.inner.set_len(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        let op = TraceOp::SyncData {
            handle: self.handle,
        };
        self.record(op, || self.inner.sync_data())
    }
}

impl TraceStorage {
    fn record<T>(&self, op: TraceOp, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let mut rec = self.rec();
        let r = f()?;
        rec.ops.push(op);
        Ok(r)
    }

    fn file(&self, rec: &mut Recorder, inner: DynFile) -> (u64, DynFile) {
        let handle = rec.next_handle;
        rec.next_handle += 1;
        let f: DynFile = Arc::new(TraceFile {
            inner,
            handle,
            rec: Arc::clone(&self.rec),
        });
        (handle, f)
    }
}

impl Storage for TraceStorage {
    fn create(&self, path: &Path) -> io::Result<DynFile> {
        let mut rec = self.rec();
        let inner = self.inner.create(path)?;
        let (handle, f) = self.file(&mut rec, inner);
        rec.ops.push(TraceOp::Create {
            handle,
            path: path.to_path_buf(),
        });
        Ok(f)
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile> {
        let mut rec = self.rec();
        let inner = self.inner.open(path, writable)?;
        let (handle, f) = self.file(&mut rec, inner);
        if writable {
            rec.ops.push(TraceOp::Open {
                handle,
                path: path.to_path_buf(),
            });
        }
        Ok(f)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let op = TraceOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        };
        self.record(op, || self.inner.rename(from, to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let op = TraceOp::Remove {
            path: path.to_path_buf(),
        };
        self.record(op, || self.inner.remove(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let op = TraceOp::SyncDir {
            dir: dir.to_path_buf(),
        };
        self.record(op, || self.inner.sync_dir(dir))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let op = TraceOp::CreateDirAll {
            dir: dir.to_path_buf(),
        };
        self.record(op, || self.inner.create_dir_all(dir))
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        self.inner.available_space(dir)
    }

    fn lock(&self, path: &Path, owner: &str) -> Result<Box<dyn LockGuard>, LockError> {
        self.inner.lock(path, owner)
    }
}

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
}

/// Runs variant `variant` of the fixed workload on a [`TraceStorage`] (clean close included)
/// and returns the trace.
pub fn record_workload(variant: u64) -> Result<Recording, String> {
    let trace = TraceStorage::new();
    let storage: DynStorage = Arc::new(trace.clone());
    let cfg = sweep_config(TRACE_DIR);
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
        let cfg = sweep_config(&scratch.to_string_lossy());
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
        let rec = record_workload(0).unwrap_or_else(|e| panic!("{e}"));
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
