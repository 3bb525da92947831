//! `avro`: Flume's `AvroSink`, the sending end of a tier: takes a batch from its channel and
//! delivers it with one `appendBatch` call of `AvroSourceProtocol` to an avro source (ours or
//! Flume's), over Avro IPC on Avro's Netty transport.
//!
//! Keys and Flume's defaults: `hostname` and `port` (required), `batch-size` (100),
//! `connect-timeout` (20000 ms) and `request-timeout` (20000 ms; a value under 1000 means the
//! default, with a warning, as in Flume's RPC client), `reset-connection-interval`
//! (seconds; 0, the default, never), `compression-type` (`none`; or `deflate`, which the
//! receiving source must use too) with `compression-level` (6; 0–9).
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
//! The take is committed only after the peer answered `OK`; on any other outcome (`FAILED`,
//! an error answer, a timeout, a broken or refused connection) the batch is rolled back, the
//! connection dropped, and the error returned, so a failover or load-balancing group moves on
//! and this sink reconnects on its next turn. An empty channel sends nothing. Counters:
//! Flume's `SinkCounter` names (`ConnectionCreatedCount`, `ConnectionClosedCount`,
//! `ConnectionFailedCount`, `BatchCompleteCount`, `BatchUnderflowCount`, `BatchEmptyCount`,
//! `EventDrainAttemptCount`, `EventDrainSuccessCount`) plus `EventWriteFail`.

use super::{Deliver, SinkContext, SinkError};
use crate::avro_event::wire_batch;
use crate::config::context::Ctx;
use crate::source::avro::CompressionType;
use crate::tls::ClientTls;
use avro_ipc::client::{AvroClient, ClientSettings, TlsClientParams};
use avro_ipc::protocol::Status as RpcStatus;
use file_channel::Event;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The smallest connect and request timeouts Flume's RPC client accepts.
pub const MIN_TIMEOUT_MS: u64 = 1000;
/// Flume's default connect and request timeouts, also used for values below the minimum.
pub const DEFAULT_TIMEOUT_MS: u64 = 20_000;

/// Configuration of an avro sink.
#[derive(Clone, Debug, PartialEq)]
pub struct AvroSinkConfig {
    /// Where to connect and how.
    pub client: ClientSettings,
    /// TLS, when `ssl = true`: trust, protocols and cipher suites (following a changed
    /// truststore file).
    pub tls: Option<ClientTls>,
    /// Events per call and transaction. `batch-size`. Default: 100.
    pub batch_size: u32,
    /// Seconds after which the connection is replaced, 0 for never.
    /// `reset-connection-interval`. Default: 0.
    pub reset_connection_interval_s: u64,
}

fn timeout_ms(ctx: &Ctx<'_>, key: &str) -> u64 {
    let v = ctx.u64_in(key, DEFAULT_TIMEOUT_MS, 0..=86_400_000);
    if v < MIN_TIMEOUT_MS {
        ctx.warn(
            key,
            format!(
                "{v} ms is less than {MIN_TIMEOUT_MS} ms; using the default {DEFAULT_TIMEOUT_MS} ms, as Flume does"
            ),
        );
        return DEFAULT_TIMEOUT_MS;
    }
    v
}

// `ClientTls` compares the settings it was built from (plain data), so equality is total.
impl Eq for AvroSinkConfig {}

impl AvroSinkConfig {
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
        let tls = ClientTls::parse(ctx, &component_name(ctx, "avro sink"));
        if let Some(t) = &tls {
            check_server_name(ctx, t, &hostname);
        }
        let compression = CompressionType::parse(ctx);
        let level = ctx.u32_in("compression-level", 6, 0..=9);
        Self {
            client: ClientSettings {
                hostname,
                port,
                connect_timeout_ms: timeout_ms(ctx, "connect-timeout"),
                request_timeout_ms: timeout_ms(ctx, "request-timeout"),
                deflate_level: (compression == CompressionType::Deflate).then_some(level),
            },
            tls,
            batch_size: ctx.u32_in(
                "batch-size",
                100,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
            reset_connection_interval_s: ctx.u64_in(
                "reset-connection-interval",
                0,
                0..=u64::from(u32::MAX),
            ),
        }
    }
}

/// `kind` and the component's key prefix (`avro sink a1.sinks.k1`), to name it in TLS
/// messages logged outside the configuration's diagnostics.
pub(crate) fn component_name(ctx: &Ctx<'_>, kind: &str) -> String {
    format!("{kind} {}", ctx.full_key("").trim_end_matches('.'))
}

/// Records an error on `hostname` when it cannot be a name to verify a certificate against.
pub(crate) fn check_server_name(ctx: &Ctx<'_>, tls: &ClientTls, hostname: &str) {
    if hostname.is_empty() {
        return;
    }
    if let Err(e) = tls.server_name(hostname) {
        ctx.error(
            "hostname",
            format!("with ssl = true, hostname is checked against the server's certificate: {e}"),
        );
    }
}

/// The client configuration and server name of the next connection to `hostname`: fetched
/// anew each time, so a changed truststore applies to the next connection.
pub(crate) fn tls_params(
    tls: Option<&ClientTls>,
    hostname: &str,
) -> Result<Option<TlsClientParams>, String> {
    let Some(tls) = tls else { return Ok(None) };
    let name = tls.server_name(hostname).map_err(|e| e.to_string())?;
    Ok(Some((tls.client_config(), name)))
}

/// The avro sink.
#[derive(Debug)]
pub struct AvroSink {
    config: AvroSinkConfig,
    ctx: SinkContext,
    client: Option<(AvroClient, Instant)>,
}

impl AvroSink {
    /// An avro sink; it connects on its first batch.
    pub fn new(config: AvroSinkConfig, ctx: SinkContext) -> Self {
        ctx.counters.lifetime.started();
        Self {
            config,
            ctx,
            client: None,
        }
    }

    fn delivery_error(&self, reason: String) -> SinkError {
        SinkError::Delivery {
            sink: self.ctx.name.to_string(),
            peer: format!(
                "{}:{}",
                self.config.client.hostname, self.config.client.port
            ),
            reason,
        }
    }

    fn close(&mut self) {
        if self.client.take().is_some() {
            self.ctx
                .counters
                .connection_closed_count
                .fetch_add(1, Relaxed);
        }
    }

    /// The connection, made (or remade after `reset-connection-interval`) if needed.
    fn connection(&mut self) -> Result<&mut AvroClient, SinkError> {
        let interval = self.config.reset_connection_interval_s;
        if interval > 0
            && self
                .client
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() >= Duration::from_secs(interval))
        {
            tracing::debug!(sink = %self.ctx.name, "reset-connection-interval reached; reconnecting");
            self.close();
        }
        if self.client.is_none() {
            let connected = tls_params(self.config.tls.as_ref(), &self.config.client.hostname)
                .map_err(|reason| self.delivery_error(reason))
                .and_then(|tls| {
                    AvroClient::connect_with_tls(&self.config.client, tls)
                        .map_err(|e| self.delivery_error(e.to_string()))
                });
            match connected {
                Ok(c) => {
                    tracing::info!(sink = %self.ctx.name, peer = %c.peer(), "avro sink connected");
                    self.ctx
                        .counters
                        .connection_created_count
                        .fetch_add(1, Relaxed);
                    self.client = Some((c, Instant::now()));
                }
                Err(e) => {
                    self.ctx
                        .counters
                        .connection_failed_count
                        .fetch_add(1, Relaxed);
                    return Err(e);
                }
            }
        }
        let not_connected = self.delivery_error("not connected".into());
        self.client.as_mut().map(|(c, _)| c).ok_or(not_connected)
    }
}

impl Deliver for AvroSink {
    fn context(&self) -> &SinkContext {
        &self.ctx
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size as usize
    }

    fn deliver(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        let n = events.len();
        let reason = match self.connection()?.append_batch(&wire_batch(&events)) {
            Ok(RpcStatus::Ok) => return Ok(()),
            Ok(other) => format!("appendBatch of {n} events answered {other:?}"),
            Err(e) => e.to_string(),
        };
        self.ctx.counters.event_write_fail.fetch_add(1, Relaxed);
        self.close();
        Err(self.delivery_error(reason))
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
    use avro_ipc::call::{Request, Response};
    use avro_ipc::server::{serve_connection, ServerShared};
    use std::sync::atomic::AtomicU32;
    use std::sync::{Arc, Mutex};

    /// An avro server answering every `appendBatch` with `answer` and recording the bodies.
    struct FakeSource {
        port: u16,
        answer: Arc<AtomicU32>,
        received: Arc<Mutex<Vec<String>>>,
        _runtime: tokio::runtime::Runtime,
    }

    fn fake_source() -> FakeSource {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let answer = Arc::new(AtomicU32::new(RpcStatus::Ok.index()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (answer.clone(), received.clone());
        let shared = Arc::new(ServerShared {
            source: "fake".into(),
            deflate_level: None,
            known_clients: Default::default(),
            read_timeout: None,
            handler: Arc::new(move |req| {
                let (a, r) = (a.clone(), r.clone());
                Box::pin(async move {
                    let status =
                        RpcStatus::from_index(a.load(Relaxed)).unwrap_or(RpcStatus::Unknown);
                    if let (Request::AppendBatch(events), RpcStatus::Ok) = (req, status) {
                        r.lock().expect("lock").extend(
                            events
                                .iter()
                                .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
                        );
                    }
                    Response::Status(status)
                })
            }),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        runtime.spawn(async move {
            while let Ok((socket, peer)) = listener.accept().await {
                let never = std::future::pending();
                tokio::spawn(serve_connection(socket, peer, shared.clone(), never));
            }
        });
        FakeSource {
            port,
            answer,
            received,
            _runtime: runtime,
        }
    }

    fn config(port: u16, batch_size: u32) -> AvroSinkConfig {
        AvroSinkConfig {
            client: ClientSettings {
                hostname: "127.0.0.1".into(),
                port,
                connect_timeout_ms: 2000,
                request_timeout_ms: 2000,
                deflate_level: None,
            },
            tls: None,
            batch_size,
            reset_connection_interval_s: 0,
        }
    }

    #[test]
    fn delivers_in_batches_and_commits_after_ok() {
        let fake = fake_source();
        let sctx = sink_ctx(&["a", "b", "c"]);
        let (channel, counters) = (sctx.channel.clone(), sctx.counters.clone());
        let mut sink = AvroSink::new(config(fake.port, 2), sctx);
        assert_eq!(sink.process().expect("ok"), Status::Ready);
        assert_eq!(sink.process().expect("ok"), Status::Ready);
        assert_eq!(sink.process().expect("ok"), Status::Backoff);
        assert!(channel.is_empty());
        assert_eq!(*fake.received.lock().expect("lock"), ["a", "b", "c"]);
        assert_eq!(counters.connection_created_count.load(Relaxed), 1);
        assert_eq!(counters.batch_complete_count.load(Relaxed), 1);
        assert_eq!(counters.batch_underflow_count.load(Relaxed), 1);
        assert_eq!(counters.batch_empty_count.load(Relaxed), 1);
        assert_eq!(counters.event_drain_attempt_count.load(Relaxed), 3);
        assert_eq!(counters.event_drain_success_count.load(Relaxed), 3);
        sink.stop();
        assert_eq!(counters.connection_closed_count.load(Relaxed), 1);
    }

    #[test]
    fn failed_answer_rolls_back_and_reconnects() {
        let fake = fake_source();
        fake.answer.store(RpcStatus::Failed.index(), Relaxed);
        let sctx = sink_ctx(&["a", "b"]);
        let (channel, counters) = (sctx.channel.clone(), sctx.counters.clone());
        let mut sink = AvroSink::new(config(fake.port, 10), sctx);
        let err = sink.process().expect_err("FAILED");
        assert!(err.to_string().contains("answered Failed"), "{err}");
        assert_eq!(channel.len(), 2, "rolled back");
        assert_eq!(counters.connection_closed_count.load(Relaxed), 1);
        assert_eq!(counters.event_write_fail.load(Relaxed), 1);
        assert_eq!(counters.event_drain_success_count.load(Relaxed), 0);
        fake.answer.store(RpcStatus::Ok.index(), Relaxed);
        assert_eq!(sink.process().expect("ok"), Status::Ready);
        assert!(channel.is_empty());
        assert_eq!(counters.connection_created_count.load(Relaxed), 2);
        assert_eq!(*fake.received.lock().expect("lock"), ["a", "b"]);
    }

    #[test]
    fn unreachable_peer_counts_a_failed_connection_and_keeps_the_events() {
        let (_refusing, port) = crate::test_net::refused_port();
        let sctx = sink_ctx(&["a"]);
        let (channel, counters) = (sctx.channel.clone(), sctx.counters.clone());
        let mut sink = AvroSink::new(config(port, 10), sctx);
        let err = sink.process().expect_err("refused");
        assert!(
            err.to_string().contains(&format!(
                "delivery to 127.0.0.1:{port} failed: cannot connect"
            )),
            "{err}"
        );
        assert_eq!(channel.len(), 1);
        assert_eq!(counters.connection_failed_count.load(Relaxed), 1);
    }

    #[test]
    fn empty_channel_does_not_connect_and_reset_interval_reconnects() {
        let fake = fake_source();
        let sctx = sink_ctx(&[]);
        let (channel, counters) = (sctx.channel.clone(), sctx.counters.clone());
        let mut cfg = config(fake.port, 10);
        cfg.reset_connection_interval_s = 1;
        let mut sink = AvroSink::new(cfg, sctx);
        assert_eq!(sink.process().expect("ok"), Status::Backoff);
        assert_eq!(counters.connection_created_count.load(Relaxed), 0);
        let put = |body: &str| {
            let mut tx = channel.transaction();
            tx.put(&file_channel::Event::new(body)).expect("put");
            tx.commit().expect("commit");
        };
        put("a");
        assert_eq!(sink.process().expect("ok"), Status::Ready);
        std::thread::sleep(Duration::from_millis(1100));
        put("b");
        assert_eq!(sink.process().expect("ok"), Status::Ready);
        assert_eq!(counters.connection_created_count.load(Relaxed), 2);
        assert_eq!(counters.connection_closed_count.load(Relaxed), 1);
        assert_eq!(*fake.received.lock().expect("lock"), ["a", "b"]);
    }

    #[test]
    fn a_peer_speaking_http_is_a_clear_error() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        });
        let sctx = sink_ctx(&["a"]);
        let channel = sctx.channel.clone();
        let mut sink = AvroSink::new(config(port, 10), sctx);
        let err = sink.process().expect_err("not avro");
        assert!(
            err.to_string().contains(&format!(
                "127.0.0.1:{port} does not speak Flume's Avro protocol: not an Avro Netty frame"
            )),
            "{err}"
        );
        assert_eq!(channel.len(), 1, "rolled back");
        server.join().expect("server");
    }

    #[test]
    fn keys_defaults_and_errors() {
        let list = entries(&[("hostname", "h"), ("port", "4141")]);
        let c = ctx(&list);
        let cfg = AvroSinkConfig::parse(&c);
        assert!(c.finish("sink k1").errors.is_empty());
        assert_eq!(cfg.batch_size, 100);
        assert_eq!(cfg.client.connect_timeout_ms, 20_000);
        assert_eq!(cfg.client.request_timeout_ms, 20_000);
        assert_eq!(cfg.client.deflate_level, None);
        assert_eq!(cfg.reset_connection_interval_s, 0);
        let list = entries(&[
            ("hostname", "h"),
            ("port", "4141"),
            ("compression-type", "deflate"),
            ("compression-level", "9"),
            ("request-timeout", "10"),
            ("batch-size", "7"),
        ]);
        let c = ctx(&list);
        let cfg = AvroSinkConfig::parse(&c);
        let d = c.finish("sink k1");
        assert!(d.errors.is_empty());
        assert_eq!(cfg.client.deflate_level, Some(9));
        assert_eq!(cfg.client.request_timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(cfg.batch_size, 7);
        assert!(d
            .warnings
            .iter()
            .any(|w| w.key.as_deref() == Some("a1.sinks.k1.request-timeout")));
        let list = entries(&[("port", "0"), ("compression-level", "10")]);
        let c = ctx(&list);
        AvroSinkConfig::parse(&c);
        let keys: Vec<_> = c
            .finish("sink k1")
            .errors
            .iter()
            .filter_map(|p| p.key.clone())
            .collect();
        for k in ["hostname", "port", "compression-level"] {
            assert!(keys.contains(&format!("a1.sinks.k1.{k}")), "{k}: {keys:?}");
        }
    }

    #[test]
    fn ssl_keys_make_a_tls_client_and_hostname_must_be_a_certificate_name() {
        let list = entries(&[
            ("hostname", "collector.example"),
            ("port", "4141"),
            ("ssl", "true"),
            ("trust-all-certs", "true"),
        ]);
        let c = ctx(&list);
        let cfg = AvroSinkConfig::parse(&c);
        assert!(c.finish("sink k1").errors.is_empty());
        let tls = cfg.tls.expect("ssl = true");
        assert!(tls.trusts_all_certs());
        let params = tls_params(Some(&tls), "collector.example").expect("a DNS name");
        assert!(params.is_some());

        let list = entries(&[
            ("hostname", "not a host name"),
            ("port", "4141"),
            ("ssl", "true"),
            ("trust-all-certs", "true"),
        ]);
        let c = ctx(&list);
        AvroSinkConfig::parse(&c);
        assert!(c.has_error_for("hostname"));

        // Without ssl, no TLS and no handshake.
        let list = entries(&[("hostname", "h"), ("port", "4141"), ("ssl", "false")]);
        let c = ctx(&list);
        assert_eq!(AvroSinkConfig::parse(&c).tls, None);
        assert!(c.finish("sink k1").errors.is_empty());
    }
}
