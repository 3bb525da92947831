//! The file channel's counters that Flume's `FileChannelCounter` has and the engine does not
//! keep itself: `Open` / `Closed` (the channel was opened and not yet closed), and
//! `EventPutErrorCount` / `EventTakeErrorCount` (puts and takes, or their commits, that failed
//! because of the disk or a failed channel, as Flume counts its `IOException`s; a full channel,
//! a full transaction or a closed channel is not an error here, as in Flume).
//!
//! They are counted in the agent's transaction wrapper ([`super::Txn`]) from the engine's error
//! variants, so the engine's hot path is untouched. `CheckpointWriteErrorCount` and `Unhealthy`
//! come from the engine (`Unhealthy` is 1 once the channel is poisoned by a failed fsync or
//! write); `CheckpointBackupWriteErrorCount` is always 0, since the engine writes no backup
//! checkpoint (see [`super::file`] on `backupCheckpointDir`).

use crate::metrics::{Metric, Value};
use file_channel::{CommitError, PutError, TakeError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Counters of one file channel kept by the agent.
#[derive(Debug, Default)]
pub struct FileCounters {
    open: AtomicBool,
    event_put_error_count: AtomicU64,
    event_take_error_count: AtomicU64,
}

/// Whether a transaction put or took (the direction a failed commit is counted in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A put transaction.
    Put,
    /// A take transaction.
    Take,
}

impl FileCounters {
    /// Records that the channel is open (`true`) or closed.
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Relaxed);
    }

    /// Counts a failed put if it is an error in Flume's sense.
    pub fn put_failed(&self, e: &PutError) {
        if matches!(
            e,
            PutError::InsufficientSpace { .. } | PutError::Poisoned(_)
        ) {
            self.event_put_error_count.fetch_add(1, Relaxed);
        }
    }

    /// Counts a failed take if it is an error in Flume's sense.
    pub fn take_failed(&self, e: &TakeError) {
        if matches!(
            e,
            TakeError::Io { .. }
                | TakeError::Corrupt(_)
                | TakeError::Encrypted { .. }
                | TakeError::Poisoned(_)
        ) {
            self.event_take_error_count.fetch_add(1, Relaxed);
        }
    }

    /// Counts a failed commit of a `direction` transaction if it is an error in Flume's sense.
    pub fn commit_failed(&self, direction: Direction, e: &CommitError) {
        if matches!(e, CommitError::Closed) {
            return;
        }
        let c = match direction {
            Direction::Put => &self.event_put_error_count,
            Direction::Take => &self.event_take_error_count,
        };
        c.fetch_add(1, Relaxed);
    }

    /// `Open`, `Closed`, `EventPutErrorCount`, `EventTakeErrorCount` and
    /// `CheckpointBackupWriteErrorCount`.
    pub fn snapshot(&self) -> [Metric; 5] {
        let open = self.open.load(Relaxed);
        [
            Metric {
                name: "Open",
                value: Value::Flag(open),
            },
            Metric {
                name: "Closed",
                value: Value::Gauge(u64::from(!open)),
            },
            Metric {
                name: "EventPutErrorCount",
                value: Value::Counter(self.event_put_error_count.load(Relaxed)),
            },
            Metric {
                name: "EventTakeErrorCount",
                value: Value::Counter(self.event_take_error_count.load(Relaxed)),
            },
            Metric {
                name: "CheckpointBackupWriteErrorCount",
                value: Value::Counter(0),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn value(c: &FileCounters, name: &str) -> Value {
        c.snapshot()
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
            .expect("present")
    }

    #[test]
    fn only_disk_and_failure_errors_count() {
        let c = FileCounters::default();
        assert_eq!(value(&c, "Open"), Value::Flag(false));
        assert_eq!(value(&c, "Closed"), Value::Gauge(1));
        c.set_open(true);
        assert_eq!(value(&c, "Open"), Value::Flag(true));
        assert_eq!(value(&c, "Closed"), Value::Gauge(0));
        c.put_failed(&PutError::TransactionFull { capacity: 1 });
        c.put_failed(&PutError::Closed);
        c.put_failed(&PutError::InsufficientSpace {
            dir: PathBuf::from("/d"),
            available: 1,
            required: 2,
        });
        c.take_failed(&TakeError::MixedTransaction);
        c.take_failed(&TakeError::Io {
            path: PathBuf::from("/d/s"),
            offset: 0,
            source: std::io::Error::other("EIO"),
        });
        c.commit_failed(Direction::Take, &CommitError::Closed);
        c.commit_failed(
            Direction::Put,
            &CommitError::Write {
                path: PathBuf::from("/d/s"),
                source: std::sync::Arc::new(std::io::Error::other("ENOSPC")),
            },
        );
        assert_eq!(value(&c, "EventPutErrorCount"), Value::Counter(2));
        assert_eq!(value(&c, "EventTakeErrorCount"), Value::Counter(1));
        assert_eq!(
            value(&c, "CheckpointBackupWriteErrorCount"),
            Value::Counter(0)
        );
    }
}
