//! `append_ratio`: the `append` comparison measured so that a shared, noisy machine cannot bias
//! it. Criterion runs one function after another, so a slow minute of the disk lands on
//! whichever function ran then. This binary instead alternates the variants in short rounds
//! (rotating the order every round) and reports, per variant, the median over rounds of
//! "events/s of the variant ÷ events/s of the raw loop in the same round".
//!
//! Variants: `raw` (append + fdatasync of one commit's bytes to a growing file), `s1` (one
//! producer, put transactions of 100 × 256-byte events, sync every commit), `s4` (four producers,
//! group commit), four producers without the group-commit gather wait (`s4ng`), and one and
//! four producers without prefill (`s1np`, `s4np`).
//!
//! Usage: `cargo run --release -p sluice-benches --bin append_ratio -- [ROUNDS] [COMMITS] [DIR]`
//! (defaults: 25 rounds, 1500 commits per variant per round, a temp dir under `target/`; about
//! a minute. Fewer rounds give medians that move by ±0.3× from run to run on a shared disk.)

use file_channel::FileChannel;
use sluice_benches::{
    bench_config, commit_loop, concurrent_commits, make_events, put_record_bytes, RawLog,
    BODY_BYTES, EVENTS_PER_TXN,
};
use std::path::PathBuf;
use std::time::Instant;

enum Variant {
    Raw(RawLog),
    Channel {
        channel: FileChannel,
        producers: usize,
    },
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(Ok(25), |s| s.parse())?;
    let commits: u64 = args.get(2).map_or(Ok(1500), |s| s.parse())?;
    let base = args.get(3).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/append-ratio"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let events = std::sync::Arc::new(make_events(EVENTS_PER_TXN, BODY_BYTES));
    let record_bytes = put_record_bytes(EVENTS_PER_TXN, BODY_BYTES);

    let mut variants: Vec<(&str, Variant)> = Vec::new();
    let raw_dir = dir.path().join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    variants.push((
        "raw",
        Variant::Raw(RawLog::create(&raw_dir.join("log"), record_bytes)?),
    ));
    for (name, producers, prefill, gather) in [
        ("s1", 1, true, true),
        ("s4", 4, true, true),
        ("s4ng", 4, true, false),
        ("s1np", 1, false, true),
        ("s4np", 4, false, true),
    ] {
        let mut cfg = bench_config(&dir.path().join(name));
        if !prefill {
            cfg.prefill_ahead_bytes = 0;
        }
        if !gather {
            cfg.group_commit_wait_us_max = 0;
        }
        variants.push((
            name,
            Variant::Channel {
                channel: FileChannel::open(cfg)?,
                producers,
            },
        ));
    }

    let n = variants.len();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let started = Instant::now();
            match &mut variants[i].1 {
                Variant::Raw(raw) => {
                    for _ in 0..commits {
                        raw.append_sync()?;
                    }
                }
                Variant::Channel {
                    channel,
                    producers: 1,
                } => commit_loop(channel, &events, commits),
                Variant::Channel { channel, producers } => {
                    concurrent_commits(channel, &events, *producers, commits);
                }
            }
            let secs = started.elapsed().as_secs_f64();
            rates[i].push(commits as f64 * EVENTS_PER_TXN as f64 / secs);
        }
    }
    println!("{rounds} rounds × {commits} commits of {EVENTS_PER_TXN} × {BODY_BYTES} B per variant, order rotated each round");
    for (i, (name, v)) in variants.iter().enumerate() {
        let ratios: Vec<f64> = rates[i].iter().zip(&rates[0]).map(|(a, b)| a / b).collect();
        let extra = match v {
            Variant::Raw(_) => String::new(),
            Variant::Channel { channel, .. } => {
                let snap = channel.metrics_snapshot();
                let get = |k: &str| snap.iter().find(|x| x.0 == k).map_or(0, |x| x.1);
                let puts = get("EventPutSuccessCount") as f64 / EVENTS_PER_TXN as f64;
                format!(
                    "  fsyncs/commit {:.3}  prefill fsyncs/commit {:.3}  gather timeouts {}",
                    get("FsyncCount") as f64 / puts,
                    get("PrefillFsyncCount") as f64 / puts,
                    get("GatherTimeoutCount")
                )
            }
        };
        println!(
            "{name:5} median {:>9.0} events/s   median ratio to raw in the same round {:.2}{extra}",
            median(rates[i].clone()),
            median(ratios)
        );
    }
    Ok(())
}
