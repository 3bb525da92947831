//! Encryption at rest: the keys a channel holds ([`Keyring`]), the envelope an encrypted put
//! record's payload is wrapped in ([`envelope`]), and the record keys derived from a data key
//! ([`derive`]).
//!
//! Every put record of an encrypting channel is sealed with AES-256-GCM (`ring`; see
//! `docs/design.md` for why that crate). The record header stays readable, so recovery, the
//! loss ledger and `chanctl verify`/`repair` work without a key, and is authenticated as
//! associated data; the CRC covers the stored (encrypted) bytes. `docs/format.md` gives the
//! bytes and the argument that a nonce never repeats under one key.
//!
//! Keys are named by their id (Flume's key alias). A record names the id of the key it was
//! sealed with and carries an 8-byte check value of that key, so a missing key and a wrong key
//! (another key under the same id) are told apart from damage and from tampering before any
//! decryption is tried.

pub mod derive;
pub mod envelope;
mod opener;

pub use envelope::{EnvelopeError, EnvelopeHeader};
pub use opener::{OpenFailure, Opener};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Bytes of a record header that are associated data (all but its CRC; `docs/format.md`).
pub const HEADER_AAD_BYTES: usize = 52;

/// Bytes of a data key: AES-256.
pub const DATA_KEY_BYTES: usize = 32;

/// Longest key id, in bytes (the envelope stores its length in one byte).
pub const KEY_ID_BYTES_MAX: usize = 255;

/// The name of the one cipher this engine writes, as `encryption.cipherProvider` spells it.
pub const CIPHER_AES_256_GCM: &str = "AES-256-GCM";

/// A 256-bit data key. Its bytes are wiped when it is dropped and never printed.
#[derive(Clone)]
pub struct DataKey {
    bytes: Zeroizing<[u8; DATA_KEY_BYTES]>,
    check: [u8; derive::KEY_CHECK_BYTES],
}

impl DataKey {
    /// A key of these bytes.
    pub fn new(bytes: [u8; DATA_KEY_BYTES]) -> Self {
        let bytes = Zeroizing::new(bytes);
        let check = derive::key_check(&bytes);
        Self { bytes, check }
    }

    /// A key from a slice, which must be exactly [`DATA_KEY_BYTES`] long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyringError> {
        let array: [u8; DATA_KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| KeyringError::KeyLength { bytes: bytes.len() })?;
        Ok(Self::new(array))
    }

    /// A fresh random key (for benchmarks and tests; real keys come from a key provider).
    pub fn generate() -> Result<Self, KeyringError> {
        let mut bytes = [0u8; DATA_KEY_BYTES];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| KeyringError::Random)?;
        let key = Self::new(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(key)
    }

    /// The key's check value, stored in every record sealed with it: tells a wrong key from
    /// a tampered record without trying to decrypt.
    pub fn check(&self) -> [u8; derive::KEY_CHECK_BYTES] {
        self.check
    }

    pub(crate) fn bytes(&self) -> &[u8; DATA_KEY_BYTES] {
        &self.bytes
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(check {})", hex(&self.check))
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is wrong with a key or a keyring being built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// A key that is not 32 bytes.
    #[error("a data key must be {DATA_KEY_BYTES} bytes (AES-256), this one is {bytes}")]
    KeyLength {
        /// Its length.
        bytes: usize,
    },
    /// A key id that is empty, too long or not printable.
    #[error("key id {id:?} is not usable: {reason}")]
    KeyId {
        /// The id.
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// The active key is not among the keys.
    #[error("the active key {id:?} is not among the keys listed ({listed})")]
    ActiveMissing {
        /// The active id.
        id: String,
        /// The ids listed.
        listed: String,
    },
    /// The system's random source failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Checks that `id` can name a key: 1 to 255 bytes, no control characters.
pub fn check_key_id(id: &str) -> Result<(), KeyringError> {
    let bad = |reason| {
        Err(KeyringError::KeyId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > KEY_ID_BYTES_MAX {
        return bad("it is longer than 255 bytes");
    }
    if id.chars().any(char::is_control) {
        return bad("it holds a control character");
    }
    Ok(())
}

/// The keys a channel can read with, and the one it writes with.
///
/// `active` set: new put records are sealed with that key. `active` unset: nothing new is
/// encrypted, but records sealed with a listed key stay readable (`chanctl` opens channels
/// this way).
#[derive(Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<String, DataKey>,
    active: Option<String>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) key `id`.
    pub fn insert(&mut self, id: &str, key: DataKey) -> Result<(), KeyringError> {
        check_key_id(id)?;
        self.keys.insert(id.to_string(), key);
        Ok(())
    }

    /// Makes `id` the key new records are sealed with; it must be listed.
    pub fn set_active(&mut self, id: &str) -> Result<(), KeyringError> {
        if !self.keys.contains_key(id) {
            return Err(KeyringError::ActiveMissing {
                id: id.to_string(),
                listed: self.ids().collect::<Vec<_>>().join(", "),
            });
        }
        self.active = Some(id.to_string());
        Ok(())
    }

    /// A keyring with one fresh random key, active (benchmarks and tests).
    pub fn generated(id: &str) -> Result<Self, KeyringError> {
        let mut k = Self::new();
        k.insert(id, DataKey::generate()?)?;
        k.set_active(id)?;
        Ok(k)
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&DataKey> {
        self.keys.get(id)
    }

    /// The active key's id and key.
    pub fn active(&self) -> Option<(&str, &DataKey)> {
        let id = self.active.as_deref()?;
        Some((id, self.keys.get(id)?))
    }

    /// The ids listed.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether no key is listed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `check` is the check value of the key listed under `id`.
    pub fn lookup(&self, id: &str, check: &[u8; derive::KEY_CHECK_BYTES]) -> KeyLookup<'_> {
        match self.keys.get(id) {
            None => KeyLookup::Missing,
            Some(k) if &k.check == check => KeyLookup::Found(k),
            Some(_) => KeyLookup::Wrong,
        }
    }

    /// Shared, for a [`crate::ChannelConfig`].
    pub fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}

/// The result of [`Keyring::lookup`].
#[derive(Debug)]
pub enum KeyLookup<'a> {
    /// The key, and it is the one the record was sealed with.
    Found(&'a DataKey),
    /// No key of that id is listed.
    Missing,
    /// A key of that id is listed, but it is another key.
    Wrong,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys)
            .field("active", &self.active)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = DataKey::new([0xab; 32]);
        let s = format!("{:?}", Keyring::generated("k").unwrap());
        assert!(!format!("{k:?}").contains("abab"));
        assert!(s.contains("\"k\""), "{s}");
    }

    #[test]
    fn active_must_be_listed_and_ids_are_checked() {
        let mut k = Keyring::new();
        assert!(matches!(
            k.set_active("a"),
            Err(KeyringError::ActiveMissing { .. })
        ));
        assert!(k.insert("", DataKey::new([1; 32])).is_err());
        assert!(k.insert(&"x".repeat(256), DataKey::new([1; 32])).is_err());
        assert!(k.insert("a\nb", DataKey::new([1; 32])).is_err());
        k.insert("a", DataKey::new([1; 32])).unwrap();
        k.set_active("a").unwrap();
        assert_eq!(k.active().unwrap().0, "a");
        assert!(DataKey::from_slice(&[0; 31]).is_err());
    }

    #[test]
    fn lookup_tells_missing_from_wrong() {
        let mut k = Keyring::new();
        k.insert("a", DataKey::new([1; 32])).unwrap();
        let right = DataKey::new([1; 32]).check();
        let other = DataKey::new([2; 32]).check();
        assert!(matches!(k.lookup("a", &right), KeyLookup::Found(_)));
        assert!(matches!(k.lookup("a", &other), KeyLookup::Wrong));
        assert!(matches!(k.lookup("b", &right), KeyLookup::Missing));
    }
}
