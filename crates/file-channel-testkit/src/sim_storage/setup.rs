//! Test setup and inspection helpers: read, write, truncate and list files directly in both
//! images. They are not counted as operations, bypass the capacity limit and keep working after
//! the storage died, so a test can prepare a directory and inspect a dead storage.

use super::state::{efbig, split, EntryOp, Inode, MAX_FILE_BYTES};
use super::SimStorage;
use std::io;
use std::path::{Path, PathBuf};

impl SimStorage {
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
