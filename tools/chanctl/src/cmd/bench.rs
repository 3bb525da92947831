//! `chanctl bench --dir DIR --events N --size S --batch B [--producers P] [--consumers C]
//! [--sync always|interval-ms:N] [--no-consume] [--baseline] [--json]`.
//!
//! Drives the real engine (see `crate::load_generator`). Human output: events/s and MB/s
//! (of event bodies, 10^6 bytes) per phase, put-commit latency p50/p99, fsync count; with
//! `--baseline`, a raw write + fdatasync of the same bytes measured in the same run (appending
//! to a growing file, and overwriting a preallocated one) and the engine's ratio to each. `--json`: one line with `written`, `read`, `write_secs`, `read_secs`,
//! `commit_p50_us`, `commit_p99_us`, `fsyncs` and more (`baseline_*`, `ratio`,
//! `baseline_overwrite_*`, `ratio_overwrite` with `--baseline`).

use crate::load_generator::{run as run_bench, BenchOptions, BenchReport};
use crate::output::{self, micros, print_json, Out};
use crate::progress::Bar;
use anyhow::{bail, Context};
use clap::Args;
use file_channel::SyncPolicy;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A new or empty directory for the bench channel.
    #[arg(long)]
    dir: PathBuf,
    /// Events to write.
    #[arg(long, value_name = "N")]
    events: u64,
    /// Body bytes per event.
    #[arg(long, value_name = "S")]
    size: usize,
    /// Events per put (and take) transaction.
    #[arg(long, value_name = "B")]
    batch: u32,
    /// Producer threads.
    #[arg(long, default_value_t = 1, value_name = "P")]
    producers: usize,
    /// Consumer threads.
    #[arg(long, default_value_t = 1, value_name = "C")]
    consumers: usize,
    /// Sync policy: `always` (fdatasync per commit batch) or `interval-ms:N`.
    #[arg(long, default_value = "always")]
    sync: String,
    /// Leave the events in the channel (a backlog for `chanctl replay` measurements).
    #[arg(long)]
    no_consume: bool,
    /// Also measure a raw write + fdatasync of the same bytes, one append per transaction.
    #[arg(long)]
    baseline: bool,
    /// One JSON line instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_sync(s: &str) -> anyhow::Result<SyncPolicy> {
    if s == "always" {
        return Ok(SyncPolicy::EveryCommit);
    }
    if let Some(ms) = s.strip_prefix("interval-ms:") {
        let interval_ms: u64 = ms
            .parse()
            .with_context(|| format!("--sync {s}: {ms:?} is not a number of milliseconds"))?;
        if interval_ms == 0 {
            bail!("--sync interval-ms:N needs N >= 1");
        }
        return Ok(SyncPolicy::Interval {
            interval_ms,
            bytes: u64::MAX,
        });
    }
    bail!("--sync {s:?}: use always or interval-ms:N")
}

/// Runs the command.
pub fn run(a: &BenchArgs) -> anyhow::Result<u8> {
    let sync = parse_sync(&a.sync)?;
    let bar = Bar::new("events");
    let b2 = bar.clone();
    let opts = BenchOptions {
        dir: a.dir.clone(),
        events: a.events,
        size: a.size,
        batch: a.batch,
        producers: a.producers,
        consumers: a.consumers,
        sync,
        consume: !a.no_consume,
        baseline: a.baseline,
        progress: Some(Arc::new(move |phase, done, total| {
            b2.set(phase, done, total)
        })),
    };
    let r = run_bench(&opts);
    bar.finish();
    let r = r?;
    let mut out = output::stdout();
    if a.json {
        print_json(&mut out, &to_json(a, &r))?;
    } else {
        print_human(&mut out, a, &r)?;
    }
    Ok(0)
}

fn to_json(a: &BenchArgs, r: &BenchReport) -> serde_json::Value {
    let w = &r.write;
    let mut v = json!({
        "events": a.events,
        "size": a.size,
        "batch": a.batch,
        "producers": a.producers,
        "consumers": a.consumers,
        "sync": a.sync,
        "written": w.events,
        "read": r.read.as_ref().map_or(0, |p| p.events),
        "write_secs": w.secs,
        "read_secs": r.read.as_ref().map_or(0.0, |p| p.secs),
        "write_events_per_sec": w.events_per_sec(),
        "write_mb_per_sec": w.mb_per_sec(),
        "read_events_per_sec": r.read.as_ref().map_or(0.0, |p| p.events_per_sec()),
        "read_mb_per_sec": r.read.as_ref().map_or(0.0, |p| p.mb_per_sec()),
        "commit_p50_us": w.commit_latency.percentile(50.0),
        "commit_p99_us": w.commit_latency.percentile(99.0),
        "commit_max_us": w.commit_latency.max(),
        "commits": w.commit_latency.count(),
        "take_commit_p50_us": r.read.as_ref().map(|p| p.commit_latency.percentile(50.0)),
        "take_commit_p99_us": r.read.as_ref().map(|p| p.commit_latency.percentile(99.0)),
        "fsyncs": r.fsyncs,
        "write_fsyncs": r.write_fsyncs,
        "prefill_fsyncs": r.prefill_fsyncs,
        "commit_batches": r.commit_batches,
        "log_bytes": r.log_bytes,
    });
    if let (Some(b), Some(obj)) = (&r.baseline, v.as_object_mut()) {
        obj.insert("baseline_secs".into(), json!(b.secs));
        obj.insert("baseline_events_per_sec".into(), json!(b.events_per_sec()));
        obj.insert("baseline_mb_per_sec".into(), json!(b.mb_per_sec()));
        obj.insert("baseline_fsyncs".into(), json!(b.batches));
        obj.insert("baseline_bytes".into(), json!(b.bytes));
        obj.insert("baseline_p50_us".into(), json!(b.latency.percentile(50.0)));
        obj.insert("baseline_p99_us".into(), json!(b.latency.percentile(99.0)));
        obj.insert("ratio".into(), json!(r.ratio_to_baseline()));
    }
    if let (Some(b), Some(obj)) = (&r.baseline_overwrite, v.as_object_mut()) {
        obj.insert("baseline_overwrite_secs".into(), json!(b.secs));
        obj.insert(
            "baseline_overwrite_events_per_sec".into(),
            json!(b.events_per_sec()),
        );
        obj.insert(
            "baseline_overwrite_p50_us".into(),
            json!(b.latency.percentile(50.0)),
        );
        obj.insert(
            "baseline_overwrite_p99_us".into(),
            json!(b.latency.percentile(99.0)),
        );
        obj.insert(
            "ratio_overwrite".into(),
            json!(r.ratio_to_overwrite_baseline()),
        );
    }
    v
}

fn print_human(out: &mut Out, a: &BenchArgs, r: &BenchReport) -> std::io::Result<()> {
    writeln!(
        out,
        "bench {}: {} events of {} B in transactions of {}, {} producer(s), {} consumer(s), sync {}",
        a.dir.display(),
        a.events,
        a.size,
        a.batch,
        a.producers,
        a.consumers,
        a.sync
    )?;
    let w = &r.write;
    writeln!(
        out,
        "write: {} events in {:.3} s: {:.0} events/s, {:.1} MB/s of bodies",
        w.events,
        w.secs,
        w.events_per_sec(),
        w.mb_per_sec()
    )?;
    writeln!(
        out,
        "  put commit latency: p50 {}, p99 {}, max {} ({} commits)",
        micros(w.commit_latency.percentile(50.0)),
        micros(w.commit_latency.percentile(99.0)),
        micros(w.commit_latency.max()),
        w.commit_latency.count()
    )?;
    writeln!(
        out,
        "  fsyncs: {} by the commit path during the write phase ({} group-commit batches in the run), {} by prefill",
        r.write_fsyncs, r.commit_batches, r.prefill_fsyncs
    )?;
    match &r.read {
        Some(p) => {
            writeln!(
                out,
                "read: {} events in {:.3} s: {:.0} events/s, {:.1} MB/s of bodies",
                p.events,
                p.secs,
                p.events_per_sec(),
                p.mb_per_sec()
            )?;
            writeln!(
                out,
                "  take commit latency: p50 {}, p99 {}",
                micros(p.commit_latency.percentile(50.0)),
                micros(p.commit_latency.percentile(99.0))
            )?;
        }
        None => writeln!(
            out,
            "read: skipped (--no-consume): the events stay in the channel"
        )?,
    }
    writeln!(out, "fsyncs (FsyncCount, whole run): {}", r.fsyncs)?;
    for (b, ratio) in [
        (&r.baseline, r.ratio_to_baseline()),
        (&r.baseline_overwrite, r.ratio_to_overwrite_baseline()),
    ] {
        let Some(b) = b else { continue };
        writeln!(
            out,
            "raw baseline, {} (write + fdatasync of the same bytes, {} writes of {} B): {:.3} s: {:.0} events/s, {:.1} MB/s of log; fdatasync p50 {}, p99 {}; engine / baseline: {}",
            b.mode,
            b.batches,
            b.batch_bytes,
            b.secs,
            b.events_per_sec(),
            b.mb_per_sec(),
            micros(b.latency.percentile(50.0)),
            micros(b.latency.percentile(99.0)),
            ratio.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
        )?;
    }
    out.flush()
}
