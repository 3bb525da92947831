//! [`ChannelConfig`]: every knob of a channel, its default, and `validate()`, which rejects
//! values out of bounds or contradicting each other with a message naming the key.

use crate::encryption::Keyring;
use crate::limits::{MAX_EVENTS_PER_TXN, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES};
use std::path::PathBuf;
use std::sync::Arc;

/// When the log is fsynced, and so how much an acknowledged commit can lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every put commit returns only after an `fdatasync` covering it (group commit shares one
    /// sync among all commits waiting at that moment). Loss window: none. Default.
    EveryCommit,
    /// Put commits return once written to the page cache; the log is fsynced when `interval_ms`
    /// has passed since the last sync or `bytes` have been written since, whichever comes first.
    /// Loss window on power failure: up to `interval_ms` or `bytes` of acknowledged commits.
    /// A process crash (kill -9) loses nothing, the page cache survives it.
    Interval {
        /// Longest time between syncs.
        interval_ms: u64,
        /// Most bytes written between syncs.
        bytes: u64,
    },
}

/// What open does with damage outside a torn tail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Refuse to open; the error names file, segment, offset and kind.
    Strict,
    /// Skip the damaged bytes, copy them to `quarantine/` with a JSON note, count the lost
    /// events exactly from the sequence gap, log at error level, and keep serving. Default.
    #[default]
    SkipDamaged,
}

impl RecoveryMode {
    /// The mode's name in configuration files: `strict` or `skip-damaged`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::SkipDamaged => "skip-damaged",
        }
    }

    /// Parses a mode name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "strict" => Some(Self::Strict),
            "skip-damaged" => Some(Self::SkipDamaged),
            _ => None,
        }
    }
}

/// A name that is not a [`RecoveryMode`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected strict or skip-damaged, got \"{0}\"")]
pub struct UnknownRecoveryMode(pub String);

impl std::str::FromStr for RecoveryMode {
    type Err = UnknownRecoveryMode;

    /// `strict` or `skip-damaged`, in any case, surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(&s.trim().to_ascii_lowercase())
            .ok_or_else(|| UnknownRecoveryMode(s.to_owned()))
    }
}

/// Default [`ChannelConfig::capacity`] (Flume's): events.
pub const DEFAULT_CAPACITY: u64 = 1_000_000;
/// Default [`ChannelConfig::transaction_capacity`] (Flume's): events per transaction.
pub const DEFAULT_TRANSACTION_CAPACITY: u32 = 10_000;
/// Default [`ChannelConfig::keep_alive_ms`] (Flume's 3 s).
pub const DEFAULT_KEEP_ALIVE_MS: u64 = 3_000;
/// Default [`ChannelConfig::segment_bytes_max`]: 128 MiB (Flume's `maxFileSize` is 2 GiB).
pub const DEFAULT_SEGMENT_BYTES_MAX: u64 = 128 << 20;
/// Default [`ChannelConfig::take_sync_interval_ms`].
pub const DEFAULT_TAKE_SYNC_INTERVAL_MS: u64 = 100;
/// Default [`ChannelConfig::prefill_ahead_bytes`]: 8 MiB.
pub const DEFAULT_PREFILL_AHEAD_BYTES: u64 = 8 << 20;
/// Default [`ChannelConfig::group_commit_wait_us_max`].
pub const DEFAULT_GROUP_COMMIT_WAIT_US_MAX: u64 = 2_000;
/// Default [`ChannelConfig::checkpoint_interval_ms`] (Flume's `checkpointInterval`).
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 30_000;
/// Default [`ChannelConfig::checkpoint_bytes`]: 256 MiB.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 256 << 20;
/// Default [`ChannelConfig::minimum_required_space`] (Flume's `minimumRequiredSpace`, 500 MiB).
pub const DEFAULT_MINIMUM_REQUIRED_SPACE_BYTES: u64 = 524_288_000;

/// Configuration of a file channel.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// The channel directory: lock file, channel identity, and (unless `data_dirs` says
    /// otherwise) the segment files. Flume: `checkpointDir`.
    pub dir: PathBuf,
    /// Directories holding segment files. Empty: `dir` itself. Flume: `dataDirs`.
    pub data_dirs: Vec<PathBuf>,
    /// Most events the channel holds (committed and not consumed, plus puts in open
    /// transactions). Flume: `capacity`. Default: 1,000,000.
    pub capacity: u64,
    /// Most encoded event bytes the channel holds, counted like `capacity`. Default: unlimited.
    pub bytes_max: Option<u64>,
    /// Most events in one transaction. Flume: `transactionCapacity`. Default: 10,000.
    pub transaction_capacity: u32,
    /// How long a put waits for room before failing with `ChannelFull`. Flume: `keep-alive`
    /// (seconds there). Default: 3000 ms.
    pub keep_alive_ms: u64,
    /// Segment files are rotated before they grow past this. Flume: `maxFileSize`.
    /// Default: 128 MiB (Flume: 2 GiB; smaller segments are deleted sooner).
    pub segment_bytes_max: u64,
    /// When the log is fsynced. Default: [`SyncPolicy::EveryCommit`].
    pub sync: SyncPolicy,
    /// Take commits are written at once but fsynced with the next put commit's sync or after at
    /// most this long. A take commit lost in a crash only redelivers events. Default: 100 ms.
    pub take_sync_interval_ms: u64,
    /// Zeros are written (and fsynced) this far ahead of the write position by a background
    /// thread, so a commit's `fdatasync` overwrites already-allocated blocks and need not journal
    /// a size change. 0 disables it. Default: 8 MiB.
    pub prefill_ahead_bytes: u64,
    /// Group commit: after an fsync released several committers, the next batch waits up to
    /// this long (and at most half a recent fsync's duration) for them to come back, so they
    /// share one fsync instead of alternating in two cohorts. A single committer never waits;
    /// 0 disables the wait. Only under [`SyncPolicy::EveryCommit`]. Default: 2000 µs.
    pub group_commit_wait_us_max: u64,
    /// A checkpoint is written at least this often (and on clean close). Flume:
    /// `checkpointInterval`. Default: 30000 ms.
    pub checkpoint_interval_ms: u64,
    /// A checkpoint is also written after this many bytes of log. Default: 256 MiB.
    pub checkpoint_bytes: u64,
    /// Puts are refused while any channel or data directory has less free space than this;
    /// takes, take commits, checkpoints and deletion keep working so the channel drains.
    /// Flume: `minimumRequiredSpace`. Default: 500 MiB (524,288,000 bytes, Flume's).
    pub minimum_required_space: u64,
    /// What open does with damage outside a torn tail. Default: [`RecoveryMode::SkipDamaged`].
    pub recovery_mode: RecoveryMode,
    /// Keys for encryption at rest: with an active key, every new put record is encrypted
    /// (AES-256-GCM); the keys listed read records sealed with them. `None` (default): nothing
    /// is encrypted, and a channel holding pending encrypted events refuses to open.
    pub keyring: Option<Arc<Keyring>>,
}

impl ChannelConfig {
    /// A configuration with every default, for the channel directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            data_dirs: Vec::new(),
            capacity: DEFAULT_CAPACITY,
            bytes_max: None,
            transaction_capacity: DEFAULT_TRANSACTION_CAPACITY,
            keep_alive_ms: DEFAULT_KEEP_ALIVE_MS,
            segment_bytes_max: DEFAULT_SEGMENT_BYTES_MAX,
            sync: SyncPolicy::EveryCommit,
            take_sync_interval_ms: DEFAULT_TAKE_SYNC_INTERVAL_MS,
            prefill_ahead_bytes: DEFAULT_PREFILL_AHEAD_BYTES,
            group_commit_wait_us_max: DEFAULT_GROUP_COMMIT_WAIT_US_MAX,
            checkpoint_interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            minimum_required_space: DEFAULT_MINIMUM_REQUIRED_SPACE_BYTES,
            recovery_mode: RecoveryMode::SkipDamaged,
            keyring: None,
        }
    }

    /// The directories segments live in.
    pub fn segment_dirs(&self) -> Vec<PathBuf> {
        if self.data_dirs.is_empty() {
            vec![self.dir.clone()]
        } else {
            self.data_dirs.clone()
        }
    }

    /// Checks every value against its bounds and the others.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| Err(ConfigError { key, reason });
        if self.capacity == 0 {
            return bad("capacity", "must be at least 1".into());
        }
        if self.transaction_capacity == 0 || self.transaction_capacity > MAX_EVENTS_PER_TXN {
            return bad(
                "transaction_capacity",
                format!(
                    "must be between 1 and {MAX_EVENTS_PER_TXN}, got {}",
                    self.transaction_capacity
                ),
            );
        }
        if u64::from(self.transaction_capacity) > self.capacity {
            return bad(
                "transaction_capacity",
                format!(
                    "{} is larger than capacity {}: a full transaction could never fit",
                    self.transaction_capacity, self.capacity
                ),
            );
        }
        if self.bytes_max == Some(0) {
            return bad("bytes_max", "must be at least 1 when set".into());
        }
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes_max) {
            return bad(
                "segment_bytes_max",
                format!(
                    "must be between {MIN_SEGMENT_BYTES} and {MAX_SEGMENT_BYTES}, got {}",
                    self.segment_bytes_max
                ),
            );
        }
        if let SyncPolicy::Interval { interval_ms, bytes } = self.sync {
            if interval_ms == 0 || bytes == 0 {
                return bad(
                    "sync",
                    "interval_ms and bytes must both be at least 1".into(),
                );
            }
        }
        if self.checkpoint_interval_ms == 0 || self.checkpoint_bytes == 0 {
            return bad(
                "checkpoint_interval_ms",
                "checkpoint_interval_ms and checkpoint_bytes must be at least 1".into(),
            );
        }
        if self.group_commit_wait_us_max > 1_000_000 {
            return bad(
                "group_commit_wait_us_max",
                format!("{} µs is more than 1 s", self.group_commit_wait_us_max),
            );
        }
        if self.take_sync_interval_ms == 0 {
            return bad("take_sync_interval_ms", "must be at least 1".into());
        }
        let mut dirs = self.segment_dirs();
        dirs.sort();
        dirs.dedup();
        if dirs.len() != self.segment_dirs().len() {
            return bad("data_dirs", "lists the same directory twice".into());
        }
        Ok(())
    }
}

/// A configuration value is out of bounds or contradicts another.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid channel configuration: {key}: {reason}")]
pub struct ConfigError {
    /// The offending key.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_modes_parse_by_name_in_any_case() {
        assert_eq!("strict".parse(), Ok(RecoveryMode::Strict));
        assert_eq!(" Skip-Damaged ".parse(), Ok(RecoveryMode::SkipDamaged));
        assert_eq!(
            "lenient".parse::<RecoveryMode>(),
            Err(UnknownRecoveryMode("lenient".into()))
        );
        assert_eq!(
            UnknownRecoveryMode("lenient".into()).to_string(),
            "expected strict or skip-damaged, got \"lenient\""
        );
        for mode in [RecoveryMode::Strict, RecoveryMode::SkipDamaged] {
            assert_eq!(mode.name().parse(), Ok(mode));
        }
    }

    #[test]
    fn new_uses_the_named_defaults() {
        let c = ChannelConfig::new("/d");
        assert_eq!(c.capacity, DEFAULT_CAPACITY);
        assert_eq!(c.transaction_capacity, DEFAULT_TRANSACTION_CAPACITY);
        assert_eq!(c.keep_alive_ms, DEFAULT_KEEP_ALIVE_MS);
        assert_eq!(c.checkpoint_interval_ms, DEFAULT_CHECKPOINT_INTERVAL_MS);
        assert_eq!(
            c.minimum_required_space,
            DEFAULT_MINIMUM_REQUIRED_SPACE_BYTES
        );
        assert_eq!(c.recovery_mode, RecoveryMode::default());
        assert!(c.validate().is_ok());
    }
}
