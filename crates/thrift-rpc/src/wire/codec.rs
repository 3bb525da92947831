//! Which of the `thrift` crate's protocol implementations reads or writes a frame, with the
//! limits that keep a lying length inside a frame from allocating more than the frame holds,
//! and the check of a frame's first byte that names the protocol a peer really speaks.

use super::WireError;
use crate::frame::{self, describe_foreign};
use crate::Protocol;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol,
    TInputProtocol, TOutputProtocol,
};
use thrift::TConfiguration;

/// The protocol's first byte: 0x82 for compact; 0x80 (strict binary's version) or, for
/// lenient binary, the high byte of a name length (0).
pub(super) fn check_protocol(frame: &[u8], protocol: Protocol) -> Result<(), WireError> {
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

/// A reader of `frame` in `protocol`, limited by the frame's length.
pub(super) fn input<'a>(frame: &'a [u8], protocol: Protocol) -> Box<dyn TInputProtocol + 'a> {
    let config = limits(frame);
    match protocol {
        Protocol::Compact => Box::new(TCompactInputProtocol::with_config(frame, config)),
        Protocol::Binary => Box::new(TBinaryInputProtocol::with_config(frame, false, config)),
    }
}

/// A writer into `buf` in `protocol` (strict binary, as Java writes).
pub(super) fn output<'a>(
    buf: &'a mut Vec<u8>,
    protocol: Protocol,
) -> Box<dyn TOutputProtocol + 'a> {
    match protocol {
        Protocol::Compact => Box::new(TCompactOutputProtocol::new(buf)),
        Protocol::Binary => Box::new(TBinaryOutputProtocol::new(buf, true)),
    }
}

/// Fills in the length of a frame begun with [`frame::start_frame`], or says it is too large.
pub(super) fn finish(
    mut buf: Vec<u8>,
    what: &'static str,
    max_frame: usize,
) -> Result<Vec<u8>, WireError> {
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
