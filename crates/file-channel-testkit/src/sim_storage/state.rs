//! The simulated file system's state: for every inode and every directory a *live* image (what
//! the running process sees), a *durable* image (what survives a power loss) and the ordered
//! unsynced changes between them, with the operations that move between the two (write,
//! truncate, `sync_data`, create, rename, remove, `sync_dir`) and the errors they answer with.
//! Crash images ([`super::crash`]) and injected faults ([`super::faults`]) build on it.

use file_channel::storage::parent_dir;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The message of every error returned once the simulated process is dead.
pub(super) const DEAD_MESSAGE: &str = "simulated crash: storage is dead";

/// What [`Storage::available_space`](file_channel::storage::Storage::available_space) reports when no capacity is set.
pub(super) const UNLIMITED_SPACE: u64 = 1 << 50;

/// The largest simulated file, so that a wild offset is an error instead of an allocation
/// failure (which aborts the process).
pub(super) const MAX_FILE_BYTES: u64 = if (isize::MAX as u64) < (1 << 34) {
    isize::MAX as u64
} else {
    1 << 34
};

/// One unsynced change to a file's contents.
#[derive(Clone, Debug)]
pub(super) enum DataOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen { len: u64 },
}

/// One unsynced change to a directory's entries.
#[derive(Clone, Debug)]
pub(super) enum EntryOp {
    Link { name: String, ino: u64 },
    Unlink { name: String },
    Rename { from: String, to: String, ino: u64 },
}

impl EntryOp {
    pub(super) fn apply(&self, map: &mut BTreeMap<String, u64>) {
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

    pub(super) fn ino(&self) -> Option<u64> {
        match self {
            EntryOp::Link { ino, .. } | EntryOp::Rename { ino, .. } => Some(*ino),
            EntryOp::Unlink { .. } => None,
        }
    }
}

#[derive(Default)]
pub(super) struct Inode {
    pub(super) live: Vec<u8>,
    pub(super) durable: Vec<u8>,
    pub(super) pending: Vec<DataOp>,
    pub(super) handles: usize,
}

#[derive(Default)]
pub(super) struct Dir {
    pub(super) live: BTreeMap<String, u64>,
    pub(super) durable: BTreeMap<String, u64>,
    pub(super) pending: Vec<EntryOp>,
}

pub(super) struct State {
    pub(super) dirs: BTreeMap<PathBuf, Dir>,
    pub(super) inodes: BTreeMap<u64, Inode>,
    pub(super) next_ino: u64,
    /// Held directory locks: lock file path → what the holder wrote.
    pub(super) locks: BTreeMap<PathBuf, String>,
    pub(super) capacity: Option<u64>,
    pub(super) available_override: Option<u64>,
    pub(super) failing_syncs: u64,
    pub(super) failing_ops: BTreeSet<u64>,
    /// While set, every open of a file or directory fails with this errno before touching
    /// anything (see [`super::SimStorage::fail_opens_with`]).
    pub(super) open_errno: Option<i32>,
    /// Successful mutating operations left before the process dies.
    pub(super) crash_budget: Option<u64>,
    pub(super) dead: bool,
    pub(super) ops: u64,
    pub(super) syncs: u64,
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

pub(super) fn lock_state(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn dead_error() -> io::Error {
    io::Error::other(DEAD_MESSAGE)
}

pub(super) fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

pub(super) fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

pub(super) fn efbig() -> io::Error {
    io::Error::from_raw_os_error(libc::EFBIG)
}

pub(super) fn not_found(what: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", what.display()),
    )
}

pub(super) fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Splits a file path into its directory key and its file name.
pub(super) fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .ok_or_else(|| invalid_input(format!("{}: not a file path", path.display())))?
        .to_str()
        .ok_or_else(|| invalid_input(format!("{}: file name is not UTF-8", path.display())))?
        .to_owned();
    Ok((parent_dir(path).to_path_buf(), name))
}

/// Checks that `[offset, offset + len)` is a valid file range and returns its end.
pub(super) fn range_end(offset: u64, len: usize) -> io::Result<u64> {
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
pub(super) fn apply_write(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
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

pub(super) fn apply_data_op(buf: &mut Vec<u8>, op: &DataOp) {
    match op {
        DataOp::Write { offset, data } => apply_write(buf, *offset, data),
        DataOp::SetLen { len } => buf.resize(*len as usize, 0),
    }
}

impl State {
    pub(super) fn new() -> Self {
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
            open_errno: None,
            crash_budget: None,
            dead: false,
            ops: 0,
            syncs: 0,
        }
    }

    pub(super) fn check_alive(&self) -> io::Result<()> {
        if self.dead {
            Err(dead_error())
        } else {
            Ok(())
        }
    }

    pub(super) fn dir(&self, dir: &Path) -> io::Result<&Dir> {
        self.dirs.get(dir).ok_or_else(|| not_found(dir))
    }

    pub(super) fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    pub(super) fn inode(&self, ino: u64) -> io::Result<&Inode> {
        self.inodes
            .get(&ino)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "inode vanished"))
    }

    pub(super) fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "inode vanished"))
    }

    /// The inode a live file path names.
    pub(super) fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dir(&dir)?
            .live
            .get(&name)
            .copied()
            .ok_or_else(|| not_found(path))
    }

    pub(super) fn is_file(&self, path: &Path) -> bool {
        self.lookup(path).is_ok()
    }

    pub(super) fn new_inode(&mut self, inode: Inode) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, inode);
        ino
    }

    /// Records `dir` and its ancestors as existing directories.
    pub(super) fn make_dirs(&mut self, dir: &Path) -> io::Result<()> {
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
    pub(super) fn used_bytes(&self) -> u64 {
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

    /// Forgets inodes nothing can reach any more: no live or durable entry, no unsynced entry
    /// change a crash could replay, no open handle.
    pub(super) fn collect_garbage(&mut self) {
        let mut reachable = BTreeSet::new();
        for d in self.dirs.values() {
            reachable.extend(d.live.values().copied());
            reachable.extend(d.durable.values().copied());
            reachable.extend(d.pending.iter().filter_map(EntryOp::ino));
        }
        self.inodes
            .retain(|ino, inode| inode.handles > 0 || reachable.contains(ino));
    }

    pub(super) fn write_at(&mut self, ino: u64, buf: &[u8], offset: u64) -> io::Result<()> {
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

    pub(super) fn set_len(&mut self, ino: u64, len: u64) -> io::Result<()> {
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

    pub(super) fn sync_data(&mut self, ino: u64, injected: bool) -> io::Result<()> {
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

    pub(super) fn sync_dir(&mut self, dir: &Path, injected: bool) -> io::Result<()> {
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

    pub(super) fn create(&mut self, path: &Path) -> io::Result<u64> {
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

    pub(super) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
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

    pub(super) fn remove(&mut self, path: &Path) -> io::Result<()> {
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
    pub(super) fn open_or_create(&mut self, path: &Path) -> io::Result<u64> {
        match self.lookup(path) {
            Ok(ino) => Ok(ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.create(path),
            Err(e) => Err(e),
        }
    }
}
