//! The directory lock, seen from outside: whether a live process has the channel open, and the
//! exclusive lock `repair` holds while it changes files.
//!
//! It is the engine's lock: an `flock` on `in_use.lock` (fs2). The probe opens the file
//! read-only and tries a *shared* lock for an instant, so it never writes, never creates the
//! file, and conflicts with the engine only for the microseconds it is held (an open starting in
//! exactly that window fails with `OpenError::Locked` and can be retried).

use super::{hostname, InspectError};
use crate::identity::LOCK_FILE_NAME;
use fs2::FileExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Whether a live process holds a channel directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it (or there is no lock file).
    Free,
    /// A live process holds it; what it wrote into the lock file.
    Held {
        /// The holder's text (`pid … on host …`), or "an unknown process".
        holder: String,
    },
}

fn holder_text(file: &mut File) -> String {
    let mut holder = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(4096).read_to_string(&mut holder);
    let holder = holder.trim();
    if holder.is_empty() {
        "an unknown process".to_owned()
    } else {
        holder.to_owned()
    }
}

fn is_contended(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// Probes the lock of channel directory `dir` without writing anything.
pub fn probe(dir: &Path) -> Result<LockState, InspectError> {
    let path = dir.join(LOCK_FILE_NAME);
    // O_NONBLOCK: a FIFO in the lock file's place must not block the probe (on a regular
    // file the flag changes nothing).
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
        Err(e) => return Err(InspectError::io("open", &path)(e)),
    };
    match FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            Ok(LockState::Free)
        }
        Err(e) if is_contended(&e) => Ok(LockState::Held {
            holder: holder_text(&mut file),
        }),
        Err(e) => Err(InspectError::io("lock", &path)(e)),
    }
}

/// The exclusive lock of a channel directory; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    file: File,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// Takes the exclusive lock of `dir` (the engine's lock, so a channel cannot open meanwhile)
/// and writes `what` with this process's pid and host into the lock file. Fails with
/// [`InspectError::Locked`] naming the holder if a live process has it.
pub fn lock_exclusive(dir: &Path, what: &str) -> Result<DirLock, InspectError> {
    let path = dir.join(LOCK_FILE_NAME);
    let io = |op| InspectError::io(op, &path);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NONBLOCK)
        // The engine's mode for every file it creates (docs/operations.md, "File modes").
        .mode(crate::storage::FILE_MODE)
        .open(&path)
        .map_err(io("open"))?;
    if let Err(e) = FileExt::try_lock_exclusive(&file) {
        if is_contended(&e) {
            return Err(InspectError::Locked {
                dir: dir.to_path_buf(),
                holder: holder_text(&mut file),
            });
        }
        return Err(io("lock")(e));
    }
    let owner = format!("{what}: pid {} on host {}", std::process::id(), hostname());
    file.set_len(0).map_err(io("truncate"))?;
    file.seek(SeekFrom::Start(0)).map_err(io("seek"))?;
    file.write_all(owner.as_bytes()).map_err(io("write"))?;
    file.sync_data().map_err(io("fsync"))?;
    Ok(DirLock { file })
}
