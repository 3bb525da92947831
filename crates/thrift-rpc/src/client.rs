//! A blocking `ThriftSourceProtocol` client, as a sink needs it: one TCP connection, one
//! call at a time, every call bounded by a deadline (`request_timeout_ms`) and the connection
//! by `connect_timeout_ms`. A sink runs on its own thread, so blocking I/O is what it needs; a
//! connection that failed in any way is meant to be dropped and a new one opened for the next
//! batch.

use crate::frame::{self, FrameError};
use crate::wire::{self, EventRef, Method, Status, WireError};
use crate::Protocol;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

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
    stream: TcpStream,
    addr: String,
    protocol: Protocol,
    request_timeout: Duration,
    next_seqid: i32,
}

impl Connection {
    /// Connects to the first address of `hostname` that accepts within the connect timeout.
    pub fn connect(config: &ClientConfig) -> Result<Self, ClientError> {
        let addr = format!("{}:{}", config.hostname, config.port);
        let addrs: Vec<_> = (config.hostname.as_str(), config.port)
            .to_socket_addrs()
            .map_err(|source| ClientError::Resolve {
                addr: addr.clone(),
                source,
            })?
            .collect();
        let timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
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
            stream: &self.stream,
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
        if matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ) {
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

    /// Closes the connection.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Reads and writes that give up at `deadline`: each operation's socket timeout is set to the
/// time left.
struct DeadlineIo<'a> {
    stream: &'a TcpStream,
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
        self.stream.set_read_timeout(Some(self.left()?))?;
        let mut s = self.stream;
        s.read(buf)
    }
}

impl Write for DeadlineIo<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        let mut s = self.stream;
        s.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
