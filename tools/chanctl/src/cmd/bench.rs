//! `chanctl bench --dir DIR --events N --size S --batch B [--producers P] [--in-flight N] [--consumers C]
//! [--sync always|interval-ms:N] [--no-consume] [--baseline] [--json]`.
//!
//! Drives the real engine (see `crate::load_generator`). Human output: events/s and MB/s
//! (of event bodies, 10^6 bytes) per phase, put-commit latency p50/p99, fsync count; with
//! `--baseline`, a raw write + fdatasync of the same bytes measured in the same run (appending
//! to a growing file, and overwriting a preallocated one) and the engine's ratio to each. `--json`: one line with `written`, `read`, `write_secs`, `read_secs`,
//! `commit_p50_us`, `commit_p99_us`, `fsyncs` and more (`baseline_*`, `ratio`,
//! `baseline_overwrite_*`, `ratio_overwrite` with `--baseline`; `encrypted`).
//!
//! `--encrypt` gives the channel a throwaway key (every event sealed with AES-256-GCM).
//! `--compare-encrypt [--rounds N]` runs the bench plain and encrypted in interleaved rounds
//! (`crate::load_generator::compare`) and prints both and the ratios encrypted/plain of put
//! and of take + commit throughput; its JSON keys are listed in `docs/benchmarks.md`.

use crate::load_generator::compare::{compare, CompareReport, WayReport};
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
    /// Put commits each producer keeps in flight: 1 commits and waits; N submits up to N
    /// commits (`commit_submit`) before waiting for the oldest, as the agent's netcat source
    /// does with batches of one connection.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    in_flight: u16,
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
    /// Encrypt every event (AES-256-GCM) with a throwaway key made for the run.
    #[arg(long, conflicts_with = "compare_encrypt")]
    encrypt: bool,
    /// Run plain and encrypted side by side: interleaved rounds of the same bench, each in a
    /// fresh directory under --dir, and the ratios encrypted/plain of put and of take + commit
    /// throughput.
    #[arg(long, conflicts_with_all = ["baseline", "no_consume"])]
    compare_encrypt: bool,
    /// With --compare-encrypt: rounds (each runs the bench once plain and once encrypted).
    #[arg(
        long,
        default_value_t = 3,
        value_name = "N",
        requires = "compare_encrypt"
    )]
    rounds: usize,
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
        in_flight: usize::from(a.in_flight),
        consumers: a.consumers,
        sync,
        consume: !a.no_consume,
        baseline: a.baseline,
        encrypt: a.encrypt,
        progress: Some(Arc::new(move |phase, done, total| {
            b2.set(phase, done, total)
        })),
    };
    if a.compare_encrypt {
        let r = compare(&opts, a.rounds);
        bar.finish();
        let r = r?;
        let mut out = output::stdout();
        if a.json {
            print_json(&mut out, &compare_json(a, &r))?;
        } else {
            print_compare(&mut out, a, &r)?;
        }
        return Ok(0);
    }
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
        "in_flight": a.in_flight,
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
        "encrypted": a.encrypt,
        "fsyncs": r.fsyncs,
        "write_fsyncs": r.write_fsyncs,
        "prefill_fsyncs": r.prefill_fsyncs,
        "commit_batches": r.commit_batches,
        "log_bytes": r.log_bytes,
        "write_log_bytes": r.write_log_bytes,
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

fn way_json(w: &WayReport) -> serde_json::Value {
    json!({
        "written": w.write.events,
        "read": w.read.events,
        "write_secs": w.write.secs,
        "read_secs": w.read.secs,
        "write_events_per_sec": w.write.events_per_sec(),
        "read_events_per_sec": w.read.events_per_sec(),
        "write_mb_per_sec": w.write.mb_per_sec(),
        "read_mb_per_sec": w.read.mb_per_sec(),
        "commit_p50_us": w.write.commit_latency.percentile(50.0),
        "commit_p99_us": w.write.commit_latency.percentile(99.0),
        "take_commit_p50_us": w.read.commit_latency.percentile(50.0),
        "take_commit_p99_us": w.read.commit_latency.percentile(99.0),
        "fsyncs": w.fsyncs,
        "log_bytes": w.log_bytes,
        "write_log_bytes": w.write_log_bytes,
    })
}

fn compare_json(a: &BenchArgs, r: &CompareReport) -> serde_json::Value {
    json!({
        "compare": "encrypt",
        "events": a.events,
        "size": a.size,
        "batch": a.batch,
        "producers": a.producers,
        "in_flight": a.in_flight,
        "consumers": a.consumers,
        "sync": a.sync,
        "rounds": r.rounds,
        "plain": way_json(&r.plain),
        "encrypted": way_json(&r.encrypted),
        "put_ratio": r.put_ratio(),
        "take_ratio": r.take_ratio(),
        "put_ratio_median": r.put_ratio_median(),
        "take_ratio_median": r.take_ratio_median(),
        "round_put_ratios": r.per_round.iter().map(|x| x.put).collect::<Vec<_>>(),
        "round_take_ratios": r.per_round.iter().map(|x| x.take).collect::<Vec<_>>(),
    })
}

fn print_compare(out: &mut Out, a: &BenchArgs, r: &CompareReport) -> std::io::Result<()> {
    print_title(out, a)?;
    writeln!(
        out,
        "{} interleaved round(s), each once plain and once encrypted (throwaway key)",
        r.rounds
    )?;
    for (name, w) in [("plain", &r.plain), ("encrypted", &r.encrypted)] {
        writeln!(
            out,
            "{name:>9}: put {:.0} events/s (commit p50 {}, p99 {}); take + commit {:.0} events/s (p50 {}, p99 {}); {} log bytes",
            w.write.events_per_sec(),
            micros(w.write.commit_latency.percentile(50.0)),
            micros(w.write.commit_latency.percentile(99.0)),
            w.read.events_per_sec(),
            micros(w.read.commit_latency.percentile(50.0)),
            micros(w.read.commit_latency.percentile(99.0)),
            w.log_bytes
        )?;
    }
    let list = |v: Vec<f64>| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    writeln!(
        out,
        "encrypted / plain: put {:.3} (rounds: {}; median {:.3}), take + commit {:.3} (rounds: {}; median {:.3})",
        r.put_ratio(),
        list(r.per_round.iter().map(|x| x.put).collect()),
        r.put_ratio_median(),
        r.take_ratio(),
        list(r.per_round.iter().map(|x| x.take).collect()),
        r.take_ratio_median()
    )?;
    out.flush()
}

fn print_title(out: &mut Out, a: &BenchArgs) -> std::io::Result<()> {
    writeln!(
        out,
        "bench {}: {} events of {} B in transactions of {}, {} producer(s){}, {} consumer(s), sync {}{}",
        a.dir.display(),
        a.events,
        a.size,
        a.batch,
        a.producers,
        if a.in_flight > 1 {
            format!(" with {} commits in flight each", a.in_flight)
        } else {
            String::new()
        },
        a.consumers,
        a.sync,
        if a.encrypt { ", encrypted (throwaway key)" } else { "" }
    )
}

fn print_human(out: &mut Out, a: &BenchArgs, r: &BenchReport) -> std::io::Result<()> {
    print_title(out, a)?;
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
