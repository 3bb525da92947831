//! The [`Storage`] and [`StorageFile`] implementations: open files ([`SimFile`]) are references
//! to an inode that survive renames and removal, held locks ([`SimLock`]) release on drop, and
//! every mutating call runs through the fault machinery ([`State::mutating`]).

use super::state::{eio, lock_state, DataOp, State, UNLIMITED_SPACE};
use super::SimStorage;
use file_channel::storage::{DynFile, LockError, LockGuard, Storage, StorageFile};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
        let ino = {
            let mut st = self.state();
            st.check_alive()?;
            st.check_open()?;
            st.mutating(|st, injected| {
                if injected {
                    return Err(eio());
                }
                let ino = st.create(path)?;
                st.inode_mut(ino)?.handles += 1;
                Ok(ino)
            })?
        };
        Ok(SimFile::handle(&self.shared, ino, true))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile> {
        let ino = {
            let mut st = self.state();
            st.check_alive()?;
            st.check_open()?;
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
        let mut st = self.state();
        st.check_alive()?;
        st.check_open()?;
        st.mutating(|st, injected| st.sync_dir(dir, injected))
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
        st.check_open().map_err(io_err)?;
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
