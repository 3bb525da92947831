//! [`StdStorage`]: the production backend over `std::fs`, `fdatasync` and directory fsync.
//!
//! Every file it creates is mode [`FILE_MODE`] (0600) and every directory [`DIR_MODE`] (0700),
//! set explicitly after creation, so the process's umask neither widens nor narrows them: the
//! log holds the events' bodies, which only the channel's user should read. (A file system
//! that cannot store modes keeps its own, with a warning.)

use super::{DynFile, EntryKind, LockError, LockGuard, Storage, StorageFile};
use fs2::FileExt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt as _, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The mode of every file the engine creates: read and write for the owner only.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every directory the engine creates: the owner only.
pub const DIR_MODE: u32 = 0o700;

/// Slices per `pwritev` call: Linux's `IOV_MAX`.
const IOV_MAX: usize = 1024;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdStorage;

impl StdStorage {
    /// A handle to the real file system.
    pub fn new() -> Self {
        Self
    }
}

#[derive(Debug)]
struct StdFile {
    file: File,
}

impl StorageFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn write_all_vectored_at(&self, bufs: &[&[u8]], offset: u64) -> io::Result<()> {
        let mut at = offset;
        for group in bufs.chunks(IOV_MAX) {
            let mut slices: Vec<IoSlice<'_>> = group.iter().map(|b| IoSlice::new(b)).collect();
            let mut rest = &mut slices[..];
            // Drops leading empty slices, so a group of nothing but empty ones writes nothing.
            IoSlice::advance_slices(&mut rest, 0);
            while !rest.is_empty() {
                match rustix::io::pwritev(&self.file, rest, at) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "pwritev wrote nothing",
                        ))
                    }
                    Ok(n) => {
                        at += n as u64;
                        IoSlice::advance_slices(&mut rest, n);
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[derive(Debug)]
struct StdLock {
    file: File,
}

impl LockGuard for StdLock {}

impl Drop for StdLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the flock as well; unlocking first makes the release
        // independent of other descriptors of the same file this process may hold.
        let _ = FileExt::unlock(&self.file);
    }
}

impl Storage for StdStorage {
    fn create(&self, path: &Path) -> io::Result<DynFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(path)?;
        restore_mode(path, FILE_MODE);
        Ok(Arc::new(StdFile { file }))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        Ok(Arc::new(StdFile { file }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        create_dirs_private(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        fs2::available_space(dir)
    }

    fn entry_kind(&self, path: &Path) -> io::Result<EntryKind> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(EntryKind::SymlinkLoop),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                let dangling = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
                return Ok(if dangling {
                    EntryKind::DanglingSymlink
                } else {
                    EntryKind::Missing
                });
            }
            Err(e) => return Err(e),
        };
        Ok(EntryKind::of(&meta.file_type()))
    }

    fn lock(&self, path: &Path, owner: &str) -> Result<Box<dyn LockGuard>, LockError> {
        let io_err = |source| LockError::Io {
            path: PathBuf::from(path),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(path)
            .map_err(io_err)?;
        restore_mode(path, FILE_MODE);
        if file.try_lock_exclusive().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                path: PathBuf::from(path),
                holder: if holder.is_empty() {
                    "an unknown process".to_owned()
                } else {
                    holder.to_owned()
                },
            });
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(owner.as_bytes()).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(Box::new(StdLock { file }))
    }
}

/// Creates `dir` and its missing parents, each with mode [`DIR_MODE`] whatever the umask;
/// directories that already exist keep their mode.
fn create_dirs_private(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs_private(parent)?;
    }
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            restore_mode(dir, DIR_MODE);
            Ok(())
        }
        // Made meanwhile by someone else.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets the mode of the file or directory just created at `path` to `mode` if the umask took
/// bits away (by path: a directory whose owner lost the read bit cannot be opened). A file
/// system that cannot store modes (vfat, some network mounts) refuses the change; the entry then
/// keeps the mode that file system gives it, with a warning, rather than failing the creation.
fn restore_mode(path: &Path, mode: u32) {
    let current = fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o7777);
    if current == mode {
        return;
    }
    if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), mode = format_args!("{mode:o}"),
            current = format_args!("{current:o}"), error = %e,
            "cannot set the mode of a file or directory the channel created; it keeps the file system's");
    }
}
