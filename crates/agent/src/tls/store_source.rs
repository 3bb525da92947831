//! From a component's `keystore*` / `truststore*` keys (or the agent-wide defaults) to checked
//! material: [`read_store`] reads the three keys of a store into a [`StoreSource`],
//! [`roots_from`] and [`certified`] load it, and [`record`] puts a failure on the key it
//! belongs to. Shared by the server side ([`super::server`]) and the client side
//! ([`super::client`]), which differ only in which stores they read and how they use them.

use super::{store, TlsDefaults, TlsError, ENV_NAMES, PROPERTY_NAMES};
use crate::config::context::Ctx;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::RootCertStore;
use std::fmt;
use std::path::PathBuf;

/// Where a store comes from: its file, password and declared type (as written, or from the
/// agent-wide defaults).
#[derive(Clone, PartialEq, Eq)]
pub(super) struct StoreSource {
    pub(super) path: PathBuf,
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
pub(super) enum Role {
    Keystore,
    Truststore,
}

impl Role {
    pub(super) fn key(self) -> &'static str {
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
    /// Where the default path came from: the `-D` system property when the context has it
    /// (it wins, as in [`TlsDefaults::for_context`]), else the environment variable.
    fn default_source(self, ctx: &Ctx<'_>) -> &'static str {
        let (property, env) = match self {
            Role::Keystore => (PROPERTY_NAMES[0], ENV_NAMES[0]),
            Role::Truststore => (PROPERTY_NAMES[3], ENV_NAMES[3]),
        };
        match ctx.system_property(property) {
            Some(v) if !v.trim().is_empty() => property,
            _ => env,
        }
    }
}

/// Reads a store's three keys, falling back on `defaults` when `use_defaults`. `None` when no
/// path is given (nothing recorded) or when a key is bad (recorded).
pub(super) fn read_store(
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
    let default_from = own_path.is_none().then(|| role.default_source(ctx));
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
pub(super) fn record(
    ctx: &Ctx<'_>,
    component: &str,
    role: Role,
    source: &StoreSource,
    error: &TlsError,
) {
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
pub(super) struct Failure {
    pub(super) role: Role,
    pub(super) error: TlsError,
}

pub(super) fn fail(role: Role) -> impl FnOnce(TlsError) -> Failure {
    move |error| Failure { role, error }
}

/// A trust anchor store from a truststore file.
pub(super) fn roots_from(source: &StoreSource) -> Result<RootCertStore, TlsError> {
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
pub(super) struct Certified {
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: rustls::pki_types::PrivateKeyDer<'static>,
    pub(super) expiry: Option<store::Expiry>,
}

/// The certificate chain and key of a keystore, checked to belong together.
pub(super) fn certified(
    source: &StoreSource,
    provider: &CryptoProvider,
) -> Result<Certified, TlsError> {
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
