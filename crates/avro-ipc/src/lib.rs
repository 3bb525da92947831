//! # avro-ipc — Flume's Avro RPC
//!
//! Avro IPC as Flume runs it between agents: the `AvroSourceProtocol` of Flume's `flume.avdl`
//! spoken over Avro's Netty transport, so a Sluice agent can sit in any tier of a Flume
//! deployment (an `avro` sink feeding a Flume `AvroSource`, a Flume `AvroSink` or
//! `NettyAvroRpcClient` feeding Sluice's `avro` source).
//!
//! One job per module:
//! - [`frame`]: the Netty transport framing (`serial`, buffer count, length-prefixed buffers).
//! - [`compression`]: `compression-type = deflate`, a zlib stream over the whole connection.
//! - [`protocol`]: the protocol text Flume generates, its MD5, and the `Status` enum.
//! - [`event`]: the protocol's record, `AvroFlumeEvent`, as a bare Avro binary datum.
//! - [`handshake`]: Avro's `HandshakeRequest` / `HandshakeResponse` records.
//! - [`call`]: call requests and responses (metadata, message name, parameters, error flag).
//! - [`server`]: one connection of a server: handshake once, then calls, each answered by a
//!   handler the user supplies.
//! - [`client`]: a blocking connection, over TCP or TLS (rustls): connect, handshake, `append`
//!   and `appendBatch`.
//!
//! The data (records, maps, unions) is encoded by the apache-avro crate; the framing and the
//! handshake logic follow Avro's specification ("Protocol Wire Format", "Handshake", "Call
//! Format") and Avro's Netty transport, which frames every request and response the same way.
//!
//! The crate knows nothing of an agent: events are [`AvroFlumeEvent`] (decoded) and
//! [`EventRef`] (borrowed, to encode), which a user maps to its own event type; who may
//! connect (Flume's `ipFilterRules`) and what a call does are the user's. Every decoder returns
//! a typed error for bytes it does not understand and never panics (the fuzz target
//! `avro_ipc_decode` in `fuzz/` and `tests/fuzz_corpus.rs` check that).

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod call;
pub mod client;
pub mod compression;
pub mod event;
pub mod frame;
pub mod handshake;
pub mod protocol;
pub mod server;

pub use event::{AvroFlumeEvent, EventRef};

/// Why bytes from a peer are not Avro IPC of Flume's protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The Netty framing is broken.
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
    /// The zlib stream is broken.
    #[error(transparent)]
    Compression(#[from] compression::CompressionError),
    /// A datum (handshake, metadata, message, parameters, response) did not decode.
    #[error("malformed {what}: {reason}")]
    Datum {
        /// Which part of the message.
        what: &'static str,
        /// apache-avro's words or ours.
        reason: String,
    },
    /// The peer does not speak `AvroSourceProtocol`.
    #[error("incompatible protocol: {0}")]
    Protocol(String),
}

impl WireError {
    /// A datum error for `what`.
    pub fn datum(what: &'static str, reason: impl ToString) -> Self {
        Self::Datum {
            what,
            reason: reason.to_string(),
        }
    }
}
