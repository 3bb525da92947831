//! One error type per operation (open, put, take, commit), so callers can match on what went
//! wrong; corruption is a typed value naming file, segment and offset.

use crate::config::ConfigError;
use crate::format::event::EventTooLarge;
use crate::format::CorruptionKind;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Damage found on disk, with its exact location.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: segment {segment}, offset {offset}: {kind}")]
pub struct Corruption {
    /// The damaged file.
    pub file: PathBuf,
    /// Its segment id.
    pub segment: u64,
    /// Byte offset of the damaged record or header.
    pub offset: u64,
    /// What is wrong.
    pub kind: CorruptionKind,
}

/// Why the channel refuses all further work; set by the first failed fsync or unrecoverable
/// write. Reopening the channel replays what was durable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("channel is poisoned since {cause}; reopen it to recover the durable state")]
pub struct Poisoned {
    /// Shared: every waiter of a failed batch gets a clone.
    cause: Arc<PoisonCause>,
}

impl Poisoned {
    /// What poisoned the channel (or, for [`PoisonCause::Closed`] and the like, why an operation
    /// that needed a live writer got no answer).
    pub fn cause(&self) -> &PoisonCause {
        &self.cause
    }
}

impl From<PoisonCause> for Poisoned {
    fn from(cause: PoisonCause) -> Self {
        Self {
            cause: Arc::new(cause),
        }
    }
}

/// An I/O error kept in a [`PoisonCause`]: its kind to match on, its text for the message
/// (`std::io::Error` itself can be neither cloned nor compared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoFailure {
    kind: io::ErrorKind,
    text: String,
}

impl IoFailure {
    /// The error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.kind
    }
}

impl From<&io::Error> for IoFailure {
    fn from(e: &io::Error) -> Self {
        Self {
            kind: e.kind(),
            text: e.to_string(),
        }
    }
}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why the key of pending encrypted events is not usable at open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// No key of that id is configured.
    #[error("no key of that id is configured (listed: {listed})")]
    Missing {
        /// The ids configured, comma-separated ("none" when none).
        listed: String,
    },
    /// A key of that id is configured, but it is another key.
    #[error("the key configured under that id is another key (its check value is {configured}, the records were sealed with {recorded}): the wrong key, not damage")]
    Wrong {
        /// Check value of the configured key, hex.
        configured: String,
        /// Check value in the records, hex.
        recorded: String,
    },
    /// Encryption is off (no active key).
    #[error("encryption is off (no encryption.activeKey), and turning it off while encrypted events are pending is refused: keep the key active until the channel has drained")]
    EncryptionOff,
}

/// What made the channel refuse work. Each failure leaves the durability of something unknown,
/// which only a reopen (a replay of what is durable) settles.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoisonCause {
    /// The writer's `fdatasync` of the active segment failed.
    #[error("fdatasync of {path} failed: {error}")]
    SegmentSync {
        /// The segment file.
        path: PathBuf,
        /// The error.
        error: IoFailure,
    },
    /// The prefill thread's `fdatasync` of the active segment failed (it may have taken the
    /// error that belonged to the writer's pages).
    #[error("fdatasync of a segment by the prefill thread failed: {error}")]
    PrefillSync {
        /// The error.
        error: IoFailure,
    },
    /// A prefill write failed other than for lack of space.
    #[error("a prefill write at offset {offset} failed: {error}")]
    PrefillWrite {
        /// Where the zeros were going.
        offset: u64,
        /// The error.
        error: IoFailure,
    },
    /// An fsync of a directory failed (it may have dropped other threads' entries too).
    #[error("fsync of directory {dir} failed: {error}")]
    DirectorySync {
        /// The directory.
        dir: PathBuf,
        /// The error.
        error: IoFailure,
    },
    /// A write of a batch failed other than for lack of space: part of it may be on disk.
    #[error("a write of {bytes} bytes to {path} at offset {offset} failed: {error}")]
    SegmentWrite {
        /// The segment file.
        path: PathBuf,
        /// Where the write began.
        offset: u64,
        /// Its length.
        bytes: u64,
        /// The error.
        error: IoFailure,
    },
    /// A batch ran out of space after it had rotated to a new segment, so it cannot be cut
    /// back from one file.
    #[error("no space while a batch spanned two segments ({path}): {error}")]
    NoSpaceAcrossSegments {
        /// The file whose write failed.
        path: PathBuf,
        /// The error.
        error: IoFailure,
    },
    /// Cutting a segment back after a partial write (no space) failed: the partial write stays.
    #[error("cannot cut {path} back to {offset} after a failed write: {error}")]
    CutBackFailed {
        /// The segment file.
        path: PathBuf,
        /// Where the batch began.
        offset: u64,
        /// The error.
        error: IoFailure,
    },
    /// Creating the next segment failed in a way that leaves data in doubt (its header's write
    /// or fsync, or the directory's fsync, failed), or failed after the batch had already
    /// rotated once, so the batch cannot be cut back from one file. (A segment that merely
    /// cannot be created or opened fails its batch with [`CommitError::SegmentUnavailable`].)
    #[error("cannot {op} segment {path}: {error}")]
    SegmentCreate {
        /// The step that failed (create, write the header of, fsync, …).
        op: &'static str,
        /// The new segment file.
        path: PathBuf,
        /// The error.
        error: IoFailure,
    },
    /// Sealing a record failed in the AEAD library (a salt could not be drawn, or the library
    /// refused): nothing of the batch was written.
    #[error("cannot encrypt a record for segment {segment}: {error}")]
    Encrypt {
        /// The segment the record was for.
        segment: u64,
        /// What failed.
        error: String,
    },
    /// Writing the seal of a full segment failed.
    #[error("cannot write the seal of {path}: {error}")]
    SealWrite {
        /// The segment file.
        path: PathBuf,
        /// The error.
        error: IoFailure,
    },
    /// The writer stopped before answering (reported when no other cause was recorded).
    #[error("writer stopped")]
    WriterStopped,
    /// The final sync of a close failed (reported when no other cause was recorded).
    #[error("the final sync failed")]
    FinalSyncFailed,
    /// A requested sync failed (reported when no other cause was recorded).
    #[error("the sync failed")]
    SyncFailed,
    /// A sync was asked of a closed channel.
    #[error("the channel is closed")]
    Closed,
}

/// Failure to open a channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another process or open channel holds the directory.
    #[error("channel directory {dir} is locked by {holder}")]
    Locked {
        /// The channel directory.
        dir: PathBuf,
        /// Who holds it (pid and host, as the holder wrote them).
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
    /// A path that must be a directory (the channel directory, a data directory, or one of
    /// their parents) is something else.
    #[error(
        "{path} is {found}, expected a directory{}",
        on_the_way_to(path, wanted)
    )]
    NotADirectory {
        /// The obstacle.
        path: PathBuf,
        /// What it is ("a regular file", "a FIFO", …).
        found: &'static str,
        /// The directory the configuration names (`path` itself, or a directory under it).
        wanted: PathBuf,
    },
    /// The log is damaged outside a torn tail.
    #[error("corrupt log: {0}")]
    Corrupt(Corruption),
    /// Pending events are encrypted with a key that was not given, or with another key than
    /// the one given under that id, or encryption was turned off while they are pending. Found
    /// before replay: nothing in the directory was changed.
    #[error("segment {segment} ({path}) holds pending events encrypted with key {key_id:?}: {problem}; nothing in the channel directory was changed")]
    Key {
        /// The segment file.
        path: PathBuf,
        /// The segment id.
        segment: u64,
        /// The key the records name.
        key_id: String,
        /// What is wrong.
        problem: Box<KeyProblem>,
    },
    /// The directory holds a file that is not what its name says, or belongs to another channel.
    #[error("{path}: {reason}")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The channel directory or a data directory holds Apache Flume FileChannel files (the
    /// migration guard, [`crate::flume_files`]). Found before anything was created or changed.
    #[error("{0}")]
    FlumeFiles(crate::flume_files::FlumeFilesFound),
    /// More segment files than [`crate::limits::MAX_SEGMENTS`].
    #[error("{dir} holds {count} segment files, more than the limit of {limit}")]
    TooManySegments {
        /// The directory.
        dir: PathBuf,
        /// Files found.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// " on the way to WANTED" when the obstacle is a parent of the wanted directory.
fn on_the_way_to(obstacle: &std::path::Path, wanted: &std::path::Path) -> String {
    if obstacle == wanted {
        String::new()
    } else {
        format!(" on the way to {}", wanted.display())
    }
}

/// Which limit refused a put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullLimit {
    /// The event capacity.
    Capacity(u64),
    /// The byte limit.
    Bytes(u64),
}

impl std::fmt::Display for FullLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Capacity(n) => write!(f, "capacity of {n} events"),
            Self::Bytes(n) => write!(f, "byte limit of {n} bytes"),
        }
    }
}

/// Failure of a put.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// No room appeared within keep-alive.
    #[error("channel full: the {limit} was reached and no room appeared within {waited_ms} ms")]
    ChannelFull {
        /// The limit that was hit.
        limit: FullLimit,
        /// How long the put waited.
        waited_ms: u64,
    },
    /// The transaction already holds `transaction_capacity` events.
    #[error("transaction full: it already holds {capacity} events (transaction_capacity)")]
    TransactionFull {
        /// The configured transaction capacity.
        capacity: u32,
    },
    /// The transaction's record would not fit in a segment or a record.
    #[error("transaction too large: its record would be {bytes} bytes, the limit is {limit}")]
    TransactionTooLarge {
        /// Record bytes with this event.
        bytes: u64,
        /// The limit (record or segment size).
        limit: u64,
    },
    /// A channel directory has less free space than `minimum_required_space`. Takes keep
    /// working, so the channel can drain.
    #[error("not enough disk space: {dir} has {available} bytes free, minimum_required_space is {required}")]
    InsufficientSpace {
        /// The directory short of space.
        dir: PathBuf,
        /// Bytes free there.
        available: u64,
        /// The configured reserve.
        required: u64,
    },
    /// The event itself is over a limit.
    #[error(transparent)]
    Event(#[from] EventTooLarge),
    /// The transaction already took events.
    #[error("cannot put in a take transaction: a transaction is either put or take")]
    MixedTransaction,
    /// The channel refuses work.
    #[error(transparent)]
    Poisoned(#[from] Poisoned),
    /// The channel is closed.
    #[error("channel is closed")]
    Closed,
}

/// Failure of a take.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TakeError {
    /// The transaction already put events.
    #[error("cannot take in a put transaction: a transaction is either put or take")]
    MixedTransaction,
    /// The transaction already holds `transaction_capacity` events.
    #[error("transaction full: it already took {capacity} events (transaction_capacity)")]
    TransactionFull {
        /// The configured transaction capacity.
        capacity: u32,
    },
    /// Reading the log failed.
    #[error("cannot read {path} at offset {offset}: {source}")]
    Io {
        /// The segment file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// A committed record no longer decodes (damaged since it was written).
    #[error("corrupt log: {0}")]
    Corrupt(Corruption),
    /// An encrypted record cannot be opened: its key is missing or wrong, or it fails
    /// authentication although its checksum is good (tampering, not media damage). Nothing is
    /// skipped: the take fails until the cause is fixed.
    #[error(
        "cannot decrypt the record at offset {offset} of segment {segment} ({path}): {failure}"
    )]
    Encrypted {
        /// The segment file.
        path: PathBuf,
        /// The segment id.
        segment: u64,
        /// The record's offset.
        offset: u64,
        /// Why.
        failure: crate::encryption::OpenFailure,
    },
    /// The channel refuses work.
    #[error(transparent)]
    Poisoned(#[from] Poisoned),
    /// The channel is closed.
    #[error("channel is closed")]
    Closed,
}

/// Failure of a commit. A put commit that failed is rolled back in memory. After
/// [`CommitError::Write`] its record is not in the log; after [`CommitError::Poisoned`] it may
/// or may not have reached the disk, so after a crash it may reappear (at-least-once).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// Writing the record failed for lack of space; the batch was cut from the log, nothing was
    /// acknowledged, and the channel keeps serving.
    #[error("cannot write to {path}: {source}")]
    Write {
        /// The segment file.
        path: PathBuf,
        /// The underlying error (ENOSPC included).
        source: Arc<io::Error>,
    },
    /// The next segment could not be created (too many open files, no permission, …). Nothing
    /// of the batch was acknowledged or left in the log, the channel keeps serving, and the next
    /// commit that needs the segment tries again.
    #[error("cannot {op} segment {path}: {source}; the commit was not acknowledged and the next one tries again")]
    SegmentUnavailable {
        /// The step that failed (create, fsync the directory of).
        op: &'static str,
        /// The segment file that could not be created.
        path: PathBuf,
        /// The underlying error (EMFILE, ENFILE, EACCES, …).
        source: Arc<io::Error>,
    },
    /// The channel refuses work (this commit's fsync may be what poisoned it).
    #[error(transparent)]
    Poisoned(#[from] Poisoned),
    /// The channel is closed.
    #[error("channel is closed")]
    Closed,
}

/// Failure to close a channel cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The final sync failed; what was not durable may be lost.
    #[error(transparent)]
    Poisoned(#[from] Poisoned),
}
