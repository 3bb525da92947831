//! `avro`: Flume's `AvroSource`, the receiving end of a tier: serves `AvroSourceProtocol`
//! (`append`, `appendBatch`) over Avro IPC on Avro's Netty transport, so Flume's `avro` sinks,
//! `NettyAvroRpcClient`s and our own `avro` sink can deliver to it.
//!
//! Keys and Flume's defaults: `bind` and `port` (required), `threads` (0 or less: unbounded;
//! most calls processed at once across all connections), `compression-type` (`none`; or `deflate`: zlib
//! on the whole connection, the senders must use it too), `ipFilter` (false) with
//! `ipFilterRules` (required then; Flume's `allow|deny:ip|name:pattern` list, first match
//! wins, see [`crate::avro_ipc::ip_filter`]). `ssl = true` is refused: we have no TLS.
//!
//! A call is answered `OK` only after its events were committed to every required channel
//! (one transaction per call); `FAILED` if a channel refused them (full, error), so the sender
//! rolls back and retries. A peer that does not speak the protocol is logged with its address
//! and disconnected. Counters: Flume's `OpenConnectionCount`, `AppendReceivedCount`,
//! `AppendAcceptedCount`, `AppendBatchReceivedCount`, `AppendBatchAcceptedCount`,
//! `EventReceivedCount`, `EventAcceptedCount`, plus `ChannelWriteFail`.
//!
//! Shutdown: the listener closes, connections stop reading, calls already received are
//! committed and answered, then connections close.

use super::{commit, BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::avro_ipc::call::{Request, Response};
use crate::avro_ipc::ip_filter::{self, IpFilter};
use crate::avro_ipc::protocol::Status;
use crate::avro_ipc::server::{serve_connection, CallHandler, ServerShared};
use crate::config::context::Ctx;
use crate::stop::Stop;
use file_channel::Event;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Zlib level of the source's responses with `compression-type = deflate` (Flume's
/// `ZlibEncoder(6)`).
const RESPONSE_DEFLATE_LEVEL: u32 = 6;

/// `compression-type` of the avro source and sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionType {
    /// `none`.
    None,
    /// `deflate`.
    Deflate,
}

impl CompressionType {
    /// Reads `compression-type` (`none` or `deflate`, any case; default `none`).
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        match ctx
            .string_or("compression-type", "none")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => Self::None,
            "deflate" => Self::Deflate,
            other => {
                ctx.error(
                    "compression-type",
                    format!("expected none or deflate, got \"{other}\""),
                );
                Self::None
            }
        }
    }
}

/// Refuses `ssl = true` (we have no TLS) with an error on the key.
pub fn refuse_ssl(ctx: &Ctx<'_>, component: &str) {
    if ctx.bool("ssl", false) {
        ctx.error(
            "ssl",
            format!("Sluice's {component} has no SSL/TLS; remove ssl or set it to false"),
        );
    }
}

/// Configuration of an avro source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvroSourceConfig {
    /// Address to listen on. `bind`.
    pub bind: String,
    /// Port. `port`.
    pub port: u16,
    /// Most calls processed at once. `threads`. Default: 0, unbounded.
    pub threads: Option<u32>,
    /// `compression-type`. Default: none.
    pub compression: CompressionType,
    /// `ipFilterRules` when `ipFilter = true`. Default: no filter.
    pub ip_filter: Option<IpFilter>,
}

impl AvroSourceConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let bind = ctx.required("bind").unwrap_or_default();
        let port = match ctx.get("port") {
            Some(_) => ctx.u64_in("port", 0, 0..=65_535) as u16,
            None => {
                ctx.required("port");
                0
            }
        };
        // Flume: 0 (the default) or less is an unbounded worker pool.
        let threads = match ctx.i64_in("threads", 0, i64::from(i32::MIN)..=65_536) {
            n if n <= 0 => None,
            n => Some(n as u32),
        };
        refuse_ssl(ctx, "avro source");
        let ip_filter = if ctx.bool("ipFilter", false) {
            match ctx.get("ipFilterRules") {
                None => {
                    ctx.error("ipFilterRules", "required when ipFilter is true");
                    None
                }
                Some(e) => match IpFilter::parse(&e.value) {
                    Ok(f) => Some(f),
                    Err(reason) => {
                        ctx.error("ipFilterRules", reason);
                        None
                    }
                },
            }
        } else {
            None
        };
        Self {
            bind,
            port,
            threads,
            compression: CompressionType::parse(ctx),
            ip_filter,
        }
    }
}

/// The avro source.
#[derive(Debug)]
pub struct AvroSource {
    config: AvroSourceConfig,
    ctx: SourceContext,
}

impl AvroSource {
    /// An avro source; nothing is bound before `start`.
    pub fn new(config: AvroSourceConfig, ctx: SourceContext) -> Self {
        Self { config, ctx }
    }
}

impl EventDrivenSource for AvroSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let (listener, local) = self
                .ctx
                .bind_tcp(&self.config.bind, self.config.port)
                .await?;
            tracing::info!(source = %self.ctx.name, addr = %local, compression = ?self.config.compression, "avro source listening");
            self.ctx.counters.lifetime.started();
            let serve: BoxFuture<()> = Box::pin(serve(listener, self.config, self.ctx, stop));
            Ok(serve)
        })
    }
}

fn handler(ctx: SourceContext, threads: Option<u32>) -> CallHandler {
    let permits = threads.map(|n| Arc::new(Semaphore::new(n as usize)));
    Arc::new(move |request| {
        let ctx = ctx.clone();
        let permits = permits.clone();
        Box::pin(async move {
            let _permit = match permits {
                Some(p) => p.acquire_owned().await.ok(),
                None => None,
            };
            match request {
                Request::AppendBatch(events) => append_batch(&ctx, events).await,
                Request::Append(event) => append(&ctx, event).await,
                Request::Ping | Request::Unknown(_) => {
                    Response::Error("not a call of AvroSourceProtocol".into())
                }
            }
        })
    })
}

async fn append_batch(ctx: &SourceContext, events: Vec<Event>) -> Response {
    let n = events.len();
    match commit::commit(ctx, events, commit::Call::Batch).await {
        Ok(()) => Response::Status(Status::Ok),
        Err(e) => {
            tracing::warn!(source = %ctx.name, events = n, error = %e, "appendBatch not committed; answering FAILED");
            Response::Status(Status::Failed)
        }
    }
}

async fn append(ctx: &SourceContext, event: Event) -> Response {
    match commit::commit(ctx, vec![event], commit::Call::Append).await {
        Ok(()) => Response::Status(Status::Ok),
        Err(e) => {
            tracing::warn!(source = %ctx.name, error = %e, "append not committed; answering FAILED");
            Response::Status(Status::Failed)
        }
    }
}

async fn serve(listener: TcpListener, config: AvroSourceConfig, ctx: SourceContext, stop: Stop) {
    let shared = Arc::new(ServerShared {
        source: ctx.name.clone(),
        deflate_level: (config.compression == CompressionType::Deflate)
            .then_some(RESPONSE_DEFLATE_LEVEL),
        known_clients: Default::default(),
        handler: handler(ctx.clone(), config.threads),
    });
    let filter = config.ip_filter.map(Arc::new);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    connections.spawn(connection(socket, peer, filter.clone(), shared.clone(), ctx.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(source = %ctx.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    ctx.counters.lifetime.stopped();
    tracing::info!(source = %ctx.name, "avro source stopped");
}

async fn connection(
    socket: TcpStream,
    peer: std::net::SocketAddr,
    filter: Option<Arc<IpFilter>>,
    shared: Arc<ServerShared>,
    ctx: SourceContext,
    stop: Stop,
) {
    if let Some(filter) = filter {
        let ip = peer.ip();
        let host_name = if filter.needs_host_name() {
            tokio::task::spawn_blocking(move || ip_filter::reverse_lookup(ip))
                .await
                .ok()
        } else {
            None
        };
        if !filter.allows(ip, host_name.as_deref()) {
            tracing::info!(source = %ctx.name, %peer, "connection refused by ipFilterRules");
            return;
        }
    }
    tracing::debug!(source = %ctx.name, %peer, "connection");
    let _ = socket.set_nodelay(true);
    ctx.counters.open_connection_count.fetch_add(1, Relaxed);
    serve_connection(socket, peer, shared, stop).await;
    ctx.counters.open_connection_count.fetch_sub(1, Relaxed);
    tracing::debug!(source = %ctx.name, %peer, "connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_ipc::client::{AvroClient, ClientError, ClientSettings};
    use crate::avro_ipc::frame;
    use crate::avro_ipc::handshake::{HandshakeMatch, HandshakeRequest, HandshakeResponse};
    use crate::avro_ipc::protocol::{self, PROTOCOL_JSON};
    use crate::channel::Channel;
    use crate::config::context::test_support::{ctx_under, entries_under};
    use crate::source::test_context;
    use std::io::{Read, Write};

    struct Harness {
        port: u16,
        channel: Channel,
        counters: Arc<crate::metrics::SourceCounters>,
        stop: Stop,
        task: tokio::task::JoinHandle<()>,
    }

    async fn start(config: AvroSourceConfig, capacity: u64) -> Harness {
        start_with(config, capacity, 1000).await
    }

    async fn start_with(
        mut config: AvroSourceConfig,
        capacity: u64,
        transaction_capacity: u32,
    ) -> Harness {
        let (ctx, channel) = test_context(capacity, transaction_capacity);
        let counters = ctx.counters.clone();
        let stop = Stop::new();
        let (port, serve) = crate::test_net::start_on_free_port(
            |port| {
                config.port = port;
                Box::new(AvroSource::new(config.clone(), ctx.clone()))
            },
            &stop,
        )
        .await;
        Harness {
            port,
            channel,
            counters,
            stop,
            task: tokio::spawn(serve),
        }
    }

    fn config() -> AvroSourceConfig {
        AvroSourceConfig {
            bind: "127.0.0.1".into(),
            port: 0,
            threads: None,
            compression: CompressionType::None,
            ip_filter: None,
        }
    }

    fn client(port: u16, deflate: bool) -> ClientSettings {
        ClientSettings {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout_ms: 2000,
            request_timeout_ms: 5000,
            deflate_level: deflate.then_some(6),
        }
    }

    fn drain(ch: &Channel) -> Vec<Event> {
        let mut tx = ch.transaction();
        let mut v = Vec::new();
        while let Some(e) = tx.take().expect("take") {
            v.push(e);
        }
        tx.commit().expect("commit");
        v
    }

    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.expect("join")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn batches_and_single_appends_are_committed_before_ok() {
        for deflate in [false, true] {
            let mut cfg = config();
            if deflate {
                cfg.compression = CompressionType::Deflate;
            }
            let h = start(cfg, 100).await;
            let port = h.port;
            let (batch, one) = blocking(move || {
                let mut c = AvroClient::connect(&client(port, deflate)).expect("connect");
                let events: Vec<Event> = (0..10)
                    .map(|i| Event::new(format!("e{i}")).with_header("n", i.to_string()))
                    .collect();
                let batch = c.append_batch(&events).expect("batch");
                let one = c.append(&Event::new("single")).expect("append");
                (batch, one)
            })
            .await;
            assert_eq!((batch, one), (Status::Ok, Status::Ok));
            let got = drain(&h.channel);
            assert_eq!(got.len(), 11);
            assert_eq!(&got[3].body[..], b"e3");
            assert_eq!(got[3].headers, vec![("n".into(), "3".into())]);
            assert_eq!(&got[10].body[..], b"single");
            let c = &h.counters;
            assert_eq!(c.append_batch_received_count.load(Relaxed), 1);
            assert_eq!(c.append_batch_accepted_count.load(Relaxed), 1);
            assert_eq!(c.append_received_count.load(Relaxed), 1);
            assert_eq!(c.append_accepted_count.load(Relaxed), 1);
            assert_eq!(c.event_received_count.load(Relaxed), 11);
            assert_eq!(c.event_accepted_count.load(Relaxed), 11);
            h.stop.trigger();
            h.task.await.expect("stopped");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_channel_answers_failed_and_keeps_nothing() {
        let h = start(config(), 5).await;
        let port = h.port;
        let status = blocking(move || {
            let mut c = AvroClient::connect(&client(port, false)).expect("connect");
            let events: Vec<Event> = (0..8).map(|i| Event::new(format!("e{i}"))).collect();
            c.append_batch(&events).expect("answer")
        })
        .await;
        assert_eq!(status, Status::Failed);
        assert!(h.channel.is_empty());
        assert_eq!(h.counters.channel_write_fail.load(Relaxed), 1);
        assert_eq!(h.counters.append_batch_accepted_count.load(Relaxed), 0);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_call_bigger_than_the_transaction_capacity_answers_failed() {
        let h = start_with(config(), 100, 3).await;
        let port = h.port;
        let (big, small) = blocking(move || {
            let mut c = AvroClient::connect(&client(port, false)).expect("connect");
            let four: Vec<Event> = (0..4).map(|i| Event::new(format!("e{i}"))).collect();
            (
                c.append_batch(&four).expect("answer"),
                c.append_batch(&four[..3]).expect("answer"),
            )
        })
        .await;
        assert_eq!((big, small), (Status::Failed, Status::Ok));
        assert_eq!(h.channel.len(), 3, "only the call that fits was committed");
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    /// One raw request on a fresh connection: (serial, payload) answered by the source.
    fn raw_call(port: u16, payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut decoder = frame::FrameDecoder::default();
        let mut answers = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            s.write_all(&frame::encode(i as i32 + 40, p)).expect("send");
            let mut buf = [0u8; 4096];
            let f = loop {
                if let Some(f) = decoder.next_frame().expect("frame") {
                    break f;
                }
                let n = s.read(&mut buf).expect("read");
                assert!(n > 0, "closed");
                decoder.push(&buf[..n]);
            };
            assert_eq!(f.serial, i as i32 + 40, "the serial is echoed");
            answers.push(f.payload);
        }
        answers
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unknown_client_hash_gets_none_then_client_after_sending_its_text() {
        let h = start(config(), 100).await;
        let port = h.port;
        let answers = blocking(move || {
            let foreign_hash = [7u8; 16];
            let mut first = HandshakeRequest {
                client_hash: foreign_hash,
                client_protocol: None,
                server_hash: foreign_hash,
            }
            .encode();
            first.extend(crate::avro_ipc::call::encode_append(&Event::new("x")));
            let foreign_text = PROTOCOL_JSON.replace("\"doc\":\"*", "\"doc\":\"");
            let mut second = HandshakeRequest {
                client_hash: foreign_hash,
                client_protocol: Some(foreign_text),
                server_hash: foreign_hash,
            }
            .encode();
            second.extend(crate::avro_ipc::call::encode_append(&Event::new("x")));
            // Third call on the same connection: no handshake any more.
            let third = crate::avro_ipc::call::encode_append(&Event::new("y"));
            raw_call(port, &[first, second, third])
        })
        .await;
        let mut a = &answers[0][..];
        let none = HandshakeResponse::decode(&mut a).expect("handshake");
        assert_eq!(none.match_kind, HandshakeMatch::None);
        assert_eq!(none.server_protocol.as_deref(), Some(PROTOCOL_JSON));
        assert_eq!(none.server_hash, Some(protocol::protocol_hash()));
        assert!(a.is_empty(), "the call was not executed");
        let mut a = &answers[1][..];
        let client = HandshakeResponse::decode(&mut a).expect("handshake");
        assert_eq!(client.match_kind, HandshakeMatch::Client);
        assert_eq!(a, [0x00, 0x00, 0x00], "metadata, no error, OK");
        assert_eq!(answers[2], [0x00, 0x00, 0x00]);
        let bodies: Vec<_> = drain(&h.channel).into_iter().map(|e| e.body).collect();
        assert_eq!(bodies, vec![b"x".to_vec(), b"y".to_vec()]);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn garbage_closes_the_connection_and_the_source_keeps_serving() {
        let h = start(config(), 100).await;
        let port = h.port;
        blocking(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .expect("timeout");
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("send");
            let mut buf = Vec::new();
            let n = s.read_to_end(&mut buf).unwrap_or(0);
            assert_eq!(n, 0, "closed without an answer");
            // A plain client against a plain source still works.
            let mut c = AvroClient::connect(&client(port, false)).expect("connect");
            assert_eq!(c.append(&Event::new("ok")).expect("append"), Status::Ok);
            // A compressing client against a plain source gets a clear error, not a hang.
            let mut z = AvroClient::connect(&client(port, true)).expect("connect");
            let err = z.append(&Event::new("z")).expect_err("mismatch");
            assert!(
                matches!(err, ClientError::Closed { .. } | ClientError::Io { .. }),
                "{err}"
            );
        })
        .await;
        assert_eq!(drain(&h.channel).len(), 1);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ip_filter_refuses_denied_peers() {
        let mut cfg = config();
        cfg.ip_filter = Some(IpFilter::parse("deny:name:localhost,allow:ip:*").expect("rules"));
        let h = start(cfg, 100).await;
        let port = h.port;
        let err = blocking(move || {
            let mut c = AvroClient::connect(&client(port, false)).expect("tcp connects");
            c.append(&Event::new("x")).expect_err("refused")
        })
        .await;
        assert!(
            matches!(err, ClientError::Closed { .. } | ClientError::Io { .. }),
            "{err}"
        );
        assert!(h.channel.is_empty());
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    fn parse(pairs: &[(&str, &str)]) -> (AvroSourceConfig, Vec<String>) {
        let list = entries_under("a1.sources.r1.", pairs);
        let ctx = ctx_under("a1.sources.r1.", &list);
        let cfg = AvroSourceConfig::parse(&ctx);
        let errors = ctx
            .finish("source r1")
            .errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect();
        (cfg, errors)
    }

    #[test]
    fn keys_defaults_and_errors_name_the_key() {
        let (cfg, errors) = parse(&[("bind", "0.0.0.0"), ("port", "4141")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.threads, None);
        assert_eq!(cfg.compression, CompressionType::None);
        let (cfg, errors) = parse(&[("bind", "0.0.0.0"), ("port", "4141"), ("threads", "0")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.threads, None);
        assert_eq!(cfg.ip_filter, None);
        let (cfg, errors) = parse(&[
            ("bind", "0.0.0.0"),
            ("port", "4141"),
            ("threads", "4"),
            ("compression-type", "DEFLATE"),
            ("ipFilter", "true"),
            ("ipFilterRules", "allow:ip:127.*,deny:ip:*"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.threads, Some(4));
        assert_eq!(cfg.compression, CompressionType::Deflate);
        assert!(cfg.ip_filter.is_some());
        let (_, errors) = parse(&[
            ("bind", "0.0.0.0"),
            ("port", "4141"),
            ("compression-type", "gzip"),
            ("ssl", "true"),
            ("ipFilter", "true"),
        ]);
        let all = errors.join("\n");
        assert!(
            all.contains("a1.sources.r1.compression-type: expected none or deflate"),
            "{all}"
        );
        assert!(
            all.contains("a1.sources.r1.ssl: Sluice's avro source has no SSL/TLS"),
            "{all}"
        );
        assert!(
            all.contains("a1.sources.r1.ipFilterRules: required when ipFilter is true"),
            "{all}"
        );
        let (_, errors) = parse(&[
            ("bind", "0.0.0.0"),
            ("port", "4141"),
            ("ipFilter", "true"),
            ("ipFilterRules", "allow:ip:*,nope"),
        ]);
        assert!(
            errors.join("\n").contains("invalid ipFilter rule \"nope\""),
            "{errors:?}"
        );
    }
}
