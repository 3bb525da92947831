//! The messages of `ThriftSourceProtocol`, framed: calls of `append` and `appendBatch` and
//! their `Status` replies, plus the `TApplicationException` a server answers to a method it
//! does not have. Encoding and decoding use the `thrift` crate's protocol implementations; the
//! struct code below is what the Thrift compiler generates for Flume's IDL, written by hand.
//!
//! Decoding works on one frame already in memory, so no read can block or run past the frame.
//! The `thrift` crate allocates a string or binary field's length before reading it; every
//! decoder is configured with the frame's own length as the largest string and container, so
//! a lying length prefix inside a frame cannot allocate more than the frame holds.

use super::frame::{self, describe_foreign};
use super::Protocol;
use file_channel::Event;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol,
    TFieldIdentifier, TInputProtocol, TListIdentifier, TMapIdentifier, TMessageIdentifier,
    TMessageType, TOutputProtocol, TStructIdentifier, TType,
};
use thrift::{ApplicationError, ApplicationErrorKind, TConfiguration};

/// Flume's `Status` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `OK` (0): the events were committed.
    Ok,
    /// `FAILED` (1): the channel refused them.
    Failed,
    /// `ERROR` (2).
    Error,
    /// `UNKNOWN` (3).
    Unknown,
}

impl Status {
    /// The wire value.
    pub fn to_i32(self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::Failed => 1,
            Self::Error => 2,
            Self::Unknown => 3,
        }
    }

    /// The status of a wire value, if it is one.
    pub fn from_i32(v: i32) -> Option<Self> {
        match v {
            0 => Some(Self::Ok),
            1 => Some(Self::Failed),
            2 => Some(Self::Error),
            3 => Some(Self::Unknown),
            _ => None,
        }
    }

    /// Flume's name: `OK`, `FAILED`, `ERROR`, `UNKNOWN`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Failed => "FAILED",
            Self::Error => "ERROR",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// The two methods of `ThriftSourceProtocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `Status append(1: ThriftFlumeEvent event)`.
    Append,
    /// `Status appendBatch(1: list<ThriftFlumeEvent> events)`.
    AppendBatch,
}

impl Method {
    /// The method's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::AppendBatch => "appendBatch",
        }
    }
}

/// A decoded request frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A call of one of our methods; `append` carries one event.
    Call {
        /// Which.
        method: Method,
        /// The sequence id to echo.
        seqid: i32,
        /// The events.
        events: Vec<Event>,
    },
    /// A call of a method `ThriftSourceProtocol` does not have (answered with an exception).
    UnknownMethod {
        /// Its name.
        name: String,
        /// The sequence id to echo.
        seqid: i32,
    },
}

/// Why a frame is not the message expected.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The frame is not in the configured protocol; says what it looks like.
    #[error("not a Thrift {expected} protocol message: it starts with {first}; {hint}")]
    WrongProtocol {
        /// The configured protocol.
        expected: &'static str,
        /// Its first bytes, escaped.
        first: String,
        /// What they look like.
        hint: String,
    },
    /// The protocol layer refused the bytes.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// The `thrift` crate's error.
        source: thrift::Error,
    },
    /// Structurally valid Thrift that is not what `ThriftSourceProtocol` sends.
    #[error("unexpected message: {0}")]
    Unexpected(String),
    /// The server answered with a `TApplicationException`.
    #[error("the server answered with an exception: {0}")]
    Remote(String),
    /// Encoding failed (only when writing to memory fails, which it does not) or the message
    /// is larger than a frame may be.
    #[error("cannot encode the {what}: {reason}")]
    Encode {
        /// What was being written.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

fn malformed(what: &'static str) -> impl FnOnce(thrift::Error) -> WireError {
    move |source| WireError::Malformed { what, source }
}

/// The protocol's first byte: 0x82 for compact; 0x80 (strict binary's version) or, for
/// lenient binary, the high byte of a name length (0).
fn check_protocol(frame: &[u8], protocol: Protocol) -> Result<(), WireError> {
    let first = frame.first().copied().unwrap_or(0);
    let fits = match protocol {
        Protocol::Compact => first == 0x82,
        Protocol::Binary => first == 0x80 || first == 0x00,
    };
    if fits {
        return Ok(());
    }
    let hint = match (protocol, first) {
        (Protocol::Compact, 0x80) => {
            "the peer uses the binary protocol; set protocol = binary on both ends".to_owned()
        }
        (Protocol::Binary, 0x82) => {
            "the peer uses the compact protocol; set protocol = compact on both ends".to_owned()
        }
        _ => describe_foreign(frame),
    };
    Err(WireError::WrongProtocol {
        expected: protocol.as_str(),
        first: frame::escape(&frame[..frame.len().min(8)]),
        hint,
    })
}

fn limits(frame: &[u8]) -> TConfiguration {
    let n = frame.len();
    // A list or map cannot hold more elements than the frame has bytes.
    TConfiguration::builder()
        .max_message_size(Some(n.max(1)))
        .max_frame_size(Some(n.max(1)))
        .max_string_size(Some(n))
        .max_container_size(Some(n))
        .build()
        .unwrap_or_else(|_| TConfiguration::default())
}

fn input<'a>(frame: &'a [u8], protocol: Protocol) -> Box<dyn TInputProtocol + 'a> {
    let config = limits(frame);
    match protocol {
        Protocol::Compact => Box::new(TCompactInputProtocol::with_config(frame, config)),
        Protocol::Binary => Box::new(TBinaryInputProtocol::with_config(frame, false, config)),
    }
}

fn output<'a>(buf: &'a mut Vec<u8>, protocol: Protocol) -> Box<dyn TOutputProtocol + 'a> {
    match protocol {
        Protocol::Compact => Box::new(TCompactOutputProtocol::new(buf)),
        Protocol::Binary => Box::new(TBinaryOutputProtocol::new(buf, true)),
    }
}

/// Decodes a request frame (a server's view).
pub fn decode_request(frame: &[u8], protocol: Protocol) -> Result<Request, WireError> {
    check_protocol(frame, protocol)?;
    let mut i = input(frame, protocol);
    let ident = i
        .read_message_begin()
        .map_err(malformed("message header"))?;
    if ident.message_type != TMessageType::Call {
        return Err(WireError::Unexpected(format!(
            "a {:?} message where a call was expected",
            ident.message_type
        )));
    }
    let method = match ident.name.as_str() {
        "append" => Method::Append,
        "appendBatch" => Method::AppendBatch,
        _ => {
            return Ok(Request::UnknownMethod {
                name: ident.name,
                seqid: ident.sequence_number,
            })
        }
    };
    let events = read_args(&mut *i, method, frame.len())?;
    i.read_message_end().map_err(malformed("message end"))?;
    Ok(Request::Call {
        method,
        seqid: ident.sequence_number,
        events,
    })
}

/// Reads `append_args` or `appendBatch_args`: field 1 is the event or the list of events.
fn read_args(
    i: &mut dyn TInputProtocol,
    method: Method,
    frame_len: usize,
) -> Result<Vec<Event>, WireError> {
    let what = "call arguments";
    i.read_struct_begin().map_err(malformed(what))?;
    let mut events = None;
    loop {
        let field = i.read_field_begin().map_err(malformed(what))?;
        if field.field_type == TType::Stop {
            break;
        }
        match (method, field.id, field.field_type) {
            (Method::Append, Some(1), TType::Struct) => {
                events = Some(vec![read_event(i)?]);
            }
            (Method::AppendBatch, Some(1), TType::List) => {
                let list = i.read_list_begin().map_err(malformed("event list"))?;
                if list.size > 0 && list.element_type != TType::Struct {
                    return Err(WireError::Unexpected(format!(
                        "a list of {:?} where a list of ThriftFlumeEvent was expected",
                        list.element_type
                    )));
                }
                let size = usize::try_from(list.size).unwrap_or(0);
                let mut v = Vec::with_capacity(size.min(frame_len));
                for _ in 0..size {
                    v.push(read_event(i)?);
                }
                i.read_list_end().map_err(malformed("event list"))?;
                events = Some(v);
            }
            _ => i.skip(field.field_type).map_err(malformed(what))?,
        }
        i.read_field_end().map_err(malformed(what))?;
    }
    i.read_struct_end().map_err(malformed(what))?;
    events.ok_or_else(|| {
        WireError::Unexpected(format!("{} call without its argument 1", method.name()))
    })
}

/// Reads one `ThriftFlumeEvent`; both fields are required, as in Flume's generated code.
fn read_event(i: &mut dyn TInputProtocol) -> Result<Event, WireError> {
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
    Ok(Event { headers, body })
}

fn write_event(o: &mut dyn TOutputProtocol, e: &Event) -> thrift::Result<()> {
    o.write_struct_begin(&TStructIdentifier::new("ThriftFlumeEvent"))?;
    o.write_field_begin(&TFieldIdentifier::new("headers", TType::Map, 1))?;
    o.write_map_begin(&TMapIdentifier::new(
        TType::String,
        TType::String,
        len_i32(e.headers.len())?,
    ))?;
    for (k, v) in &e.headers {
        o.write_string(k)?;
        o.write_string(v)?;
    }
    o.write_map_end()?;
    o.write_field_end()?;
    o.write_field_begin(&TFieldIdentifier::new("body", TType::String, 2))?;
    o.write_bytes(&e.body)?;
    o.write_field_end()?;
    o.write_field_stop()?;
    o.write_struct_end()
}

fn len_i32(n: usize) -> thrift::Result<i32> {
    i32::try_from(n).map_err(|_| {
        thrift::Error::Protocol(thrift::ProtocolError::new(
            thrift::ProtocolErrorKind::SizeLimit,
            format!("{n} elements do not fit a Thrift container"),
        ))
    })
}

fn finish(mut buf: Vec<u8>, what: &'static str, max_frame: usize) -> Result<Vec<u8>, WireError> {
    match frame::finish_frame(&mut buf, max_frame) {
        Some(_) => Ok(buf),
        None => Err(WireError::Encode {
            what,
            reason: format!(
                "{} bytes exceed the largest frame, {max_frame} bytes",
                buf.len().saturating_sub(4)
            ),
        }),
    }
}

/// Encodes a framed call of `method` with `events` (`append` sends the first one only).
pub fn encode_call(
    protocol: Protocol,
    method: Method,
    seqid: i32,
    events: &[Event],
    max_frame: usize,
) -> Result<Vec<u8>, WireError> {
    let what = "call";
    let enc = |e: thrift::Error| WireError::Encode {
        what,
        reason: e.to_string(),
    };
    let mut buf = Vec::new();
    frame::start_frame(&mut buf);
    {
        let mut o = output(&mut buf, protocol);
        o.write_message_begin(&TMessageIdentifier::new(
            method.name(),
            TMessageType::Call,
            seqid,
        ))
        .map_err(enc)?;
        let args = format!("{}_args", method.name());
        o.write_struct_begin(&TStructIdentifier::new(args))
            .map_err(enc)?;
        match method {
            Method::Append => {
                let Some(e) = events.first() else {
                    return Err(WireError::Encode {
                        what,
                        reason: "append needs an event".into(),
                    });
                };
                o.write_field_begin(&TFieldIdentifier::new("event", TType::Struct, 1))
                    .map_err(enc)?;
                write_event(&mut *o, e).map_err(enc)?;
            }
            Method::AppendBatch => {
                o.write_field_begin(&TFieldIdentifier::new("events", TType::List, 1))
                    .map_err(enc)?;
                o.write_list_begin(&TListIdentifier::new(
                    TType::Struct,
                    len_i32(events.len()).map_err(enc)?,
                ))
                .map_err(enc)?;
                for e in events {
                    write_event(&mut *o, e).map_err(enc)?;
                }
                o.write_list_end().map_err(enc)?;
            }
        }
        o.write_field_end().map_err(enc)?;
        o.write_field_stop().map_err(enc)?;
        o.write_struct_end().map_err(enc)?;
        o.write_message_end().map_err(enc)?;
        o.flush().map_err(enc)?;
    }
    finish(buf, what, max_frame)
}

/// Encodes a framed reply to `method_name` carrying `status` (field 0, `success`).
pub fn encode_reply(
    protocol: Protocol,
    method_name: &str,
    seqid: i32,
    status: Status,
) -> Result<Vec<u8>, WireError> {
    let what = "reply";
    let enc = |e: thrift::Error| WireError::Encode {
        what,
        reason: e.to_string(),
    };
    let mut buf = Vec::new();
    frame::start_frame(&mut buf);
    {
        let mut o = output(&mut buf, protocol);
        o.write_message_begin(&TMessageIdentifier::new(
            method_name,
            TMessageType::Reply,
            seqid,
        ))
        .map_err(enc)?;
        o.write_struct_begin(&TStructIdentifier::new(format!("{method_name}_result")))
            .map_err(enc)?;
        o.write_field_begin(&TFieldIdentifier::new("success", TType::I32, 0))
            .map_err(enc)?;
        o.write_i32(status.to_i32()).map_err(enc)?;
        o.write_field_end().map_err(enc)?;
        o.write_field_stop().map_err(enc)?;
        o.write_struct_end().map_err(enc)?;
        o.write_message_end().map_err(enc)?;
        o.flush().map_err(enc)?;
    }
    finish(buf, what, frame::MAX_FRAME_BYTES)
}

/// Encodes the `TApplicationException` (`UNKNOWN_METHOD`) a Thrift server answers to a call of
/// a method it does not have.
pub fn encode_unknown_method(
    protocol: Protocol,
    name: &str,
    seqid: i32,
) -> Result<Vec<u8>, WireError> {
    let what = "exception";
    let enc = |e: thrift::Error| WireError::Encode {
        what,
        reason: e.to_string(),
    };
    let mut buf = Vec::new();
    frame::start_frame(&mut buf);
    {
        let mut o = output(&mut buf, protocol);
        o.write_message_begin(&TMessageIdentifier::new(
            name,
            TMessageType::Exception,
            seqid,
        ))
        .map_err(enc)?;
        let err = ApplicationError::new(
            ApplicationErrorKind::UnknownMethod,
            format!("Invalid method name: '{name}'"),
        );
        thrift::Error::write_application_error_to_out_protocol(&err, &mut *o).map_err(enc)?;
        o.write_message_end().map_err(enc)?;
        o.flush().map_err(enc)?;
    }
    finish(buf, what, frame::MAX_FRAME_BYTES)
}

/// Decodes a reply frame to the call of `method` numbered `seqid` (a client's view).
pub fn decode_reply(
    frame: &[u8],
    protocol: Protocol,
    method: Method,
    seqid: i32,
) -> Result<Status, WireError> {
    check_protocol(frame, protocol)?;
    let mut i = input(frame, protocol);
    let ident = i.read_message_begin().map_err(malformed("reply header"))?;
    if ident.message_type == TMessageType::Exception {
        let e = thrift::Error::read_application_error_from_in_protocol(&mut *i)
            .map_err(malformed("exception"))?;
        return Err(WireError::Remote(format!("{:?}: {}", e.kind, e.message)));
    }
    if ident.message_type != TMessageType::Reply {
        return Err(WireError::Unexpected(format!(
            "a {:?} message where a reply was expected",
            ident.message_type
        )));
    }
    if ident.name != method.name() || ident.sequence_number != seqid {
        return Err(WireError::Unexpected(format!(
            "a reply to {} #{} where one to {} #{seqid} was expected",
            ident.name,
            ident.sequence_number,
            method.name()
        )));
    }
    let what = "reply";
    i.read_struct_begin().map_err(malformed(what))?;
    let mut status = None;
    loop {
        let field = i.read_field_begin().map_err(malformed(what))?;
        if field.field_type == TType::Stop {
            break;
        }
        if field.id == Some(0) && field.field_type == TType::I32 {
            let v = i.read_i32().map_err(malformed(what))?;
            status = Some(Status::from_i32(v).ok_or_else(|| {
                WireError::Unexpected(format!("status {v} is not one of Flume's"))
            })?);
        } else {
            i.skip(field.field_type).map_err(malformed(what))?;
        }
        i.read_field_end().map_err(malformed(what))?;
    }
    i.read_struct_end().map_err(malformed(what))?;
    status.ok_or_else(|| WireError::Unexpected(format!("{} reply without a status", method.name())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new("hi").with_header("k", "v")
    }

    /// `appendBatch([{headers: {k: v}, body: "hi"}])`, sequence id 1, compact protocol,
    /// written out from the compact protocol spec.
    const COMPACT_CALL: &[u8] = &[
        0x00, 0x00, 0x00, 0x1E, // frame length 30
        0x82, // compact protocol id
        0x21, // version 1, message type CALL (1) << 5
        0x01, // sequence id 1 (varint)
        0x0B, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a', b't', b'c', b'h', // name
        0x19, // field 1 (delta 1), type LIST (9)
        0x1C, // list of 1 element, element type STRUCT (12)
        0x1B, // field 1 (delta 1), type MAP (11)
        0x01, // map size 1 (varint)
        0x88, // key type BINARY (8), value type BINARY (8)
        0x01, b'k', // key "k"
        0x01, b'v', // value "v"
        0x18, // field 2 (delta 1), type BINARY (8)
        0x02, b'h', b'i', // body "hi"
        0x00, // stop: end of ThriftFlumeEvent
        0x00, // stop: end of appendBatch_args
    ];

    /// The same call in the (strict) binary protocol, from the binary protocol spec.
    const BINARY_CALL: &[u8] = &[
        0x00, 0x00, 0x00, 0x3D, // frame length 61
        0x80, 0x01, 0x00, 0x01, // version 1, message type CALL
        0x00, 0x00, 0x00, 0x0B, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a', b't', b'c',
        b'h', // name
        0x00, 0x00, 0x00, 0x01, // sequence id 1
        0x0F, 0x00, 0x01, // field type LIST (15), id 1
        0x0C, 0x00, 0x00, 0x00, 0x01, // element type STRUCT (12), size 1
        0x0D, 0x00, 0x01, // field type MAP (13), id 1
        0x0B, 0x0B, 0x00, 0x00, 0x00, 0x01, // STRING to STRING, size 1
        0x00, 0x00, 0x00, 0x01, b'k', // key "k"
        0x00, 0x00, 0x00, 0x01, b'v', // value "v"
        0x0B, 0x00, 0x02, // field type STRING (11), id 2
        0x00, 0x00, 0x00, 0x02, b'h', b'i', // body "hi"
        0x00, // stop: end of ThriftFlumeEvent
        0x00, // stop: end of appendBatch_args
    ];

    /// The reply `OK` to that call, compact: REPLY (2) << 5, field 0 of type I32 (5) in the
    /// long form (delta 0 is not allowed), zigzag varint 0.
    const COMPACT_REPLY_OK: &[u8] = &[
        0x00, 0x00, 0x00, 0x13, 0x82, 0x41, 0x01, 0x0B, b'a', b'p', b'p', b'e', b'n', b'd', b'B',
        b'a', b't', b'c', b'h', 0x05, 0x00, 0x00, 0x00,
    ];

    /// The reply `FAILED` to that call, binary: field type I32 (8), id 0, value 1.
    const BINARY_REPLY_FAILED: &[u8] = &[
        0x00, 0x00, 0x00, 0x1F, 0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0B, b'a', b'p', b'p',
        b'e', b'n', b'd', b'B', b'a', b't', b'c', b'h', 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x00,
    ];

    /// One appendBatch call encodes to `golden` in `protocol`, and `golden` decodes back.
    fn assert_golden_append_batch(protocol: Protocol, golden: &[u8]) {
        let got = encode_call(
            protocol,
            Method::AppendBatch,
            1,
            &[event()],
            frame::MAX_FRAME_BYTES,
        )
        .expect("encode");
        assert_eq!(got, golden);
        let req = decode_request(&golden[4..], protocol).expect("decode");
        assert_eq!(
            req,
            Request::Call {
                method: Method::AppendBatch,
                seqid: 1,
                events: vec![event()]
            }
        );
    }

    #[test]
    fn golden_append_batch_compact() {
        assert_golden_append_batch(Protocol::Compact, COMPACT_CALL);
    }

    #[test]
    fn golden_append_batch_binary() {
        assert_golden_append_batch(Protocol::Binary, BINARY_CALL);
    }

    #[test]
    fn golden_replies() {
        let ok = encode_reply(Protocol::Compact, "appendBatch", 1, Status::Ok).expect("enc");
        assert_eq!(ok, COMPACT_REPLY_OK);
        let failed = encode_reply(Protocol::Binary, "appendBatch", 1, Status::Failed).expect("enc");
        assert_eq!(failed, BINARY_REPLY_FAILED);
        assert_eq!(
            decode_reply(&ok[4..], Protocol::Compact, Method::AppendBatch, 1).expect("dec"),
            Status::Ok
        );
        assert_eq!(
            decode_reply(&failed[4..], Protocol::Binary, Method::AppendBatch, 1).expect("dec"),
            Status::Failed
        );
        let e = decode_reply(&ok[4..], Protocol::Compact, Method::AppendBatch, 2)
            .expect_err("wrong seqid");
        assert!(
            e.to_string().contains("#1 where one to appendBatch #2"),
            "{e}"
        );
    }

    #[test]
    fn append_and_empty_headers_round_trip_in_both_protocols() {
        for p in [Protocol::Compact, Protocol::Binary] {
            let e = Event::new(vec![0u8, 255, 10]);
            let call =
                encode_call(p, Method::Append, 7, std::slice::from_ref(&e), 1000).expect("enc");
            assert_eq!(
                decode_request(&call[4..], p).expect("dec"),
                Request::Call {
                    method: Method::Append,
                    seqid: 7,
                    events: vec![e]
                }
            );
            let many: Vec<Event> = (0..50)
                .map(|i| Event::new(format!("b{i}")).with_header("i", i.to_string()))
                .collect();
            let call = encode_call(p, Method::AppendBatch, 8, &many, 100_000).expect("enc");
            let Request::Call { events, .. } = decode_request(&call[4..], p).expect("dec") else {
                panic!("not a call");
            };
            assert_eq!(events, many);
        }
    }

    #[test]
    fn unknown_methods_get_an_application_exception() {
        let mut call =
            encode_call(Protocol::Compact, Method::Append, 3, &[event()], 1000).expect("enc");
        // Rename "append" to "appenX".
        let pos = call.windows(6).position(|w| w == b"append").expect("name");
        call[pos + 5] = b'X';
        let req = decode_request(&call[4..], Protocol::Compact).expect("dec");
        assert_eq!(
            req,
            Request::UnknownMethod {
                name: "appenX".into(),
                seqid: 3
            }
        );
        let reply = encode_unknown_method(Protocol::Compact, "appenX", 3).expect("enc");
        let e =
            decode_reply(&reply[4..], Protocol::Compact, Method::Append, 3).expect_err("exception");
        assert_eq!(
            e.to_string(),
            "the server answered with an exception: UnknownMethod: Invalid method name: 'appenX'"
        );
    }

    #[test]
    fn foreign_and_hostile_frames_are_typed_errors() {
        let e = decode_request(&BINARY_CALL[4..], Protocol::Compact).expect_err("binary");
        assert!(e.to_string().contains("set protocol = binary"), "{e}");
        let e = decode_request(&COMPACT_CALL[4..], Protocol::Binary).expect_err("compact");
        assert!(e.to_string().contains("set protocol = compact"), "{e}");
        let e = decode_request(b"{\"json\": 1}", Protocol::Compact).expect_err("json");
        assert!(e.to_string().starts_with("not a Thrift compact"), "{e}");
        // A body claiming 2^31 - 1 bytes in a 30-byte frame: refused, not allocated.
        let mut lying = COMPACT_CALL[4..].to_vec();
        let body_len = lying.len() - 5;
        lying.splice(body_len..body_len + 1, [0xFF, 0xFF, 0xFF, 0xFF, 0x07]);
        let e = decode_request(&lying, Protocol::Compact).expect_err("lying length");
        assert!(e.to_string().starts_with("malformed event body"), "{e}");
        // A list claiming 2^31 - 1 events.
        let mut lying = COMPACT_CALL[4..].to_vec();
        let list = 16; // the list header, after the name
        lying.splice(list..list + 1, [0xFC, 0xFF, 0xFF, 0xFF, 0xFF, 0x07]);
        assert!(decode_request(&lying, Protocol::Compact).is_err());
        // Every truncation of a valid call is an error, never a panic.
        for p in [
            (Protocol::Compact, COMPACT_CALL),
            (Protocol::Binary, BINARY_CALL),
        ] {
            for n in 0..p.1.len() - 4 {
                assert!(decode_request(&p.1[4..4 + n], p.0).is_err(), "{n}");
            }
        }
    }
}
