//! Flume's `encryption.*` properties of a file channel, checked and turned into a
//! [`Keyring`]: which provider, which aliases, which files, and the active key.
//!
//! Every property under `encryption` is read or refused (an unknown spelling is an error, not
//! a warning: its meaning is security). Key ids are the aliases in lower case, for both
//! providers: Java lower-cases PKCS12 aliases, so a channel keeps its key ids when it moves
//! between `PKCS12FILE` and `KEYFILE`, and `chanctl` reading the keystore finds the same ids
//! the agent wrote.

use crate::error::{KeyConfigError, KeyConfigProblem};
use crate::pkcs12::{data_key, Keystore};
use crate::secret_file::{read_key_file, read_password};
use file_channel::encryption::{check_key_id, Keyring, CIPHER_AES_256_GCM};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The alias of the key new events are encrypted with.
pub const ACTIVE_KEY: &str = "encryption.activeKey";
/// The cipher; only [`CIPHER_AES_256_GCM`] (the default).
pub const CIPHER_PROVIDER: &str = "encryption.cipherProvider";
/// `PKCS12FILE` or `KEYFILE`.
pub const KEY_PROVIDER: &str = "encryption.keyProvider";
/// The PKCS12 keystore (`PKCS12FILE`).
pub const KEY_STORE_FILE: &str = "encryption.keyProvider.keyStoreFile";
/// The file holding the keystore's password (`PKCS12FILE`).
pub const KEY_STORE_PASSWORD_FILE: &str = "encryption.keyProvider.keyStorePasswordFile";
/// The aliases of the keys, space-separated.
pub const KEYS: &str = "encryption.keyProvider.keys";
/// `encryption.keyProvider.keys.<alias>.passwordFile`: a key's own password (`PKCS12FILE`).
pub const PASSWORD_FILE: &str = "passwordFile";
/// `encryption.keyProvider.keys.<alias>.keyFile`: a raw 32-byte key file (`KEYFILE`).
pub const KEY_FILE: &str = "keyFile";

/// The `keyProvider` value for a PKCS12 keystore.
pub const PROVIDER_PKCS12: &str = "PKCS12FILE";
/// The `keyProvider` value for raw key files.
pub const PROVIDER_KEY_FILE: &str = "KEYFILE";

const KEYS_PREFIX: &str = "encryption.keyProvider.keys.";

const KNOWN: &str = "encryption.activeKey, encryption.cipherProvider, encryption.keyProvider, \
    encryption.keyProvider.keyStoreFile, encryption.keyProvider.keyStorePasswordFile, \
    encryption.keyProvider.keys, encryption.keyProvider.keys.<alias>.passwordFile and \
    encryption.keyProvider.keys.<alias>.keyFile";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    Pkcs12File,
    KeyFile,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Pkcs12File => PROVIDER_PKCS12,
            Provider::KeyFile => PROVIDER_KEY_FILE,
        }
    }
}

/// Whether `key` is one of the encryption properties: its first segment is `encryption`, in
/// any case (a wrongly cased one is refused by name rather than passed over).
pub fn is_encryption_property(key: &str) -> bool {
    key.split('.')
        .next()
        .is_some_and(|s| s.eq_ignore_ascii_case("encryption"))
}

/// A per-key property: `encryption.keyProvider.keys.<alias>.<field>`.
struct PerKey<'a> {
    property: &'a str,
    alias: &'a str,
    field: &'static str,
    value: &'a str,
}

/// See [`crate::keyring_from_properties`].
pub(crate) fn keyring_from_properties(
    props: &BTreeMap<String, String>,
) -> Result<Option<Keyring>, KeyConfigError> {
    let enc: BTreeMap<&str, &str> = props
        .iter()
        .filter(|(k, _)| is_encryption_property(k))
        .map(|(k, v)| (k.as_str(), v.trim()))
        .collect();
    if enc.is_empty() {
        return Ok(None);
    }
    let mut per_key = Vec::new();
    for (&property, &value) in &enc {
        if [
            ACTIVE_KEY,
            CIPHER_PROVIDER,
            KEY_PROVIDER,
            KEY_STORE_FILE,
            KEY_STORE_PASSWORD_FILE,
            KEYS,
        ]
        .contains(&property)
        {
            continue;
        }
        let parsed = property.strip_prefix(KEYS_PREFIX).and_then(|rest| {
            let (alias, field) = rest.rsplit_once('.')?;
            let field = [PASSWORD_FILE, KEY_FILE]
                .into_iter()
                .find(|f| *f == field)?;
            (!alias.is_empty()).then_some(PerKey {
                property,
                alias,
                field,
                value,
            })
        });
        match parsed {
            Some(p) => per_key.push(p),
            None => {
                return Err(KeyConfigError::at(
                    property,
                    KeyConfigProblem::UnknownProperty { known: KNOWN },
                ))
            }
        }
    }
    if let Some(value) = enc.get(CIPHER_PROVIDER) {
        check_cipher(value).map_err(|p| KeyConfigError::at(CIPHER_PROVIDER, p))?;
    }
    let provider = parse_provider(required(
        &enc,
        KEY_PROVIDER,
        "when any encryption key is set: PKCS12FILE (a keytool PKCS12 keystore) or KEYFILE (raw 32-byte key files)",
    )?)
    .map_err(|p| KeyConfigError::at(KEY_PROVIDER, p))?;
    let active = required(
        &enc,
        ACTIVE_KEY,
        "with encryption.keyProvider: the alias of the key new events are encrypted with",
    )?;
    check_key_id(active).map_err(|e| KeyConfigError::at(ACTIVE_KEY, KeyConfigProblem::KeyId(e)))?;
    let aliases = list_aliases(required(
        &enc,
        KEYS,
        "with encryption.keyProvider: the aliases of the keys, space-separated",
    )?)?;
    let listed = aliases.join(" ");
    if !aliases
        .iter()
        .any(|a| a.to_lowercase() == active.to_lowercase())
    {
        return Err(KeyConfigError::at(
            ACTIVE_KEY,
            KeyConfigProblem::ActiveNotListed {
                active: active.to_owned(),
                listed,
            },
        ));
    }
    for p in &per_key {
        if !aliases
            .iter()
            .any(|a| a.to_lowercase() == p.alias.to_lowercase())
        {
            return Err(KeyConfigError::at(
                p.property,
                KeyConfigProblem::AliasNotListed {
                    alias: p.alias.to_owned(),
                    listed,
                },
            ));
        }
        let applies_to = match p.field {
            PASSWORD_FILE => Provider::Pkcs12File,
            _ => Provider::KeyFile,
        };
        if applies_to != provider {
            return Err(not_for(p.property, applies_to, provider));
        }
        if p.value.is_empty() {
            return Err(KeyConfigError::at(p.property, KeyConfigProblem::Empty));
        }
    }
    let file_of = |alias: &str, field: &str| -> Option<(&str, PathBuf)> {
        per_key
            .iter()
            .find(|p| p.field == field && p.alias.to_lowercase() == alias.to_lowercase())
            .map(|p| (p.property, PathBuf::from(p.value)))
    };
    let mut keyring = Keyring::new();
    match provider {
        Provider::Pkcs12File => {
            let keystore_path = PathBuf::from(required(
                &enc,
                KEY_STORE_FILE,
                "with encryption.keyProvider = PKCS12FILE: the PKCS12 keystore holding the keys",
            )?);
            let password_path = PathBuf::from(required(
                &enc,
                KEY_STORE_PASSWORD_FILE,
                "with encryption.keyProvider = PKCS12FILE: the file holding the keystore's password",
            )?);
            let password = read_password(&password_path)
                .map_err(|p| KeyConfigError::at(KEY_STORE_PASSWORD_FILE, p))?;
            let keystore =
                Keystore::open(&keystore_path, &password, &password_path).map_err(|p| {
                    let property = match p {
                        KeyConfigProblem::WrongPassword { .. } => KEY_STORE_PASSWORD_FILE,
                        _ => KEY_STORE_FILE,
                    };
                    KeyConfigError::at(property, p)
                })?;
            for alias in &aliases {
                let own_password = match file_of(alias, PASSWORD_FILE) {
                    Some((property, path)) => {
                        Some(read_password(&path).map_err(|p| KeyConfigError::at(property, p))?)
                    }
                    None => None,
                };
                let key = pkcs12_key(
                    &keystore,
                    alias,
                    own_password.as_deref().map(String::as_str),
                )
                .map_err(|p| KeyConfigError::at(KEYS, p))?;
                insert(&mut keyring, alias, key)?;
            }
        }
        Provider::KeyFile => {
            for property in [KEY_STORE_FILE, KEY_STORE_PASSWORD_FILE] {
                if enc.contains_key(property) {
                    return Err(not_for(property, Provider::Pkcs12File, provider));
                }
            }
            for alias in &aliases {
                let property = format!("{KEYS_PREFIX}{alias}.{KEY_FILE}");
                let Some((property, path)) = file_of(alias, KEY_FILE) else {
                    return Err(KeyConfigError::at(
                        property,
                        KeyConfigProblem::Required {
                            why: format!(
                                "with encryption.keyProvider = KEYFILE for every listed alias: the raw 32-byte key file of {alias:?}"
                            ),
                        },
                    ));
                };
                let key = read_key_file(&path).map_err(|p| KeyConfigError::at(property, p))?;
                insert(&mut keyring, alias, key)?;
            }
        }
    }
    keyring
        .set_active(&active.to_lowercase())
        .map_err(|e| KeyConfigError::at(ACTIVE_KEY, KeyConfigProblem::KeyId(e)))?;
    Ok(Some(keyring))
}

/// The key under `alias`: opened with its own password when one is given and opens it, with
/// the keystore's otherwise (keytool keeps PKCS12 keys under the keystore password).
fn pkcs12_key(
    keystore: &Keystore,
    alias: &str,
    own_password: Option<&str>,
) -> Result<file_channel::encryption::DataKey, KeyConfigProblem> {
    if let Some(secret) = own_password.and_then(|p| keystore.with_key_password(alias, p)) {
        return data_key(&secret, &keystore.path);
    }
    match keystore.find(alias)? {
        Some(secret) => data_key(secret, &keystore.path),
        None => Err(KeyConfigProblem::AliasMissing {
            alias: alias.to_owned(),
            keystore: keystore.path.clone(),
            present: keystore.describe(),
        }),
    }
}

fn insert(
    keyring: &mut Keyring,
    alias: &str,
    key: file_channel::encryption::DataKey,
) -> Result<(), KeyConfigError> {
    keyring
        .insert(&alias.to_lowercase(), key)
        .map_err(|e| KeyConfigError::at(KEYS, KeyConfigProblem::KeyId(e)))
}

fn not_for(property: &str, applies_to: Provider, provider: Provider) -> KeyConfigError {
    KeyConfigError::at(
        property,
        KeyConfigProblem::NotForProvider {
            applies_to: applies_to.name(),
            provider: provider.name(),
        },
    )
}

/// The value of `property`, which must be present and not blank.
fn required<'a>(
    enc: &BTreeMap<&str, &'a str>,
    property: &str,
    why: &str,
) -> Result<&'a str, KeyConfigError> {
    match enc.get(property) {
        None => Err(KeyConfigError::at(
            property,
            KeyConfigProblem::Required {
                why: why.to_owned(),
            },
        )),
        Some(&"") => Err(KeyConfigError::at(property, KeyConfigProblem::Empty)),
        Some(v) => Ok(v),
    }
}

/// The aliases of `encryption.keyProvider.keys`: usable as key ids, none twice (ignoring
/// case).
fn list_aliases(value: &str) -> Result<Vec<&str>, KeyConfigError> {
    let mut aliases: Vec<&str> = Vec::new();
    for alias in value.split_whitespace() {
        check_key_id(&alias.to_lowercase())
            .map_err(|e| KeyConfigError::at(KEYS, KeyConfigProblem::KeyId(e)))?;
        if aliases
            .iter()
            .any(|a| a.to_lowercase() == alias.to_lowercase())
        {
            return Err(KeyConfigError::at(
                KEYS,
                KeyConfigProblem::DuplicateAlias {
                    alias: alias.to_owned(),
                },
            ));
        }
        aliases.push(alias);
    }
    Ok(aliases)
}

/// `AES-256-GCM` (any case) is the one cipher; Flume's AES-CTR is refused with the reason.
fn check_cipher(value: &str) -> Result<(), KeyConfigProblem> {
    if value.is_empty() {
        return Err(KeyConfigProblem::Empty);
    }
    if value.eq_ignore_ascii_case(CIPHER_AES_256_GCM) {
        return Ok(());
    }
    if value.eq_ignore_ascii_case("AESCTRNOPADDING") || value.ends_with("AESCTRNoPaddingProvider") {
        return Err(KeyConfigProblem::CipherRefused {
            value: value.to_owned(),
        });
    }
    Err(KeyConfigProblem::UnknownCipher {
        value: value.to_owned(),
    })
}

/// `PKCS12FILE` or `KEYFILE` (any case); Flume's `JCEKSFILE` is refused with the command that
/// converts a JCEKS keystore.
fn parse_provider(value: &str) -> Result<Provider, KeyConfigProblem> {
    if value.eq_ignore_ascii_case(PROVIDER_PKCS12) {
        Ok(Provider::Pkcs12File)
    } else if value.eq_ignore_ascii_case(PROVIDER_KEY_FILE) {
        Ok(Provider::KeyFile)
    } else if value.eq_ignore_ascii_case("JCEKSFILE") || value.ends_with("JCEFileKeyProvider") {
        Err(KeyConfigProblem::JceksProvider {
            value: value.to_owned(),
        })
    } else {
        Err(KeyConfigProblem::UnknownProvider {
            value: value.to_owned(),
        })
    }
}

/// See [`crate::keyring_from_keystore`].
pub(crate) fn keyring_from_keystore(
    keystore_path: &Path,
    password_file: &Path,
) -> Result<Keyring, KeyConfigError> {
    let password = read_password(password_file).map_err(KeyConfigError::bare)?;
    let keystore =
        Keystore::open(keystore_path, &password, password_file).map_err(KeyConfigError::bare)?;
    let mut keyring = Keyring::new();
    for secret in &keystore.secrets {
        let Ok(key) = data_key(secret, keystore_path) else {
            continue;
        };
        let id = secret.alias.to_lowercase();
        if keyring.get(&id).is_some() {
            return Err(KeyConfigError::bare(KeyConfigProblem::AmbiguousAlias {
                alias: id,
                keystore: keystore_path.to_owned(),
            }));
        }
        keyring
            .insert(&id, key)
            .map_err(|e| KeyConfigError::bare(KeyConfigProblem::KeyId(e)))?;
    }
    if keyring.is_empty() {
        return Err(KeyConfigError::bare(KeyConfigProblem::NoUsableKey {
            keystore: keystore_path.to_owned(),
            present: keystore.describe(),
        }));
    }
    Ok(keyring)
}
