//! The recording storage of the `states` layer: [`TraceStorage`] forwards to a [`SimStorage`] and
//! records every successful mutating operation as a [`TraceOp`], in the order the simulated
//! disk saw them (one lock serialises the recording and the forwarding).

use crate::SimStorage;
use file_channel::storage::{DynFile, LockError, LockGuard, Storage, StorageFile};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
