//! The IDL's one struct, `ThriftFlumeEvent` (a map of string headers and a binary body): the
//! owned form a decoder produces, the borrowed form an encoder reads, and their Thrift
//! read/write code as the Thrift compiler would generate it.

use super::{malformed, WireError};
use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TMapIdentifier, TOutputProtocol, TStructIdentifier, TType,
};

/// A decoded `ThriftFlumeEvent`: headers in the order they arrived, and the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThriftFlumeEvent {
    /// `1: required map<string, string> headers`, in wire order.
    pub headers: Vec<(String, String)>,
    /// `2: required binary body`.
    pub body: Vec<u8>,
}

impl ThriftFlumeEvent {
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
    /// The headers, written as the map in this order.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

impl<'a> From<&'a ThriftFlumeEvent> for EventRef<'a> {
    fn from(e: &'a ThriftFlumeEvent) -> Self {
        Self {
            headers: &e.headers,
            body: &e.body,
        }
    }
}

/// Reads one `ThriftFlumeEvent`; both fields are required, as in Flume's generated code.
pub(super) fn read_event(i: &mut dyn TInputProtocol) -> Result<ThriftFlumeEvent, WireError> {
    let what = "ThriftFlumeEvent";
    i.read_struct_begin().map_err(malformed(what))?;
    let mut headers = None;
    let mut body = None;
    loop {
        let field = i.read_field_begin().map_err(malformed(what))?;
        if field.field_type == TType::Stop {
            break;
        }
        match (field.id, field.field_type) {
            (Some(1), TType::Map) => {
                let map = i.read_map_begin().map_err(malformed("event headers"))?;
                let size = usize::try_from(map.size).unwrap_or(0);
                if size > 0
                    && (map.key_type != Some(TType::String)
                        || map.value_type != Some(TType::String))
                {
                    return Err(WireError::Unexpected(format!(
                        "event headers of {:?} to {:?} where string to string was expected",
                        map.key_type, map.value_type
                    )));
                }
                let mut h = Vec::with_capacity(size.min(1024));
                for _ in 0..size {
                    let k = i.read_string().map_err(malformed("event header"))?;
                    let v = i.read_string().map_err(malformed("event header"))?;
                    h.push((k, v));
                }
                i.read_map_end().map_err(malformed("event headers"))?;
                headers = Some(h);
            }
            (Some(2), TType::String) => {
                body = Some(i.read_bytes().map_err(malformed("event body"))?);
            }
            _ => i.skip(field.field_type).map_err(malformed(what))?,
        }
        i.read_field_end().map_err(malformed(what))?;
    }
    i.read_struct_end().map_err(malformed(what))?;
    let headers = headers.ok_or_else(|| {
        WireError::Unexpected("ThriftFlumeEvent without its required field 1 (headers)".into())
    })?;
    let body = body.ok_or_else(|| {
        WireError::Unexpected("ThriftFlumeEvent without its required field 2 (body)".into())
    })?;
    Ok(ThriftFlumeEvent { headers, body })
}

/// Writes one `ThriftFlumeEvent`.
pub(super) fn write_event(o: &mut dyn TOutputProtocol, e: EventRef<'_>) -> thrift::Result<()> {
    o.write_struct_begin(&TStructIdentifier::new("ThriftFlumeEvent"))?;
    o.write_field_begin(&TFieldIdentifier::new("headers", TType::Map, 1))?;
    o.write_map_begin(&TMapIdentifier::new(
        TType::String,
        TType::String,
        len_i32(e.headers.len())?,
    ))?;
    for (k, v) in e.headers {
        o.write_string(k)?;
        o.write_string(v)?;
    }
    o.write_map_end()?;
    o.write_field_end()?;
    o.write_field_begin(&TFieldIdentifier::new("body", TType::String, 2))?;
    o.write_bytes(e.body)?;
    o.write_field_end()?;
    o.write_field_stop()?;
    o.write_struct_end()
}

/// `n` as a Thrift container size.
pub(super) fn len_i32(n: usize) -> thrift::Result<i32> {
    i32::try_from(n).map_err(|_| {
        thrift::Error::Protocol(thrift::ProtocolError::new(
            thrift::ProtocolErrorKind::SizeLimit,
            format!("{n} elements do not fit a Thrift container"),
        ))
    })
}
