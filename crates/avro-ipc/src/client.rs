//! A blocking `AvroSourceProtocol` client, as a sink needs it (a sink runs on its own
//! thread): it connects within `connect_timeout_ms`, does the handshake on its first call, and
//! sends calls one at a time, each answered within `request_timeout_ms`.
//!
//! Over TLS ([`AvroClient::connect_with_tls`], rustls), `connect_timeout_ms` covers the TCP
//! connect and the TLS handshake together, and a handshake the client or the server refuses
//! (an untrusted certificate, a name mismatch, no common protocol version) is a
//! [`ClientError::TlsHandshake`] at connect time, never at the first call. The request timeout
//! bounds TLS reads and writes as it bounds plaintext ones.
//!
//! Handshake, as Avro's Java `Requestor` does it: the first call carries our hash and our
//! guess of the server's (ours, or the one the server told us); if the server answers `NONE`
//! (it does not know our hash) the call was not executed and is sent again with our protocol
//! text. A server that still refuses, or whose protocol lacks Flume's messages, is an error.

use crate::call::{self, Response};
use crate::compression::{Incoming, Outgoing};
use crate::event::EventRef;
use crate::frame::{self, Frame, FrameDecoder};
use crate::handshake::{HandshakeMatch, HandshakeRequest, HandshakeResponse};
use crate::protocol::{self, Status, PROTOCOL_JSON};
use crate::WireError;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
// The byte stream under the Avro framing, TLS or plaintext: shared with the thrift client.
use tls_client_transport::Transport;

/// What a TLS connection needs: the client configuration (trust anchors, protocol versions,
/// cipher suites) and the name the server's certificate must carry.
pub use tls_client_transport::TlsClientParams;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Where and how to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// Host name or address.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Longest wait for the TCP connection.
    pub connect_timeout_ms: u64,
    /// Longest wait for a call's response (and for sending it).
    pub request_timeout_ms: u64,
    /// `Some(level)`: zlib in both directions, requests compressed at `level`.
    pub deflate_level: Option<u32>,
}

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection could not be made.
    #[error("cannot connect to {peer}: {source}")]
    Connect {
        /// host:port.
        peer: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TCP connection was made but the TLS handshake failed or did not finish within the
    /// connect timeout.
    #[error("TLS handshake with {peer} failed: {source}")]
    TlsHandshake {
        /// host:port.
        peer: String,
        /// Why: rustls's error (certificate, name, protocol version), a timeout, or the peer
        /// closing the connection.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error("connection to {peer}: {source}")]
    Io {
        /// host:port.
        peer: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("no answer from {peer} within {timeout_ms} ms")]
    Timeout {
        /// host:port.
        peer: String,
        /// The request timeout.
        timeout_ms: u64,
    },
    /// The peer closed the connection.
    #[error("{peer} closed the connection")]
    Closed {
        /// host:port.
        peer: String,
    },
    /// The peer's bytes are not Avro IPC of Flume's protocol.
    #[error("{peer} does not speak Flume's Avro protocol: {source}")]
    Wire {
        /// host:port.
        peer: String,
        /// What was wrong.
        #[source]
        source: WireError,
    },
    /// The peer answered the call with an error.
    #[error("{peer} answered with an error: {message}")]
    Remote {
        /// host:port.
        peer: String,
        /// The peer's message.
        message: String,
    },
}

/// A connection to an `AvroSourceProtocol` server (an avro source, Flume's or Sluice's).
#[derive(Debug)]
pub struct AvroClient {
    stream: Transport,
    peer: String,
    request_timeout: Duration,
    incoming: Incoming,
    outgoing: Outgoing,
    frames: FrameDecoder,
    serial: i32,
    handshaken: bool,
    server_hash: Option<[u8; 16]>,
}

impl AvroClient {
    /// Connects in plaintext (no bytes are sent before the first call).
    pub fn connect(settings: &ClientSettings) -> Result<Self, ClientError> {
        Self::connect_with_tls(settings, None)
    }

    /// Connects, over TLS when `tls` is given: the TLS handshake is done here, within the
    /// connect timeout; the Avro handshake is sent with the first call.
    pub fn connect_with_tls(
        settings: &ClientSettings,
        tls: Option<TlsClientParams>,
    ) -> Result<Self, ClientError> {
        let peer = format!("{}:{}", settings.hostname, settings.port);
        let connect_err = |source| ClientError::Connect {
            peer: peer.clone(),
            source,
        };
        let addrs = (settings.hostname.as_str(), settings.port)
            .to_socket_addrs()
            .map_err(connect_err)?;
        let timeout = Duration::from_millis(settings.connect_timeout_ms.max(1));
        let mut last = std::io::Error::new(ErrorKind::NotFound, "no address");
        for addr in addrs {
            let started = Instant::now();
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    let stream = match tls {
                        None => Transport::plain(tcp),
                        Some((config, name)) => {
                            let deadline = started + timeout;
                            Transport::tls_handshake(tcp, config, name, deadline).map_err(
                                |source| ClientError::TlsHandshake {
                                    peer: peer.clone(),
                                    source,
                                },
                            )?
                        }
                    };
                    return Ok(Self {
                        stream,
                        peer,
                        request_timeout: Duration::from_millis(settings.request_timeout_ms.max(1)),
                        incoming: Incoming::new(settings.deflate_level.is_some()),
                        outgoing: Outgoing::new(settings.deflate_level),
                        frames: FrameDecoder::default(),
                        serial: 0,
                        handshaken: false,
                        server_hash: None,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(connect_err(last))
    }

    /// host:port.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// `appendBatch(events)`.
    pub fn append_batch(&mut self, events: &[EventRef<'_>]) -> Result<Status, ClientError> {
        self.call(&call::encode_append_batch(events))
    }

    /// `append(event)`.
    pub fn append(&mut self, event: EventRef<'_>) -> Result<Status, ClientError> {
        self.call(&call::encode_append(event))
    }

    fn wire(&self, source: WireError) -> ClientError {
        ClientError::Wire {
            peer: self.peer.clone(),
            source,
        }
    }

    fn call(&mut self, body: &[u8]) -> Result<Status, ClientError> {
        let deadline = Instant::now() + self.request_timeout;
        for send_protocol_text in [false, true] {
            let mut payload = Vec::with_capacity(body.len() + 64);
            if !self.handshaken {
                let ours = protocol::protocol_hash();
                payload.extend(
                    HandshakeRequest {
                        client_hash: ours,
                        client_protocol: send_protocol_text.then(|| PROTOCOL_JSON.to_owned()),
                        server_hash: self.server_hash.unwrap_or(ours),
                    }
                    .encode(),
                );
            }
            payload.extend_from_slice(body);
            self.serial = self.serial.wrapping_add(1);
            let wire = self.outgoing.encode(frame::encode(self.serial, &payload));
            self.send(&wire, deadline)?;
            let response = self.read_frame(deadline)?;
            if response.serial != self.serial {
                return Err(self.wire(WireError::datum(
                    "response",
                    format!(
                        "serial {} answers no request (expected {})",
                        response.serial, self.serial
                    ),
                )));
            }
            let mut input = &response.payload[..];
            if !self.handshaken {
                let hs = HandshakeResponse::decode(&mut input).map_err(|e| self.wire(e))?;
                if let Some(text) = &hs.server_protocol {
                    protocol::check_remote(text).map_err(|e| self.wire(WireError::Protocol(e)))?;
                }
                if let Some(hash) = hs.server_hash {
                    self.server_hash = Some(hash);
                }
                if hs.match_kind == HandshakeMatch::None {
                    continue;
                }
                self.handshaken = true;
            }
            return match call::decode_response(&mut input).map_err(|e| self.wire(e))? {
                Response::Status(s) => Ok(s),
                Response::Error(message) => Err(ClientError::Remote {
                    peer: self.peer.clone(),
                    message,
                }),
            };
        }
        Err(self.wire(WireError::Protocol(
            "the server did not accept our protocol text in the handshake".into(),
        )))
    }

    fn remaining(&self, deadline: Instant) -> Result<Duration, ClientError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timeout());
        }
        Ok(left)
    }

    fn timeout(&self) -> ClientError {
        ClientError::Timeout {
            peer: self.peer.clone(),
            timeout_ms: self.request_timeout.as_millis() as u64,
        }
    }

    fn io(&self, e: std::io::Error) -> ClientError {
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => self.timeout(),
            _ => ClientError::Io {
                peer: self.peer.clone(),
                source: e,
            },
        }
    }

    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), ClientError> {
        let left = self.remaining(deadline)?;
        self.stream
            .tcp()
            .set_write_timeout(Some(left))
            .map_err(|e| self.io(e))?;
        // A TLS stream keeps what it could not send yet; the flush sends it (a no-op on TCP).
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| self.io(e))
    }

    fn read_frame(&mut self, deadline: Instant) -> Result<Frame, ClientError> {
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            match self.frames.next_frame() {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(self.wire(e.into())),
            }
            let left = self.remaining(deadline)?;
            self.stream
                .tcp()
                .set_read_timeout(Some(left))
                .map_err(|e| self.io(e))?;
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ClientError::Closed {
                        peer: self.peer.clone(),
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io(e)),
            };
            let bytes = self
                .incoming
                .decode(&chunk[..n], frame::MAX_FRAME_BYTES)
                .map_err(|e| self.wire(e.into()))?;
            self.frames.push(&bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::ServerName;
    use std::net::TcpListener;
    use std::sync::Arc;

    /// A client configuration that trusts nobody: enough for peers that never get as far as
    /// showing a certificate.
    fn tls_params() -> TlsClientParams {
        // The ring provider, as everywhere in Sluice (rustls 0.23.48 deprecates the function
        // for lacking post-quantum key exchange; aws-lc-rs, which has it, needs cmake).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("name");
        (Arc::new(config), name)
    }

    #[test]
    fn the_connect_timeout_covers_the_tls_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let settings = ClientSettings {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout_ms: 1000,
            request_timeout_ms: 5000,
            deflate_level: None,
        };
        let started = Instant::now();
        let err = AvroClient::connect_with_tls(&settings, Some(tls_params()))
            .expect_err("the server never answers the ClientHello");
        assert_eq!(
            err.to_string(),
            format!(
                "TLS handshake with 127.0.0.1:{port} failed: not finished within the connect timeout"
            )
        );
        assert!(started.elapsed() < Duration::from_millis(4500));
        drop(listener);
    }
}
