//! [`Opener`]: decrypts encrypted put records for a reader (takes, replay tools, `chanctl`),
//! keeping the record keys it derived, and says exactly why a record cannot be opened: no
//! keys, a missing key, a wrong key, or a record whose checksum is good but whose
//! authentication fails (tampering).

use super::envelope::{self, EnvelopeError};
use super::{derive, KeyLookup, Keyring, HEADER_AAD_BYTES};
use ring::aead::LessSafeKey;
use std::ops::Range;
use std::sync::Arc;

/// Why an encrypted record could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenFailure {
    /// The envelope itself is malformed (its checksum was good: written that way, or forged).
    #[error("malformed encrypted payload: {0}")]
    Envelope(#[from] EnvelopeError),
    /// No keys were given, and the record is encrypted.
    #[error("the record is encrypted with key {key_id:?} and no keys were given")]
    NoKeys {
        /// The key the record names.
        key_id: String,
    },
    /// The key the record names is not listed.
    #[error("key {key_id:?} that the record was encrypted with is not among the keys given")]
    MissingKey {
        /// The key the record names.
        key_id: String,
    },
    /// A key of that id is listed, but it is not the key the record was sealed with.
    #[error("the key listed as {key_id:?} is not the key the record was encrypted with (its check value differs)")]
    WrongKey {
        /// The key the record names.
        key_id: String,
    },
    /// The right key, a good checksum, and authentication fails: the record was altered by
    /// someone who recomputed its checksum.
    #[error("record fails authentication under key {key_id:?} although its checksum is good: it was tampered with")]
    Tampered {
        /// The key the record names.
        key_id: String,
    },
}

impl OpenFailure {
    /// The key id the failure is about, if the envelope was readable.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Envelope(_) => None,
            Self::NoKeys { key_id }
            | Self::MissingKey { key_id }
            | Self::WrongKey { key_id }
            | Self::Tampered { key_id } => Some(key_id),
        }
    }
}

/// Decrypts encrypted put records of one channel.
pub struct Opener {
    keyring: Option<Arc<Keyring>>,
    channel_id: u64,
    /// The record key derived last, with what it was derived for (key id, salt, segment): a
    /// reader goes through a segment in order, and a segment's records share one.
    last: Option<(String, [u8; derive::SALT_BYTES], u64, LessSafeKey)>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("keyring", &self.keyring)
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener for channel `channel_id` with these keys (none: every encrypted record fails
    /// with [`OpenFailure::NoKeys`]).
    pub fn new(keyring: Option<Arc<Keyring>>, channel_id: u64) -> Self {
        Self {
            keyring,
            channel_id,
            last: None,
        }
    }

    /// Whether any key was given.
    pub fn has_keys(&self) -> bool {
        self.keyring.as_ref().is_some_and(|k| !k.is_empty())
    }

    /// Checks, without decrypting, that the key an envelope names is here and is the right one.
    pub fn check_key(&self, payload: &[u8]) -> Result<(), OpenFailure> {
        let env = envelope::parse(payload)?;
        self.key_for(env.key_id, &env.key_check).map(|_| ())
    }

    fn key_for(
        &self,
        key_id: &str,
        check: &[u8; derive::KEY_CHECK_BYTES],
    ) -> Result<&super::DataKey, OpenFailure> {
        let Some(ring) = &self.keyring else {
            return Err(OpenFailure::NoKeys {
                key_id: key_id.to_string(),
            });
        };
        match ring.lookup(key_id, check) {
            KeyLookup::Found(k) => Ok(k),
            KeyLookup::Missing => Err(OpenFailure::MissingKey {
                key_id: key_id.to_string(),
            }),
            KeyLookup::Wrong => Err(OpenFailure::WrongKey {
                key_id: key_id.to_string(),
            }),
        }
    }

    /// The plain payload of an encrypted put record: `header_aad` is its header without the
    /// CRC (`RecordHeader::aad_bytes`), it sits at `offset` of segment `segment_id`, and its
    /// stored payload is `payload`.
    pub fn open(
        &mut self,
        header_aad: &[u8; HEADER_AAD_BYTES],
        segment_id: u64,
        offset: u64,
        payload: &[u8],
    ) -> Result<Vec<u8>, OpenFailure> {
        let prefix_len = envelope::parse(payload)?.prefix_len;
        let mut owned = payload[prefix_len..].to_vec();
        let range = self.open_sealed(
            header_aad,
            segment_id,
            offset,
            &payload[..prefix_len],
            &mut owned,
        )?;
        owned.truncate(range.end);
        Ok(owned)
    }

    /// Like [`Self::open`], on a stored payload the caller owns: it is decrypted in place, and
    /// the range of the plain bytes in it is returned (no copy).
    pub fn open_owned(
        &mut self,
        header_aad: &[u8; HEADER_AAD_BYTES],
        segment_id: u64,
        offset: u64,
        payload: &mut [u8],
    ) -> Result<Range<usize>, OpenFailure> {
        let prefix_len = envelope::parse(payload)?.prefix_len;
        let (prefix, sealed) = payload.split_at_mut(prefix_len);
        let range = self.open_sealed(header_aad, segment_id, offset, prefix, sealed)?;
        Ok(range.start + prefix_len..range.end + prefix_len)
    }

    /// Opens `sealed` (ciphertext then tag) in place under the envelope prefix `prefix`;
    /// returns the plain bytes' range in `sealed`.
    fn open_sealed(
        &mut self,
        header_aad: &[u8; HEADER_AAD_BYTES],
        segment_id: u64,
        offset: u64,
        prefix: &[u8],
        sealed: &mut [u8],
    ) -> Result<Range<usize>, OpenFailure> {
        let env = envelope::parse_prefix(prefix)?;
        let current = self.last.as_ref().is_some_and(|(id, salt, seg, _)| {
            id == env.key_id && *salt == env.salt && *seg == segment_id
        });
        if !current {
            let key = self.key_for(env.key_id, &env.key_check)?;
            let record_key =
                derive::record_key(key.bytes(), &env.salt, self.channel_id, segment_id)
                    .map_err(|_| EnvelopeError::Crypto("derive a record key"))?;
            self.last = Some((env.key_id.to_string(), env.salt, segment_id, record_key));
        }
        let Some((_, _, _, record_key)) = &self.last else {
            return Err(EnvelopeError::Crypto("keep a record key").into());
        };
        let mut aad = [0u8; HEADER_AAD_BYTES + envelope::PREFIX_BYTES_MAX];
        aad[..HEADER_AAD_BYTES].copy_from_slice(header_aad);
        aad[HEADER_AAD_BYTES..HEADER_AAD_BYTES + prefix.len()].copy_from_slice(prefix);
        let aad = &aad[..HEADER_AAD_BYTES + prefix.len()];
        match envelope::open_in_place(record_key, offset, aad, sealed) {
            Some(plain) => Ok(0..plain.len()),
            None => Err(OpenFailure::Tampered {
                key_id: env.key_id.to_string(),
            }),
        }
    }
}
