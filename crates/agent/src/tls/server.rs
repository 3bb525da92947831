//! The source side: a source's TLS keys (`ssl`, `keystore*`, protocols, cipher suites, and
//! beyond Flume `client-auth` with `truststore*`) become a [`ServerTls`], checked at
//! configuration time and then following its files (see [`super::live`]).

use super::live::Live;
use super::params::CryptoChoice;
use super::store;
use super::store_source::{
    certified, fail, read_store, record, roots_from, Certified, Failure, Role, StoreSource,
};
use super::{
    any_tls_error, ssl_enabled, warn_expiring, TlsDefaults, TlsError, ENV_NAMES, PROPERTY_NAMES,
};
use crate::config::context::Ctx;
use rustls::ServerConfig;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The settings of a source's TLS, as written (compared by [`PartialEq`]).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ServerSettings {
    component: String,
    keystore: StoreSource,
    /// `client-auth = required`: the truststore client certificates are checked against.
    client_truststore: Option<StoreSource>,
    crypto: CryptoChoice,
}

/// The server configuration, and when its certificate expires.
fn build_server(s: &ServerSettings) -> Result<(ServerConfig, Option<store::Expiry>), Failure> {
    let (provider, versions) = s.crypto.provider().map_err(fail(Role::Keystore))?;
    let provider = Arc::new(provider);
    let Certified { chain, key, expiry } =
        certified(&s.keystore, &provider).map_err(fail(Role::Keystore))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| fail(Role::Keystore)(e.into()))?;
    let builder = match &s.client_truststore {
        None => builder.with_no_client_auth(),
        Some(ts) => {
            let roots = roots_from(ts).map_err(fail(Role::Truststore))?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| Failure {
                role: Role::Truststore,
                error: TlsError::Malformed {
                    path: ts.path.clone(),
                    detail: e.to_string(),
                },
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| fail(Role::Keystore)(e.into()))?;
    Ok((config, expiry))
}

/// A source's TLS: built once at configuration time, then following its files.
#[derive(Clone)]
pub struct ServerTls {
    settings: Arc<ServerSettings>,
    live: Arc<Live<ServerConfig>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.settings)
            .field("live", &self.live)
            .finish()
    }
}

impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl ServerTls {
    /// Reads a source's TLS keys; `None` when `ssl` is false/absent. Records errors on ctx.
    /// The agent-wide defaults come from the `-D` system properties the context carries, then
    /// the environment ([`TlsDefaults::for_context`]).
    pub fn parse(ctx: &Ctx<'_>, component: &str) -> Option<ServerTls> {
        Self::parse_with(ctx, component, &TlsDefaults::for_context(ctx))
    }

    /// [`ServerTls::parse`] with the agent-wide defaults given.
    pub fn parse_with(ctx: &Ctx<'_>, component: &str, defaults: &TlsDefaults) -> Option<ServerTls> {
        if !ssl_enabled(ctx, component, &["client-auth"]) {
            return None;
        }
        let keystore = read_store(ctx, Role::Keystore, defaults, true);
        if keystore.is_none()
            && !ctx.has_error_for("keystore")
            && !ctx.has_error_for("keystore-type")
        {
            ctx.error(
                "keystore",
                format!(
                    "{component}: ssl is true but no keystore is set (nor -D{} nor {})",
                    PROPERTY_NAMES[0], ENV_NAMES[0]
                ),
            );
        }
        let client_auth = ctx.string_or("client-auth", "none");
        let required = match client_auth.trim().to_ascii_lowercase().as_str() {
            "none" => false,
            "required" => true,
            other => {
                ctx.error(
                    "client-auth",
                    format!("expected none or required, got \"{other}\""),
                );
                false
            }
        };
        // The source's own truststore keys only: the agent-wide truststore is a sink default.
        let truststore = read_store(ctx, Role::Truststore, defaults, false);
        let client_truststore = match (required, truststore) {
            (true, Some(ts)) => Some(ts),
            (true, None) => {
                if !ctx.has_error_for("truststore") && !ctx.has_error_for("truststore-type") {
                    ctx.error(
                        "client-auth",
                        format!("{component}: client-auth = required needs a truststore with the CA of the clients' certificates"),
                    );
                }
                None
            }
            (false, Some(_)) => {
                ctx.error(
                    "truststore",
                    format!("{component}: a source's truststore is used only with client-auth = required"),
                );
                None
            }
            (false, None) => None,
        };
        let crypto = CryptoChoice::parse(ctx, defaults);
        let (Some(keystore), Some(crypto)) = (keystore, crypto) else {
            return None;
        };
        if any_tls_error(ctx, &["client-auth"]) {
            return None;
        }
        let settings = ServerSettings {
            component: component.to_owned(),
            keystore,
            client_truststore,
            crypto,
        };
        let first = match build_server(&settings) {
            Ok((config, expiry)) => {
                warn_expiring(
                    ctx,
                    component,
                    "keystore",
                    &settings.keystore.path,
                    expiry.as_ref(),
                );
                config
            }
            Err(f) => {
                let source = match f.role {
                    Role::Keystore => &settings.keystore,
                    Role::Truststore => settings
                        .client_truststore
                        .as_ref()
                        .unwrap_or(&settings.keystore),
                };
                record(ctx, component, f.role, source, &f.error);
                return None;
            }
        };
        let mut files = vec![settings.keystore.path.clone()];
        files.extend(settings.client_truststore.iter().map(|t| t.path.clone()));
        let settings = Arc::new(settings);
        let for_build = Arc::clone(&settings);
        let live = Live::new(component.to_owned(), files, first, move || {
            build_server(&for_build)
                .map(|(config, _)| config)
                .map_err(|f| f.error)
        });
        Some(ServerTls {
            settings,
            live: Arc::new(live),
        })
    }

    /// The acceptor for the next connection: reflects a rotated keystore (or truststore).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.live.current())
    }

    /// Whether clients must present a certificate (`client-auth = required`).
    pub fn client_auth_required(&self) -> bool {
        self.settings.client_truststore.is_some()
    }

    /// The keystore file.
    pub fn keystore_path(&self) -> &Path {
        &self.settings.keystore.path
    }

    /// Successful certificate reloads since start.
    pub fn reloads(&self) -> u64 {
        self.live.reloads()
    }

    /// Reloads that failed (the previous certificates were kept) since start.
    pub fn reload_failures(&self) -> u64 {
        self.live.reload_failures()
    }
}
