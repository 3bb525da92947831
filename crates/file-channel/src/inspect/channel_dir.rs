//! [`ChannelDir`]: a channel directory's files, listed once — segments, checkpoints, the
//! identity file and anything else — with bounded readers for checkpoint files and segment
//! headers. Every inspection starts from one.

use super::InspectError;
use crate::format::checkpoint::{Checkpoint, CHECKPOINT_FIXED_BYTES, MAX_CHECKPOINT_RANGES};
use crate::format::record::RecordBinding;
use crate::format::segment_header::SegmentHeader;
use crate::format::CorruptionKind;
use crate::identity::{self, Identity, META_FILE_NAME};
use crate::replay::list_checkpoints;
use crate::segment::{list_segments, SegmentPath};
use crate::storage::{DynStorage, StdStorage, Storage};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest checkpoint file that is read: a checkpoint with [`MAX_CHECKPOINT_RANGES`] ranges.
pub const MAX_CHECKPOINT_FILE_BYTES: u64 =
    CHECKPOINT_FIXED_BYTES as u64 + 16 * MAX_CHECKPOINT_RANGES as u64 + 4;

/// The state of `channel.meta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaState {
    /// Valid: the channel id and the format version the channel was created in.
    Valid(Identity),
    /// Absent (the engine rewrites it from the segment headers at open).
    Missing,
    /// Present but not a valid identity file (the engine refuses to open).
    Invalid(CorruptionKind),
    /// Present but unreadable.
    Unreadable(String),
}

/// A checkpoint file and what decoding it gave.
#[derive(Clone, Debug)]
pub struct CheckpointFile {
    /// The file.
    pub path: PathBuf,
    /// The generation in its name.
    pub generation: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// The decoded checkpoint, or why it does not decode.
    pub decoded: Result<Checkpoint, CheckpointReadError>,
}

/// Why a checkpoint file could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointReadError {
    /// Its bytes are not a valid checkpoint.
    Corrupt(CorruptionKind),
    /// It could not be read.
    Unreadable(String),
}

impl std::fmt::Display for CheckpointReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Corrupt(k) => write!(f, "{k}"),
            Self::Unreadable(e) => write!(f, "cannot read it: {e}"),
        }
    }
}

/// A channel directory found on disk: its files, listed once.
#[derive(Clone, Debug)]
pub struct ChannelDir {
    /// The channel directory (lock, identity, checkpoints, quarantine).
    pub dir: PathBuf,
    /// The directories holding segments (the channel directory unless `--data-dir` was given).
    pub segment_dirs: Vec<PathBuf>,
    /// The storage every read and write goes through.
    pub storage: DynStorage,
    /// Whether `storage` is the real file system (locks are taken only then).
    pub real_fs: bool,
    /// Segment files by id.
    pub segments: Vec<SegmentPath>,
    /// Checkpoint files, newest generation first.
    pub checkpoints: Vec<(u64, PathBuf)>,
    /// `channel.meta`.
    pub meta: MetaState,
    /// Whether a `checkpoint.tmp` (a checkpoint a crash interrupted) is present.
    pub checkpoint_tmp: bool,
    /// Names of files in the channel directory the engine ignores.
    pub other_files: Vec<String>,
}

impl ChannelDir {
    /// Looks at `dir` on the real file system; segments are in `data_dirs` (or `dir` if empty).
    /// Fails with [`InspectError::NotAChannel`] if there is neither `channel.meta` nor a segment.
    ///
    /// Before anything is opened, every name the channel uses (segments, checkpoints,
    /// `channel.meta`, `checkpoint.tmp`, the lock file) is looked at without following it or
    /// opening it: anything but a regular file there (a directory, a FIFO, a device, a
    /// symbolic link loop) is an [`InspectError::Obstacle`] naming it, so no command blocks on
    /// a FIFO or reads a device forever.
    pub fn open(dir: &Path, data_dirs: &[PathBuf]) -> Result<Self, InspectError> {
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(InspectError::Missing {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(InspectError::io("look at", dir)(e)),
            Ok(m) if !m.is_dir() => {
                return Err(InspectError::NotADirectory {
                    path: dir.to_path_buf(),
                })
            }
            Ok(_) => {}
        }
        for d in data_dirs {
            match std::fs::metadata(d) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(InspectError::io("look at", d)(e)),
                Ok(m) if !m.is_dir() => {
                    return Err(InspectError::NotADirectory { path: d.clone() })
                }
                Ok(_) => {}
            }
        }
        check_obstacles(dir, data_dirs)?;
        Self::open_with(Arc::new(StdStorage::new()), true, dir, data_dirs)
    }

    /// Looks at `dir` through `storage` (tests pass a simulated one).
    pub fn open_with(
        storage: DynStorage,
        real_fs: bool,
        dir: &Path,
        data_dirs: &[PathBuf],
    ) -> Result<Self, InspectError> {
        let segment_dirs: Vec<PathBuf> = if data_dirs.is_empty() {
            vec![dir.to_path_buf()]
        } else {
            data_dirs.to_vec()
        };
        let all_dirs = std::iter::once(dir).chain(segment_dirs.iter().map(PathBuf::as_path));
        match crate::flume_files::find_in_any(storage.as_ref(), all_dirs) {
            Ok(None) => {}
            Ok(Some(found)) => return Err(InspectError::FlumeFiles(found)),
            Err((path, e)) => return Err(InspectError::io("look for Flume files in", &path)(e)),
        }
        let names = storage.list(dir).map_err(InspectError::io("list", dir))?;
        let existing: Vec<PathBuf> = segment_dirs
            .iter()
            .filter(|d| storage.exists(d))
            .cloned()
            .collect();
        let segments = list_segments(storage.as_ref(), &existing)
            .map_err(InspectError::io("list segments in", dir))?;
        if segments.len() > crate::limits::MAX_SEGMENTS {
            return Err(InspectError::TooManySegments {
                dir: dir.to_path_buf(),
                count: segments.len(),
                limit: crate::limits::MAX_SEGMENTS,
            });
        }
        let checkpoints = list_checkpoints(storage.as_ref(), dir)
            .map_err(InspectError::io("list checkpoints in", dir))?;
        let meta_path = dir.join(META_FILE_NAME);
        let has_meta = names.iter().any(|n| n == META_FILE_NAME);
        if !has_meta && segments.is_empty() {
            let hint = if data_dirs.is_empty() {
                String::new()
            } else {
                " in any data directory given".to_owned()
            };
            return Err(InspectError::NotAChannel {
                dir: dir.to_path_buf(),
                hint,
            });
        }
        let meta = if has_meta {
            match storage.open(&meta_path, false).and_then(|f| {
                let len = f.len()?;
                if len > 4096 {
                    return Ok(Err(CorruptionKind::BadLength { len }));
                }
                f.read_all().map(|b| identity::decode(&b))
            }) {
                Ok(Ok(id)) => MetaState::Valid(id),
                Ok(Err(kind)) => MetaState::Invalid(kind),
                Err(e) => MetaState::Unreadable(e.to_string()),
            }
        } else {
            MetaState::Missing
        };
        let known = |n: &str| {
            n == META_FILE_NAME
                || n == identity::LOCK_FILE_NAME
                || n == crate::checkpoint::CHECKPOINT_TMP_NAME
                || n == format!("{META_FILE_NAME}.tmp")
                || crate::format::segment_header::parse_segment_file_name(n).is_some()
                || crate::format::checkpoint::parse_checkpoint_file_name(n).is_some()
        };
        let checkpoint_tmp = names
            .iter()
            .any(|n| n == crate::checkpoint::CHECKPOINT_TMP_NAME);
        let other_files = names.iter().filter(|n| !known(n)).cloned().collect();
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_dirs,
            storage,
            real_fs,
            segments,
            checkpoints,
            meta,
            checkpoint_tmp,
            other_files,
        })
    }

    /// Lists the files again (after a repair changed them).
    pub fn reload(&self) -> Result<Self, InspectError> {
        let data_dirs = if self.segment_dirs == [self.dir.clone()] {
            Vec::new()
        } else {
            self.segment_dirs.clone()
        };
        Self::open_with(self.storage.clone(), self.real_fs, &self.dir, &data_dirs)
    }

    /// Reads and decodes every checkpoint file, newest first. Files longer than
    /// [`MAX_CHECKPOINT_FILE_BYTES`] are not read.
    pub fn read_checkpoints(&self) -> Vec<CheckpointFile> {
        self.checkpoints
            .iter()
            .map(|(generation, path)| {
                let (bytes, decoded) = read_checkpoint_file(self.storage.as_ref(), path);
                CheckpointFile {
                    path: path.clone(),
                    generation: *generation,
                    bytes,
                    decoded,
                }
            })
            .collect()
    }

    /// Reads and decodes the header of segment `seg`.
    pub fn segment_header(
        &self,
        seg: &SegmentPath,
    ) -> io::Result<Result<SegmentHeader, CorruptionKind>> {
        read_segment_header(self.storage.as_ref(), &seg.path)
    }

    /// The channel id `channel.meta` names, when it verifies.
    pub fn meta_id(&self) -> Option<u64> {
        match self.meta {
            MetaState::Valid(identity) => Some(identity.channel_id),
            _ => None,
        }
    }

    /// The format version `channel.meta` says the channel was created in; the oldest readable
    /// one when it does not verify (records behind a lost header may then be format 1).
    pub fn meta_format_version(&self) -> u32 {
        match self.meta {
            MetaState::Valid(identity) => identity.format_version,
            _ => crate::format::OLDEST_READABLE_FORMAT_VERSION,
        }
    }

    /// The bindings to try for records behind a lost segment header: bound to this channel,
    /// then unbound unless `channel.meta` says the channel was created in format 2.
    pub(crate) fn lost_header_bindings(&self) -> Vec<RecordBinding> {
        crate::segment::lost_header::bindings_behind_lost_header(
            self.channel_id(),
            self.meta_format_version() < 2,
        )
    }

    /// The channel id: from `channel.meta`, else from the first segment header that decodes.
    pub fn channel_id(&self) -> Option<u64> {
        if let Some(id) = self.meta_id() {
            return Some(id);
        }
        self.segments.iter().find_map(|s| {
            self.segment_header(s)
                .ok()
                .and_then(Result::ok)
                .map(|h| h.channel_id)
        })
    }
}

/// What should be at a name the channel uses, for messages; `None` for names it does not use.
fn role_of(name: &str, channel_dir: bool) -> Option<&'static str> {
    if crate::format::segment_header::parse_segment_file_name(name).is_some() {
        return Some("a segment file");
    }
    if !channel_dir {
        return None;
    }
    if crate::format::checkpoint::parse_checkpoint_file_name(name).is_some() {
        Some("a checkpoint file")
    } else if name == META_FILE_NAME {
        Some("the identity file channel.meta")
    } else if name == crate::checkpoint::CHECKPOINT_TMP_NAME {
        Some("an interrupted checkpoint (checkpoint.tmp)")
    } else if name == format!("{META_FILE_NAME}.tmp") {
        Some("a temporary identity file (channel.meta.tmp)")
    } else if name == identity::LOCK_FILE_NAME {
        Some("the lock file")
    } else {
        None
    }
}

/// Fails with [`InspectError::Obstacle`] for the first name the channel uses, in `dir` or a
/// data directory, that holds anything but a regular file (or a link to one). Nothing is
/// opened: names are listed and looked at with `lstat`/`stat` only.
pub(crate) fn check_obstacles(dir: &Path, data_dirs: &[PathBuf]) -> Result<(), InspectError> {
    let mut dirs = vec![(dir, true)];
    dirs.extend(data_dirs.iter().map(|d| (d.as_path(), d == dir)));
    for (d, channel_dir) in dirs {
        let entries = match std::fs::read_dir(d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && d != dir => continue,
            Err(e) => return Err(InspectError::io("list", d)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(InspectError::io("list", d))?;
            let name = entry.file_name();
            let Some(role) = name.to_str().and_then(|n| role_of(n, channel_dir)) else {
                continue;
            };
            let path = d.join(&name);
            if let Some(kind) = not_a_regular_file(&path)? {
                return Err(InspectError::Obstacle { path, kind, role });
            }
        }
    }
    Ok(())
}

/// What is at `path`, in words, when it is not a regular file or a link to one; `None` for a
/// regular file or nothing at all. Looks with `lstat` and `stat` only, never opens.
pub(crate) fn not_a_regular_file(path: &Path) -> Result<Option<String>, InspectError> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(InspectError::io("look at", path)(e)),
    };
    if m.file_type().is_file() {
        return Ok(None);
    }
    if !m.file_type().is_symlink() {
        return Ok(Some(file_kind(&m.file_type()).to_owned()));
    }
    Ok(match std::fs::metadata(path) {
        Ok(t) if t.is_file() => None,
        Ok(t) => Some(format!("a symbolic link to {}", file_kind(&t.file_type()))),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Some("a symbolic link loop".to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Some("a dangling symbolic link".to_owned())
        }
        Err(e) => Some(format!("a symbolic link that cannot be followed ({e})")),
    })
}

/// What is at `path`, in words, when it is not a directory or a link to one; `None` for a
/// directory or nothing at all. Looks with `lstat` and `stat` only, never opens.
pub(crate) fn not_a_directory(path: &Path) -> Result<Option<String>, InspectError> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(InspectError::io("look at", path)(e)),
    };
    if m.file_type().is_dir() {
        return Ok(None);
    }
    if !m.file_type().is_symlink() {
        return Ok(Some(file_kind(&m.file_type()).to_owned()));
    }
    Ok(match std::fs::metadata(path) {
        Ok(t) if t.is_dir() => None,
        Ok(t) => Some(format!("a symbolic link to {}", file_kind(&t.file_type()))),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Some("a symbolic link loop".to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Some("a dangling symbolic link".to_owned())
        }
        Err(e) => Some(format!("a symbolic link that cannot be followed ({e})")),
    })
}

/// A kind of file in words.
pub(crate) fn file_kind(t: &std::fs::FileType) -> &'static str {
    crate::storage::EntryKind::of(t).describe()
}

/// Reads a checkpoint file with its length bounded first.
pub(crate) fn read_checkpoint_file(
    storage: &dyn Storage,
    path: &Path,
) -> (u64, Result<Checkpoint, CheckpointReadError>) {
    let file = match storage.open(path, false) {
        Ok(f) => f,
        Err(e) => return (0, Err(CheckpointReadError::Unreadable(e.to_string()))),
    };
    let len = match file.len() {
        Ok(l) => l,
        Err(e) => return (0, Err(CheckpointReadError::Unreadable(e.to_string()))),
    };
    if len > MAX_CHECKPOINT_FILE_BYTES {
        return (
            len,
            Err(CheckpointReadError::Corrupt(CorruptionKind::BadLength {
                len,
            })),
        );
    }
    match file.read_all() {
        Ok(b) => (
            len,
            Checkpoint::decode(&b).map_err(CheckpointReadError::Corrupt),
        ),
        Err(e) => (len, Err(CheckpointReadError::Unreadable(e.to_string()))),
    }
}

/// Reads and decodes a segment header (a short file is a `Truncated` header, not an error).
pub(crate) fn read_segment_header(
    storage: &dyn Storage,
    path: &Path,
) -> io::Result<Result<SegmentHeader, CorruptionKind>> {
    let f = storage.open(path, false)?;
    let len = f.len()?;
    crate::segment::read_header(&f, len)
}
