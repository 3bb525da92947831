//! TLS configuration for the agent's network hops (issue 15): the Flume keys of a source
//! (`ssl`, `keystore*`, protocols, cipher suites, and beyond Flume `client-auth` with
//! `truststore*`) become a [`ServerTls`], those of a sink (`ssl`, `truststore*`,
//! `trust-all-certs`, protocols, cipher suites, and beyond Flume a client `keystore*`) a
//! [`ClientTls`].
//!
//! Everything that can be checked is checked when the configuration is read, so a wrong
//! password, a missing file, an expired certificate or a keystore without a private key is a
//! configuration error on its key (`sluice validate` exits 1, `sluice agent` refuses to
//! start), never a failed first connection. Afterwards the keystore and truststore files are
//! watched ([`live`]): new connections get a rotated certificate without a restart.
//!
//! rustls with the *ring* provider, given explicitly to every builder (no process-wide
//! default provider is installed or relied on).

mod defaults;
mod live;
mod params;
mod store;

pub use defaults::{TlsDefaults, ENV_NAMES, PROPERTY_NAMES};
pub use live::{CHECK_INTERVAL, ERROR_LOG_INTERVAL};

use crate::config::context::Ctx;
use live::Live;
use params::CryptoChoice;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a keystore, truststore or TLS setting cannot be used. Messages name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A Java JKS or JCEKS keystore, which only Java reads.
    #[error(
        "{} is a Java {store_type} keystore, which Sluice cannot read; convert it to PKCS12 with: \
         keytool -importkeystore -srckeystore {} -srcstoretype {store_type} -destkeystore {}.p12 -deststoretype PKCS12",
        path.display(), path.display(), path.display()
    )]
    JavaKeyStore {
        /// The file.
        path: PathBuf,
        /// `JKS` or `JCEKS`.
        store_type: &'static str,
    },
    /// Neither PKCS12 nor PEM.
    #[error("{} is neither a PKCS12 file nor PEM text", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The PKCS12 integrity check failed: the password is wrong (or the file damaged).
    #[error("wrong password for {} (or the file is damaged)", path.display())]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// A PKCS12 file needs its password, and none is set.
    #[error("{} is a PKCS12 file, which needs its password, and none is set", path.display())]
    MissingPassword {
        /// The file.
        path: PathBuf,
    },
    /// The file's structure or a certificate or key in it cannot be decoded.
    #[error("{} cannot be decoded: {detail}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A PEM private key protected by a passphrase.
    #[error(
        "{} holds an encrypted private key, which Sluice does not read; store it unencrypted \
         (e.g. `openssl pkey -in key.pem -out plain.pem`) with tight file permissions, or use PKCS12",
        path.display()
    )]
    EncryptedPemKey {
        /// The file.
        path: PathBuf,
    },
    /// A keystore without a private key (for example a truststore given as keystore).
    #[error("{} holds no private key with its certificate", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A store without a certificate.
    #[error("{} holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key in {} does not match its certificate", path.display())]
    KeyMismatch {
        /// The file.
        path: PathBuf,
    },
    /// The private key cannot be used by rustls.
    #[error("the private key in {} cannot be used: {detail}", path.display())]
    UnusableKey {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A certificate whose validity ended.
    #[error("the certificate \"{subject}\" in {} expired on {not_after}", path.display())]
    Expired {
        /// The file.
        path: PathBuf,
        /// The certificate's subject.
        subject: String,
        /// When it expired.
        not_after: String,
    },
    /// A certificate whose validity has not begun.
    #[error("the certificate \"{subject}\" in {} is not valid before {not_before}", path.display())]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// The certificate's subject.
        subject: String,
        /// When it becomes valid.
        not_before: String,
    },
    /// A protocol or cipher-suite key that leaves nothing usable.
    #[error("{key}: {msg}")]
    Choice {
        /// The key.
        key: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// No truststore and no CA certificate on this system.
    #[error("no truststore is set and the system's CA certificates cannot be loaded: {detail}")]
    NoSystemRoots {
        /// Why.
        detail: String,
    },
    /// A host name that cannot be checked against a certificate.
    #[error("\"{host}\" is not a valid DNS name or IP address for TLS")]
    InvalidServerName {
        /// The host.
        host: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The *ring* crypto provider every TLS config of the agent is built with (sources, sinks and
/// tests use this one function rather than a process-wide default).
///
/// rustls 0.23.48 deprecated `ring::default_provider` because *ring* has no post-quantum key
/// exchange; the project chose *ring* anyway (aws-lc-rs needs cmake, see docs/design.md), so
/// the deprecation is allowed here, in one place.
#[allow(deprecated)]
pub fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Where a store comes from: its file, password and declared type (as written, or from the
/// agent-wide defaults).
#[derive(Clone, PartialEq, Eq)]
struct StoreSource {
    path: PathBuf,
    password: Option<String>,
    store_type: String,
    /// The environment variable or property the path came from, if not the component's key.
    default_from: Option<&'static str>,
}

impl fmt::Debug for StoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSource")
            .field("path", &self.path)
            .field("password", &"<redacted>")
            .field("store_type", &self.store_type)
            .field("default_from", &self.default_from)
            .finish()
    }
}

/// Which store: its keys and its defaults.
#[derive(Clone, Copy)]
enum Role {
    Keystore,
    Truststore,
}

impl Role {
    fn key(self) -> &'static str {
        match self {
            Role::Keystore => "keystore",
            Role::Truststore => "truststore",
        }
    }
    fn password_key(self) -> &'static str {
        match self {
            Role::Keystore => "keystore-password",
            Role::Truststore => "truststore-password",
        }
    }
    fn type_key(self) -> &'static str {
        match self {
            Role::Keystore => "keystore-type",
            Role::Truststore => "truststore-type",
        }
    }
    fn env_path(self) -> &'static str {
        match self {
            Role::Keystore => ENV_NAMES[0],
            Role::Truststore => ENV_NAMES[3],
        }
    }
}

/// Reads a store's three keys, falling back on `defaults` when `use_defaults`. `None` when no
/// path is given (nothing recorded) or when a key is bad (recorded).
fn read_store(
    ctx: &Ctx<'_>,
    role: Role,
    defaults: &TlsDefaults,
    use_defaults: bool,
) -> Option<StoreSource> {
    let (d_path, d_password, d_type) = match (use_defaults, role) {
        (false, _) => (None, None, None),
        (true, Role::Keystore) => (
            defaults.keystore_path.clone(),
            defaults.keystore_password.clone(),
            defaults.keystore_type.clone(),
        ),
        (true, Role::Truststore) => (
            defaults.truststore_path.clone(),
            defaults.truststore_password.clone(),
            defaults.truststore_type.clone(),
        ),
    };
    let own_path = ctx.string(role.key()).filter(|p| !p.trim().is_empty());
    let password = ctx.string(role.password_key()).or(d_password);
    let store_type = ctx.string(role.type_key()).or(d_type);
    if ctx.has(role.key()) && own_path.is_none() {
        ctx.error(role.key(), "must not be empty");
        return None;
    }
    let default_from = own_path.is_none().then(|| role.env_path());
    let path = own_path.or(d_path)?;
    let store_type = store_type.unwrap_or_else(|| "JKS".to_owned());
    if !store::KNOWN_STORE_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(store_type.trim()))
    {
        ctx.error(
            role.type_key(),
            format!(
                "unknown store type \"{store_type}\": expected PKCS12 or PEM (a JKS-typed PKCS12 file is read as PKCS12)"
            ),
        );
        return None;
    }
    Some(StoreSource {
        path: PathBuf::from(path.trim()),
        password,
        store_type: store_type.trim().to_ascii_uppercase(),
        default_from,
    })
}

/// Records `error` about `source` on the key it belongs to.
fn record(ctx: &Ctx<'_>, component: &str, role: Role, source: &StoreSource, error: &TlsError) {
    let key = match error {
        TlsError::WrongPassword { .. } | TlsError::MissingPassword { .. } => role.password_key(),
        TlsError::Choice { key, .. } => key,
        _ => role.key(),
    };
    let origin = source
        .default_from
        .map(|v| format!(" ({} from {v})", role.key()))
        .unwrap_or_default();
    ctx.error(key, format!("{component}: {error}{origin}"));
}

/// A loaded store failure, with the store it is about.
struct Failure {
    role: Role,
    error: TlsError,
}

fn fail(role: Role) -> impl FnOnce(TlsError) -> Failure {
    move |error| Failure { role, error }
}

/// A trust anchor store from a truststore file.
fn roots_from(source: &StoreSource) -> Result<RootCertStore, TlsError> {
    let certs = store::load_truststore(&source.path, source.password.as_deref())?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::Malformed {
            path: source.path.clone(),
            detail: "no usable CA certificate".to_owned(),
        });
    }
    Ok(roots)
}

/// A keystore's certificate chain and key, checked to belong together.
struct Certified {
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    expiry: Option<store::Expiry>,
}

/// The certificate chain and key of a keystore, checked to belong together.
fn certified(source: &StoreSource, provider: &CryptoProvider) -> Result<Certified, TlsError> {
    let (material, expiry) =
        store::load_keystore(&source.path, source.password.as_deref(), UnixTime::now())?;
    match rustls::sign::CertifiedKey::from_der(
        material.chain.clone(),
        material.key.clone_key(),
        provider,
    ) {
        Ok(_) => Ok(Certified {
            chain: material.chain,
            key: material.key,
            expiry,
        }),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            path: source.path.clone(),
        }),
        Err(e) => Err(TlsError::UnusableKey {
            path: source.path.clone(),
            detail: e.to_string(),
        }),
    }
}

/// Keys every TLS-aware component reads; used to refuse them when `ssl` is not on.
const SHARED_KEYS: &[&str] = &[
    "keystore",
    "keystore-password",
    "keystore-type",
    "truststore",
    "truststore-password",
    "truststore-type",
    "include-protocols",
    "exclude-protocols",
    "include-cipher-suites",
    "exclude-cipher-suites",
];

/// Reads `ssl`; when it is not true, refuses (absent `ssl`) or marks as ignored (`ssl =
/// false`) the TLS keys present, so that a forgotten `ssl = true` never means plaintext
/// silently.
fn ssl_enabled(ctx: &Ctx<'_>, component: &str, extra_keys: &[&str]) -> bool {
    let explicit = ctx.has("ssl");
    if ctx.bool("ssl", false) {
        return true;
    }
    for key in SHARED_KEYS.iter().chain(extra_keys) {
        if ctx.has(key) {
            ctx.mark_used(key);
            if explicit && !ctx.has_error_for("ssl") {
                ctx.warn(key, format!("{component}: ignored because ssl is false"));
            } else {
                ctx.error(
                    key,
                    format!("{component}: a TLS key without ssl = true; set ssl = true to use TLS, or remove the key"),
                );
            }
        }
    }
    false
}

/// Whether a problem was recorded on `ssl`, a shared TLS key or one of `extra_keys`.
fn any_tls_error(ctx: &Ctx<'_>, extra_keys: &[&str]) -> bool {
    std::iter::once(&"ssl")
        .chain(SHARED_KEYS)
        .chain(extra_keys)
        .any(|k| ctx.has_error_for(k))
}

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

/// How soon before a certificate expires the configuration warns.
pub const EXPIRY_WARNING: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Warns on `key` when `expiry` is within [`EXPIRY_WARNING`].
fn warn_expiring(
    ctx: &Ctx<'_>,
    component: &str,
    key: &str,
    path: &Path,
    expiry: Option<&store::Expiry>,
) {
    let Some(e) = expiry else { return };
    let now = UnixTime::now().as_secs();
    let left = u64::try_from(e.not_after_secs)
        .unwrap_or(0)
        .saturating_sub(now);
    if left < EXPIRY_WARNING.as_secs() {
        ctx.warn(
            key,
            format!(
                "{component}: the certificate \"{}\" in {} expires on {} (in {} days)",
                e.subject,
                path.display(),
                e.not_after,
                left / 86_400
            ),
        );
    }
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
    /// The agent-wide defaults come from the environment ([`TlsDefaults::from_env`]).
    pub fn parse(ctx: &Ctx<'_>, component: &str) -> Option<ServerTls> {
        Self::parse_with(ctx, component, &TlsDefaults::from_env())
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
                    "{component}: ssl is true but no keystore is set (nor {})",
                    ENV_NAMES[0]
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
    /// The agent-wide defaults come from the environment ([`TlsDefaults::from_env`]).
    pub fn parse(ctx: &Ctx<'_>, component: &str) -> Option<ClientTls> {
        Self::parse_with(ctx, component, &TlsDefaults::from_env())
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
