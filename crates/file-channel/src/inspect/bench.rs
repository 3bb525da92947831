//! `bench`: drives the real engine ([`FileChannel`]) with producer and consumer threads and
//! measures it, next to a raw baseline of the same bytes.
//!
//! - **Write phase**: `producers` threads put `events` events of `size` body bytes in put
//!   transactions of `batch` events; each commit's latency goes into a [`Histogram`].
//! - **Read phase** (unless `consume` is false): `consumers` threads take them back in take
//!   transactions of `batch`, checking every body's length.
//! - **Baselines** (optional), in files beside the channel's, removed after: exactly the bytes the engine writes per put transaction (a 56-byte header plus
//!   `batch × (size + 6)` bytes, padded to 8) written to one file and `fdatasync`ed after each
//!   write, single-threaded, in two ways: *append* (the file grows with every write, so every
//!   fdatasync also journals a size change — the plain "raw write + fdatasync") and *overwrite*
//!   (the file is first filled with zeros and fsynced, untimed, then overwritten in place — what
//!   the engine's prefill thread arranges). Together they bracket what a one-fsync-per-commit
//!   log can reach on this disk. The write phase is then cut into [`BASELINE_ROUNDS`] rounds;
//!   before each round of the engine, each baseline writes the same share of batches, so all
//!   three see the same disk conditions on a shared machine.
//!
//! Everything else is the engine's default configuration, except: `capacity` is raised to
//! `events` (the write phase finishes before the read phase starts), `transaction_capacity` is
//! `batch`, and `minimum_required_space` is 0 (a nearly full test disk must not fail the run).
//! The fsync count is the engine's own metric (`FsyncCount`; prefill fsyncs separately).

use super::InspectError;
use crate::config::{ChannelConfig, SyncPolicy};
use crate::format::record::{align_up, RECORD_HEADER_BYTES};
use crate::{Event, FileChannel};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sub-buckets per power of two in a [`Histogram`] (about 3% resolution).
const SUB_BUCKETS: u64 = 32;
/// Buckets in a [`Histogram`]: exact below 32, then 32 per power of two up to 2^64.
const BUCKETS: usize = (SUB_BUCKETS + (64 - 5) * SUB_BUCKETS) as usize;

/// A log-linear histogram of microsecond latencies: exact below 32 µs, then 32 buckets per
/// power of two (a value is reported as its bucket's upper bound, at most 3% high).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            sum: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB_BUCKETS {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // >= 5
    let sub = (v >> (e - 5)) - SUB_BUCKETS;
    (SUB_BUCKETS + (e - 5) * SUB_BUCKETS + sub) as usize
}

fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB_BUCKETS {
        return i;
    }
    let e = (i - SUB_BUCKETS) / SUB_BUCKETS + 5;
    let sub = (i - SUB_BUCKETS) % SUB_BUCKETS;
    let low = (SUB_BUCKETS + sub) << (e - 5);
    low.saturating_add((1u64 << (e - 5)) - 1)
}

impl Histogram {
    /// Records one value (µs).
    pub fn record(&mut self, us: u64) {
        if let Some(c) = self.counts.get_mut(bucket_of(us)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(us);
        self.sum += u128::from(us);
    }

    /// Records a duration.
    pub fn record_duration(&mut self, d: Duration) {
        self.record(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Adds another histogram's values.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (µs).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at percentile `p` (0–100): the upper bound of its bucket, at most the maximum.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }
}

/// A progress callback: (phase, done, total).
pub type BenchProgressFn = Arc<dyn Fn(&'static str, u64, u64) + Send + Sync>;

/// Options of a bench run.
#[derive(Clone)]
pub struct BenchOptions {
    /// The directory (must be empty or absent).
    pub dir: PathBuf,
    /// Events to write.
    pub events: u64,
    /// Body bytes per event.
    pub size: usize,
    /// Events per transaction.
    pub batch: u32,
    /// Producer threads.
    pub producers: usize,
    /// Consumer threads.
    pub consumers: usize,
    /// The sync policy.
    pub sync: SyncPolicy,
    /// Take the events back after writing them.
    pub consume: bool,
    /// Also measure the raw write + fdatasync baseline.
    pub baseline: bool,
    /// Called with (phase, done, total) as events are written or read.
    pub progress: Option<BenchProgressFn>,
}

impl std::fmt::Debug for BenchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchOptions")
            .field("dir", &self.dir)
            .field("events", &self.events)
            .field("size", &self.size)
            .field("batch", &self.batch)
            .field("producers", &self.producers)
            .field("consumers", &self.consumers)
            .field("sync", &self.sync)
            .field("consume", &self.consume)
            .field("baseline", &self.baseline)
            .finish_non_exhaustive()
    }
}

/// One phase's figures.
#[derive(Clone, Debug, Default)]
pub struct PhaseReport {
    /// Events moved.
    pub events: u64,
    /// Body bytes moved.
    pub body_bytes: u64,
    /// Wall-clock seconds.
    pub secs: f64,
    /// Commit latencies (µs).
    pub commit_latency: Histogram,
}

impl PhaseReport {
    /// Events per second.
    pub fn events_per_sec(&self) -> f64 {
        rate(self.events as f64, self.secs)
    }

    /// Body megabytes (10^6) per second.
    pub fn mb_per_sec(&self) -> f64 {
        rate(self.body_bytes as f64 / 1e6, self.secs)
    }
}

fn rate(x: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        x / secs
    } else {
        0.0
    }
}

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

/// A bench run's figures.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    /// The write phase.
    pub write: PhaseReport,
    /// The read phase, if it ran.
    pub read: Option<PhaseReport>,
    /// Segment fsyncs by the commit path (`FsyncCount`) over the whole run.
    pub fsyncs: u64,
    /// Of those, during the write phase.
    pub write_fsyncs: u64,
    /// Prefill fsyncs (`PrefillFsyncCount`).
    pub prefill_fsyncs: u64,
    /// Group-commit batches (`CommitBatchCount`).
    pub commit_batches: u64,
    /// Bytes of records written (`BytesWritten`).
    pub log_bytes: u64,
    /// The raw append baseline, if measured.
    pub baseline: Option<BaselineReport>,
    /// The raw overwrite baseline, if measured.
    pub baseline_overwrite: Option<BaselineReport>,
}

impl BenchReport {
    /// The engine's write throughput relative to the append baseline (events per second).
    pub fn ratio_to_baseline(&self) -> Option<f64> {
        self.ratio_to(self.baseline.as_ref()?)
    }

    /// The engine's write throughput relative to the overwrite baseline.
    pub fn ratio_to_overwrite_baseline(&self) -> Option<f64> {
        self.ratio_to(self.baseline_overwrite.as_ref()?)
    }

    fn ratio_to(&self, b: &BaselineReport) -> Option<f64> {
        let base = b.events_per_sec();
        (base > 0.0).then(|| self.write.events_per_sec() / base)
    }
}

fn engine<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
) -> impl FnOnce(E) -> InspectError {
    move |e| InspectError::Engine {
        op,
        source: Box::new(e),
    }
}

/// The bytes of the put record the engine writes for `n` events of `size` body bytes.
pub fn record_bytes(n: u64, size: usize) -> u64 {
    align_up(RECORD_HEADER_BYTES as u64 + n * (size as u64 + 6))
}

fn check(opts: &BenchOptions) -> Result<(), InspectError> {
    let bad = |m: &str| Err(InspectError::Usage(m.to_owned()));
    if opts.events == 0 {
        return bad("--events must be at least 1");
    }
    if opts.batch == 0 || opts.batch > crate::limits::MAX_EVENTS_PER_TXN {
        return bad("--batch must be between 1 and 1000000");
    }
    if opts.producers == 0 || opts.consumers == 0 {
        return bad("--producers and --consumers must be at least 1");
    }
    if opts.size as u64 + 6 > crate::limits::MAX_EVENT_BYTES {
        return bad("--size is over the engine's event limit (32 MiB - 6)");
    }
    if record_bytes(u64::from(opts.batch), opts.size) > crate::limits::MAX_RECORD_BYTES {
        return bad("--batch × (--size + 6) is over the engine's record limit (64 MiB)");
    }
    if opts.dir.exists() {
        let mut it = std::fs::read_dir(&opts.dir).map_err(InspectError::io("list", &opts.dir))?;
        if it.next().is_some() {
            return Err(InspectError::Usage(format!(
                "{} is not empty: bench needs a new or empty directory",
                opts.dir.display()
            )));
        }
    }
    Ok(())
}

/// Rounds the write phase is cut into when baselines run, so that the engine and the
/// baselines take turns and see the same disk conditions.
pub const BASELINE_ROUNDS: u64 = 10;

/// One raw baseline file, written a range of batches at a time.
struct Baseline {
    path: PathBuf,
    file: std::fs::File,
    buf: Vec<u8>,
    report: BaselineReport,
}

impl Baseline {
    fn new(opts: &BenchOptions, overwrite: bool) -> Result<Self, InspectError> {
        let mode = if overwrite { "overwrite" } else { "append" };
        let path = opts.dir.join(format!("raw-baseline-{mode}.tmp"));
        let io = |op| InspectError::io(op, &path);
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
    fn run(&mut self, opts: &BenchOptions, from: u64, to: u64) -> Result<(), InspectError> {
        let batch = u64::from(opts.batch);
        let started = Instant::now();
        for k in from..to {
            let n = batch.min(opts.events - k * batch);
            let len = record_bytes(n, opts.size) as usize;
            let t = Instant::now();
            self.file
                .write_all(&self.buf[..len])
                .map_err(InspectError::io("write", &self.path))?;
            self.file
                .sync_data()
                .map_err(InspectError::io("fdatasync", &self.path))?;
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

    fn finish(self) -> Result<BaselineReport, InspectError> {
        drop(self.file);
        std::fs::remove_file(&self.path).map_err(InspectError::io("remove", &self.path))?;
        Ok(self.report)
    }
}

fn metric(ch: &FileChannel, name: &str) -> u64 {
    ch.metrics_snapshot()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| v)
}

/// Runs the bench.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, InspectError> {
    check(opts)?;
    std::fs::create_dir_all(&opts.dir).map_err(InspectError::io("create", &opts.dir))?;
    let mut report = BenchReport::default();
    let mut baselines = Vec::new();
    if opts.baseline {
        baselines.push(Baseline::new(opts, false)?);
        baselines.push(Baseline::new(opts, true)?);
    }
    let mut cfg = ChannelConfig::new(&opts.dir);
    cfg.capacity = opts.events.max(u64::from(opts.batch));
    cfg.transaction_capacity = opts.batch;
    cfg.sync = opts.sync;
    cfg.minimum_required_space = 0;
    let ch = FileChannel::open(cfg).map_err(engine("open the bench channel"))?;

    // Write phase, in rounds taking turns with the baselines (one round without them).
    let batch = u64::from(opts.batch);
    let batches = opts.events.div_ceil(batch);
    let rounds = if baselines.is_empty() {
        1
    } else {
        BASELINE_ROUNDS.min(batches)
    };
    let written = AtomicU64::new(0);
    let failure: Mutex<Option<InspectError>> = Mutex::new(None);
    let hist = Mutex::new(Histogram::default());
    let mut write_secs = 0.0;
    for round in 0..rounds {
        let from = batches * round / rounds;
        let to = batches * (round + 1) / rounds;
        for b in &mut baselines {
            b.run(opts, from, to)?;
        }
        let next_batch = AtomicU64::new(from);
        let started = Instant::now();
        std::thread::scope(|s| {
            for p in 0..opts.producers {
                let (ch, next_batch, written, failure, hist) =
                    (&ch, &next_batch, &written, &failure, &hist);
                s.spawn(move || {
                    let body: Vec<u8> = (0..opts.size).map(|i| ((i + p) % 251) as u8).collect();
                    let event = Event::new(body);
                    let mut local = Histogram::default();
                    let result = (|| -> Result<(), InspectError> {
                        loop {
                            let k = next_batch.fetch_add(1, Relaxed);
                            if k >= to {
                                return Ok(());
                            }
                            let n = batch.min(opts.events - k * batch);
                            let mut tx = ch.transaction();
                            for _ in 0..n {
                                tx.put(&event).map_err(engine("put"))?;
                            }
                            let t = Instant::now();
                            tx.commit().map_err(engine("put commit"))?;
                            local.record_duration(t.elapsed());
                            let done = written.fetch_add(n, Relaxed) + n;
                            if let Some(pr) = &opts.progress {
                                pr("write", done, opts.events);
                            }
                        }
                    })();
                    if let Ok(mut h) = hist.lock() {
                        h.merge(&local);
                    }
                    if let Err(e) = result {
                        next_batch.store(to, Relaxed);
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                    }
                });
            }
        });
        write_secs += started.elapsed().as_secs_f64();
        if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
            break;
        }
    }
    let mut done_baselines = baselines
        .into_iter()
        .map(Baseline::finish)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    report.baseline = done_baselines.next();
    report.baseline_overwrite = done_baselines.next();
    report.write = PhaseReport {
        events: written.load(Relaxed),
        body_bytes: written.load(Relaxed) * opts.size as u64,
        secs: write_secs,
        commit_latency: hist.into_inner().unwrap_or_default(),
    };
    if let Some(e) = failure.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    report.write_fsyncs = metric(&ch, "FsyncCount");

    // Read phase.
    if opts.consume {
        let read = AtomicU64::new(0);
        let hist = Mutex::new(Histogram::default());
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..opts.consumers {
                let (ch, read, failure, hist) = (&ch, &read, &failure, &hist);
                s.spawn(move || {
                    let mut local = Histogram::default();
                    let result = (|| -> Result<(), InspectError> {
                        while read.load(Relaxed) < opts.events {
                            let mut tx = ch.transaction();
                            let mut n = 0u64;
                            while n < batch {
                                match tx.take().map_err(engine("take"))? {
                                    Some(e) if e.body.len() == opts.size => n += 1,
                                    Some(e) => {
                                        return Err(InspectError::Usage(format!(
                                            "read an event of {} bytes, wrote {}",
                                            e.body.len(),
                                            opts.size
                                        )))
                                    }
                                    None => break,
                                }
                            }
                            if n == 0 {
                                tx.rollback();
                                return Ok(());
                            }
                            let t = Instant::now();
                            tx.commit().map_err(engine("take commit"))?;
                            local.record_duration(t.elapsed());
                            let done = read.fetch_add(n, Relaxed) + n;
                            if let Some(pr) = &opts.progress {
                                pr("read", done, opts.events);
                            }
                        }
                        Ok(())
                    })();
                    if let Ok(mut h) = hist.lock() {
                        h.merge(&local);
                    }
                    if let Err(e) = result {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                    }
                });
            }
        });
        let n = read.load(Relaxed);
        report.read = Some(PhaseReport {
            events: n,
            body_bytes: n * opts.size as u64,
            secs: started.elapsed().as_secs_f64(),
            commit_latency: hist.into_inner().unwrap_or_default(),
        });
        if let Some(e) = failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(e);
        }
    }
    report.fsyncs = metric(&ch, "FsyncCount");
    report.prefill_fsyncs = metric(&ch, "PrefillFsyncCount");
    report.commit_batches = metric(&ch, "CommitBatchCount");
    report.log_bytes = metric(&ch, "BytesWritten");
    ch.close().map_err(engine("close the bench channel"))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_monotone_and_tight() {
        let mut prev = 0;
        for v in (0..5000u64).chain([1 << 20, 1 << 40, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(b >= prev || v < 5000, "bucket of {v}");
            prev = b;
            let high = bucket_high(b);
            assert!(high >= v, "{v} above its bucket's bound {high}");
            assert!(high - v <= v / 32 + 1, "{v}: bucket bound {high} too loose");
        }
    }

    #[test]
    fn histogram_percentiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v);
        }
        let p50 = h.percentile(50.0);
        let p99 = h.percentile(99.0);
        assert!((500..=516).contains(&p50), "{p50}");
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.percentile(100.0), 1000);
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }
}
