//! # agent — Sluice's Flume-compatible agent
//!
//! The agent reads a Flume properties file, checks it completely (every problem reported with
//! `file:line` and key, nothing silently dropped), and runs the flow it describes:
//!
//! ```text
//! source ─► interceptors ─► channel selector ─► channels ─► sink processor ─► sinks
//! ```
//!
//! - [`config`]: properties parsing, `${…}` substitution and config filters, Flume's key
//!   structure and validation.
//! - [`channel`]: the durable `file` channel (the `file_channel` engine) and the `memory`
//!   channel behind one [`channel::Channel`] type.
//! - [`source`], [`interceptor`], [`selector`], [`channel_processor`]: the put side.
//! - [`sink`], [`processor`], [`runner`]: the take side, with Flume's back-off.
//! - [`avro_event`], [`thrift_event`]: the agent's event as the events of the protocol
//!   crates, `avro_ipc` (Flume's Avro RPC, `AvroSourceProtocol` over Avro's Netty transport,
//!   for the `avro` source and sink) and `thrift_rpc` (Flume's Thrift RPC, for the `thrift`
//!   source and sink).
//! - [`metrics`]: Flume's counter names, served as Flume's JSON and as Prometheus text.
//! - [`agent`]: starting everything in order and stopping it cleanly.
//! - [`reload`]: live reload of the configuration (SIGHUP, a file watch, a poll), applied as a
//!   diff: only what changed is stopped, started or re-bound ([`topology`]: sink runner units).
//! - [`error_chain`]: an error and its causes on one line, each cause said once.
//! - [`flume_properties`]: the `-D` system properties of `flume-ng agent`'s command line.
//! - [`avro_client`]: `sluice avro-client`, Flume's `flume-ng avro-client`.
//!
//! The binary `sluice` (`src/main.rs`) is the command line: `sluice agent`, `sluice validate`
//! and `sluice avro-client`. See `docs/agent.md` for the operator's view.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod agent;
pub mod avro_client;
pub mod avro_event;
pub mod channel;
pub mod channel_processor;
pub mod config;
pub mod error_chain;
pub mod event;
pub mod flume_properties;
pub mod interceptor;
pub mod java_regex;
pub mod kafka;
pub mod metrics;
pub mod processor;
pub mod reload;
pub mod runner;
pub mod selector;
pub mod sink;
pub mod source;
pub mod stop;
#[cfg(test)]
mod test_net;
pub mod thrift_event;
pub mod tls;
pub mod topology;
