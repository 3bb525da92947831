//! The load generator behind `chanctl bench`: drives the real engine ([`FileChannel`]) with producer and consumer threads and
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
//! With `encrypt`, the channel gets a throwaway key (`Keyring::generated`, never written
//! anywhere): every put record is sealed with AES-256-GCM and every take opens it, as a channel
//! configured with `encryption.activeKey` does. [`compare`] runs plain and encrypted rounds
//! interleaved, for their ratio on one machine in one run.
//!
//! Everything else is the engine's default configuration, except: `capacity` is raised to
//! `events` (the write phase finishes before the read phase starts), `transaction_capacity` is
//! `batch`, and `minimum_required_space` is 0 (a nearly full test disk must not fail the run).
//! The fsync count is the engine's own metric (`FsyncCount`; prefill fsyncs separately).
//!
//! | module | job |
//! |---|---|
//! | [`histogram`] | the latency histogram behind the p50/p99 figures |
//! | [`baseline`] | the raw write + fdatasync baselines, append and overwrite |
//! | [`compare`] | plain against encrypted, interleaved rounds, and their ratios |

mod baseline;
pub mod compare;
mod histogram;

pub use baseline::{BaselineReport, BASELINE_ROUNDS};
pub use histogram::Histogram;

use baseline::Baseline;
use file_channel::encryption::Keyring;
use file_channel::format::record::{align_up, RECORD_HEADER_BYTES};
use file_channel::inspect::InspectError;
use file_channel::limits::{MAX_EVENTS_PER_TXN, MAX_EVENT_BYTES, MAX_RECORD_BYTES};
use file_channel::{ChannelConfig, Event, FileChannel, PendingCommit, SyncPolicy};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// Put commits each producer keeps in flight: 1 commits and waits; more submits the next
    /// transaction's commit before waiting for the oldest (`Transaction::commit_submit`).
    pub in_flight: usize,
    /// Consumer threads.
    pub consumers: usize,
    /// The sync policy.
    pub sync: SyncPolicy,
    /// Take the events back after writing them.
    pub consume: bool,
    /// Also measure the raw write + fdatasync baseline.
    pub baseline: bool,
    /// Encrypt every event with a throwaway key.
    pub encrypt: bool,
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
            .field("in_flight", &self.in_flight)
            .field("consumers", &self.consumers)
            .field("sync", &self.sync)
            .field("consume", &self.consume)
            .field("baseline", &self.baseline)
            .field("encrypt", &self.encrypt)
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
    /// Bytes of records written (`BytesWritten`) when the run ended. Take records are written
    /// with the next flush, so how many of them are in this figure depends on timing.
    pub log_bytes: u64,
    /// Bytes of records written by the end of the write phase: the put records only, the same
    /// on every run with the same parameters.
    pub write_log_bytes: u64,
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

/// Maps an I/O error of `op` on `path` to [`InspectError::Io`].
fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> InspectError {
    let path = path.to_path_buf();
    move |source| InspectError::Io { op, path, source }
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
    if opts.batch == 0 || opts.batch > MAX_EVENTS_PER_TXN {
        return bad("--batch must be between 1 and 1000000");
    }
    if opts.producers == 0 || opts.consumers == 0 {
        return bad("--producers and --consumers must be at least 1");
    }
    if opts.size as u64 + 6 > MAX_EVENT_BYTES {
        return bad("--size is over the engine's event limit (32 MiB - 6)");
    }
    if record_bytes(u64::from(opts.batch), opts.size) > MAX_RECORD_BYTES {
        return bad("--batch × (--size + 6) is over the engine's record limit (64 MiB)");
    }
    if opts.dir.exists() {
        let mut it = std::fs::read_dir(&opts.dir).map_err(io_error("list", &opts.dir))?;
        if it.next().is_some() {
            return Err(InspectError::Usage(format!(
                "{} is not empty: bench needs a new or empty directory",
                opts.dir.display()
            )));
        }
    }
    Ok(())
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
    std::fs::create_dir_all(&opts.dir).map_err(io_error("create", &opts.dir))?;
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
    if opts.encrypt {
        cfg.keyring = Some(
            Keyring::generated("bench")
                .map_err(engine("make a throwaway key"))?
                .shared(),
        );
    }
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
                        // Each commit's latency runs from its submit to the end of its wait.
                        let mut in_flight: VecDeque<(PendingCommit, Instant, u64)> =
                            VecDeque::new();
                        let mut settle_oldest =
                            |in_flight: &mut VecDeque<(PendingCommit, Instant, u64)>| {
                                let Some((pending, t, n)) = in_flight.pop_front() else {
                                    return Ok(());
                                };
                                pending.wait().map_err(engine("put commit"))?;
                                local.record_duration(t.elapsed());
                                let done = written.fetch_add(n, Relaxed) + n;
                                if let Some(pr) = &opts.progress {
                                    pr("write", done, opts.events);
                                }
                                Ok::<(), InspectError>(())
                            };
                        loop {
                            let k = next_batch.fetch_add(1, Relaxed);
                            if k >= to {
                                break;
                            }
                            let n = batch.min(opts.events - k * batch);
                            let mut tx = ch.transaction();
                            for _ in 0..n {
                                tx.put(&event).map_err(engine("put"))?;
                            }
                            let t = Instant::now();
                            let pending = tx.commit_submit().map_err(engine("put commit"))?;
                            in_flight.push_back((pending, t, n));
                            while in_flight.len() >= opts.in_flight.max(1) {
                                settle_oldest(&mut in_flight)?;
                            }
                        }
                        while !in_flight.is_empty() {
                            settle_oldest(&mut in_flight)?;
                        }
                        Ok(())
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
    report.write_log_bytes = metric(&ch, "BytesWritten");

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
