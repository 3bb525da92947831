//! The blocking byte stream under the avro and thrift RPC clients (`avro_ipc::client`,
//! `thrift_rpc::client`): the TCP connection itself, or rustls over it.
//!
//! It exists so both clients share one copy of the TLS details they must get right alike:
//!
//! - [`Transport::tls_handshake`] finishes the handshake before the first call and gives up at
//!   the caller's deadline (the clients pass the end of their connect timeout), so a server that
//!   never answers the ClientHello, or a plaintext server that hangs up on it, fails the connect
//!   rather than the first call;
//! - timeouts live on the TCP socket ([`Transport::tcp`]): a client sets the read and write
//!   timeouts there before each operation, and they bound TLS reads and writes as they bound
//!   plaintext ones;
//! - over TLS the stream ends with a `close_notify` alert, on drop or [`Transport::close`], in
//!   one attempt that does not block on a stuck peer.
//!
//! The clients keep everything else: resolving and connecting, their own error types and
//! messages, framing and deadlines per call.

use rustls_pki_types::ServerName;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Instant;

/// What a TLS connection needs: the client configuration (trust anchors, protocol versions,
/// cipher suites) and the name the server's certificate must carry.
pub type TlsClientParams = (Arc<rustls::ClientConfig>, ServerName<'static>);

/// The message of the error [`Transport::tls_handshake`] returns when the deadline passes.
pub const HANDSHAKE_TIMEOUT_MESSAGE: &str = "not finished within the connect timeout";

/// The message of the error [`Transport::tls_handshake`] returns when the peer closes the
/// connection before the handshake is done.
pub const HANDSHAKE_EOF_MESSAGE: &str =
    "the peer closed the connection during the handshake (does it speak TLS?)";

/// A client's byte stream: the TCP connection itself, or rustls over it.
#[derive(Debug)]
pub struct Transport(Inner);

#[derive(Debug)]
enum Inner {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    /// The TCP connection as it is, in plaintext.
    pub fn plain(tcp: TcpStream) -> Self {
        Self(Inner::Plain(tcp))
    }

    /// Runs the TLS handshake over `tcp`, giving up at `deadline`.
    ///
    /// Errors: rustls's own (certificate, name, protocol version, or a configuration it
    /// refuses, as `InvalidInput`); `TimedOut` with [`HANDSHAKE_TIMEOUT_MESSAGE`] at the
    /// deadline; `UnexpectedEof` with [`HANDSHAKE_EOF_MESSAGE`] when the peer hangs up.
    pub fn tls_handshake(
        mut tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        deadline: Instant,
    ) -> std::io::Result<Self> {
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(handshake_timeout());
            }
            tcp.set_read_timeout(Some(left))?;
            tcp.set_write_timeout(Some(left))?;
            match conn.complete_io(&mut tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(handshake_timeout())
                }
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        HANDSHAKE_EOF_MESSAGE,
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Self(Inner::Tls(Box::new(rustls::StreamOwned::new(
            conn, tcp,
        )))))
    }

    /// Whether the stream is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.0, Inner::Tls(_))
    }

    /// The TCP connection, to set its timeouts.
    pub fn tcp(&self) -> &TcpStream {
        match &self.0 {
            Inner::Plain(s) => s,
            Inner::Tls(s) => s.get_ref(),
        }
    }

    /// Over TLS, says goodbye with a `close_notify` alert (once), so the server sees a clean
    /// end rather than a truncation; one attempt that does not wait, since a close must not
    /// block on a stuck peer (the alert is small and the socket's buffer almost always free).
    /// Nothing to do in plaintext. Dropping the transport does this too.
    pub fn send_close_notify(&mut self) {
        if let Inner::Tls(s) = &mut self.0 {
            // rustls sends the alert once, however often this runs (close, then drop).
            s.conn.send_close_notify();
            let _ = s.sock.set_nonblocking(true);
            let _ = s.conn.write_tls(&mut s.sock);
        }
    }

    /// Closes the connection: the `close_notify` (over TLS), then a TCP shutdown both ways.
    pub fn close(mut self) {
        self.send_close_notify();
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Drop for Transport {
    /// Over TLS, the `close_notify` of [`Transport::send_close_notify`], without blocking.
    fn drop(&mut self) {
        self.send_close_notify();
    }
}

fn handshake_timeout() -> std::io::Error {
    std::io::Error::new(ErrorKind::TimedOut, HANDSHAKE_TIMEOUT_MESSAGE)
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Inner::Plain(s) => s.read(buf),
            Inner::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Inner::Plain(s) => s.write(buf),
            Inner::Tls(s) => s.write(buf),
        }
    }

    /// Sends what a TLS stream still holds (nothing to do on TCP).
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.0 {
            Inner::Plain(s) => s.flush(),
            Inner::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::time::Duration;

    // Test-only certificates, valid until 2126 (`testdata/README.md` says how they were made).
    const CA_PEM: &[u8] = include_bytes!("../testdata/ca.pem");
    const SERVER_CERT_PEM: &[u8] = include_bytes!("../testdata/localhost.pem");
    const SERVER_KEY_PEM: &[u8] = include_bytes!("../testdata/localhost.key.pem");

    /// A client configuration that trusts nobody: enough for peers that never get as far as
    /// showing a certificate.
    fn tls_params() -> TlsClientParams {
        client_params(rustls::RootCertStore::empty())
    }

    /// A client configuration that trusts the test CA.
    fn trusting_params() -> TlsClientParams {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CA_PEM).expect("CA certificate"))
            .expect("trust the CA");
        client_params(roots)
    }

    fn client_params(roots: rustls::RootCertStore) -> TlsClientParams {
        let config = rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("name");
        (Arc::new(config), name)
    }

    /// The ring provider, as everywhere in Sluice (rustls 0.23.48 deprecates the function for
    /// lacking post-quantum key exchange; aws-lc-rs, which has it, needs cmake).
    fn ring() -> Arc<rustls::crypto::CryptoProvider> {
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(provider)
    }

    /// The server side: the test certificate for `localhost`.
    fn server_config() -> Arc<rustls::ServerConfig> {
        let certs = CertificateDer::pem_slice_iter(SERVER_CERT_PEM)
            .collect::<Result<Vec<_>, _>>()
            .expect("server certificate");
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM).expect("server key");
        let mut config = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server configuration");
        // No session tickets after the handshake: a client that never reads would leave them
        // unread, and closing a socket with unread bytes is a reset, not the end the tests
        // look at.
        config.send_tls13_tickets = 0;
        Arc::new(config)
    }

    /// A TLS server for one connection that reads to the end and returns what it read, or the
    /// error that ended it: rustls reports an end without `close_notify` as `UnexpectedEof`.
    fn reading_server() -> (
        std::net::SocketAddr,
        std::thread::JoinHandle<std::io::Result<Vec<u8>>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (sock, _) = listener.accept().expect("accept");
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let conn = rustls::ServerConnection::new(server_config()).expect("server connection");
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let mut got = Vec::new();
            tls.read_to_end(&mut got).map(|_| got)
        });
        (addr, server)
    }

    fn handshake_with(addr: std::net::SocketAddr) -> Transport {
        let tcp = TcpStream::connect(addr).expect("connect");
        let (config, name) = trusting_params();
        let t =
            Transport::tls_handshake(tcp, config, name, Instant::now() + Duration::from_secs(5))
                .expect("handshake");
        assert!(t.is_tls());
        t
    }

    #[test]
    fn dropping_a_tls_transport_sends_close_notify() {
        let (addr, server) = reading_server();
        let mut t = handshake_with(addr);
        t.write_all(b"hello")
            .and_then(|()| t.flush())
            .expect("send");
        drop(t);
        let got = server
            .join()
            .expect("server")
            .expect("a clean end, not a truncation");
        assert_eq!(got, b"hello");
    }

    #[test]
    fn closing_a_tls_transport_sends_close_notify() {
        let (addr, server) = reading_server();
        let mut t = handshake_with(addr);
        t.write_all(b"hello")
            .and_then(|()| t.flush())
            .expect("send");
        t.close();
        let got = server
            .join()
            .expect("server")
            .expect("a clean end, not a truncation");
        assert_eq!(got, b"hello");
    }

    #[test]
    fn the_reading_server_sees_an_end_without_close_notify_as_a_truncation() {
        // The control for the two tests above: a rustls client that just goes away.
        let (addr, server) = reading_server();
        let tcp = TcpStream::connect(addr).expect("connect");
        let (config, name) = trusting_params();
        let conn = rustls::ClientConnection::new(config, name).expect("client connection");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"hello")
            .and_then(|()| tls.flush())
            .expect("send");
        drop(tls);
        let err = server.join().expect("server").expect_err("truncated");
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    }

    #[test]
    fn dropping_a_tls_transport_does_not_block_on_a_peer_that_stopped_reading() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (release, released) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            let mut conn =
                rustls::ServerConnection::new(server_config()).expect("server connection");
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).expect("server handshake");
            }
            // Then reads nothing more until the test is over.
            let _ = released.recv_timeout(Duration::from_secs(30));
        });
        let mut t = handshake_with(addr);
        // Fill the socket's buffers (and rustls's) until a write cannot go on; without waiting,
        // as the buffers free no space while the peer reads nothing.
        t.tcp().set_nonblocking(true).expect("nonblocking");
        let chunk = vec![0u8; 16 << 10];
        let mut sent = 0usize;
        loop {
            match t.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
            assert!(sent < 1 << 30, "the peer's buffers never filled");
        }
        // A blocking socket without a timeout: a close that waited for the peer would wait
        // forever.
        t.tcp().set_nonblocking(false).expect("blocking");
        t.tcp().set_write_timeout(None).expect("no timeout");
        let (done, dropped) = mpsc::channel();
        let started = Instant::now();
        std::thread::spawn(move || {
            drop(t);
            let _ = done.send(());
        });
        dropped
            .recv_timeout(Duration::from_secs(5))
            .expect("the drop returned without waiting for the peer");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let _ = release.send(());
        server.join().expect("server");
    }

    #[test]
    fn a_silent_server_times_the_handshake_out_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let tcp = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (config, name) = tls_params();
        let started = Instant::now();
        let err = Transport::tls_handshake(tcp, config, name, started + Duration::from_secs(1))
            .expect_err("the server never answers the ClientHello");
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(err.to_string(), HANDSHAKE_TIMEOUT_MESSAGE);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(4500), "{elapsed:?}");
        drop(listener);
    }

    #[test]
    fn a_deadline_already_past_fails_without_waiting() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let tcp = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (config, name) = tls_params();
        let started = Instant::now();
        let err = Transport::tls_handshake(tcp, config, name, started)
            .expect_err("no time for a handshake");
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_millis(500));
        drop(listener);
    }

    #[test]
    fn a_plaintext_server_that_hangs_up_is_an_unexpected_eof() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            // A plaintext server reads the whole ClientHello record, finds it is not its
            // protocol and hangs up: a clean end of stream (FIN), since nothing is left unread
            // (unread bytes would make the close a reset, which the client reports as such).
            let mut header = [0u8; 5];
            s.read_exact(&mut header).expect("record header");
            let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
            s.read_exact(&mut body).expect("record body");
            header
        });
        let tcp = TcpStream::connect(addr).expect("connect");
        let (config, name) = tls_params();
        let started = Instant::now();
        let err = Transport::tls_handshake(tcp, config, name, started + Duration::from_secs(5))
            .expect_err("not TLS");
        let header = server.join().expect("server");
        assert_eq!(
            header[0], 0x16,
            "the client spoke first with a TLS handshake record"
        );
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(err.to_string(), HANDSHAKE_EOF_MESSAGE);
        // The hang-up ended the handshake; it did not wait for the deadline.
        assert!(started.elapsed() < Duration::from_millis(4500));
    }

    #[test]
    fn a_plaintext_transport_carries_bytes_both_ways_and_closes_without_an_alert() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = [0u8; 5];
            s.read_exact(&mut got).expect("read");
            s.write_all(b"world").expect("write");
            // After the close: end of stream, no alert or other bytes.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("read to end");
            (got, rest)
        });
        let mut t = Transport::plain(TcpStream::connect(addr).expect("connect"));
        assert!(!t.is_tls());
        t.tcp()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        t.write_all(b"hello")
            .and_then(|()| t.flush())
            .expect("send");
        let mut reply = [0u8; 5];
        t.read_exact(&mut reply).expect("receive");
        assert_eq!(&reply, b"world");
        t.close();
        let (got, rest) = server.join().expect("server");
        assert_eq!(&got, b"hello");
        assert!(rest.is_empty(), "{rest:?}");
    }
}
