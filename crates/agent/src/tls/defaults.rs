//! Agent-wide TLS defaults (Flume 1.9): the keystore and truststore a component uses when it
//! sets `ssl = true` without naming its own. Today they come from the environment variables
//! `FLUME_SSL_*`; once `sluice agent` takes `-D`, the `javax.net.ssl.*` system properties
//! fill the same value (see [`TlsDefaults::from_lookup`]).

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
}

/// Flume's environment variables, in the order of [`TlsDefaults`]' fields.
pub const ENV_NAMES: [&str; 6] = [
    "FLUME_SSL_KEYSTORE_PATH",
    "FLUME_SSL_KEYSTORE_PASSWORD",
    "FLUME_SSL_KEYSTORE_TYPE",
    "FLUME_SSL_TRUSTSTORE_PATH",
    "FLUME_SSL_TRUSTSTORE_PASSWORD",
    "FLUME_SSL_TRUSTSTORE_TYPE",
];

/// The `javax.net.ssl.*` system properties, in the order of [`TlsDefaults`]' fields.
pub const PROPERTY_NAMES: [&str; 6] = [
    "javax.net.ssl.keyStore",
    "javax.net.ssl.keyStorePassword",
    "javax.net.ssl.keyStoreType",
    "javax.net.ssl.trustStore",
    "javax.net.ssl.trustStorePassword",
    "javax.net.ssl.trustStoreType",
];

impl TlsDefaults {
    /// The defaults from the process environment.
    pub fn from_env() -> TlsDefaults {
        Self::from_lookup(&ENV_NAMES, |name| std::env::var(name).ok())
    }

    /// The defaults from `lookup` over `names` (six names in field order: [`ENV_NAMES`],
    /// [`PROPERTY_NAMES`] or a test's own map). Empty values count as absent.
    pub fn from_lookup(names: &[&str; 6], lookup: impl Fn(&str) -> Option<String>) -> TlsDefaults {
        let get = |i: usize| lookup(names[i]).filter(|v| !v.is_empty());
        TlsDefaults {
            keystore_path: get(0),
            keystore_password: get(1),
            keystore_type: get(2),
            truststore_path: get(3),
            truststore_password: get(4),
            truststore_type: get(5),
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
        ]
        .into();
        let props: HashMap<&str, &str> = [("javax.net.ssl.keyStore", "/props/ks.p12")].into();
        let from_env = TlsDefaults::from_lookup(&ENV_NAMES, |n| env.get(n).map(|v| v.to_string()));
        assert_eq!(from_env.keystore_path.as_deref(), Some("/env/ks.p12"));
        assert_eq!(from_env.keystore_password, None, "empty counts as absent");
        assert_eq!(from_env.truststore_type.as_deref(), Some("PEM"));
        let merged =
            TlsDefaults::from_lookup(&PROPERTY_NAMES, |n| props.get(n).map(|v| v.to_string()))
                .or(from_env);
        assert_eq!(merged.keystore_path.as_deref(), Some("/props/ks.p12"));
        assert_eq!(merged.truststore_type.as_deref(), Some("PEM"));
    }
}
