//! The librdkafka properties the security keys produce, and the refusals, by key and line.

use super::*;
use crate::kafka::{client_properties, Role};
use crate::sink::test_support::{ctx, entries};
use std::path::PathBuf;
use std::process::Command;

/// The properties and the error messages (`key: message`) for `pairs` on a producer.
fn map(pairs: &[(&str, &str)]) -> (Vec<(String, String)>, Vec<String>) {
    let list = entries(pairs);
    let c = ctx(&list);
    let props = client_properties(&c, Role::Producer, &[]);
    let got = props
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    let errors = c
        .finish("kafka sink k1")
        .errors
        .iter()
        .map(|p| {
            format!(
                "{}:{}: {}",
                p.line.unwrap_or(0),
                p.key.as_deref().unwrap_or(""),
                p.message
            )
        })
        .collect();
    (got, errors)
}

fn pairs_of(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"pw-secret-1\";";
const SCRAM_JAAS: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"pw-secret-2\";";

#[test]
fn sasl_plaintext_with_plain_and_scram_gives_username_and_password() {
    let (props, errors) = map(&[
        ("kafka.producer.security.protocol", "sasl_plaintext"),
        ("kafka.producer.sasl.mechanism", "PLAIN"),
        ("kafka.producer.sasl.jaas.config", PLAIN_JAAS),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        props,
        pairs_of(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "pw-secret-1"),
        ])
    );
    for mechanism in ["SCRAM-SHA-256", "scram-sha-512"] {
        let (props, errors) = map(&[
            ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
            ("kafka.producer.sasl.mechanism", mechanism),
            ("kafka.producer.sasl.jaas.config", SCRAM_JAAS),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            props[1],
            ("sasl.mechanism".to_owned(), mechanism.to_ascii_uppercase())
        );
        assert_eq!(props[2].1, "bob");
    }
}

#[test]
fn a_password_never_shows_in_debug_or_errors() {
    let list = entries(&[
        ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
        ("kafka.producer.sasl.mechanism", "PLAIN"),
        ("kafka.producer.sasl.jaas.config", PLAIN_JAAS),
    ]);
    let c = ctx(&list);
    let props = client_properties(&c, Role::Producer, &[]);
    assert!(format!("{props:?}").contains("<redacted>"));
    assert!(!format!("{props:?}").contains("pw-secret-1"));
    // Wrong module, extra option, unterminated quote: the password stays out of every message.
    for jaas in [
        SCRAM_JAAS.replace("pw-secret-2", "pw-secret-1"),
        PLAIN_JAAS.replace(';', " extra=\"pw-secret-1\";"),
        PLAIN_JAAS.trim_end_matches("\";").to_owned(),
    ] {
        let (_, errors) = map(&[
            ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
            ("kafka.producer.sasl.mechanism", "PLAIN"),
            ("kafka.producer.sasl.jaas.config", &jaas),
        ]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("4:a1.sinks.k1.kafka.producer.sasl.jaas.config: "),
            "{errors:?}"
        );
        assert!(!errors[0].contains("pw-secret-1"), "{errors:?}");
    }
}

/// Keys given, the key the error must name, and a piece of its message.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn mechanism_and_module_must_agree_and_kerberos_and_oauth_are_refused() {
    let cases: &[Case<'_>] = &[
        (
            &[
                ("kafka.producer.security.protocol", "SASL_SSL"),
                ("kafka.producer.sasl.jaas.config", PLAIN_JAAS),
            ],
            "kafka.producer.sasl.mechanism",
            "GSSAPI (Kerberos)",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
                ("kafka.producer.sasl.mechanism", "SCRAM-SHA-256"),
                ("kafka.producer.sasl.jaas.config", PLAIN_JAAS),
            ],
            "kafka.producer.sasl.jaas.config",
            "names PlainLoginModule but kafka.producer.sasl.mechanism is SCRAM-SHA-256",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
                ("kafka.producer.sasl.mechanism", "GSSAPI"),
            ],
            "kafka.producer.sasl.mechanism",
            "Sluice does not implement Kerberos",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
                ("kafka.producer.sasl.mechanism", "OAUTHBEARER"),
            ],
            "kafka.producer.sasl.mechanism",
            "OAUTHBEARER is not supported",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
                ("kafka.producer.sasl.mechanism", "PLAIN"),
                (
                    "kafka.producer.sasl.jaas.config",
                    "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;",
                ),
            ],
            "kafka.producer.sasl.jaas.config",
            "Kerberos is not supported",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
                ("kafka.producer.sasl.mechanism", "PLAIN"),
            ],
            "kafka.producer.sasl.jaas.config",
            "is required for SASL/PLAIN",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
                ("kafka.producer.sasl.mechanism", "PLAIN"),
                ("kafka.producer.sasl.jaas.config", PLAIN_JAAS),
                ("kafka.producer.sasl.kerberos.service.name", "kafka"),
            ],
            "kafka.producer.sasl.kerberos.service.name",
            "Kerberos (GSSAPI) needs Cyrus SASL",
        ),
        (
            &[("kafka.producer.security.protocol", "TLS")],
            "kafka.producer.security.protocol",
            "unknown security protocol \"TLS\"",
        ),
        (
            &[
                ("kafka.producer.sasl.mechanism", "PLAIN"),
                ("kafka.producer.sasl.jaas.config", PLAIN_JAAS),
            ],
            "kafka.producer.sasl.mechanism",
            "has no effect unless kafka.producer.security.protocol is SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
                ("kafka.producer.ssl.truststore.location", "/x"),
            ],
            "kafka.producer.ssl.truststore.location",
            "has no effect unless kafka.producer.security.protocol is SSL or SASL_SSL",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SSL"),
                ("kafka.producer.ssl.enabled.protocols", "TLSv1.2"),
            ],
            "kafka.producer.ssl.enabled.protocols",
            "no setting for the TLS protocol versions",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SSL"),
                ("kafka.producer.ssl.no.such.thing", "1"),
            ],
            "kafka.producer.ssl.no.such.thing",
            "never passed on unexamined",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SSL"),
                (
                    "kafka.producer.ssl.endpoint.identification.algorithm",
                    "dns",
                ),
            ],
            "kafka.producer.ssl.endpoint.identification.algorithm",
            "unknown algorithm \"dns\"",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SSL"),
                (
                    "kafka.producer.ssl.truststore.location",
                    "/no/such/truststore.p12",
                ),
            ],
            "kafka.producer.ssl.truststore.location",
            "cannot read /no/such/truststore.p12",
        ),
        (
            &[
                ("kafka.producer.security.protocol", "SSL"),
                (
                    "kafka.producer.ssl.keystore.location",
                    "/no/such/keystore.p12",
                ),
                ("kafka.producer.ssl.keystore.password", "pw-secret-3"),
            ],
            "kafka.producer.ssl.keystore.location",
            "cannot read /no/such/keystore.p12",
        ),
    ];
    for (pairs, key, needle) in cases {
        let (props, errors) = map(pairs);
        let line = pairs
            .iter()
            .position(|(k, _)| k == key)
            .map_or(1, |i| i + 2);
        let wanted = format!("{line}:a1.sinks.k1.{key}: ");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&wanted) && e.contains(needle)),
            "{pairs:?}: want {wanted}…{needle} in {errors:?}"
        );
        assert!(
            !props.iter().any(|(n, _)| n.starts_with("sasl.")),
            "{pairs:?} gave {props:?}"
        );
        assert!(
            errors.iter().all(|e| !e.contains("pw-secret")),
            "{errors:?}"
        );
    }
}

#[test]
fn plaintext_and_java_defaults_ask_for_nothing() {
    let (props, errors) = map(&[
        ("kafka.producer.security.protocol", "PLAINTEXT"),
        ("kafka.producer.linger.ms", "3"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        props,
        pairs_of(&[("security.protocol", "plaintext"), ("linger.ms", "3")])
    );
    let (props, errors) = map(&[
        ("kafka.producer.security.protocol", "SSL"),
        ("kafka.producer.ssl.keymanager.algorithm", "SunX509"),
        ("kafka.producer.ssl.endpoint.identification.algorithm", ""),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        props,
        pairs_of(&[
            ("security.protocol", "ssl"),
            ("ssl.endpoint.identification.algorithm", "none"),
        ])
    );
    let (props, errors) = map(&[
        ("kafka.producer.security.protocol", "SSL"),
        ("kafka.producer.ssl.disableTLSHostnameVerification", "true"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(props[1].1, "none");
    let (props, _) = map(&[("kafka.producer.security.protocol", "ssl")]);
    assert_eq!(
        props,
        pairs_of(&[
            ("security.protocol", "ssl"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ]),
        "host names are checked by default, as in Java"
    );
}

/// A directory with a CA certificate made by openssl (`ca.pem`) and a PKCS12 truststore made
/// from it by keytool (`ts.p12`, password `changeit`); `None` (printed) when a tool is missing
/// unless SLUICE_REQUIRE_INTEROP=1.
fn stores() -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |program: &str, args: &[&str]| -> Option<()> {
        match Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .output()
        {
            Ok(out) if out.status.success() => Some(()),
            Ok(out) => panic!(
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => {
                assert!(
                    std::env::var("SLUICE_REQUIRE_INTEROP").as_deref() != Ok("1"),
                    "{program} is needed: {e}"
                );
                eprintln!("skipped: {program} is not installed ({e})");
                None
            }
        }
    };
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=unit-ca",
        ],
    )?;
    run(
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            "ca.pem",
            "-keystore",
            "ts.p12",
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
        ],
    )?;
    let pem = dir.path().join("ca.pem");
    let p12 = dir.path().join("ts.p12");
    Some((dir, pem, p12))
}

#[test]
fn truststores_become_ca_location_or_ca_pem_and_a_wrong_password_names_its_key() {
    let Some((_dir, pem, p12)) = stores() else {
        return;
    };
    let pem_text = std::fs::read_to_string(&pem).unwrap();
    let (props, errors) = map(&[
        ("kafka.producer.security.protocol", "SSL"),
        (
            "kafka.producer.ssl.truststore.location",
            pem.to_str().unwrap(),
        ),
        ("kafka.producer.ssl.truststore.type", "PEM"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        props[1],
        ("ssl.ca.location".to_owned(), pem.display().to_string())
    );
    let (props, errors) = map(&[
        ("kafka.producer.security.protocol", "SASL_SSL"),
        ("kafka.producer.sasl.mechanism", "SCRAM-SHA-512"),
        ("kafka.producer.sasl.jaas.config", SCRAM_JAAS),
        (
            "kafka.producer.ssl.truststore.location",
            p12.to_str().unwrap(),
        ),
        ("kafka.producer.ssl.truststore.password", "changeit"),
        ("kafka.producer.ssl.truststore.type", "PKCS12"),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    let ca_pem = props
        .iter()
        .find(|(n, _)| n == "ssl.ca.pem")
        .map(|(_, v)| v.clone())
        .expect("ssl.ca.pem");
    // The certificate keytool stored is the one openssl wrote (PEM bodies compared without
    // line breaks).
    let body = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert_eq!(body(&ca_pem), body(&pem_text));
    let (_, errors) = map(&[
        ("kafka.producer.security.protocol", "SSL"),
        (
            "kafka.producer.ssl.truststore.location",
            p12.to_str().unwrap(),
        ),
        ("kafka.producer.ssl.truststore.password", "wrong-pw"),
    ]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "4:a1.sinks.k1.kafka.producer.ssl.truststore.password: wrong password for"
        ),
        "{errors:?}"
    );
    assert!(!errors[0].contains("wrong-pw"), "{errors:?}");
    // A truststore given as a keystore has no private key: refused on the keystore's key.
    let (_, errors) = map(&[
        ("kafka.producer.security.protocol", "SSL"),
        (
            "kafka.producer.ssl.keystore.location",
            p12.to_str().unwrap(),
        ),
        ("kafka.producer.ssl.keystore.password", "changeit"),
    ]);
    assert!(
        errors.len() == 1
            && errors[0].starts_with("3:a1.sinks.k1.kafka.producer.ssl.keystore.location: ")
            && errors[0].contains("no private key"),
        "{errors:?}"
    );
}

#[test]
fn base64_matches_the_standard_alphabet_and_padding() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0x00]), "//79AA==");
}
