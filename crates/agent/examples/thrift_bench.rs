//! Thrift source benchmark: `appendBatch` calls from `--conns` blocking clients (Sluice's own
//! `thrift_rpc` client) → thrift source → file channel (fsync every commit) → null sink.
//!
//! Starts the real `sluice` binary on a temporary configuration, sends `--events` events of
//! `--body-bytes` bytes (one header each) in calls of `--batch` events, each call answered `OK`
//! only after its durable commit, and prints calls/s, events/s and MB/s of bodies measured from
//! the first call to the last `OK`.
//!
//! ```sh
//! cargo build --release -p agent --bin sluice --example thrift_bench
//! target/release/examples/thrift_bench --events 1000000 --conns 4 --batch 1000
//! ```
//!
//! `--protocol compact|binary` (default compact) and `--bin PATH` (default: `sluice` beside
//! the `examples/` directory of this executable) can be given.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thrift_rpc::client::{ClientConfig, Connection};
use thrift_rpc::wire::Status;
use thrift_rpc::{EventRef, Protocol, ThriftFlumeEvent};

struct Args {
    events: u64,
    conns: u64,
    batch: u64,
    body_bytes: usize,
    protocol: Protocol,
    bin: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let default_bin = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("sluice"))
        .unwrap_or_else(|| PathBuf::from("sluice"));
    let mut a = Args {
        events: 1_000_000,
        conns: 4,
        batch: 1000,
        body_bytes: 256,
        protocol: Protocol::Compact,
        bin: default_bin,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--events" => a.events = v.parse()?,
            "--conns" => a.conns = v.parse()?,
            "--batch" => a.batch = v.parse()?,
            "--body-bytes" => a.body_bytes = v.parse()?,
            "--protocol" => {
                a.protocol = match v.as_str() {
                    "compact" => Protocol::Compact,
                    "binary" => Protocol::Binary,
                    _ => anyhow::bail!("--protocol is compact or binary"),
                }
            }
            "--bin" => a.bin = PathBuf::from(v),
            _ => anyhow::bail!("unknown option {k}"),
        }
    }
    anyhow::ensure!(
        a.conns >= 1 && a.batch >= 1,
        "--conns and --batch must be at least 1"
    );
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let dir = tempfile::tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = dir.path().join("bench.conf");
    std::fs::write(
        &conf,
        format!(
            "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = thrift
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.protocol = {protocol}
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = checkpoint
a1.channels.c1.dataDirs = data
a1.channels.c1.capacity = 100000000
a1.channels.c1.transactionCapacity = {batch}
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = {batch}
",
            protocol = a.protocol.as_str(),
            batch = a.batch
        ),
    )?;
    let mut child = Command::new(&a.bin)
        .current_dir(dir.path())
        .args(["agent", "-n", "a1", "-f"])
        .arg(&conf)
        .args(["--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let config = ClientConfig {
        hostname: "127.0.0.1".into(),
        port,
        protocol: a.protocol,
        connect_timeout_ms: 5000,
        request_timeout_ms: 60_000,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Connection::connect(&config).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let per_conn = a.events / a.conns;
    let started = Instant::now();
    let workers: Vec<_> = (0..a.conns)
        .map(|w| {
            let config = config.clone();
            let (batch, body_bytes) = (a.batch, a.body_bytes);
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut c = Connection::connect(&config)?;
                let owned: Vec<ThriftFlumeEvent> = (0..batch)
                    .map(|i| {
                        ThriftFlumeEvent::new(vec![b'x'; body_bytes])
                            .with_header("n", i.to_string())
                    })
                    .collect();
                let events: Vec<EventRef<'_>> = owned.iter().map(EventRef::from).collect();
                let mut sent = 0;
                let mut calls = 0;
                while sent < per_conn {
                    let n = batch.min(per_conn - sent) as usize;
                    let status = c.append_batch(&events[..n])?;
                    anyhow::ensure!(status == Status::Ok, "worker {w}: {status:?}");
                    sent += n as u64;
                    calls += 1;
                }
                Ok(calls)
            })
        })
        .collect();
    let mut calls = 0;
    for w in workers {
        calls += w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let events = per_conn * a.conns;
    println!(
        "thrift source ({}): {events} events of {} bytes in {calls} appendBatch calls over {} connections: {secs:.2} s, {:.0} calls/s, {:.0} events/s, {:.1} MB/s of bodies",
        a.protocol.as_str(),
        a.body_bytes,
        a.conns,
        calls as f64 / secs,
        events as f64 / secs,
        (events as f64 * a.body_bytes as f64) / secs / 1e6
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait()?;
    Ok(())
}
