//! The messages of `ThriftSourceProtocol`, framed: calls of `append` and `appendBatch` and
//! their `Status` replies, plus the `TApplicationException` a server answers to a method it
//! does not have. Encoding and decoding use the `thrift` crate's protocol implementations; the
//! struct code is what the Thrift compiler generates for Flume's IDL, written by hand.
//!
//! Decoding works on one frame already in memory, so no read can block or run past the frame.
//! The `thrift` crate allocates a string or binary field's length before reading it; every
//! decoder is configured with the frame's own length as the largest string and container, so
//! a lying length prefix inside a frame cannot allocate more than the frame holds.
//!
//! One job per module: [`codec`] picks the `thrift` protocol implementation for a frame and
//! its limits; [`event`] reads and writes the IDL's one struct; [`call`] the calls (encoded by
//! a client, decoded by a server); [`reply`] the replies (encoded by a server, decoded by a
//! client). The types the IDL defines besides the struct ([`Status`], [`Method`]) and the
//! error of every decoder ([`WireError`]) are here.

mod call;
mod codec;
mod event;
mod reply;
#[cfg(test)]
mod tests;

pub use call::{decode_request, encode_call, Request};
pub use event::{EventRef, ThriftFlumeEvent};
pub use reply::{decode_reply, encode_reply, encode_unknown_method};

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

/// The error mapping of a read of `what`.
fn malformed(what: &'static str) -> impl FnOnce(thrift::Error) -> WireError {
    move |source| WireError::Malformed { what, source }
}
