//! `netcatudp`: one event per UDP datagram (Flume's `NetcatUdpSource`).
//!
//! Keys and Flume's defaults: `bind` and `port` (required), `remoteAddressHeader` (unset: when
//! set, the sender's IP address is put in that header).
//!
//! The body is the datagram with one trailing `\n` removed (a `\r` before it is kept, as with
//! `netcat`); bytes are kept as they are. Nothing is answered: UDP gives no delivery guarantee,
//! and a datagram that arrives while the channel is full is dropped (counted in
//! `ChannelWriteFail` and logged), as in Flume.
//!
//! Datagrams already queued in the socket when one is read are committed together, up to
//! [`MAX_BATCH_EVENTS`] per transaction.
//!
//! Differences from Flume: Flume stops a datagram at its first `\n` and drops the rest; we keep
//! the whole datagram and only strip a final `\n`.

use super::commit::{commit, Call};
use super::{BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::config::context::Ctx;
use crate::stop::Stop;
use file_channel::Event;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// The largest UDP payload.
const MAX_DATAGRAM_BYTES: usize = 65_536;
/// Most datagrams committed in one transaction.
pub const MAX_BATCH_EVENTS: usize = 100;

/// Configuration of a netcatudp source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetcatUdpConfig {
    /// Address to listen on. `bind`.
    pub bind: String,
    /// Port. `port`.
    pub port: u16,
    /// Header for the sender's IP address. `remoteAddressHeader`. Default: unset.
    pub remote_address_header: Option<String>,
}

impl NetcatUdpConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            bind: ctx.required("bind").unwrap_or_default(),
            port: required_port(ctx, "port"),
            remote_address_header: ctx.string("remoteAddressHeader").filter(|s| !s.is_empty()),
        }
    }
}

/// Reads a required port key (0 when missing or invalid; the problem is recorded).
pub(crate) fn required_port(ctx: &Ctx<'_>, key: &str) -> u16 {
    match ctx.get(key) {
        Some(_) => ctx.u64_in(key, 0, 0..=65_535) as u16,
        None => {
            ctx.required(key);
            0
        }
    }
}

/// The event a datagram becomes.
pub fn datagram_event(datagram: &[u8], peer: SocketAddr, header: Option<&str>) -> Event {
    let body = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    let mut e = Event::new(body.to_vec());
    if let Some(h) = header {
        e = e.with_header(h, peer.ip().to_string());
    }
    e
}

/// The netcatudp source.
#[derive(Debug)]
pub struct NetcatUdpSource {
    config: NetcatUdpConfig,
    ctx: SourceContext,
}

impl NetcatUdpSource {
    /// A netcatudp source; nothing is bound before `start`.
    pub fn new(config: NetcatUdpConfig, ctx: SourceContext) -> Self {
        Self { config, ctx }
    }
}

impl EventDrivenSource for NetcatUdpSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let addr = format!("{}:{}", self.config.bind, self.config.port);
            let socket = UdpSocket::bind(&addr)
                .await
                .map_err(|error| SourceError::Bind {
                    source_name: self.ctx.name.to_string(),
                    addr: addr.clone(),
                    error,
                })?;
            tracing::info!(source = %self.ctx.name, addr = %addr, "netcatudp source listening");
            self.ctx.counters.lifetime.started();
            let header = self.config.remote_address_header;
            let serve: BoxFuture<()> = Box::pin(serve_udp(
                socket,
                self.ctx,
                stop,
                "netcatudp",
                move |d, peer| vec![datagram_event(d, peer, header.as_deref())],
            ));
            Ok(serve)
        })
    }
}

/// Receives datagrams until `stop`, turning each into events with `to_events` and committing
/// what is queued together (up to [`MAX_BATCH_EVENTS`] datagrams). Shared with `syslogudp`.
pub(crate) async fn serve_udp(
    socket: UdpSocket,
    ctx: SourceContext,
    stop: Stop,
    kind: &'static str,
    to_events: impl Fn(&[u8], SocketAddr) -> Vec<Event> + Send + 'static,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        let first = tokio::select! {
            () = stop.wait() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let mut events = Vec::new();
        match first {
            Ok((n, peer)) => events.extend(to_events(&buf[..n], peer)),
            Err(e) => {
                tracing::debug!(source = %ctx.name, error = %e, "receive failed");
                continue;
            }
        }
        let mut datagrams = 1;
        while datagrams < MAX_BATCH_EVENTS {
            match socket.try_recv_from(&mut buf) {
                Ok((n, peer)) => events.extend(to_events(&buf[..n], peer)),
                Err(_) => break,
            }
            datagrams += 1;
        }
        let n = events.len();
        if let Err(e) = commit(&ctx, events, Call::Batch).await {
            tracing::warn!(source = %ctx.name, error = %e, events = n, "{kind}: datagrams dropped");
        }
    }
    ctx.counters.lifetime.stopped();
    tracing::info!(source = %ctx.name, "{kind} source stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_trailing_newline_and_adds_the_sender_header() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let e = datagram_event(b"hello\n", peer, None);
        assert_eq!(e.body, b"hello");
        assert!(e.headers.is_empty());
        let e = datagram_event(b"a\r\n\n", peer, Some("ip"));
        assert_eq!(e.body, b"a\r\n");
        assert_eq!(e.header("ip"), Some("127.0.0.1"));
        assert_eq!(datagram_event(b"", peer, None).body, b"");
    }
}
