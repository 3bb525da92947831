//! Calls of `append` and `appendBatch`: encoded, framed, by a client; decoded from a frame by a
//! server, which answers a call of any other method with an exception (see [`super::reply`]).

use super::codec::{check_protocol, finish, input, output};
use super::event::{len_i32, read_event, write_event, EventRef, ThriftFlumeEvent};
use super::{malformed, Method, WireError};
use crate::frame;
use crate::Protocol;
use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TListIdentifier, TMessageIdentifier, TMessageType,
    TStructIdentifier, TType,
};

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
        events: Vec<ThriftFlumeEvent>,
    },
    /// A call of a method `ThriftSourceProtocol` does not have (answered with an exception).
    UnknownMethod {
        /// Its name.
        name: String,
        /// The sequence id to echo.
        seqid: i32,
    },
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
) -> Result<Vec<ThriftFlumeEvent>, WireError> {
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

/// Encodes a framed call of `method` with `events` (`append` sends the first one only).
pub fn encode_call(
    protocol: Protocol,
    method: Method,
    seqid: i32,
    events: &[EventRef<'_>],
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
                write_event(&mut *o, *e).map_err(enc)?;
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
                    write_event(&mut *o, *e).map_err(enc)?;
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
