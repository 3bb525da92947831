//! A [`Storage`] that delegates to another one, with two changes the tools need: files can be
//! hidden from listings (checkpoint files too large to be valid, which the engine would read
//! whole before refusing them), and the directory lock can be declared already held (by
//! `repair`, which reopens the channel through the engine while it keeps the lock itself).

use crate::storage::{DynFile, DynStorage, LockError, LockGuard, Storage};
use std::io;
use std::path::{Path, PathBuf};

/// The delegating storage.
#[derive(Debug)]
pub(crate) struct ViewStorage {
    pub inner: DynStorage,
    /// Files left out of [`Storage::list`].
    pub hidden: Vec<PathBuf>,
    /// Whether the caller holds the directory lock: [`Storage::lock`] then succeeds at once.
    pub lock_held: bool,
}

#[derive(Debug)]
struct HeldByCaller;

impl LockGuard for HeldByCaller {}

impl Storage for ViewStorage {
    fn create(&self, path: &Path) -> io::Result<DynFile> {
        self.inner.create(path)
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile> {
        self.inner.open(path, writable)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let names = self.inner.list(dir)?;
        Ok(names
            .into_iter()
            .filter(|n| !self.hidden.contains(&dir.join(n)))
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        self.inner.available_space(dir)
    }

    fn lock(&self, path: &Path, owner: &str) -> Result<Box<dyn LockGuard>, LockError> {
        if self.lock_held {
            Ok(Box::new(HeldByCaller))
        } else {
            self.inner.lock(path, owner)
        }
    }
}
