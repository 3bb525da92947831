//! Where an HDFS sink's files go: [`DestinationUri`] (the scheme and root of `hdfs.path`) and
//! the [`Destination`] a finished file is published to.
//!
//! A local destination (`file://`) is written in place: the in-use file lives in the target
//! directory and is renamed when it rolls (the sink does that, see `dest::local` in the
//! sink). Object storage is staged: the file is written to a local staging file that survives
//! a crash, and [`Destination::publish`] uploads it when it rolls.

use std::path::{Path, PathBuf};

pub mod s3;

/// The scheme and root of `hdfs.path`; the rest of the path (with escapes) follows the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationUri {
    /// `file:///dir/...`: the root is `/`.
    Local {
        /// The absolute path before the first escape's directory (or `/`).
        root: PathBuf,
    },
    /// `s3://bucket/...` or `s3a://bucket/...`.
    S3 {
        /// The bucket.
        bucket: String,
    },
}

/// A published file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Published {
    /// Bytes uploaded.
    pub bytes: u64,
    /// How long the upload took, retries included.
    pub elapsed_ms: u64,
    /// Attempts made (1: no retry).
    pub attempts: u32,
}

/// Why a file could not be published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// Worth retrying later (the server is unreachable, throttles, or failed).
    #[error("{what}: {message} (will retry)")]
    Transient {
        /// What was being done.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// Will not succeed as configured (no such bucket, access denied, bad credentials).
    #[error("{what}: {message}")]
    Permanent {
        /// What was being done.
        what: String,
        /// Why it failed.
        message: String,
    },
}

/// Object storage a staged file is uploaded to.
pub trait Destination: Send + Sync + std::fmt::Debug {
    /// For logs and errors, e.g. `s3://bucket`.
    fn describe(&self) -> String;
    /// Uploads the finished, fsynced staged file `staged` as object `key` ('/'-separated,
    /// without a leading '/'). Idempotent: publishing the same file under the same key twice
    /// leaves one object with its bytes; an object appears whole or not at all (multipart
    /// uploads are completed or aborted). Blocking; retries transient failures with back-off
    /// for a bounded time, then returns the error (the caller keeps the staged file).
    fn publish(&self, staged: &Path, key: &str) -> Result<Published, DestinationError>;
}
