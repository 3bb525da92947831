//! Kafka sink throughput: a file channel pre-filled with `--events` events of `--event-bytes`
//! bytes → the `kafka` sink (`flumeBatchSize = --batch`, Flume's default acks=1) → librdkafka's
//! in-process mock cluster (3 brokers, a topic of `--partitions` partitions, on 127.0.0.1).
//!
//! Prints events/s and MB/s for draining the channel (every batch taken, sent, flushed, every
//! delivery report checked, then the take committed), and, measured in the same run, the
//! baseline: a bare rdkafka `BaseProducer` sending the same number of records to the same
//! cluster and flushing once. It then checks that the topic holds every record
//! (the sum of the partitions' high watermarks).
//!
//! ```sh
//! cargo run --release -p agent --example kafka_bench -- --events 200000 --batch 1000
//! ```

use agent::channel::{Channel, ChannelSettings, FileChannelSettings};
use agent::config::context::{Ctx, Entry};
use agent::event::Event;
use agent::runner::Status;
use agent::sink::kafka::{KafkaSink, KafkaSinkConfig};
use agent::sink::{Sink, SinkContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    events: u64,
    event_bytes: usize,
    batch: u32,
    partitions: i32,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        events: 200_000,
        event_bytes: 256,
        batch: 1000,
        partitions: 6,
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
            "--partitions" => a.partitions = v.parse()?,
            _ => anyhow::bail!("unknown option {k}"),
        }
    }
    anyhow::ensure!(a.events >= 1 && a.batch >= 1, "need events and batch >= 1");
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

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let cluster = MockCluster::new(3)?;
    cluster.create_topic("bench", a.partitions, 1)?;
    cluster.create_topic("baseline", a.partitions, 1)?;
    let servers = cluster.bootstrap_servers();
    let body = vec![b'x'; a.event_bytes];
    let mb = (a.events as f64 * a.event_bytes as f64) / 1e6;

    // Baseline: rdkafka alone.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("acks", "1")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let t = Instant::now();
    for _ in 0..a.events {
        let mut record = BaseRecord::<(), Vec<u8>>::to("baseline").payload(&body);
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
    let base_s = t.elapsed().as_secs_f64();
    drop(producer);

    // The file channel, pre-filled.
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
    let fill = Instant::now();
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
    let fill_s = fill.elapsed().as_secs_f64();

    let config = with_ctx(
        "b.sinks.k1.",
        &[
            ("kafka.bootstrap.servers", servers.clone()),
            ("kafka.topic", "bench".into()),
            ("flumeBatchSize", a.batch.to_string()),
        ],
        KafkaSinkConfig::parse,
    )?;
    let mut sink = KafkaSink::new(
        config,
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
    let sink_s = t.elapsed().as_secs_f64();
    sink.stop();
    channel.close()?;

    let stored = high_watermarks(&servers, "bench", a.partitions)?;
    anyhow::ensure!(
        stored == a.events as i64,
        "topic holds {stored} records, expected {}",
        a.events
    );
    println!(
        "events={} event_bytes={} flumeBatchSize={} partitions={} (channel pre-fill {:.1} s)",
        a.events, a.event_bytes, a.batch, a.partitions, fill_s
    );
    println!(
        "file channel -> kafka sink: {:.0} events/s, {:.1} MB/s ({:.2} s)",
        a.events as f64 / sink_s,
        mb / sink_s,
        sink_s
    );
    println!(
        "baseline rdkafka BaseProducer alone: {:.0} events/s, {:.1} MB/s ({:.2} s)",
        a.events as f64 / base_s,
        mb / base_s,
        base_s
    );
    println!("ratio sink/baseline: {:.2}", base_s / sink_s);
    Ok(())
}
