//! Replies: the `Status` a server answers to a call, or the `TApplicationException`
//! (`UNKNOWN_METHOD`) to a call of a method it does not have; encoded, framed, by a server and
//! decoded from a frame by a client, which checks that the reply answers its call.

use super::codec::{check_protocol, finish, input, output};
use super::{malformed, Method, Status, WireError};
use crate::frame;
use crate::Protocol;
use thrift::protocol::{
    TFieldIdentifier, TMessageIdentifier, TMessageType, TStructIdentifier, TType,
};
use thrift::{ApplicationError, ApplicationErrorKind};

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
