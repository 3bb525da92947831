//! Flume's protocol and cipher-suite keys (`include-protocols`, `exclude-protocols`,
//! `include-cipher-suites`, `exclude-cipher-suites`) turned into a rustls crypto provider and
//! protocol list. rustls offers only TLS 1.2 and 1.3, so asking for an older protocol is an
//! error while excluding one is a no-op; suites are named as IANA/Java name them
//! (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `TLS_AES_128_GCM_SHA256`) or as rustls does
//! (`TLS13_AES_128_GCM_SHA256`).

use super::TlsDefaults;
use crate::config::context::Ctx;
use rustls::crypto::CryptoProvider;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

/// Protocol names Java knows that rustls never offers.
const OLD_PROTOCOLS: &[&str] = &["SSLv2Hello", "SSLv2", "SSLv3", "TLSv1", "TLSv1.1"];

/// The protocol and suite choices of one component, as written (kept for comparisons).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CryptoChoice {
    pub include_protocols: Vec<String>,
    pub exclude_protocols: Vec<String>,
    pub include_cipher_suites: Vec<String>,
    pub exclude_cipher_suites: Vec<String>,
}

/// Flume's default: `exclude-protocols = SSLv3`.
const DEFAULT_EXCLUDE_PROTOCOLS: &str = "SSLv3";

impl CryptoChoice {
    /// Reads the four keys (each absent one from the agent-wide `defaults`), recording a
    /// problem on each bad one; `None` if any was bad.
    pub fn parse(ctx: &Ctx<'_>, defaults: &TlsDefaults) -> Option<CryptoChoice> {
        let words = |key: &str, default: Option<&str>| -> Vec<String> {
            ctx.string(key)
                .or_else(|| default.map(str::to_owned))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let choice = CryptoChoice {
            include_protocols: words("include-protocols", defaults.include_protocols.as_deref()),
            exclude_protocols: words(
                "exclude-protocols",
                Some(
                    defaults
                        .exclude_protocols
                        .as_deref()
                        .unwrap_or(DEFAULT_EXCLUDE_PROTOCOLS),
                ),
            ),
            include_cipher_suites: words(
                "include-cipher-suites",
                defaults.include_cipher_suites.as_deref(),
            ),
            exclude_cipher_suites: words(
                "exclude-cipher-suites",
                defaults.exclude_cipher_suites.as_deref(),
            ),
        };
        let mut ok = true;
        let versions = match choice.versions() {
            Ok(v) => v,
            Err((key, msg)) => {
                ctx.error(key, msg);
                ok = false;
                Vec::new()
            }
        };
        match choice.suites() {
            Ok(suites) => {
                if ok
                    && !suites
                        .iter()
                        .any(|s| versions.iter().any(|v| s.version().version == v.version))
                {
                    ctx.error(
                        "include-cipher-suites",
                        format!(
                            "no cipher suite left for the protocols {}",
                            version_names(&versions)
                        ),
                    );
                    ok = false;
                }
            }
            Err((key, msg)) => {
                ctx.error(key, msg);
                ok = false;
            }
        }
        ok.then_some(choice)
    }

    /// The protocol versions to offer, or the key and message of the problem.
    pub fn versions(
        &self,
    ) -> Result<Vec<&'static SupportedProtocolVersion>, (&'static str, String)> {
        let all: [(&str, &'static SupportedProtocolVersion); 2] = [
            ("TLSv1.2", &rustls::version::TLS12),
            ("TLSv1.3", &rustls::version::TLS13),
        ];
        let mut unknown = Vec::new();
        let mut old = Vec::new();
        for name in &self.include_protocols {
            if all.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                continue;
            }
            if OLD_PROTOCOLS.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                old.push(name.as_str());
            } else {
                unknown.push(name.as_str());
            }
        }
        if !old.is_empty() {
            return Err((
                "include-protocols",
                format!(
                    "{} not supported: only TLSv1.2 and TLSv1.3 are offered",
                    old.join(", ")
                ),
            ));
        }
        if !unknown.is_empty() {
            return Err((
                "include-protocols",
                format!(
                    "unknown protocol {}: expected TLSv1.2 or TLSv1.3",
                    unknown.join(", ")
                ),
            ));
        }
        let unknown: Vec<&str> = self
            .exclude_protocols
            .iter()
            .filter(|name| {
                !all.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
                    && !OLD_PROTOCOLS.iter().any(|n| n.eq_ignore_ascii_case(name))
            })
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err((
                "exclude-protocols",
                format!(
                    "unknown protocol {}: expected names such as SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
                    unknown.join(", ")
                ),
            ));
        }
        let chosen: Vec<_> = all
            .iter()
            .filter(|(n, _)| {
                (self.include_protocols.is_empty()
                    || self
                        .include_protocols
                        .iter()
                        .any(|i| i.eq_ignore_ascii_case(n)))
                    && !self
                        .exclude_protocols
                        .iter()
                        .any(|e| e.eq_ignore_ascii_case(n))
            })
            .map(|(_, v)| *v)
            .collect();
        if chosen.is_empty() {
            let key = if self.include_protocols.is_empty() {
                "exclude-protocols"
            } else {
                "include-protocols"
            };
            return Err((
                key,
                "no protocol left: TLSv1.2 or TLSv1.3 must remain enabled".to_owned(),
            ));
        }
        Ok(chosen)
    }

    /// The cipher suites to offer, or the key and message of the problem.
    pub fn suites(&self) -> Result<Vec<SupportedCipherSuite>, (&'static str, String)> {
        let all = super::ring_provider().cipher_suites;
        let find = |name: &str| all.iter().find(|s| suite_matches(s, name)).copied();
        let unknown: Vec<&str> = self
            .include_cipher_suites
            .iter()
            .filter(|n| find(n).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err((
                "include-cipher-suites",
                format!(
                    "unknown or unsupported cipher suite {}; supported: {}",
                    unknown.join(", "),
                    supported_names(&all)
                ),
            ));
        }
        // Excluding a suite rustls never offers is fine, but the name must look like one.
        let malformed: Vec<&str> = self
            .exclude_cipher_suites
            .iter()
            .filter(|n| find(n).is_none() && !(n.starts_with("TLS_") || n.starts_with("SSL_")))
            .map(String::as_str)
            .collect();
        if !malformed.is_empty() {
            return Err((
                "exclude-cipher-suites",
                format!("unknown cipher suite {}", malformed.join(", ")),
            ));
        }
        let chosen: Vec<SupportedCipherSuite> = all
            .iter()
            .filter(|s| {
                (self.include_cipher_suites.is_empty()
                    || self
                        .include_cipher_suites
                        .iter()
                        .any(|n| suite_matches(s, n)))
                    && !self
                        .exclude_cipher_suites
                        .iter()
                        .any(|n| suite_matches(s, n))
            })
            .copied()
            .collect();
        if chosen.is_empty() {
            let key = if self.exclude_cipher_suites.is_empty() {
                "include-cipher-suites"
            } else {
                "exclude-cipher-suites"
            };
            return Err((key, "no cipher suite left".to_owned()));
        }
        Ok(chosen)
    }

    /// The ring provider restricted to the chosen suites, and the chosen versions. Only
    /// called on a choice that [`CryptoChoice::parse`] accepted.
    pub fn provider(
        &self,
    ) -> Result<(CryptoProvider, Vec<&'static SupportedProtocolVersion>), super::TlsError> {
        let versions = self
            .versions()
            .map_err(|(key, msg)| super::TlsError::Choice { key, msg })?;
        let suites = self
            .suites()
            .map_err(|(key, msg)| super::TlsError::Choice { key, msg })?;
        Ok((
            CryptoProvider {
                cipher_suites: suites,
                ..super::ring_provider()
            },
            versions,
        ))
    }
}

/// Whether `name` (IANA/Java or rustls spelling, any case) names `suite`.
fn suite_matches(suite: &SupportedCipherSuite, name: &str) -> bool {
    let Some(own) = suite.suite().as_str() else {
        return false;
    };
    normalize(own) == normalize(name)
}

/// rustls writes TLS 1.3 suites `TLS13_...`; IANA and Java write `TLS_...`.
fn normalize(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => upper,
    }
}

fn supported_names(all: &[SupportedCipherSuite]) -> String {
    all.iter()
        .filter_map(|s| s.suite().as_str())
        .map(normalize)
        .collect::<Vec<_>>()
        .join(" ")
}

fn version_names(versions: &[&'static SupportedProtocolVersion]) -> String {
    versions
        .iter()
        .map(|v| match v.version {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            _ => "TLSv1.2",
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(include: &str, exclude: &str, suites_in: &str, suites_out: &str) -> CryptoChoice {
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect();
        CryptoChoice {
            include_protocols: words(include),
            exclude_protocols: words(exclude),
            include_cipher_suites: words(suites_in),
            exclude_cipher_suites: words(suites_out),
        }
    }

    #[test]
    fn suite_names_in_every_spelling_match() {
        let all = super::super::ring_provider().cipher_suites;
        let aes13 = all
            .iter()
            .find(|s| s.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
            .expect("suite");
        for name in [
            "TLS_AES_128_GCM_SHA256",
            "TLS13_AES_128_GCM_SHA256",
            "tls_aes_128_gcm_sha256",
        ] {
            assert!(suite_matches(aes13, name), "{name}");
        }
        assert!(!suite_matches(aes13, "TLS_AES_256_GCM_SHA384"));
    }

    #[test]
    fn versions_follow_include_then_exclude() {
        let names = |c: &CryptoChoice| version_names(&c.versions().expect("versions"));
        assert_eq!(names(&choice("", "SSLv3", "", "")), "TLSv1.2 TLSv1.3");
        assert_eq!(names(&choice("TLSv1.3", "SSLv3", "", "")), "TLSv1.3");
        assert_eq!(names(&choice("", "TLSv1.3", "", "")), "TLSv1.2");
        assert_eq!(
            names(&choice("tlsv1.2 TLSv1.3", "TLSv1.2", "", "")),
            "TLSv1.3"
        );
        let (key, _) = choice("TLSv1.2", "TLSv1.2", "", "")
            .versions()
            .expect_err("none");
        assert_eq!(key, "include-protocols");
        let (key, msg) = choice("TLSv1.1", "", "", "").versions().expect_err("old");
        assert_eq!(key, "include-protocols");
        assert!(msg.contains("TLSv1.1 not supported"), "{msg}");
    }

    #[test]
    fn suites_follow_include_then_exclude() {
        let c = choice(
            "",
            "",
            "TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384",
            "TLS_AES_256_GCM_SHA384",
        );
        let suites = c.suites().expect("suites");
        assert_eq!(suites.len(), 1);
        assert_eq!(
            suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        let (key, _) = choice("", "", "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256")
            .suites()
            .expect_err("empty");
        assert_eq!(key, "exclude-cipher-suites");
    }
}
