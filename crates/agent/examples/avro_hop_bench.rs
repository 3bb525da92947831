//! Throughput of one avro hop between two `sluice` agents, file channel on both sides:
//!
//! ```text
//! tier 1: netcat → file channel → avro sink  ──Avro IPC──►  tier 2: avro source → file channel → file_roll
//! ```
//!
//! Tier 1 starts alone and its file channel is filled with `--events` events of
//! `--body-bytes` bytes (through its netcat source, in batches). Then tier 2 starts and the
//! avro sink drains tier 1's channel into it: each batch is taken from tier 1's channel, sent
//! as one `appendBatch`, committed (fsynced) into tier 2's channel, answered `OK`, and only
//! then the take is committed in tier 1. The figure is events/s of tier 1's
//! `EventDrainSuccessCount` from its first delivered batch to its last (so tier 2's start-up
//! and the sink's reconnect back-off are not counted); then every event is checked to be in
//! tier 2's output.
//!
//! ```sh
//! cargo build --release -p agent --bin sluice --example avro_hop_bench
//! target/release/examples/avro_hop_bench --events 200000 --batch 100
//! ```
//!
//! Options: `--events N` (200000), `--body-bytes N` (256), `--batch N` (the avro sink's
//! `batch-size` and the channels' `transactionCapacity`; 100, Flume's default),
//! `--compression none|deflate` (none), `--bin PATH` (the `sluice` beside `examples/`).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    events: u64,
    body_bytes: usize,
    batch: u64,
    compression: String,
    bin: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let default_bin = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("sluice"))
        .unwrap_or_else(|| PathBuf::from("sluice"));
    let mut a = Args {
        events: 200_000,
        body_bytes: 256,
        batch: 100,
        compression: "none".into(),
        bin: default_bin,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--events" => a.events = v.parse()?,
            "--body-bytes" => a.body_bytes = v.parse()?,
            "--batch" => a.batch = v.parse()?,
            "--compression" => a.compression = v,
            "--bin" => a.bin = PathBuf::from(v),
            _ => anyhow::bail!("unknown option {k}"),
        }
    }
    anyhow::ensure!(a.body_bytes >= 24, "--body-bytes must be at least 24");
    anyhow::ensure!(a.events >= 1 && a.batch >= 1, "need events and batch >= 1");
    Ok(a)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn tier1(a: &Args, dir: &Path, netcat_port: u16, avro_port: u16) -> String {
    format!(
        "\
t1.sources = r1
t1.channels = c1
t1.sinks = k1
t1.sources.r1.type = netcat
t1.sources.r1.bind = 127.0.0.1
t1.sources.r1.port = {netcat_port}
t1.sources.r1.max-line-length = {max_line}
t1.sources.r1.batch-size = 1000
t1.sources.r1.channels = c1
t1.channels.c1.type = file
t1.channels.c1.checkpointDir = {dir}/t1/checkpoint
t1.channels.c1.dataDirs = {dir}/t1/data
t1.channels.c1.capacity = {capacity}
t1.channels.c1.transactionCapacity = {txn}
t1.sinks.k1.type = avro
t1.sinks.k1.channel = c1
t1.sinks.k1.hostname = 127.0.0.1
t1.sinks.k1.port = {avro_port}
t1.sinks.k1.batch-size = {batch}
t1.sinks.k1.compression-type = {compression}
",
        dir = dir.display(),
        max_line = a.body_bytes * 2,
        capacity = a.events.max(1_000_000),
        txn = a.batch.max(1000),
        batch = a.batch,
        compression = a.compression,
    )
}

fn tier2(a: &Args, dir: &Path, avro_port: u16) -> String {
    format!(
        "\
t2.sources = r1
t2.channels = c1
t2.sinks = k1
t2.sources.r1.type = avro
t2.sources.r1.bind = 127.0.0.1
t2.sources.r1.port = {avro_port}
t2.sources.r1.compression-type = {compression}
t2.sources.r1.channels = c1
t2.channels.c1.type = file
t2.channels.c1.checkpointDir = {dir}/t2/checkpoint
t2.channels.c1.dataDirs = {dir}/t2/data
t2.channels.c1.capacity = {capacity}
t2.channels.c1.transactionCapacity = {txn}
t2.sinks.k1.type = file_roll
t2.sinks.k1.channel = c1
t2.sinks.k1.sink.directory = {dir}/out
t2.sinks.k1.sink.rollInterval = 0
t2.sinks.k1.sink.batchSize = 1000
",
        dir = dir.display(),
        capacity = a.events.max(1_000_000),
        txn = a.batch.max(1000),
        compression = a.compression,
    )
}

fn spawn(a: &Args, conf: &Path, name: &str, metrics_port: Option<u16>) -> anyhow::Result<Child> {
    let mut cmd = Command::new(&a.bin);
    cmd.args(["agent", "-n", name, "-f"])
        .arg(conf)
        .args(["--log-level", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(p) = metrics_port {
        cmd.args(["--metrics-http", &format!("127.0.0.1:{p}")]);
    }
    Ok(cmd.spawn()?)
}

fn connect(port: u16) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Puts `n` events through tier 1's netcat source; returns how many were not answered OK.
fn fill(port: u16, n: u64, body_bytes: usize) -> anyhow::Result<u64> {
    let s = connect(port)?;
    let reader = BufReader::new(s.try_clone()?);
    let answers = std::thread::spawn(move || {
        let mut bad = 0u64;
        let mut line = String::new();
        let mut r = reader;
        for _ in 0..n {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return bad + 1;
            }
            if line != "OK\n" {
                bad += 1;
            }
        }
        bad
    });
    let mut w = BufWriter::with_capacity(1 << 20, s);
    let mut line = vec![b'x'; body_bytes + 1];
    line[body_bytes] = b'\n';
    for i in 0..n {
        let tag = format!("{i:012}-");
        line[..tag.len()].copy_from_slice(tag.as_bytes());
        w.write_all(&line)?;
    }
    w.flush()?;
    answers
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))
}

/// Tier 1's `EventDrainSuccessCount` from its metrics endpoint.
fn drained(metrics_port: u16) -> anyhow::Result<u64> {
    let mut s = connect(metrics_port)?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| anyhow::anyhow!("bad HTTP answer"))?;
    let json: serde_json::Value = serde_json::from_str(body)?;
    Ok(json["SINK.k1"]["EventDrainSuccessCount"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn output_lines(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter_map(|e| std::fs::read(e.path()).ok())
                .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
                .sum()
        })
        .unwrap_or(0)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    anyhow::ensure!(
        a.bin.exists(),
        "{} not found; build it with `cargo build --release -p agent --bin sluice` or pass --bin",
        a.bin.display()
    );
    let tmp = tempfile::tempdir_in(std::env::current_dir()?)?;
    let (netcat_port, avro_port, metrics_port) = (free_port()?, free_port()?, free_port()?);
    let c1 = tmp.path().join("t1.conf");
    std::fs::write(&c1, tier1(&a, tmp.path(), netcat_port, avro_port))?;
    let c2 = tmp.path().join("t2.conf");
    std::fs::write(&c2, tier2(&a, tmp.path(), avro_port))?;

    let t1 = spawn(&a, &c1, "t1", Some(metrics_port))?;
    let filled = Instant::now();
    let bad = fill(netcat_port, a.events, a.body_bytes)?;
    anyhow::ensure!(bad == 0, "{bad} events were not accepted by tier 1");
    eprintln!(
        "tier 1 holds {} events ({:.1} s to fill)",
        a.events,
        filled.elapsed().as_secs_f64()
    );

    let t2 = spawn(&a, &c2, "t2", None)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64)> = None;
    let last = loop {
        let n = drained(metrics_port)?;
        let now = Instant::now();
        if n > 0 && first.is_none() {
            first = Some((now, n));
        }
        if n >= a.events {
            break now;
        }
        anyhow::ensure!(now < deadline, "only {n} of {} delivered", a.events);
        std::thread::sleep(Duration::from_millis(5));
    };
    let (t0, n0) = first.unwrap_or((last, 0));
    let secs = last.duration_since(t0).as_secs_f64().max(1e-9);
    let rate = (a.events - n0) as f64 / secs;
    let out = tmp.path().join("out");
    let wait = Instant::now() + Duration::from_secs(120);
    while output_lines(&out) < a.events && Instant::now() < wait {
        std::thread::sleep(Duration::from_millis(50));
    }
    let delivered = output_lines(&out);
    stop(t1);
    stop(t2);
    anyhow::ensure!(
        delivered >= a.events,
        "tier 2 wrote {delivered} of {} events",
        a.events
    );
    println!(
        "avro hop, batch-size {}, compression {}, {}-byte bodies: {} events in {:.2} s = {:.0} events/s ({:.1} MB/s of bodies)",
        a.batch,
        a.compression,
        a.body_bytes,
        a.events - n0,
        secs,
        rate,
        rate * a.body_bytes as f64 / 1e6
    );
    Ok(())
}
