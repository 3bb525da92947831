//! Flume's Thrift RPC (`flume-ng-sdk/src/main/thrift/flume.thrift`, Flume 1.11), shared by the
//! `thrift` source and sink:
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
//! - [`client`]: a blocking client for the sink: connect and request timeouts, one call at a
//!   time.

pub mod client;
pub mod frame;
pub mod wire;

use crate::config::context::Ctx;

/// The Thrift protocol spoken inside the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `TCompactProtocol`, Flume's default.
    Compact,
    /// `TBinaryProtocol` (strict writes, lenient reads, as Java's defaults).
    Binary,
}

impl Protocol {
    /// Reads the `protocol` key: `compact` (the default) or `binary`, in any case.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let Some(value) = ctx.string("protocol") else {
            return Self::Compact;
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "compact" => Self::Compact,
            "binary" => Self::Binary,
            _ => {
                ctx.error(
                    "protocol",
                    format!(
                        "unknown Thrift protocol \"{}\"; known: compact, binary",
                        value.trim()
                    ),
                );
                Self::Compact
            }
        }
    }

    /// `compact` or `binary`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compact => "compact",
            Self::Binary => "binary",
        }
    }
}

/// Rejects Flume's `ssl` and `kerberos` switches when set to true (Sluice's Thrift components
/// speak plain TCP only) and marks the keys that only matter with them as read, with a warning
/// when present, so they are not reported as unknown. `extra` lists those keys.
pub fn reject_security(ctx: &Ctx<'_>, what: &str, extra: &[&str]) {
    for key in ["ssl", "kerberos"] {
        if ctx.bool(key, false) {
            ctx.error(
                key,
                format!(
                    "{key} = true is not supported by Sluice's {what}; it speaks plain TCP only"
                ),
            );
        }
    }
    for key in extra {
        if ctx.get(key).is_some() {
            ctx.warn(
                key,
                format!("ignored: Sluice's {what} supports neither ssl nor kerberos"),
            );
        }
    }
}
