//! `avro_hop_bench`: throughput of an avro hop between two `sluice` agents, and what TLS costs
//! on it, measured as the ratio of TLS to plaintext throughput in one run, interleaved so that a
//! shared, noisy machine cannot bias it (the method of `append_ratio`).
//!
//! ```text
//! tier 1: netcat → file channel → avro sink ──Avro IPC (plain | TLS)──► tier 2: avro source → file channel → file_roll
//! ```
//!
//! Two such pairs run side by side, identical but for `ssl = true` (and the keys) on the TLS
//! pair's sink and source. The server certificate and CA are made with `openssl` in the run's
//! temporary directory (a PEM keystore for the source, the CA as a PEM truststore for the
//! sink, which verifies the certificate against `127.0.0.1`). Each round, for each pair in an
//! order rotated every round: with its tier 2 stopped, tier 1's file channel is filled with
//! `--events` events through netcat; then tier 2 starts and the avro sink drains tier 1 into it
//! (each batch taken, sent as one `appendBatch`, committed and fsynced in tier 2, answered `OK`,
//! then the take committed in tier 1); the figure is events/s of tier 1's
//! `EventDrainSuccessCount` from its first delivered batch to its last (so tier 2's start and
//! the sink's reconnect back-off are not counted); then tier 2 is stopped. Only one pair works
//! at a time. At the end each tier 2 runs once more to write out what its channel holds, every
//! event is checked to be in its output, and the median
//! over rounds of "TLS events/s ÷ plaintext events/s of the same round" is printed.
//!
//! With `--only plaintext` (or `--only tls`) a single pair is started and measured, and its
//! events/s per round and median are printed (no ratio): `--only plaintext --rounds 1` is one
//! fill and one drain of one plaintext hop, what the `crates/agent/examples/avro_hop_bench.rs`
//! example measured before this program took its place.
//!
//! ```sh
//! cargo build --release -p agent --bin sluice && cargo build --release -p sluice-benches --bin avro_hop_bench
//! target/release/avro_hop_bench --rounds 7 --events 100000
//! target/release/avro_hop_bench --only plaintext --rounds 1 --events 500000 --compression deflate
//! ```
//!
//! Options: `--help` (the `USAGE` text below). Needs `openssl` on the `PATH` unless
//! `--only plaintext`. About 80 s with the defaults: most of it is the sink's 5 s back-off
//! after tier 2 was found stopped, which is not measured.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "\
usage: avro_hop_bench [OPTIONS]

An avro hop between two sluice agents (netcat -> file -> avro sink => avro source -> file ->
file_roll), a plaintext pair and a TLS pair interleaved in rounds; prints events/s per round
and the median TLS / plaintext ratio.

options:
  --rounds N             rounds (7)
  --events N             events per pair per round (100000)
  --body-bytes N         body bytes per event, at least 24 (256)
  --batch N              the avro sink's batch-size (100, Flume's default)
  --compression TYPE     none or deflate (level 6), on the sink and source of every pair (none)
  --only PAIR            plaintext or tls: run and report that pair alone (both)
  --bin PATH             the sluice binary (the `sluice` beside this binary)
  -h, --help             print this and exit

Needs openssl on the PATH unless --only plaintext.
";

struct Args {
    rounds: usize,
    events: u64,
    body_bytes: usize,
    batch: u64,
    /// `compression-type` of every avro sink and source: `none` or `deflate`.
    compression: String,
    /// The one pair to run (`plain` or `tls`); both when `None`.
    only: Option<&'static str>,
    bin: PathBuf,
}

fn parse_args() -> Result<Args, Error> {
    let default_bin = std::env::current_exe()?
        .parent()
        .map(|d| d.join("sluice"))
        .unwrap_or_else(|| PathBuf::from("sluice"));
    let mut a = Args {
        rounds: 7,
        events: 100_000,
        body_bytes: 256,
        batch: 100,
        compression: "none".into(),
        only: None,
        bin: default_bin,
    };
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        if key == "-h" || key == "--help" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{key} needs a value"))?;
        match key.as_str() {
            "--rounds" => a.rounds = value.parse()?,
            "--events" => a.events = value.parse()?,
            "--body-bytes" => a.body_bytes = value.parse()?,
            "--batch" => a.batch = value.parse()?,
            "--compression" => match value.as_str() {
                "none" | "deflate" => a.compression = value,
                _ => return Err("--compression must be none or deflate".into()),
            },
            "--only" => {
                a.only = Some(match value.as_str() {
                    "plaintext" => "plain",
                    "tls" => "tls",
                    _ => return Err("--only must be plaintext or tls".into()),
                })
            }
            "--bin" => a.bin = PathBuf::from(value),
            _ => return Err(format!("unknown option {key}; see --help").into()),
        }
    }
    if a.body_bytes < 24 {
        return Err("--body-bytes must be at least 24".into());
    }
    if a.rounds == 0 || a.events == 0 || a.batch == 0 {
        return Err("--rounds, --events and --batch must be at least 1".into());
    }
    Ok(a)
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `openssl` in `dir` with the whitespace-separated `args`, failing with its output
/// unless it succeeds.
fn openssl(dir: &Path, args: &str) -> Result<(), Error> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl (install it): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with openssl in `dir`:
/// returns (the PEM keystore with the server's key and chain, the CA's certificate).
fn make_pki(dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
    std::fs::create_dir_all(dir)?;
    openssl(
        dir,
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=avro_hop_bench_CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
         -keyout ca.key -out ca.pem",
    )?;
    openssl(
        dir,
        "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr",
    )?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        dir,
        "x509 -req -days 2 -set_serial 2 -in server.csr -CA ca.pem -CAkey ca.key \
         -extfile server.ext -out server.pem",
    )?;
    let mut keystore = Vec::new();
    for part in ["server.key", "server.pem", "ca.pem"] {
        keystore.extend(std::fs::read(dir.join(part))?);
    }
    std::fs::write(dir.join("keystore.pem"), keystore)?;
    Ok((dir.join("keystore.pem"), dir.join("ca.pem")))
}

/// One tier-1/tier-2 pair, plaintext or TLS.
struct Pair {
    name: &'static str,
    dir: PathBuf,
    netcat_port: u16,
    metrics_port: u16,
    /// Runs for the whole bench; stopped when the pair is dropped.
    _tier1: Agent,
    tier2_conf: PathBuf,
    /// Tier 1's `EventDrainSuccessCount` before this round.
    drained_before: u64,
    rates: Vec<f64>,
}

fn tier1_conf(a: &Args, dir: &Path, netcat_port: u16, avro_port: u16, tls: &str) -> String {
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
{tls}",
        dir = dir.display(),
        max_line = a.body_bytes * 2,
        capacity = a.events.max(1_000_000),
        txn = a.batch.max(1000),
        batch = a.batch,
        compression = a.compression,
    )
}

fn tier2_conf(a: &Args, dir: &Path, avro_port: u16, tls: &str) -> String {
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
{tls}t2.channels.c1.type = file
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

/// Starts `sluice agent -n NAME -f CONF`, its log (errors only: the sink's refused connects
/// while tier 2 is stopped are expected) appended to `NAME.log` beside `conf`.
fn spawn(bin: &Path, conf: &Path, name: &str, metrics_port: Option<u16>) -> Result<Agent, Error> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(conf.with_file_name(format!("{name}.log")))?;
    let mut cmd = Command::new(bin);
    cmd.args(["agent", "-n", name, "-f"])
        .arg(conf)
        .args(["--log-level", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(p) = metrics_port {
        cmd.args(["--metrics-http", &format!("127.0.0.1:{p}")]);
    }
    Ok(Agent(cmd.spawn()?))
}

fn connect(port: u16) -> Result<TcpStream, Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot connect to 127.0.0.1:{port}: {e}").into()),
        }
    }
}

/// Puts events `first..first + n` through tier 1's netcat source; returns how many were not
/// answered `OK`.
fn fill(port: u16, first: u64, n: u64, body_bytes: usize) -> Result<u64, Error> {
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
    for i in first..first + n {
        let tag = format!("{i:012}-");
        line[..tag.len()].copy_from_slice(tag.as_bytes());
        w.write_all(&line)?;
    }
    w.flush()?;
    answers
        .join()
        .map_err(|_| "the answer reader panicked".into())
}

/// Tier 1's `EventDrainSuccessCount`, read from its metrics endpoint (tier 1 has one sink).
fn drained(metrics_port: u16) -> Result<u64, Error> {
    let mut s = connect(metrics_port)?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let key = "\"EventDrainSuccessCount\"";
    let at = text
        .find(key)
        .ok_or("no EventDrainSuccessCount in the metrics")?;
    let value: String = text[at + key.len()..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    Ok(value.parse()?)
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

/// A running `sluice agent`, stopped with SIGTERM (a clean close of its channels) and waited
/// for when dropped, so that no agent outlives the run, whatever fails.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.0.id().to_string())
                .status();
            let _ = self.0.wait();
        }
    }
}

/// One round of one pair: fill tier 1 (tier 2 stopped), start tier 2, time the drain, stop
/// tier 2. Returns events/s.
fn measure(a: &Args, pair: &mut Pair, first_event: u64) -> Result<f64, Error> {
    let bad = fill(pair.netcat_port, first_event, a.events, a.body_bytes)?;
    if bad != 0 {
        return Err(format!("{}: {bad} events were not accepted by tier 1", pair.name).into());
    }
    let target = pair.drained_before + a.events;
    let tier2 = spawn(&a.bin, &pair.tier2_conf, "t2", None)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64)> = None;
    let last = loop {
        let n = drained(pair.metrics_port)?;
        let now = Instant::now();
        if n > pair.drained_before && first.is_none() {
            first = Some((now, n));
        }
        if n >= target {
            break now;
        }
        if now >= deadline {
            return Err(format!("{}: only {n} of {target} delivered", pair.name).into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(tier2);
    let (t0, n0) = first.unwrap_or((last, target));
    pair.drained_before = target;
    let secs = last.duration_since(t0).as_secs_f64().max(1e-9);
    Ok((target - n0) as f64 / secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() -> Result<(), Error> {
    let a = parse_args()?;
    if !a.bin.exists() {
        return Err(format!(
            "{} not found; build it with `cargo build --release -p agent --bin sluice` or pass --bin",
            a.bin.display()
        )
        .into());
    }
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/avro-hop-bench");
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::tempdir_in(&base)?;
    let result = run(&a, tmp.path());
    if result.is_err() {
        let kept = tmp.keep();
        eprintln!(
            "the configurations and the agents' logs are kept in {}",
            kept.display()
        );
    }
    result
}

/// The whole run in `dir`: the pairs started (both, or the one of `--only`), the rounds, the
/// final check.
fn run(a: &Args, dir: &Path) -> Result<(), Error> {
    let names: &[&'static str] = match &a.only {
        None => &["plain", "tls"],
        Some(name) => std::slice::from_ref(name),
    };
    // The certificates only when a TLS pair runs (so `--only plaintext` needs no openssl).
    let pki = if names.contains(&"tls") {
        Some(make_pki(&dir.join("pki"))?)
    } else {
        None
    };

    let mut pairs = Vec::new();
    for &name in names {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let (netcat_port, avro_port, metrics_port) = (free_port()?, free_port()?, free_port()?);
        let (sink_tls, source_tls) = if let (Some((keystore, ca)), "tls") = (&pki, name) {
            (
                format!(
                    "t1.sinks.k1.ssl = true\nt1.sinks.k1.truststore = {}\n\
                     t1.sinks.k1.truststore-type = PEM\n",
                    ca.display()
                ),
                format!(
                    "t2.sources.r1.ssl = true\nt2.sources.r1.keystore = {}\n\
                     t2.sources.r1.keystore-type = PEM\n",
                    keystore.display()
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let c1 = dir.join("t1.conf");
        std::fs::write(&c1, tier1_conf(a, &dir, netcat_port, avro_port, &sink_tls))?;
        let tier2_conf_path = dir.join("t2.conf");
        std::fs::write(
            &tier2_conf_path,
            tier2_conf(a, &dir, avro_port, &source_tls),
        )?;
        let tier1 = spawn(&a.bin, &c1, "t1", Some(metrics_port))?;
        pairs.push(Pair {
            name,
            dir,
            netcat_port,
            metrics_port,
            _tier1: tier1,
            tier2_conf: tier2_conf_path,
            drained_before: 0,
            rates: Vec::new(),
        });
    }

    let both = pairs.len() == 2;
    println!(
        "avro hop, {}: {} rounds of {} events per pair, {}-byte bodies, batch-size {}, compression {}",
        match a.only {
            None => "TLS vs plaintext",
            Some("tls") => "TLS only",
            Some(_) => "plaintext only",
        },
        a.rounds,
        a.events,
        a.body_bytes,
        a.batch,
        a.compression
    );
    let mut header = String::from("round");
    for pair in &pairs {
        header += &format!("  {} events/s", pair.name);
    }
    if both {
        header += "  tls/plain";
    }
    println!("{header}");
    let mut ratios = Vec::new();
    for round in 0..a.rounds {
        let first_event = round as u64 * a.events;
        // The order rotates every round, so that neither pair always goes first.
        for k in 0..pairs.len() {
            let i = (k + round) % pairs.len();
            let rate = measure(a, &mut pairs[i], first_event)?;
            pairs[i].rates.push(rate);
        }
        let mut row = format!("{round:>5}");
        for pair in &pairs {
            let width = pair.name.len() + " events/s".len();
            row += &format!("  {:>width$.0}", pair.rates[round]);
        }
        if both {
            let ratio = pairs[1].rates[round] / pairs[0].rates[round];
            ratios.push(ratio);
            row += &format!("  {ratio:>9.3}");
        }
        println!("{row}");
    }

    let total = a.rounds as u64 * a.events;
    let mut failures = Vec::new();
    for pair in pairs {
        // Tier 2 was stopped right after its last `OK`: what its channel still holds is
        // written out now.
        let tier2 = spawn(&a.bin, &pair.tier2_conf, "t2", None)?;
        let out = pair.dir.join("out");
        let wait = Instant::now() + Duration::from_secs(120);
        while output_lines(&out) < total && Instant::now() < wait {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(tier2);
        let delivered = output_lines(&out);
        if delivered != total {
            failures.push(format!(
                "{}: tier 2 wrote {delivered} of {total} events",
                pair.name
            ));
        }
        let rate = median(pair.rates.clone());
        println!(
            "{}: median {rate:.0} events/s ({:.1} MB/s of bodies)",
            pair.name,
            rate * a.body_bytes as f64 / 1e6
        );
    }
    if !failures.is_empty() {
        return Err(failures.join("; ").into());
    }
    if !both {
        return Ok(());
    }
    println!(
        "TLS / plaintext, median over {} rounds: {:.3} (target >= 0.8)",
        a.rounds,
        median(ratios)
    );
    Ok(())
}
