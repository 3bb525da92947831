//! A blocking `ThriftSourceProtocol` client, as a sink needs it: one TCP connection, one
//! call at a time, every call bounded by a deadline (`request_timeout_ms`) and the connection
//! by `connect_timeout_ms`. A sink runs on its own thread, so blocking I/O is what it needs; a
//! connection that failed in any way is meant to be dropped and a new one opened for the next
//! batch.
//!
//! Over TLS ([`Connection::connect_with_tls`], rustls), `connect_timeout_ms` covers the TCP
//! connect and the TLS handshake together, and a handshake the client or the server refuses
//! (an untrusted certificate, a name mismatch, no common protocol version) is a
//! [`ClientError::TlsHandshake`] at connect time, never at the first call. The call deadline
//! bounds TLS reads and writes as it bounds plaintext ones.

use crate::frame::{self, FrameError};
use crate::wire::{self, EventRef, Method, Status, WireError};
use crate::Protocol;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
// The byte stream under the Thrift framing, TLS or plaintext: shared with the avro client.
use tls_client_transport::Transport;

/// What a TLS connection needs: the client configuration (trust anchors, protocol versions,
/// cipher suites) and the name the server's certificate must carry.
pub use tls_client_transport::TlsClientParams;

/// Where and how to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Host name or address.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Protocol inside the frames.
    pub protocol: Protocol,
    /// Longest wait for the TCP connection.
    pub connect_timeout_ms: u64,
    /// Longest wait for one call, from the first byte sent to the last byte of the reply.
    pub request_timeout_ms: u64,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host name did not resolve.
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// No address of the host accepted the connection in time.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The last address's error.
        source: std::io::Error,
    },
    /// The TCP connection was made but the TLS handshake failed or did not finish within the
    /// connect timeout.
    #[error("TLS handshake with {addr} failed: {source}")]
    TlsHandshake {
        /// `host:port`.
        addr: String,
        /// Why: rustls's error (certificate, name, protocol version), a timeout, or the peer
        /// closing the connection.
        source: std::io::Error,
    },
    /// The call did not complete within `request-timeout`.
    #[error("no reply from {addr} within {timeout_ms} ms")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// Sending or receiving failed.
    #[error("{op} {addr} failed: {source}")]
    Io {
        /// `send to` or `receive from`.
        op: &'static str,
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The reply is not a framed Thrift message.
    #[error("reply from {addr}: {source}")]
    Frame {
        /// `host:port`.
        addr: String,
        /// Why.
        source: FrameError,
    },
    /// The reply is not the `ThriftSourceProtocol` reply expected, or the call cannot be
    /// encoded.
    #[error("{addr}: {source}")]
    Wire {
        /// `host:port`.
        addr: String,
        /// Why.
        source: WireError,
    },
}

/// One open connection.
#[derive(Debug)]
pub struct Connection {
    stream: Transport,
    addr: String,
    protocol: Protocol,
    request_timeout: Duration,
    next_seqid: i32,
}

impl Connection {
    /// Connects in plaintext to the first address of `hostname` that accepts within the
    /// connect timeout.
    pub fn connect(config: &ClientConfig) -> Result<Self, ClientError> {
        Self::connect_with_tls(config, None)
    }

    /// Connects to the first address of `hostname` that accepts within the connect timeout,
    /// and, when `tls` is given, completes the TLS handshake within what is left of it.
    pub fn connect_with_tls(
        config: &ClientConfig,
        tls: Option<TlsClientParams>,
    ) -> Result<Self, ClientError> {
        let addr = format!("{}:{}", config.hostname, config.port);
        let addrs: Vec<_> = (config.hostname.as_str(), config.port)
            .to_socket_addrs()
            .map_err(|source| ClientError::Resolve {
                addr: addr.clone(),
                source,
            })?
            .collect();
        let timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let mut last = std::io::Error::new(ErrorKind::NotFound, "no address");
        for a in addrs {
            let started = Instant::now();
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    let stream = match tls {
                        None => Transport::plain(tcp),
                        Some((tls_config, name)) => {
                            Transport::tls_handshake(tcp, tls_config, name, started + timeout)
                                .map_err(|source| ClientError::TlsHandshake {
                                    addr: addr.clone(),
                                    source,
                                })?
                        }
                    };
                    return Ok(Self {
                        stream,
                        addr,
                        protocol: config.protocol,
                        request_timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
                        next_seqid: 1,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(ClientError::Connect { addr, source: last })
    }

    /// `host:port` as configured.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Calls `appendBatch(events)` and returns the server's status.
    pub fn append_batch(&mut self, events: &[EventRef<'_>]) -> Result<Status, ClientError> {
        self.call(Method::AppendBatch, events)
    }

    /// Calls `method` with `events` (`append` sends the first).
    pub fn call(&mut self, method: Method, events: &[EventRef<'_>]) -> Result<Status, ClientError> {
        let seqid = self.next_seqid;
        self.next_seqid = self.next_seqid.wrapping_add(1);
        let request =
            wire::encode_call(self.protocol, method, seqid, events, frame::MAX_FRAME_BYTES)
                .map_err(|source| ClientError::Wire {
                    addr: self.addr.clone(),
                    source,
                })?;
        let deadline = Instant::now() + self.request_timeout;
        let mut io = DeadlineIo {
            stream: &mut self.stream,
            deadline,
        };
        if let Err(e) = io.write_all(&request).and_then(|()| io.flush()) {
            return Err(self.io_error("send to", e));
        }
        let reply = match frame::read_frame(&mut io, frame::MAX_FRAME_BYTES) {
            Ok(f) => f,
            Err(FrameError::Io(e)) => return Err(self.io_error("receive from", e)),
            Err(source) => {
                return Err(ClientError::Frame {
                    addr: self.addr.clone(),
                    source,
                })
            }
        };
        wire::decode_reply(&reply, self.protocol, method, seqid).map_err(|source| {
            ClientError::Wire {
                addr: self.addr.clone(),
                source,
            }
        })
    }

    fn io_error(&self, op: &'static str, e: std::io::Error) -> ClientError {
        if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
            ClientError::Timeout {
                addr: self.addr.clone(),
                timeout_ms: self.request_timeout.as_millis() as u64,
            }
        } else {
            ClientError::Io {
                op,
                addr: self.addr.clone(),
                source: e,
            }
        }
    }

    /// Closes the connection (over TLS, after a best-effort `close_notify`).
    pub fn close(self) {
        self.stream.close();
    }
}

/// Reads and writes that give up at `deadline`: each operation's socket timeout is set to the
/// time left.
struct DeadlineIo<'a> {
    stream: &'a mut Transport,
    deadline: Instant,
}

impl DeadlineIo<'_> {
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for DeadlineIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.tcp().set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl Write for DeadlineIo<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.tcp().set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    /// Sends what a TLS stream still holds (nothing to do on TCP).
    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.tcp().set_write_timeout(Some(self.left()?))?;
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::ServerName;
    use std::net::TcpListener;
    use std::sync::Arc;

    fn config(port: u16, connect_timeout_ms: u64) -> ClientConfig {
        ClientConfig {
            hostname: "127.0.0.1".into(),
            port,
            protocol: Protocol::Compact,
            connect_timeout_ms,
            request_timeout_ms: 5000,
        }
    }

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
    fn a_server_silent_during_the_handshake_fails_the_connect_within_its_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let started = Instant::now();
        let err = Connection::connect_with_tls(&config(port, 1000), Some(tls_params()))
            .expect_err("no handshake");
        assert_eq!(
            err.to_string(),
            format!(
                "TLS handshake with 127.0.0.1:{port} failed: not finished within the connect timeout"
            )
        );
        // The handshake gave up at the connect timeout, not at the request timeout (5 s).
        assert!(started.elapsed() < Duration::from_millis(4500));
        drop(listener);
    }

    #[test]
    fn a_plaintext_server_that_hangs_up_is_a_handshake_error() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            // A plaintext Thrift server reads the ClientHello as a frame header and gives up.
            let mut header = [0u8; 4];
            let _ = s.read_exact(&mut header);
            header
        });
        let err = Connection::connect_with_tls(&config(port, 5000), Some(tls_params()))
            .expect_err("not TLS");
        let header = server.join().expect("server");
        assert_eq!(
            header[0], 0x16,
            "the client spoke first with a TLS handshake record"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("TLS handshake with 127.0.0.1:{port} failed: ")),
            "{text}"
        );
        assert!(matches!(err, ClientError::TlsHandshake { .. }), "{err:?}");
    }
}
