//! Rendering a metrics snapshot: Flume's JSON shape and Prometheus text.
//!
//! JSON is what Flume's HTTP monitoring returns: one object per component keyed
//! `TYPE.name`, every value a string, plus `"Type"`:
//! `{"CHANNEL.c1": {"ChannelSize": "0", ..., "Type": "CHANNEL"}, "SOURCE.r1": {...}}`.
//!
//! Prometheus names are `sluice_<type>_<snake name>` with a `name` label: counters drop a
//! trailing `Count` and end in `_total` (`EventPutSuccessCount` →
//! `sluice_channel_event_put_success_total`), gauges keep their name
//! (`sluice_channel_channel_size`), `StartTime`/`StopTime` become `..._start_time_ms`.

use super::{ComponentSnapshot, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Flume's JSON shape.
pub fn json(snapshot: &[ComponentSnapshot]) -> String {
    let mut root = serde_json::Map::new();
    for c in snapshot {
        let mut obj = serde_json::Map::new();
        for m in &c.metrics {
            obj.insert(
                m.name.to_owned(),
                serde_json::Value::String(value_string(m.value)),
            );
        }
        obj.insert(
            "Type".to_owned(),
            serde_json::Value::String(c.kind.as_str().to_owned()),
        );
        root.insert(
            format!("{}.{}", c.kind.as_str(), c.name),
            serde_json::Value::Object(obj),
        );
    }
    serde_json::Value::Object(root).to_string()
}

fn value_string(v: Value) -> String {
    match v {
        Value::Counter(n) | Value::Gauge(n) => n.to_string(),
        // Java's Double.toString: always a fraction part ("0.0", "12.5").
        Value::Ratio(f) => format!("{f:?}"),
        Value::Flag(b) => b.to_string(),
    }
}

/// A value as Prometheus takes it: numbers only.
fn prometheus_value(v: Value) -> String {
    match v {
        Value::Flag(b) => u8::from(b).to_string(),
        other => value_string(other),
    }
}

/// One Prometheus metric family: its type and its (component, value) samples.
type Family = (&'static str, Vec<(String, String)>);

/// Prometheus text exposition format, version 0.0.4.
pub fn prometheus(snapshot: &[ComponentSnapshot]) -> String {
    // metric name -> (type, samples)
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for c in snapshot {
        let prefix = format!("sluice_{}_", c.kind.as_str().to_ascii_lowercase());
        for m in &c.metrics {
            let (name, kind) = prometheus_name(m.name, m.value);
            let family = families
                .entry(format!("{prefix}{name}"))
                .or_insert((kind, Vec::new()));
            family.1.push((c.name.clone(), prometheus_value(m.value)));
        }
    }
    let mut out = String::new();
    for (name, (kind, samples)) in families {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (component, value) in samples {
            let _ = writeln!(
                out,
                "{name}{{name=\"{}\"}} {value}",
                escape_label(&component)
            );
        }
    }
    out
}

fn prometheus_name(flume: &str, v: Value) -> (String, &'static str) {
    let snake = snake_case(flume);
    match (flume, v) {
        ("StartTime" | "StopTime" | "LastReloadTime", _) => (format!("{snake}_ms"), "gauge"),
        (_, Value::Counter(_)) => {
            let base = snake.strip_suffix("_count").unwrap_or(&snake);
            (format!("{base}_total"), "counter")
        }
        _ => (snake, "gauge"),
    }
}

/// `EventPutSuccessCount` → `event_put_success_count`.
pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    let chars: Vec<char> = camel.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ComponentType, Metric};

    fn snap() -> Vec<ComponentSnapshot> {
        vec![
            ComponentSnapshot {
                kind: ComponentType::Channel,
                name: "c1".into(),
                metrics: vec![
                    Metric {
                        name: "ChannelSize",
                        value: Value::Gauge(3),
                    },
                    Metric {
                        name: "EventPutSuccessCount",
                        value: Value::Counter(7),
                    },
                    Metric {
                        name: "ChannelFillPercentage",
                        value: Value::Ratio(0.0),
                    },
                ],
            },
            ComponentSnapshot {
                kind: ComponentType::Source,
                name: "r1".into(),
                metrics: vec![
                    Metric {
                        name: "ChannelWriteFail",
                        value: Value::Counter(1),
                    },
                    Metric {
                        name: "StartTime",
                        value: Value::Gauge(1700),
                    },
                ],
            },
        ]
    }

    #[test]
    fn json_has_flumes_shape() {
        let v: serde_json::Value = serde_json::from_str(&json(&snap())).expect("valid json");
        assert_eq!(v["CHANNEL.c1"]["ChannelSize"], "3");
        assert_eq!(v["CHANNEL.c1"]["EventPutSuccessCount"], "7");
        assert_eq!(v["CHANNEL.c1"]["ChannelFillPercentage"], "0.0");
        assert_eq!(v["CHANNEL.c1"]["Type"], "CHANNEL");
        assert_eq!(v["SOURCE.r1"]["ChannelWriteFail"], "1");
        assert_eq!(v["SOURCE.r1"]["Type"], "SOURCE");
    }

    #[test]
    fn prometheus_names_types_and_labels() {
        let text = prometheus(&snap());
        let expected = "\
# TYPE sluice_channel_channel_fill_percentage gauge
sluice_channel_channel_fill_percentage{name=\"c1\"} 0.0
# TYPE sluice_channel_channel_size gauge
sluice_channel_channel_size{name=\"c1\"} 3
# TYPE sluice_channel_event_put_success_total counter
sluice_channel_event_put_success_total{name=\"c1\"} 7
# TYPE sluice_source_channel_write_fail_total counter
sluice_source_channel_write_fail_total{name=\"r1\"} 1
# TYPE sluice_source_start_time_ms gauge
sluice_source_start_time_ms{name=\"r1\"} 1700
";
        assert_eq!(text, expected);
    }

    #[test]
    fn snake_case_handles_words_and_acronyms() {
        assert_eq!(
            snake_case("EventPutSuccessCount"),
            "event_put_success_count"
        );
        assert_eq!(snake_case("ReplayMillis"), "replay_millis");
        assert_eq!(snake_case("HTTPRequestCount"), "http_request_count");
    }
}
