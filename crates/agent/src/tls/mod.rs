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
//! watched (the `live` module): new connections get a rotated certificate without a restart.
//!
//! rustls with the *ring* provider, given explicitly to every builder (no process-wide
//! default provider is installed or relied on).

mod client;
mod defaults;
mod error;
mod live;
mod params;
mod server;
mod store;
mod store_source;

pub use client::ClientTls;
pub use defaults::{TlsDefaults, ENV_NAMES, PROPERTY_NAMES};
pub use error::TlsError;
pub use live::{CHECK_INTERVAL, ERROR_LOG_INTERVAL};
pub use server::ServerTls;
pub(crate) use store::{load_truststore, KNOWN_STORE_TYPES};

/// Checks the keystore at `path` as a sink's or source's keystore is checked (password,
/// private key, every certificate valid now), for clients that hand the file itself to
/// another library (the Kafka components' librdkafka).
pub(crate) fn check_keystore(path: &Path, password: Option<&str>) -> Result<(), TlsError> {
    store::load_keystore(path, password, UnixTime::now()).map(|_| ())
}

/// Whether the file at `path` looks like PKCS12 (a DER structure) rather than PEM text; false
/// when it cannot be read (the caller has read it already).
pub(crate) fn is_pkcs12_file(path: &Path) -> bool {
    use std::io::Read;
    let mut first = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok_and(|()| first[0] == 0x30)
}

use crate::config::context::Ctx;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use std::path::Path;

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
