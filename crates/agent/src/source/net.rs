//! What every TCP source shares to stay bounded against hostile or broken clients: a cap on
//! the connections it serves at once (`maxConnections`), a deadline for a partly received
//! request, frame or line (`readTimeout`), the two counters that say when either acted, and a
//! read that allocates its buffer only once bytes are there.
//!
//! Why: a connection used to cost what its peer announced (a thrift frame header promising
//! 16 MB held megabytes) and nothing ever closed a connection that stopped half way through a
//! request, so a few hundred clients could take the agent's memory or its file descriptors.
//! Now a connection costs what it actually sent, a half-sent request is closed after
//! `readTimeout`, and connections beyond `maxConnections` are closed at once.
//!
//! What is *not* timed out: a connection between two complete requests (an RPC client keeping
//! its connection open between batches is doing what Flume's clients do).
//!
//! TLS (issue 15): the avro, thrift, http and syslog TCP sources serve [`Connection`]s, plain
//! TCP or a server-side TLS stream. [`serve_connections`] hands each accepted socket to the
//! source as an [`Incoming`]; the source completes it with [`Incoming::establish`], in the
//! connection's own task (the avro source first applies its ip filter), which fetches a fresh
//! acceptor from the source's [`TlsAcceptorSource`] (so a rotated certificate serves the next
//! connection) and does the handshake under the `readTimeout` deadline: a client that connects
//! and never finishes its handshake is closed like a slow client and counted in
//! `ReadTimeoutCount`; a failed handshake (a plaintext client, a client offering only TLS 1.1,
//! a client without a required certificate) is counted in `TlsHandshakeFailedCount`, logged at
//! most every ten seconds per source, and the connection closed before anything of it is read.
//! A client that closes before its handshake is complete (a TCP health check) is not counted.
//!
//! Memory: a plain connection waits for bytes with the socket's readiness API and holds no read
//! buffer while idle ([`read_available`]). A TLS connection cannot do that (rustls may hold
//! decrypted or undecoded bytes the socket's readiness does not show), so each of its reads
//! takes a buffer of [`TLS_READ_CHUNK_BYTES`] (the plaintext of one TLS record), held while the
//! read waits, besides rustls' own per-connection buffers.

use crate::config::context::Ctx;
use crate::metrics::{ExtraCounters, Metric, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Default of `maxConnections`: connections one source serves at once.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1000;
/// Default of `readTimeout`: the longest a partly received request may take to complete, ms.
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 30_000;
/// Most bytes taken from a socket by one read.
pub const READ_CHUNK_BYTES: usize = 64 << 10;
/// Most bytes taken from a TLS connection by one read: the plaintext of one TLS record.
pub const TLS_READ_CHUNK_BYTES: usize = 16 << 10;
/// Least time between two warnings about refused connections (or failed TLS handshakes) of
/// one source.
const REFUSAL_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The connection limits of one TCP source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more are closed as soon as accepted. `maxConnections`.
    pub max_connections: u32,
    /// The longest a partly received request, frame or line may take to complete, from its
    /// first byte, before the connection is closed. `readTimeout` (ms).
    pub read_timeout_ms: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
        }
    }
}

impl ConnectionLimits {
    /// Reads `maxConnections` (1 to 1,000,000; default 1000) and `readTimeout` (ms, 1 to one
    /// day; default 30,000).
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            max_connections: ctx.u32_in("maxConnections", DEFAULT_MAX_CONNECTIONS, 1..=1_000_000),
            read_timeout_ms: ctx.u64_in("readTimeout", DEFAULT_READ_TIMEOUT_MS, 1..=86_400_000),
        }
    }

    /// `readTimeout` as a duration.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }
}

/// The counters a TCP source adds to Flume's `SourceCounter`.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    /// Connections closed as soon as accepted because `maxConnections` were open.
    pub connection_rejected_count: AtomicU64,
    /// Connections closed because a partly received request, or the TLS handshake, did not
    /// complete within `readTimeout`.
    pub read_timeout_count: AtomicU64,
    /// Connections closed because their TLS handshake failed (a plaintext client on a TLS
    /// port, no common protocol version or cipher suite, a missing or untrusted client
    /// certificate).
    pub tls_handshake_failed_count: AtomicU64,
    /// The source's TLS, once its accept loop runs: its keystore reloads are reported with
    /// these counters (`TlsReloadCount`, `TlsReloadFailedCount`).
    pub tls: std::sync::OnceLock<Arc<dyn TlsAcceptorSource>>,
}

impl ExtraCounters for ConnectionCounters {
    fn snapshot(&self) -> Vec<Metric> {
        let mut metrics = vec![
            Metric {
                name: "ConnectionRejectedCount",
                value: Value::Counter(self.connection_rejected_count.load(Relaxed)),
            },
            Metric {
                name: "ReadTimeoutCount",
                value: Value::Counter(self.read_timeout_count.load(Relaxed)),
            },
            Metric {
                name: "TlsHandshakeFailedCount",
                value: Value::Counter(self.tls_handshake_failed_count.load(Relaxed)),
            },
        ];
        if let Some(reloads) = self.tls.get().map(|tls| tls.reloads()) {
            metrics.push(Metric {
                name: "TlsReloadCount",
                value: Value::Counter(reloads.done),
            });
            metrics.push(Metric {
                name: "TlsReloadFailedCount",
                value: Value::Counter(reloads.failed),
            });
        }
        metrics
    }
}

/// Admits connections up to `maxConnections` and counts what the limits refuse or close.
#[derive(Debug)]
pub struct Guard {
    source: Arc<str>,
    limits: ConnectionLimits,
    permits: Arc<Semaphore>,
    counters: Arc<ConnectionCounters>,
    last_refusal_warning: Mutex<Option<Instant>>,
    last_handshake_warning: Mutex<Option<Instant>>,
}

/// Whether a warning last given at `*last` may be given again now; if so, records now.
fn warning_due(last: &Mutex<Option<Instant>>) -> bool {
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_none_or(|t| t.elapsed() >= REFUSAL_WARNING_INTERVAL) {
        *last = Some(Instant::now());
        true
    } else {
        false
    }
}

impl Guard {
    /// The guard of one source, its counters registered with the source's (reported after
    /// Flume's under the source's name on the metrics endpoint).
    pub fn new(ctx: &super::SourceContext, limits: ConnectionLimits) -> Arc<Self> {
        let counters = Arc::new(ConnectionCounters::default());
        // Set once per source; a source started twice (tests) keeps its first set.
        let _ = ctx.counters.extra.set(counters.clone());
        Arc::new(Self {
            source: ctx.name.clone(),
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections as usize)),
            counters,
            last_refusal_warning: Mutex::new(None),
            last_handshake_warning: Mutex::new(None),
        })
    }

    /// The limits.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// The counters.
    pub fn counters(&self) -> &ConnectionCounters {
        &self.counters
    }

    /// A slot for a connection just accepted from `peer`, held as long as it is served;
    /// `None` when `maxConnections` are open: the caller closes the connection at once. The
    /// refusal is counted, and logged at most every ten seconds.
    pub fn admit(&self, peer: &SocketAddr) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        self.counters
            .connection_rejected_count
            .fetch_add(1, Relaxed);
        if warning_due(&self.last_refusal_warning) {
            tracing::warn!(
                source = %self.source,
                %peer,
                max_connections = self.limits.max_connections,
                refused_so_far = self.counters.connection_rejected_count.load(Relaxed),
                "maxConnections connections are open; closing new connections at once until one ends"
            );
        } else {
            tracing::debug!(source = %self.source, %peer, "maxConnections reached; connection closed");
        }
        None
    }

    /// Counts and logs a connection closed because a partly received request from `peer`
    /// did not complete within `readTimeout`; `what` names the request ("frame", "line").
    pub fn timed_out(&self, peer: &dyn std::fmt::Display, what: &str, bytes_received: usize) {
        self.counters.read_timeout_count.fetch_add(1, Relaxed);
        tracing::warn!(
            source = %self.source,
            %peer,
            read_timeout_ms = self.limits.read_timeout_ms,
            bytes_received,
            "a partly received {what} did not complete within readTimeout; closing the connection"
        );
    }

    /// Counts and logs a connection closed because its TLS handshake did not complete within
    /// `readTimeout` (a slow or silent client).
    pub fn handshake_timed_out(&self, peer: &SocketAddr) {
        self.counters.read_timeout_count.fetch_add(1, Relaxed);
        tracing::warn!(
            source = %self.source,
            %peer,
            read_timeout_ms = self.limits.read_timeout_ms,
            "the TLS handshake did not complete within readTimeout; closing the connection"
        );
    }

    /// Counts a connection closed because its TLS handshake failed, and logs it at most every
    /// ten seconds (a port scanner or a misconfigured fleet must not flood the log).
    pub fn handshake_failed(&self, peer: &SocketAddr, error: &std::io::Error) {
        let failed_so_far = self
            .counters
            .tls_handshake_failed_count
            .fetch_add(1, Relaxed)
            + 1;
        if warning_due(&self.last_handshake_warning) {
            tracing::warn!(
                source = %self.source,
                %peer,
                %error,
                failed_so_far,
                "TLS handshake failed (a plaintext client, an unsupported protocol version or cipher suite, or a missing or untrusted client certificate); closing the connection"
            );
        } else {
            tracing::debug!(source = %self.source, %peer, %error, "TLS handshake failed");
        }
    }
}

/// The deadline of the request in progress on one connection: none while the connection is
/// between requests, set when the first byte of a request arrives.
#[derive(Debug)]
pub struct PartialDeadline {
    timeout: Duration,
    deadline: Option<tokio::time::Instant>,
}

impl PartialDeadline {
    /// No request in progress yet.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            deadline: None,
        }
    }

    /// Records, after the bytes read so far were processed, whether a request (line, frame)
    /// was completed by them and whether one is partly received now. The deadline starts
    /// with the first byte of a request: it is cleared when one completes (the bytes after it
    /// belong to the next) and set again if a request is partly received.
    pub fn update(&mut self, completed: bool, partly_received: bool) {
        if completed || !partly_received {
            self.deadline = None;
        }
        if partly_received && self.deadline.is_none() {
            self.deadline = Some(tokio::time::Instant::now() + self.timeout);
        }
    }

    /// Runs `read` until it completes or the deadline passes (`None`); without a request in
    /// progress it may take forever.
    pub async fn run<T>(&self, read: impl Future<Output = T>) -> Option<T> {
        match self.deadline {
            None => Some(read.await),
            Some(at) => tokio::time::timeout_at(at, read).await.ok(),
        }
    }
}

/// A socket (or its read half) that can wait for bytes without a buffer.
pub trait ReadySocket {
    /// Waits until a read would not block.
    fn ready(&self) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Reads what is there without blocking.
    fn read_now(&self, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl ReadySocket for TcpStream {
    fn ready(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        self.readable()
    }
    fn read_now(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.try_read(buf)
    }
}

impl ReadySocket for OwnedReadHalf {
    fn ready(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        self.readable()
    }
    fn read_now(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.try_read(buf)
    }
}

/// Waits for bytes on `socket`, then reads up to [`READ_CHUNK_BYTES`] of them into a buffer
/// allocated only now: a connection that sends nothing holds no read buffer. An empty result
/// is the end of the stream.
pub async fn read_available(socket: &impl ReadySocket) -> std::io::Result<Vec<u8>> {
    loop {
        socket.ready().await?;
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        match socket.read_now(&mut chunk) {
            Ok(n) => {
                chunk.truncate(n);
                return Ok(chunk);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Yields the TLS acceptor for the next connection of a source. Asked once per connection, so
/// an implementation that reloads a changed keystore (the agent's `ServerTls`) serves a rotated
/// certificate to the next connection without a restart.
pub trait TlsAcceptorSource: Send + Sync + std::fmt::Debug {
    /// The acceptor for the connection about to be handshaken.
    fn acceptor(&self) -> tokio_rustls::TlsAcceptor;

    /// How often the keystore was reloaded after a change, and how often a reload failed (the
    /// old certificate then stays): what an operator alerts on when a rotation goes wrong.
    fn reloads(&self) -> TlsReloads {
        TlsReloads::default()
    }
}

/// Keystore reloads of a source's TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsReloads {
    /// Reloads that took effect.
    pub done: u64,
    /// Reloads that failed (a broken or half-written file): the previous certificate stays.
    pub failed: u64,
}

/// A fixed acceptor: the same configuration for every connection.
#[derive(Clone)]
pub struct FixedAcceptor(pub tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for FixedAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedAcceptor")
    }
}

impl TlsAcceptorSource for FixedAcceptor {
    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.0.clone()
    }
}

impl TlsAcceptorSource for crate::tls::ServerTls {
    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        crate::tls::ServerTls::acceptor(self)
    }

    fn reloads(&self) -> TlsReloads {
        TlsReloads {
            done: crate::tls::ServerTls::reloads(self),
            failed: crate::tls::ServerTls::reload_failures(self),
        }
    }
}

/// A source's TLS, shared by its connections: `None` serves plain TCP.
pub type SourceTls = Option<Arc<dyn TlsAcceptorSource>>;

/// A TCP source's TLS as configured: `ssl` and the keys [`crate::tls::ServerTls`] reads
/// (keystore, protocols, cipher suites, `client-auth`). `None` inside: plain TCP. Compared by
/// the settings, so source configurations stay comparable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsConfig(pub Option<crate::tls::ServerTls>);

// `ServerTls` compares its settings, which are `Eq`.
impl Eq for TlsConfig {}

impl TlsConfig {
    /// Reads the TLS keys of the source `component` ("avro source"); errors are recorded on
    /// the keys, so a wrong password or a missing keystore stops the agent at start.
    pub fn parse(ctx: &Ctx<'_>, component: &str) -> Self {
        Self(crate::tls::ServerTls::parse(ctx, component))
    }

    /// What the source's connections are handshaken with.
    pub fn source_tls(&self) -> SourceTls {
        self.0
            .clone()
            .map(|tls| Arc::new(tls) as Arc<dyn TlsAcceptorSource>)
    }
}

/// One connection of a TCP source, after its TLS handshake if the source has TLS: what the
/// source reads its requests from and writes its answers to.
#[derive(Debug)]
pub enum Connection {
    /// Plain TCP.
    Plain(TcpStream),
    /// A server-side TLS stream over TCP (boxed: rustls' state is large).
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connection {
    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// Waits for bytes and returns what is there, at most [`READ_CHUNK_BYTES`] (plain) or
    /// [`TLS_READ_CHUNK_BYTES`] (TLS). A plain connection allocates the buffer only once bytes
    /// are there ([`read_available`]); a TLS one holds it while waiting (see the module doc).
    /// An empty result is the end of the stream.
    pub async fn read_available(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Plain(socket) => read_available(&*socket).await,
            Self::Tls(stream) => {
                let mut chunk = vec![0u8; TLS_READ_CHUNK_BYTES];
                let n = stream.read(&mut chunk).await?;
                chunk.truncate(n);
                Ok(chunk)
            }
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl avro_ipc::server::ServerStream for Connection {
    fn read_available(&mut self) -> impl Future<Output = std::io::Result<Vec<u8>>> + Send {
        Connection::read_available(self)
    }
}

/// A connection just accepted (and admitted by `maxConnections`), not yet usable: the source
/// completes it with [`Incoming::establish`], which does the TLS handshake if the source has
/// TLS. Dropping it closes the connection.
#[derive(Debug)]
pub struct Incoming {
    socket: TcpStream,
    peer: SocketAddr,
    tls: SourceTls,
    guard: Arc<Guard>,
    stop: crate::stop::Stop,
}

impl Incoming {
    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The TCP socket, for its options (`TCP_NODELAY`).
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The connection, after its TLS handshake when the source has TLS (with an acceptor
    /// fetched now, so a rotated certificate is served). `None` when the handshake failed, did
    /// not complete within `readTimeout` (both counted and logged) or the source stops
    /// meanwhile: the connection is closed and nothing of it was read.
    pub async fn establish(self) -> Option<Connection> {
        let Some(tls) = self.tls else {
            return Some(Connection::Plain(self.socket));
        };
        let acceptor = tls.acceptor();
        let deadline = self.guard.limits().read_timeout();
        // The fallible form gives the socket back on failure, and the handshake (which holds
        // it until then) lives to the end of this function: a failure or a timeout is counted
        // before the client can see its connection closed.
        let mut handshake = std::pin::pin!(acceptor.accept(self.socket).into_fallible());
        tokio::select! {
            () = self.stop.wait() => None,
            () = tokio::time::sleep(deadline) => {
                self.guard.handshake_timed_out(&self.peer);
                None
            }
            done = &mut handshake => match done {
                Ok(stream) => Some(Connection::Tls(Box::new(stream))),
                // Closed before a handshake was complete without anything wrong said: a TCP
                // probe (a load balancer's health check) or a client giving up, not a failure.
                Err((e, _socket)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    tracing::debug!(source = %self.guard.source, peer = %self.peer, "connection closed during the TLS handshake");
                    None
                }
                Err((e, _socket)) => {
                    self.guard.handshake_failed(&self.peer, &e);
                    None
                }
            },
        }
    }
}

/// Accepts connections on `listener` until `stop`, each admitted by `guard` (over
/// `maxConnections` one is closed at once) and served, in a task of its own, by the future
/// `serve` makes for it; then waits for the connections in progress to end. `serve` gets the
/// connection as an [`Incoming`], to complete with [`Incoming::establish`] (the TLS handshake
/// with `tls`, in the connection's task). Every TLS-capable TCP source's accept loop: an accept
/// error (EMFILE, say) is logged and retried after 100 ms, never fatal.
pub async fn serve_connections<F>(
    listener: TcpListener,
    guard: &Arc<Guard>,
    tls: &SourceTls,
    stop: &crate::stop::Stop,
    mut serve: impl FnMut(Incoming) -> F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let source = guard.source.clone();
    if let Some(tls) = tls {
        // Set once per source; a source started twice (tests) keeps its first.
        let _ = guard.counters.tls.set(tls.clone());
    }
    accept_loop(listener, guard, &source, stop, |socket, peer| {
        serve(Incoming {
            socket,
            peer,
            tls: tls.clone(),
            guard: guard.clone(),
            stop: stop.clone(),
        })
    })
    .await;
}

/// Accepts connections on `listener` until `stop`, each admitted by `guard` (over
/// `maxConnections` one is closed at once) and served by the future `serve` makes for it; then
/// waits for the connections in progress to end. The accept loop of the plain-TCP sources
/// (netcat), and under [`serve_connections`]: an accept error (EMFILE, say) is logged and
/// retried after 100 ms, never fatal.
pub async fn accept_loop<F>(
    listener: TcpListener,
    guard: &Guard,
    source: &str,
    stop: &crate::stop::Stop,
    mut serve: impl FnMut(TcpStream, SocketAddr) -> F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let Some(slot) = guard.admit(&peer) else {
                        drop(socket);
                        continue;
                    };
                    tracing::debug!(source, %peer, "connection");
                    let task = serve(socket, peer);
                    connections.spawn(async move {
                        task.await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(source, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_support::{ctx, entries};

    #[test]
    fn keys_and_defaults() {
        let list = entries(&[]);
        assert_eq!(
            ConnectionLimits::parse(&ctx(&list)),
            ConnectionLimits {
                max_connections: 1000,
                read_timeout_ms: 30_000
            }
        );
        let list = entries(&[("maxConnections", "5"), ("readTimeout", "250")]);
        assert_eq!(
            ConnectionLimits::parse(&ctx(&list)),
            ConnectionLimits {
                max_connections: 5,
                read_timeout_ms: 250
            }
        );
        let list = entries(&[("maxConnections", "0"), ("readTimeout", "0")]);
        let x = ctx(&list);
        ConnectionLimits::parse(&x);
        assert!(x.has_error_for("maxConnections"));
        assert!(x.has_error_for("readTimeout"));
    }

    fn ring() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(crate::tls::ring_provider())
    }

    /// A CA and a server certificate for 127.0.0.1 signed by it, made by `openssl` in `dir`:
    /// (the CA's certificate, the server's acceptor).
    fn openssl_server(dir: &std::path::Path) -> (Vec<u8>, tokio_rustls::TlsAcceptor) {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl is needed by these tests: install it (apt-get install openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=net test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        let ca = CertificateDer::from_pem_file(dir.join("ca.pem")).expect("CA PEM");
        let chain = vec![CertificateDer::from_pem_file(dir.join("server.pem")).expect("cert")];
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        (
            ca.to_vec(),
            tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        )
    }

    fn connector(ca: &[u8]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(ca.to_vec()))
            .expect("root");
        let config = rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// An echo server over [`serve_connections`] with `tls`: every established connection
    /// echoes what it reads; returns its address, guard, the established connections so far,
    /// and the stop.
    async fn echo_server(
        tls: SourceTls,
        read_timeout_ms: u64,
    ) -> (SocketAddr, Arc<Guard>, Arc<AtomicU64>, crate::stop::Stop) {
        use tokio::io::AsyncWriteExt;
        let (ctx, _channel) = crate::source::test_context(10, 10);
        let guard = Guard::new(
            &ctx,
            ConnectionLimits {
                max_connections: 10,
                read_timeout_ms,
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = crate::stop::Stop::new();
        let established = Arc::new(AtomicU64::new(0));
        let (g, s, e) = (guard.clone(), stop.clone(), established.clone());
        tokio::spawn(async move {
            serve_connections(listener, &g, &tls, &s, |incoming| {
                let established = e.clone();
                async move {
                    let Some(mut conn) = incoming.establish().await else {
                        return;
                    };
                    established.fetch_add(1, Relaxed);
                    while let Ok(bytes) = conn.read_available().await {
                        if bytes.is_empty() || conn.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    let _ = conn.shutdown().await;
                }
            })
            .await;
        });
        (addr, guard, established, stop)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_connections_are_served_and_failed_handshakes_counted_before_any_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, acceptor) = openssl_server(dir.path());
        let tls: SourceTls = Some(Arc::new(FixedAcceptor(acceptor)));
        let (addr, guard, established, stop) = echo_server(tls, 30_000).await;

        // A TLS client is served, through several reads and writes.
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut client = connector(&ca).connect(name, tcp).await.expect("handshake");
        for round in 0..3 {
            let line = format!("hello over TLS {round}\n");
            client.write_all(line.as_bytes()).await.expect("send");
            let mut back = vec![0u8; line.len()];
            client.read_exact(&mut back).await.expect("echo");
            assert_eq!(back, line.as_bytes());
        }
        drop(client);

        // A plaintext client: its handshake fails, it is closed, and nothing of it was read.
        let mut plain = TcpStream::connect(addr).await.expect("connect");
        plain
            .write_all(b"hello in the clear\n")
            .await
            .expect("send");
        let mut back = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut back))
            .await
            .expect("closed in time");
        assert!(
            !back.windows(5).any(|w| w == b"hello"),
            "the plaintext was never echoed: {back:?}"
        );
        assert_eq!(guard.counters().tls_handshake_failed_count.load(Relaxed), 1);

        // A TCP probe (connect, close) is no failed handshake.
        let mut probe = TcpStream::connect(addr).await.expect("connect");
        probe.shutdown().await.expect("close");
        let mut back = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), probe.read_to_end(&mut back))
            .await
            .expect("closed in time");
        assert_eq!(guard.counters().tls_handshake_failed_count.load(Relaxed), 1);
        assert_eq!(
            established.load(Relaxed),
            1,
            "only the TLS client was served"
        );
        assert_eq!(guard.counters().read_timeout_count.load(Relaxed), 0);
        stop.trigger();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_completes_its_handshake_is_closed_after_read_timeout() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (_ca, acceptor) = openssl_server(dir.path());
        let tls: SourceTls = Some(Arc::new(FixedAcceptor(acceptor)));
        let (addr, guard, established, stop) = echo_server(tls, 300).await;
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let mut buf = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "the server closed the silent connection");
        assert_eq!(guard.counters().read_timeout_count.load(Relaxed), 1);
        assert_eq!(guard.counters().tls_handshake_failed_count.load(Relaxed), 0);
        assert_eq!(established.load(Relaxed), 0);
        stop.trigger();
    }

    #[tokio::test]
    async fn the_deadline_runs_only_while_a_request_is_partly_received() {
        let mut d = PartialDeadline::new(Duration::from_millis(50));
        let slow = tokio::time::sleep(Duration::from_millis(200));
        assert_eq!(d.run(slow).await, Some(()), "no deadline between requests");
        d.update(false, true);
        let slow = tokio::time::sleep(Duration::from_secs(10));
        assert_eq!(d.run(slow).await, None, "a partial request times out");
        d.update(false, false);
        d.update(false, true);
        let quick = tokio::time::sleep(Duration::from_millis(1));
        assert_eq!(
            d.run(quick).await,
            Some(()),
            "a new request, a new deadline"
        );
        // A request completed and the next begun in the same read: the next one's deadline.
        let mut d = PartialDeadline::new(Duration::from_millis(600));
        d.update(false, true);
        tokio::time::sleep(Duration::from_millis(400)).await;
        d.update(true, true);
        let within_the_new_deadline = tokio::time::sleep(Duration::from_millis(400));
        assert_eq!(d.run(within_the_new_deadline).await, Some(()));
    }
}
