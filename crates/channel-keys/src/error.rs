//! What can be wrong with a channel's keys: [`KeyConfigError`] names the property (relative to
//! the channel, e.g. `encryption.keyProvider.keyStoreFile`) and a [`KeyConfigProblem`] that
//! names the file and the key alias involved and says what to do.
//!
//! The agent puts the problem on the property's line (`file:line: full.key: problem`);
//! `chanctl` prints the whole error. Neither ever shows key bytes or passwords.

use std::path::PathBuf;

/// A channel's encryption keys cannot be used: which property, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}{problem}", property_prefix(.property))]
pub struct KeyConfigError {
    /// The property the problem is about, relative to the channel (`encryption.activeKey`);
    /// `None` when no property is involved ([`crate::keyring_from_keystore`]).
    pub property: Option<String>,
    /// What is wrong.
    pub problem: KeyConfigProblem,
}

fn property_prefix(property: &Option<String>) -> String {
    property
        .as_ref()
        .map(|p| format!("{p}: "))
        .unwrap_or_default()
}

impl KeyConfigError {
    /// A problem about `property`.
    pub(crate) fn at(property: impl Into<String>, problem: KeyConfigProblem) -> Self {
        Self {
            property: Some(property.into()),
            problem,
        }
    }

    /// A problem about no property (a keystore given by path).
    pub(crate) fn bare(problem: KeyConfigProblem) -> Self {
        Self {
            property: None,
            problem,
        }
    }
}

/// What is wrong with a channel's keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyConfigProblem {
    /// A property under `encryption` that Sluice does not know.
    #[error("not an encryption key Sluice knows (property names are case-sensitive; the keys are {known}); an encryption key is honoured or refused, never ignored")]
    UnknownProperty {
        /// The keys that are known, for the message.
        known: &'static str,
    },
    /// A required property is absent.
    #[error("required {why}")]
    Required {
        /// Why it is required.
        why: String,
    },
    /// A property that must not be blank is.
    #[error("must not be empty")]
    Empty,
    /// A property that does not apply to the key provider chosen.
    #[error("applies only to encryption.keyProvider = {applies_to}, not {provider}; remove it")]
    NotForProvider {
        /// The provider it belongs to.
        applies_to: &'static str,
        /// The provider configured.
        provider: &'static str,
    },
    /// `encryption.cipherProvider = AESCTRNOPADDING` (Flume's).
    #[error("{value} is refused: AES-CTR without padding is unauthenticated (a flipped bit on disk decrypts to a silently changed event) and Flume's implementation reuses IVs; Sluice writes authenticated {gcm} instead, which is the default: remove the key or set it to {gcm}", gcm = file_channel::encryption::CIPHER_AES_256_GCM)]
    CipherRefused {
        /// The value as written.
        value: String,
    },
    /// An unknown cipher.
    #[error("unknown cipher provider {value:?}: the one Sluice writes is {gcm} (the default)", gcm = file_channel::encryption::CIPHER_AES_256_GCM)]
    UnknownCipher {
        /// The value as written.
        value: String,
    },
    /// `encryption.keyProvider = JCEKSFILE` (Flume's).
    #[error("{value} is refused: Sluice reads PKCS12 keystores, not JCEKS; convert yours with `keytool -importkeystore -srckeystore KEYSTORE.jceks -srcstoretype JCEKS -destkeystore KEYSTORE.p12 -deststoretype PKCS12` (and replace any key shorter than 256 bits) and set encryption.keyProvider = PKCS12FILE")]
    JceksProvider {
        /// The value as written.
        value: String,
    },
    /// An unknown key provider.
    #[error("unknown key provider {value:?}: expected PKCS12FILE (a keytool keystore) or KEYFILE (raw 32-byte key files)")]
    UnknownProvider {
        /// The value as written.
        value: String,
    },
    /// An alias listed twice (aliases are compared ignoring case).
    #[error("lists the alias {alias:?} twice (aliases are compared ignoring case)")]
    DuplicateAlias {
        /// The alias.
        alias: String,
    },
    /// A key alias that cannot name a key.
    #[error("{0}")]
    KeyId(file_channel::encryption::KeyringError),
    /// The active key is not among the listed keys.
    #[error("the active key {active:?} is not listed in encryption.keyProvider.keys ({listed}); list it there")]
    ActiveNotListed {
        /// The active alias.
        active: String,
        /// The aliases listed.
        listed: String,
    },
    /// A per-key property for an alias that is not listed.
    #[error(
        "names the alias {alias:?}, which is not listed in encryption.keyProvider.keys ({listed})"
    )]
    AliasNotListed {
        /// The alias.
        alias: String,
        /// The aliases listed.
        listed: String,
    },
    /// A file cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file is ("keystore", "password file", "key file").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is larger than any file of its kind.
    #[error("{what} {path} is larger than {limit} bytes, which no {what} is")]
    TooLarge {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A password file that is empty (or only whitespace) or not UTF-8.
    #[error("password file {path} {why}")]
    BadPassword {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// The keystore's password is wrong.
    #[error("the keystore {keystore} cannot be opened with the password in {password_file}: wrong password (or a damaged keystore)")]
    WrongPassword {
        /// The keystore.
        keystore: PathBuf,
        /// The password file.
        password_file: PathBuf,
    },
    /// A JKS or JCEKS file where a PKCS12 keystore is expected.
    #[error("{path} is a {store_type} keystore; Sluice reads PKCS12: convert it with `keytool -importkeystore -srckeystore {path} -srcstoretype {store_type} -destkeystore KEYSTORE.p12 -deststoretype PKCS12` and point encryption.keyProvider.keyStoreFile at the result")]
    JavaKeyStore {
        /// The file.
        path: PathBuf,
        /// `JKS` or `JCEKS`.
        store_type: &'static str,
    },
    /// Not a PKCS12 file, or a damaged one.
    #[error("{path} is not a readable PKCS12 keystore: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// No secret key under an alias.
    #[error("the keystore {keystore} holds no secret key under the alias {alias:?} (it holds: {present}; aliases are matched ignoring case, as keytool lower-cases them); add it with `keytool -genseckey -alias {alias} -keyalg AES -keysize 256 -storetype PKCS12 -keystore {keystore}`")]
    AliasMissing {
        /// The alias.
        alias: String,
        /// The keystore.
        keystore: PathBuf,
        /// The secret-key aliases it holds ("none" when none).
        present: String,
    },
    /// A keystore with two secret keys whose aliases differ only in case.
    #[error("the keystore {keystore} holds two secret keys whose aliases differ only in case ({alias:?}); aliases are matched ignoring case, so rename one")]
    AmbiguousAlias {
        /// The alias, lower-cased.
        alias: String,
        /// The keystore.
        keystore: PathBuf,
    },
    /// A secret key that is not an AES key.
    #[error("the key under the alias {alias:?} in {keystore} is a {key_type} key, not AES; make a 256-bit AES key with `keytool -genseckey -alias NEW-ALIAS -keyalg AES -keysize 256 -storetype PKCS12 -keystore {keystore}`")]
    NotAes {
        /// The alias.
        alias: String,
        /// The keystore.
        keystore: PathBuf,
        /// Its type, as the keystore names it.
        key_type: String,
    },
    /// An AES key that is not 256 bits long.
    #[error("the AES key under the alias {alias:?} in {keystore} is {bits}-bit; Sluice encrypts with AES-256 and needs a 256-bit key: make one with `keytool -genseckey -alias NEW-ALIAS -keyalg AES -keysize 256 -storetype PKCS12 -keystore {keystore}`")]
    KeySize {
        /// The alias.
        alias: String,
        /// The keystore.
        keystore: PathBuf,
        /// Its length in bits.
        bits: usize,
    },
    /// A keystore without any usable secret key.
    #[error("the keystore {keystore} holds no 256-bit AES secret key (it holds: {present})")]
    NoUsableKey {
        /// The keystore.
        keystore: PathBuf,
        /// What it holds.
        present: String,
    },
    /// A raw key file readable by group or others.
    #[error("key file {path} has mode {mode:04o}: group or others have access to it; a key file must be accessible to its owner only (chmod 600 {path})")]
    KeyFileMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A raw key file that is not a regular file.
    #[error("key file {path} is not a regular file")]
    KeyFileNotRegular {
        /// The file.
        path: PathBuf,
    },
    /// A raw key file of the wrong length.
    #[error("key file {path} holds {bytes} bytes; a key file holds exactly 32 raw bytes (an AES-256 key), made for example with `openssl rand -out {path} 32`{hint}")]
    KeyFileLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        bytes: u64,
        /// A hint when the file looks like hex or base64 text.
        hint: &'static str,
    },
}

impl KeyConfigProblem {
    /// A [`KeyConfigProblem::Read`].
    pub(crate) fn read(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Read {
            what,
            path: path.to_owned(),
            source,
        }
    }
}
