//! [`SimStorage`]: a deterministic, in-memory file system for crash and fault tests.
//!
//! The engine's durability claims are only as good as the crashes they were tested against, and
//! real power cuts are neither reproducible nor fast. `SimStorage` therefore models what a real
//! file system promises and nothing more. For every file (inode) and every directory entry it
//! keeps a *live* image (what the running process sees) and a *durable* image (what survives a
//! power loss), plus the ordered list of changes made since the last successful sync:
//!
//! * file contents become durable only through [`StorageFile::sync_data`](file_channel::storage::StorageFile::sync_data);
//! * directory entries (creations, renames, removals) become durable only through
//!   [`Storage::sync_dir`](file_channel::storage::Storage::sync_dir) of the directory holding them.
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
//! * Directories are durable as soon as [`Storage::create_dir_all`](file_channel::storage::Storage::create_dir_all) returns, and are never
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
//!   so a test can inspect a dead storage. [`Storage::exists`](file_channel::storage::Storage::exists) answers `false` once the storage
//!   is dead, as it cannot report an error.
//!
//! | module | job |
//! |---|---|
//! | `state` | the live and durable images of inodes and directories, and the operations on them |
//! | `crash` | [`CrashMode`] and the crash images built from the unsynced history |
//! | `faults` | injected faults: `EIO` at an operation, failing syncs, `ENOSPC`, process death, bit flips |
//! | `setup` | test helpers that read and write both images directly |
//! | `storage_impl` | the `Storage`/`StorageFile` implementations, open files and locks |

mod crash;
mod faults;
mod setup;
mod state;
mod storage_impl;
#[cfg(test)]
mod tests;

pub use crash::CrashMode;

use state::{lock_state, State};
use std::sync::{Arc, Mutex, MutexGuard};

/// A deterministic in-memory file system with a live and a durable image of everything, for
/// crash and fault tests. Clones share the same file system.
#[derive(Clone, Debug)]
pub struct SimStorage {
    shared: Arc<Mutex<State>>,
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

    /// How many mutating operations (create, rename, remove, sync_dir, create_dir_all,
    /// write_at, set_len, sync_data) were attempted so far, failed ones included.
    pub fn op_count(&self) -> u64 {
        self.state().ops
    }

    /// How many `sync_data` and `sync_dir` calls succeeded.
    pub fn sync_count(&self) -> u64 {
        self.state().syncs
    }
}
