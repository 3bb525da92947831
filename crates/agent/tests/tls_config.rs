//! The TLS configuration of sources and sinks (issue 15) against keystores made by `keytool`
//! and `openssl`: what loads, what is refused at configuration time and with which message,
//! the agent-wide defaults, protocol and cipher-suite keys, and certificate rotation seen
//! through real handshakes on 127.0.0.1.

mod common;

use agent::config::context::{Ctx, Entry};
use agent::config::problem::Diagnostics;
use agent::tls::{ClientTls, ServerTls, TlsDefaults, ENV_NAMES};
use common::tls::{shared, shared_other, TestPki, PASSWORD};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const PREFIX: &str = "a1.sources.r1.";

fn entries(pairs: &[(&str, &str)]) -> Vec<Entry> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Entry {
            key: format!("{PREFIX}{k}"),
            value: (*v).to_owned(),
            line: i as u32 + 2,
        })
        .collect()
}

fn ctx(list: &[Entry]) -> Ctx<'_> {
    Ctx::new(
        PREFIX,
        list.iter()
            .map(|e| (e.key.strip_prefix(PREFIX).unwrap_or(""), e))
            .collect(),
        1,
    )
}

/// Error lines as `sluice validate` prints them (file `f`).
fn errors(d: &Diagnostics) -> Vec<String> {
    d.errors
        .iter()
        .map(|p| p.display(Path::new("f")).to_string())
        .collect()
}

fn warnings(d: &Diagnostics) -> Vec<String> {
    d.warnings
        .iter()
        .map(|p| p.display(Path::new("f")).to_string())
        .collect()
}

fn no_defaults() -> TlsDefaults {
    TlsDefaults::default()
}

/// Parses a source's TLS over `pairs`; the result and the problems.
fn server(pairs: &[(&str, &str)], defaults: &TlsDefaults) -> (Option<ServerTls>, Diagnostics) {
    let list = entries(pairs);
    let c = ctx(&list);
    let tls = ServerTls::parse_with(&c, "avro source r1", defaults);
    (tls, c.finish("avro source r1"))
}

fn client(pairs: &[(&str, &str)], defaults: &TlsDefaults) -> (Option<ClientTls>, Diagnostics) {
    let list = entries(pairs);
    let c = ctx(&list);
    let tls = ClientTls::parse_with(&c, "avro sink k1", defaults);
    (tls, c.finish("avro sink k1"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The single error, which must mention every one of `needles`.
fn assert_one_error(d: &Diagnostics, needles: &[&str]) {
    let e = errors(d);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    for n in needles {
        assert!(e[0].contains(n), "error {:?} does not mention {n:?}", e[0]);
    }
}

#[test]
fn keytool_pkcs12_keystore_loads() {
    let pki = shared();
    let ks = pki.keystore_p12("server", "localhost");
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&ks)),
            ("keystore-password", PASSWORD),
            ("keystore-type", "PKCS12"),
        ],
        &no_defaults(),
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let tls = tls.expect("ServerTls");
    assert_eq!(tls.keystore_path(), ks.as_path());
    assert!(!tls.client_auth_required());
}

#[test]
fn pkcs12_under_the_jks_default_type_is_read_as_pkcs12_like_java() {
    let pki = shared();
    let ks = pki.keystore_p12("server", "localhost");
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&ks)),
            ("keystore-password", PASSWORD),
        ],
        &no_defaults(),
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert!(tls.is_some());
}

#[test]
fn openssl_pkcs12_and_pem_keystores_load() {
    let pki = shared();
    let pem = pki.keystore_pem("server", "localhost");
    let p12 = pki.keystore_p12_openssl("server");
    for (path, kind) in [(&pem, "PEM"), (&p12, "PKCS12")] {
        let (tls, d) = server(
            &[
                ("ssl", "true"),
                ("keystore", s(path)),
                ("keystore-password", PASSWORD),
                ("keystore-type", kind),
            ],
            &no_defaults(),
        );
        assert!(errors(&d).is_empty(), "{kind}: {:#?}", errors(&d));
        assert!(tls.is_some(), "{kind}");
    }
}

#[test]
fn jks_keystore_is_refused_with_the_conversion_command() {
    let pki = shared();
    let jks = pki.keystore_jks();
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&jks)),
            ("keystore-password", PASSWORD),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    let cmd = format!(
        "keytool -importkeystore -srckeystore {0} -srcstoretype JKS -destkeystore {0}.p12 -deststoretype PKCS12",
        jks.display()
    );
    assert_one_error(&d, &["f:3: a1.sources.r1.keystore: avro source r1", &cmd]);
}

#[test]
fn wrong_password_is_an_error_on_the_password_key() {
    let pki = shared();
    let ks = pki.keystore_p12("server", "localhost");
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&ks)),
            ("keystore-password", "wrong"),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &[
            "a1.sources.r1.keystore-password",
            "avro source r1",
            "wrong password",
            s(&ks),
        ],
    );
}

#[test]
fn keystore_with_only_a_certificate_is_refused() {
    let pki = shared();
    let ts = pki.truststore_p12();
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&ts)),
            ("keystore-password", PASSWORD),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.keystore:", "no private key", s(&ts)]);
}

#[test]
fn sink_truststore_loads_and_trust_all_warns() {
    let pki = shared();
    let ts = pki.truststore_p12();
    let (tls, d) = client(
        &[
            ("ssl", "true"),
            ("truststore", s(&ts)),
            ("truststore-password", PASSWORD),
            ("truststore-type", "PKCS12"),
        ],
        &no_defaults(),
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let tls = tls.expect("ClientTls");
    assert!(!tls.trusts_all_certs());
    assert!(tls.server_name("localhost").is_ok());
    assert!(tls.server_name("127.0.0.1").is_ok());
    assert!(tls.server_name("not a host").is_err());

    let (tls, d) = client(
        &[("ssl", "true"), ("trust-all-certs", "true")],
        &no_defaults(),
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert!(tls.expect("ClientTls").trusts_all_certs());
    let w = warnings(&d);
    assert!(
        w.iter()
            .any(|w| w.contains("trust-all-certs") && w.contains("NOT verified")),
        "{w:#?}"
    );
}

/// Defaults as `sluice agent` would take them from an environment holding `vars`.
fn env_defaults(vars: &[(&str, &str)]) -> TlsDefaults {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TlsDefaults::from_lookup(&ENV_NAMES, |name| map.get(name).cloned())
}

/// A source over a fresh keytool PKCS12 keystore, plus `extra` keys.
fn server_with(pki: &TestPki, extra: &[(&str, &str)]) -> (Option<ServerTls>, Diagnostics) {
    let ks = pki.keystore_p12("server", "localhost");
    let mut pairs = vec![
        ("ssl", "true"),
        ("keystore", s(&ks)),
        ("keystore-password", PASSWORD),
    ];
    pairs.extend_from_slice(extra);
    server(&pairs, &no_defaults())
}

/// A sink trusting `pki`'s CA, plus `extra` keys.
fn client_trusting(pki: &TestPki, extra: &[(&str, &str)]) -> ClientTls {
    let ts = pki.truststore_p12();
    let mut pairs = vec![
        ("ssl", "true"),
        ("truststore", s(&ts)),
        ("truststore-password", PASSWORD),
    ];
    pairs.extend_from_slice(extra);
    let (tls, d) = client(&pairs, &no_defaults());
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    tls.expect("ClientTls")
}

/// What one connection over 127.0.0.1 came to, on each side.
#[derive(Debug)]
struct Outcome {
    /// The common name of the server certificate the client saw, after a round trip.
    client: Result<String, String>,
    /// Whether the server completed the handshake and the round trip.
    server: Result<(), String>,
}

const LIMIT: Duration = Duration::from_secs(20);

/// One connection: the server side with `acceptor`, the client with `config` asking for
/// `name`; the client sends "hello" and reads "world" back.
async fn connect(acceptor: TlsAcceptor, config: Arc<ClientConfig>, name: &str) -> Outcome {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut hello = [0u8; 5];
        tls.read_exact(&mut hello)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"world").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())
    });
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
        let mut world = [0u8; 5];
        tls.read_exact(&mut world)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(&world, b"world");
        let certs = tls
            .get_ref()
            .1
            .peer_certificates()
            .ok_or("no certificate")?;
        Ok::<_, String>(common_name(certs[0].as_ref()))
    };
    let client = tokio::time::timeout(LIMIT, client)
        .await
        .unwrap_or_else(|_| Err("client timed out".to_owned()));
    let server = match tokio::time::timeout(LIMIT, server).await {
        Ok(joined) => joined.expect("server task"),
        Err(_) => Err("server timed out".to_owned()),
    };
    Outcome { client, server }
}

fn common_name(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("certificate");
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_owned();
    cn
}

#[test]
fn truncated_or_garbage_stores_are_errors_not_panics() {
    let pki = shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.p12");
    let good = std::fs::read(pki.keystore_p12("server", "localhost")).expect("read");
    let pem = std::fs::read(pki.keystore_pem("server", "localhost")).expect("read");
    let mut cases: Vec<Vec<u8>> = [1, 2, 16, 100, good.len() / 2, good.len() - 1]
        .iter()
        .map(|&n| good[..n].to_vec())
        .collect();
    cases.push(pem[..pem.len() / 2].to_vec());
    cases.push(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec());
    cases.push(vec![0x30; 64]);
    cases.push(Vec::new());
    for (i, bytes) in cases.iter().enumerate() {
        std::fs::write(&bad, bytes).expect("write");
        for role in ["keystore", "truststore"] {
            let pairs = [
                ("ssl", "true"),
                (role, s(&bad)),
                (&*format!("{role}-password"), PASSWORD),
            ];
            let e = if role == "keystore" {
                let (tls, d) = server(&pairs, &no_defaults());
                assert!(tls.is_none(), "case {i}");
                errors(&d)
            } else {
                let (tls, d) = client(&pairs, &no_defaults());
                assert!(tls.is_none(), "case {i}");
                errors(&d)
            };
            assert_eq!(e.len(), 1, "case {i} {role}: {e:#?}");
            assert!(e[0].contains(s(&bad)), "case {i} {role}: {e:#?}");
        }
    }
}

#[test]
fn encrypted_pem_key_is_refused() {
    let pki = shared();
    let pem = pki.keystore_pem_encrypted("enc");
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&pem)),
            ("keystore-type", "PEM"),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &["a1.sources.r1.keystore:", "encrypted private key", s(&pem)],
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let pki = shared();
    let expired = pki.keystore_expired();
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&expired)),
            ("keystore-password", PASSWORD),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &[
            "a1.sources.r1.keystore:",
            "avro source r1",
            "expired",
            s(&expired),
        ],
    );

    let future = pki.keystore_not_yet_valid();
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&future)),
            ("keystore-password", PASSWORD),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &["a1.sources.r1.keystore:", "not valid before", s(&future)],
    );
}

#[test]
fn a_certificate_expiring_within_30_days_loads_with_a_warning() {
    let pki = shared();
    let soon = pki.keystore_expiring_soon();
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&soon)),
            ("keystore-password", PASSWORD),
        ],
        &no_defaults(),
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert!(tls.is_some());
    let w = warnings(&d);
    assert!(
        w.iter().any(|w| w.contains("a1.sources.r1.keystore:")
            && w.contains("expires on")
            && w.contains(s(&soon))),
        "{w:#?}"
    );
    // A certificate valid for a year: no warning.
    let (_, d) = server_with(pki, &[]);
    assert!(warnings(&d).is_empty(), "{:#?}", warnings(&d));
}

#[test]
fn key_not_matching_its_certificate_is_refused() {
    let pki = shared();
    pki.keystore_pem("a", "localhost");
    pki.keystore_pem("b", "localhost");
    let pem = pki.keystore_pem_mismatched("a", "b");
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&pem)),
            ("keystore-type", "PEM"),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.keystore:", "does not match", s(&pem)]);
}

#[test]
fn missing_file_and_missing_keystore_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.p12");
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&missing)),
            ("keystore-password", "x"),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &["f:3: a1.sources.r1.keystore:", "cannot read", s(&missing)],
    );

    let (tls, d) = server(&[("ssl", "true")], &no_defaults());
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &[
            "f:1: a1.sources.r1.keystore:",
            "no keystore",
            "FLUME_SSL_KEYSTORE_PATH",
        ],
    );
}

#[test]
fn pkcs12_without_password_is_an_error_on_the_password_key() {
    let pki = shared();
    let ks = pki.keystore_p12("server", "localhost");
    let (tls, d) = server(&[("ssl", "true"), ("keystore", s(&ks))], &no_defaults());
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &["a1.sources.r1.keystore-password:", "needs its password"],
    );
}

#[test]
fn unknown_store_type_is_an_error() {
    let pki = shared();
    let (tls, d) = server_with(pki, &[("keystore-type", "BKS")]);
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.keystore-type:", "BKS"]);
}

#[test]
fn tls_keys_without_ssl_true_are_refused_and_ssl_false_ignores_them() {
    let pki = shared();
    let ks = pki.keystore_p12("server", "localhost");
    let (tls, d) = server(&[("keystore", s(&ks))], &no_defaults());
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.keystore:", "without ssl = true"]);

    let (tls, d) = server(&[("ssl", "false"), ("keystore", s(&ks))], &no_defaults());
    assert!(tls.is_none());
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let w = warnings(&d);
    assert!(
        w.iter()
            .any(|w| w.contains("keystore") && w.contains("ignored because ssl is false")),
        "{w:#?}"
    );

    let (tls, d) = server(&[], &no_defaults());
    assert!(tls.is_none());
    assert!(errors(&d).is_empty() && warnings(&d).is_empty());
}

#[test]
fn environment_defaults_apply_when_the_component_sets_no_key() {
    let pki = shared();
    let ks = pki.keystore_p12("server", "localhost");
    let env = env_defaults(&[
        ("FLUME_SSL_KEYSTORE_PATH", s(&ks)),
        ("FLUME_SSL_KEYSTORE_PASSWORD", PASSWORD),
        ("FLUME_SSL_KEYSTORE_TYPE", "PKCS12"),
    ]);
    let (tls, d) = server(&[("ssl", "true")], &env);
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert_eq!(tls.expect("ServerTls").keystore_path(), ks.as_path());

    // The component's own key wins, and a bad default names where it came from.
    let env = env_defaults(&[
        ("FLUME_SSL_KEYSTORE_PATH", "/nonexistent/agent-wide.p12"),
        ("FLUME_SSL_KEYSTORE_PASSWORD", PASSWORD),
    ]);
    let (tls, d) = server(&[("ssl", "true"), ("keystore", s(&ks))], &env);
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert!(tls.is_some());
    let (tls, d) = server(&[("ssl", "true")], &env);
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &[
            "/nonexistent/agent-wide.p12",
            "from FLUME_SSL_KEYSTORE_PATH",
        ],
    );

    // The truststore default applies to sinks.
    let ts = pki.truststore_p12();
    let env = env_defaults(&[
        ("FLUME_SSL_TRUSTSTORE_PATH", s(&ts)),
        ("FLUME_SSL_TRUSTSTORE_PASSWORD", "wrong"),
    ]);
    let (tls, d) = client(&[("ssl", "true")], &env);
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &[
            "a1.sources.r1.truststore-password:",
            "wrong password",
            "from FLUME_SSL_TRUSTSTORE_PATH",
        ],
    );
}

#[test]
fn old_or_unknown_protocols_cannot_be_included_and_one_must_remain() {
    let pki = shared();
    for bad in ["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2 TLSv1.1"] {
        let (tls, d) = server_with(pki, &[("include-protocols", bad)]);
        assert!(tls.is_none(), "{bad}");
        assert_one_error(&d, &["a1.sources.r1.include-protocols:", "not supported"]);
    }
    let (tls, d) = server_with(pki, &[("include-protocols", "TLSv9")]);
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &["a1.sources.r1.include-protocols:", "unknown protocol TLSv9"],
    );

    let (tls, d) = server_with(pki, &[("exclude-protocols", "TLSv1.2 TLSv1.3")]);
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &["a1.sources.r1.exclude-protocols:", "no protocol left"],
    );

    let (tls, d) = server_with(pki, &[("exclude-protocols", "SSLv3 TLSv1 TLSv1.1 TLSv1.2")]);
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert!(tls.is_some());
}

#[test]
fn cipher_suites_take_iana_java_and_rustls_names() {
    let pki = shared();
    let (tls, d) = server_with(
        pki,
        &[(
            "include-cipher-suites",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 TLS_AES_128_GCM_SHA256 TLS13_AES_256_GCM_SHA384",
        )],
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert!(tls.is_some());

    let (tls, d) = server_with(
        pki,
        &[(
            "include-cipher-suites",
            "TLS_RSA_WITH_AES_128_CBC_SHA TLS_BOGUS",
        )],
    );
    assert!(tls.is_none());
    assert_one_error(
        &d,
        &[
            "a1.sources.r1.include-cipher-suites:",
            "TLS_RSA_WITH_AES_128_CBC_SHA, TLS_BOGUS",
        ],
    );

    // Only TLS 1.3 suites while only TLS 1.2 is allowed: nothing to offer.
    let (tls, d) = server_with(
        pki,
        &[
            ("include-protocols", "TLSv1.2"),
            ("include-cipher-suites", "TLS_AES_128_GCM_SHA256"),
        ],
    );
    assert!(tls.is_none());
    assert_one_error(&d, &["include-cipher-suites:", "no cipher suite left"]);

    // Excluding a suite rustls never offers is fine; excluding them all is not.
    let (tls, d) = server_with(
        pki,
        &[("exclude-cipher-suites", "TLS_RSA_WITH_RC4_128_MD5")],
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    assert!(tls.is_some());
    let (_, d) = server_with(pki, &[("exclude-cipher-suites", "nonsense")]);
    assert_one_error(&d, &["a1.sources.r1.exclude-cipher-suites:", "nonsense"]);
}

#[test]
fn client_auth_needs_a_truststore_and_a_truststore_needs_client_auth() {
    let pki = shared();
    let (tls, d) = server_with(pki, &[("client-auth", "required")]);
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.client-auth:", "needs a truststore"]);

    let ts = pki.truststore_p12();
    let (tls, d) = server_with(
        pki,
        &[("truststore", s(&ts)), ("truststore-password", PASSWORD)],
    );
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.truststore:", "client-auth = required"]);

    let (tls, d) = server_with(pki, &[("client-auth", "sometimes")]);
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.client-auth:", "sometimes"]);
}

#[test]
fn trust_all_certs_with_a_truststore_is_a_contradiction() {
    let pki = shared();
    let ts = pki.truststore_p12();
    let (tls, d) = client(
        &[
            ("ssl", "true"),
            ("trust-all-certs", "true"),
            ("truststore", s(&ts)),
        ],
        &no_defaults(),
    );
    assert!(tls.is_none());
    assert_one_error(&d, &["a1.sources.r1.trust-all-certs:", "contradicts"]);
}

#[test]
fn settings_compare_equal_by_what_is_written() {
    let pki = shared();
    let ks = pki.keystore_p12("server", "localhost");
    let pairs = [
        ("ssl", "true"),
        ("keystore", s(&ks)),
        ("keystore-password", PASSWORD),
    ];
    let (a, _) = server(&pairs, &no_defaults());
    let (b, _) = server(&pairs, &no_defaults());
    let (c, _) = server_with(pki, &[("include-protocols", "TLSv1.3")]);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_verify_the_server_and_honour_protocols() {
    let pki = shared();
    let (tls, d) = server_with(pki, &[]);
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let tls = tls.expect("ServerTls");
    let trusting = client_trusting(pki, &[]);

    // By name and by address: the certificate carries both.
    for name in ["localhost", "127.0.0.1"] {
        let o = connect(tls.acceptor(), trusting.client_config(), name).await;
        assert_eq!(o.client.as_deref(), Ok("localhost"), "{name}: {o:?}");
        assert_eq!(o.server, Ok(()));
    }
    // Hostname verification: a name the certificate does not carry is refused.
    let o = connect(tls.acceptor(), trusting.client_config(), "example.com").await;
    assert!(o.client.is_err(), "{o:?}");
    assert!(o.server.is_err(), "{o:?}");

    // Another CA's truststore refuses the server; trust-all-certs lets it through.
    let other = shared_other();
    let o = connect(
        tls.acceptor(),
        client_trusting(other, &[]).client_config(),
        "localhost",
    )
    .await;
    assert!(
        o.client
            .as_ref()
            .is_err_and(|e| e.contains("UnknownIssuer")),
        "{o:?}"
    );
    let (all, _) = client(
        &[("ssl", "true"), ("trust-all-certs", "true")],
        &no_defaults(),
    );
    let o = connect(
        tls.acceptor(),
        all.expect("ClientTls").client_config(),
        "example.com",
    )
    .await;
    assert_eq!(o.client.as_deref(), Ok("localhost"), "{o:?}");

    // A server offering only TLS 1.3 and a client offering only TLS 1.2 do not meet.
    let (only13, d) = server_with(pki, &[("include-protocols", "TLSv1.3")]);
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let only12 = client_trusting(pki, &[("include-protocols", "TLSv1.2")]);
    let o = connect(
        only13.expect("ServerTls").acceptor(),
        only12.client_config(),
        "localhost",
    )
    .await;
    assert!(o.client.is_err() && o.server.is_err(), "{o:?}");
    let o = connect(tls.acceptor(), only12.client_config(), "localhost").await;
    assert_eq!(o.client.as_deref(), Ok("localhost"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_rustls_peers_talk_to_the_agents_configs() {
    let pki = shared();
    let (tls, d) = server_with(pki, &[]);
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let client = common::tls::rustls_client_trusting(&pki.ca_pem());
    let o = connect(tls.expect("ServerTls").acceptor(), client, "localhost").await;
    assert_eq!(o.client.as_deref(), Ok("localhost"), "{o:?}");

    let server = common::tls::rustls_server(&pki.keystore_pem("pem-server", "pem-server"));
    let o = connect(
        TlsAcceptor::from(server),
        client_trusting(pki, &[]).client_config(),
        "localhost",
    )
    .await;
    assert_eq!(o.client.as_deref(), Ok("pem-server"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_from_the_truststore_ca() {
    let pki = shared();
    let ts = pki.truststore_p12();
    let (tls, d) = server_with(
        pki,
        &[
            ("client-auth", "required"),
            ("truststore", s(&ts)),
            ("truststore-password", PASSWORD),
        ],
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let tls = tls.expect("ServerTls");
    assert!(tls.client_auth_required());

    let anonymous = client_trusting(pki, &[]);
    let o = connect(tls.acceptor(), anonymous.client_config(), "localhost").await;
    assert!(o.server.is_err(), "{o:?}");
    assert!(o.client.is_err(), "{o:?}");

    let client_pem = pki.keystore_pem("client", "sluice-client");
    let with_cert = client_trusting(
        pki,
        &[("keystore", s(&client_pem)), ("keystore-type", "PEM")],
    );
    let o = connect(tls.acceptor(), with_cert.client_config(), "localhost").await;
    assert_eq!(o.client.as_deref(), Ok("localhost"), "{o:?}");
    assert_eq!(o.server, Ok(()));

    // A client certificate from another CA is refused.
    let other = shared_other();
    let stranger_pem = other.keystore_pem("client", "stranger");
    let stranger = client_trusting(pki, &[("keystore", s(&stranger_pem))]);
    let o = connect(tls.acceptor(), stranger.client_config(), "localhost").await;
    assert!(o.server.is_err(), "{o:?}");
}

/// Replaces `target` with `source` the way deployment tools do: write beside, then rename.
fn replace_file(source: &Path, target: &Path) {
    let tmp = target.with_extension("tmp");
    std::fs::copy(source, &tmp).expect("copy");
    std::fs::rename(&tmp, target).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_keystore_serves_new_connections_and_a_bad_one_keeps_the_old() {
    let pki = TestPki::new("Sluice");
    let first = pki.keystore_p12("first", "first");
    let second = pki.keystore_p12("second", "second");
    let live = pki.dir().join("live.p12");
    std::fs::copy(&first, &live).expect("copy");
    let (tls, d) = server(
        &[
            ("ssl", "true"),
            ("keystore", s(&live)),
            ("keystore-password", PASSWORD),
        ],
        &no_defaults(),
    );
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let tls = tls.expect("ServerTls");
    let client = client_trusting(&pki, &[]);
    let o = connect(tls.acceptor(), client.client_config(), "localhost").await;
    assert_eq!(o.client.as_deref(), Ok("first"), "{o:?}");

    replace_file(&second, &live);
    // The files are looked at once per check interval.
    tokio::time::sleep(agent::tls::CHECK_INTERVAL + Duration::from_millis(200)).await;
    let o = connect(tls.acceptor(), client.client_config(), "localhost").await;
    assert_eq!(o.client.as_deref(), Ok("second"), "{o:?}");
    assert_eq!((tls.reloads(), tls.reload_failures()), (1, 0));

    // A broken file (here rewritten in place): the previous certificate stays, counted.
    std::fs::write(&live, b"not a keystore").expect("write");
    tokio::time::sleep(agent::tls::CHECK_INTERVAL + Duration::from_millis(200)).await;
    let o = connect(tls.acceptor(), client.client_config(), "localhost").await;
    assert_eq!(o.client.as_deref(), Ok("second"), "{o:?}");
    assert_eq!((tls.reloads(), tls.reload_failures()), (1, 1));

    // Fixed again: picked up.
    replace_file(&first, &live);
    tokio::time::sleep(agent::tls::CHECK_INTERVAL + Duration::from_millis(200)).await;
    let o = connect(tls.acceptor(), client.client_config(), "localhost").await;
    assert_eq!(o.client.as_deref(), Ok("first"), "{o:?}");
    assert_eq!((tls.reloads(), tls.reload_failures()), (2, 1));
}
