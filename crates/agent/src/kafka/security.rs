//! Kafka's security keys (`security.protocol`, `ssl.*`, `sasl.*` under `kafka.producer.` or
//! `kafka.consumer.`) mapped explicitly onto librdkafka's properties. Nothing is passed through
//! unexamined: every key is either mapped here, accepted as a Java default that changes
//! nothing, or refused with the reason.
//!
//! - `security.protocol`: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` (any case, as Java).
//! - TLS (`SSL`, `SASL_SSL`): the truststore (PKCS12 or PEM; a real JKS file is refused with
//!   the `keytool` command that converts it) is read and checked with the agent's keystore code
//!   (`crate::tls`) when the configuration is read; PEM becomes `ssl.ca.location`, PKCS12 the
//!   certificates it holds as `ssl.ca.pem`. A keystore (mutual TLS) is checked the same way
//!   (password, private key, validity dates) and becomes `ssl.keystore.location/password`
//!   (PKCS12) or `ssl.certificate.location` + `ssl.key.location` (PEM). Without a truststore
//!   or keystore of its own, a component takes the agent-wide defaults (`-Djavax.net.ssl.*`,
//!   `FLUME_SSL_*`) as Flume's `KafkaSSLUtil` does, and without those OpenSSL's default CAs
//!   (Java's `cacerts`). Host names are checked unless `ssl.endpoint.identification.algorithm`
//!   is empty (or Flume's `ssl.disableTLSHostnameVerification = true`).
//! - SASL (`SASL_PLAINTEXT`, `SASL_SSL`): `sasl.mechanism` `PLAIN`, `SCRAM-SHA-256` or
//!   `SCRAM-SHA-512` with the credentials of `sasl.jaas.config` ([`super::jaas`]); GSSAPI
//!   (Kerberos, Java's default mechanism) and OAUTHBEARER are refused.
//! - An `ssl.*` key without a TLS protocol, or a `sasl.*` key without a SASL protocol, is an
//!   error: Java would ignore it, and the operator would believe the connection protected.
//!
//! Problems are recorded on the key (with its line); passwords never appear in them.

use super::jaas::{self, LoginModule};
use super::{ClientProperty, Role};
use crate::config::context::{Ctx, Entry};
use crate::tls::{self, TlsDefaults, TlsError};
use std::path::Path;

/// What `security.protocol` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl Protocol {
    /// Java's name (case-insensitive).
    pub fn parse(value: &str) -> Option<Protocol> {
        match value.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    /// librdkafka's name.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether connections use TLS.
    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// The SASL mechanisms librdkafka is built with here (no Cyrus SASL, so no GSSAPI).
pub const SUPPORTED_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The librdkafka properties whose values are secrets: never shown by `Debug` or in messages.
pub const SECRET_PROPERTIES: &[&str] = &[
    "sasl.password",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.key.pem",
];

/// Java security keys accepted when they name Java's default, which describes what librdkafka
/// does anyway.
const JAVA_DEFAULTS: &[(&str, &str)] = &[
    ("ssl.keymanager.algorithm", "SunX509"),
    ("ssl.trustmanager.algorithm", "PKIX"),
];

/// The keys this module maps.
const MAPPED: &[&str] = &[
    "security.protocol",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "ssl.disableTLSHostnameVerification",
    "sasl.mechanism",
    "sasl.jaas.config",
];

/// Why a known Java security key cannot be honoured; `None` for keys this module maps.
fn refusal(name: &str) -> Option<String> {
    let kerberos = "Kerberos (GSSAPI) needs Cyrus SASL, which this build's librdkafka does not \
                    have, and Sluice does not implement Kerberos";
    let reason = match name {
        "ssl.enabled.protocols" | "ssl.protocol" => "librdkafka has no setting for the TLS \
             protocol versions; OpenSSL's own minimum applies (TLSv1.2 on Debian). Remove the key"
            .to_owned(),
        "ssl.cipher.suites" => "librdkafka takes OpenSSL cipher names (its ssl.cipher.suites), \
             not Java's; remove the key"
            .to_owned(),
        "ssl.truststore.certificates" | "ssl.keystore.certificate.chain" | "ssl.keystore.key" => {
            "inline PEM is not read; put the PEM in a file and set ssl.truststore.location / \
             ssl.keystore.location with type PEM"
                .to_owned()
        }
        "ssl.provider"
        | "ssl.secure.random.implementation"
        | "ssl.engine.factory.class"
        | "ssl.keymanager.algorithm"
        | "ssl.trustmanager.algorithm" => {
            "it names a Java security provider or class, which librdkafka (OpenSSL) cannot use"
                .to_owned()
        }
        _ if name.starts_with("sasl.kerberos.") => kerberos.to_owned(),
        _ if name.starts_with("sasl.oauthbearer.") => {
            "SASL/OAUTHBEARER is not supported; use PLAIN or SCRAM".to_owned()
        }
        _ if name.starts_with("sasl.login.") || name.starts_with("sasl.client.") => {
            "it configures Java login classes or callbacks, which librdkafka cannot use".to_owned()
        }
        _ if MAPPED.contains(&name) => return None,
        _ => format!(
            "not a Kafka security property Sluice maps onto librdkafka (known: {}); security \
             keys are never passed on unexamined",
            MAPPED.join(", ")
        ),
    };
    Some(reason)
}

/// One store's keys, explicit or from the agent-wide defaults.
struct Store {
    path: String,
    password: Option<String>,
    /// The key the path came from, for messages (a `-D` property or variable when defaulted).
    origin: String,
}

/// Reads the security keys among `keys` (relative to `role`'s prefix, all of them matching
/// [`crate::config::security::security_family`]) and returns librdkafka's properties for them.
pub fn security_properties(
    ctx: &Ctx<'_>,
    role: Role,
    keys: &[(&str, &Entry)],
) -> Vec<ClientProperty> {
    let prefix = role.prefix();
    let key_of = |name: &str| format!("{prefix}{name}");
    let get = |name: &str| {
        keys.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.value.trim().to_owned())
    };
    let mut out = Vec::new();
    let mut push = |name: &str, value: String, from: &str| {
        out.push(ClientProperty {
            name: name.to_owned(),
            value,
            key: key_of(from),
        })
    };

    let protocol = match get("security.protocol") {
        None => Protocol::Plaintext,
        Some(v) => match Protocol::parse(&v) {
            Some(p) => p,
            None => {
                ctx.error(
                    &key_of("security.protocol"),
                    format!(
                        "unknown security protocol \"{v}\"; expected PLAINTEXT, SSL, \
                         SASL_PLAINTEXT or SASL_SSL"
                    ),
                );
                return Vec::new();
            }
        },
    };
    let mut ok = true;
    for (name, _) in keys {
        let key = key_of(name);
        if let Some((_, default)) = JAVA_DEFAULTS.iter().find(|(n, _)| n == name) {
            let value = get(name).unwrap_or_default();
            if value == *default {
                continue;
            }
        }
        if let Some(why) = refusal(name) {
            ctx.error(&key, format!("not supported: {why}"));
            ok = false;
            continue;
        }
        if name.starts_with("ssl.") && !protocol.tls() {
            ctx.error(
                &key,
                format!(
                    "has no effect unless {prefix}security.protocol is SSL or SASL_SSL (it is {}); \
                     set the protocol, or remove the key",
                    protocol.librdkafka_name().to_ascii_uppercase()
                ),
            );
            ok = false;
        }
        if name.starts_with("sasl.") && !protocol.sasl() {
            ctx.error(
                &key,
                format!(
                    "has no effect unless {prefix}security.protocol is SASL_PLAINTEXT or SASL_SSL \
                     (it is {}); set the protocol, or remove the key",
                    protocol.librdkafka_name().to_ascii_uppercase()
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return Vec::new();
    }
    if get("security.protocol").is_some() || protocol != Protocol::Plaintext {
        push(
            "security.protocol",
            protocol.librdkafka_name().to_owned(),
            "security.protocol",
        );
    }
    if protocol.tls() {
        tls_properties(ctx, prefix, &get, &mut push);
    }
    if protocol.sasl() {
        sasl_properties(ctx, prefix, &get, &mut push);
    }
    out
}

fn tls_properties(
    ctx: &Ctx<'_>,
    prefix: &str,
    get: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(&str, String, &str),
) {
    let key_of = |name: &str| format!("{prefix}{name}");
    let defaults = TlsDefaults::for_context(ctx);
    let store = |kind: &str,
                 d_path: &Option<String>,
                 d_pw: &Option<String>,
                 d_type: &Option<String>,
                 d_from: &str| {
        let loc = format!("ssl.{kind}.location");
        let own = get(&loc);
        if own.as_deref() == Some("") {
            ctx.error(&key_of(&loc), "must not be empty");
            return None;
        }
        let explicit = own.is_some();
        let path = own.or_else(|| d_path.clone())?;
        let password = get(&format!("ssl.{kind}.password"))
            .or_else(|| if explicit { None } else { d_pw.clone() })
            .filter(|p| !p.is_empty());
        let store_type = get(&format!("ssl.{kind}.type"))
            .or_else(|| if explicit { None } else { d_type.clone() })
            .unwrap_or_else(|| "JKS".into());
        if !tls::KNOWN_STORE_TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&store_type))
        {
            ctx.error(
                &key_of(&format!("ssl.{kind}.type")),
                format!(
                    "unknown store type \"{store_type}\": expected PKCS12 or PEM (a JKS-typed \
                     PKCS12 file is read as PKCS12; convert a real JKS file with keytool \
                     -importkeystore -deststoretype pkcs12)"
                ),
            );
            return None;
        }
        Some(Store {
            path,
            password,
            origin: if explicit {
                key_of(&loc)
            } else {
                d_from.to_owned()
            },
        })
    };
    let report = |kind: &str, s: &Store, e: &TlsError| {
        let sub = match e {
            TlsError::WrongPassword { .. } | TlsError::MissingPassword { .. } => {
                format!("ssl.{kind}.password")
            }
            _ => format!("ssl.{kind}.location"),
        };
        let origin = if s.origin.starts_with(prefix) {
            String::new()
        } else {
            format!(" (the {kind} from {})", s.origin)
        };
        ctx.error(&key_of(&sub), format!("{e}{origin}"));
    };

    if let Some(ts) = store(
        "truststore",
        &defaults.truststore_path,
        &defaults.truststore_password,
        &defaults.truststore_type,
        "javax.net.ssl.trustStore / FLUME_SSL_TRUSTSTORE_PATH",
    ) {
        let path = Path::new(&ts.path);
        match tls::load_truststore(path, ts.password.as_deref()) {
            Err(e) => report("truststore", &ts, &e),
            Ok(certs) => {
                if tls::is_pkcs12_file(path) {
                    push(
                        "ssl.ca.pem",
                        pem_certificates(&certs),
                        "ssl.truststore.location",
                    );
                } else if ts.password.is_some() && get("ssl.truststore.password").is_some() {
                    ctx.error(
                        &key_of("ssl.truststore.password"),
                        format!(
                            "{} is PEM, which has no password (as in Kafka); remove the key",
                            ts.path
                        ),
                    );
                } else {
                    push(
                        "ssl.ca.location",
                        ts.path.clone(),
                        "ssl.truststore.location",
                    );
                }
            }
        }
    }

    if let Some(ks) = store(
        "keystore",
        &defaults.keystore_path,
        &defaults.keystore_password,
        &defaults.keystore_type,
        "javax.net.ssl.keyStore / FLUME_SSL_KEYSTORE_PATH",
    ) {
        let path = Path::new(&ks.path);
        let key_password = get("ssl.key.password").filter(|p| !p.is_empty());
        match tls::check_keystore(path, ks.password.as_deref()) {
            Err(e) => report("keystore", &ks, &e),
            Ok(()) if tls::is_pkcs12_file(path) => {
                if key_password.is_some() && key_password != ks.password {
                    ctx.error(
                        &key_of("ssl.key.password"),
                        "librdkafka opens a PKCS12 keystore with one password: ssl.key.password \
                         must equal ssl.keystore.password (keytool's default), or be removed",
                    );
                } else {
                    push(
                        "ssl.keystore.location",
                        ks.path.clone(),
                        "ssl.keystore.location",
                    );
                    push(
                        "ssl.keystore.password",
                        ks.password.clone().unwrap_or_default(),
                        "ssl.keystore.password",
                    );
                }
            }
            Ok(()) => {
                if key_password.is_some() {
                    ctx.error(
                        &key_of("ssl.key.password"),
                        format!(
                            "the private key in {} is not encrypted (encrypted PEM keys are \
                             refused); remove the key",
                            ks.path
                        ),
                    );
                } else {
                    push(
                        "ssl.certificate.location",
                        ks.path.clone(),
                        "ssl.keystore.location",
                    );
                    push("ssl.key.location", ks.path.clone(), "ssl.keystore.location");
                }
            }
        }
    } else if get("ssl.key.password").is_some() {
        ctx.error(
            &key_of("ssl.key.password"),
            "a key password without ssl.keystore.location; set the keystore, or remove the key",
        );
    }

    let disable = get("ssl.disableTLSHostnameVerification");
    let algorithm = get("ssl.endpoint.identification.algorithm");
    let verify = match (algorithm.as_deref(), disable.as_deref()) {
        (Some(a), _) if !a.is_empty() && !a.eq_ignore_ascii_case("https") => {
            ctx.error(
                &key_of("ssl.endpoint.identification.algorithm"),
                format!("unknown algorithm \"{a}\"; expected https (host names checked) or empty (not checked)"),
            );
            return;
        }
        (_, Some(d)) if !d.eq_ignore_ascii_case("true") && !d.eq_ignore_ascii_case("false") => {
            ctx.error(
                &key_of("ssl.disableTLSHostnameVerification"),
                format!("expected true or false, got \"{d}\""),
            );
            return;
        }
        (Some(a), Some(d)) if a.is_empty() != d.eq_ignore_ascii_case("true") => {
            ctx.error(
                &key_of("ssl.disableTLSHostnameVerification"),
                "contradicts ssl.endpoint.identification.algorithm; keep one of the two keys",
            );
            return;
        }
        (Some(a), _) => !a.is_empty(),
        (None, Some(d)) => !d.eq_ignore_ascii_case("true"),
        (None, None) => true,
    };
    let from = if algorithm.is_none() && disable.is_some() {
        "ssl.disableTLSHostnameVerification"
    } else {
        "ssl.endpoint.identification.algorithm"
    };
    push(
        "ssl.endpoint.identification.algorithm",
        if verify { "https" } else { "none" }.to_owned(),
        from,
    );
}

fn sasl_properties(
    ctx: &Ctx<'_>,
    prefix: &str,
    get: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(&str, String, &str),
) {
    let key_of = |name: &str| format!("{prefix}{name}");
    let mechanism = match get("sasl.mechanism") {
        None => {
            ctx.error(
                &key_of("sasl.mechanism"),
                format!(
                    "is required with a SASL protocol: Kafka's default, GSSAPI (Kerberos), needs \
                     Cyrus SASL, which this build's librdkafka does not have; set one of {}",
                    SUPPORTED_MECHANISMS.join(", ")
                ),
            );
            return;
        }
        Some(m) => m.to_ascii_uppercase(),
    };
    let expected_module = match mechanism.as_str() {
        "PLAIN" => LoginModule::Plain,
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => LoginModule::Scram,
        "GSSAPI" => {
            ctx.error(
                &key_of("sasl.mechanism"),
                "GSSAPI (Kerberos) needs Cyrus SASL, which this build's librdkafka does not have, \
                 and Sluice does not implement Kerberos; use PLAIN or SCRAM",
            );
            return;
        }
        "OAUTHBEARER" => {
            ctx.error(
                &key_of("sasl.mechanism"),
                "OAUTHBEARER is not supported (its token providers are Java classes); use PLAIN \
                 or SCRAM",
            );
            return;
        }
        other => {
            ctx.error(
                &key_of("sasl.mechanism"),
                format!(
                    "unknown mechanism \"{other}\"; expected one of {}",
                    SUPPORTED_MECHANISMS.join(", ")
                ),
            );
            return;
        }
    };
    let jaas_key = key_of("sasl.jaas.config");
    let Some(text) = get("sasl.jaas.config") else {
        ctx.error(
            &jaas_key,
            format!(
                "is required for SASL/{mechanism}: the credentials as a JAAS line, e.g. {} \
                 required username=\"...\" password=\"...\"; (a JAAS file given with \
                 -Djava.security.auth.login.config is not read)",
                match expected_module {
                    LoginModule::Plain => jaas::PLAIN_MODULE,
                    _ => jaas::SCRAM_MODULE,
                }
            ),
        );
        return;
    };
    let login = match jaas::parse(&text) {
        Ok(l) => l,
        Err(e) => {
            ctx.error(&jaas_key, e.to_string());
            return;
        }
    };
    match (&login.module, &expected_module) {
        (LoginModule::Plain, LoginModule::Plain) | (LoginModule::Scram, LoginModule::Scram) => {}
        (LoginModule::Other(class), _) => {
            let why = if class.contains("Krb5") || class.contains("Kerberos") {
                "Kerberos is not supported (no Cyrus SASL in this build's librdkafka)"
            } else if class.contains("OAuthBearer") {
                "OAUTHBEARER is not supported"
            } else {
                "only PlainLoginModule and ScramLoginModule are understood"
            };
            ctx.error(&jaas_key, format!("login module {class}: {why}"));
            return;
        }
        (found, _) => {
            let name = |m: &LoginModule| match m {
                LoginModule::Plain => "PlainLoginModule",
                LoginModule::Scram => "ScramLoginModule",
                LoginModule::Other(_) => "another module",
            };
            ctx.error(
                &jaas_key,
                format!(
                    "names {} but {prefix}sasl.mechanism is {mechanism}, which needs {}",
                    name(found),
                    name(&expected_module)
                ),
            );
            return;
        }
    }
    let mut ok = true;
    for (option, _) in &login.options {
        if option != "username" && option != "password" {
            ctx.error(
                &jaas_key,
                format!("option {option} is not supported (only username and password are)"),
            );
            ok = false;
        }
    }
    let (Some(username), Some(password)) = (login.option("username"), login.option("password"))
    else {
        ctx.error(&jaas_key, "needs both username and password options");
        return;
    };
    if !ok {
        return;
    }
    push("sasl.mechanism", mechanism.clone(), "sasl.mechanism");
    push("sasl.username", username.to_owned(), "sasl.jaas.config");
    push("sasl.password", password.to_owned(), "sasl.jaas.config");
}

/// Certificates (DER) as PEM text, for librdkafka's `ssl.ca.pem`.
fn pem_certificates(certs: &[rustls_pki_types::CertificateDer<'_>]) -> String {
    let mut out = String::new();
    for cert in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
