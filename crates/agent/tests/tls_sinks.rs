//! TLS on the avro and thrift sinks, on 127.0.0.1, with certificates made by `openssl` and
//! `keytool` (`common::tls`), never by the code under test.
//!
//! The server is a TLS terminator written here with tokio-rustls, in front of a plaintext
//! server speaking the sink's protocol (avro-ipc's connection server, or a thrift loop), which
//! records every event it acknowledged. The sink runs in this process, configured from
//! Flume's keys through the same parser the agent uses, on a memory channel the test can
//! count.
//!
//! What is shown, for both sinks: a batch is delivered with the server's certificate checked
//! against the truststore and `hostname`; a sink with the wrong truststore refuses the server,
//! its events stay in the channel (none acknowledged, none lost) and are delivered exactly once
//! when the sink is pointed at a server it trusts; `trust-all-certs = true` gets through to a
//! server nobody trusts; a certificate for another name is refused, and so is a server without
//! a protocol version in common. Every refusal is a failed connection with the events kept.

mod common;

use agent::channel::{Channel, MemoryChannelConfig};
use agent::config::context::{Ctx, Entry};
use agent::metrics::SinkCounters;
use agent::runner::Status;
use agent::sink::avro::{AvroSink, AvroSinkConfig};
use agent::sink::thrift::{ThriftSink, ThriftSinkConfig};
use agent::sink::{Sink, SinkContext};
use avro_ipc::call::{Request as AvroRequest, Response as AvroResponse};
use avro_ipc::protocol::Status as AvroStatus;
use avro_ipc::server::{serve_connection, ServerShared};
use common::tls::{run_tool, TestPki};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thrift_rpc::wire::{self, Request as ThriftRequest};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Avro,
    Thrift,
}

/// The plaintext server behind the TLS terminator: the bodies it acknowledged, in order.
struct Backend {
    port: u16,
    received: Arc<Mutex<Vec<String>>>,
}

impl Backend {
    fn received(&self) -> Vec<String> {
        self.received.lock().expect("lock").clone()
    }
}

fn avro_backend(runtime: &Runtime) -> Backend {
    let received = Arc::new(Mutex::new(Vec::new()));
    let r = received.clone();
    let shared = Arc::new(ServerShared {
        source: "backend".into(),
        deflate_level: None,
        known_clients: Default::default(),
        read_timeout: None,
        handler: Arc::new(move |req| {
            let r = r.clone();
            Box::pin(async move {
                match req {
                    AvroRequest::AppendBatch(events) => r.lock().expect("lock").extend(
                        events
                            .iter()
                            .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
                    ),
                    AvroRequest::Append(e) => r
                        .lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(&e.body).into_owned()),
                    AvroRequest::Ping | AvroRequest::Unknown(_) => {}
                }
                AvroResponse::Status(AvroStatus::Ok)
            })
        }),
    });
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    runtime.spawn(async move {
        while let Ok((socket, peer)) = listener.accept().await {
            let never = std::future::pending();
            tokio::spawn(serve_connection(socket, peer, shared.clone(), never));
        }
    });
    Backend { port, received }
}

fn thrift_backend(runtime: &Runtime) -> Backend {
    let received = Arc::new(Mutex::new(Vec::new()));
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let r = received.clone();
    runtime.spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let r = r.clone();
            tokio::spawn(async move {
                let protocol = thrift_rpc::Protocol::Compact;
                while let Ok(Some(frame)) =
                    thrift_rpc::frame::read_frame_async(&mut socket, 1 << 20).await
                {
                    let Ok(ThriftRequest::Call {
                        method,
                        seqid,
                        events,
                    }) = wire::decode_request(&frame, protocol)
                    else {
                        return;
                    };
                    r.lock().expect("lock").extend(
                        events
                            .iter()
                            .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
                    );
                    let reply =
                        wire::encode_reply(protocol, method.name(), seqid, wire::Status::Ok)
                            .expect("encode reply");
                    if socket.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Backend { port, received }
}

/// A TLS server: completes the handshake with `config`'s certificate, then relays the bytes
/// to the backend. Counts handshakes by outcome.
struct TlsFront {
    port: u16,
    handshakes_ok: Arc<AtomicUsize>,
    handshakes_failed: Arc<AtomicUsize>,
    /// Connections the client ended with a `close_notify` (tokio-rustls reports an end
    /// without one as an error).
    clean_closes: Arc<AtomicUsize>,
}

fn tls_front(
    runtime: &Runtime,
    keystore_pem: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    backend_port: u16,
) -> TlsFront {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(keystore_pem)
        .expect("read certificates")
        .collect::<Result<_, _>>()
        .expect("parse certificates");
    let key = PrivateKeyDer::from_pem_file(keystore_pem).expect("read key");
    // The ring provider, as in the agent (deprecated in rustls 0.23.48 for lacking
    // post-quantum key exchange).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handshakes_ok = Arc::new(AtomicUsize::new(0));
    let handshakes_failed = Arc::new(AtomicUsize::new(0));
    let clean_closes = Arc::new(AtomicUsize::new(0));
    let (ok, failed, clean) = (
        handshakes_ok.clone(),
        handshakes_failed.clone(),
        clean_closes.clone(),
    );
    runtime.spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, ok, failed, clean) =
                (acceptor.clone(), ok.clone(), failed.clone(), clean.clone());
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(socket).await {
                    Ok(tls) => tls,
                    Err(_) => {
                        failed.fetch_add(1, Relaxed);
                        return;
                    }
                };
                ok.fetch_add(1, Relaxed);
                let Ok(mut backend) = TcpStream::connect(("127.0.0.1", backend_port)).await else {
                    return;
                };
                if tokio::io::copy_bidirectional(&mut tls, &mut backend)
                    .await
                    .is_ok()
                {
                    clean.fetch_add(1, Relaxed);
                }
            });
        }
    });
    TlsFront {
        port,
        handshakes_ok,
        handshakes_failed,
        clean_closes,
    }
}

/// A server of `kind` behind TLS with the certificate and key in `keystore_pem`.
struct Server {
    backend: Backend,
    front: TlsFront,
}

fn server(runtime: &Runtime, kind: Kind, keystore_pem: &Path) -> Server {
    server_with_versions(runtime, kind, keystore_pem, rustls::DEFAULT_VERSIONS)
}

/// [`server`] offering only `versions`.
fn server_with_versions(
    runtime: &Runtime,
    kind: Kind,
    keystore_pem: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Server {
    let backend = match kind {
        Kind::Avro => avro_backend(runtime),
        Kind::Thrift => thrift_backend(runtime),
    };
    let front = tls_front(runtime, keystore_pem, versions, backend.port);
    Server { backend, front }
}

/// A memory channel holding `n` events `e0`, `e1`, ...
fn channel_with(n: usize) -> Channel {
    let channel = Channel::memory(
        "c1",
        MemoryChannelConfig {
            capacity: 1000,
            transaction_capacity: 1000,
            ..MemoryChannelConfig::default()
        },
    );
    let mut tx = channel.transaction();
    for i in 0..n {
        tx.put(&file_channel::Event::new(format!("e{i}")))
            .expect("put");
    }
    tx.commit().expect("commit");
    channel
}

/// A sink of `kind` on `channel`, configured from `keys` (under `a1.sinks.k1.`) by the
/// agent's parser, which must accept them.
fn configured_sink(
    kind: Kind,
    keys: &[(String, String)],
    channel: &Channel,
) -> (Box<dyn Sink>, Arc<SinkCounters>) {
    let prefix = "a1.sinks.k1.";
    let entries: Vec<Entry> = keys
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Entry {
            key: format!("{prefix}{k}"),
            value: v.clone(),
            line: i as u32 + 2,
        })
        .collect();
    let ctx = Ctx::new(
        prefix,
        entries
            .iter()
            .map(|e| (&e.key[prefix.len()..], e))
            .collect(),
        1,
    );
    let counters = Arc::new(SinkCounters::default());
    let sctx = SinkContext {
        name: "k1".into(),
        channel: channel.clone(),
        counters: counters.clone(),
    };
    let sink: Box<dyn Sink> = match kind {
        Kind::Avro => {
            let config = AvroSinkConfig::parse(&ctx);
            let d = ctx.finish("avro sink k1");
            assert!(d.errors.is_empty(), "{:?}", d.errors);
            Box::new(AvroSink::new(config, sctx))
        }
        Kind::Thrift => {
            let config = ThriftSinkConfig::parse(&ctx);
            let d = ctx.finish("thrift sink k1");
            assert!(d.errors.is_empty(), "{:?}", d.errors);
            Box::new(ThriftSink::new(config, sctx))
        }
    };
    (sink, counters)
}

/// The sink's keys for `hostname:port` over TLS, plus `extra`.
fn tls_keys(hostname: &str, port: u16, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let base = [
        ("hostname", hostname.to_owned()),
        ("port", port.to_string()),
        ("batch-size", "100".into()),
        ("connect-timeout", "5000".into()),
        ("request-timeout", "5000".into()),
        ("ssl", "true".into()),
    ];
    base.iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn pem_truststore(ca_pem: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("truststore", ca_pem.display().to_string()),
        ("truststore-type", "PEM".into()),
    ]
}

fn bodies(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("e{i}")).collect()
}

/// A PEM keystore (key, certificate, CA) signed by `pki`'s CA for the single name `dns`,
/// made with `openssl` in `pki`'s directory.
fn keystore_for_name(pki: &TestPki, name: &str, dns: &str) -> PathBuf {
    let dir = pki.dir();
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    run_tool(
        dir,
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={dns}"),
        ],
    );
    std::fs::write(
        dir.join(&ext),
        format!(
            "subjectAltName=DNS:{dns}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
        ),
    )
    .expect("write ext");
    run_tool(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    );
    let mut all = std::fs::read(dir.join(&key)).expect("key");
    all.extend(std::fs::read(dir.join(&crt)).expect("crt"));
    all.extend(std::fs::read(pki.ca_pem()).expect("ca"));
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(&pem, all).expect("write pem");
    pem
}

fn delivers_over_tls_with_the_certificate_checked(kind: Kind) {
    let runtime = Runtime::new().expect("runtime");
    let pki = TestPki::new("Sinks");
    let server = server(&runtime, kind, &pki.keystore_pem("server", "localhost"));
    // A PKCS12 truststore written by keytool, and `localhost` checked against the certificate.
    let truststore = pki.truststore_p12();
    let keys = tls_keys(
        "localhost",
        server.front.port,
        &[
            ("truststore", truststore.display().to_string()),
            ("truststore-type", "PKCS12".into()),
            ("truststore-password", common::tls::PASSWORD.into()),
        ],
    );
    let channel = channel_with(5);
    let (mut sink, counters) = configured_sink(kind, &keys, &channel);
    assert_eq!(sink.process().expect("delivered"), Status::Ready);
    assert_eq!(server.backend.received(), bodies(5));
    assert_eq!(channel.len(), 0);
    assert_eq!(server.front.handshakes_ok.load(Relaxed), 1);
    assert_eq!(counters.connection_created_count.load(Relaxed), 1);
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 5);
    // The connection is kept: a second batch goes over it, without a new handshake.
    let mut tx = channel.transaction();
    tx.put(&file_channel::Event::new("e5")).expect("put");
    tx.commit().expect("commit");
    assert_eq!(sink.process().expect("delivered"), Status::Ready);
    assert_eq!(server.backend.received(), bodies(6));
    assert_eq!(server.front.handshakes_ok.load(Relaxed), 1);
    // Stopping ends the connection with a close_notify, not a truncation.
    sink.stop();
    assert!(common::wait_until(Duration::from_secs(5), || server
        .front
        .clean_closes
        .load(Relaxed)
        == 1));
}

#[test]
fn avro_sink_delivers_over_tls_with_the_certificate_checked() {
    delivers_over_tls_with_the_certificate_checked(Kind::Avro);
}

#[test]
fn thrift_sink_delivers_over_tls_with_the_certificate_checked() {
    delivers_over_tls_with_the_certificate_checked(Kind::Thrift);
}

fn wrong_truststore_keeps_every_event_then_delivers_each_once(kind: Kind) {
    let runtime = Runtime::new().expect("runtime");
    let ours = TestPki::new("Ours");
    let theirs = TestPki::new("Theirs");
    // A server whose certificate was signed by a CA the sink does not trust.
    let stranger = server(&runtime, kind, &theirs.keystore_pem("server", "localhost"));
    let channel = channel_with(7);
    let (mut sink, counters) = configured_sink(
        kind,
        &tls_keys(
            "localhost",
            stranger.front.port,
            &pem_truststore(&ours.ca_pem()),
        ),
        &channel,
    );
    for attempt in 1..=2 {
        let err = sink.process().expect_err("untrusted server").to_string();
        assert!(
            err.contains(&format!(
                "TLS handshake with localhost:{} failed",
                stranger.front.port
            )),
            "{err}"
        );
        assert!(
            err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
            "{err}"
        );
        assert_eq!(
            channel.len(),
            7,
            "attempt {attempt}: every event is still in the channel"
        );
        assert_eq!(counters.connection_failed_count.load(Relaxed), attempt);
    }
    assert!(
        stranger.backend.received().is_empty(),
        "nothing reached the untrusted server"
    );
    assert_eq!(stranger.front.handshakes_ok.load(Relaxed), 0);
    // The server saw both handshakes fail (the sink's alert ended them).
    assert!(common::wait_until(Duration::from_secs(5), || stranger
        .front
        .handshakes_failed
        .load(Relaxed)
        == 2));
    assert_eq!(counters.connection_created_count.load(Relaxed), 0);
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 0);
    sink.stop();

    // The same channel, the sink pointed at a server it trusts: all seven, once each.
    let trusted = server(&runtime, kind, &ours.keystore_pem("server", "localhost"));
    let (mut sink, counters) = configured_sink(
        kind,
        &tls_keys(
            "localhost",
            trusted.front.port,
            &pem_truststore(&ours.ca_pem()),
        ),
        &channel,
    );
    assert_eq!(sink.process().expect("delivered"), Status::Ready);
    assert_eq!(sink.process().expect("empty"), Status::Backoff);
    assert_eq!(trusted.backend.received(), bodies(7));
    assert_eq!(channel.len(), 0);
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 7);
    sink.stop();
}

#[test]
fn avro_sink_with_the_wrong_truststore_keeps_every_event_then_delivers_each_once() {
    wrong_truststore_keeps_every_event_then_delivers_each_once(Kind::Avro);
}

#[test]
fn thrift_sink_with_the_wrong_truststore_keeps_every_event_then_delivers_each_once() {
    wrong_truststore_keeps_every_event_then_delivers_each_once(Kind::Thrift);
}

fn trust_all_certs_reaches_an_untrusted_server(kind: Kind) {
    let runtime = Runtime::new().expect("runtime");
    let nobody_trusts = TestPki::new("Unknown");
    // Even the name does not match: trust-all-certs checks nothing.
    let server = server(
        &runtime,
        kind,
        &keystore_for_name(&nobody_trusts, "elsewhere", "elsewhere.example"),
    );
    let channel = channel_with(3);
    let (mut sink, _) = configured_sink(
        kind,
        &tls_keys(
            "localhost",
            server.front.port,
            &[("trust-all-certs", "true".into())],
        ),
        &channel,
    );
    assert_eq!(sink.process().expect("delivered"), Status::Ready);
    assert_eq!(server.backend.received(), bodies(3));
    assert_eq!(channel.len(), 0);
    sink.stop();
}

#[test]
fn avro_sink_with_trust_all_certs_reaches_an_untrusted_server() {
    trust_all_certs_reaches_an_untrusted_server(Kind::Avro);
}

#[test]
fn thrift_sink_with_trust_all_certs_reaches_an_untrusted_server() {
    trust_all_certs_reaches_an_untrusted_server(Kind::Thrift);
}

fn a_certificate_for_another_name_is_refused(kind: Kind) {
    let runtime = Runtime::new().expect("runtime");
    let pki = TestPki::new("Names");
    // Signed by the trusted CA, but for elsewhere.example only.
    let server = server(
        &runtime,
        kind,
        &keystore_for_name(&pki, "elsewhere", "elsewhere.example"),
    );
    let channel = channel_with(2);
    let (mut sink, counters) = configured_sink(
        kind,
        &tls_keys(
            "localhost",
            server.front.port,
            &pem_truststore(&pki.ca_pem()),
        ),
        &channel,
    );
    let err = sink.process().expect_err("name mismatch").to_string();
    assert!(
        err.contains(&format!(
            "TLS handshake with localhost:{} failed",
            server.front.port
        )),
        "{err}"
    );
    assert!(
        err.contains("certificate not valid for name \"localhost\""),
        "{err}"
    );
    assert_eq!(channel.len(), 2);
    assert!(server.backend.received().is_empty());
    assert_eq!(counters.connection_failed_count.load(Relaxed), 1);
    sink.stop();
}

#[test]
fn avro_sink_refuses_a_certificate_for_another_name() {
    a_certificate_for_another_name_is_refused(Kind::Avro);
}

#[test]
fn thrift_sink_refuses_a_certificate_for_another_name() {
    a_certificate_for_another_name_is_refused(Kind::Thrift);
}

fn no_common_protocol_version_is_refused(kind: Kind) {
    let runtime = Runtime::new().expect("runtime");
    let pki = TestPki::new("Versions");
    // The server speaks TLS 1.2 only; the sink asks for TLS 1.3 only.
    let server = server_with_versions(
        &runtime,
        kind,
        &pki.keystore_pem("server", "localhost"),
        &[&rustls::version::TLS12],
    );
    let mut extra = pem_truststore(&pki.ca_pem());
    extra.push(("include-protocols", "TLSv1.3".into()));
    let channel = channel_with(2);
    let (mut sink, counters) = configured_sink(
        kind,
        &tls_keys("localhost", server.front.port, &extra),
        &channel,
    );
    let err = sink.process().expect_err("no common version").to_string();
    assert!(
        err.contains(&format!(
            "TLS handshake with localhost:{} failed: received fatal alert: ProtocolVersion",
            server.front.port
        )),
        "{err}"
    );
    assert_eq!(channel.len(), 2);
    assert!(server.backend.received().is_empty());
    assert_eq!(counters.connection_failed_count.load(Relaxed), 1);
    sink.stop();
}

#[test]
fn avro_sink_and_a_server_without_a_common_protocol_version_do_not_connect() {
    no_common_protocol_version_is_refused(Kind::Avro);
}

#[test]
fn thrift_sink_and_a_server_without_a_common_protocol_version_do_not_connect() {
    no_common_protocol_version_is_refused(Kind::Thrift);
}

fn a_silent_server_after_the_handshake_times_the_request_out(kind: Kind) {
    let runtime = Runtime::new().expect("runtime");
    let pki = TestPki::new("Silent");
    // The backend accepts and never answers; the TLS handshake itself succeeds.
    let silent = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    runtime.spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let front = tls_front(
        &runtime,
        &pki.keystore_pem("server", "localhost"),
        rustls::DEFAULT_VERSIONS,
        silent_port,
    );
    let mut keys = tls_keys("localhost", front.port, &pem_truststore(&pki.ca_pem()));
    keys.retain(|(k, _)| k != "request-timeout");
    keys.push(("request-timeout".into(), "1000".into()));
    let channel = channel_with(4);
    let (mut sink, counters) = configured_sink(kind, &keys, &channel);
    let err = sink.process().expect_err("no answer").to_string();
    let expected = match kind {
        Kind::Avro => format!("no answer from localhost:{} within 1000 ms", front.port),
        Kind::Thrift => format!("no reply from localhost:{} within 1000 ms", front.port),
    };
    assert!(err.contains(&expected), "{err}");
    assert_eq!(front.handshakes_ok.load(Relaxed), 1);
    assert_eq!(counters.connection_created_count.load(Relaxed), 1);
    assert_eq!(channel.len(), 4, "rolled back");
    sink.stop();
}

#[test]
fn avro_sink_request_timeout_bounds_a_call_over_tls() {
    a_silent_server_after_the_handshake_times_the_request_out(Kind::Avro);
}

#[test]
fn thrift_sink_request_timeout_bounds_a_call_over_tls() {
    a_silent_server_after_the_handshake_times_the_request_out(Kind::Thrift);
}

/// `sluice validate` accepts both sinks' TLS keys (nothing unread, nothing refused) with a
/// keytool truststore, and names the file of a truststore that is not there.
#[test]
fn validate_accepts_the_sinks_tls_keys_and_names_a_missing_truststore() {
    let pki = TestPki::new("Validate");
    let truststore = pki.truststore_p12();
    let conf = |truststore: &str| {
        format!(
            "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 44444
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = localhost
a1.sinks.k1.port = 4141
a1.sinks.k1.ssl = true
a1.sinks.k1.truststore = {truststore}
a1.sinks.k1.truststore-type = PKCS12
a1.sinks.k1.truststore-password = {password}
a1.sinks.k1.exclude-protocols = SSLv3 TLSv1 TLSv1.1
a1.sinks.k2.type = thrift
a1.sinks.k2.channel = c1
a1.sinks.k2.hostname = localhost
a1.sinks.k2.port = 4142
a1.sinks.k2.ssl = true
a1.sinks.k2.truststore = {truststore}
a1.sinks.k2.truststore-password = {password}
a1.sinks.k2.include-protocols = TLSv1.3
",
            password = common::tls::PASSWORD
        )
    };
    let validate = |text: &str| {
        let path = common::write_conf(pki.dir(), "agent.conf", text);
        let out = common::sluice()
            .env_remove("FLUME_SSL_TRUSTSTORE_PATH")
            .args(["validate", "-n", "a1", "-f"])
            .arg(&path)
            .output()
            .expect("run sluice validate");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = validate(&conf(&truststore.display().to_string()));
    assert_eq!(code, Some(0), "{text}");
    let missing = pki.dir().join("gone.p12");
    let (code, text) = validate(&conf(&missing.display().to_string()));
    assert_eq!(code, Some(1), "{text}");
    for line in [14, 23] {
        let sink = if line == 14 { "k1" } else { "k2" };
        assert!(
            text.contains(&format!(":{line}: a1.sinks.{sink}.truststore: "))
                && text.contains("gone.p12"),
            "{text}"
        );
    }
}

fn an_ip_address_hostname_is_checked_against_the_ip_names(kind: Kind) {
    let runtime = Runtime::new().expect("runtime");
    let pki = TestPki::new("Addresses");
    // `keystore_pem` certificates name DNS:localhost and IP:127.0.0.1.
    let listed = server(&runtime, kind, &pki.keystore_pem("server", "localhost"));
    let channel = channel_with(2);
    let (mut sink, _) = configured_sink(
        kind,
        &tls_keys(
            "127.0.0.1",
            listed.front.port,
            &pem_truststore(&pki.ca_pem()),
        ),
        &channel,
    );
    assert_eq!(sink.process().expect("delivered"), Status::Ready);
    assert_eq!(listed.backend.received(), bodies(2));
    sink.stop();

    // A certificate with a DNS name only does not cover the address.
    let dns_only = server(
        &runtime,
        kind,
        &keystore_for_name(&pki, "dns-only", "localhost"),
    );
    let channel = channel_with(2);
    let (mut sink, _) = configured_sink(
        kind,
        &tls_keys(
            "127.0.0.1",
            dns_only.front.port,
            &pem_truststore(&pki.ca_pem()),
        ),
        &channel,
    );
    let err = sink.process().expect_err("no IP name").to_string();
    assert!(
        err.contains("certificate not valid for name \"127.0.0.1\""),
        "{err}"
    );
    assert_eq!(channel.len(), 2);
    assert!(dns_only.backend.received().is_empty());
    sink.stop();
}

#[test]
fn avro_sink_checks_an_ip_address_hostname_against_the_certificate() {
    an_ip_address_hostname_is_checked_against_the_ip_names(Kind::Avro);
}

#[test]
fn thrift_sink_checks_an_ip_address_hostname_against_the_certificate() {
    an_ip_address_hostname_is_checked_against_the_ip_names(Kind::Thrift);
}

/// The real agent: netcat lines go out through an avro sink with `trust-all-certs` (warned
/// about at start) and a thrift sink checking a keytool truststore, both over TLS.
#[test]
fn the_agent_sends_over_tls_from_both_sinks_and_warns_about_trust_all_certs() {
    let runtime = Runtime::new().expect("runtime");
    let pki = TestPki::new("Agent");
    let avro = server(&runtime, Kind::Avro, &pki.keystore_pem("avro", "localhost"));
    let thrift = server(
        &runtime,
        Kind::Thrift,
        &pki.keystore_pem("thrift", "localhost"),
    );
    let (nc1, nc2) = (common::free_port(), common::free_port());
    let conf = format!(
        "\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {nc1}
a1.sources.r1.channels = c1
a1.sources.r2.type = netcat
a1.sources.r2.bind = 127.0.0.1
a1.sources.r2.port = {nc2}
a1.sources.r2.channels = c2
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = localhost
a1.sinks.k1.port = {avro_port}
a1.sinks.k1.ssl = true
a1.sinks.k1.trust-all-certs = true
a1.sinks.k2.type = thrift
a1.sinks.k2.channel = c2
a1.sinks.k2.hostname = localhost
a1.sinks.k2.port = {thrift_port}
a1.sinks.k2.ssl = true
a1.sinks.k2.truststore = {truststore}
a1.sinks.k2.truststore-password = {password}
",
        avro_port = avro.front.port,
        thrift_port = thrift.front.port,
        truststore = pki.truststore_p12().display(),
        password = common::tls::PASSWORD,
    );
    let path = common::write_conf(pki.dir(), "agent.conf", &conf);
    let mut agent = common::AgentProcess::start(pki.dir(), &path, "a1", true);
    agent.wait_started();
    let log = agent.log();
    assert!(
        log.contains("a1.sinks.k1.trust-all-certs") && log.contains("NOT verified"),
        "{log}"
    );
    let mut to_avro = common::Netcat::connect(nc1);
    let mut to_thrift = common::Netcat::connect(nc2);
    for i in 0..3 {
        assert_eq!(to_avro.send(&format!("e{i}")), "OK");
        assert_eq!(to_thrift.send(&format!("e{i}")), "OK");
    }
    let delivered = common::wait_until(Duration::from_secs(20), || {
        avro.backend.received().len() >= 3 && thrift.backend.received().len() >= 3
    });
    assert!(delivered, "{}", agent.log());
    assert_eq!(avro.backend.received(), bodies(3));
    assert_eq!(thrift.backend.received(), bodies(3));
    assert_eq!(agent.counter("SINK.k1", "ConnectionFailedCount"), 0);
    assert_eq!(agent.counter("SINK.k2", "ConnectionFailedCount"), 0);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}
