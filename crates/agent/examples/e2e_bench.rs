//! End-to-end agent benchmark: TCP lines → netcat source (batching mode) → file channel
//! (fsync every commit, the default `syncPolicy = always`) → file_roll sink.
//!
//! Starts the real `sluice` binary on a temporary configuration, pushes `--lines` lines of
//! `--line-bytes` bytes (newline included) over `--conns` TCP connections, each connection
//! reading its `OK` answers on a second thread, and waits until every byte is in the file_roll
//! output. Its rate is measured from the first connection to the last output byte.
//!
//! In the same run, in alternating rounds (`--rounds`, the order swapped every round), it
//! measures the channel alone: a file channel opened in this process with the engine's
//! defaults, `--conns` producer threads putting the same number of events with the same bodies
//! (the line without its newline) in transactions of `--batch`, every commit fsynced. Printed:
//! both rates per round, their ratio (agent ÷ channel alone), the overall ratio (total times)
//! and the median of the rounds' ratios.
//!
//! ```sh
//! cargo build --release -p agent --bin sluice --example e2e_bench
//! target/release/examples/e2e_bench --lines 1000000 --line-bytes 257 --batch 100 --conns 1
//! target/release/examples/e2e_bench --lines 200000 --line-bytes 1025 --batch 1000 --conns 1
//! ```
//!
//! `--bin PATH` (default: `sluice` beside the `examples/` directory of this executable),
//! `--batch N` (netcat `batch-size` and the channel-alone transaction, default 1000),
//! `--sink null` (a null sink instead of file_roll; the agent's round then ends with the last
//! `OK`, every line durable in the channel: the source path alone, without the sink's second
//! copy of every byte on the same disk),
//! `--sink-batch N` (file_roll `sink.batchSize`; default the larger of `--batch` and 1000, as
//! the peer harness configures the agent) and `--rounds N` (default 3) can be given.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    lines: u64,
    conns: u64,
    line_bytes: usize,
    batch: u64,
    rounds: u32,
    bin: PathBuf,
    /// file_roll's `sink.batchSize`; by default the larger of `batch` and 1000, as the peer
    /// harness configures the agent.
    sink_batch: Option<u64>,
    /// `null` instead of file_roll: the round ends with the last `OK` (every line durable in
    /// the channel), and the sink's own writes leave the disk to the channel.
    null_sink: bool,
}

impl Args {
    fn sink_batch(&self) -> u64 {
        self.sink_batch.unwrap_or(self.batch.max(1000))
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let default_bin = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("sluice"))
        .unwrap_or_else(|| PathBuf::from("sluice"));
    let mut a = Args {
        lines: 1_000_000,
        conns: 8,
        line_bytes: 256,
        batch: 1000,
        rounds: 3,
        bin: default_bin,
        sink_batch: None,
        null_sink: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--lines" => a.lines = v.parse()?,
            "--conns" => a.conns = v.parse()?,
            "--line-bytes" => a.line_bytes = v.parse()?,
            "--batch" => a.batch = v.parse()?,
            "--rounds" => a.rounds = v.parse()?,
            "--bin" => a.bin = PathBuf::from(v),
            "--sink-batch" => a.sink_batch = Some(v.parse()?),
            "--sink" => {
                a.null_sink = match v.as_str() {
                    "null" => true,
                    "file_roll" => false,
                    _ => anyhow::bail!("--sink is file_roll or null, not {v}"),
                }
            }
            _ => anyhow::bail!("unknown option {k}"),
        }
    }
    anyhow::ensure!(a.line_bytes >= 16, "--line-bytes must be at least 16");
    anyhow::ensure!(
        a.conns >= 1 && a.lines >= a.conns,
        "need lines >= conns >= 1"
    );
    Ok(a)
}

fn config(port: u16, dir: &Path, a: &Args) -> String {
    format!(
        "\
b.sources = r1
b.channels = c1
b.sinks = k1
b.sources.r1.type = netcat
b.sources.r1.bind = 127.0.0.1
b.sources.r1.port = {port}
b.sources.r1.max-line-length = {max_line}
b.sources.r1.batch-size = {batch}
b.sources.r1.channels = c1
b.channels.c1.type = file
b.channels.c1.checkpointDir = {dir}/channel/checkpoint
b.channels.c1.dataDirs = {dir}/channel/data
b.channels.c1.capacity = {capacity}
b.channels.c1.transactionCapacity = {txn}
b.sinks.k1.channel = c1
{sink}",
        sink = if a.null_sink {
            format!(
                "b.sinks.k1.type = null\nb.sinks.k1.batchSize = {}\n",
                a.sink_batch()
            )
        } else {
            format!(
                "b.sinks.k1.type = file_roll\nb.sinks.k1.sink.directory = {dir}/out\nb.sinks.k1.sink.rollInterval = 0\nb.sinks.k1.sink.batchSize = {}\n",
                a.sink_batch(),
                dir = dir.display()
            )
        },
        dir = dir.display(),
        max_line = a.line_bytes * 2,
        batch = a.batch,
        txn = a.batch.max(a.sink_batch()),
        capacity = a.lines.max(1_000_000),
    )
}

fn output_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
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

/// Sends `n` lines on one connection and reads `n` answers; returns the answers that were not
/// `OK`.
fn client(port: u16, conn: u64, n: u64, line_bytes: usize) -> anyhow::Result<u64> {
    let s = connect(port)?;
    s.set_nodelay(true)?;
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
    let mut line = vec![b'x'; line_bytes];
    line[line_bytes - 1] = b'\n';
    for i in 0..n {
        let tag = format!("{conn:04}-{i:012}-");
        line[..tag.len()].copy_from_slice(tag.as_bytes());
        w.write_all(&line)?;
    }
    w.flush()?;
    let bad = answers
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    Ok(bad)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// The lines connection (or producer) `c` sends: an equal share, the last one the rest.
fn share(a: &Args, c: u64) -> u64 {
    let per = a.lines / a.conns;
    if c == a.conns - 1 {
        a.lines - per * (a.conns - 1)
    } else {
        per
    }
}

/// One agent round in `dir`: the seconds from the first connection to the last output byte.
fn agent_round(a: &Args, dir: &Path) -> anyhow::Result<f64> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = dir.join("bench.conf");
    std::fs::write(&conf, config(port, dir, a))?;
    let child = Command::new(&a.bin)
        .args(["agent", "-n", "b", "-f"])
        .arg(&conf)
        .args(["--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    connect(port)?; // Wait for the listener; this connection sends nothing.

    let out = dir.join("out");
    let want = a.lines * a.line_bytes as u64;
    let started = Instant::now();
    let clients: Vec<_> = (0..a.conns)
        .map(|c| {
            let n = share(a, c);
            let lb = a.line_bytes;
            std::thread::spawn(move || client(port, c, n, lb))
        })
        .collect();
    let mut bad = 0;
    for c in clients {
        bad += c.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while !a.null_sink && output_bytes(&out) < want {
        anyhow::ensure!(
            Instant::now() < deadline,
            "output incomplete after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let done = started.elapsed();
    stop(child);
    anyhow::ensure!(bad == 0, "{bad} lines not answered OK");
    if !a.null_sink {
        let got = output_bytes(&out);
        anyhow::ensure!(got == want, "output has {got} bytes, expected {want}");
    }
    Ok(done.as_secs_f64())
}

/// One channel-alone round in `dir`: `--conns` producers put the same events in transactions
/// of `--batch`, each commit fsynced; the seconds from the first put to the last commit.
fn channel_round(a: &Args, dir: &Path) -> anyhow::Result<f64> {
    use file_channel::{ChannelConfig, Event, FileChannel};
    let mut cfg = ChannelConfig::new(dir);
    cfg.capacity = a.lines.max(a.batch);
    cfg.transaction_capacity = u32::try_from(a.batch)?;
    let ch = std::sync::Arc::new(FileChannel::open(cfg)?);
    let started = Instant::now();
    let producers: Vec<_> = (0..a.conns)
        .map(|c| {
            let n = share(a, c);
            let (ch, batch, body_bytes) = (ch.clone(), a.batch, a.line_bytes - 1);
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut body = vec![b'x'; body_bytes];
                let mut i = 0;
                while i < n {
                    let mut tx = ch.transaction();
                    for _ in 0..batch.min(n - i) {
                        let tag = format!("{c:04}-{i:012}-");
                        body[..tag.len()].copy_from_slice(tag.as_bytes());
                        tx.put(&Event::new(body.clone()))?;
                        i += 1;
                    }
                    tx.commit()?;
                }
                Ok(())
            })
        })
        .collect();
    for p in producers {
        p.join()
            .map_err(|_| anyhow::anyhow!("producer panicked"))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let put = ch.len();
    anyhow::ensure!(
        put == a.lines,
        "the channel holds {put} events, expected {}",
        a.lines
    );
    std::sync::Arc::try_unwrap(ch)
        .map_err(|_| anyhow::anyhow!("channel still shared"))?
        .close()?;
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    anyhow::ensure!(
        a.bin.exists(),
        "{} not found; build it with `cargo build --release -p agent --bin sluice` or pass --bin",
        a.bin.display()
    );
    anyhow::ensure!(a.rounds >= 1, "--rounds must be at least 1");
    println!(
        "{} lines x {} B (newline included) over {} connection(s), batch {}, sink {} (batch {}), {} round(s)",
        a.lines,
        a.line_bytes,
        a.conns,
        a.batch,
        if a.null_sink { "null" } else { "file_roll" },
        a.sink_batch(),
        a.rounds
    );
    let rate = |secs: f64| a.lines as f64 / secs;
    let (mut agent_total, mut channel_total, mut ratios) = (0.0, 0.0, Vec::new());
    for round in 0..a.rounds {
        let tmp = tempfile::tempdir()?;
        let (agent_dir, channel_dir) = (tmp.path().join("agent"), tmp.path().join("channel"));
        std::fs::create_dir_all(&agent_dir)?;
        let (agent_secs, channel_secs) = if round % 2 == 0 {
            let c = channel_round(&a, &channel_dir)?;
            (agent_round(&a, &agent_dir)?, c)
        } else {
            let ag = agent_round(&a, &agent_dir)?;
            (ag, channel_round(&a, &channel_dir)?)
        };
        agent_total += agent_secs;
        channel_total += channel_secs;
        let ratio = channel_secs / agent_secs;
        ratios.push(ratio);
        println!(
            "round {round} ({} first): agent end to end {:.0} events/s, channel alone {:.0} events/s, ratio {ratio:.2}",
            if round % 2 == 0 { "channel" } else { "agent" },
            rate(agent_secs),
            rate(channel_secs),
        );
    }
    println!(
        "overall: agent end to end {:.0} events/s ({:.1} MB/s), channel alone {:.0} events/s, ratio {:.2}; median ratio {:.2}",
        a.lines as f64 * a.rounds as f64 / agent_total,
        (a.lines * a.line_bytes as u64) as f64 * a.rounds as f64 / agent_total / 1e6,
        a.lines as f64 * a.rounds as f64 / channel_total,
        channel_total / agent_total,
        median(ratios)
    );
    Ok(())
}
