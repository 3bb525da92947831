//! Inspection and repair of channel directories: the library behind the `chanctl` tool.
//!
//! The tool is a thin front; everything it shows or does is computed here, with the same parser
//! the channel uses, so the tool and the engine can never disagree about where a record starts,
//! what a torn tail is or how many events a damaged range cost:
//!
//! - [`verify`]: a read-only full replay of the log ([`crate::replay::replay`] with
//!   `ignore_checkpoints`), a second pass over every segment with the engine's
//!   [`Scanner`](crate::segment::scan::Scanner) for per-segment figures and the sequence state at
//!   every position a checkpoint names, and a check of every checkpoint against that log.
//! - [`dump`]: records in log order, decoded, streamed to a callback.
//! - [`stat`] and [`replay_view`]: what opening the channel would do, without writing.
//! - [`repair`]: a plan built from [`verify`]'s findings, applied under the directory lock.
//!
//! Limits, stated once: nothing here writes unless [`repair::apply`] is called; every length
//! read from disk is bounded before it is used (checkpoint files above
//! [`MAX_CHECKPOINT_FILE_BYTES`] are not read); no input makes these functions panic — damage is
//! a value ([`verify::Problem`]), operating errors are [`InspectError`]s.

pub mod dump;
pub mod json;
pub mod lock;
pub mod repair;
pub mod stat;
pub mod verify;
mod view_storage;
mod walk;

pub use stat::{replay_view, stat, ReplayView, StatReport};
pub use verify::{verify, VerifyReport};

use crate::error::OpenError;
use crate::format::checkpoint::{Checkpoint, CHECKPOINT_FIXED_BYTES, MAX_CHECKPOINT_RANGES};
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::identity::{self, META_FILE_NAME};
use crate::replay::list_checkpoints;
use crate::segment::{list_segments, SegmentPath};
use crate::storage::{DynStorage, StdStorage, Storage};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest checkpoint file that is read: a checkpoint with [`MAX_CHECKPOINT_RANGES`] ranges.
pub const MAX_CHECKPOINT_FILE_BYTES: u64 =
    CHECKPOINT_FIXED_BYTES as u64 + 16 * MAX_CHECKPOINT_RANGES as u64 + 4;

/// Why an inspection could not be done (as opposed to damage it found, which is a result).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The path does not exist.
    #[error("{path} does not exist")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The path is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The directory holds neither `channel.meta` nor a segment file.
    #[error("{dir} is not a channel directory: it holds no channel.meta and no segment file (log-<id>.seg){hint}")]
    NotAChannel {
        /// The directory.
        dir: PathBuf,
        /// Extra advice (e.g. about `--data-dir`), possibly empty.
        hint: String,
    },
    /// A live process has the channel open.
    #[error("channel directory {dir} is locked by {holder}; stop that process first")]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// What the holder wrote into `in_use.lock`.
        holder: String,
    },
    /// A file operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// More segment files than the engine accepts.
    #[error("{dir} holds {count} segment files, more than the limit of {limit}")]
    TooManySegments {
        /// The directory.
        dir: PathBuf,
        /// Files found.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The caller's output (a dump sink) failed, e.g. with a broken pipe.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
    /// An argument is unusable (e.g. a bench directory that is not empty).
    #[error("{0}")]
    Usage(String),
    /// The engine refused an operation (bench, or the reopen that rebuilds checkpoints).
    #[error("{op}: {source}")]
    Engine {
        /// What was being done.
        op: &'static str,
        /// The engine's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl InspectError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { op, path, source }
    }

    /// Maps the operating-error variants of [`OpenError`]; damage variants are findings and
    /// are handled by the callers, so here they become [`InspectError::Engine`].
    pub(crate) fn from_open(e: OpenError) -> Self {
        match e {
            OpenError::Io { op, path, source } => Self::Io { op, path, source },
            OpenError::TooManySegments { dir, count, limit } => {
                Self::TooManySegments { dir, count, limit }
            }
            OpenError::Locked { dir, holder } => Self::Locked { dir, holder },
            other => Self::Engine {
                op: "open",
                source: Box::new(other),
            },
        }
    }
}

/// The state of `channel.meta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaState {
    /// Valid; the channel id.
    Valid(u64),
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
    pub fn open(dir: &Path, data_dirs: &[PathBuf]) -> Result<Self, InspectError> {
        if !dir.exists() {
            return Err(InspectError::Missing {
                path: dir.to_path_buf(),
            });
        }
        if !dir.is_dir() {
            return Err(InspectError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        for d in data_dirs {
            if d.exists() && !d.is_dir() {
                return Err(InspectError::NotADirectory { path: d.clone() });
            }
        }
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

    /// The channel id: from `channel.meta`, else from the first segment header that decodes.
    pub fn channel_id(&self) -> Option<u64> {
        if let MetaState::Valid(id) = self.meta {
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
    let n = (len.min(SEGMENT_HEADER_BYTES as u64)) as usize;
    let mut head = [0u8; SEGMENT_HEADER_BYTES];
    f.read_exact_at(&mut head[..n], 0)?;
    Ok(SegmentHeader::decode(&head[..n]))
}

/// A short machine-readable name of a corruption kind (for JSON output).
pub fn kind_code(kind: &CorruptionKind) -> &'static str {
    match kind {
        CorruptionKind::Truncated { .. } => "truncated",
        CorruptionKind::BadLength { .. } => "bad_length",
        CorruptionKind::BadChecksum { .. } => "bad_checksum",
        CorruptionKind::BadMagic => "bad_magic",
        CorruptionKind::UnsupportedVersion { .. } => "unsupported_version",
        CorruptionKind::WrongSegment { .. } => "wrong_segment",
        CorruptionKind::WrongOffset { .. } => "wrong_offset",
        CorruptionKind::WrongChannel { .. } => "wrong_channel",
        CorruptionKind::UnknownRecordType { .. } => "unknown_record_type",
        CorruptionKind::BadPayload { .. } => "bad_payload",
        CorruptionKind::SequenceGap { .. } => "sequence_gap",
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The host name, for lock files and reports.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "an unknown host".to_owned())
}
