//! `hdfs` sink throughput on `file://` against `file_roll`, on the same events, in one run.
//!
//! Each round fills a fresh file channel with `--events` events of `--event-bytes` bytes and
//! drains it once through `file_roll` (`sink.batchSize = --batch`, one file) and once through
//! `hdfs` (`hdfs.fileType = DataStream`, the text serializer, `hdfs.batchSize = --batch`, no
//! rolling: one file), the order alternating between rounds. Both commit a take only after an
//! fdatasync of their file. Timed: draining the channel (every batch taken, written, synced,
//! committed) and finishing the file. Prints each round's events/s and the ratio hdfs /
//! file_roll, then the median ratio; checks that each output holds every event.
//!
//! ```sh
//! cargo run --release -p agent --example hdfs_bench -- --events 200000 --batch 100 --rounds 5
//! ```

use agent::channel::{Channel, ChannelSettings, FileChannelSettings};
use agent::config::context::{Ctx, Entry};
use agent::event::Event;
use agent::runner::Status;
use agent::sink::file_roll::{FileRollConfig, FileRollSink};
use agent::sink::hdfs::{HdfsConfig, HdfsSink};
use agent::sink::{Sink, SinkContext};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

struct Args {
    events: u64,
    event_bytes: usize,
    batch: u32,
    rounds: u32,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        events: 200_000,
        event_bytes: 256,
        batch: 100,
        rounds: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--events" => a.events = v.parse()?,
            "--event-bytes" => a.event_bytes = v.parse()?,
            "--batch" => a.batch = v.parse()?,
            "--rounds" => a.rounds = v.parse()?,
            _ => anyhow::bail!("unknown option {k}"),
        }
    }
    anyhow::ensure!(
        a.events >= 1 && a.batch >= 1 && a.rounds >= 1,
        "need events, batch and rounds >= 1"
    );
    Ok(a)
}

/// A context over `pairs` under `prefix`; fails on any configuration error.
fn with_ctx<T>(
    prefix: &str,
    pairs: &[(&str, String)],
    f: impl Fn(&Ctx<'_>) -> T,
) -> anyhow::Result<T> {
    let list: Vec<Entry> = pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Entry {
            key: format!("{prefix}{k}"),
            value: v.clone(),
            line: i as u32 + 2,
        })
        .collect();
    let ctx = Ctx::new(
        prefix,
        list.iter()
            .map(|e| (e.key.strip_prefix(prefix).unwrap_or(""), e))
            .collect(),
        1,
    );
    let value = f(&ctx);
    let d = ctx.finish("bench");
    anyhow::ensure!(d.errors.is_empty(), "configuration: {:?}", d.errors);
    Ok(value)
}

/// A fresh file channel under `dir` holding `a.events` events.
fn filled_channel(dir: &Path, a: &Args) -> anyhow::Result<Channel> {
    let settings = with_ctx(
        "b.channels.c1.",
        &[
            ("checkpointDir", dir.join("cp").display().to_string()),
            ("dataDirs", dir.join("data").display().to_string()),
            ("capacity", (a.events + 1).to_string()),
            ("transactionCapacity", a.batch.max(1000).to_string()),
        ],
        |ctx| ChannelSettings::File(FileChannelSettings::parse(ctx, None)),
    )?;
    let channel = Channel::open("c1", &settings)?;
    let body = vec![b'x'; a.event_bytes];
    let mut left = a.events;
    while left > 0 {
        let n = left.min(1000);
        let mut tx = channel.transaction();
        for _ in 0..n {
            tx.put(&Event::new(body.clone()))?;
        }
        tx.commit()?;
        left -= n;
    }
    Ok(channel)
}

/// Drains `channel` through `sink`, stops it; seconds taken.
fn drain(mut sink: Box<dyn Sink>, channel: &Channel) -> anyhow::Result<f64> {
    let t = Instant::now();
    loop {
        match sink.process() {
            Ok(Status::Ready) => {}
            Ok(Status::Backoff) if channel.is_empty() => break,
            Ok(Status::Backoff) => {}
            Err(e) => anyhow::bail!("sink failed: {e}"),
        }
    }
    sink.stop();
    Ok(t.elapsed().as_secs_f64())
}

/// Lines in every file under `dir`, recursively.
fn lines_under(dir: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            n += lines_under(&p)?;
        } else {
            n += std::fs::read(&p)?.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    Ok(n)
}

fn run_one(a: &Args, hdfs: bool) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let channel = filled_channel(dir.path(), a)?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let ctx = SinkContext {
        name: "k1".into(),
        channel: channel.clone(),
        counters: Arc::default(),
    };
    let sink: Box<dyn Sink> = if hdfs {
        let config = with_ctx(
            "b.sinks.k1.",
            &[
                ("hdfs.path", format!("file://{}", out.display())),
                ("hdfs.fileType", "DataStream".into()),
                ("hdfs.batchSize", a.batch.to_string()),
                ("hdfs.rollInterval", "0".into()),
                ("hdfs.rollSize", "0".into()),
                ("hdfs.rollCount", "0".into()),
                (
                    "hdfs.stagingDir",
                    dir.path().join("staging").display().to_string(),
                ),
            ],
            HdfsConfig::parse,
        )?;
        Box::new(HdfsSink::new(config, ctx))
    } else {
        let config = with_ctx(
            "b.sinks.k1.",
            &[
                ("sink.directory", out.display().to_string()),
                ("sink.rollInterval", "0".into()),
                ("sink.batchSize", a.batch.to_string()),
            ],
            FileRollConfig::parse,
        )?;
        Box::new(FileRollSink::new(config, ctx))
    };
    let secs = drain(sink, &channel)?;
    channel.close()?;
    let written = lines_under(&out)?;
    anyhow::ensure!(
        written == a.events,
        "{} wrote {written} lines, expected {}",
        if hdfs { "hdfs" } else { "file_roll" },
        a.events
    );
    Ok(secs)
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    println!(
        "events={} event_bytes={} batch={} rounds={}",
        a.events, a.event_bytes, a.batch, a.rounds
    );
    let mut ratios = Vec::new();
    let (mut roll_total, mut hdfs_total) = (0.0, 0.0);
    for round in 0..a.rounds {
        let (roll_s, hdfs_s) = if round % 2 == 0 {
            let r = run_one(&a, false)?;
            (r, run_one(&a, true)?)
        } else {
            let h = run_one(&a, true)?;
            (run_one(&a, false)?, h)
        };
        roll_total += roll_s;
        hdfs_total += hdfs_s;
        let (roll_eps, hdfs_eps) = (a.events as f64 / roll_s, a.events as f64 / hdfs_s);
        ratios.push(hdfs_eps / roll_eps);
        println!(
            "round {round}: file_roll {roll_eps:.0} events/s, hdfs {hdfs_eps:.0} events/s, hdfs / file_roll {:.3}",
            hdfs_eps / roll_eps
        );
    }
    ratios.sort_by(|x, y| x.total_cmp(y));
    let n = a.events as f64 * f64::from(a.rounds);
    println!(
        "overall: file_roll {:.0} events/s, hdfs {:.0} events/s, hdfs / file_roll {:.3} (median of rounds {:.3})",
        n / roll_total,
        n / hdfs_total,
        roll_total / hdfs_total,
        ratios[ratios.len() / 2]
    );
    Ok(())
}
