//! The keys of an encrypted file channel: Flume's `encryption.*` properties turned into the
//! engine's [`Keyring`] (`file_channel::encryption`).
//!
//! Two key providers:
//! - `PKCS12FILE`: a PKCS12 keystore of secret keys made by `keytool -genseckey -storetype
//!   PKCS12`, its password in a file (`encryption.keyProvider.keyStoreFile`,
//!   `encryption.keyProvider.keyStorePasswordFile`), the keys named by alias
//!   (`encryption.keyProvider.keys`), as Flume's `JCEKSFILE` does with a JCEKS keystore (which
//!   is refused, with the `keytool` command that converts it);
//! - `KEYFILE`: one raw 32-byte file per alias (`encryption.keyProvider.keys.<alias>.keyFile`),
//!   accessible to its owner only, for hosts without Java tooling.
//!
//! Key ids are the aliases in lower case. Every mistake is a [`KeyConfigError`] naming the
//! property, the file and what is wrong; nothing is warned about and passed over.
//!
//! Its own crate because two programs read these keys: the agent (a file channel's
//! configuration) and `chanctl` (reading an encrypted channel directory offline). For the same
//! reason the Java `.properties` parser the agent reads its configuration with lives here
//! ([`properties_file`]): `chanctl --conf` reads a channel's keys from the agent's file exactly
//! as the agent does, without depending on the agent (tokio, HTTP, librdkafka).

mod error;
mod pkcs12;
mod properties;
pub mod properties_file;
mod secret_file;

pub use error::{KeyConfigError, KeyConfigProblem};
pub use file_channel::encryption::Keyring;
pub use pkcs12::MAX_KEYSTORE_BYTES;
pub use properties::{
    is_encryption_property, ACTIVE_KEY, CIPHER_PROVIDER, KEYS, KEY_FILE, KEY_PROVIDER,
    KEY_STORE_FILE, KEY_STORE_PASSWORD_FILE, PASSWORD_FILE, PROVIDER_KEY_FILE, PROVIDER_PKCS12,
};
pub use secret_file::MAX_PASSWORD_FILE_BYTES;

use std::collections::BTreeMap;
use std::path::Path;

/// The keyring a channel's properties describe.
///
/// `props`: the channel's own keys with the `<agent>.channels.<name>.` prefix removed (e.g.
/// "encryption.activeKey"); keys outside `encryption.*` are passed over. `Ok(None)` when no
/// `encryption.*` key is present. Otherwise every listed key is read (files, keystore) and
/// the active key is set, or the first problem found is returned.
pub fn keyring_from_properties(
    props: &BTreeMap<String, String>,
) -> Result<Option<Keyring>, KeyConfigError> {
    properties::keyring_from_properties(props)
}

/// Every 256-bit AES secret key of a PKCS12 keystore (`keytool -genseckey`), under its alias
/// in lower case, with no active key (for reading). Secret keys of other types or lengths are
/// passed over (Sluice never sealed anything with them); a keystore with none usable is an
/// error.
pub fn keyring_from_keystore(
    keystore: &Path,
    password_file: &Path,
) -> Result<Keyring, KeyConfigError> {
    properties::keyring_from_keystore(keystore, password_file)
}
