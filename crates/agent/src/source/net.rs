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

use crate::config::context::Ctx;
use crate::metrics::{ExtraCounters, Metric, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
/// Least time between two warnings about refused connections of one source.
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
    /// Connections closed because a partly received request did not complete within
    /// `readTimeout`.
    pub read_timeout_count: AtomicU64,
}

impl ExtraCounters for ConnectionCounters {
    fn snapshot(&self) -> Vec<Metric> {
        vec![
            Metric {
                name: "ConnectionRejectedCount",
                value: Value::Counter(self.connection_rejected_count.load(Relaxed)),
            },
            Metric {
                name: "ReadTimeoutCount",
                value: Value::Counter(self.read_timeout_count.load(Relaxed)),
            },
        ]
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
        let mut last = self
            .last_refusal_warning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= REFUSAL_WARNING_INTERVAL) {
            *last = Some(Instant::now());
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

/// Accepts connections on `listener` until `stop`, each admitted by `guard` (over
/// `maxConnections` one is closed at once) and served by the future `serve` makes for it; then
/// waits for the connections in progress to end. Every TCP source's accept loop: an accept
/// error (EMFILE, say) is logged and retried after 100 ms, never fatal.
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
