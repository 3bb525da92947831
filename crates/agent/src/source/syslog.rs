//! Syslog sources (Flume's `SyslogTcpSource`, `MultiportSyslogTCPSource`, `SyslogUDPSource`):
//! `syslogtcp`, `multiport_syslogtcp`, `syslogudp`. Parsing and framing are in [`parse`].
//!
//! Keys and Flume's defaults:
//!
//! - `syslogtcp`: `host`, `port` (required), `eventSize` (2500), `keepFields` (`none`),
//!   `clientIPHeader` (unset).
//! - `multiport_syslogtcp`: `host`, `ports` (required, space separated), `eventSize` (2500),
//!   `keepFields` (`none`), `portHeader` (unset: the local port the message came in on),
//!   `batchSize` (100), `charset.default` (UTF-8 only), `clientIPHeader` (unset).
//! - `syslogudp`: `host`, `port` (required), `keepFields` (`none`), `clientIPHeader` (unset).
//!
//! TCP sources also take `ssl` (false) with the TLS keys of [`crate::tls::ServerTls`]: TLS on
//! every connection of every port (see [`super::net`]); `syslogudp` has no TLS.
//!
//! TCP sources also take `maxConnections` (1000 per source, all ports together: more are
//! closed at once and counted in `ConnectionRejectedCount`) and `readTimeout` (30,000 ms: a
//! message started and not finished within it closes the connection, counted in
//! `ReadTimeoutCount`; a connection idle between messages stays open); see [`super::net`].
//! A connection holds at most about `eventSize` bytes plus one read.
//!
//! TCP: each read's complete messages are committed together, at most `batchSize` (100 for
//! `syslogtcp`) per transaction; nothing is answered (syslog has no acknowledgement), and a
//! connection whose batch cannot be committed is closed, so the client sees the failure. At
//! end of stream a last message without newline is kept. UDP: one message per datagram (one
//! trailing newline removed), datagrams queued together are committed together, a datagram that
//! cannot be committed is dropped and counted, as in Flume.
//!
//! Differences from Flume: octet-counted framing (RFC 6587) is understood on TCP (Flume only
//! splits at newlines); the rest of an over-long message is discarded instead of becoming a
//! further (invalid) event; RFC 3164 times are read as UTC; `clientHostnameHeader` (a reverse
//! DNS lookup per message) is not supported.

pub mod parse;

use self::parse::{build_event, Framer, KeepFields};
use super::commit::{commit, Call};
use super::net::{self, ConnectionLimits, Guard, Incoming, PartialDeadline, SourceTls, TlsConfig};
use super::netcat_udp::{required_port, serve_udp};
use super::{BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::config::context::Ctx;
use crate::stop::Stop;
use file_channel::Event;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
/// A UDP message is a whole datagram.
const UDP_MAX_MESSAGE_BYTES: usize = 65_536;

/// Which syslog source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogKind {
    /// `syslogtcp`.
    Tcp,
    /// `multiport_syslogtcp`.
    MultiportTcp,
    /// `syslogudp`.
    Udp,
}

impl SyslogKind {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "syslogtcp",
            Self::MultiportTcp => "multiport_syslogtcp",
            Self::Udp => "syslogudp",
        }
    }
}

/// Configuration of a syslog source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    /// Which source.
    pub kind: SyslogKind,
    /// Address to listen on. `host`.
    pub host: String,
    /// Ports: `port`, or `ports` for `multiport_syslogtcp`.
    pub ports: Vec<u16>,
    /// Longest message in bytes (TCP). `eventSize`. Default: 2500.
    pub event_size: usize,
    /// Parts kept in the body. `keepFields`. Default: `none`.
    pub keep_fields: KeepFields,
    /// Header for the local port (`multiport_syslogtcp`). `portHeader`. Default: unset.
    pub port_header: Option<String>,
    /// Header for the client's IP address. `clientIPHeader`. Default: unset.
    pub client_ip_header: Option<String>,
    /// Most messages per transaction (TCP). `batchSize`. Default: 100.
    pub batch_size: u32,
    /// `maxConnections` and `readTimeout` (TCP).
    pub limits: ConnectionLimits,
    /// `ssl` and the TLS keys (TCP). Default: plain TCP.
    pub tls: TlsConfig,
}

impl SyslogConfig {
    /// Reads the keys of a source of `kind`.
    pub fn parse(kind: SyslogKind, ctx: &Ctx<'_>) -> Self {
        let host = ctx.required("host").unwrap_or_default();
        let ports = if kind == SyslogKind::MultiportTcp {
            let mut ports = Vec::new();
            if let Some(v) = ctx.required("ports") {
                for p in v.split_whitespace() {
                    match p.parse::<u16>() {
                        Ok(p) if !ports.contains(&p) => ports.push(p),
                        Ok(p) => ctx.error("ports", format!("port {p} is listed twice")),
                        Err(_) => ctx.error("ports", format!("{p:?} is not a port number")),
                    }
                }
                if ports.is_empty() && !ctx.has_error_for("ports") {
                    ctx.error("ports", "no port given");
                }
            }
            ports
        } else {
            vec![required_port(ctx, "port")]
        };
        let keep_fields = match ctx.string("keepFields") {
            None => KeepFields::default(),
            Some(v) => KeepFields::parse(&v).unwrap_or_else(|word| {
                ctx.error(
                    "keepFields",
                    format!("unknown field {word:?}; use none, all, or some of: timestamp hostname priority version"),
                );
                KeepFields::default()
            }),
        };
        let (event_size, batch_size) = if kind == SyslogKind::Udp {
            (UDP_MAX_MESSAGE_BYTES, 100)
        } else {
            let event_size =
                ctx.u64_in("eventSize", 2500, 1..=file_channel::limits::MAX_EVENT_BYTES) as usize;
            let batch_size = if kind == SyslogKind::MultiportTcp {
                ctx.u32_in(
                    "batchSize",
                    100,
                    1..=file_channel::limits::MAX_EVENTS_PER_TXN,
                )
            } else {
                100
            };
            (event_size, batch_size)
        };
        let mut port_header = None;
        if kind == SyslogKind::MultiportTcp {
            port_header = ctx.string("portHeader").filter(|s| !s.is_empty());
            if let Some(cs) = ctx.string("charset.default") {
                if !cs.eq_ignore_ascii_case("UTF-8") {
                    ctx.error(
                        "charset.default",
                        format!("only UTF-8 is supported, not {cs:?}"),
                    );
                }
            }
        }
        Self {
            kind,
            host,
            ports,
            event_size,
            keep_fields,
            port_header,
            client_ip_header: ctx.string("clientIPHeader").filter(|s| !s.is_empty()),
            batch_size,
            limits: if kind == SyslogKind::Udp {
                ConnectionLimits::default()
            } else {
                ConnectionLimits::parse(ctx)
            },
            tls: if kind == SyslogKind::Udp {
                if ctx.bool("ssl", false) {
                    ctx.error(
                        "ssl",
                        "syslogudp has no TLS (datagrams); use syslogtcp with ssl = true",
                    );
                }
                TlsConfig::default()
            } else {
                TlsConfig::parse(ctx, kind.name())
            },
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A syslog source.
#[derive(Debug)]
pub struct SyslogSource {
    config: Arc<SyslogConfig>,
    ctx: SourceContext,
    tls: SourceTls,
}

impl SyslogSource {
    /// A syslog source; nothing is bound before `start`.
    pub fn new(config: SyslogConfig, ctx: SourceContext) -> Self {
        Self {
            tls: config.tls.source_tls(),
            config: Arc::new(config),
            ctx,
        }
    }
}

impl EventDrivenSource for SyslogSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let cfg = self.config;
            let ctx = self.ctx;
            let tls = self.tls;
            let bind_error = |addr: &str, error| SourceError::Bind {
                source_name: ctx.name.to_string(),
                addr: addr.to_owned(),
                error,
            };
            let kind = cfg.kind.name();
            if cfg.kind == SyslogKind::Udp {
                let addr = format!("{}:{}", cfg.host, cfg.ports[0]);
                let socket = UdpSocket::bind(&addr)
                    .await
                    .map_err(|e| bind_error(&addr, e))?;
                tracing::info!(source = %ctx.name, addr = %addr, "{kind} source listening");
                ctx.counters.lifetime.started();
                let c = cfg.clone();
                let serve: BoxFuture<()> =
                    Box::pin(serve_udp(socket, ctx, stop, kind, move |d, peer| {
                        let d = d.strip_suffix(b"\n").unwrap_or(d);
                        vec![message_event(&c, d, false, peer, None)]
                    }));
                return Ok(serve);
            }
            let mut listeners = Vec::new();
            for &port in &cfg.ports {
                let addr = format!("{}:{port}", cfg.host);
                let l = TcpListener::bind(&addr)
                    .await
                    .map_err(|e| bind_error(&addr, e))?;
                tracing::info!(source = %ctx.name, addr = %addr, tls = tls.is_some(), "{kind} source listening");
                listeners.push((l, port));
            }
            ctx.counters.lifetime.started();
            let guard = Guard::new(&ctx, cfg.limits);
            let serve: BoxFuture<()> = Box::pin(async move {
                let mut tasks = JoinSet::new();
                for (l, port) in listeners {
                    tasks.spawn(accept_loop(
                        l,
                        port,
                        cfg.clone(),
                        ctx.clone(),
                        guard.clone(),
                        tls.clone(),
                        stop.clone(),
                    ));
                }
                while tasks.join_next().await.is_some() {}
                ctx.counters.lifetime.stopped();
                tracing::info!(source = %ctx.name, "{kind} source stopped");
            });
            Ok(serve)
        })
    }
}

/// The event of one message, with the source's extra headers.
fn message_event(
    cfg: &SyslogConfig,
    msg: &[u8],
    truncated: bool,
    peer: SocketAddr,
    local_port: Option<u16>,
) -> Event {
    let mut e = build_event(msg, truncated, cfg.keep_fields, now_ms());
    if let (Some(h), Some(p)) = (&cfg.port_header, local_port) {
        e = e.with_header(h.clone(), p.to_string());
    }
    if let Some(h) = &cfg.client_ip_header {
        e = e.with_header(h.clone(), peer.ip().to_string());
    }
    e
}

async fn accept_loop(
    listener: TcpListener,
    port: u16,
    cfg: Arc<SyslogConfig>,
    ctx: SourceContext,
    guard: Arc<Guard>,
    tls: SourceTls,
    stop: Stop,
) {
    net::serve_connections(listener, &guard, &tls, &stop, |incoming| {
        handle(
            incoming,
            port,
            cfg.clone(),
            ctx.clone(),
            guard.clone(),
            stop.clone(),
        )
    })
    .await;
}

async fn handle(
    incoming: Incoming,
    port: u16,
    cfg: Arc<SyslogConfig>,
    ctx: SourceContext,
    guard: Arc<Guard>,
    stop: Stop,
) {
    let peer = incoming.peer();
    let Some(mut socket) = incoming.establish().await else {
        return;
    };
    ctx.counters.open_connection_count.fetch_add(1, Relaxed);
    let mut framer = Framer::new(cfg.event_size);
    let mut deadline = PartialDeadline::new(cfg.limits.read_timeout());
    let mut eof = false;
    loop {
        let mut events = Vec::new();
        let mut completed_a_message = false;
        let mut failed = false;
        loop {
            let frame = if eof {
                framer.finish()
            } else {
                framer.next_frame()
            };
            let Some(f) = frame else { break };
            completed_a_message = true;
            events.push(message_event(&cfg, &f.bytes, f.truncated, peer, Some(port)));
            if events.len() >= cfg.batch_size as usize {
                if let Err(e) = commit(&ctx, std::mem::take(&mut events), Call::Batch).await {
                    tracing::warn!(source = %ctx.name, %peer, error = %e, "cannot commit syslog messages; closing the connection");
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            if let Err(e) = commit(&ctx, events, Call::Batch).await {
                tracing::warn!(source = %ctx.name, %peer, error = %e, "cannot commit syslog messages; closing the connection");
                failed = true;
            }
        }
        if failed || eof {
            break;
        }
        framer.release_if_empty();
        deadline.update(completed_a_message, framer.mid_message());
        tokio::select! {
            () = stop.wait() => break,
            read = deadline.run(socket.read_available()) => match read {
                None => {
                    guard.timed_out(&peer, "syslog message", framer.pending());
                    break;
                }
                Some(Ok(chunk)) if chunk.is_empty() => eof = true,
                Some(Ok(chunk)) => framer.push(&chunk),
                Some(Err(e)) => {
                    tracing::debug!(source = %ctx.name, error = %e, "read failed; closing");
                    break;
                }
            },
        }
    }
    // A TLS client learns the end from a close_notify, not a bare TCP close.
    let _ = socket.shutdown().await;
    ctx.counters.open_connection_count.fetch_sub(1, Relaxed);
}
