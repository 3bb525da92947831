//! # thrift-rpc — Flume's Thrift RPC
//!
//! `ThriftSourceProtocol` of Flume's `flume-ng-sdk/src/main/thrift/flume.thrift` (Flume 1.11),
//! spoken by Sluice's `thrift` source and sink:
//!
//! ```text
//! struct ThriftFlumeEvent { 1: required map<string, string> headers, 2: required binary body }
//! enum Status { OK, FAILED, ERROR, UNKNOWN }
//! service ThriftSourceProtocol {
//!   Status append(1: ThriftFlumeEvent event),
//!   Status appendBatch(1: list<ThriftFlumeEvent> events),
//! }
//! ```
//!
//! Flume serves and calls it over framed transport (a 4-byte big-endian length before every
//! message), with the compact protocol by default or the binary one (`protocol = binary`).
//!
//! - [`frame`]: the framing, with a cap on the frame length so a peer that speaks something
//!   else (HTTP, TLS, unframed Thrift) gets a clear error instead of a huge allocation.
//! - [`wire`]: the messages, encoded and decoded with the `thrift` crate's protocol
//!   implementations (`TCompactInputProtocol`, `TBinaryOutputProtocol`, ...), the struct
//!   read/write code written by hand as the Thrift compiler would generate it (the IDL has one
//!   struct, one enum and two methods, so no generated file and no compiler are needed).
//! - [`client`]: a blocking client for the sink, over TCP or TLS (rustls): connect and request
//!   timeouts, one call at a time.
//!
//! The crate knows nothing of an agent: events are the IDL's [`ThriftFlumeEvent`] (decoded)
//! and [`EventRef`] (borrowed, to encode), which a user maps to its own event type; which
//! protocol to speak is a [`Protocol`] value, however the user configures it.
//!
//! Every decoder takes bytes from a peer and returns a typed error for anything that is not
//! what it expects; none panics or allocates beyond the frame it was given (the fuzz target
//! `thrift_rpc_decode` in `fuzz/` and `tests/fuzz_corpus.rs` check that).

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod client;
pub mod frame;
pub mod wire;

pub use wire::{EventRef, ThriftFlumeEvent};

/// The Thrift protocol spoken inside the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `TCompactProtocol`, Flume's default.
    Compact,
    /// `TBinaryProtocol` (strict writes, lenient reads, as Java's defaults).
    Binary,
}

impl Protocol {
    /// `compact` or `binary`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compact => "compact",
            Self::Binary => "binary",
        }
    }
}
