//! One connection of an `AvroSourceProtocol` server (the avro source): read frames, do the
//! handshake on the first call (Avro's Netty transport is stateful), then answer calls one at a
//! time in the order received, each by the [`CallHandler`] the user supplies.
//!
//! Anything that is not Avro IPC of Flume's protocol (broken framing, a zlib stream where none
//! is expected or the reverse, undecodable data, a foreign protocol) ends the connection with
//! one warning naming the peer and what was wrong; nothing a peer sends can make the server
//! panic or allocate more than [`frame::MAX_FRAME_BYTES`] for one message, and what it
//! allocates grows with the bytes it actually sent (an idle connection holds no read buffer).
//! A frame started and not completed within [`ServerShared::read_timeout`] ends the connection
//! ([`ConnectionEnd::ReadTimeout`]); a connection idle between calls is never timed out.
//! Accepting connections, deciding which peers may connect, and TLS are the user's: a
//! connection is any [`ServerStream`] (plain TCP here; the agent adds a TLS stream).

use crate::call::{self, Request, Response};
use crate::compression::{Incoming, Outgoing};
use crate::frame::{self, FrameDecoder};
use crate::handshake::{HandshakeMatch, HandshakeRequest, HandshakeResponse};
use crate::protocol::{self, PROTOCOL_JSON};
use crate::WireError;
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read from a socket at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// Most client protocol hashes remembered per source (beyond it, such clients resend their
/// text on every new connection, which still works).
const MAX_KNOWN_CLIENTS: usize = 1024;
/// Longest wait for a peer to take a response before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// A boxed future that can move between threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Answers the calls of a connection (`append` and `appendBatch`).
pub type CallHandler = Arc<dyn Fn(Request) -> BoxFuture<Response> + Send + Sync>;

/// What the connections of one server (one source) share.
pub struct ServerShared {
    /// The server's (source's) name, for logs.
    pub source: Arc<str>,
    /// `compression-type = deflate`: zlib in both directions, at this level for responses.
    pub deflate_level: Option<u32>,
    /// Client protocol hashes already resolved (sent with their text once).
    pub known_clients: Mutex<HashSet<[u8; 16]>>,
    /// Answers the calls.
    pub handler: CallHandler,
    /// The longest a partly received frame may take to complete, from its first byte; `None`
    /// for no limit.
    pub read_timeout: Option<Duration>,
}

/// Why [`serve_connection`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The peer closed the connection, or stop completed.
    Closed,
    /// The peer broke the protocol or the socket failed (logged).
    Failed,
    /// A frame was started and not completed within the read timeout.
    ReadTimeout {
        /// Bytes of the incomplete frame received.
        bytes_received: usize,
    },
}

/// A connection the server can serve: written with [`AsyncWrite`], read by
/// [`ServerStream::read_available`].
pub trait ServerStream: AsyncWrite + Unpin + Send {
    /// Waits for bytes and returns those there (a bounded amount; an implementation should
    /// allocate its buffer only once bytes are there where it can, so an idle connection holds
    /// none). Empty: end of stream.
    fn read_available(&mut self) -> impl Future<Output = std::io::Result<Vec<u8>>> + Send;
}

impl ServerStream for TcpStream {
    /// Waits for bytes with the socket's readiness API, then reads up to [`READ_CHUNK_BYTES`]
    /// of them into a buffer allocated only now.
    fn read_available(&mut self) -> impl Future<Output = std::io::Result<Vec<u8>>> + Send {
        read_available(self)
    }
}

/// Waits for bytes on `socket`, then reads up to [`READ_CHUNK_BYTES`] of them into a buffer
/// allocated only now, so an idle connection holds no read buffer. Empty: end of stream.
async fn read_available(socket: &TcpStream) -> std::io::Result<Vec<u8>> {
    loop {
        socket.readable().await?;
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        match socket.try_read(&mut chunk) {
            Ok(n) => {
                chunk.truncate(n);
                return Ok(chunk);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The handshake's answer and whether calls may follow it.
fn resolve(
    shared: &ServerShared,
    req: HandshakeRequest,
) -> Result<(HandshakeResponse, bool), WireError> {
    let ours = protocol::protocol_hash();
    let mut known = shared
        .known_clients
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let client_known = if let Some(text) = &req.client_protocol {
        protocol::check_remote(text).map_err(WireError::Protocol)?;
        if known.len() < MAX_KNOWN_CLIENTS {
            known.insert(req.client_hash);
        }
        true
    } else {
        req.client_hash == ours || known.contains(&req.client_hash)
    };
    let response = if !client_known {
        HandshakeResponse {
            match_kind: HandshakeMatch::None,
            server_protocol: Some(PROTOCOL_JSON.to_owned()),
            server_hash: Some(ours),
        }
    } else if req.server_hash == ours {
        HandshakeResponse {
            match_kind: HandshakeMatch::Both,
            server_protocol: None,
            server_hash: None,
        }
    } else {
        HandshakeResponse {
            match_kind: HandshakeMatch::Client,
            server_protocol: Some(PROTOCOL_JSON.to_owned()),
            server_hash: Some(ours),
        }
    };
    Ok((response, client_known))
}

/// The per-connection protocol state.
struct Connection {
    shared: Arc<ServerShared>,
    handshaken: bool,
}

impl Connection {
    /// The response payload to one request payload.
    async fn answer(&mut self, payload: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut input = payload;
        let mut out = Vec::new();
        if !self.handshaken {
            let req = HandshakeRequest::decode(&mut input)?;
            let (response, accepted) = resolve(&self.shared, req)?;
            out.extend(response.encode());
            if !accepted {
                return Ok(out);
            }
            self.handshaken = true;
        }
        let response = match call::decode_request(&mut input)? {
            Request::Ping => return Ok(out),
            Request::Unknown(name) => Response::Error(format!(
                "No such message in {}: {name}",
                protocol::PROTOCOL_NAME
            )),
            request => (self.shared.handler)(request).await,
        };
        out.extend(call::encode_response(&response));
        Ok(out)
    }
}

/// Serves one accepted connection until the peer closes it, it misbehaves, a frame it started
/// does not complete within [`ServerShared::read_timeout`], or `stop` completes (calls already
/// received are answered first). Says which.
pub async fn serve_connection<S: ServerStream>(
    mut socket: S,
    peer: SocketAddr,
    shared: Arc<ServerShared>,
    stop: impl Future<Output = ()>,
) -> ConnectionEnd {
    tokio::pin!(stop);
    let source = shared.source.clone();
    let read_timeout = shared.read_timeout;
    let mut incoming = Incoming::new(shared.deflate_level.is_some());
    let mut outgoing = Outgoing::new(shared.deflate_level);
    let mut frames = FrameDecoder::default();
    let mut conn = Connection {
        shared,
        handshaken: false,
    };
    // Set while a frame is partly received: when it must be complete.
    let mut deadline: Option<tokio::time::Instant> = None;
    let end = loop {
        let read = async {
            match deadline {
                None => Some(socket.read_available().await),
                Some(at) => tokio::time::timeout_at(at, socket.read_available())
                    .await
                    .ok(),
            }
        };
        let chunk = tokio::select! {
            () = &mut stop => break ConnectionEnd::Closed,
            read = read => match read {
                None => {
                    break ConnectionEnd::ReadTimeout {
                        bytes_received: frames.pending_bytes(),
                    }
                }
                Some(Ok(c)) if c.is_empty() => break ConnectionEnd::Closed,
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::debug!(source = %source, %peer, error = %e, "read failed; closing");
                    break ConnectionEnd::Failed;
                }
            },
        };
        let bytes = match incoming.decode(&chunk, frame::MAX_FRAME_BYTES) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(source = %source, %peer, error = %e, "peer does not speak Avro IPC as configured (compression-type); closing");
                break ConnectionEnd::Failed;
            }
        };
        drop(chunk);
        frames.push(&bytes);
        drop(bytes);
        let mut completed_a_frame = false;
        loop {
            let frame = match frames.next_frame() {
                Ok(Some(f)) => {
                    completed_a_frame = true;
                    f
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(source = %source, %peer, error = %e, "peer does not speak Avro IPC; closing");
                    return ConnectionEnd::Failed;
                }
            };
            let payload = match conn.answer(&frame.payload).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(source = %source, %peer, error = %e, "bad Avro IPC request; closing");
                    return ConnectionEnd::Failed;
                }
            };
            let wire = outgoing.encode(frame::encode(frame.serial, &payload));
            match tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(&wire)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(source = %source, %peer, error = %e, "write failed; closing");
                    return ConnectionEnd::Failed;
                }
                Err(_) => {
                    tracing::warn!(source = %source, %peer, "peer did not read its response in time; closing");
                    return ConnectionEnd::Failed;
                }
            }
        }
        // A frame is in progress when bytes are held that are not yet a whole frame. (Bytes a
        // deflate stream holds without output are not counted: the end of a sync-flushed
        // message may arrive after the message itself, and that connection is idle.)
        // The deadline runs from the first byte of a frame: it ends with the frame (bytes after
        // it belong to the next one).
        if completed_a_frame || frames.pending_bytes() == 0 {
            deadline = None;
        }
        if frames.pending_bytes() > 0 && deadline.is_none() {
            deadline = read_timeout.map(|t| tokio::time::Instant::now() + t);
        }
    };
    let _ = socket.shutdown().await;
    end
}
