//! What the Kafka sink, source and channel share: turning Flume's `kafka.producer.*` /
//! `kafka.consumer.*` keys (Java client property names) into librdkafka properties, and
//! checking each one against librdkafka at configuration time so a bad key is reported with its
//! file and line instead of failing when the agent starts.
//!
//! Most Java names are also librdkafka names (`acks`, `linger.ms`, `batch.size`,
//! `compression.type`, `client.id`, `retries`, `delivery.timeout.ms`, `session.timeout.ms`,
//! `auto.offset.reset`, ...) and pass through unchanged. A few are translated
//! ([`translate`]); Java-only settings that have no librdkafka meaning (serializer classes,
//! partitioner and interceptor classes, `max.block.ms`, `max.poll.records`) are rejected with a
//! message naming the key, except the serializer classes Flume itself sets, which describe what
//! Sluice does anyway. Keys with a security meaning (`security.protocol`, `ssl.*`, `sasl.*`:
//! every key [`crate::config::security::security_family`] recognises) never pass through:
//! [`security`] maps each one explicitly (TLS truststores and keystores, SASL PLAIN and SCRAM
//! from `sasl.jaas.config`, parsed by [`jaas`]) or refuses it with the reason. Anything else
//! librdkafka does not know is rejected with librdkafka's own explanation.

pub mod jaas;
pub mod security;

use crate::config::context::Ctx;
use crate::config::security::security_family;
use rdkafka::config::ClientConfig;
use std::fmt;

/// Whether the properties are for a producer (sink) or a consumer (source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `kafka.producer.*`.
    Producer,
    /// `kafka.consumer.*`.
    Consumer,
}

impl Role {
    /// The key prefix under the component.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Producer => "kafka.producer.",
            Self::Consumer => "kafka.consumer.",
        }
    }
}

/// One librdkafka property and the configuration key it came from. Its `Debug` hides the
/// values of [`security::SECRET_PROPERTIES`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClientProperty {
    /// librdkafka's name.
    pub name: String,
    /// The value.
    pub value: String,
    /// The key relative to the component (`kafka.producer.linger.ms`), for messages.
    pub key: String,
}

impl ClientProperty {
    /// Whether the value is a secret (a password or private key), never to be shown.
    pub fn is_secret(&self) -> bool {
        security::SECRET_PROPERTIES.contains(&self.name.as_str())
    }
}

impl fmt::Debug for ClientProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &dyn fmt::Debug = if self.is_secret() {
            &"<redacted>"
        } else {
            &self.value
        };
        f.debug_struct("ClientProperty")
            .field("name", &self.name)
            .field("value", value)
            .field("key", &self.key)
            .finish()
    }
}

/// The Java serializer classes Flume sets itself; naming them is accepted and changes nothing.
const FLUME_DEFAULT_CLASSES: &[(&str, &str)] = &[
    (
        "key.serializer",
        "org.apache.kafka.common.serialization.StringSerializer",
    ),
    (
        "value.serializer",
        "org.apache.kafka.common.serialization.ByteArraySerializer",
    ),
    (
        "key.deserializer",
        "org.apache.kafka.common.serialization.StringDeserializer",
    ),
    (
        "value.deserializer",
        "org.apache.kafka.common.serialization.ByteArrayDeserializer",
    ),
];

/// What a Java property becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Translation {
    /// This librdkafka property with this value.
    Set(String, String),
    /// Nothing (a Flume default that describes what Sluice does).
    Ignore,
    /// Refused, with the reason.
    Reject(String),
}

/// Translates one Java client property `name = value` for `role`.
pub fn translate(role: Role, name: &str, value: &str) -> Translation {
    let value = value.trim();
    if let Some((_, class)) = FLUME_DEFAULT_CLASSES.iter().find(|(n, _)| *n == name) {
        return if value == *class {
            Translation::Ignore
        } else {
            Translation::Reject(format!(
                "Java (de)serializer classes cannot be loaded; Sluice sends keys as UTF-8 strings \
                 and values as bytes (Flume's {class})"
            ))
        };
    }
    match (role, name) {
        (_, "interceptor.classes" | "metric.reporters") => Translation::Reject(format!(
            "{name} names Java classes, which librdkafka cannot use"
        )),
        (Role::Producer, "partitioner.class") => Translation::Reject(
            "Java partitioner classes cannot be loaded; use partitionIdHeader, defaultPartitionId or \
             librdkafka's `partitioner` property"
                .into(),
        ),
        (Role::Producer, "max.block.ms") => Translation::Reject(
            "librdkafka never blocks a send; the sink waits for the queue itself (bounded by \
             delivery.timeout.ms)"
                .into(),
        ),
        (Role::Producer, "buffer.memory") => match value.parse::<u64>() {
            Ok(bytes) => Translation::Set(
                "queue.buffering.max.kbytes".into(),
                (bytes / 1024).max(1).to_string(),
            ),
            Err(_) => Translation::Reject(format!("expected a number of bytes, got \"{value}\"")),
        },
        (Role::Producer, "max.request.size") => {
            Translation::Set("message.max.bytes".into(), value.into())
        }
        (Role::Consumer, "max.poll.records") => Translation::Reject(
            "librdkafka has no max.poll.records; the source's batchSize bounds a batch".into(),
        ),
        (Role::Consumer, "partition.assignment.strategy") => {
            let strategies: Vec<String> = value
                .split(',')
                .map(|s| {
                    let s = s.trim();
                    match s.rsplit('.').next().unwrap_or(s) {
                        "RangeAssignor" => "range".to_owned(),
                        "RoundRobinAssignor" => "roundrobin".to_owned(),
                        "CooperativeStickyAssignor" => "cooperative-sticky".to_owned(),
                        _ => s.to_owned(),
                    }
                })
                .collect();
            Translation::Set(name.into(), strategies.join(","))
        }
        _ => Translation::Set(name.into(), value.into()),
    }
}

/// Reads every `kafka.producer.*` or `kafka.consumer.*` key: security keys through
/// [`security::security_properties`], the others translated; each result is checked by
/// librdkafka. Problems are recorded on `ctx` naming the key. `reserved` are librdkafka names
/// the component sets itself: giving them here is an error pointing at the Flume key to use.
pub fn client_properties(
    ctx: &Ctx<'_>,
    role: Role,
    reserved: &[(&str, &str)],
) -> Vec<ClientProperty> {
    let prefix = role.prefix();
    let (secured, ordinary): (Vec<_>, Vec<_>) = ctx
        .prefixed(prefix)
        .into_iter()
        .partition(|(name, _)| security_family(name).is_some());
    let mut out = Vec::new();
    for p in security::security_properties(ctx, role, &secured) {
        // The values are checked without showing them: librdkafka's message repeats the value.
        if let Err(e) = ClientConfig::new()
            .set(p.name.as_str(), p.value.as_str())
            .create_native_config()
        {
            let why = if p.is_secret() {
                format!("librdkafka refuses its {}", p.name)
            } else {
                format!("librdkafka refuses it: {e}")
            };
            ctx.error(&p.key, why);
            continue;
        }
        out.push(p);
    }
    for (name, entry) in ordinary {
        let key = format!("{prefix}{name}");
        if let Some((_, instead)) = reserved.iter().find(|(r, _)| *r == name) {
            ctx.error(&key, format!("set by the component; use {instead} instead"));
            continue;
        }
        match translate(role, name, &entry.value) {
            Translation::Ignore => {}
            Translation::Reject(why) => ctx.error(&key, format!("not supported: {why}")),
            Translation::Set(rd_name, value) => {
                if let Err(e) = ClientConfig::new()
                    .set(rd_name.as_str(), value.as_str())
                    .create_native_config()
                {
                    ctx.error(&key, format!("librdkafka refuses it: {e}"));
                    continue;
                }
                out.push(ClientProperty {
                    name: rd_name,
                    value,
                    key,
                });
            }
        }
    }
    out
}

/// The value of librdkafka property `name` (or its alias) among `props`, if given.
pub fn find<'a>(props: &'a [ClientProperty], names: &[&str]) -> Option<&'a str> {
    props
        .iter()
        .rev()
        .find(|p| names.contains(&p.name.as_str()))
        .map(|p| p.value.as_str())
}

/// Whether `props` give the producer a linger above zero (`linger.ms` or its alias
/// `queue.buffering.max.ms`; our defaults set 0, as Java's producer has). A producer that
/// lingers must be flushed before its records are waited for, or every wait lasts the linger;
/// one that does not sends at once, and a flush would only wake its broker threads.
pub fn lingers(props: &[ClientProperty]) -> bool {
    find(props, &["linger.ms", "queue.buffering.max.ms"])
        .is_none_or(|ms| ms.trim().parse::<f64>().map_or(true, |ms| ms > 0.0))
}

/// A librdkafka configuration from `props` plus `fixed` (which win).
pub fn client_config(props: &[ClientProperty], fixed: &[(&str, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    for p in props {
        c.set(p.name.as_str(), p.value.as_str());
    }
    for (k, v) in fixed {
        c.set(*k, v.as_str());
    }
    c
}

/// Splits Flume's comma-separated list (`kafka.topics`), trimming blanks.
pub fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_support::{ctx, entries};

    #[test]
    fn java_names_pass_through_translate_or_are_rejected_by_key() {
        let list = entries(&[
            ("kafka.producer.linger.ms", "5"),
            ("kafka.producer.acks", "all"),
            ("kafka.producer.buffer.memory", "33554432"),
            ("kafka.producer.max.request.size", "2000000"),
            (
                "kafka.producer.value.serializer",
                "org.apache.kafka.common.serialization.ByteArraySerializer",
            ),
            ("kafka.producer.key.serializer", "com.example.MySerializer"),
            ("kafka.producer.max.block.ms", "100"),
            ("kafka.producer.no.such.thing", "1"),
            ("kafka.producer.bootstrap.servers", "x:1"),
        ]);
        let c = ctx(&list);
        let props = client_properties(
            &c,
            Role::Producer,
            &[("bootstrap.servers", "kafka.bootstrap.servers")],
        );
        let got: Vec<(&str, &str)> = props
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("linger.ms", "5"),
                ("acks", "all"),
                ("queue.buffering.max.kbytes", "32768"),
                ("message.max.bytes", "2000000"),
            ]
        );
        assert_eq!(find(&props, &["acks"]), Some("all"));
        let errors: Vec<String> = c
            .finish("kafka sink k1")
            .errors
            .iter()
            .map(|p| format!("{}: {}", p.key.as_deref().unwrap_or(""), p.message))
            .collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].contains("a1.sinks.k1.kafka.producer.key.serializer"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("kafka.producer.max.block.ms: not supported"),
            "{errors:?}"
        );
        assert!(
            errors[2].contains("kafka.producer.no.such.thing: librdkafka refuses it")
                && errors[2].contains("No such configuration property"),
            "{errors:?}"
        );
        assert!(
            errors[3].contains("use kafka.bootstrap.servers instead"),
            "{errors:?}"
        );
    }

    #[test]
    fn consumer_assignors_become_librdkafka_names() {
        assert_eq!(
            translate(
                Role::Consumer,
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RangeAssignor, org.apache.kafka.clients.consumer.RoundRobinAssignor"
            ),
            Translation::Set(
                "partition.assignment.strategy".into(),
                "range,roundrobin".into()
            )
        );
        assert!(matches!(
            translate(Role::Consumer, "max.poll.records", "10"),
            Translation::Reject(_)
        ));
        assert_eq!(comma_list(" a, b ,,c "), vec!["a", "b", "c"]);
    }
}
