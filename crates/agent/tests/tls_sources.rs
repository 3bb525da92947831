//! TLS on the avro, thrift, http, syslogtcp and multiport_syslogtcp sources, end to end: the
//! real `sluice` binary with Flume's `ssl` keys, keystores made by `keytool` and `openssl`
//! (`common::tls`), clients on 127.0.0.1 speaking each protocol over rustls (and `openssl
//! s_client` for TLS 1.1), events read back from a file_roll sink.
//!
//! What must hold for every source (and every port of multiport_syslogtcp): an event sent over
//! TLS is delivered; a plaintext client gets no event in and its failed handshake is counted;
//! a client offering only TLS 1.1 is refused; with `client-auth = required` a client without a
//! certificate gets nothing in and one with a certificate signed by the truststore's CA does;
//! a keystore replaced on disk serves its new certificate to the next connection.

mod common;

use common::tls::{TestPki, PASSWORD};
use common::{free_port, read_dir_text, wait_until, write_conf, AgentProcess};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The protocols of the sources under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Avro,
    Thrift,
    Http,
    Syslog,
}

/// One TLS port of the agent: which source, which protocol.
#[derive(Clone, Debug)]
struct Port {
    source: &'static str,
    kind: Kind,
    port: u16,
}

/// Ports for the five sources: avro, thrift, http, syslogtcp, and two of multiport_syslogtcp.
fn ports() -> Vec<Port> {
    let p = |source, kind| Port {
        source,
        kind,
        port: free_port(),
    };
    vec![
        p("r_avro", Kind::Avro),
        p("r_thrift", Kind::Thrift),
        p("r_http", Kind::Http),
        p("r_syslog", Kind::Syslog),
        p("r_multi", Kind::Syslog),
        p("r_multi", Kind::Syslog),
    ]
}

/// An agent whose five sources serve TLS with `tls` (the lines after `ssl = true`, for each
/// source), all into one memory channel drained by a file_roll sink into `out`.
fn conf(ports: &[Port], tls: &str) -> String {
    let port_of = |source: &str| {
        ports
            .iter()
            .filter(|p| p.source == source)
            .map(|p| p.port.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut text = String::from(
        "a1.sources = r_avro r_thrift r_http r_syslog r_multi\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = out\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
    );
    for (source, kind, port_key) in [
        ("r_avro", "avro", "port"),
        ("r_thrift", "thrift", "port"),
        ("r_http", "http", "port"),
        ("r_syslog", "syslogtcp", "port"),
        ("r_multi", "multiport_syslogtcp", "ports"),
    ] {
        let pre = format!("a1.sources.{source}");
        let host_key = if kind.contains("syslog") {
            "host"
        } else {
            "bind"
        };
        text.push_str(&format!(
            "{pre}.type = {kind}\n{pre}.channels = c1\n{pre}.{host_key} = 127.0.0.1\n\
             {pre}.{port_key} = {}\n{pre}.ssl = true\n",
            port_of(source)
        ));
        for line in tls.lines().filter(|l| !l.trim().is_empty()) {
            text.push_str(&format!("{pre}.{}\n", line.trim()));
        }
    }
    text
}

/// Starts the agent on `conf` in `dir`, with metrics.
fn start(dir: &Path, conf: &str) -> AgentProcess {
    let c = write_conf(dir, "a.conf", conf);
    let mut agent = AgentProcess::start(dir, &c, "a1", true);
    agent.wait_started();
    agent
}

/// rustls with *ring*, as the agent uses it.
#[allow(deprecated)] // deprecated in rustls 0.23.48 only for lacking post-quantum key exchange
fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `ca_pem`, with the client certificate and key of the PEM
/// file `client` (key, certificate, chain) if given.
fn client_config(ca_pem: &Path, client: Option<&Path>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(ca_pem).expect("CA file") {
        roots.add(ca.expect("CA PEM")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match client {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pem)
                .expect("client PEM")
                .map(|c| c.expect("client certificate"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(pem).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate and key")
        }
    })
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `port` (server name `localhost`), its handshake done from the client's
/// side. (With TLS 1.3 the server checks a client certificate after the client is done: a
/// refusal shows at the first read.)
fn connect_tls(port: u16, config: &Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// The bytes of one request of `kind` carrying one event with body `token`.
fn request(kind: Kind, token: &str) -> Vec<u8> {
    match kind {
        Kind::Avro => {
            use avro_ipc::handshake::HandshakeRequest;
            use avro_ipc::protocol::{protocol_hash, PROTOCOL_JSON};
            let mut payload = HandshakeRequest {
                client_hash: protocol_hash(),
                client_protocol: Some(PROTOCOL_JSON.to_owned()),
                server_hash: protocol_hash(),
            }
            .encode();
            let headers = vec![("via".to_owned(), "tls".to_owned())];
            payload.extend(avro_ipc::call::encode_append_batch(&[
                avro_ipc::event::EventRef {
                    headers: &headers,
                    body: token.as_bytes(),
                },
            ]));
            avro_ipc::frame::encode(1, &payload)
        }
        Kind::Thrift => thrift_rpc::wire::encode_call(
            thrift_rpc::Protocol::Compact,
            thrift_rpc::wire::Method::AppendBatch,
            1,
            &[thrift_rpc::EventRef {
                headers: &[],
                body: token.as_bytes(),
            }],
            thrift_rpc::frame::MAX_FRAME_BYTES,
        )
        .expect("thrift call"),
        Kind::Http => {
            let body = format!("[{{\"headers\": {{}}, \"body\": \"{token}\"}}]");
            format!(
                "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        Kind::Syslog => format!("<13>Dec  6 14:00:00 host app: {token}\n").into_bytes(),
    }
}

/// Whether the answer to one request of `kind` says the event was committed (syslog has no
/// answer: true).
fn answered_ok(kind: Kind, stream: &mut impl Read) -> bool {
    match kind {
        Kind::Avro => {
            use avro_ipc::call::{decode_response, Response};
            use avro_ipc::handshake::HandshakeResponse;
            let mut decoder = avro_ipc::frame::FrameDecoder::default();
            let mut buf = [0u8; 4096];
            let frame = loop {
                match decoder.next_frame() {
                    Ok(Some(f)) => break f,
                    Ok(None) => {}
                    Err(_) => return false,
                }
                match stream.read(&mut buf) {
                    Ok(n) if n > 0 => decoder.push(&buf[..n]),
                    _ => return false,
                }
            };
            let mut payload = &frame.payload[..];
            HandshakeResponse::decode(&mut payload).is_ok()
                && matches!(
                    decode_response(&mut payload),
                    Ok(Response::Status(avro_ipc::protocol::Status::Ok))
                )
        }
        Kind::Thrift => {
            let Ok(reply) =
                thrift_rpc::frame::read_frame(stream, thrift_rpc::frame::MAX_FRAME_BYTES)
            else {
                return false;
            };
            matches!(
                thrift_rpc::wire::decode_reply(
                    &reply,
                    thrift_rpc::Protocol::Compact,
                    thrift_rpc::wire::Method::AppendBatch,
                    1
                ),
                Ok(thrift_rpc::wire::Status::Ok)
            )
        }
        Kind::Http => {
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
        }
        Kind::Syslog => true,
    }
}

/// Sends one event `token` to `port` over TLS and reads the answer; `Err` when the connection
/// or the answer failed, `Ok(false)` when the source answered that it did not commit.
fn send_tls(port: &Port, config: &Arc<rustls::ClientConfig>, token: &str) -> std::io::Result<bool> {
    let mut s = connect_tls(port.port, config)?;
    s.write_all(&request(port.kind, token))?;
    s.flush()?;
    let ok = answered_ok(port.kind, &mut s);
    if port.kind == Kind::Syslog {
        // Syslog answers nothing: a refused client sees its connection closed.
        s.conn.send_close_notify();
        s.flush()?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)?;
    } else if !ok {
        return Err(std::io::Error::other("no OK answer"));
    }
    Ok(ok)
}

/// Sends one event `token` to `port` in the clear; what came back before the source closed
/// the connection.
fn send_plain(port: &Port, token: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = s.write_all(&request(port.kind, token));
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    back
}

/// `TlsHandshakeFailedCount` of `source`.
fn handshakes_failed(agent: &AgentProcess, source: &str) -> u64 {
    agent.counter(&format!("SOURCE.{source}"), "TlsHandshakeFailedCount")
}

/// Waits until `token` is in the sink's output.
fn wait_delivered(dir: &Path, token: &str) -> bool {
    wait_until(Duration::from_secs(20), || {
        read_dir_text(&dir.join("out")).contains(token)
    })
}

/// Runs `openssl s_client` offering TLS 1.1 only against `port`; its output.
fn s_client_tls1_1(port: u16, ca: &Path) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-CAfile",
        ])
        .arg(ca)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is needed by this test: install it (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_source_delivers_over_tls_and_refuses_plaintext_and_tls_1_1() {
    let pki = TestPki::new("sources");
    let keystore = pki.keystore_p12("server", "localhost");
    let tmp = tempfile::tempdir().expect("tmp");
    let ports = ports();
    let tls = format!(
        "keystore = {}\nkeystore-password = {PASSWORD}\nkeystore-type = PKCS12\n",
        keystore.display()
    );
    let agent = start(tmp.path(), &conf(&ports, &tls));
    let client = client_config(&pki.ca_pem(), None);
    for (i, port) in ports.iter().enumerate() {
        let token = format!("tls-event-{i}-{}", port.source);
        assert_eq!(
            send_tls(port, &client, &token).map_err(|e| e.to_string()),
            Ok(true),
            "{port:?}\n{}",
            agent.log()
        );
        assert!(
            wait_delivered(tmp.path(), &token),
            "{port:?}: {token} delivered"
        );
    }
    let mut failed_before = std::collections::BTreeMap::new();
    for port in &ports {
        failed_before.insert(port.source, handshakes_failed(&agent, port.source));
    }
    for (i, port) in ports.iter().enumerate() {
        let before = handshakes_failed(&agent, port.source);
        let back = send_plain(port, &format!("plain-event-{i}"));
        assert!(
            !back.starts_with(b"HTTP/1.1 200"),
            "{port:?}: the plaintext request was not answered OK"
        );
        assert!(
            wait_until(Duration::from_secs(10), || handshakes_failed(
                &agent,
                port.source
            ) > before),
            "{port:?}: the plaintext client's failed handshake is counted"
        );
        let before = handshakes_failed(&agent, port.source);
        let (ok, text) = s_client_tls1_1(port.port, &pki.ca_pem());
        // The client sent its hello (openssl can speak TLS 1.1 here, at security level 0) and
        // the server answered with an alert: no cipher, no session.
        assert!(
            !ok && text.contains("Cipher is (NONE)") && text.contains("alert"),
            "{port:?}: TLS 1.1 refused by the server's alert:\n{text}"
        );
        assert!(
            wait_until(Duration::from_secs(10), || handshakes_failed(
                &agent,
                port.source
            ) > before),
            "{port:?}: the server itself refused the TLS 1.1 client (counted):\n{text}"
        );
    }
    // A TLS client after all that is still served.
    let token = "tls-event-after-refusals";
    assert_eq!(send_tls(&ports[0], &client, token).ok(), Some(true));
    assert!(wait_delivered(tmp.path(), token));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let out = read_dir_text(&tmp.path().join("out"));
    assert!(
        !out.contains("plain-event"),
        "no plaintext event got in:\n{out}"
    );
    assert_eq!(
        out.lines().count(),
        ports.len() + 1,
        "one event per TLS request, nothing else:\n{out}"
    );
    assert!(
        log.contains("TLS handshake failed"),
        "the failed handshakes are logged:\n{log}"
    );
}

#[test]
fn with_client_auth_required_only_clients_with_a_certificate_of_the_truststore_get_in() {
    let pki = TestPki::new("mutual");
    let keystore = pki.keystore_pem("server", "localhost");
    let truststore = pki.truststore_p12();
    let client_pem = pki.keystore_pem("client", "a client");
    let stranger = TestPki::new("stranger");
    let stranger_pem = stranger.keystore_pem("client", "a stranger");
    let tmp = tempfile::tempdir().expect("tmp");
    let ports = ports();
    let tls = format!(
        "keystore = {}\nkeystore-type = PEM\nclient-auth = required\ntruststore = {}\n\
         truststore-password = {PASSWORD}\ntruststore-type = PKCS12\n",
        keystore.display(),
        truststore.display()
    );
    let agent = start(tmp.path(), &conf(&ports, &tls));
    let anonymous = client_config(&pki.ca_pem(), None);
    let foreign = client_config(&pki.ca_pem(), Some(&stranger_pem));
    let certified = client_config(&pki.ca_pem(), Some(&client_pem));
    for (i, port) in ports.iter().enumerate() {
        for (who, config) in [("anonymous", &anonymous), ("stranger", &foreign)] {
            let before = handshakes_failed(&agent, port.source);
            let token = format!("{who}-event-{i}");
            let sent = send_tls(port, config, &token);
            assert!(
                port.kind == Kind::Syslog || sent.is_err(),
                "{port:?}: the {who} client is not answered: {sent:?}"
            );
            assert!(
                wait_until(Duration::from_secs(10), || handshakes_failed(
                    &agent,
                    port.source
                ) > before),
                "{port:?}: the {who} client's handshake failed on the server"
            );
        }
        let token = format!("certified-event-{i}");
        assert_eq!(
            send_tls(port, &certified, &token).map_err(|e| e.to_string()),
            Ok(true),
            "{port:?}\n{}",
            agent.log()
        );
        assert!(wait_delivered(tmp.path(), &token), "{port:?}");
    }
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let out = read_dir_text(&tmp.path().join("out"));
    assert!(!out.contains("anonymous-event"), "{out}");
    assert!(!out.contains("stranger-event"), "{out}");
    assert_eq!(out.lines().count(), ports.len(), "{out}");
}

/// The certificate `port` serves to a new connection.
fn served_certificate(port: u16, config: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let s = connect_tls(port, config).expect("TLS connection");
    s.conn.peer_certificates().expect("a certificate")[0].to_vec()
}

/// The first certificate in the PEM file `pem` (its key comes first).
fn first_certificate(pem: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(pem)
        .expect("PEM")
        .next()
        .expect("a certificate")
        .expect("PEM certificate")
        .to_vec()
}

/// Replaces `target` with a copy of `new` at once (a rename, as deployment tools do).
fn replace_file(new: &Path, target: &Path) {
    let staged: PathBuf = target.with_extension("staged");
    std::fs::copy(new, &staged).expect("copy");
    std::fs::rename(&staged, target).expect("rename");
}

#[test]
fn a_replaced_keystore_serves_its_certificate_to_the_next_connection_of_every_source() {
    let pki = TestPki::new("rotation");
    let first = pki.keystore_pem("first", "localhost");
    let second = pki.keystore_pem("second", "localhost");
    let tmp = tempfile::tempdir().expect("tmp");
    let keystore = tmp.path().join("keystore.pem");
    std::fs::copy(&first, &keystore).expect("copy");
    let ports = ports();
    let tls = format!("keystore = {}\nkeystore-type = PEM\n", keystore.display());
    let agent = start(tmp.path(), &conf(&ports, &tls));
    let client = client_config(&pki.ca_pem(), None);
    let (old, new) = (first_certificate(&first), first_certificate(&second));
    assert_ne!(old, new);
    // A connection that stays open across the rotation keeps its session.
    let mut open = connect_tls(ports[0].port, &client).expect("connect");
    for port in &ports {
        assert_eq!(served_certificate(port.port, &client), old, "{port:?}");
    }
    replace_file(&second, &keystore);
    for (i, port) in ports.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(10), || served_certificate(
                port.port, &client
            ) == new),
            "{port:?}: the new certificate is served\n{}",
            agent.log()
        );
        let token = format!("after-rotation-{i}");
        assert_eq!(send_tls(port, &client, &token).ok(), Some(true), "{port:?}");
        assert!(wait_delivered(tmp.path(), &token));
    }
    open.write_all(&request(Kind::Avro, "over-the-old-session"))
        .expect("send");
    assert!(answered_ok(Kind::Avro, &mut open));
    assert!(wait_delivered(tmp.path(), "over-the-old-session"));
    // A syslog connection cut without close_notify: its complete message is kept, its
    // unterminated tail is not (docs/agent.md says so).
    let syslog = ports
        .iter()
        .find(|p| p.source == "r_syslog")
        .expect("syslog");
    let mut cut = connect_tls(syslog.port, &client).expect("connect");
    let mut bytes = request(Kind::Syslog, "cut-complete");
    bytes.extend(b"<13>Dec  6 14:00:00 host app: cut-partial");
    cut.write_all(&bytes).expect("send");
    cut.flush().expect("flush");
    drop(cut);
    assert!(wait_delivered(tmp.path(), "cut-complete"));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let out = read_dir_text(&tmp.path().join("out"));
    assert!(!out.contains("cut-partial"), "{out}");
}

#[test]
fn the_avro_ip_filter_refuses_a_peer_before_its_tls_handshake() {
    let pki = TestPki::new("filter");
    let keystore = pki.keystore_pem("server", "localhost");
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let conf = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = out\na1.sinks.k1.sink.rollInterval = 0\n\
         a1.sources.r1.type = avro\na1.sources.r1.channels = c1\n\
         a1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n\
         a1.sources.r1.ipFilter = true\na1.sources.r1.ipFilterRules = deny:ip:127.*\n\
         a1.sources.r1.ssl = true\na1.sources.r1.keystore = {}\n\
         a1.sources.r1.keystore-type = PEM\n",
        keystore.display()
    );
    let agent = start(tmp.path(), &conf);
    let client = client_config(&pki.ca_pem(), None);
    let refused = connect_tls(port, &client);
    assert!(refused.is_err(), "the denied peer gets no handshake");
    assert!(wait_until(Duration::from_secs(10), || agent
        .log()
        .contains("connection refused by ipFilterRules")));
    assert_eq!(
        handshakes_failed(&agent, "r1"),
        0,
        "the filter closed the connection before any handshake was tried"
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(read_dir_text(&tmp.path().join("out")), "");
}

#[test]
fn ssl_without_a_usable_keystore_is_refused_at_validation_for_every_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ports = ports();
    // ssl = true and no keystore on all five sources; a keystore that is not there on one;
    // TLS asked of syslogudp, which has none; Flume's deprecated http name.
    let mut text = conf(&ports, "")
        .replace(
            "a1.sources.r_avro.ssl = true\n",
            "a1.sources.r_avro.ssl = true\na1.sources.r_avro.keystore = /nonexistent/server.p12\n\
             a1.sources.r_avro.keystore-password = x\na1.sources.r_avro.keystore-type = PKCS12\n",
        )
        .replace("a1.sources = r_avro", "a1.sources = r_udp r_avro");
    text.push_str(
        "a1.sources.r_udp.type = syslogudp\na1.sources.r_udp.channels = c1\n\
         a1.sources.r_udp.host = 127.0.0.1\na1.sources.r_udp.port = 5140\n\
         a1.sources.r_udp.ssl = true\n\
         a1.sources.r_http.enableSSL = true\n",
    );
    let c = write_conf(tmp.path(), "a.conf", &text);
    let out = common::sluice()
        .current_dir(tmp.path())
        .env_remove("FLUME_SSL_KEYSTORE_PATH")
        .env_remove("FLUME_SSL_KEYSTORE_PASSWORD")
        .env_remove("FLUME_SSL_KEYSTORE_TYPE")
        .args(["validate", "-n", "a1", "-f"])
        .arg(&c)
        .output()
        .expect("run sluice validate");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{report}");
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} in the configuration"))
    };
    for source in ["r_thrift", "r_http", "r_syslog", "r_multi"] {
        assert!(
            report.contains(&format!("a1.sources.{source}.keystore"))
                && report.contains("no keystore"),
            "{source}: ssl = true without a keystore is refused:\n{report}"
        );
    }
    let keystore_line = line_of("a1.sources.r_avro.keystore =");
    assert!(
        report.contains(&format!(":{keystore_line}: a1.sources.r_avro.keystore"))
            && report.contains("/nonexistent/server.p12"),
        "a missing keystore is named with its file and line:\n{report}"
    );
    let udp_line = line_of("a1.sources.r_udp.ssl");
    assert!(
        report.contains(&format!(
            ":{udp_line}: a1.sources.r_udp.ssl: syslogudp has no TLS"
        )),
        "{report}"
    );
    assert!(
        report.contains("a1.sources.r_http.enableSSL: enableSSL is Flume's deprecated name of ssl"),
        "{report}"
    );
}
