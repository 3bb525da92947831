//! The secret keys of a PKCS12 keystore, as `keytool -genseckey -storetype PKCS12` writes
//! them (PBES2/AES, HMAC-SHA256 MAC), read with the `p12-keystore` crate.
//!
//! A JKS or JCEKS file (told by its first four bytes) is refused with the `keytool` command
//! that converts it. Aliases are matched ignoring case: Java lower-cases every alias it stores
//! in a PKCS12 keystore (`-alias Key-0` is listed as `key-0`). Only 256-bit AES keys are
//! usable; any other secret key is named, with its type or length, when it is asked for.

use crate::error::KeyConfigProblem;
use crate::secret_file::read_bounded;
use file_channel::encryption::{DataKey, DATA_KEY_BYTES};
use p12_keystore::secret::SecretKeyType;
use p12_keystore::Pkcs12Archive;
use std::path::{Path, PathBuf};

/// The largest keystore read: a keystore of secret keys is a few KiB.
pub const MAX_KEYSTORE_BYTES: u64 = 4 * 1024 * 1024;

/// One secret key of a keystore.
pub(crate) struct StoredSecret {
    /// The alias as stored (the bag's friendly name).
    pub alias: String,
    /// What kind of key it is.
    pub key_type: SecretKeyType,
    /// Its bytes, wiped on drop.
    pub bytes: zeroize::Zeroizing<Vec<u8>>,
}

/// An opened keystore: its secret keys that carry an alias.
pub(crate) struct Keystore {
    pub path: PathBuf,
    /// The file's bytes, to try a key's own password on.
    raw: Vec<u8>,
    pub secrets: Vec<StoredSecret>,
}

impl Keystore {
    /// Reads and decrypts the keystore at `path` with `password`; `password_file` is only
    /// for the message when the password is wrong.
    pub fn open(
        path: &Path,
        password: &str,
        password_file: &Path,
    ) -> Result<Self, KeyConfigProblem> {
        let raw = read_bounded("keystore", path, MAX_KEYSTORE_BYTES)?.to_vec();
        let store_type = match raw.get(..4) {
            Some([0xFE, 0xED, 0xFE, 0xED]) => Some("JKS"),
            Some([0xCE, 0xCE, 0xCE, 0xCE]) => Some("JCEKS"),
            _ => None,
        };
        if let Some(store_type) = store_type {
            return Err(KeyConfigProblem::JavaKeyStore {
                path: path.to_owned(),
                store_type,
            });
        }
        let archive = Pkcs12Archive::from_pkcs12(&raw, password).map_err(|e| match e {
            p12_keystore::error::Error::MacError(_) => KeyConfigProblem::WrongPassword {
                keystore: path.to_owned(),
                password_file: password_file.to_owned(),
            },
            other => KeyConfigProblem::Malformed {
                path: path.to_owned(),
                detail: other.to_string(),
            },
        })?;
        Ok(Self {
            path: path.to_owned(),
            secrets: secrets_of(archive),
            raw,
        })
    }

    /// The secret key under `alias` (ignoring case), if any; two of them are an error.
    pub fn find(&self, alias: &str) -> Result<Option<&StoredSecret>, KeyConfigProblem> {
        let wanted = alias.to_lowercase();
        let mut found = self
            .secrets
            .iter()
            .filter(|s| s.alias.to_lowercase() == wanted);
        let first = found.next();
        if first.is_some() && found.next().is_some() {
            return Err(KeyConfigProblem::AmbiguousAlias {
                alias: wanted,
                keystore: self.path.clone(),
            });
        }
        Ok(first)
    }

    /// The key under `alias` decrypted with `key_password`, when that password opens the
    /// keystore and the key (a keystore written by another tool may protect a key with its
    /// own password; Java's keytool keeps every PKCS12 key under the keystore password).
    pub fn with_key_password(&self, alias: &str, key_password: &str) -> Option<StoredSecret> {
        let archive = Pkcs12Archive::from_pkcs12(&self.raw, key_password).ok()?;
        let wanted = alias.to_lowercase();
        secrets_of(archive)
            .into_iter()
            .find(|s| s.alias.to_lowercase() == wanted)
    }

    /// The aliases of every secret key with what it is ("key-0 (AES-256), mac (HmacSHA256)"),
    /// or "none".
    pub fn describe(&self) -> String {
        if self.secrets.is_empty() {
            return "none".into();
        }
        self.secrets
            .iter()
            .map(|s| format!("{} ({})", s.alias, kind(s)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn secrets_of(archive: Pkcs12Archive) -> Vec<StoredSecret> {
    archive
        .secrets
        .into_iter()
        .filter_map(|bag| {
            Some(StoredSecret {
                alias: bag.friendly_name?,
                key_type: bag.key.key_type(),
                bytes: zeroize::Zeroizing::new(bag.key.key().to_vec()),
            })
        })
        .collect()
}

fn is_aes(t: SecretKeyType) -> bool {
    matches!(
        t,
        SecretKeyType::Aes
            | SecretKeyType::Aes128Cbc
            | SecretKeyType::Aes192Cbc
            | SecretKeyType::Aes256Cbc
    )
}

/// A key's type as Java names it, or its OID.
fn type_name(t: SecretKeyType) -> String {
    match t {
        SecretKeyType::Aes
        | SecretKeyType::Aes128Cbc
        | SecretKeyType::Aes192Cbc
        | SecretKeyType::Aes256Cbc => "AES".into(),
        SecretKeyType::DesCbc => "DES".into(),
        SecretKeyType::DesEde3Cbc => "DESede".into(),
        SecretKeyType::Blowfish => "Blowfish".into(),
        SecretKeyType::Rc2Cbc => "RC2".into(),
        SecretKeyType::Rc4 => "RC4".into(),
        SecretKeyType::Camelia => "Camellia".into(),
        SecretKeyType::HmacSha1 => "HmacSHA1".into(),
        SecretKeyType::HmacSha224 => "HmacSHA224".into(),
        SecretKeyType::HmacSha256 => "HmacSHA256".into(),
        SecretKeyType::HmacSha384 => "HmacSHA384".into(),
        SecretKeyType::HmacSha512 => "HmacSHA512".into(),
        SecretKeyType::Unknown(oid) => format!("unknown-type (OID {oid})"),
    }
}

fn kind(s: &StoredSecret) -> String {
    if is_aes(s.key_type) {
        format!("AES-{}", s.bytes.len() * 8)
    } else {
        type_name(s.key_type)
    }
}

/// The data key `secret` holds, if it is a 256-bit AES key; otherwise what it is instead.
pub(crate) fn data_key(
    secret: &StoredSecret,
    keystore: &Path,
) -> Result<DataKey, KeyConfigProblem> {
    if !is_aes(secret.key_type) {
        return Err(KeyConfigProblem::NotAes {
            alias: secret.alias.clone(),
            keystore: keystore.to_owned(),
            key_type: type_name(secret.key_type),
        });
    }
    if secret.bytes.len() != DATA_KEY_BYTES {
        return Err(KeyConfigProblem::KeySize {
            alias: secret.alias.clone(),
            keystore: keystore.to_owned(),
            bits: secret.bytes.len() * 8,
        });
    }
    DataKey::from_slice(&secret.bytes).map_err(KeyConfigProblem::KeyId)
}
