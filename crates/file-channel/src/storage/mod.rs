//! The one door through which the engine touches files.
//!
//! Every byte the channel reads or writes, every fsync, rename, unlink and directory listing goes
//! through [`Storage`] and [`StorageFile`]. Production uses [`StdStorage`] (plain `std::fs` plus
//! `fdatasync`/directory fsync); tests use `SimStorage` (in the `file-channel-testkit` crate),
//! which keeps a *live* and a *durable* image of every file and directory entry so a test can
//! ask "what would a crash right now leave on disk?" and inject torn writes, failed fsyncs and
//! full disks deterministically.
//!
//! The trait is deliberately small: it is the persistence model. Anything the engine needs to be
//! durable must be expressed as `write_at` + `sync_data` (file contents) and `sync_dir` (the
//! directory entries created, renamed or removed since the last sync of that directory).

mod std_fs;

pub use std_fs::{StdStorage, DIR_MODE, FILE_MODE};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A shared handle to a storage backend.
pub type DynStorage = Arc<dyn Storage>;

/// A shared handle to an open file of a storage backend.
pub type DynFile = Arc<dyn StorageFile>;

/// File-system operations the engine uses. Paths are absolute or relative to the process's
/// working directory for [`StdStorage`]; the testkit's `SimStorage` treats them as opaque keys.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates a new, empty file for reading and writing. Fails with
    /// [`io::ErrorKind::AlreadyExists`] if the path exists. The new directory entry is durable
    /// only after [`Storage::sync_dir`] of its parent.
    fn create(&self, path: &Path) -> io::Result<DynFile>;

    /// Opens an existing file, read-only or for reading and writing.
    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile>;

    /// Atomically renames `from` to `to`, replacing `to` if it exists. Durable only after
    /// [`Storage::sync_dir`] of the parent directories involved.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file. Durable only after [`Storage::sync_dir`] of its parent.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Lists the names (not paths) of the regular files directly inside `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Makes the directory entries of `dir` (creations, renames, removals) durable. Opening the
    /// directory comes first: an error for which [`failed_before_any_io`] holds (too many open
    /// files, no permission) means nothing was synced and nothing was dropped, so a later call
    /// can still make the same entries durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Creates `dir` and its missing parents. Creation is made durable by the caller with
    /// [`Storage::sync_dir`] on the parent.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;

    /// What is at `path` (following symbolic links), so an obstacle where a directory should be
    /// can be named. The default tells only missing, directory (it can be listed) and regular
    /// file (anything else that exists); [`StdStorage`] tells FIFOs, devices, sockets and
    /// symbolic link loops apart too.
    fn entry_kind(&self, path: &Path) -> io::Result<EntryKind> {
        if !self.exists(path) {
            return Ok(EntryKind::Missing);
        }
        Ok(if self.list(path).is_ok() {
            EntryKind::Directory
        } else {
            EntryKind::RegularFile
        })
    }

    /// Bytes available to an unprivileged writer on the file system holding `dir`.
    fn available_space(&self, dir: &Path) -> io::Result<u64>;

    /// Takes the exclusive, process-wide lock of a channel directory by locking the file at
    /// `path` and writing `owner` (a human-readable "pid … on host …") into it. If another
    /// holder has it, returns [`LockError::Held`] with what that holder wrote.
    fn lock(&self, path: &Path, owner: &str) -> Result<Box<dyn LockGuard>, LockError>;
}

/// What a path names, as [`Storage::entry_kind`] tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// Nothing (or a parent is not a directory).
    Missing,
    /// A directory.
    Directory,
    /// A regular file.
    RegularFile,
    /// A named pipe.
    Fifo,
    /// A character device (`/dev/zero`, …).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
    /// A symbolic link whose target does not exist.
    DanglingSymlink,
    /// Symbolic links that point at each other without end.
    SymlinkLoop,
    /// A symbolic link itself (only from [`EntryKind::of`], which does not follow links).
    Symlink,
}

impl EntryKind {
    /// The kind of an existing file, from its type (a symbolic link is not followed).
    pub fn of(t: &std::fs::FileType) -> Self {
        use std::os::unix::fs::FileTypeExt;
        if t.is_dir() {
            Self::Directory
        } else if t.is_file() {
            Self::RegularFile
        } else if t.is_symlink() {
            Self::Symlink
        } else if t.is_fifo() {
            Self::Fifo
        } else if t.is_char_device() {
            Self::CharDevice
        } else if t.is_block_device() {
            Self::BlockDevice
        } else {
            Self::Socket
        }
    }

    /// The kind as a phrase to follow "is": "a regular file", "a FIFO", ….
    pub fn describe(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Directory => "a directory",
            Self::RegularFile => "a regular file",
            Self::Fifo => "a FIFO",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Socket => "a socket",
            Self::DanglingSymlink => "a symbolic link to nothing",
            Self::SymlinkLoop => "a symbolic link loop",
            Self::Symlink => "a symbolic link",
        }
    }
}

/// An open file. All methods take `&self`: positional I/O needs no cursor, so one handle can be
/// shared by the writer and readers.
#[allow(clippy::len_without_is_empty)] // a file's emptiness is never asked; len is its size
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at or past the
    /// end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`, extending the file if needed. On error, any prefix of
    /// `buf` may have been written.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Writes `bufs` one after another at `offset`, as one `write_at` of their concatenation
    /// would. The default writes them one by one; a real file does it in as few system calls as
    /// it can (`pwritev`), so the writer need not copy records into one buffer first. On error,
    /// any prefix of the concatenation may have been written.
    fn write_all_vectored_at(&self, bufs: &[&[u8]], offset: u64) -> io::Result<()> {
        let mut at = offset;
        for b in bufs {
            self.write_at(b, at)?;
            at += b.len() as u64;
        }
        Ok(())
    }

    /// The current length of the file in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Makes the file's contents and length durable (`fdatasync`). A failure means data written
    /// since the previous successful sync may be lost, and a retry may falsely succeed: callers
    /// must treat it as fatal for the data involved.
    fn sync_data(&self) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes at `offset`, failing with
    /// [`io::ErrorKind::UnexpectedEof`] if the file is shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "file ends at {} bytes, wanted {}",
                        offset + done as u64,
                        buf.len()
                    ),
                ));
            }
            done += n;
        }
        Ok(())
    }

    /// Reads the whole file into memory.
    fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = self.len()?;
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large to read"))?;
        let mut buf = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let n = self.read_at(&mut buf[done..], done as u64)?;
            if n == 0 {
                buf.truncate(done);
                break;
            }
            done += n;
        }
        Ok(buf)
    }
}

/// Held while a channel directory is locked; dropping it releases the lock.
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// Why a directory lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process (or another open channel in this process) holds the lock.
    #[error("{path} is locked by {holder}")]
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote into the lock file (pid and host), or "an unknown process".
        holder: String,
    },
    /// The lock file could not be created, read or written.
    #[error("cannot use lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// The parent directory of `path`, or `.` for a bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `e` is an error that only opening or creating a file or directory returns, never a
/// write or an fsync: too many open files in the process (`EMFILE`) or the system (`ENFILE`),
/// no permission (`EACCES`, `EPERM`), no kernel memory for the descriptor (`ENOMEM`). The call
/// that failed touched no data, so the durability of nothing is in doubt: the operation fails and
/// can be retried later, and the channel is not poisoned for it.
pub fn failed_before_any_io(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EACCES | libc::EPERM | libc::ENOMEM)
    )
}
