//! Counters and gauges of a channel, named as Flume names them so dashboards carry over, plus
//! what Flume lacks (fsyncs and their latency, bytes on disk, corruption and loss, replay).
//!
//! Every value is an atomic updated on the path that causes it; [`ChannelMetrics::snapshot`]
//! returns them by name for the agent's metrics endpoint and the tools.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

macro_rules! counters {
    ($($(#[$doc:meta])* $field:ident => $name:literal,)*) => {
        /// Every counter and gauge of a channel.
        #[derive(Debug, Default)]
        pub struct ChannelMetrics {
            $($(#[$doc])* pub $field: AtomicU64,)*
            /// fsync latency histogram: bucket `i` counts syncs that took < 2^i µs (last: more).
            pub fsync_latency_us_log2: [AtomicU64; 24],
        }

        impl ChannelMetrics {
            /// Every counter by its exported name, in a fixed order.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$(($name, self.$field.load(Relaxed)),)*]
            }
        }
    };
}

counters! {
    /// Events committed and not yet consumed (Flume: ChannelSize).
    channel_size => "ChannelSize",
    /// The configured capacity (Flume: ChannelCapacity).
    channel_capacity => "ChannelCapacity",
    /// Calls to put (Flume: EventPutAttemptCount).
    event_put_attempt_count => "EventPutAttemptCount",
    /// Events in successfully committed put transactions (Flume: EventPutSuccessCount).
    event_put_success_count => "EventPutSuccessCount",
    /// Calls to take (Flume: EventTakeAttemptCount).
    event_take_attempt_count => "EventTakeAttemptCount",
    /// Events in successfully committed take transactions (Flume: EventTakeSuccessCount).
    event_take_success_count => "EventTakeSuccessCount",
    /// Checkpoints that failed to write (Flume: CheckpointWriteErrorCount).
    checkpoint_write_error_count => "CheckpointWriteErrorCount",
    /// Put transactions rolled back (explicitly or by a failed commit).
    put_rollback_count => "PutRollbackCount",
    /// Take transactions rolled back.
    take_rollback_count => "TakeRollbackCount",
    /// Puts refused because the channel was full (capacity or bytes).
    channel_full_count => "ChannelFullCount",
    /// 1 while the channel refuses all work after a failed fsync or write (Flume: Unhealthy).
    unhealthy => "Unhealthy",
    /// fdatasync calls on segment files by the commit path.
    fsync_count => "FsyncCount",
    /// fdatasync calls that failed (each poisons the channel).
    fsync_error_count => "FsyncErrorCount",
    /// Directory fsyncs.
    dir_sync_count => "DirSyncCount",
    /// Record writes that failed (ENOSPC, EIO); their commits were not acknowledged.
    write_error_count => "WriteErrorCount",
    /// Files and directories that could not be created or opened while the channel ran (too
    /// many open files, no permission, no space for a new segment): the put batch, checkpoint
    /// or deletion that needed it failed and is retried later; the channel is not poisoned.
    file_open_error_count => "FileOpenErrorCount",
    /// Group-commit batches whose wait for expected committers ran out (one or more of the
    /// committers the writer expected did not come back within the wait; see design.md).
    gather_timeout_count => "GatherTimeoutCount",
    /// Group-commit batches written (at most one fsync each).
    commit_batch_count => "CommitBatchCount",
    /// Records written (put, take and seal).
    records_written => "RecordsWritten",
    /// Bytes of records written.
    bytes_written => "BytesWritten",
    /// Segment files currently part of the log.
    segment_count => "SegmentCount",
    /// Segment files created.
    segments_created => "SegmentsCreated",
    /// Bytes of the segment files on disk.
    bytes_on_disk => "BytesOnDisk",
    /// Encoded bytes of events committed and not consumed.
    pending_bytes => "PendingBytes",
    /// Records read by replay when the channel was opened.
    replay_records => "ReplayRecords",
    /// Milliseconds the last open spent replaying.
    replay_ms => "ReplayMillis",
    /// Torn-tail bytes truncated at open.
    torn_tail_bytes => "TornTailBytes",
    /// Damaged records found (skipped or refused).
    corrupt_record_count => "CorruptRecordCount",
    /// Events lost to corruption, counted exactly from sequence gaps (cumulative).
    events_lost => "EventsLost",
    /// Encrypted records whose checksum was good but whose authentication failed when read:
    /// altered by someone who recomputed the checksum. Alert on any.
    tampered_records => "TamperedRecordCount",
    /// Encrypted records that could not be opened when read (missing or wrong key, tampering).
    decrypt_error_count => "DecryptErrorCount",
    /// Checkpoints written.
    checkpoint_count => "CheckpointCount",
    /// Milliseconds the last checkpoint took to write.
    checkpoint_ms => "CheckpointMillis",
    /// When the last checkpoint was written, ms since the Unix epoch.
    last_checkpoint_unix_ms => "LastCheckpointUnixMillis",
    /// Segment files deleted after their events were consumed.
    segments_deleted => "SegmentsDeleted",
    /// Segments kept only because the oldest pending event is in or before them.
    segments_pinned => "SegmentsPinned",
    /// Puts refused because free space was below `minimum_required_space`.
    put_refused_no_space_count => "PutRefusedNoSpaceCount",
    /// 1 while puts are refused for lack of free space.
    disk_space_low => "DiskSpaceLow",
}

impl ChannelMetrics {
    /// Records one fsync and its latency.
    pub fn record_fsync(&self, took: Duration) {
        self.fsync_count.fetch_add(1, Relaxed);
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        let bucket = (64 - us.leading_zeros() as usize).min(self.fsync_latency_us_log2.len() - 1);
        self.fsync_latency_us_log2[bucket].fetch_add(1, Relaxed);
    }

    /// The fill percentage (Flume: ChannelFillPercentage).
    pub fn fill_percentage(&self) -> f64 {
        let cap = self.channel_capacity.load(Relaxed);
        if cap == 0 {
            return 0.0;
        }
        self.channel_size.load(Relaxed) as f64 * 100.0 / cap as f64
    }
}
