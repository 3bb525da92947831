//! Agent-wide TLS defaults (Flume 1.9's `SSLUtil`): the keystore, truststore, protocols and
//! cipher suites a component uses when it sets `ssl = true` without the key of its own. Today
//! they come from the command line's `-D` system properties `javax.net.ssl.*` and `flume.ssl.*`
//! (carried by each component's [`Ctx`]), then the environment variables `FLUME_SSL_*`: system
//! properties win over the environment, as in Flume ([`TlsDefaults::for_context`]).

use crate::config::context::Ctx;

/// The agent-wide defaults; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsDefaults {
    /// `FLUME_SSL_KEYSTORE_PATH` / `javax.net.ssl.keyStore`.
    pub keystore_path: Option<String>,
    /// `FLUME_SSL_KEYSTORE_PASSWORD` / `javax.net.ssl.keyStorePassword`.
    pub keystore_password: Option<String>,
    /// `FLUME_SSL_KEYSTORE_TYPE` / `javax.net.ssl.keyStoreType`.
    pub keystore_type: Option<String>,
    /// `FLUME_SSL_TRUSTSTORE_PATH` / `javax.net.ssl.trustStore`.
    pub truststore_path: Option<String>,
    /// `FLUME_SSL_TRUSTSTORE_PASSWORD` / `javax.net.ssl.trustStorePassword`.
    pub truststore_password: Option<String>,
    /// `FLUME_SSL_TRUSTSTORE_TYPE` / `javax.net.ssl.trustStoreType`.
    pub truststore_type: Option<String>,
    /// `FLUME_SSL_INCLUDE_PROTOCOLS` / `flume.ssl.include.protocols` (commas or spaces).
    pub include_protocols: Option<String>,
    /// `FLUME_SSL_EXCLUDE_PROTOCOLS` / `flume.ssl.exclude.protocols`.
    pub exclude_protocols: Option<String>,
    /// `FLUME_SSL_INCLUDE_CIPHERSUITES` / `flume.ssl.include.cipherSuites`.
    pub include_cipher_suites: Option<String>,
    /// `FLUME_SSL_EXCLUDE_CIPHERSUITES` / `flume.ssl.exclude.cipherSuites`.
    pub exclude_cipher_suites: Option<String>,
}

/// Flume's environment variables, in the order of [`TlsDefaults`]' fields.
pub const ENV_NAMES: [&str; 10] = [
    "FLUME_SSL_KEYSTORE_PATH",
    "FLUME_SSL_KEYSTORE_PASSWORD",
    "FLUME_SSL_KEYSTORE_TYPE",
    "FLUME_SSL_TRUSTSTORE_PATH",
    "FLUME_SSL_TRUSTSTORE_PASSWORD",
    "FLUME_SSL_TRUSTSTORE_TYPE",
    "FLUME_SSL_INCLUDE_PROTOCOLS",
    "FLUME_SSL_EXCLUDE_PROTOCOLS",
    "FLUME_SSL_INCLUDE_CIPHERSUITES",
    "FLUME_SSL_EXCLUDE_CIPHERSUITES",
];

/// The `javax.net.ssl.*` system properties, in the order of [`TlsDefaults`]' fields.
pub const PROPERTY_NAMES: [&str; 10] = [
    "javax.net.ssl.keyStore",
    "javax.net.ssl.keyStorePassword",
    "javax.net.ssl.keyStoreType",
    "javax.net.ssl.trustStore",
    "javax.net.ssl.trustStorePassword",
    "javax.net.ssl.trustStoreType",
    "flume.ssl.include.protocols",
    "flume.ssl.exclude.protocols",
    "flume.ssl.include.cipherSuites",
    "flume.ssl.exclude.cipherSuites",
];

impl TlsDefaults {
    /// The defaults from the process environment.
    pub fn from_env() -> TlsDefaults {
        Self::from_lookup(&ENV_NAMES, |name| std::env::var(name).ok())
    }

    /// The defaults of a component: its context's `-D` system properties ([`PROPERTY_NAMES`]),
    /// each absent one from the environment ([`ENV_NAMES`]).
    pub fn for_context(ctx: &Ctx<'_>) -> TlsDefaults {
        Self::from_lookup(&PROPERTY_NAMES, |name| {
            ctx.system_property(name).map(str::to_owned)
        })
        .or(Self::from_env())
    }

    /// The defaults from `lookup` over `names` (ten names in field order: [`ENV_NAMES`],
    /// [`PROPERTY_NAMES`] or a test's own). Empty values count as absent; the protocol and
    /// suite lists may be separated by commas (Flume's form) or spaces.
    pub fn from_lookup(names: &[&str; 10], lookup: impl Fn(&str) -> Option<String>) -> TlsDefaults {
        let get = |i: usize| lookup(names[i]).filter(|v| !v.trim().is_empty());
        let list = |i: usize| get(i).map(|v| v.replace(',', " "));
        TlsDefaults {
            keystore_path: get(0),
            keystore_password: get(1),
            keystore_type: get(2),
            truststore_path: get(3),
            truststore_password: get(4),
            truststore_type: get(5),
            include_protocols: list(6),
            exclude_protocols: list(7),
            include_cipher_suites: list(8),
            exclude_cipher_suites: list(9),
        }
    }

    /// `self`, with each absent field taken from `fallback` (Flume: system properties win over
    /// the environment).
    pub fn or(self, fallback: TlsDefaults) -> TlsDefaults {
        TlsDefaults {
            keystore_path: self.keystore_path.or(fallback.keystore_path),
            keystore_password: self.keystore_password.or(fallback.keystore_password),
            keystore_type: self.keystore_type.or(fallback.keystore_type),
            truststore_path: self.truststore_path.or(fallback.truststore_path),
            truststore_password: self.truststore_password.or(fallback.truststore_password),
            truststore_type: self.truststore_type.or(fallback.truststore_type),
            include_protocols: self.include_protocols.or(fallback.include_protocols),
            exclude_protocols: self.exclude_protocols.or(fallback.exclude_protocols),
            include_cipher_suites: self
                .include_cipher_suites
                .or(fallback.include_cipher_suites),
            exclude_cipher_suites: self
                .exclude_cipher_suites
                .or(fallback.exclude_cipher_suites),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn lookup_fills_fields_and_properties_win_over_environment() {
        let env: HashMap<&str, &str> = [
            ("FLUME_SSL_KEYSTORE_PATH", "/env/ks.p12"),
            ("FLUME_SSL_KEYSTORE_PASSWORD", ""),
            ("FLUME_SSL_TRUSTSTORE_TYPE", "PEM"),
            ("FLUME_SSL_EXCLUDE_PROTOCOLS", "SSLv3,TLSv1"),
        ]
        .into();
        let props: HashMap<&str, &str> = [("javax.net.ssl.keyStore", "/props/ks.p12")].into();
        let from_env = TlsDefaults::from_lookup(&ENV_NAMES, |n| env.get(n).map(|v| v.to_string()));
        assert_eq!(from_env.keystore_path.as_deref(), Some("/env/ks.p12"));
        assert_eq!(from_env.keystore_password, None, "empty counts as absent");
        assert_eq!(from_env.truststore_type.as_deref(), Some("PEM"));
        assert_eq!(from_env.exclude_protocols.as_deref(), Some("SSLv3 TLSv1"));
        let merged =
            TlsDefaults::from_lookup(&PROPERTY_NAMES, |n| props.get(n).map(|v| v.to_string()))
                .or(from_env);
        assert_eq!(merged.keystore_path.as_deref(), Some("/props/ks.p12"));
        assert_eq!(merged.truststore_type.as_deref(), Some("PEM"));
    }

    #[test]
    fn a_components_context_carries_the_system_properties() {
        use crate::config::SystemProperties;
        let props = SystemProperties::new(
            [
                (
                    "javax.net.ssl.trustStore".to_owned(),
                    "/d/ts.p12".to_owned(),
                ),
                (
                    "flume.ssl.exclude.protocols".to_owned(),
                    "TLSv1,TLSv1.1".to_owned(),
                ),
            ]
            .into(),
        );
        let ctx = Ctx::new("a1.sinks.k1.", Vec::new(), 1).with_system_properties(props);
        let d = TlsDefaults::for_context(&ctx);
        assert_eq!(d.truststore_path.as_deref(), Some("/d/ts.p12"));
        assert_eq!(d.exclude_protocols.as_deref(), Some("TLSv1 TLSv1.1"));
        assert!(
            format!("{ctx:?}").contains("javax.net.ssl.trustStore")
                && !format!("{ctx:?}").contains("/d/ts.p12"),
            "Debug shows the names, not the values"
        );
    }
}
