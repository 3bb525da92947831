//! The raw baselines of `chanctl bench`: exactly the bytes the engine writes per put
//! transaction, written to one file with a write + `fdatasync` each, appending or overwriting
//! a preallocated file, a range of batches at a time so the engine and the baselines take turns.

use super::{io_error, rate, record_bytes, BenchOptions, Histogram};
use file_channel::inspect::InspectError;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Rounds the write phase is cut into when baselines run, so that the engine and the
/// baselines take turns and see the same disk conditions.
pub const BASELINE_ROUNDS: u64 = 10;

/// A raw baseline's figures.
#[derive(Clone, Debug, Default)]
pub struct BaselineReport {
    /// `append` or `overwrite`.
    pub mode: &'static str,
    /// Appends (one per put transaction).
    pub batches: u64,
    /// Bytes per full batch.
    pub batch_bytes: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Events the bytes stand for.
    pub events: u64,
    /// Seconds.
    pub secs: f64,
    /// Latency of each write + fdatasync (µs).
    pub latency: Histogram,
}

impl BaselineReport {
    /// Events per second.
    pub fn events_per_sec(&self) -> f64 {
        rate(self.events as f64, self.secs)
    }

    /// Megabytes (10^6) of log per second.
    pub fn mb_per_sec(&self) -> f64 {
        rate(self.bytes as f64 / 1e6, self.secs)
    }
}

/// One raw baseline file, written a range of batches at a time.
pub(super) struct Baseline {
    path: PathBuf,
    file: std::fs::File,
    buf: Vec<u8>,
    report: BaselineReport,
}

impl Baseline {
    pub(super) fn new(opts: &BenchOptions, overwrite: bool) -> Result<Self, InspectError> {
        let mode = if overwrite { "overwrite" } else { "append" };
        let path = opts.dir.join(format!("raw-baseline-{mode}.tmp"));
        let io = |op| io_error(op, &path);
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io("create"))?;
        let batch = u64::from(opts.batch);
        let full = record_bytes(batch, opts.size);
        if overwrite {
            // Untimed: the whole file written with zeros and made durable first.
            let rem = opts.events % batch;
            let total = (opts.events / batch) * full
                + if rem > 0 {
                    record_bytes(rem, opts.size)
                } else {
                    0
                };
            let zeros = vec![0u8; 1 << 20];
            let mut left = total;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n]).map_err(io("write"))?;
                left -= n as u64;
            }
            file.sync_all().map_err(io("fsync"))?;
            std::fs::File::open(&opts.dir)
                .and_then(|d| d.sync_all())
                .map_err(io("fsync the directory of"))?;
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0)).map_err(io("seek"))?;
        }
        Ok(Self {
            buf: (0..full).map(|i| (i % 251) as u8).collect(),
            report: BaselineReport {
                mode,
                batch_bytes: full,
                ..Default::default()
            },
            path,
            file,
        })
    }

    /// Writes batches `from..to` (one write + fdatasync each).
    pub(super) fn run(
        &mut self,
        opts: &BenchOptions,
        from: u64,
        to: u64,
    ) -> Result<(), InspectError> {
        let batch = u64::from(opts.batch);
        let started = Instant::now();
        for k in from..to {
            let n = batch.min(opts.events - k * batch);
            let len = record_bytes(n, opts.size) as usize;
            let t = Instant::now();
            self.file
                .write_all(&self.buf[..len])
                .map_err(io_error("write", &self.path))?;
            self.file
                .sync_data()
                .map_err(io_error("fdatasync", &self.path))?;
            self.report.latency.record_duration(t.elapsed());
            self.report.batches += 1;
            self.report.bytes += len as u64;
            self.report.events += n;
            if let Some(p) = &opts.progress {
                p(self.report.mode, self.report.events, opts.events);
            }
        }
        self.report.secs += started.elapsed().as_secs_f64();
        Ok(())
    }

    pub(super) fn finish(self) -> Result<BaselineReport, InspectError> {
        drop(self.file);
        std::fs::remove_file(&self.path).map_err(io_error("remove", &self.path))?;
        Ok(self.report)
    }
}
