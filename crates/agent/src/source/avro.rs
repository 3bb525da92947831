//! `avro`: Flume's `AvroSource`, the receiving end of a tier: serves `AvroSourceProtocol`
//! (`append`, `appendBatch`) over Avro IPC on Avro's Netty transport, so Flume's `avro` sinks,
//! `NettyAvroRpcClient`s and our own `avro` sink can deliver to it.
//!
//! Keys and Flume's defaults: `bind` and `port` (required), `threads` (0 or less: unbounded;
//! most calls processed at once across all connections), `compression-type` (`none`; or `deflate`: zlib
//! on the whole connection, the senders must use it too), `ipFilter` (false) with
//! `ipFilterRules` (required then; Flume's `allow|deny:ip|name:pattern` list, first match
//! wins, see [`ip_filter`]), `ssl` (false) with the TLS keys of [`crate::tls::ServerTls`]:
//! TLS on every connection, the ip filter applied before the handshake (see [`super::net`]).
//!
//! A call is answered `OK` only after its events were committed to every required channel
//! (one transaction per call); `FAILED` if a channel refused them (full, error), so the sender
//! rolls back and retries. A peer that does not speak the protocol is logged with its address
//! and disconnected. Counters: Flume's `OpenConnectionCount`, `AppendReceivedCount`,
//! `AppendAcceptedCount`, `AppendBatchReceivedCount`, `AppendBatchAcceptedCount`,
//! `EventReceivedCount`, `EventAcceptedCount`, plus `ChannelWriteFail`.
//!
//! Hostile clients (see [`super::net`]): `maxConnections` (1000) caps the connections served
//! at once, more are closed at once and counted in `ConnectionRejectedCount`; a frame must
//! arrive whole within `readTimeout` ms (30,000) of its first byte or the connection is closed
//! and counted in `ReadTimeoutCount`, while a connection idle between calls stays open.
//!
//! Shutdown: the listener closes, connections stop reading, calls already received are
//! committed and answered, then connections close.
//!
//! The protocol (framing, handshake, calls, deflate, one connection's loop) is the `avro_ipc`
//! crate's; this module accepts connections, admits them by [`ip_filter`], and answers the
//! calls by committing their events. Its keys are read in `config`.

mod config;
pub mod ip_filter;

pub use config::{AvroSourceConfig, CompressionType};

use super::net::{self, Guard, Incoming, SourceTls};
use super::{commit, BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::avro_event;
use crate::stop::Stop;
use avro_ipc::call::{Request, Response};
use avro_ipc::protocol::Status;
use avro_ipc::server::{serve_connection, CallHandler, ConnectionEnd, ServerShared};
use file_channel::Event;
use ip_filter::IpFilter;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Zlib level of the source's responses with `compression-type = deflate` (Flume's
/// `ZlibEncoder(6)`).
const RESPONSE_DEFLATE_LEVEL: u32 = 6;

/// The avro source.
#[derive(Debug)]
pub struct AvroSource {
    config: AvroSourceConfig,
    ctx: SourceContext,
    tls: SourceTls,
}

impl AvroSource {
    /// An avro source; nothing is bound before `start`.
    pub fn new(config: AvroSourceConfig, ctx: SourceContext) -> Self {
        Self {
            tls: config.tls.source_tls(),
            config,
            ctx,
        }
    }
}

impl EventDrivenSource for AvroSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let (listener, local) = self
                .ctx
                .bind_tcp(&self.config.bind, self.config.port)
                .await?;
            tracing::info!(source = %self.ctx.name, addr = %local, compression = ?self.config.compression, tls = self.tls.is_some(), "avro source listening");
            self.ctx.counters.lifetime.started();
            let serve: BoxFuture<()> =
                Box::pin(serve(listener, self.config, self.tls, self.ctx, stop));
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
                Request::AppendBatch(events) => {
                    let events = events.into_iter().map(avro_event::from_wire).collect();
                    append_batch(&ctx, events).await
                }
                Request::Append(event) => append(&ctx, avro_event::from_wire(event)).await,
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

async fn serve(
    listener: TcpListener,
    config: AvroSourceConfig,
    tls: SourceTls,
    ctx: SourceContext,
    stop: Stop,
) {
    let guard = Guard::new(&ctx, config.limits);
    let shared = Arc::new(ServerShared {
        read_timeout: Some(config.limits.read_timeout()),
        source: ctx.name.clone(),
        deflate_level: (config.compression == CompressionType::Deflate)
            .then_some(RESPONSE_DEFLATE_LEVEL),
        known_clients: Default::default(),
        handler: handler(ctx.clone(), config.threads),
    });
    let filter = config.ip_filter.map(Arc::new);
    net::serve_connections(listener, &guard, &tls, &stop, |incoming| {
        connection(
            incoming,
            filter.clone(),
            shared.clone(),
            ctx.clone(),
            guard.clone(),
            stop.clone(),
        )
    })
    .await;
    ctx.counters.lifetime.stopped();
    tracing::info!(source = %ctx.name, "avro source stopped");
}

/// Serves one connection: the ip filter first (a refused peer never gets to the TLS
/// handshake), then the handshake if the source has TLS, then Avro IPC.
async fn connection(
    incoming: Incoming,
    filter: Option<Arc<IpFilter>>,
    shared: Arc<ServerShared>,
    ctx: SourceContext,
    guard: Arc<Guard>,
    stop: Stop,
) {
    let peer = incoming.peer();
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
    let _ = incoming.socket().set_nodelay(true);
    let Some(socket) = incoming.establish().await else {
        return;
    };
    tracing::debug!(source = %ctx.name, %peer, tls = socket.is_tls(), "connection");
    ctx.counters.open_connection_count.fetch_add(1, Relaxed);
    let end = serve_connection(socket, peer, shared, async move { stop.wait().await }).await;
    if let ConnectionEnd::ReadTimeout { bytes_received } = end {
        guard.timed_out(&peer, "Avro frame", bytes_received);
    }
    ctx.counters.open_connection_count.fetch_sub(1, Relaxed);
    tracing::debug!(source = %ctx.name, %peer, "connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_event::{wire, wire_batch};
    use crate::channel::Channel;
    use crate::source::test_context;
    use avro_ipc::client::{AvroClient, ClientError, ClientSettings};
    use avro_ipc::frame;
    use avro_ipc::handshake::{HandshakeMatch, HandshakeRequest, HandshakeResponse};
    use avro_ipc::protocol::{self, PROTOCOL_JSON};
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
            limits: crate::source::net::ConnectionLimits::default(),
            tls: Default::default(),
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
                let batch = c.append_batch(&wire_batch(&events)).expect("batch");
                let one = c.append(wire(&Event::new("single"))).expect("append");
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
            c.append_batch(&wire_batch(&events)).expect("answer")
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
                c.append_batch(&wire_batch(&four)).expect("answer"),
                c.append_batch(&wire_batch(&four[..3])).expect("answer"),
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
            first.extend(avro_ipc::call::encode_append(wire(&Event::new("x"))));
            let foreign_text = PROTOCOL_JSON.replace("\"doc\":\"*", "\"doc\":\"");
            let mut second = HandshakeRequest {
                client_hash: foreign_hash,
                client_protocol: Some(foreign_text),
                server_hash: foreign_hash,
            }
            .encode();
            second.extend(avro_ipc::call::encode_append(wire(&Event::new("x"))));
            // Third call on the same connection: no handshake any more.
            let third = avro_ipc::call::encode_append(wire(&Event::new("y")));
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
            assert_eq!(
                c.append(wire(&Event::new("ok"))).expect("append"),
                Status::Ok
            );
            // A compressing client against a plain source gets a clear error, not a hang.
            let mut z = AvroClient::connect(&client(port, true)).expect("connect");
            let err = z.append(wire(&Event::new("z"))).expect_err("mismatch");
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
            c.append(wire(&Event::new("x"))).expect_err("refused")
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
}
