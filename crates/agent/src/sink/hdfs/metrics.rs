//! The `hdfs` sink's counters beyond Flume's `SinkCounter` (which the drain loop keeps): files
//! opened, closed and published, publish failures, bytes staged, upload latency and the
//! duplicates found after a crash — what an operator alerts on (a rising
//! `PublishFailureCount`, a non-zero `FilesPendingPublish` that does not fall).

use crate::metrics::{ExtraCounters, Metric, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The `hdfs` sink's own counters, reported after Flume's.
#[derive(Debug, Default)]
pub struct HdfsCounters {
    /// In-use files opened.
    pub files_opened: AtomicU64,
    /// Files finished (renamed to their final name, or published and removed from staging).
    pub files_closed: AtomicU64,
    /// Staged files uploaded to object storage.
    pub files_published: AtomicU64,
    /// Publish attempts that failed (the staged file is kept and retried).
    pub publish_failures: AtomicU64,
    /// Files whose publish gave up after `hdfs.closeTries`: left in staging until the next
    /// start (a gauge).
    pub files_pending_publish: AtomicU64,
    /// Bytes written to staging files (object storage) or in-use files (local).
    pub bytes_staged: AtomicU64,
    /// Bytes uploaded.
    pub bytes_published: AtomicU64,
    /// Duration of the last upload, retries included, ms.
    pub upload_last_ms: AtomicU64,
    /// Durations of every upload added up, ms.
    pub upload_total_ms: AtomicU64,
    /// Events that may be written twice: found after a crash in an in-use file beyond what
    /// the sink knew to be committed, or written by a batch whose take did not commit.
    pub event_duplicates: AtomicU64,
    /// In-use files completed by crash recovery at start.
    pub files_recovered: AtomicU64,
    /// Bytes cut off in-use files by recovery (a torn batch, never committed).
    pub torn_bytes_cut: AtomicU64,
}

impl HdfsCounters {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

impl ExtraCounters for HdfsCounters {
    fn snapshot(&self) -> Vec<Metric> {
        let c = |name, v: &AtomicU64| Metric {
            name,
            value: Value::Counter(v.load(Relaxed)),
        };
        let g = |name, v: &AtomicU64| Metric {
            name,
            value: Value::Gauge(v.load(Relaxed)),
        };
        vec![
            c("FilesOpenedCount", &self.files_opened),
            c("FilesClosedCount", &self.files_closed),
            c("FilesPublishedCount", &self.files_published),
            c("PublishFailureCount", &self.publish_failures),
            g("FilesPendingPublish", &self.files_pending_publish),
            c("BytesStagedCount", &self.bytes_staged),
            c("BytesPublishedCount", &self.bytes_published),
            g("UploadLastMs", &self.upload_last_ms),
            c("UploadTotalMs", &self.upload_total_ms),
            c("EventDuplicateCount", &self.event_duplicates),
            c("FilesRecoveredCount", &self.files_recovered),
            c("TornBytesCutCount", &self.torn_bytes_cut),
        ]
    }
}
