//! `thrift`: sends events to a `ThriftSourceProtocol` server, Flume's `ThriftSource` or
//! Sluice's own (Flume's `ThriftSink`).
//!
//! Keys and Flume's defaults: `hostname` and `port` (required), `batch-size` (100),
//! `connect-timeout` (20000 ms), `request-timeout` (20000 ms; Flume's client needs at least
//! 1000, and so do both here), `reset-connection-interval` (0 s: never; the user guide's
//! spelling `connection-reset-interval` is read too), `protocol` (`compact`; or `binary`: the
//! `ThriftRpcClient` property, which Flume's sink passes through). `kerberos = true` and the
//! Kerberos keys `client-principal`, `client-keytab`, `server-principal` are refused: Sluice
//! has no Kerberos, and a security setting it would ignore is an error.
//!
//! TLS (rustls), Flume's keys: `ssl` (false), `truststore`, `truststore-password`,
//! `truststore-type` (PKCS12 or PEM; without a truststore, Flume 1.9's
//! `FLUME_SSL_TRUSTSTORE_*` variables, else the system's CA bundle), `trust-all-certs` (false;
//! true is loudly warned about), `keystore*` (a client certificate), `exclude-protocols` /
//! `include-protocols`, `exclude-cipher-suites` / `include-cipher-suites`, all read by
//! [`ClientTls`]. `hostname` is the name the server's certificate must carry. The handshake is
//! part of connecting: it must finish within `connect-timeout`, and a server the sink does not
//! trust is a failed connection (`ConnectionFailedCount`), its batch rolled back.
//!
//! One `process` call: take up to `batch-size` events in one channel transaction, send them in
//! one `appendBatch` call, and commit the take only when the server answered `OK`. Any other
//! outcome (`FAILED`, `ERROR`, `UNKNOWN`, an exception, a timeout, a broken or refused
//! connection, a reply that is not Thrift) rolls the events back into the channel, closes the
//! connection (a new one is opened for the next batch, as Flume does) and is returned as an
//! error, so the runner backs off and a failover or load_balance group moves on to its next
//! sink. An empty channel sends nothing and reports back-off.
//!
//! The connection is opened when there is a first batch to send (Flume also tries at start;
//! here an unreachable server is noticed, and counted in `ConnectionFailedCount`, when there is
//! something to deliver). Unlike Flume's Thrift client, which leaves it unbounded,
//! `connect-timeout` bounds the TCP connect (and the TLS handshake).

use super::avro::{check_server_name, component_name, tls_params};
use super::{Deliver, SinkContext, SinkError};
use crate::config::context::Ctx;
use crate::source::thrift::parse_protocol;
use crate::thrift_event::wire_batch;
use crate::tls::ClientTls;
use file_channel::Event;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use thrift_rpc::client::{ClientConfig, ClientError, Connection};
use thrift_rpc::wire;

/// Configuration of a thrift sink.
#[derive(Clone, Debug, PartialEq)]
pub struct ThriftSinkConfig {
    /// Server, protocol and timeouts.
    pub client: ClientConfig,
    /// TLS, when `ssl = true`: trust, protocols and cipher suites (following a changed
    /// truststore file).
    pub tls: Option<ClientTls>,
    /// Events per call and transaction. `batch-size`. Default: 100.
    pub batch_size: u32,
    /// Seconds after which the connection is closed and reopened, 0 for never.
    /// `reset-connection-interval`. Default: 0.
    pub reset_connection_interval_s: u64,
}

// `ClientTls` compares the settings it was built from (plain data), so equality is total.
impl Eq for ThriftSinkConfig {}

impl ThriftSinkConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let hostname = ctx.required("hostname").unwrap_or_default();
        let port = match ctx.get("port") {
            Some(_) => ctx.u64_in("port", 0, 1..=65_535) as u16,
            None => {
                ctx.required("port");
                0
            }
        };
        let reset_key =
            if ctx.has("reset-connection-interval") || !ctx.has("connection-reset-interval") {
                "reset-connection-interval"
            } else {
                "connection-reset-interval"
            };
        let reset_connection_interval_s = ctx.u64_in(reset_key, 0, 0..=u64::from(u32::MAX));
        if reset_key == "reset-connection-interval" && ctx.has("connection-reset-interval") {
            ctx.error(
                "connection-reset-interval",
                "give either reset-connection-interval or connection-reset-interval, not both",
            );
        }
        refuse_kerberos(ctx);
        let tls = ClientTls::parse(ctx, &component_name(ctx, "thrift sink"));
        if let Some(t) = &tls {
            check_server_name(ctx, t, &hostname);
        }
        Self {
            client: ClientConfig {
                hostname,
                port,
                protocol: parse_protocol(ctx),
                connect_timeout_ms: ctx.u64_in("connect-timeout", 20_000, 1000..=3_600_000),
                request_timeout_ms: ctx.u64_in("request-timeout", 20_000, 1000..=3_600_000),
            },
            tls,
            batch_size: ctx.u32_in(
                "batch-size",
                100,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
            reset_connection_interval_s,
        }
    }
}

/// Flume's Kerberos keys of the thrift sink: `kerberos = true` and any principal or keytab are
/// errors, since Sluice would send without the authentication they ask for.
fn refuse_kerberos(ctx: &Ctx<'_>) {
    if ctx.bool("kerberos", false) {
        ctx.error(
            "kerberos",
            "kerberos = true is not supported by Sluice's thrift sink (no Kerberos/SASL); remove it or set it to false",
        );
    }
    for key in ["client-principal", "client-keytab", "server-principal"] {
        if ctx.has(key) {
            ctx.mark_used(key);
            ctx.error(
                key,
                format!("{key} is a Kerberos setting, and Sluice's thrift sink has no Kerberos; remove it"),
            );
        }
    }
}

/// Why a batch was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The call itself failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `hostname` is not a name a certificate can be checked against.
    #[error("TLS to {addr}: {reason}")]
    ServerName {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server answered something else than `OK`.
    #[error("{addr} answered {} to appendBatch of {events} events", .status.name())]
    NotOk {
        /// `host:port`.
        addr: String,
        /// Its answer.
        status: wire::Status,
        /// The batch size sent.
        events: usize,
    },
}

/// The thrift sink.
#[derive(Debug)]
pub struct ThriftSink {
    config: ThriftSinkConfig,
    ctx: SinkContext,
    connection: Option<(Connection, Instant)>,
}

impl ThriftSink {
    /// A thrift sink; nothing is connected before the first batch.
    pub fn new(config: ThriftSinkConfig, ctx: SinkContext) -> Self {
        ctx.counters.lifetime.started();
        Self {
            config,
            ctx,
            connection: None,
        }
    }

    fn error(&self, source: DeliveryError) -> SinkError {
        SinkError::Thrift {
            sink: self.ctx.name.to_string(),
            source,
        }
    }

    fn close(&mut self) {
        if let Some((c, _)) = self.connection.take() {
            c.close();
            self.ctx
                .counters
                .connection_closed_count
                .fetch_add(1, Relaxed);
        }
    }

    /// Closes the connection once it is `reset-connection-interval` old.
    fn reset_if_due(&mut self) {
        let interval = self.config.reset_connection_interval_s;
        if interval == 0 {
            return;
        }
        if let Some((_, opened)) = &self.connection {
            if opened.elapsed() >= Duration::from_secs(interval) {
                tracing::debug!(sink = %self.ctx.name, "resetting the connection");
                self.close();
            }
        }
    }

    fn connection(&mut self) -> Result<&mut Connection, DeliveryError> {
        let pair = match self.connection.take() {
            Some(pair) => pair,
            None => {
                let c = &self.ctx.counters;
                let client = &self.config.client;
                let connected = tls_params(self.config.tls.as_ref(), &client.hostname)
                    .map_err(|reason| DeliveryError::ServerName {
                        addr: format!("{}:{}", client.hostname, client.port),
                        reason,
                    })
                    .and_then(|tls| Ok(Connection::connect_with_tls(client, tls)?));
                match connected {
                    Ok(conn) => {
                        c.connection_created_count.fetch_add(1, Relaxed);
                        tracing::info!(sink = %self.ctx.name, addr = conn.addr(), protocol = self.config.client.protocol.as_str(), "connected");
                        (conn, Instant::now())
                    }
                    Err(e) => {
                        c.connection_failed_count.fetch_add(1, Relaxed);
                        return Err(e);
                    }
                }
            }
        };
        Ok(&mut self.connection.insert(pair).0)
    }
}

impl Deliver for ThriftSink {
    fn context(&self) -> &SinkContext {
        &self.ctx
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size as usize
    }

    fn before_take(&mut self) -> Result<(), SinkError> {
        self.reset_if_due();
        Ok(())
    }

    fn deliver(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        let taken = events.len();
        // The batch as `thrift_rpc` encodes it (borrowed).
        let wire_events = wire_batch(&events);
        let outcome = self
            .connection()
            .and_then(|conn| match conn.append_batch(&wire_events) {
                Ok(wire::Status::Ok) => Ok(()),
                Ok(status) => Err(DeliveryError::NotOk {
                    addr: conn.addr().to_owned(),
                    status,
                    events: taken,
                }),
                Err(e) => Err(e.into()),
            });
        outcome.map_err(|e| {
            self.ctx.counters.event_write_fail.fetch_add(1, Relaxed);
            self.close();
            self.error(e)
        })
    }

    fn on_stop(&mut self) {
        self.close();
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Status;
    use crate::sink::test_support::{ctx, entries, sink_ctx};
    use crate::sink::Sink;
    use crate::thrift_event::from_wire_batch;
    use file_channel::Event;
    use std::io::Write;
    use std::net::TcpListener;
    use thrift_rpc::frame;
    use thrift_rpc::wire::{Method, Request};
    use thrift_rpc::Protocol;

    #[test]
    fn parse_flume_keys() {
        let list = entries(&[("hostname", "collector"), ("port", "4141")]);
        let x = ctx(&list);
        let c = ThriftSinkConfig::parse(&x);
        assert!(!x.has_errors());
        assert_eq!(
            c,
            ThriftSinkConfig {
                client: ClientConfig {
                    hostname: "collector".into(),
                    port: 4141,
                    protocol: Protocol::Compact,
                    connect_timeout_ms: 20_000,
                    request_timeout_ms: 20_000,
                },
                tls: None,
                batch_size: 100,
                reset_connection_interval_s: 0,
            }
        );
        let list = entries(&[
            ("hostname", "h"),
            ("port", "1"),
            ("batch-size", "7"),
            ("connect-timeout", "1500"),
            ("request-timeout", "2500"),
            ("connection-reset-interval", "60"),
            ("protocol", "binary"),
            ("ssl", "false"),
        ]);
        let x = ctx(&list);
        let c = ThriftSinkConfig::parse(&x);
        assert!(!x.has_errors());
        assert_eq!(
            (
                c.batch_size,
                c.client.connect_timeout_ms,
                c.client.request_timeout_ms,
                c.reset_connection_interval_s,
                c.client.protocol
            ),
            (7, 1500, 2500, 60, Protocol::Binary)
        );
        let list = entries(&[
            ("hostname", "h"),
            ("port", "1"),
            ("request-timeout", "500"),
            ("kerberos", "true"),
            ("client-principal", "flume/host@REALM"),
            ("client-keytab", "/etc/flume.keytab"),
            ("server-principal", "flume/collector@REALM"),
        ]);
        let x = ctx(&list);
        ThriftSinkConfig::parse(&x);
        assert!(x.has_error_for("request-timeout"));
        for key in [
            "kerberos",
            "client-principal",
            "client-keytab",
            "server-principal",
        ] {
            assert!(x.has_error_for(key), "{key}");
        }
    }

    /// A one-connection server answering each call with the next of `answers`, recording
    /// what it received.
    fn server(answers: Vec<wire::Status>) -> (u16, std::thread::JoinHandle<Vec<Vec<Event>>>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let t = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut answers = answers.into_iter();
            let (mut s, _) = l.accept().expect("accept");
            while let Ok(f) = frame::read_frame(&mut s, frame::MAX_FRAME_BYTES) {
                let Ok(Request::Call { seqid, events, .. }) =
                    wire::decode_request(&f, Protocol::Compact)
                else {
                    break;
                };
                got.push(from_wire_batch(events));
                let Some(a) = answers.next() else { break };
                let r = wire::encode_reply(Protocol::Compact, Method::AppendBatch.name(), seqid, a)
                    .expect("enc");
                s.write_all(&r).expect("reply");
            }
            got
        });
        (port, t)
    }

    fn config(port: u16, batch_size: u32) -> ThriftSinkConfig {
        ThriftSinkConfig {
            client: ClientConfig {
                hostname: "127.0.0.1".into(),
                port,
                protocol: Protocol::Compact,
                connect_timeout_ms: 2000,
                request_timeout_ms: 2000,
            },
            tls: None,
            batch_size,
            reset_connection_interval_s: 0,
        }
    }

    #[test]
    fn commits_only_after_ok_and_rolls_back_otherwise() {
        let (port, server) = server(vec![wire::Status::Ok, wire::Status::Failed]);
        let sctx = sink_ctx(&["a", "b", "c"]);
        let channel = sctx.channel.clone();
        let counters = sctx.counters.clone();
        let mut s = ThriftSink::new(config(port, 2), sctx);
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(channel.len(), 1);
        let e = s.process().expect_err("FAILED");
        assert_eq!(
            e.to_string(),
            format!("sink k1: 127.0.0.1:{port} answered FAILED to appendBatch of 1 events")
        );
        assert_eq!(channel.len(), 1, "rolled back");
        // The connection was dropped; the server is gone, so the next attempt cannot connect.
        let got = server.join().expect("server");
        let e = s.process().expect_err("refused");
        assert!(
            e.to_string().contains("cannot connect to 127.0.0.1:"),
            "{e}"
        );
        assert_eq!(channel.len(), 1);
        let bodies: Vec<Vec<&[u8]>> = got
            .iter()
            .map(|b| b.iter().map(|e| e.body.as_slice()).collect())
            .collect();
        assert_eq!(bodies, vec![vec![&b"a"[..], b"b"], vec![b"c"]]);
        assert_eq!(got[0][0].headers, vec![("h".to_owned(), "v".to_owned())]);
        assert_eq!(counters.connection_created_count.load(Relaxed), 1);
        assert_eq!(counters.connection_closed_count.load(Relaxed), 1);
        assert_eq!(counters.connection_failed_count.load(Relaxed), 1);
        assert_eq!(counters.event_drain_success_count.load(Relaxed), 2);
        assert_eq!(counters.event_drain_attempt_count.load(Relaxed), 4);
        assert_eq!(counters.batch_complete_count.load(Relaxed), 1);
        assert_eq!(counters.batch_underflow_count.load(Relaxed), 2);
    }

    #[test]
    fn a_silent_server_times_out_and_a_foreign_one_is_named() {
        // Accepts and never answers.
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let sctx = sink_ctx(&["a"]);
        let channel = sctx.channel.clone();
        let mut cfg = config(port, 10);
        cfg.client.request_timeout_ms = 1000;
        let mut s = ThriftSink::new(cfg, sctx);
        let e = s.process().expect_err("timeout");
        assert_eq!(
            e.to_string(),
            format!("sink k1: no reply from 127.0.0.1:{port} within 1000 ms")
        );
        assert_eq!(channel.len(), 1);
        drop(l);
        // An HTTP server.
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let _ = frame::read_frame(&mut s, frame::MAX_FRAME_BYTES);
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .expect("write");
        });
        let mut s = ThriftSink::new(config(port, 10), {
            let mut c = sink_ctx(&[]);
            c.channel = channel.clone();
            c
        });
        let e = s.process().expect_err("http");
        assert!(e.to_string().contains("the peer speaks HTTP"), "{e}");
        assert_eq!(channel.len(), 1);
        t.join().expect("server");
        // An empty channel sends nothing.
        let mut s = ThriftSink::new(config(1, 10), sink_ctx(&[]));
        assert_eq!(s.process().expect("empty"), Status::Backoff);
    }
}
