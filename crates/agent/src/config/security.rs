//! Keys with a security or durability meaning in Flume (TLS, Kerberos, SASL, encryption at
//! rest): one list of patterns and one rule, so that such a key is either honoured by the
//! component that reads it or refused — never ignored.
//!
//! Why: an unknown key is normally a warning ("unknown key …; it is ignored") so that a Flume
//! file with options Sluice lacks still loads. For these keys that is fail-open: `ssl = true`
//! on a source that does not read it would leave the source listening in plaintext, and
//! `encryption.activeKey` on a file channel would leave events on disk in the clear, while the
//! operator believes otherwise (the file channel reads its `encryption.*` keys since issue 16;
//! anywhere else they are refused). So a key matching [`SECURITY_KEY_PATTERNS`] that no component
//! read is an error ([`unread_key_problem`], applied by `Ctx::finish` and to agent-level keys).
//! A component that forwards keys to a client library (Kafka's `kafka.producer.*` to
//! librdkafka) must not forward these: the Kafka components route every key this module
//! recognises ([`security_family`]) to their explicit mapping (`crate::kafka::security`),
//! which honours or refuses each one.
//!
//! A switch that asks for nothing is accepted: `ssl`, `kerberos` or `enableSSL` set to `false`
//! (any case), and `security.protocol = PLAINTEXT`. They keep the ordinary unknown-key warning
//! where no component reads them. Any other value (`true`, `yes`, a typo) is refused.
//!
//! Keys are matched on their dot-separated segments, ignoring ASCII case, anywhere in the key
//! relative to the component, so `kafka.producer.ssl.truststore.location`,
//! `hdfs.kerberosPrincipal` and `keyStore` are all caught.

/// What a matched key is about; decides the advice in the refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityFamily {
    /// TLS: `ssl`, `keystore*`, `truststore*`, `enableSSL`.
    Tls,
    /// A client library's TLS properties (`ssl.*`: Kafka's `ssl.truststore.location`, ...).
    TlsClientProperty,
    /// Kerberos: `kerberos*`, `*principal`, `*keytab`.
    Kerberos,
    /// Kafka's SASL properties (`sasl.*`).
    Sasl,
    /// Kafka's `security.protocol`.
    SecurityProtocol,
    /// The file channel's encryption at rest (`encryption.*`).
    Encryption,
}

/// How a pattern matches one lowercase segment of a key (or two, for [`Shape::Pair`]).
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// The segment is exactly this.
    Exact(&'static str),
    /// The segment starts with this.
    Prefix(&'static str),
    /// The segment ends with this.
    Suffix(&'static str),
    /// This segment followed by that one.
    Pair(&'static str, &'static str),
    /// The segment is exactly this, and more segments follow (`ssl.*`).
    Namespace(&'static str),
}

/// One pattern of security keys.
#[derive(Clone, Copy, Debug)]
pub struct SecurityPattern {
    /// How it matches.
    pub shape: Shape,
    /// What it is about.
    pub family: SecurityFamily,
}

const fn pattern(shape: Shape, family: SecurityFamily) -> SecurityPattern {
    SecurityPattern { shape, family }
}

/// Every key pattern with a security or durability meaning in Flume (and its Kafka and
/// Hadoop clients). A key matching one of them is honoured by the component that reads it, or
/// it is a configuration error: silently ignoring it would run the component with less
/// protection than the file asks for. Matched per segment, lowercase.
pub const SECURITY_KEY_PATTERNS: &[SecurityPattern] = &[
    // The namespaces come first: a key's family is that of the first pattern it matches, so
    // `encryption.keyProvider.keyStoreFile` is about encryption, `sasl.kerberos.service.name`
    // about SASL.
    // The file channel's `encryption.activeKey`, `encryption.cipherProvider`,
    // `encryption.keyProvider`, `encryption.keyProvider.keyStoreFile`, ...
    pattern(Shape::Exact("encryption"), SecurityFamily::Encryption),
    // Kafka's `sasl.mechanism`, `sasl.jaas.config`, `sasl.kerberos.service.name`, ...
    pattern(Shape::Exact("sasl"), SecurityFamily::Sasl),
    // Kafka's `security.protocol`.
    pattern(
        Shape::Pair("security", "protocol"),
        SecurityFamily::SecurityProtocol,
    ),
    // Kafka client keys `ssl.*` (`ssl.truststore.location`, `ssl.keystore.password`, ...).
    pattern(Shape::Namespace("ssl"), SecurityFamily::TlsClientProperty),
    // `ssl` (avro, thrift, http, syslog).
    pattern(Shape::Exact("ssl"), SecurityFamily::Tls),
    // The http source's deprecated switch.
    pattern(Shape::Exact("enablessl"), SecurityFamily::Tls),
    // `keystore`, `keystore-password`, `keystore-type`, `keystorePassword`, ...
    pattern(Shape::Prefix("keystore"), SecurityFamily::Tls),
    // `truststore`, `truststore-password`, `truststore-type`, ...
    pattern(Shape::Prefix("truststore"), SecurityFamily::Tls),
    // `kerberos` (thrift), `hdfs.kerberosPrincipal`, `kerberosKeytab`, ...
    pattern(Shape::Prefix("kerberos"), SecurityFamily::Kerberos),
    // `agent-principal`, `client-principal`, `server-principal`, ...
    pattern(Shape::Suffix("principal"), SecurityFamily::Kerberos),
    // `agent-keytab`, `client-keytab`, ...
    pattern(Shape::Suffix("keytab"), SecurityFamily::Kerberos),
];

/// The switches (whole keys, lowercase) whose value `false` asks for nothing.
const SWITCHES: &[&str] = &["ssl", "kerberos", "enablessl"];

/// The family of the first pattern `key` (relative to its component) matches, if any.
pub fn security_family(key: &str) -> Option<SecurityFamily> {
    let lower = key.to_ascii_lowercase();
    let segments: Vec<&str> = lower.split('.').collect();
    SECURITY_KEY_PATTERNS
        .iter()
        .find(|p| {
            segments.iter().enumerate().any(|(i, s)| match p.shape {
                Shape::Exact(x) => *s == x,
                Shape::Prefix(x) => s.starts_with(x),
                Shape::Suffix(x) => s.ends_with(x),
                Shape::Pair(a, b) => *s == a && segments.get(i + 1) == Some(&b),
                Shape::Namespace(x) => *s == x && i + 1 < segments.len(),
            })
        })
        .map(|p| p.family)
}

/// Whether `key = value` asks for nothing although the key matches a pattern: a switch set to
/// `false`, or `security.protocol = PLAINTEXT`.
pub fn asks_for_nothing(key: &str, value: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    let value = value.trim();
    if SWITCHES.contains(&lower.as_str()) {
        return value.eq_ignore_ascii_case("false");
    }
    if lower == "security.protocol" || lower.ends_with(".security.protocol") {
        return value.eq_ignore_ascii_case("plaintext");
    }
    false
}

/// Whether `key = value` (relative to its component) asks for a security feature: it matches
/// a pattern and does not ask for nothing. Such a key must be honoured or refused.
pub fn asks_for_security(key: &str, value: &str) -> bool {
    security_family(key).is_some() && !asks_for_nothing(key, value)
}

/// What becomes of a key nobody read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnreadKey {
    /// A configuration error, with this message.
    Refused(String),
    /// The ordinary warning, with this message.
    Ignored(String),
}

/// The one rule for a key (`key = value`, relative to its component) that `what` (e.g.
/// "netcat source r1", "agent a1") did not read: refused if it asks for security, ignored
/// with a warning otherwise. The refusal says what to do.
pub fn unread_key_problem(key: &str, value: &str, what: &str) -> UnreadKey {
    let ignored = || UnreadKey::Ignored(format!("unknown key for {what}; it is ignored"));
    let Some(family) = security_family(key) else {
        return ignored();
    };
    if asks_for_nothing(key, value) {
        return ignored();
    }
    let shown = value.trim();
    let what_to_do = match family {
        SecurityFamily::Tls => "remove the key; TLS (ssl, keystore*, truststore*) is configured \
             on the avro, thrift, http, syslogtcp and multiport_syslogtcp sources and the avro \
             and thrift sinks (see docs/agent.md)"
            .to_owned(),
        SecurityFamily::TlsClientProperty => "remove the key; Kafka's ssl.* keys are read \
             under kafka.producer. and kafka.consumer. of the Kafka sink, source and channel, \
             and the TLS of the avro, thrift, http and syslog hops is set with ssl, keystore* \
             and truststore* (see docs/agent.md)"
            .to_owned(),
        SecurityFamily::Kerberos => "remove the key; Sluice does not implement Kerberos".to_owned(),
        SecurityFamily::Sasl => "remove the key; Kafka's sasl.* keys are read under \
             kafka.producer. and kafka.consumer. of the Kafka sink, source and channel"
            .to_owned(),
        SecurityFamily::SecurityProtocol => "remove the key; Kafka's security.protocol is read \
             as kafka.producer.security.protocol and kafka.consumer.security.protocol of the \
             Kafka sink, source and channel"
            .to_owned(),
        SecurityFamily::Encryption => "encryption at rest is a file channel's (its \
             encryption.activeKey, encryption.keyProvider, ... keys; see docs/agent.md), and \
             this component stores nothing it could encrypt; remove the key, or move it to the \
             file channel it was meant for"
            .to_owned(),
    };
    UnreadKey::Refused(format!(
        "{key} = {shown} has a security meaning in Flume, but {what} does not read it, so it \
         would be silently ignored; {what_to_do}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_of_the_issue_matches() {
        for (key, family) in [
            ("ssl", SecurityFamily::Tls),
            ("enableSSL", SecurityFamily::Tls),
            ("keystore", SecurityFamily::Tls),
            ("keystore-password", SecurityFamily::Tls),
            ("keyStoreType", SecurityFamily::Tls),
            ("truststore-type", SecurityFamily::Tls),
            (
                "kafka.producer.ssl.truststore.location",
                SecurityFamily::TlsClientProperty,
            ),
            (
                "kafka.producer.ssl.keystore.location",
                SecurityFamily::TlsClientProperty,
            ),
            (
                "kafka.consumer.ssl.endpoint.identification.algorithm",
                SecurityFamily::TlsClientProperty,
            ),
            (
                "kafka.producer.sasl.kerberos.service.name",
                SecurityFamily::Sasl,
            ),
            ("kerberos", SecurityFamily::Kerberos),
            ("hdfs.kerberosPrincipal", SecurityFamily::Kerberos),
            ("agent-principal", SecurityFamily::Kerberos),
            ("client-keytab", SecurityFamily::Kerberos),
            ("kafka.producer.sasl.mechanism", SecurityFamily::Sasl),
            ("sasl.jaas.config", SecurityFamily::Sasl),
            (
                "kafka.consumer.security.protocol",
                SecurityFamily::SecurityProtocol,
            ),
            ("security.protocol", SecurityFamily::SecurityProtocol),
            ("encryption.activeKey", SecurityFamily::Encryption),
            (
                "encryption.keyProvider.keyStoreFile",
                SecurityFamily::Encryption,
            ),
        ] {
            assert_eq!(security_family(key), Some(family), "{key}");
        }
    }

    #[test]
    fn ordinary_keys_do_not_match() {
        for key in [
            "port",
            "bind",
            "sslx",
            "kafka.producer.linger.ms",
            "security",
            "protocol",
            "kafka.consumer.protocol.security",
            "keep-alive",
            "batch-size",
            "principality.x",
        ] {
            assert_eq!(security_family(key), None, "{key}");
        }
    }

    #[test]
    fn only_false_switches_and_plaintext_ask_for_nothing() {
        assert!(asks_for_nothing("ssl", " FALSE "));
        assert!(asks_for_nothing("kerberos", "false"));
        assert!(asks_for_nothing("enableSSL", "False"));
        assert!(asks_for_nothing(
            "kafka.producer.security.protocol",
            "plaintext"
        ));
        assert!(!asks_for_nothing("ssl", "true"));
        assert!(!asks_for_nothing("ssl", "no"));
        assert!(!asks_for_nothing("ssl", ""));
        assert!(!asks_for_nothing("keystore", "false"));
        assert!(!asks_for_nothing(
            "kafka.producer.ssl.enabled.protocols",
            "false"
        ));
        assert!(!asks_for_nothing("security.protocol", "SASL_SSL"));
        assert!(asks_for_security("keystore", ""));
        assert!(!asks_for_security("port", "1"));
    }

    #[test]
    fn refusals_name_the_component_and_what_to_do() {
        let UnreadKey::Refused(m) = unread_key_problem("ssl", "true", "netcat source r1") else {
            panic!("ssl = true must be refused");
        };
        assert!(
            m.starts_with(
                "ssl = true has a security meaning in Flume, but netcat source r1 does not read it"
            ),
            "{m}"
        );
        assert!(m.contains("remove the key"), "{m}");
        let UnreadKey::Refused(m) =
            unread_key_problem("encryption.activeKey", "key-0", "memory channel c1")
        else {
            panic!("encryption must be refused");
        };
        assert!(
            m.contains("but memory channel c1 does not read it")
                && m.contains("encryption at rest is a file channel's"),
            "{m}"
        );
        assert_eq!(
            unread_key_problem("ssl", "false", "netcat source r1"),
            UnreadKey::Ignored("unknown key for netcat source r1; it is ignored".into())
        );
        assert_eq!(
            unread_key_problem("max-line-lenght", "1", "netcat source r1"),
            UnreadKey::Ignored("unknown key for netcat source r1; it is ignored".into())
        );
    }
}
