//! Helpers for the Kafka tests: parsing a component's configuration from `key = value` pairs as
//! the agent's config file would give them, a memory channel with some events in it, a Kafka
//! sink on that channel with its counters, and a Kafka source's context putting into a channel.

use agent::channel::{Channel, MemoryChannelConfig};
use agent::channel_processor::ChannelProcessor;
use agent::config::context::{Ctx, Entry};
use agent::event::Event;
use agent::metrics::SinkCounters;
use agent::selector::Selector;
use agent::sink::kafka::{KafkaSink, KafkaSinkConfig};
use agent::sink::SinkContext;
use agent::source::SourceContext;
use std::sync::Arc;

/// Entries `prefix + key = value`, on lines 2, 3, ...
pub fn entries(prefix: &str, pairs: &[(&str, &str)]) -> Vec<Entry> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Entry {
            key: format!("{prefix}{k}"),
            value: (*v).into(),
            line: i as u32 + 2,
        })
        .collect()
}

pub fn parse<T>(prefix: &str, pairs: &[(&str, &str)], f: impl Fn(&Ctx<'_>) -> T) -> T {
    let list = entries(prefix, pairs);
    let ctx = Ctx::new(
        prefix,
        list.iter()
            .map(|e| (e.key.strip_prefix(prefix).unwrap_or(""), e))
            .collect(),
        1,
    );
    let cfg = f(&ctx);
    let d = ctx.finish("test component");
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    cfg
}

pub fn memory_channel(capacity: u64) -> Channel {
    Channel::memory(
        "c1",
        MemoryChannelConfig {
            capacity,
            transaction_capacity: capacity as u32,
            keep_alive_ms: 10,
            ..MemoryChannelConfig::default()
        },
    )
}

pub fn put_all(channel: &Channel, events: &[Event]) {
    let mut tx = channel.transaction();
    for e in events {
        tx.put(e).expect("put");
    }
    tx.commit().expect("commit");
}

pub fn sink(pairs: &[(&str, &str)], channel: &Channel) -> (KafkaSink, Arc<SinkCounters>) {
    let cfg = parse("a1.sinks.k1.", pairs, KafkaSinkConfig::parse);
    let counters = Arc::new(SinkCounters::default());
    let ctx = SinkContext {
        name: "k1".into(),
        channel: channel.clone(),
        counters: counters.clone(),
    };
    (KafkaSink::new(cfg, ctx), counters)
}

/// A Kafka source's context named `r1`, its processor putting into `channel` alone.
pub fn source_ctx(channel: &Channel) -> SourceContext {
    SourceContext {
        name: "r1".into(),
        processor: Arc::new(ChannelProcessor::new(
            "r1",
            vec![],
            Selector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![channel.clone()],
        )),
        counters: Arc::default(),
    }
}
