//! The Kafka sink and source over TLS against a real broker: tansu (tests/common/broker.rs)
//! behind `socat` terminating TLS with a certificate made by openssl and keytool
//! (tests/common/tls.rs). The broker advertises the proxy's port, so every connection a client
//! makes after bootstrapping goes through TLS too; nothing reaches the broker in plaintext.
//!
//! tansu 0.6.0's own TLS options are not used (`--cert` and `--key` were refused together in a
//! try, see issue 19). Its SASL is not exercised, because no login can succeed against the
//! installed broker:
//! - PLAIN is not compiled in: tansu-auth 0.6.0 builds rsasl with only `scram-sha-2` and
//!   `oauthbearer` (its Cargo.toml): the broker closes the connection on a PLAIN handshake,
//!   logging `Auth(Sasl(NoSharedMechanism))`;
//! - SCRAM-SHA-256/512 reach the broker (handshake accepted, the JAAS user name arrives), but
//!   the only storage engine in a `--features dynostore` build (memory://, s3://) keeps no SCRAM
//!   users: tansu-storage 0.6.0's src/dynostore.rs `upsert_user_scram_credential` does nothing
//!   (while `tansu user create` reports success) and `user_scram_credential` always answers
//!   none, so every login, right password or wrong, ends with the server-final message
//!   `e=unknown-user` (librdkafka: "SASL SCRAM authentication failed: broker responded with
//!   unknown-user"). Only its sqlite:// (`libsql` feature) and postgres engines store them.
//! - tansu 0.6.0 also counts a finished but failed SCRAM exchange as a login (tansu-auth's
//!   `is_authenticated` accepts any `Stage::Finished`): a client that ignores `e=unknown-user`
//!   is served. A wrong-password test against it would show only the client's refusal.
//!
//! The SASL mapping is covered by the unit tests of `crates/agent/src/kafka/security`.
//!
//! Without tansu, socat, openssl or keytool a test prints `SKIPPED` and passes, unless
//! `SLUICE_REQUIRE_INTEROP` is set: then it fails.
mod common;

use agent::event::Event;
use agent::runner::Status;
use agent::sink::Sink;
use agent::source::kafka::{KafkaSource, KafkaSourceConfig};
use agent::source::PollableSource;
use common::broker::Broker;
use common::kafka::{memory_channel, parse, put_all, sink, source_ctx};
use common::tls::{TestPki, PASSWORD};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// `socat` terminating TLS on a port of its own and forwarding to the broker.
struct TlsProxy {
    child: Child,
    port: u16,
}

impl TlsProxy {
    /// Listens on `port` with the key and chain in `keystore_pem`; with `client_ca`, requires
    /// a client certificate signed by that CA (mutual TLS).
    fn start(port: u16, keystore_pem: &Path, client_ca: Option<&Path>, broker_port: u16) -> Self {
        let verify = match client_ca {
            Some(ca) => format!("verify=1,cafile={}", ca.display()),
            None => "verify=0".to_owned(),
        };
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},{verify}",
            keystore_pem.display()
        );
        let child = Command::new("socat")
            .args([&listen, &format!("TCP:127.0.0.1:{broker_port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start socat");
        let up = common::wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "socat did not listen on {port}");
        Self { child, port }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `program` runs; prints `SKIPPED` (or fails under `SLUICE_REQUIRE_INTEROP`) if not.
fn have(program: &str, arg: &str) -> bool {
    let ok = Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
            "SLUICE_REQUIRE_INTEROP is set but {program} is missing (Debian: apt-get install \
             {program})"
        );
        eprintln!("SKIPPED: this test needs {program}");
    }
    ok
}

/// A broker behind a TLS proxy (client certificates required when `mutual`), and the PKI.
fn secured(mutual: bool) -> Option<(Broker, TlsProxy, &'static TestPki)> {
    if !have("socat", "-V") {
        return None;
    }
    let proxy_port = common::free_port();
    let broker = Broker::start_advertising(Some(proxy_port))?;
    let pki = common::tls::shared();
    let server = pki.keystore_pem("kafka-proxy", "localhost");
    let ca = pki.ca_pem();
    let proxy = TlsProxy::start(
        proxy_port,
        &server,
        mutual.then_some(ca.as_path()),
        broker.port(),
    );
    Some((broker, proxy, pki))
}

/// Creates `topic` through the proxy (the broker advertises only the TLS port).
fn create_topic(proxy: &TlsProxy, pki: &TestPki, topic: &str, client_pem: Option<&Path>) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", proxy.bootstrap())
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", pki.ca_pem().display().to_string());
    if let Some(pem) = client_pem {
        config
            .set("ssl.certificate.location", pem.display().to_string())
            .set("ssl.key.location", pem.display().to_string());
    }
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &opts,
        ))
        .expect("create topic over TLS");
    for r in results {
        r.unwrap_or_else(|(name, code)| panic!("create topic {name}: {code:?}"));
    }
}

/// Reads `n` events from `topic` with the Kafka source configured by `security` pairs.
fn read_back(servers: &str, topic: &str, n: usize, security: &[(&str, &str)]) -> Vec<Event> {
    let channel = memory_channel(1000);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("kafka.bootstrap.servers", servers),
        ("kafka.topics", topic),
        ("kafka.consumer.auto.offset.reset", "earliest"),
        ("batchDurationMillis", "300"),
    ];
    pairs.extend_from_slice(security);
    let cfg = parse("a1.sources.r1.", &pairs, KafkaSourceConfig::parse);
    let ctx = source_ctx(&channel);
    let mut source = KafkaSource::new(cfg, ctx);
    let deadline = Instant::now() + Duration::from_secs(60);
    while channel.len() < n as u64 && Instant::now() < deadline {
        let _ = source.process();
    }
    source.stop();
    let mut tx = channel.transaction();
    let mut got = Vec::new();
    while let Some(e) = tx.take().expect("take") {
        got.push(e);
    }
    tx.commit().expect("commit");
    got
}

fn events(n: usize, tag: &str) -> Vec<Event> {
    (0..n).map(|i| Event::new(format!("{tag}-{i}"))).collect()
}

/// The sink produces over TLS trusting a PKCS12 truststore made by keytool; the source reads
/// back over TLS trusting the CA's PEM file. Both check the proxy's host name (127.0.0.1 is in
/// its certificate).
#[test]
fn sink_and_source_over_ssl_with_pkcs12_and_pem_truststores() {
    let Some((_broker, proxy, pki)) = secured(false) else {
        return;
    };
    create_topic(&proxy, pki, "secure", None);
    let servers = proxy.bootstrap();
    let truststore = pki.truststore_p12();
    let channel = memory_channel(100);
    put_all(&channel, &events(30, "tls"));
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "secure"),
            ("kafka.producer.acks", "all"),
            ("kafka.producer.security.protocol", "SSL"),
            (
                "kafka.producer.ssl.truststore.location",
                truststore.to_str().unwrap(),
            ),
            ("kafka.producer.ssl.truststore.password", PASSWORD),
            ("kafka.producer.ssl.truststore.type", "PKCS12"),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("batch over TLS"), Status::Ready);
    s.stop();
    assert_eq!(channel.len(), 0, "the batch was acknowledged and taken");
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 30);

    let ca = pki.ca_pem();
    let got = read_back(
        &servers,
        "secure",
        30,
        &[
            ("kafka.consumer.security.protocol", "SSL"),
            (
                "kafka.consumer.ssl.truststore.location",
                ca.to_str().unwrap(),
            ),
            ("kafka.consumer.ssl.truststore.type", "PEM"),
        ],
    );
    let bodies: Vec<String> = got
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect();
    assert_eq!(
        bodies,
        (0..30).map(|i| format!("tls-{i}")).collect::<Vec<_>>()
    );
}

/// Mutual TLS: the proxy requires a client certificate signed by the CA; the sink presents a
/// PKCS12 keystore made by keytool, the source a PEM keystore made by openssl.
#[test]
fn mutual_tls_with_pkcs12_and_pem_keystores() {
    let Some((_broker, proxy, pki)) = secured(true) else {
        return;
    };
    let client_pem = pki.keystore_pem("kafka-client", "sluice-client");
    create_topic(&proxy, pki, "mutual", Some(&client_pem));
    let servers = proxy.bootstrap();
    let ca = pki.ca_pem();
    let keystore = pki.keystore_p12("kafka-client-p12", "sluice-client");
    let channel = memory_channel(100);
    put_all(&channel, &events(10, "mtls"));
    let (mut s, _) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "mutual"),
            ("kafka.producer.acks", "all"),
            ("kafka.producer.security.protocol", "SSL"),
            (
                "kafka.producer.ssl.truststore.location",
                ca.to_str().unwrap(),
            ),
            ("kafka.producer.ssl.truststore.type", "PEM"),
            (
                "kafka.producer.ssl.keystore.location",
                keystore.to_str().unwrap(),
            ),
            ("kafka.producer.ssl.keystore.password", PASSWORD),
            ("kafka.producer.ssl.keystore.type", "PKCS12"),
            ("kafka.producer.ssl.key.password", PASSWORD),
        ],
        &channel,
    );
    assert_eq!(s.process().expect("batch over mutual TLS"), Status::Ready);
    s.stop();
    assert_eq!(channel.len(), 0);
    let got = read_back(
        &servers,
        "mutual",
        10,
        &[
            ("kafka.consumer.security.protocol", "SSL"),
            (
                "kafka.consumer.ssl.truststore.location",
                ca.to_str().unwrap(),
            ),
            ("kafka.consumer.ssl.truststore.type", "PEM"),
            (
                "kafka.consumer.ssl.keystore.location",
                client_pem.to_str().unwrap(),
            ),
            ("kafka.consumer.ssl.keystore.type", "PEM"),
        ],
    );
    assert_eq!(got.len(), 10);
    assert_eq!(got[9].body, b"mtls-9".to_vec());
}

/// A truststore of another CA fails closed: nothing is acknowledged, the events stay in the
/// channel, and nothing reaches the topic.
#[test]
fn a_wrong_ca_fails_closed() {
    let Some((_broker, proxy, pki)) = secured(false) else {
        return;
    };
    create_topic(&proxy, pki, "refused", None);
    let servers = proxy.bootstrap();
    let other_ca = common::tls::shared_other().ca_pem();
    let channel = memory_channel(100);
    put_all(&channel, &events(5, "never"));
    let (mut s, counters) = sink(
        &[
            ("kafka.bootstrap.servers", &servers),
            ("kafka.topic", "refused"),
            ("kafka.producer.acks", "all"),
            ("kafka.producer.delivery.timeout.ms", "3000"),
            ("kafka.producer.security.protocol", "SSL"),
            (
                "kafka.producer.ssl.truststore.location",
                other_ca.to_str().unwrap(),
            ),
        ],
        &channel,
    );
    // The first call sends the batch; the second takes nothing and so confirms the batch in
    // flight, which must fail.
    let outcome = match s.process() {
        Ok(_) => s.process(),
        failed => failed,
    };
    s.stop();
    let err = match outcome {
        Ok(status) => {
            panic!("a batch was acknowledged through an untrusted certificate: {status:?}")
        }
        Err(e) => e.to_string(),
    };
    // The error names the refused handshake, not only the timeout librdkafka reports.
    assert!(
        err.contains("the broker refused the connection") && err.contains("SSL"),
        "{err}"
    );
    assert!(counters.connection_failed_count.load(Relaxed) >= 1);
    assert_eq!(channel.len(), 5, "the events stay in the channel");
    assert_eq!(counters.event_drain_success_count.load(Relaxed), 0);
    // What is in the topic, read with the right CA: nothing.
    let ca = pki.ca_pem();
    let got = read_back_briefly(&servers, "refused", ca.to_str().unwrap());
    assert!(got.is_empty(), "{} events reached the topic", got.len());
}

/// Polls `topic` over TLS for a few seconds, for a test that expects nothing.
fn read_back_briefly(servers: &str, topic: &str, ca: &str) -> Vec<Event> {
    let channel = memory_channel(1000);
    let cfg = parse(
        "a1.sources.r1.",
        &[
            ("kafka.bootstrap.servers", servers),
            ("kafka.topics", topic),
            ("kafka.consumer.auto.offset.reset", "earliest"),
            ("batchDurationMillis", "300"),
            ("kafka.consumer.security.protocol", "SSL"),
            ("kafka.consumer.ssl.truststore.location", ca),
        ],
        KafkaSourceConfig::parse,
    );
    let ctx = source_ctx(&channel);
    let mut source = KafkaSource::new(cfg, ctx);
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        let _ = source.process();
    }
    source.stop();
    let mut tx = channel.transaction();
    let mut got = Vec::new();
    while let Some(e) = tx.take().expect("take") {
        got.push(e);
    }
    tx.commit().expect("commit");
    got
}
