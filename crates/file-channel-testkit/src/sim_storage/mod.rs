//! [`SimStorage`]: a deterministic, in-memory file system for crash and fault tests.
//!
//! The engine's durability claims are only as good as the crashes they were tested against, and
//! real power cuts are neither reproducible nor fast. `SimStorage` therefore models what a real
//! file system promises and nothing more. For every file (inode) and every directory entry it
//! keeps a *live* image (what the running process sees) and a *durable* image (what survives a
//! power loss), plus the ordered list of changes made since the last successful sync:
//!
//! * file contents become durable only through [`StorageFile::sync_data`];
//! * directory entries (creations, renames, removals) become durable only through
//!   [`Storage::sync_dir`] of the directory holding them.
//!
//! [`SimStorage::crash`] turns that history into the image a crash would leave, according to a
//! [`CrashMode`]: only synced state, everything, a seeded-random prefix of the unsynced changes,
//! a torn write with sector-sized holes, or garbage past the durable end of files. Faults can be
//! injected deterministically: a full disk (`ENOSPC` with a short write), failing fsyncs
//! (`EIO`, with Linux's "the unsynced data is gone and a retry falsely succeeds" semantics), an
//! `EIO` at a chosen operation, and a process death after a number of operations. The same seed
//! and the same history always give the same crash image.
//!
//! Simplifications, on purpose:
//!
//! * Directories are durable as soon as [`Storage::create_dir_all`] returns, and are never
//!   removed; only the file entries inside them have a live/durable distinction. `.` and `/`
//!   always exist.
//! * Paths are opaque keys compared component-wise (`a//b` is `a/b`, but `./a` is not `a`); there
//!   are no symlinks, permissions or hard links other than an inode reachable through a durable
//!   name while its live name moved.
//! * A rename inside one directory is one atomic entry change. A rename across directories is an
//!   unlink in the source plus a link in the target, each made durable by syncing its own
//!   directory.
//! * An unsynced change lost to a failed sync is replayed over by later syncs: the durable image
//!   is the old durable image with the later changes applied, as with pages dropped by a failed
//!   `fsync` on Linux.
//! * Files are limited to 16 GiB (`EFBIG` beyond), since contents live in memory.
//! * The test helpers ([`SimStorage::write_file`], [`SimStorage::read_file`], …) are not
//!   counted as operations, bypass the capacity limit and keep working after the storage died,
//!   so a test can inspect a dead storage. [`Storage::exists`] answers `false` once the storage
//!   is dead, as it cannot report an error.

use file_channel::storage::{parent_dir, DynFile, LockError, LockGuard, Storage, StorageFile};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The message of every error returned once the simulated process is dead.
const DEAD_MESSAGE: &str = "simulated crash: storage is dead";

/// What [`Storage::available_space`] reports when no capacity is set.
const UNLIMITED_SPACE: u64 = 1 << 50;

/// The largest simulated file, so that a wild offset is an error instead of an allocation
/// failure (which aborts the process).
const MAX_FILE_BYTES: u64 = if (isize::MAX as u64) < (1 << 34) {
    isize::MAX as u64
} else {
    1 << 34
};

/// Domain separators so that files and directories draw from unrelated random streams.
const FILE_STREAM: u64 = 0x66_69_6c_65;
const DIR_STREAM: u64 = 0x64_69_72_21;
const GARBAGE_STREAM: u64 = 0x67_61_72_62;

/// What a crash keeps of the changes that were not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Only durable state survives: unsynced writes, truncations and directory entry changes
    /// are all lost.
    DropUnsynced,
    /// Everything in the live image survives, as after `kill -9` (the page cache survives).
    KeepAll,
    /// Per file, a seeded-random prefix (from none to all) of its unsynced writes and
    /// truncations persists, in order; per directory, a seeded-random prefix of its unsynced
    /// entry changes persists.
    KeepPrefix {
        /// Seed of the random choices.
        seed: u64,
    },
    /// Like [`CrashMode::KeepPrefix`], then the unsynced change right after the kept prefix, if
    /// it is a write, is torn: each `sector_bytes`-aligned sector it covers independently
    /// persists or not, so the file can have holes, not only a short tail.
    TornWrite {
        /// Seed of the random choices.
        seed: u64,
        /// Sector size of the simulated device (0 is treated as 1).
        sector_bytes: u64,
    },
    /// Like [`CrashMode::DropUnsynced`], but a file whose live image is longer than its durable
    /// image keeps the extra length, filled with seeded garbage bytes instead of being cut (as
    /// when the size was journaled but the data blocks were not written).
    GarbageTail {
        /// Seed of the garbage.
        seed: u64,
    },
}

/// A deterministic in-memory file system with a live and a durable image of everything, for
/// crash and fault tests. Clones share the same file system.
#[derive(Clone, Debug)]
pub struct SimStorage {
    shared: Arc<Mutex<State>>,
}

/// One unsynced change to a file's contents.
#[derive(Clone, Debug)]
enum DataOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen { len: u64 },
}

/// One unsynced change to a directory's entries.
#[derive(Clone, Debug)]
enum EntryOp {
    Link { name: String, ino: u64 },
    Unlink { name: String },
    Rename { from: String, to: String, ino: u64 },
}

impl EntryOp {
    fn apply(&self, map: &mut BTreeMap<String, u64>) {
        match self {
            EntryOp::Link { name, ino } => {
                map.insert(name.clone(), *ino);
            }
            EntryOp::Unlink { name } => {
                map.remove(name);
            }
            EntryOp::Rename { from, to, ino } => {
                map.remove(from);
                map.insert(to.clone(), *ino);
            }
        }
    }

    fn ino(&self) -> Option<u64> {
        match self {
            EntryOp::Link { ino, .. } | EntryOp::Rename { ino, .. } => Some(*ino),
            EntryOp::Unlink { .. } => None,
        }
    }
}

#[derive(Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<DataOp>,
    handles: usize,
}

#[derive(Default)]
struct Dir {
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    pending: Vec<EntryOp>,
}

struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    /// Held directory locks: lock file path → what the holder wrote.
    locks: BTreeMap<PathBuf, String>,
    capacity: Option<u64>,
    available_override: Option<u64>,
    failing_syncs: u64,
    failing_ops: BTreeSet<u64>,
    /// Successful mutating operations left before the process dies.
    crash_budget: Option<u64>,
    dead: bool,
    ops: u64,
    syncs: u64,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A summary: the contents of the files would drown any assertion message.
        f.debug_struct("State")
            .field("dirs", &self.dirs.len())
            .field("inodes", &self.inodes.len())
            .field("locks", &self.locks.len())
            .field("capacity", &self.capacity)
            .field("dead", &self.dead)
            .field("ops", &self.ops)
            .field("syncs", &self.syncs)
            .finish()
    }
}

fn lock_state(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn dead_error() -> io::Error {
    io::Error::other(DEAD_MESSAGE)
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

fn efbig() -> io::Error {
    io::Error::from_raw_os_error(libc::EFBIG)
}

fn not_found(what: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", what.display()),
    )
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Splits a file path into its directory key and its file name.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .ok_or_else(|| invalid_input(format!("{}: not a file path", path.display())))?
        .to_str()
        .ok_or_else(|| invalid_input(format!("{}: file name is not UTF-8", path.display())))?
        .to_owned();
    Ok((parent_dir(path).to_path_buf(), name))
}

/// Checks that `[offset, offset + len)` is a valid file range and returns its end.
fn range_end(offset: u64, len: usize) -> io::Result<u64> {
    let end = u64::try_from(len)
        .ok()
        .and_then(|len| offset.checked_add(len))
        .ok_or_else(|| invalid_input(format!("offset {offset} + {len} bytes overflows")))?;
    if end > MAX_FILE_BYTES {
        return Err(efbig());
    }
    Ok(end)
}

/// Writes `data` at `offset`, zero-filling any gap. The range was validated by [`range_end`].
fn apply_write(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let start = offset as usize;
    let end = start + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[start..end].copy_from_slice(data);
}

fn apply_data_op(buf: &mut Vec<u8>, op: &DataOp) {
    match op {
        DataOp::Write { offset, data } => apply_write(buf, *offset, data),
        DataOp::SetLen { len } => buf.resize(*len as usize, 0),
    }
}

/// splitmix64: tiny, fast and good enough to pick crash outcomes.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64, stream: u64, key: u64) -> Self {
        let mut mixer = SplitMix(seed ^ stream.rotate_left(32));
        let a = mixer.next_u64();
        SplitMix(a ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=n`.
    fn up_to(&mut self, n: usize) -> usize {
        (self.next_u64() % (n as u64).saturating_add(1)) as usize
    }
}

/// A stable key for a directory, independent of how its path was spelled.
fn dir_key(path: &Path) -> u64 {
    // FNV-1a over the components, so `a//b` and `a/b` agree as they do as map keys.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in path.components() {
        for &b in c.as_os_str().as_encoded_bytes().iter().chain(&[0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Whether [`SimStorage::fail_op_at`] chose the operation being run to fail.
type Injected = bool;

impl State {
    fn new() -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(PathBuf::from("."), Dir::default());
        dirs.insert(PathBuf::from("/"), Dir::default());
        State {
            dirs,
            inodes: BTreeMap::new(),
            next_ino: 1,
            locks: BTreeMap::new(),
            capacity: None,
            available_override: None,
            failing_syncs: 0,
            failing_ops: BTreeSet::new(),
            crash_budget: None,
            dead: false,
            ops: 0,
            syncs: 0,
        }
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.dead {
            Err(dead_error())
        } else {
            Ok(())
        }
    }

    /// Runs a mutating operation: counts it, fails it if the process is dead, tells it whether
    /// it was chosen by [`SimStorage::fail_op_at`], and counts a success against the crash
    /// budget.
    fn mutating<T>(
        &mut self,
        f: impl FnOnce(&mut State, Injected) -> io::Result<T>,
    ) -> io::Result<T> {
        self.check_alive()?;
        let index = self.ops;
        self.ops += 1;
        let injected = self.failing_ops.remove(&index);
        let result = f(self, injected);
        if result.is_ok() {
            if let Some(left) = self.crash_budget.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.crash_budget = None;
                    self.dead = true;
                }
            }
        }
        result
    }

    /// Whether this sync must fail because of [`SimStorage::fail_next_syncs`].
    fn take_sync_failure(&mut self) -> bool {
        if self.failing_syncs > 0 {
            self.failing_syncs -= 1;
            true
        } else {
            false
        }
    }

    fn dir(&self, dir: &Path) -> io::Result<&Dir> {
        self.dirs.get(dir).ok_or_else(|| not_found(dir))
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    fn inode(&self, ino: u64) -> io::Result<&Inode> {
        self.inodes
            .get(&ino)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "inode vanished"))
    }

    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "inode vanished"))
    }

    /// The inode a live file path names.
    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dir(&dir)?
            .live
            .get(&name)
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.lookup(path).is_ok()
    }

    fn new_inode(&mut self, inode: Inode) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, inode);
        ino
    }

    /// Records `dir` and its ancestors as existing directories.
    fn make_dirs(&mut self, dir: &Path) -> io::Result<()> {
        let ancestors: Vec<&Path> = dir
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        for p in &ancestors {
            if !self.dirs.contains_key(*p) && self.is_file(p) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: a file is in the way", p.display()),
                ));
            }
        }
        for p in ancestors {
            self.dirs.entry(p.to_path_buf()).or_default();
        }
        Ok(())
    }

    /// Total live bytes of the files the running process can still reach.
    fn used_bytes(&self) -> u64 {
        let linked: BTreeSet<u64> = self
            .dirs
            .values()
            .flat_map(|d| d.live.values().copied())
            .collect();
        self.inodes
            .iter()
            .filter(|(ino, inode)| inode.handles > 0 || linked.contains(ino))
            .map(|(_, inode)| inode.live.len() as u64)
            .sum()
    }

    /// How long the file `ino` may grow to under the capacity limit, wanting `want` bytes.
    fn allowed_len(&self, ino: u64, want: u64) -> io::Result<u64> {
        let current = self.inode(ino)?.live.len() as u64;
        let Some(cap) = self.capacity else {
            return Ok(want);
        };
        if want <= current {
            return Ok(want);
        }
        let free = cap.saturating_sub(self.used_bytes());
        Ok(want.min(current.saturating_add(free)))
    }

    /// Forgets inodes nothing can reach any more: no live or durable entry, no unsynced entry
    /// change a crash could replay, no open handle.
    fn collect_garbage(&mut self) {
        let mut reachable = BTreeSet::new();
        for d in self.dirs.values() {
            reachable.extend(d.live.values().copied());
            reachable.extend(d.durable.values().copied());
            reachable.extend(d.pending.iter().filter_map(EntryOp::ino));
        }
        self.inodes
            .retain(|ino, inode| inode.handles > 0 || reachable.contains(ino));
    }

    fn write_at(&mut self, ino: u64, buf: &[u8], offset: u64) -> io::Result<()> {
        let end = range_end(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let current = self.inode(ino)?.live.len() as u64;
        let allowed = self.allowed_len(ino, end.max(current))?;
        let fits = if allowed >= end {
            buf.len()
        } else {
            allowed.saturating_sub(offset) as usize
        };
        if fits > 0 {
            let data = &buf[..fits];
            let inode = self.inode_mut(ino)?;
            apply_write(&mut inode.live, offset, data);
            inode.pending.push(DataOp::Write {
                offset,
                data: data.to_vec(),
            });
        }
        if fits < buf.len() {
            return Err(enospc());
        }
        Ok(())
    }

    fn set_len(&mut self, ino: u64, len: u64) -> io::Result<()> {
        if len > MAX_FILE_BYTES {
            return Err(efbig());
        }
        let allowed = self.allowed_len(ino, len)?;
        let inode = self.inode_mut(ino)?;
        if inode.live.len() as u64 != allowed {
            inode.live.resize(allowed as usize, 0);
            inode.pending.push(DataOp::SetLen { len: allowed });
        }
        if allowed < len {
            return Err(enospc());
        }
        Ok(())
    }

    fn sync_data(&mut self, ino: u64, injected: bool) -> io::Result<()> {
        let failed = injected || self.take_sync_failure();
        let inode = self.inode_mut(ino)?;
        let pending = std::mem::take(&mut inode.pending);
        if failed {
            // Linux: the dirty pages are marked clean and the error is reported once. The data
            // stays visible until evicted but never reaches the disk.
            return Err(eio());
        }
        for op in &pending {
            apply_data_op(&mut inode.durable, op);
        }
        self.syncs += 1;
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path, injected: bool) -> io::Result<()> {
        if injected {
            if let Some(d) = self.dirs.get_mut(dir) {
                d.pending.clear();
            }
            self.collect_garbage();
            return Err(eio());
        }
        self.dir(dir)?;
        let failed = self.take_sync_failure();
        let d = self.dir_mut(dir)?;
        let pending = std::mem::take(&mut d.pending);
        if !failed {
            for op in &pending {
                op.apply(&mut d.durable);
            }
            self.syncs += 1;
        }
        self.collect_garbage();
        if failed {
            Err(eio())
        } else {
            Ok(())
        }
    }

    fn create(&mut self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        if self.dirs.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: is a directory", path.display()),
            ));
        }
        if self.dir(&dir)?.live.contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: file exists", path.display()),
            ));
        }
        let ino = self.new_inode(Inode::default());
        let d = self.dir_mut(&dir)?;
        d.live.insert(name.clone(), ino);
        d.pending.push(EntryOp::Link { name, ino });
        Ok(ino)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        self.dir(&to_dir)?;
        if self.dirs.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: is a directory", to.display()),
            ));
        }
        let ino = self.lookup(from)?;
        if from_dir == to_dir && from_name == to_name {
            return Ok(());
        }
        if from_dir == to_dir {
            let d = self.dir_mut(&from_dir)?;
            d.live.remove(&from_name);
            d.live.insert(to_name.clone(), ino);
            d.pending.push(EntryOp::Rename {
                from: from_name,
                to: to_name,
                ino,
            });
        } else {
            let src = self.dir_mut(&from_dir)?;
            src.live.remove(&from_name);
            src.pending.push(EntryOp::Unlink { name: from_name });
            let dst = self.dir_mut(&to_dir)?;
            dst.live.insert(to_name.clone(), ino);
            dst.pending.push(EntryOp::Link { name: to_name, ino });
        }
        self.collect_garbage();
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let d = self.dir_mut(&dir)?;
        if d.live.remove(&name).is_none() {
            return Err(not_found(path));
        }
        d.pending.push(EntryOp::Unlink { name });
        self.collect_garbage();
        Ok(())
    }

    /// Resolves a live path to an inode, creating an empty file (live entry only) if missing.
    fn open_or_create(&mut self, path: &Path) -> io::Result<u64> {
        match self.lookup(path) {
            Ok(ino) => Ok(ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.create(path),
            Err(e) => Err(e),
        }
    }

    /// The image a crash in `mode` leaves, as a fresh state.
    fn crash_image(&self, mode: CrashMode) -> State {
        let mut next = State::new();
        next.capacity = self.capacity;
        next.next_ino = self.next_ino;

        let entry_seed = match mode {
            CrashMode::KeepPrefix { seed } | CrashMode::TornWrite { seed, .. } => Some(seed),
            _ => None,
        };
        for (path, d) in &self.dirs {
            let map = match mode {
                CrashMode::KeepAll => d.live.clone(),
                CrashMode::DropUnsynced | CrashMode::GarbageTail { .. } => d.durable.clone(),
                CrashMode::KeepPrefix { .. } | CrashMode::TornWrite { .. } => {
                    let seed = entry_seed.unwrap_or_default();
                    let kept =
                        SplitMix::new(seed, DIR_STREAM, dir_key(path)).up_to(d.pending.len());
                    let mut map = d.durable.clone();
                    for op in &d.pending[..kept] {
                        op.apply(&mut map);
                    }
                    map
                }
            };
            let map: BTreeMap<String, u64> = map
                .into_iter()
                .filter(|(_, ino)| self.inodes.contains_key(ino))
                .collect();
            next.dirs.insert(
                path.clone(),
                Dir {
                    live: map.clone(),
                    durable: map,
                    pending: Vec::new(),
                },
            );
        }

        let survivors: BTreeSet<u64> = next
            .dirs
            .values()
            .flat_map(|d| d.live.values().copied())
            .collect();
        for ino in survivors {
            let Some(inode) = self.inodes.get(&ino) else {
                continue;
            };
            let image = crash_contents(ino, inode, mode);
            next.inodes.insert(
                ino,
                Inode {
                    live: image.clone(),
                    durable: image,
                    pending: Vec::new(),
                    handles: 0,
                },
            );
        }
        next
    }
}

/// What a crash in `mode` leaves of the contents of inode `ino`.
fn crash_contents(ino: u64, inode: &Inode, mode: CrashMode) -> Vec<u8> {
    match mode {
        CrashMode::KeepAll => inode.live.clone(),
        CrashMode::DropUnsynced => inode.durable.clone(),
        CrashMode::GarbageTail { seed } => {
            let mut image = inode.durable.clone();
            if inode.live.len() > image.len() {
                let mut rng = SplitMix::new(seed, GARBAGE_STREAM, ino);
                let extra = inode.live.len() - image.len();
                image.reserve(extra);
                while image.len() < inode.live.len() {
                    let word = rng.next_u64().to_le_bytes();
                    let take = word.len().min(inode.live.len() - image.len());
                    image.extend_from_slice(&word[..take]);
                }
            }
            image
        }
        CrashMode::KeepPrefix { seed } => {
            let mut rng = SplitMix::new(seed, FILE_STREAM, ino);
            let kept = rng.up_to(inode.pending.len());
            let mut image = inode.durable.clone();
            for op in &inode.pending[..kept] {
                apply_data_op(&mut image, op);
            }
            image
        }
        CrashMode::TornWrite { seed, sector_bytes } => {
            let mut rng = SplitMix::new(seed, FILE_STREAM, ino);
            let kept = rng.up_to(inode.pending.len());
            let mut image = inode.durable.clone();
            for op in &inode.pending[..kept] {
                apply_data_op(&mut image, op);
            }
            if let Some(DataOp::Write { offset, data }) = inode.pending.get(kept) {
                let sector = sector_bytes.max(1);
                let end = offset.saturating_add(data.len() as u64);
                let mut pos = *offset;
                while pos < end {
                    let sector_end = (pos / sector).saturating_add(1).saturating_mul(sector);
                    let piece_end = sector_end.min(end);
                    if rng.next_u64() & 1 == 1 {
                        let from = (pos - offset) as usize;
                        let to = (piece_end - offset) as usize;
                        apply_write(&mut image, pos, &data[from..to]);
                    }
                    pos = piece_end;
                }
            }
            image
        }
    }
}

impl Default for SimStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl SimStorage {
    /// An empty simulated file system (only `.` and `/` exist), with no faults armed and no
    /// capacity limit.
    pub fn new() -> Self {
        SimStorage {
            shared: Arc::new(Mutex::new(State::new())),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock_state(&self.shared)
    }

    /// Limits the total live bytes of all files. A write or `set_len` that would exceed it
    /// applies what fits (a short write) and fails with `ENOSPC`. `None` removes the limit.
    pub fn set_capacity_bytes(&self, cap: Option<u64>) {
        self.state().capacity = cap;
    }

    /// Overrides what [`Storage::available_space`] reports; `None` derives it from the capacity
    /// again.
    pub fn set_available_space(&self, bytes: Option<u64>) {
        self.state().available_override = bytes;
    }

    /// Makes the next `n` calls of `sync_data` or `sync_dir` fail with `EIO`, with Linux
    /// semantics: the changes they should have made durable are lost for durability (they stay
    /// in the live image) and a later sync succeeds without persisting them.
    pub fn fail_next_syncs(&self, n: u64) {
        self.state().failing_syncs = n;
    }

    /// Makes the mutating operation with global index `index` (see
    /// [`SimStorage::op_count`]) fail with `EIO` instead of running; a sync chosen this way
    /// fails like one armed by [`SimStorage::fail_next_syncs`]. May be called repeatedly.
    pub fn fail_op_at(&self, index: u64) {
        self.state().failing_ops.insert(index);
    }

    /// Kills the simulated process after `n` more mutating operations succeed: from then on
    /// every operation on this storage and its files, reads included, fails with an error of
    /// kind [`io::ErrorKind::Other`]. `0` kills it now.
    pub fn crash_after_ops(&self, n: u64) {
        let mut st = self.state();
        if n == 0 {
            st.dead = true;
            st.crash_budget = None;
        } else {
            st.crash_budget = Some(n);
        }
    }

    /// How many mutating operations (create, rename, remove, sync_dir, create_dir_all,
    /// write_at, set_len, sync_data) were attempted so far, failed ones included.
    pub fn op_count(&self) -> u64 {
        self.state().ops
    }

    /// How many `sync_data` and `sync_dir` calls succeeded.
    pub fn sync_count(&self) -> u64 {
        self.state().syncs
    }

    /// Returns a new, independent storage holding what a crash at this moment leaves on disk
    /// in `mode`: no locks held, no faults armed, the capacity limit carried over. This storage
    /// is dead afterwards (every operation fails), but can still be inspected and crashed again.
    pub fn crash(&self, mode: CrashMode) -> SimStorage {
        let mut st = self.state();
        let image = st.crash_image(mode);
        st.dead = true;
        st.crash_budget = None;
        SimStorage {
            shared: Arc::new(Mutex::new(image)),
        }
    }

    /// Flips bit `bit` (0–7) of the byte at `offset` of the file at `path`, in both its live
    /// and durable images wherever they are long enough: media corruption.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        if bit > 7 {
            return Err(invalid_input(format!("bit {bit} is not in 0..=7")));
        }
        let mut st = self.state();
        let ino = st.lookup(path)?;
        let inode = st.inode_mut(ino)?;
        let mask = 1u8 << bit;
        let mut flipped = false;
        for image in [&mut inode.live, &mut inode.durable] {
            if let Some(byte) = usize::try_from(offset).ok().and_then(|i| image.get_mut(i)) {
                *byte ^= mask;
                flipped = true;
            }
        }
        if flipped {
            Ok(())
        } else {
            Err(invalid_input(format!(
                "offset {offset} is past the end of {}",
                path.display()
            )))
        }
    }

    /// The live contents of the file at `path`, or `None` if there is no such file.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state();
        let ino = st.lookup(path).ok()?;
        st.inodes.get(&ino).map(|inode| inode.live.clone())
    }

    /// Test setup: creates or replaces the file at `path` with `data`, live and durable, entry
    /// included, creating its directory if missing. Not counted as an operation.
    pub fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let mut st = self.state();
        if st.dirs.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: is a directory", path.display()),
            ));
        }
        st.make_dirs(&dir)?;
        let ino = match st.lookup(path) {
            Ok(ino) => {
                let inode = st.inode_mut(ino)?;
                inode.live = data.to_vec();
                inode.durable = data.to_vec();
                inode.pending.clear();
                ino
            }
            Err(_) => st.new_inode(Inode {
                live: data.to_vec(),
                durable: data.to_vec(),
                pending: Vec::new(),
                handles: 0,
            }),
        };
        let d = st.dir_mut(&dir)?;
        d.live.insert(name.clone(), ino);
        d.durable.insert(name.clone(), ino);
        // Unsynced changes naming this file must not undo the setup in a crash.
        let pending = std::mem::take(&mut d.pending);
        d.pending = pending
            .into_iter()
            .filter_map(|op| match op {
                EntryOp::Link { name: n, .. } | EntryOp::Unlink { name: n } if n == name => None,
                EntryOp::Rename { from, to, ino } if from == name => {
                    Some(EntryOp::Link { name: to, ino })
                }
                EntryOp::Rename { from, to, .. } if to == name => {
                    Some(EntryOp::Unlink { name: from })
                }
                other => Some(other),
            })
            .collect();
        st.collect_garbage();
        Ok(())
    }

    /// Every live file path, sorted.
    pub fn list_all(&self) -> Vec<PathBuf> {
        let st = self.state();
        let mut all: Vec<PathBuf> = st
            .dirs
            .iter()
            .flat_map(|(dir, d)| {
                d.live.keys().map(move |name| {
                    if dir == Path::new(".") {
                        PathBuf::from(name)
                    } else {
                        dir.join(name)
                    }
                })
            })
            .collect();
        all.sort();
        all
    }

    /// Test setup: truncates or zero-extends the file at `path` to `len` bytes, live and
    /// durable. Not counted as an operation.
    pub fn truncate_file(&self, path: &Path, len: u64) -> io::Result<()> {
        if len > MAX_FILE_BYTES {
            return Err(efbig());
        }
        let mut st = self.state();
        let ino = st.lookup(path)?;
        let inode = st.inode_mut(ino)?;
        inode.live.resize(len as usize, 0);
        inode.durable.resize(len as usize, 0);
        Ok(())
    }
}

/// An open simulated file: a reference to an inode, which survives renames and removal.
struct SimFile {
    shared: Arc<Mutex<State>>,
    ino: u64,
    writable: bool,
}

impl SimFile {
    fn handle(shared: &Arc<Mutex<State>>, ino: u64, writable: bool) -> DynFile {
        Arc::new(SimFile {
            shared: Arc::clone(shared),
            ino,
            writable,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock_state(&self.shared)
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file was opened read-only",
            ))
        }
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("ino", &self.ino)
            .field("writable", &self.writable)
            .finish()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut st = self.state();
        if let Some(inode) = st.inodes.get_mut(&self.ino) {
            inode.handles = inode.handles.saturating_sub(1);
        }
        st.collect_garbage();
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let st = self.state();
        st.check_alive()?;
        let live = &st.inode(self.ino)?.live;
        let Some(start) = usize::try_from(offset).ok().filter(|&s| s < live.len()) else {
            return Ok(0);
        };
        let n = buf.len().min(live.len() - start);
        buf[..n].copy_from_slice(&live[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.state().mutating(|st, injected| {
            if injected {
                return Err(eio());
            }
            self.check_writable()?;
            st.write_at(self.ino, buf, offset)
        })
    }

    fn len(&self) -> io::Result<u64> {
        let st = self.state();
        st.check_alive()?;
        Ok(st.inode(self.ino)?.live.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.state().mutating(|st, injected| {
            if injected {
                return Err(eio());
            }
            self.check_writable()?;
            st.set_len(self.ino, len)
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.state()
            .mutating(|st, injected| st.sync_data(self.ino, injected))
    }
}

/// A held simulated directory lock; dropping it releases the lock.
struct SimLock {
    shared: Arc<Mutex<State>>,
    path: PathBuf,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("path", &self.path).finish()
    }
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock_state(&self.shared).locks.remove(&self.path);
    }
}

impl Storage for SimStorage {
    fn create(&self, path: &Path) -> io::Result<DynFile> {
        let ino = self.state().mutating(|st, injected| {
            if injected {
                return Err(eio());
            }
            let ino = st.create(path)?;
            st.inode_mut(ino)?.handles += 1;
            Ok(ino)
        })?;
        Ok(SimFile::handle(&self.shared, ino, true))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile> {
        let ino = {
            let mut st = self.state();
            st.check_alive()?;
            let ino = st.lookup(path)?;
            st.inode_mut(ino)?.handles += 1;
            ino
        };
        Ok(SimFile::handle(&self.shared, ino, writable))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.state().mutating(|st, injected| {
            if injected {
                return Err(eio());
            }
            st.rename(from, to)
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.state().mutating(|st, injected| {
            if injected {
                return Err(eio());
            }
            st.remove(path)
        })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state();
        st.check_alive()?;
        Ok(st.dir(dir)?.live.keys().cloned().collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.state()
            .mutating(|st, injected| st.sync_dir(dir, injected))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state().mutating(|st, injected| {
            if injected {
                return Err(eio());
            }
            st.make_dirs(dir)
        })
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.state();
        !st.dead && (st.dirs.contains_key(path) || st.is_file(path))
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        let st = self.state();
        st.check_alive()?;
        st.dir(dir)?;
        Ok(match (st.available_override, st.capacity) {
            (Some(bytes), _) => bytes,
            (None, Some(cap)) => cap.saturating_sub(st.used_bytes()),
            (None, None) => UNLIMITED_SPACE,
        })
    }

    fn lock(&self, path: &Path, owner: &str) -> Result<Box<dyn LockGuard>, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut st = self.state();
        st.check_alive().map_err(io_err)?;
        if let Some(holder) = st.locks.get(path) {
            let holder = holder.trim();
            return Err(LockError::Held {
                path: path.to_path_buf(),
                holder: if holder.is_empty() {
                    "an unknown process".to_owned()
                } else {
                    holder.to_owned()
                },
            });
        }
        // Like the real lock file: the owner is written but not synced, and none of this is
        // counted as an operation or limited by the capacity.
        let ino = st.open_or_create(path).map_err(io_err)?;
        let inode = st.inode_mut(ino).map_err(io_err)?;
        inode.live = owner.as_bytes().to_vec();
        inode.pending.push(DataOp::SetLen { len: 0 });
        inode.pending.push(DataOp::Write {
            offset: 0,
            data: owner.as_bytes().to_vec(),
        });
        st.locks.insert(path.to_path_buf(), owner.to_owned());
        Ok(Box::new(SimLock {
            shared: Arc::clone(&self.shared),
            path: path.to_path_buf(),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::thread;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// A storage with the directory `d` created.
    fn fresh() -> SimStorage {
        let s = SimStorage::new();
        s.create_dir_all(p("d")).unwrap();
        s
    }

    fn raw(e: &io::Error) -> Option<i32> {
        e.raw_os_error()
    }

    fn assert_dead(e: &io::Error) {
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert_eq!(e.to_string(), DEAD_MESSAGE);
    }

    /// A file `d/f` with a durable entry and durable contents `base`, then `writes` unsynced
    /// single-byte-pattern writes of `chunk` bytes each, appended in order.
    fn file_with_unsynced_appends(base: &[u8], writes: usize, chunk: usize) -> SimStorage {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(base, 0).unwrap();
        f.sync_data().unwrap();
        s.sync_dir(p("d")).unwrap();
        for i in 0..writes {
            let off = (base.len() + i * chunk) as u64;
            f.write_at(&vec![i as u8 + 1; chunk], off).unwrap();
        }
        s
    }

    #[test]
    fn synced_data_survives_and_unsynced_data_is_dropped() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        s.sync_dir(p("d")).unwrap();
        f.write_at(b" world", 5).unwrap();
        assert_eq!(s.read_file(p("d/f")).unwrap(), b"hello world");

        let dropped = s.crash(CrashMode::DropUnsynced);
        assert_eq!(dropped.read_file(p("d/f")).unwrap(), b"hello");
        let kept = s.crash(CrashMode::KeepAll);
        assert_eq!(kept.read_file(p("d/f")).unwrap(), b"hello world");

        // The crashed image is an ordinary, fully durable storage.
        let again = dropped.crash(CrashMode::DropUnsynced);
        assert_eq!(again.read_file(p("d/f")).unwrap(), b"hello");
    }

    #[test]
    fn unsynced_set_len_is_dropped() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(&[7; 100], 0).unwrap();
        f.sync_data().unwrap();
        s.sync_dir(p("d")).unwrap();
        f.set_len(10).unwrap();
        assert_eq!(f.len().unwrap(), 10);
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")).unwrap(), vec![7; 100]);
    }

    #[test]
    fn new_file_without_sync_dir_disappears() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(b"data", 0).unwrap();
        f.sync_data().unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")), None);
        assert!(c.exists(p("d")), "directories are durable once created");
        assert!(!c.exists(p("d/f")));

        // KeepAll keeps the entry too.
        let k = s.crash(CrashMode::KeepAll);
        assert_eq!(k.read_file(p("d/f")).unwrap(), b"data");

        // With sync_dir the file survives.
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(b"data", 0).unwrap();
        f.sync_data().unwrap();
        s.sync_dir(p("d")).unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")).unwrap(), b"data");
        assert_eq!(c.list(p("d")).unwrap(), vec!["f".to_owned()]);
    }

    #[test]
    fn synced_entry_with_unsynced_data_is_empty_after_crash() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        s.sync_dir(p("d")).unwrap();
        f.write_at(b"data", 0).unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")).unwrap(), b"");
    }

    #[test]
    fn rename_without_sync_dir_reverts() {
        let s = fresh();
        s.write_file(p("d/old"), b"old").unwrap();
        s.write_file(p("d/tmp"), b"new").unwrap();
        s.rename(p("d/tmp"), p("d/old")).unwrap();
        assert_eq!(s.read_file(p("d/old")).unwrap(), b"new");
        assert_eq!(s.read_file(p("d/tmp")), None);

        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/old")).unwrap(), b"old");
        assert_eq!(c.read_file(p("d/tmp")).unwrap(), b"new");

        let s2 = fresh();
        s2.write_file(p("d/old"), b"old").unwrap();
        s2.write_file(p("d/tmp"), b"new").unwrap();
        s2.rename(p("d/tmp"), p("d/old")).unwrap();
        s2.sync_dir(p("d")).unwrap();
        let c = s2.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/old")).unwrap(), b"new");
        assert_eq!(c.read_file(p("d/tmp")), None);
        assert_eq!(c.list_all(), vec![PathBuf::from("d/old")]);
    }

    #[test]
    fn rename_across_directories_needs_both_syncs() {
        let s = SimStorage::new();
        s.create_dir_all(p("a")).unwrap();
        s.create_dir_all(p("b")).unwrap();
        s.write_file(p("a/f"), b"x").unwrap();
        s.rename(p("a/f"), p("b/g")).unwrap();
        s.sync_dir(p("b")).unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(
            c.list_all(),
            vec![PathBuf::from("a/f"), PathBuf::from("b/g")]
        );
        s.crash(CrashMode::KeepAll);
        let s = SimStorage::new();
        s.create_dir_all(p("a")).unwrap();
        s.create_dir_all(p("b")).unwrap();
        s.write_file(p("a/f"), b"x").unwrap();
        s.rename(p("a/f"), p("b/g")).unwrap();
        s.sync_dir(p("a")).unwrap();
        s.sync_dir(p("b")).unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.list_all(), vec![PathBuf::from("b/g")]);
        assert_eq!(c.read_file(p("b/g")).unwrap(), b"x");
    }

    #[test]
    fn remove_without_sync_dir_comes_back() {
        let s = fresh();
        s.write_file(p("d/f"), b"keep").unwrap();
        s.remove(p("d/f")).unwrap();
        assert!(!s.exists(p("d/f")));
        assert_eq!(s.list(p("d")).unwrap(), Vec::<String>::new());
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")).unwrap(), b"keep");

        let s = fresh();
        s.write_file(p("d/f"), b"keep").unwrap();
        s.remove(p("d/f")).unwrap();
        s.sync_dir(p("d")).unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")), None);
    }

    #[test]
    fn handles_follow_the_inode_through_rename_and_remove() {
        let s = fresh();
        let f = s.create(p("d/a")).unwrap();
        f.write_at(b"one", 0).unwrap();
        s.rename(p("d/a"), p("d/b")).unwrap();
        f.write_at(b"two", 3).unwrap();
        assert_eq!(s.read_file(p("d/b")).unwrap(), b"onetwo");

        s.remove(p("d/b")).unwrap();
        f.write_at(b"!", 6).unwrap();
        f.sync_data().unwrap();
        assert_eq!(f.read_all().unwrap(), b"onetwo!");
        assert_eq!(f.len().unwrap(), 7);
        s.sync_dir(p("d")).unwrap();
        let c = s.crash(CrashMode::KeepAll);
        assert!(c.list_all().is_empty(), "an unlinked inode is gone");
    }

    #[test]
    fn open_create_and_path_errors() {
        let s = fresh();
        assert_eq!(
            s.open(p("d/nope"), false).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            s.create(p("nodir/f")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            s.list(p("nodir")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            s.sync_dir(p("nodir")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            s.available_space(p("nodir")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            s.rename(p("d/nope"), p("d/x")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            s.remove(p("d/nope")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        s.create(p("d/f")).unwrap();
        assert_eq!(
            s.create(p("d/f")).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            s.create(p("d")).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            s.create(p("/")).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            s.create_dir_all(p("d/f/sub")).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );

        let ro = s.open(p("d/f"), false).unwrap();
        assert_eq!(
            ro.write_at(b"x", 0).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(
            ro.set_len(3).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        ro.sync_data().unwrap();

        let rw = s.open(p("d/f"), true).unwrap();
        assert_eq!(
            rw.write_at(b"x", u64::MAX).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            raw(&rw.write_at(b"x", 1 << 60).unwrap_err()),
            Some(libc::EFBIG)
        );
        assert_eq!(raw(&rw.set_len(u64::MAX).unwrap_err()), Some(libc::EFBIG));
        rw.write_at(b"", u64::MAX).unwrap_err();
        assert_eq!(rw.len().unwrap(), 0);
    }

    #[test]
    fn reads_past_eof_and_writes_past_eof() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(b"ab", 4).unwrap();
        assert_eq!(s.read_file(p("d/f")).unwrap(), b"\0\0\0\0ab");
        let mut buf = [9u8; 4];
        assert_eq!(f.read_at(&mut buf, 6).unwrap(), 0);
        assert_eq!(f.read_at(&mut buf, u64::MAX).unwrap(), 0);
        assert_eq!(f.read_at(&mut buf, 4).unwrap(), 2);
        assert_eq!(&buf[..2], b"ab");
        assert_eq!(
            f.read_exact_at(&mut buf, 4).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        f.set_len(8).unwrap();
        assert_eq!(s.read_file(p("d/f")).unwrap(), b"\0\0\0\0ab\0\0");
    }

    #[test]
    fn directories_list_and_exists() {
        let s = SimStorage::new();
        assert!(s.exists(p(".")));
        assert!(!s.exists(p("a")));
        s.create_dir_all(p("a/b/c")).unwrap();
        assert!(s.exists(p("a")));
        assert!(s.exists(p("a/b")));
        assert!(s.exists(p("a/b/c")));
        assert_eq!(s.list(p("a/b")).unwrap(), Vec::<String>::new());
        s.create(p("a/b/z")).unwrap();
        s.create(p("a/b/y")).unwrap();
        s.create(p("top")).unwrap();
        assert_eq!(s.list(p("a/b")).unwrap(), vec!["y", "z"]);
        assert!(s.exists(p("a/b/y")));
        assert_eq!(s.list(p(".")).unwrap(), vec!["top"]);
        assert_eq!(
            s.list_all(),
            vec![
                PathBuf::from("a/b/y"),
                PathBuf::from("a/b/z"),
                PathBuf::from("top")
            ]
        );
        s.create_dir_all(p("")).unwrap();
        s.create_dir_all(p("/abs/dir")).unwrap();
        s.create(p("/abs/dir/f")).unwrap();
        assert!(s.exists(p("/abs/dir/f")));
        assert!(s.list_all().contains(&PathBuf::from("/abs/dir/f")));
    }

    /// Every kept image of `file_with_unsynced_appends(base, n, chunk)` is a prefix of the
    /// writes; returns how many writes were kept.
    fn kept_writes(image: &[u8], base: &[u8], n: usize, chunk: usize) -> usize {
        assert!(image.starts_with(base));
        let extra = image.len() - base.len();
        assert_eq!(extra % chunk, 0, "whole writes only");
        let k = extra / chunk;
        assert!(k <= n);
        for i in 0..k {
            let at = base.len() + i * chunk;
            assert_eq!(&image[at..at + chunk], &vec![i as u8 + 1; chunk][..]);
        }
        k
    }

    #[test]
    fn keep_prefix_is_deterministic_and_keeps_prefixes() {
        let n = 8;
        let mut seen = BTreeSet::new();
        for seed in 0..64 {
            let a = file_with_unsynced_appends(b"base", n, 3);
            let b = file_with_unsynced_appends(b"base", n, 3);
            let ia = a.crash(CrashMode::KeepPrefix { seed });
            let ib = b.crash(CrashMode::KeepPrefix { seed });
            let fa = ia.read_file(p("d/f")).unwrap();
            assert_eq!(Some(&fa), ib.read_file(p("d/f")).as_ref(), "seed {seed}");
            // Crashing the same dead storage again gives the same image too.
            let again = a.crash(CrashMode::KeepPrefix { seed });
            assert_eq!(again.read_file(p("d/f")).unwrap(), fa);
            seen.insert(kept_writes(&fa, b"base", n, 3));
        }
        assert!(
            seen.iter().any(|&k| k > 0 && k < n),
            "some seed keeps a strict prefix: {seen:?}"
        );
        assert!(seen.len() > 2, "seeds give varied outcomes: {seen:?}");
    }

    #[test]
    fn keep_prefix_applies_to_directory_entries() {
        let mut outcomes = BTreeSet::new();
        for seed in 0..64 {
            let s = fresh();
            s.write_file(p("d/keep"), b"k").unwrap();
            for name in ["a", "b", "c", "e"] {
                s.create(&Path::new("d").join(name)).unwrap();
            }
            let c = s.crash(CrashMode::KeepPrefix { seed });
            let names = c.list(p("d")).unwrap();
            assert!(names.contains(&"keep".to_owned()));
            // The creations persist in order: a prefix of a, b, c, e.
            let created: Vec<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|n| *n != "keep")
                .collect();
            assert_eq!(created, ["a", "b", "c", "e"][..created.len()].to_vec());
            outcomes.insert(created.len());
        }
        assert!(outcomes.len() > 2, "{outcomes:?}");
    }

    #[test]
    fn torn_write_leaves_sector_sized_holes() {
        let sector = 4u64;
        let sectors = 8usize;
        let mut saw_hole = false;
        let mut saw_torn = false;
        for seed in 0..256 {
            let s = fresh();
            let f = s.create(p("d/f")).unwrap();
            f.write_at(&[0xAA; 32], 0).unwrap();
            f.sync_data().unwrap();
            s.sync_dir(p("d")).unwrap();
            f.write_at(&[0xBB; 32], 0).unwrap();
            let mode = CrashMode::TornWrite {
                seed,
                sector_bytes: sector,
            };
            let img = s.crash(mode).read_file(p("d/f")).unwrap();
            assert_eq!(s.crash(mode).read_file(p("d/f")).unwrap(), img);
            assert_eq!(img.len(), 32);
            let new: Vec<bool> = img
                .chunks(sector as usize)
                .map(|c| {
                    let all_new = c.iter().all(|&b| b == 0xBB);
                    let all_old = c.iter().all(|&b| b == 0xAA);
                    assert!(all_new || all_old, "sector granularity: {img:?}");
                    all_new
                })
                .collect();
            assert_eq!(new.len(), sectors);
            let count = new.iter().filter(|&&x| x).count();
            if count > 0 && count < sectors {
                saw_torn = true;
            }
            // A hole: an old sector followed later by a new one.
            if let Some(first_old) = new.iter().position(|&x| !x) {
                if new[first_old..].iter().any(|&x| x) {
                    saw_hole = true;
                }
            }
        }
        assert!(saw_torn);
        assert!(saw_hole, "torn writes are not only short prefixes");
    }

    #[test]
    fn torn_append_keeps_holes_inside_the_file() {
        let mut saw_hole = false;
        for seed in 0..256 {
            let s = file_with_unsynced_appends(b"", 1, 64);
            let img = s
                .crash(CrashMode::TornWrite {
                    seed,
                    sector_bytes: 16,
                })
                .read_file(p("d/f"))
                .unwrap();
            assert_eq!(img.len() % 16, 0);
            if img.chunks(16).any(|c| c.iter().all(|&b| b == 0)) && img.len() == 64 {
                saw_hole = true;
            }
        }
        assert!(saw_hole);
    }

    #[test]
    fn garbage_tail_fills_the_unsynced_extension() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(b"durable!", 0).unwrap();
        f.sync_data().unwrap();
        s.sync_dir(p("d")).unwrap();
        f.write_at(&[0u8; 100], 8).unwrap();
        let g = s.create(p("d/g")).unwrap(); // not in the durable directory: gone
        g.write_at(b"x", 0).unwrap();

        let a = s
            .crash(CrashMode::GarbageTail { seed: 7 })
            .read_file(p("d/f"))
            .unwrap();
        let b = s
            .crash(CrashMode::GarbageTail { seed: 7 })
            .read_file(p("d/f"))
            .unwrap();
        let other = s
            .crash(CrashMode::GarbageTail { seed: 8 })
            .read_file(p("d/f"))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 108);
        assert_eq!(&a[..8], b"durable!");
        assert_ne!(
            &a[8..],
            &[0u8; 100][..],
            "the tail is garbage, not the data"
        );
        assert_ne!(a, other);
        assert_eq!(
            s.crash(CrashMode::GarbageTail { seed: 7 })
                .read_file(p("d/g")),
            None
        );
    }

    #[test]
    fn enospc_is_a_short_write() {
        let s = fresh();
        s.set_capacity_bytes(Some(10));
        assert_eq!(s.available_space(p("d")).unwrap(), 10);
        let f = s.create(p("d/f")).unwrap();
        f.write_at(b"0123", 0).unwrap();
        let err = f.write_at(b"456789abcdef", 4).unwrap_err();
        assert_eq!(raw(&err), Some(libc::ENOSPC));
        assert_eq!(s.read_file(p("d/f")).unwrap(), b"0123456789");
        assert_eq!(s.available_space(p("d")).unwrap(), 0);
        // Overwriting in place needs no space.
        f.write_at(b"AB", 0).unwrap();
        assert_eq!(raw(&f.set_len(11).unwrap_err()), Some(libc::ENOSPC));
        assert_eq!(f.len().unwrap(), 10);
        // Freeing space by truncation.
        f.set_len(5).unwrap();
        assert_eq!(s.available_space(p("d")).unwrap(), 5);
        let g = s.create(p("d/g")).unwrap();
        assert_eq!(raw(&g.set_len(8).unwrap_err()), Some(libc::ENOSPC));
        assert_eq!(g.len().unwrap(), 5, "set_len extends as far as fits");

        s.set_available_space(Some(12345));
        assert_eq!(s.available_space(p("d")).unwrap(), 12345);
        s.set_available_space(None);
        assert_eq!(s.available_space(p("d")).unwrap(), 0);
        s.set_capacity_bytes(None);
        assert_eq!(s.available_space(p("d")).unwrap(), UNLIMITED_SPACE);

        // A removed, unopened file frees its space.
        s.set_capacity_bytes(Some(10));
        drop(g);
        s.remove(p("d/g")).unwrap();
        assert_eq!(s.available_space(p("d")).unwrap(), 5);
    }

    #[test]
    fn failed_fsync_loses_the_data_and_the_retry_lies() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        s.sync_dir(p("d")).unwrap();
        f.write_at(b"lost", 0).unwrap();
        s.fail_next_syncs(1);
        assert_eq!(raw(&f.sync_data().unwrap_err()), Some(libc::EIO));
        f.sync_data().unwrap();
        assert_eq!(s.read_file(p("d/f")).unwrap(), b"lost", "still live");
        let c = s.crash(CrashMode::KeepPrefix { seed: 1 });
        assert_eq!(c.read_file(p("d/f")).unwrap(), b"");
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")).unwrap(), b"");
    }

    #[test]
    fn later_writes_after_a_failed_fsync_do_persist() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        s.sync_dir(p("d")).unwrap();
        f.write_at(b"lost", 0).unwrap();
        s.fail_next_syncs(1);
        f.sync_data().unwrap_err();
        f.write_at(b"kept", 4).unwrap();
        f.sync_data().unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")).unwrap(), b"\0\0\0\0kept");
    }

    #[test]
    fn failed_sync_dir_loses_the_entries() {
        let s = fresh();
        s.create(p("d/f")).unwrap();
        s.fail_next_syncs(1);
        assert_eq!(raw(&s.sync_dir(p("d")).unwrap_err()), Some(libc::EIO));
        s.sync_dir(p("d")).unwrap();
        assert!(s.exists(p("d/f")));
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")), None);
        assert_eq!(s.sync_count(), 1);
    }

    #[test]
    fn fail_op_at_fails_exactly_that_op() {
        let s = fresh();
        assert_eq!(s.op_count(), 1);
        let f = s.create(p("d/f")).unwrap();
        assert_eq!(s.op_count(), 2);
        s.fail_op_at(3);
        s.fail_op_at(5);
        f.write_at(b"a", 0).unwrap(); // op 2
        let err = f.write_at(b"bbbb", 1).unwrap_err(); // op 3
        assert_eq!(raw(&err), Some(libc::EIO));
        assert_eq!(s.read_file(p("d/f")).unwrap(), b"a", "nothing written");
        s.sync_dir(p("d")).unwrap(); // op 4
        assert_eq!(raw(&f.sync_data().unwrap_err()), Some(libc::EIO)); // op 5
        f.sync_data().unwrap(); // op 6, "succeeds"
        assert_eq!(s.op_count(), 7);
        assert_eq!(s.sync_count(), 2);
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(
            c.read_file(p("d/f")).unwrap(),
            b"",
            "the failed sync lost 'a'"
        );

        // Reads, lists, exists, len and locks are not counted.
        let s = fresh();
        let before = s.op_count();
        s.list(p("d")).unwrap();
        s.exists(p("d"));
        s.available_space(p("d")).unwrap();
        let _g = s.lock(p("d/LOCK"), "me").unwrap();
        let f = s.open(p("d/LOCK"), false).unwrap();
        f.len().unwrap();
        f.read_all().unwrap();
        assert_eq!(s.op_count(), before);
    }

    #[test]
    fn fail_op_at_create_rename_remove() {
        let s = fresh();
        s.write_file(p("d/f"), b"x").unwrap();
        let n = s.op_count();
        s.fail_op_at(n);
        s.fail_op_at(n + 1);
        s.fail_op_at(n + 2);
        s.fail_op_at(n + 3);
        assert_eq!(raw(&s.create(p("d/g")).unwrap_err()), Some(libc::EIO));
        assert_eq!(
            raw(&s.rename(p("d/f"), p("d/h")).unwrap_err()),
            Some(libc::EIO)
        );
        assert_eq!(raw(&s.remove(p("d/f")).unwrap_err()), Some(libc::EIO));
        assert_eq!(raw(&s.create_dir_all(p("e")).unwrap_err()), Some(libc::EIO));
        assert_eq!(s.list_all(), vec![PathBuf::from("d/f")]);
        assert!(!s.exists(p("e")));
        s.create(p("d/g")).unwrap();
    }

    #[test]
    fn crash_after_ops_kills_everything() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        s.crash_after_ops(2);
        f.write_at(b"one", 0).unwrap();
        f.sync_data().unwrap(); // the second success: dead afterwards
        assert_dead(&f.write_at(b"two", 3).unwrap_err());
        let mut buf = [0u8; 3];
        assert_dead(&f.read_at(&mut buf, 0).unwrap_err());
        assert_dead(&f.len().unwrap_err());
        assert_dead(&f.sync_data().unwrap_err());
        assert_dead(&s.create(p("d/g")).unwrap_err());
        assert_dead(&s.open(p("d/f"), false).unwrap_err());
        assert_dead(&s.list(p("d")).unwrap_err());
        assert_dead(&s.sync_dir(p("d")).unwrap_err());
        assert_dead(&s.rename(p("d/f"), p("d/g")).unwrap_err());
        assert_dead(&s.remove(p("d/f")).unwrap_err());
        assert_dead(&s.create_dir_all(p("x")).unwrap_err());
        assert_dead(&s.available_space(p("d")).unwrap_err());
        assert!(!s.exists(p("d")));
        match s.lock(p("d/LOCK"), "me") {
            Err(LockError::Io { source, .. }) => assert_dead(&source),
            other => panic!("expected a dead-storage error, got {other:?}"),
        }
        // The image a crash leaves is still available and sane.
        let c = s.crash(CrashMode::KeepAll);
        assert_eq!(c.read_file(p("d/f")).unwrap(), b"one");
        c.create(p("d/g")).unwrap();
    }

    #[test]
    fn crash_after_zero_ops_and_failures_do_not_count() {
        let s = fresh();
        s.crash_after_ops(1);
        s.remove(p("d/missing")).unwrap_err(); // a failure does not use the budget
        s.create(p("d/f")).unwrap();
        assert_dead(&s.create(p("d/g")).unwrap_err());

        let s = fresh();
        s.crash_after_ops(0);
        assert_dead(&s.create(p("d/f")).unwrap_err());
    }

    #[test]
    fn crash_kills_the_old_storage_and_resets_faults() {
        let s = fresh();
        s.set_capacity_bytes(Some(1000));
        s.fail_next_syncs(5);
        s.fail_op_at(100);
        s.write_file(p("d/f"), b"abc").unwrap();
        let f = s.open(p("d/f"), true).unwrap();
        let _lock = s.lock(p("d/LOCK"), "old").unwrap();
        let c = s.crash(CrashMode::DropUnsynced);
        assert_dead(&f.write_at(b"x", 0).unwrap_err());
        assert_dead(&s.open(p("d/f"), false).unwrap_err());

        assert_eq!(c.op_count(), 0);
        assert_eq!(c.sync_count(), 0);
        // The lock file's entry was never synced, and no lock is held.
        assert_eq!(c.list(p("d")).unwrap(), vec!["f".to_owned()]);
        let g = c.open(p("d/f"), true).unwrap();
        g.sync_data().unwrap();
        assert_eq!(c.available_space(p("d")).unwrap(), 1000 - 3);
        let _new_lock = c.lock(p("d/LOCK"), "new").unwrap();
        assert_eq!(
            c.list(p("d")).unwrap(),
            vec!["LOCK".to_owned(), "f".to_owned()]
        );
    }

    #[test]
    fn flip_bit_corrupts_live_and_durable() {
        let s = fresh();
        s.write_file(p("d/f"), &[0u8; 4]).unwrap();
        s.flip_bit(p("d/f"), 2, 3).unwrap();
        assert_eq!(s.read_file(p("d/f")).unwrap(), vec![0, 0, 8, 0]);
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("d/f")).unwrap(), vec![0, 0, 8, 0]);
        c.flip_bit(p("d/f"), 2, 3).unwrap();
        assert_eq!(c.read_file(p("d/f")).unwrap(), vec![0; 4]);
        assert_eq!(
            c.flip_bit(p("d/f"), 4, 0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            c.flip_bit(p("d/f"), 0, 8).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            c.flip_bit(p("d/nope"), 0, 0).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let s = fresh();
        let guard = s.lock(p("d/LOCK"), "pid 1 on host a").unwrap();
        assert_eq!(s.read_file(p("d/LOCK")).unwrap(), b"pid 1 on host a");
        match s.lock(p("d/LOCK"), "pid 2 on host b") {
            Err(LockError::Held { path, holder }) => {
                assert_eq!(path, PathBuf::from("d/LOCK"));
                assert_eq!(holder, "pid 1 on host a");
            }
            other => panic!("expected Held, got {other:?}"),
        }
        // A clone shares the lock table.
        assert!(s.clone().lock(p("d/LOCK"), "pid 3").is_err());
        drop(guard);
        let _g = s.lock(p("d/LOCK"), "pid 2 on host b").unwrap();
        assert_eq!(s.read_file(p("d/LOCK")).unwrap(), b"pid 2 on host b");
        assert!(matches!(
            s.lock(p("nodir/LOCK"), "x"),
            Err(LockError::Io { .. })
        ));
    }

    #[test]
    fn write_and_truncate_file_helpers_are_durable() {
        let s = SimStorage::new();
        s.write_file(p("x/y/f"), b"hello").unwrap();
        assert!(s.exists(p("x/y")));
        s.truncate_file(p("x/y/f"), 2).unwrap();
        s.write_file(p("x/y/g"), b"1").unwrap();
        s.write_file(p("x/y/g"), b"22").unwrap();
        assert_eq!(s.op_count(), 0);
        let c = s.crash(CrashMode::DropUnsynced);
        assert_eq!(c.read_file(p("x/y/f")).unwrap(), b"he");
        assert_eq!(c.read_file(p("x/y/g")).unwrap(), b"22");
        c.truncate_file(p("x/y/g"), 4).unwrap();
        assert_eq!(c.read_file(p("x/y/g")).unwrap(), b"22\0\0");
        assert_eq!(
            c.truncate_file(p("x/y/none"), 1).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );

        // write_file over an unsynced removal is not undone by a crash.
        let s = fresh();
        s.write_file(p("d/f"), b"old").unwrap();
        s.remove(p("d/f")).unwrap();
        s.write_file(p("d/f"), b"new").unwrap();
        for mode in [CrashMode::DropUnsynced, CrashMode::KeepPrefix { seed: 3 }] {
            assert_eq!(s.crash(mode).read_file(p("d/f")).unwrap(), b"new");
        }
    }

    #[test]
    fn concurrent_writer_and_readers() {
        let s = fresh();
        let f = s.create(p("d/log")).unwrap();
        thread::scope(|scope| {
            let writer = {
                let f = Arc::clone(&f);
                scope.spawn(move || {
                    for i in 0..200u64 {
                        f.write_at(&i.to_le_bytes(), i * 8).unwrap();
                        if i % 50 == 0 {
                            f.sync_data().unwrap();
                        }
                    }
                })
            };
            for _ in 0..3 {
                let s = s.clone();
                scope.spawn(move || {
                    let r = s.open(p("d/log"), false).unwrap();
                    for _ in 0..200 {
                        let len = r.len().unwrap();
                        let mut buf = vec![0u8; len as usize];
                        // The file only grows, in whole 8-byte words.
                        let n = r.read_at(&mut buf, 0).unwrap();
                        assert_eq!(n as u64, len);
                        assert_eq!(n % 8, 0);
                        for (i, word) in buf.chunks(8).enumerate() {
                            let v = u64::from_le_bytes(word.try_into().unwrap());
                            assert_eq!(v, i as u64);
                        }
                    }
                });
            }
            writer.join().unwrap();
        });
        assert_eq!(f.len().unwrap(), 1600);
    }

    #[test]
    fn handles_and_guards_do_not_keep_inodes_or_deadlock() {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        let g = s.lock(p("d/LOCK"), "me").unwrap();
        s.remove(p("d/f")).unwrap();
        s.sync_dir(p("d")).unwrap();
        assert_eq!(lock_state(&s.shared).inodes.len(), 2);
        drop(f);
        assert_eq!(lock_state(&s.shared).inodes.len(), 1);
        drop(s);
        drop(g);
    }
}
