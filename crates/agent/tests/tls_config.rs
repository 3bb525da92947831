//! The TLS configuration of sources and sinks (issue 15) against keystores made by `keytool`
//! and `openssl`: what loads, what is refused at configuration time and with which message,
//! the agent-wide defaults, protocol and cipher-suite keys, and certificate rotation seen
//! through real handshakes on 127.0.0.1.

mod common;

use agent::config::context::{Ctx, Entry};
use agent::config::problem::Diagnostics;
use agent::tls::{ClientTls, ServerTls, TlsDefaults};
use common::tls::{TestPki, PASSWORD};
use std::path::Path;

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
    let pki = TestPki::new("Sluice");
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
    let pki = TestPki::new("Sluice");
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
    let pki = TestPki::new("Sluice");
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
    let pki = TestPki::new("Sluice");
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
    let pki = TestPki::new("Sluice");
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
    let pki = TestPki::new("Sluice");
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
    let pki = TestPki::new("Sluice");
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
