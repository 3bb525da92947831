//! Kafka sink throughput against rdkafka alone, in one run: `--rounds` interleaved rounds, each
//! timing
//!
//! - the sink: a file channel pre-filled with `--events` events of `--event-bytes` bytes →
//!   the `kafka` sink (`flumeBatchSize = --batch`, `kafka.producer.acks = --acks`, Flume's
//!   `1` by default) drained until empty (every batch taken, sent, every delivery report
//!   checked, then the take committed);
//! - the baseline: a bare rdkafka `BaseProducer` with the very producer properties the sink's
//!   configuration made (acks, linger.ms, delivery timeout), sending the same number of records
//!   of the same size and flushing once (no channel, no per-batch wait); its queue
//!   (`queue.buffering.max.messages`) holds them all, so it never waits for room.
//!
//! The two go in alternating order (baseline first in even rounds), each round to topics of its
//! own, and every round checks that each topic holds exactly `--events` records (the sum of
//! the partitions' high watermarks). It prints each round's figures and ratio, then the overall
//! ratio (total baseline time over total sink time) and the median of the rounds' ratios.
//!
//! The brokers are librdkafka's in-process mock cluster (3 brokers, topics of `--partitions`
//! partitions) by default, so the bench runs anywhere; `--bootstrap HOST:PORT` uses a running
//! broker instead, and `--tansu PATH` starts the tansu broker at PATH (`auto`: `SLUICE_TANSU`,
//! then `PATH`, then `~/.cargo/bin`, as the tests find it) on 127.0.0.1 with in-memory storage,
//! the way the tests start it (`tests/common/tansu.rs`). Topics are created through the admin
//! API on a real broker.
//!
//! `--producer NAME=VALUE` adds a `kafka.producer.NAME` key to the sink's configuration, so to
//! the baseline's producer too.
//!
//! ```sh
//! cargo build --release -p agent --example kafka_bench
//! target/release/examples/kafka_bench --events 200000 --batch 100 --rounds 5
//! target/release/examples/kafka_bench --events 200000 --batch 100 --rounds 5 --tansu auto
//! ```

#[path = "../tests/common/tansu.rs"]
mod tansu;

use agent::channel::{Channel, ChannelSettings, FileChannelSettings};
use agent::config::context::{Ctx, Entry};
use agent::event::Event;
use agent::runner::Status;
use agent::sink::kafka::{KafkaSink, KafkaSinkConfig};
use agent::sink::{Sink, SinkContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::ClientConfig;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    events: u64,
    event_bytes: usize,
    batch: u32,
    partitions: i32,
    rounds: u32,
    acks: String,
    bootstrap: Option<String>,
    tansu: Option<String>,
    /// `--producer name=value`: more `kafka.producer.*` keys for the sink (and so the baseline).
    producer: Vec<(String, String)>,
}

const USAGE: &str = "kafka_bench [--events N (200000)] [--event-bytes N (256)] [--batch N (100)] \
[--partitions N (6)] [--rounds N (5)] [--acks 1|all|0 (1)] [--producer NAME=VALUE]... \
[--bootstrap HOST:PORT | --tansu PATH|auto]";

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        events: 200_000,
        event_bytes: 256,
        batch: 100,
        partitions: 6,
        rounds: 5,
        acks: "1".into(),
        bootstrap: None,
        tansu: None,
        producer: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--help" || k == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{k} needs a value\n{USAGE}"))?;
        match k.as_str() {
            "--events" => a.events = v.parse()?,
            "--event-bytes" => a.event_bytes = v.parse()?,
            "--batch" => a.batch = v.parse()?,
            "--partitions" => a.partitions = v.parse()?,
            "--rounds" => a.rounds = v.parse()?,
            "--acks" => a.acks = v,
            "--bootstrap" => a.bootstrap = Some(v),
            "--tansu" => a.tansu = Some(v),
            "--producer" => {
                let (name, value) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--producer needs name=value, got {v}"))?;
                a.producer.push((
                    format!("kafka.producer.{}", name.trim()),
                    value.trim().into(),
                ));
            }
            _ => anyhow::bail!("unknown option {k}\n{USAGE}"),
        }
    }
    anyhow::ensure!(
        a.events >= 1 && a.batch >= 1 && a.rounds >= 1 && a.partitions >= 1,
        "need events, batch, rounds and partitions >= 1"
    );
    anyhow::ensure!(
        a.bootstrap.is_none() || a.tansu.is_none(),
        "--bootstrap and --tansu exclude each other"
    );
    Ok(a)
}

/// A context over `pairs` under `prefix`; fails on any configuration problem.
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

/// A tansu broker process on 127.0.0.1 with in-memory storage, killed when dropped.
struct Tansu {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Tansu {
    fn start(path: &str) -> anyhow::Result<Self> {
        let bin = if path == "auto" {
            tansu::tansu_binary().ok_or_else(|| {
                anyhow::anyhow!(
                    "no tansu in SLUICE_TANSU, on PATH or in ~/.cargo/bin (cargo install \
                     --locked tansu@{} --features dynostore)",
                    tansu::TANSU_VERSION
                )
            })?
        } else {
            PathBuf::from(path)
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let child = tansu::spawn(&bin, dir.path(), &dir.path().join("tansu.log"), port, port)
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
        let broker = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(broker)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the records go: the mock cluster or a real broker.
enum Brokers {
    Mock(MockCluster<'static, DefaultProducerContext>),
    Real {
        servers: String,
        _tansu: Option<Tansu>,
    },
}

impl Brokers {
    fn servers(&self) -> String {
        match self {
            Self::Mock(c) => c.bootstrap_servers(),
            Self::Real { servers, .. } => servers.clone(),
        }
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        match self {
            Self::Mock(c) => Ok(c.create_topic(topic, partitions, 1)?),
            Self::Real { servers, .. } => {
                tansu::create_topic(servers, topic, partitions).map_err(anyhow::Error::msg)
            }
        }
    }
}

fn high_watermarks(servers: &str, topic: &str, partitions: i32) -> anyhow::Result<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", "bench-check")
        .create()?;
    let mut sum = 0;
    for p in 0..partitions {
        sum += c.fetch_watermarks(topic, p, Duration::from_secs(10))?.1;
    }
    Ok(sum)
}

/// The sink's configuration for topic `topic`.
fn sink_config(a: &Args, servers: &str, topic: &str) -> anyhow::Result<KafkaSinkConfig> {
    let mut pairs = vec![
        ("kafka.bootstrap.servers", servers.to_owned()),
        ("kafka.topic", topic.to_owned()),
        ("flumeBatchSize", a.batch.to_string()),
        ("kafka.producer.acks", a.acks.clone()),
    ];
    pairs.extend(a.producer.iter().map(|(k, v)| (k.as_str(), v.clone())));
    with_ctx("b.sinks.k1.", &pairs, KafkaSinkConfig::parse)
}

/// rdkafka alone: seconds to send `--events` records with the sink's producer properties and
/// flush once.
fn run_baseline(a: &Args, brokers: &Brokers, topic: &str) -> anyhow::Result<f64> {
    let servers = brokers.servers();
    let props = sink_config(a, &servers, topic)?.producer;
    // One local setting differs: the queue holds every record, so the baseline never waits
    // for room (the sink never holds more than two batches).
    let producer: BaseProducer = agent::kafka::client_config(
        &props,
        &[
            ("bootstrap.servers", servers.clone()),
            (
                "queue.buffering.max.messages",
                a.events.max(100_000).to_string(),
            ),
        ],
    )
    .create()?;
    let body = vec![b'x'; a.event_bytes];
    let t = Instant::now();
    for _ in 0..a.events {
        let mut record = BaseRecord::<(), Vec<u8>>::to(topic).payload(&body);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(t.elapsed().as_secs_f64())
}

/// The sink: seconds to drain a pre-filled file channel into `topic`.
fn run_sink(a: &Args, brokers: &Brokers, topic: &str) -> anyhow::Result<f64> {
    let servers = brokers.servers();
    let dir = tempfile::tempdir()?;
    let settings = with_ctx(
        "b.channels.c1.",
        &[
            ("checkpointDir", dir.path().join("cp").display().to_string()),
            ("dataDirs", dir.path().join("data").display().to_string()),
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
    let mut sink = KafkaSink::new(
        sink_config(a, &servers, topic)?,
        SinkContext {
            name: "k1".into(),
            channel: channel.clone(),
            counters: Arc::default(),
        },
    );
    let t = Instant::now();
    loop {
        match sink.process() {
            Ok(Status::Ready) => {}
            Ok(Status::Backoff) if channel.is_empty() => break,
            Ok(Status::Backoff) => {}
            Err(e) => anyhow::bail!("sink failed: {e}"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    sink.stop();
    channel.close()?;
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let brokers = match (&a.bootstrap, &a.tansu) {
        (Some(servers), _) => Brokers::Real {
            servers: servers.clone(),
            _tansu: None,
        },
        (None, Some(path)) => {
            let t = Tansu::start(path)?;
            Brokers::Real {
                servers: format!("127.0.0.1:{}", t.port),
                _tansu: Some(t),
            }
        }
        (None, None) => Brokers::Mock(MockCluster::new(3)?),
    };
    let where_to = match &brokers {
        Brokers::Mock(_) => "librdkafka's mock cluster (3 brokers)".to_owned(),
        Brokers::Real { servers, _tansu } => match _tansu {
            Some(_) => format!("tansu at {servers} (memory storage)"),
            None => format!("brokers at {servers}"),
        },
    };
    println!(
        "events={} event_bytes={} flumeBatchSize={} acks={} partitions={} rounds={} -> {where_to}",
        a.events, a.event_bytes, a.batch, a.acks, a.partitions, a.rounds
    );
    let mb = (a.events as f64 * a.event_bytes as f64) / 1e6;
    let (mut sink_total, mut base_total, mut ratios) = (0.0, 0.0, Vec::new());
    let mut shortfalls = Vec::new();
    for round in 0..a.rounds {
        let (sink_topic, base_topic) = (format!("bench-{round}"), format!("baseline-{round}"));
        brokers.create_topic(&sink_topic, a.partitions)?;
        brokers.create_topic(&base_topic, a.partitions)?;
        let (sink_s, base_s) = if round % 2 == 0 {
            let b = run_baseline(&a, &brokers, &base_topic)?;
            (run_sink(&a, &brokers, &sink_topic)?, b)
        } else {
            let s = run_sink(&a, &brokers, &sink_topic)?;
            (s, run_baseline(&a, &brokers, &base_topic)?)
        };
        for topic in [&sink_topic, &base_topic] {
            // A real broker may publish its high watermarks a little after acknowledging.
            let settle = Instant::now() + Duration::from_secs(10);
            let mut stored = high_watermarks(&brokers.servers(), topic, a.partitions)?;
            while stored != a.events as i64 && Instant::now() < settle {
                std::thread::sleep(Duration::from_millis(500));
                stored = high_watermarks(&brokers.servers(), topic, a.partitions)?;
            }
            if stored != a.events as i64 {
                shortfalls.push(format!(
                    "round {round}: topic {topic} holds {stored} records, expected {}",
                    a.events
                ));
            }
        }
        let ratio = base_s / sink_s;
        println!(
            "round {round} ({} first): sink {:.0} events/s ({:.1} MB/s, {:.2} s), rdkafka alone {:.0} events/s ({:.2} s), ratio {ratio:.2}",
            if round % 2 == 0 { "baseline" } else { "sink" },
            a.events as f64 / sink_s,
            mb / sink_s,
            sink_s,
            a.events as f64 / base_s,
            base_s
        );
        sink_total += sink_s;
        base_total += base_s;
        ratios.push(ratio);
    }
    let all = a.events as f64 * f64::from(a.rounds);
    println!(
        "overall: sink {:.0} events/s, rdkafka alone {:.0} events/s, ratio {:.2}; median ratio {:.2} (min {:.2}, max {:.2})",
        all / sink_total,
        all / base_total,
        base_total / sink_total,
        median(ratios.clone()),
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    anyhow::ensure!(shortfalls.is_empty(), "{}", shortfalls.join("\n"));
    Ok(())
}
