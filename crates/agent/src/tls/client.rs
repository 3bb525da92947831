//! The sink side: a sink's TLS keys (`ssl`, `truststore*`, `trust-all-certs`, protocols,
//! cipher suites, and beyond Flume a client `keystore*`) become a [`ClientTls`], checked at
//! configuration time and then following its files (see [`super::live`]). The server's
//! certificate is checked against the truststore, the system's CAs when none is set, or not
//! at all with `trust-all-certs` ([`TrustAll`]).

use super::live::Live;
use super::params::CryptoChoice;
use super::store;
use super::store_source::{
    certified, fail, read_store, record, roots_from, Certified, Failure, Role, StoreSource,
};
use super::{any_tls_error, ssl_enabled, warn_expiring, TlsDefaults, TlsError};
use crate::config::context::Ctx;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// How a sink checks the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Trust {
    /// Only the CAs of this truststore.
    Store(StoreSource),
    /// The system's CA bundle (Java's `cacerts`).
    System,
    /// `trust-all-certs = true`: no verification at all.
    All,
}

/// The settings of a sink's TLS, as written (compared by [`PartialEq`]).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ClientSettings {
    component: String,
    trust: Trust,
    /// A client certificate, for a source with `client-auth = required` (beyond Flume).
    keystore: Option<StoreSource>,
    crypto: CryptoChoice,
}

/// The client configuration, and when its client certificate (if any) expires.
fn build_client(s: &ClientSettings) -> Result<(ClientConfig, Option<store::Expiry>), Failure> {
    let (provider, versions) = s.crypto.provider().map_err(fail(Role::Truststore))?;
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| fail(Role::Truststore)(e.into()))?;
    let builder = match &s.trust {
        Trust::Store(ts) => {
            builder.with_root_certificates(roots_from(ts).map_err(fail(Role::Truststore))?)
        }
        Trust::System => {
            builder.with_root_certificates(system_roots().map_err(fail(Role::Truststore))?)
        }
        Trust::All => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustAll(Arc::clone(&provider)))),
    };
    match &s.keystore {
        None => Ok((builder.with_no_client_auth(), None)),
        Some(ks) => {
            let Certified { chain, key, expiry } =
                certified(ks, &provider).map_err(fail(Role::Keystore))?;
            let config = builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| fail(Role::Keystore)(e.into()))?;
            Ok((config, expiry))
        }
    }
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let detail = if found.errors.is_empty() {
            "none found".to_owned()
        } else {
            found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(TlsError::NoSystemRoots { detail });
    }
    Ok(roots)
}

/// `trust-all-certs`: accepts any certificate for any name, but still checks that the server
/// holds the key of the certificate it sent (the handshake signature).
#[derive(Debug)]
struct TrustAll(Arc<CryptoProvider>);

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A sink's TLS: built once at configuration time, then following its files.
#[derive(Clone)]
pub struct ClientTls {
    settings: Arc<ClientSettings>,
    live: Arc<Live<ClientConfig>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("settings", &self.settings)
            .field("live", &self.live)
            .finish()
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl ClientTls {
    /// Reads a sink's TLS keys; `None` when `ssl` is false/absent. Records errors on ctx.
    /// The agent-wide defaults come from the `-D` system properties the context carries, then
    /// the environment ([`TlsDefaults::for_context`]).
    pub fn parse(ctx: &Ctx<'_>, component: &str) -> Option<ClientTls> {
        Self::parse_with(ctx, component, &TlsDefaults::for_context(ctx))
    }

    /// [`ClientTls::parse`] with the agent-wide defaults given.
    pub fn parse_with(ctx: &Ctx<'_>, component: &str, defaults: &TlsDefaults) -> Option<ClientTls> {
        if !ssl_enabled(ctx, component, &["trust-all-certs"]) {
            return None;
        }
        let trust_all = ctx.bool("trust-all-certs", false);
        let truststore = read_store(ctx, Role::Truststore, defaults, !trust_all);
        let trust = match (trust_all, truststore) {
            (true, _) if ctx.has("truststore") => {
                ctx.error(
                    "trust-all-certs",
                    format!("{component}: trust-all-certs = true contradicts the truststore set; remove one"),
                );
                return None;
            }
            (true, _) => {
                ctx.warn(
                    "trust-all-certs",
                    format!("{component}: trust-all-certs = true: the server's certificate is NOT verified, anyone in the path can read and change the events"),
                );
                tracing::warn!(
                    "{component}: trust-all-certs = true: TLS WITHOUT CERTIFICATE VERIFICATION; anyone in the network path can impersonate the server"
                );
                Trust::All
            }
            (false, Some(ts)) => Trust::Store(ts),
            (false, None) => Trust::System,
        };
        // The client certificate: only from the sink's own keys.
        let keystore = read_store(ctx, Role::Keystore, defaults, false);
        let crypto = CryptoChoice::parse(ctx, defaults)?;
        if any_tls_error(ctx, &["trust-all-certs"]) {
            return None;
        }
        let settings = ClientSettings {
            component: component.to_owned(),
            trust,
            keystore,
            crypto,
        };
        let first = match build_client(&settings) {
            Ok((config, expiry)) => {
                if let Some(ks) = &settings.keystore {
                    warn_expiring(ctx, component, "keystore", &ks.path, expiry.as_ref());
                }
                config
            }
            Err(f) => {
                match (f.role, &settings.trust, &settings.keystore) {
                    (Role::Truststore, Trust::Store(ts), _) | (Role::Keystore, _, Some(ts)) => {
                        record(ctx, component, f.role, ts, &f.error)
                    }
                    _ => ctx.error(f.role.key(), format!("{component}: {}", f.error)),
                }
                return None;
            }
        };
        let mut files: Vec<PathBuf> = Vec::new();
        if let Trust::Store(ts) = &settings.trust {
            files.push(ts.path.clone());
        }
        files.extend(settings.keystore.iter().map(|k| k.path.clone()));
        let settings = Arc::new(settings);
        let for_build = Arc::clone(&settings);
        let live = Live::new(component.to_owned(), files, first, move || {
            build_client(&for_build)
                .map(|(config, _)| config)
                .map_err(|f| f.error)
        });
        Some(ClientTls {
            settings,
            live: Arc::new(live),
        })
    }

    /// The client configuration for the next connection (follows a changed truststore).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.live.current()
    }

    /// The name the server's certificate must carry, for connecting to `host`.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        ServerName::try_from(host.trim().to_owned()).map_err(|_| TlsError::InvalidServerName {
            host: host.to_owned(),
        })
    }

    /// Whether `trust-all-certs` turned verification off.
    pub fn trusts_all_certs(&self) -> bool {
        self.settings.trust == Trust::All
    }
}
