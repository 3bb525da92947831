//! Flume's `AvroFlumeEvent` (`org.apache.flume.source.avro.AvroFlumeEvent`: a map of string
//! headers and a bytes body) as a plain Avro binary datum, the way Flume writes it with
//! `SpecificDatumWriter` and a binary encoder — no container file, no schema fingerprint.
//!
//! `AvroSourceProtocol`'s messages carry this record, and Flume puts the same datum in Kafka
//! messages with `useFlumeEventFormat = true`. The encoding is done by the apache-avro crate;
//! this module holds the schema, the owned ([`AvroFlumeEvent`]) and borrowed ([`EventRef`])
//! forms, and the mapping to and from Avro values.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The record's schema, as in Flume's `flume.avdl`.
pub const AVRO_FLUME_EVENT_SCHEMA: &str = r#"{
  "type": "record",
  "name": "AvroFlumeEvent",
  "namespace": "org.apache.flume.source.avro",
  "fields": [
    {"name": "headers", "type": {"type": "map", "values": "string"}},
    {"name": "body", "type": "bytes"}
  ]
}"#;

/// A decoded `AvroFlumeEvent`: headers sorted by key (Avro maps carry no order), and the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AvroFlumeEvent {
    /// `headers: map<string>`, sorted by key.
    pub headers: Vec<(String, String)>,
    /// `body: bytes`.
    pub body: Vec<u8>,
}

impl AvroFlumeEvent {
    /// An event with `body` and no headers.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The event with one more header (builder style).
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }
}

/// An event to encode, borrowed from whatever event type the caller keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The headers; a key given twice keeps its last value (an Avro map has one per key).
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

impl<'a> From<&'a AvroFlumeEvent> for EventRef<'a> {
    fn from(e: &'a AvroFlumeEvent) -> Self {
        Self {
            headers: &e.headers,
            body: &e.body,
        }
    }
}

/// Why bytes are not an `AvroFlumeEvent`.
#[derive(Debug, thiserror::Error)]
#[error("not a Flume AvroFlumeEvent: {reason}")]
pub struct AvroEventError {
    /// What was wrong, in apache-avro's words or ours.
    pub reason: String,
}

/// The parsed schema (parsed once).
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::parse_str(AVRO_FLUME_EVENT_SCHEMA)
            .unwrap_or_else(|e| unreachable!("the AvroFlumeEvent schema is a valid constant: {e}"))
    })
}

/// The event as an Avro value of [`schema`]. A header given twice keeps its last value (Avro
/// maps, like Flume's, have one value per key).
pub fn to_value(event: EventRef<'_>) -> Value {
    let headers: HashMap<String, Value> = event
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Record(vec![
        ("headers".to_owned(), Value::Map(headers)),
        ("body".to_owned(), Value::Bytes(event.body.to_vec())),
    ])
}

/// The event from an Avro value of [`schema`]; headers sorted by key (Avro maps carry no order).
pub fn from_value(value: Value) -> Result<AvroFlumeEvent, AvroEventError> {
    let bad = |reason: String| AvroEventError { reason };
    let Value::Record(fields) = value else {
        return Err(bad(format!("expected a record, got {value:?}")));
    };
    let mut headers = None;
    let mut body = None;
    for (name, field) in fields {
        match (name.as_str(), field) {
            ("headers", Value::Map(map)) => {
                let mut list = Vec::with_capacity(map.len());
                for (k, v) in map {
                    match v {
                        Value::String(s) => list.push((k, s)),
                        other => {
                            return Err(bad(format!("header {k:?} is not a string: {other:?}")))
                        }
                    }
                }
                list.sort();
                headers = Some(list);
            }
            ("body", Value::Bytes(b)) => body = Some(b),
            (other, v) => return Err(bad(format!("unexpected field {other:?}: {v:?}"))),
        }
    }
    let (Some(headers), Some(body)) = (headers, body) else {
        return Err(bad("missing headers or body".to_owned()));
    };
    Ok(AvroFlumeEvent { headers, body })
}

/// The event as a bare Avro binary datum.
pub fn encode(event: EventRef<'_>) -> Vec<u8> {
    GenericDatumWriter::builder(schema())
        .build()
        .and_then(|w| w.write_value_to_vec(to_value(event)))
        .unwrap_or_else(|e| unreachable!("an Event always fits the AvroFlumeEvent schema: {e}"))
}

/// An event from a bare Avro binary datum; the whole input must be one datum.
pub fn decode(bytes: &[u8]) -> Result<AvroFlumeEvent, AvroEventError> {
    let mut reader = bytes;
    let value = GenericDatumReader::builder(schema())
        .build()
        .and_then(|r| r.read_value(&mut reader))
        .map_err(|e| AvroEventError {
            reason: e.to_string(),
        })?;
    if !reader.is_empty() {
        return Err(AvroEventError {
            reason: format!("{} bytes after the record", reader.len()),
        });
    }
    from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(event: &AvroFlumeEvent) -> Vec<u8> {
        super::encode(event.into())
    }

    #[test]
    fn golden_bytes_of_one_header_event() {
        // map block of 1 entry (zigzag 1 = 0x02), key "k" (len 1 = 0x02, 'k'), value "v",
        // end of map (0x00), body bytes "hi" (len 2 = 0x04).
        let e = AvroFlumeEvent::new("hi").with_header("k", "v");
        let bytes = encode(&e);
        assert_eq!(
            bytes,
            [0x02, 0x02, b'k', 0x02, b'v', 0x00, 0x04, b'h', b'i']
        );
        let back = decode(&bytes).expect("decode");
        assert_eq!(back.headers, vec![("k".to_owned(), "v".to_owned())]);
        assert_eq!(&back.body[..], b"hi");
    }

    #[test]
    fn empty_event_is_two_zero_bytes() {
        assert_eq!(encode(&AvroFlumeEvent::new("")), [0x00, 0x00]);
    }

    #[test]
    fn round_trips_many_headers_sorted() {
        let e = AvroFlumeEvent::new(vec![0u8, 255, 7])
            .with_header("b", "2")
            .with_header("a", "1")
            .with_header("é", "ü");
        let back = decode(&encode(&e)).expect("decode");
        assert_eq!(
            back.headers,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned()),
                ("é".to_owned(), "ü".to_owned())
            ]
        );
        assert_eq!(&back.body[..], &[0u8, 255, 7]);
    }

    #[test]
    fn garbage_and_trailing_bytes_are_typed_errors() {
        for bad in [&[0x02u8][..], &[0x7f, 0x7f, 0x7f], &[0x00, 0x00, 0x00]] {
            let err = decode(bad).expect_err("must not decode");
            assert!(
                err.to_string().starts_with("not a Flume AvroFlumeEvent"),
                "{err}"
            );
        }
    }
}
