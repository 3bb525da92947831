//! `thrift`: a server for Flume's `ThriftSourceProtocol` (Flume's `ThriftSource`), so Flume's
//! `ThriftSink`, `ThriftRpcClient` and any Thrift client built from Flume's IDL can send to
//! Sluice.
//!
//! Keys and Flume's defaults: `bind` and `port` (required), `threads` (0: no limit),
//! `protocol` (`compact`; or `binary`), `ssl` (false) with the TLS keys of
//! [`crate::tls::ServerTls`] (TLS on every connection, see [`super::net`]; Flume's
//! `keymanager-type`, a Java key manager algorithm, is ignored with a warning), `kerberos`
//! (false; true is refused, and so are `agent-principal` and `agent-keytab`: Sluice has no
//! Kerberos).
//!
//! Protocol: framed transport, then `append(event)` or `appendBatch(events)`. The whole call is
//! put through the channel processor in one transaction per required channel and answered `OK`
//! only after that commit (with a file channel: durable); a channel that refuses it is answered
//! `FAILED` and nothing of the call stays in the channel, so the client may resend it. A call
//! of another method is answered with Thrift's `UNKNOWN_METHOD` exception, as Flume's
//! generated processor does. A frame that is not a `ThriftSourceProtocol` call in the
//! configured protocol (HTTP, TLS, unframed Thrift, the other protocol, a length over
//! 16,384,000 bytes) is logged with what it looks like, counted in `EventReadFail`, and the
//! connection closed; nothing is allocated beyond the frame length cap.
//!
//! Concurrency, and why not the `thrift` crate's blocking server: connections are tokio tasks
//! that read whole frames asynchronously; the `thrift` crate's protocol code then decodes the
//! frame from memory, which cannot block. Only the channel commit blocks (it waits for its
//! fsync), and it runs through `spawn_blocking` like every network source's. So an idle
//! connection costs no thread, and stopping is a `select!` on the agent's stop flag, which a
//! thread blocked in a socket read could not notice. `threads` keeps Flume's meaning of a cap
//! on the calls processed at once (0 or less: no cap, Flume's cached pool).
//!
//! Hostile clients (see [`super::net`]): `maxConnections` (1000) caps the connections served
//! at once, more are closed at once and counted in `ConnectionRejectedCount`; a frame must
//! arrive whole within `readTimeout` ms (30,000) of its first byte or the connection is closed
//! and counted in `ReadTimeoutCount`, while a connection idle between calls stays open. A
//! frame's buffer grows with the bytes that arrive, not with the length its header announces.
//!
//! Shutdown: the listener closes, connections stop reading new calls, a call already received
//! is committed and answered, then the connections close.

use super::net::{self, ConnectionLimits, Guard, Incoming, SourceTls, TlsConfig};
use super::{BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::config::context::Ctx;
use crate::stop::Stop;
use crate::thrift_event;
use file_channel::Event;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use thrift_rpc::frame::{self, FrameError};
use thrift_rpc::wire::{self, Method, Request, Status};
use thrift_rpc::Protocol;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Reads the `protocol` key of the thrift source and sink: `compact` (the default) or
/// `binary`, in any case.
pub fn parse_protocol(ctx: &Ctx<'_>) -> Protocol {
    let Some(value) = ctx.string("protocol") else {
        return Protocol::Compact;
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "compact" => Protocol::Compact,
        "binary" => Protocol::Binary,
        _ => {
            ctx.error(
                "protocol",
                format!(
                    "unknown Thrift protocol \"{}\"; known: compact, binary",
                    value.trim()
                ),
            );
            Protocol::Compact
        }
    }
}

/// Refuses what the thrift source cannot honour: `kerberos = true`, and `agent-principal` /
/// `agent-keytab` (Kerberos credentials), each an error on its key. Flume's `keymanager-type`
/// (the Java key manager algorithm, meaningless to rustls) is ignored with a warning.
fn refuse_kerberos(ctx: &Ctx<'_>) {
    if ctx.bool("kerberos", false) {
        ctx.error(
            "kerberos",
            "kerberos = true is not supported by Sluice's thrift source (no Kerberos/SASL); remove it or set it to false",
        );
    }
    for key in ["agent-principal", "agent-keytab"] {
        if ctx.get(key).is_some() {
            ctx.error(
                key,
                "Sluice's thrift source has no Kerberos; remove the key (TLS with client-auth = required authenticates clients instead)",
            );
        }
    }
    if ctx.get("keymanager-type").is_some() {
        ctx.warn(
            "keymanager-type",
            "ignored: a Java key manager algorithm; Sluice reads the keystore itself",
        );
    }
}

/// Configuration of a thrift source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThriftSourceConfig {
    /// Address to listen on. `bind`.
    pub bind: String,
    /// Port. `port`.
    pub port: u16,
    /// Most calls processed at once, `None` for no limit. `threads`. Default: 0 (no limit).
    pub threads: Option<u32>,
    /// Protocol inside the frames. `protocol`. Default: compact.
    pub protocol: Protocol,
    /// `maxConnections` and `readTimeout`.
    pub limits: ConnectionLimits,
    /// `ssl` and the TLS keys. Default: plain TCP.
    pub tls: TlsConfig,
}

impl ThriftSourceConfig {
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
        let threads = ctx.i64_in("threads", 0, i64::from(i32::MIN)..=i64::from(i32::MAX));
        refuse_kerberos(ctx);
        Self {
            bind,
            port,
            threads: (threads > 0).then_some(threads as u32),
            protocol: parse_protocol(ctx),
            limits: ConnectionLimits::parse(ctx),
            tls: TlsConfig::parse(ctx, "thrift source"),
        }
    }
}

/// The thrift source.
#[derive(Debug)]
pub struct ThriftSource {
    config: ThriftSourceConfig,
    ctx: SourceContext,
    tls: SourceTls,
}

impl ThriftSource {
    /// A thrift source; nothing is bound before `start`.
    pub fn new(config: ThriftSourceConfig, ctx: SourceContext) -> Self {
        Self {
            tls: config.tls.source_tls(),
            config,
            ctx,
        }
    }
}

/// What every connection shares.
#[derive(Debug)]
struct Shared {
    ctx: SourceContext,
    protocol: Protocol,
    permits: Option<Semaphore>,
    guard: Arc<Guard>,
}

impl EventDrivenSource for ThriftSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let (listener, local) = self
                .ctx
                .bind_tcp(&self.config.bind, self.config.port)
                .await?;
            tracing::info!(
                source = %self.ctx.name,
                addr = %local,
                protocol = self.config.protocol.as_str(),
                tls = self.tls.is_some(),
                "thrift source listening"
            );
            self.ctx.counters.lifetime.started();
            let guard = Guard::new(&self.ctx, self.config.limits);
            let shared = Arc::new(Shared {
                ctx: self.ctx,
                guard,
                protocol: self.config.protocol,
                permits: self
                    .config
                    .threads
                    .map(|n| Semaphore::new(n.max(1) as usize)),
            });
            let serve: BoxFuture<()> = Box::pin(serve(listener, shared, self.tls, stop));
            Ok(serve)
        })
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: SourceTls, stop: Stop) {
    let name = shared.ctx.name.clone();
    net::serve_connections(listener, &shared.guard, &tls, &stop, |incoming| {
        handle(incoming, shared.clone(), stop.clone())
    })
    .await;
    shared.ctx.counters.lifetime.stopped();
    tracing::info!(source = %name, "thrift source stopped");
}

async fn handle(incoming: Incoming, shared: Arc<Shared>, stop: Stop) {
    let peer = incoming.peer().to_string();
    let _ = incoming.socket().set_nodelay(true);
    let Some(mut socket) = incoming.establish().await else {
        return;
    };
    let counters = shared.ctx.counters.clone();
    let name = shared.ctx.name.clone();
    counters.open_connection_count.fetch_add(1, Relaxed);
    let read_timeout = Some(shared.guard.limits().read_timeout());
    loop {
        let read = tokio::select! {
            () = stop.wait() => break,
            read = frame::read_frame_within(&mut socket, frame::MAX_FRAME_BYTES, read_timeout) => read,
        };
        let request = match read {
            Ok(None) => break,
            Ok(Some(f)) => f,
            Err(FrameError::TimedOut { read, .. }) => {
                shared.guard.timed_out(&peer, "Thrift frame", read);
                break;
            }
            Err(FrameError::Io(e)) => {
                tracing::debug!(source = %name, %peer, error = %e, "read failed; closing");
                break;
            }
            Err(e) => {
                counters.event_read_fail.fetch_add(1, Relaxed);
                tracing::warn!(source = %name, %peer, error = %e, "closing a connection that does not speak framed Thrift");
                break;
            }
        };
        let reply = match wire::decode_request(&request, shared.protocol) {
            Ok(Request::Call {
                method,
                seqid,
                events,
            }) => {
                let status = process(&shared, method, thrift_event::from_wire_batch(events)).await;
                wire::encode_reply(shared.protocol, method.name(), seqid, status)
            }
            Ok(Request::UnknownMethod {
                name: method,
                seqid,
            }) => {
                counters.event_read_fail.fetch_add(1, Relaxed);
                tracing::warn!(source = %name, %peer, method = %method, "call of a method ThriftSourceProtocol does not have");
                wire::encode_unknown_method(shared.protocol, &method, seqid)
            }
            Err(e) => {
                counters.event_read_fail.fetch_add(1, Relaxed);
                tracing::warn!(source = %name, %peer, protocol = shared.protocol.as_str(), error = %e, "closing a connection that sent a malformed call");
                break;
            }
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(source = %name, %peer, error = %e, "cannot encode the reply");
                break;
            }
        };
        if let Err(e) = socket.write_all(&reply).await {
            tracing::debug!(source = %name, %peer, error = %e, "cannot send the reply; closing");
            break;
        }
    }
    let _ = socket.shutdown().await;
    counters.open_connection_count.fetch_sub(1, Relaxed);
}

/// Commits the events of one call and counts them in Flume's `SourceCounter` names.
async fn process(shared: &Shared, method: Method, events: Vec<Event>) -> Status {
    use super::commit::{self, Call, CommitFailure};
    let call = match method {
        Method::Append => Call::Append,
        Method::AppendBatch => Call::AppendBatch,
    };
    let n = events.len();
    commit::received(&shared.ctx, n, call);
    let _permit = match &shared.permits {
        Some(s) => s.acquire().await.ok(),
        None => None,
    };
    match commit::put(&shared.ctx, events, call).await {
        Ok(()) => Status::Ok,
        Err(CommitFailure::Channel(e)) => {
            tracing::warn!(source = %shared.ctx.name, error = %e, events = n, "could not put the events into the channel; answering FAILED");
            Status::Failed
        }
        Err(CommitFailure::Task(e)) => {
            tracing::error!(source = %shared.ctx.name, error = %e, "put task failed; answering ERROR");
            Status::Error
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_context;
    use crate::source::test_support::{ctx, entries};
    use crate::thrift_event::wire_batch;
    use std::io::{Read, Write};
    use thrift_rpc::client::{ClientConfig, Connection};

    #[test]
    fn parse_flume_keys_tls_and_refuse_kerberos() {
        let list = entries(&[("bind", "0.0.0.0"), ("port", "4141")]);
        let c = ThriftSourceConfig::parse(&ctx(&list));
        assert_eq!(
            c,
            ThriftSourceConfig {
                bind: "0.0.0.0".into(),
                port: 4141,
                threads: None,
                protocol: Protocol::Compact,
                limits: ConnectionLimits::default(),
                tls: TlsConfig::default(),
            }
        );
        let list = entries(&[
            ("bind", "h"),
            ("port", "1"),
            ("threads", "8"),
            ("protocol", "BINARY"),
        ]);
        let c = ThriftSourceConfig::parse(&ctx(&list));
        assert_eq!((c.threads, c.protocol), (Some(8), Protocol::Binary));
        let list = entries(&[
            ("bind", "h"),
            ("port", "1"),
            ("protocol", "json"),
            ("ssl", "true"),
            ("keystore", "/nonexistent/k.p12"),
            ("kerberos", "true"),
            ("agent-principal", "flume/host@REALM"),
            ("keymanager-type", "SunX509"),
        ]);
        let x = ctx(&list);
        ThriftSourceConfig::parse(&x);
        let d = x.finish("thrift source r1");
        let errors: Vec<String> = d
            .errors
            .iter()
            .map(|p| format!("{}: {}", p.key.as_deref().unwrap_or(""), p.message))
            .collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("a1.sources.r1.protocol")
                && e.contains("unknown Thrift protocol \"json\"; known: compact, binary")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("a1.sources.r1.keystore") && e.contains("/nonexistent/k.p12")),
            "a missing keystore is an error at start: {errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("a1.sources.r1.kerberos") && e.contains("not supported")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("a1.sources.r1.agent-principal") && e.contains("no Kerberos")),
            "{errors:?}"
        );
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(
            d.warnings[0].key.as_deref() == Some("a1.sources.r1.keymanager-type"),
            "{:?}",
            d.warnings
        );
    }

    async fn start(protocol: Protocol, capacity: u64) -> (u16, crate::channel::Channel, Stop) {
        let (sctx, channel) = test_context(capacity, capacity as u32);
        let stop = Stop::new();
        let (port, serve) = crate::test_net::start_on_free_port(
            |port| {
                let config = ThriftSourceConfig {
                    bind: "127.0.0.1".into(),
                    port,
                    threads: Some(2),
                    protocol,
                    limits: ConnectionLimits::default(),
                    tls: TlsConfig::default(),
                };
                Box::new(ThriftSource::new(config, sctx.clone()))
            },
            &stop,
        )
        .await;
        tokio::spawn(serve);
        (port, channel, stop)
    }

    fn client(port: u16, protocol: Protocol) -> Connection {
        Connection::connect(&ClientConfig {
            hostname: "127.0.0.1".into(),
            port,
            protocol,
            connect_timeout_ms: 5000,
            request_timeout_ms: 5000,
        })
        .expect("connect")
    }

    fn drain(ch: &crate::channel::Channel) -> Vec<Event> {
        let mut tx = ch.transaction();
        let mut v = Vec::new();
        while v.len() < ch.transaction_capacity() as usize {
            let Some(e) = tx.take().expect("take") else {
                break;
            };
            v.push(e);
        }
        tx.commit().expect("commit");
        v
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_before_ok_and_answers_failed_when_the_channel_is_full() {
        for protocol in [Protocol::Compact, Protocol::Binary] {
            let (port, channel, stop) = start(protocol, 3).await;
            let (ok, failed, appended) = tokio::task::spawn_blocking(move || {
                let mut c = client(port, protocol);
                let batch: Vec<Event> = (0..2)
                    .map(|i| Event::new(format!("e{i}")).with_header("n", i.to_string()))
                    .collect();
                let ok = c.append_batch(&wire_batch(&batch)).expect("call");
                // Two more do not fit a channel of 3: the whole call is refused.
                let failed = c.append_batch(&wire_batch(&batch)).expect("call");
                let appended = c
                    .call(Method::Append, &wire_batch(&[Event::new("one")]))
                    .expect("call");
                (ok, failed, appended)
            })
            .await
            .expect("join");
            assert_eq!(
                (ok, failed, appended),
                (Status::Ok, Status::Failed, Status::Ok)
            );
            let got = drain(&channel);
            let bodies: Vec<&[u8]> = got.iter().map(|e| e.body.as_slice()).collect();
            assert_eq!(bodies, vec![&b"e0"[..], b"e1", b"one"]);
            assert_eq!(got[1].headers, vec![("n".to_owned(), "1".to_owned())]);
            stop.trigger();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peers_speaking_something_else_are_closed_without_harm() {
        let (port, channel, stop) = start(Protocol::Compact, 10).await;
        tokio::task::spawn_blocking(move || {
            // HTTP: the length prefix "GET " is refused before any allocation.
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("send");
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).expect("closed");
            assert!(buf.is_empty());
            // The binary protocol against a compact server: closed, nothing put.
            let mut c = client(port, Protocol::Binary);
            assert!(c.append_batch(&wire_batch(&[Event::new("x")])).is_err());
            // The server still serves.
            let mut c = client(port, Protocol::Compact);
            assert_eq!(
                c.append_batch(&wire_batch(&[Event::new("y")]))
                    .expect("call"),
                Status::Ok
            );
        })
        .await
        .expect("join");
        let got = drain(&channel);
        assert_eq!(got, vec![Event::new("y")]);
        stop.trigger();
    }
}
