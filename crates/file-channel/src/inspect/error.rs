//! [`InspectError`]: why an inspection could not be done at all, as opposed to the damage it
//! found (a finding is a result, [`verify::Problem`](super::verify::Problem)).

use crate::error::OpenError;
use std::io;
use std::path::{Path, PathBuf};

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
    /// Something other than a regular file is where one of the channel's files should be (a
    /// directory, a FIFO, a device, a symbolic link loop, ...). Nothing is opened or changed.
    #[error("{path} is {kind}, where {role} should be; move it away (nothing was changed)")]
    Obstacle {
        /// Where.
        path: PathBuf,
        /// What is there, in words ("a FIFO", "a symbolic link loop", ...).
        kind: String,
        /// What should be there ("a segment file", "the quarantine directory", ...).
        role: &'static str,
    },
    /// The directory (or a data directory) holds Apache Flume FileChannel files: the engine
    /// would refuse to open it ([`crate::flume_files`]). Nothing is opened or changed.
    #[error("{0}")]
    FlumeFiles(crate::flume_files::FlumeFilesFound),
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
            OpenError::FlumeFiles(found) => Self::FlumeFiles(found),
            other => Self::Engine {
                op: "open",
                source: Box::new(other),
            },
        }
    }
}
