//! Avro's call format (specification, "Call Format") for Flume's two messages.
//!
//! A request is the request metadata (`map<bytes>`), the message name (`string`; empty for a
//! handshake-only "ping") and the parameters: one `AvroFlumeEvent` for `append`, an
//! `array<AvroFlumeEvent>` for `appendBatch`. A response is the response metadata, a
//! `boolean` error flag, then the `Status` enum, or on error the union of the message's
//! errors with `string` first; Flume declares none, so the union is `["string"]`.

use crate::event::{self as avro_event, AvroFlumeEvent, EventRef};
use crate::protocol::Status;
use crate::WireError;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The message names.
pub const APPEND: &str = "append";
/// The batch message.
pub const APPEND_BATCH: &str = "appendBatch";

struct Schemas {
    metadata: Schema,
    name: Schema,
    events: Schema,
    flag: Schema,
    status: Schema,
    text: Schema,
    union_index: Schema,
}

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| {
        let parse = |text: &str| {
            Schema::parse_str(text)
                .unwrap_or_else(|e| unreachable!("the call schemas are valid constants: {e}"))
        };
        Schemas {
            metadata: parse(r#"{"type":"map","values":"bytes"}"#),
            name: parse(r#""string""#),
            events: parse(&format!(
                r#"{{"type":"array","items":{}}}"#,
                avro_event::AVRO_FLUME_EVENT_SCHEMA
            )),
            flag: parse(r#""boolean""#),
            status: parse(
                r#"{"type":"enum","name":"Status","namespace":"org.apache.flume.source.avro","symbols":["OK","FAILED","UNKNOWN"]}"#,
            ),
            // The error union ["string"] is written as its branch index (a long, always 0)
            // and the string: apache-avro warns about one-branch union schemas.
            text: parse(r#""string""#),
            union_index: parse(r#""long""#),
        }
    })
}

fn write(schema: &Schema, value: Value, out: &mut Vec<u8>) {
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value(out, value))
        .map(|_| ())
        .unwrap_or_else(|e| unreachable!("call values always fit their schema: {e}"))
}

fn read(schema: &Schema, what: &'static str, input: &mut &[u8]) -> Result<Value, WireError> {
    GenericDatumReader::builder(schema)
        .build()
        .and_then(|r| r.read_value(input))
        .map_err(|e| WireError::datum(what, e))
}

fn empty_metadata(out: &mut Vec<u8>) {
    write(&schemas().metadata, Value::Map(HashMap::new()), out);
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `append(event)`.
    Append(AvroFlumeEvent),
    /// `appendBatch(events)`.
    AppendBatch(Vec<AvroFlumeEvent>),
    /// Empty message name: a handshake without a call.
    Ping,
    /// A message Flume's protocol does not have (parameters not read).
    Unknown(String),
}

/// An `appendBatch` request (empty metadata).
pub fn encode_append_batch(events: &[EventRef<'_>]) -> Vec<u8> {
    let s = schemas();
    let mut out = Vec::with_capacity(events.iter().map(|e| e.body.len() + 16).sum::<usize>() + 32);
    empty_metadata(&mut out);
    write(&s.name, Value::String(APPEND_BATCH.into()), &mut out);
    write(
        &s.events,
        Value::Array(events.iter().copied().map(avro_event::to_value).collect()),
        &mut out,
    );
    out
}

/// An `append` request (empty metadata).
pub fn encode_append(event: EventRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    empty_metadata(&mut out);
    write(&schemas().name, Value::String(APPEND.into()), &mut out);
    out.extend(avro_event::encode(event));
    out
}

fn events_of(value: Value) -> Result<Vec<AvroFlumeEvent>, WireError> {
    let Value::Array(items) = value else {
        return Err(WireError::datum("appendBatch events", "not an array"));
    };
    items
        .into_iter()
        .map(|v| avro_event::from_value(v).map_err(|e| WireError::datum("appendBatch events", e)))
        .collect()
}

/// Reads a request from the front of `input`; the whole input must be used.
pub fn decode_request(input: &mut &[u8]) -> Result<Request, WireError> {
    let s = schemas();
    read(&s.metadata, "request metadata", input)?;
    let Value::String(name) = read(&s.name, "message name", input)? else {
        return Err(WireError::datum("message name", "not a string"));
    };
    let request = match name.as_str() {
        "" => Request::Ping,
        APPEND => Request::Append(
            avro_event::from_value(read(avro_event::schema(), "append event", input)?)
                .map_err(|e| WireError::datum("append event", e))?,
        ),
        APPEND_BATCH => {
            Request::AppendBatch(events_of(read(&s.events, "appendBatch events", input)?)?)
        }
        _ => return Ok(Request::Unknown(name)),
    };
    if !input.is_empty() {
        return Err(WireError::datum(
            "request",
            format!("{} bytes after the parameters", input.len()),
        ));
    }
    Ok(request)
}

/// A call's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The message's `Status`.
    Status(Status),
    /// An error (Avro's system error: a string).
    Error(String),
}

/// A response (empty metadata).
pub fn encode_response(response: &Response) -> Vec<u8> {
    let s = schemas();
    let mut out = Vec::with_capacity(8);
    empty_metadata(&mut out);
    match response {
        Response::Status(st) => {
            write(&s.flag, Value::Boolean(false), &mut out);
            let i = st.index();
            write(
                &s.status,
                Value::Enum(i, Status::SYMBOLS[i as usize].into()),
                &mut out,
            );
        }
        Response::Error(message) => {
            write(&s.flag, Value::Boolean(true), &mut out);
            write(&s.union_index, Value::Long(0), &mut out);
            write(&s.text, Value::String(message.clone()), &mut out);
        }
    }
    out
}

/// Reads a response from the front of `input`.
pub fn decode_response(input: &mut &[u8]) -> Result<Response, WireError> {
    let s = schemas();
    read(&s.metadata, "response metadata", input)?;
    let Value::Boolean(is_error) = read(&s.flag, "response error flag", input)? else {
        return Err(WireError::datum("response error flag", "not a boolean"));
    };
    if is_error {
        return match read(&s.union_index, "response error", input)? {
            Value::Long(0) => match read(&s.text, "response error", input)? {
                Value::String(m) => Ok(Response::Error(m)),
                other => Ok(Response::Error(format!("{other:?}"))),
            },
            other => Err(WireError::datum(
                "response error",
                format!("union branch {other:?} of [\"string\"]"),
            )),
        };
    }
    match read(&s.status, "response status", input)? {
        Value::Enum(i, _) => Status::from_index(i)
            .map(Response::Status)
            .ok_or_else(|| WireError::datum("response status", format!("symbol {i}"))),
        other => Err(WireError::datum(
            "response status",
            format!("not an enum: {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_of_an_append_batch_call() {
        let events = [
            AvroFlumeEvent::new("hi").with_header("k", "v"),
            AvroFlumeEvent::new(""),
        ];
        let refs: Vec<EventRef<'_>> = events.iter().map(EventRef::from).collect();
        let bytes = encode_append_batch(&refs);
        let mut want = vec![0x00]; // empty metadata map
        want.push(0x16); // name length 11 (zigzag 22)
        want.extend(b"appendBatch");
        want.push(0x04); // array block of 2 items
        want.extend([0x02, 0x02, b'k', 0x02, b'v', 0x00, 0x04, b'h', b'i']);
        want.extend([0x00, 0x00]);
        want.push(0x00); // end of array
        assert_eq!(bytes, want);
        let mut input = &bytes[..];
        let Request::AppendBatch(back) = decode_request(&mut input).expect("decode") else {
            panic!("not appendBatch");
        };
        assert_eq!(back.len(), 2);
        assert_eq!(&back[0].body[..], b"hi");
        assert_eq!(back[0].headers, vec![("k".into(), "v".into())]);
    }

    #[test]
    fn golden_bytes_of_append_and_ping_and_unknown() {
        let bytes = encode_append((&AvroFlumeEvent::new("x")).into());
        assert_eq!(
            bytes,
            [0x00, 0x0c, b'a', b'p', b'p', b'e', b'n', b'd', 0x00, 0x02, b'x']
        );
        let mut input = &bytes[..];
        assert!(
            matches!(decode_request(&mut input), Ok(Request::Append(e)) if &e.body[..] == b"x")
        );
        let mut input = &[0x00u8, 0x00][..];
        assert_eq!(decode_request(&mut input).expect("ping"), Request::Ping);
        let mut input = &[0x00u8, 0x02, b'z', 0x99][..];
        assert_eq!(
            decode_request(&mut input).expect("unknown"),
            Request::Unknown("z".into())
        );
    }

    #[test]
    fn golden_bytes_of_responses() {
        // metadata, false, enum index 0 / 1.
        assert_eq!(
            encode_response(&Response::Status(Status::Ok)),
            [0x00, 0x00, 0x00]
        );
        assert_eq!(
            encode_response(&Response::Status(Status::Failed)),
            [0x00, 0x00, 0x02]
        );
        // metadata, true, union index 0, string "no".
        let err = encode_response(&Response::Error("no".into()));
        assert_eq!(err, [0x00, 0x01, 0x00, 0x04, b'n', b'o']);
        let mut input = &err[..];
        assert_eq!(
            decode_response(&mut input).expect("decode"),
            Response::Error("no".into())
        );
        let mut input = &[0x00u8, 0x00, 0x04][..];
        assert_eq!(
            decode_response(&mut input).expect("decode"),
            Response::Status(Status::Unknown)
        );
    }

    #[test]
    fn garbage_is_a_typed_error_not_a_panic() {
        for bad in [
            &[0x01u8][..],
            &[0x00, 0x16, b'a'],
            &[
                0x00, 0x16, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a', b't', b'c', b'h', 0x7f,
            ],
            &[
                0x00, 0x0c, b'a', b'p', b'p', b'e', b'n', b'd', 0x00, 0x02, b'x', 0x00,
            ],
        ] {
            let mut input = bad;
            assert!(decode_request(&mut input).is_err(), "{bad:?}");
        }
        let mut input = &[0x00u8, 0x00, 0x08][..];
        assert!(decode_response(&mut input).is_err());
    }
}
