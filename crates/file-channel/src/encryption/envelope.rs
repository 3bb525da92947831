//! The envelope of an encrypted put record: the payload after the 56-byte record header when
//! the header's `encrypted` flag is set.
//!
//! ```text
//! size field
//!    1  key id length k (1..=255)
//!    k  key id, UTF-8 (Flume's key alias)
//!    8  key check value of the data key (derive::key_check)
//!   16  salt the record key was derived with
//!    -  the put payload (events), encrypted: as long as the plain payload
//!   16  GCM tag
//! ```
//!
//! The associated data is the record header without its CRC (bytes 0..4 and 8..56) followed by
//! the envelope's prefix (key id length through salt). The nonce is the record's offset; the
//! record key comes from [`super::derive::record_key`].

use super::derive::{self, KEY_CHECK_BYTES, SALT_BYTES, TAG_BYTES};
use super::{DataKey, KEY_ID_BYTES_MAX};
use ring::aead::{Aad, LessSafeKey, Tag};

/// What is wrong with an envelope read from disk, or with sealing one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The payload is shorter than its own prefix and tag say.
    #[error("encrypted payload too short: {len} bytes, its envelope needs {needed}")]
    Short {
        /// Payload bytes.
        len: usize,
        /// Bytes the envelope needs.
        needed: usize,
    },
    /// The key id is empty or not UTF-8.
    #[error("encrypted payload names no readable key id")]
    KeyId,
    /// The cryptographic library refused (never expected: a bug).
    #[error("the AEAD library refused to {0}")]
    Crypto(&'static str),
}

/// The readable part of an envelope: which key sealed the record, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader<'a> {
    /// Id of the data key.
    pub key_id: &'a str,
    /// Check value of that key.
    pub key_check: [u8; KEY_CHECK_BYTES],
    /// Salt of the record key.
    pub salt: [u8; SALT_BYTES],
    /// Bytes of the prefix (key id length through salt): the sealed bytes start here.
    pub prefix_len: usize,
    /// Bytes of the plain payload.
    pub plain_len: usize,
}

/// Bytes an envelope adds to a payload sealed under a key id of `key_id_len` bytes.
pub const fn overhead(key_id_len: usize) -> usize {
    prefix_len(key_id_len) + TAG_BYTES
}

const fn prefix_len(key_id_len: usize) -> usize {
    1 + key_id_len + KEY_CHECK_BYTES + SALT_BYTES
}

/// The longest envelope prefix (key id length through salt).
pub const PREFIX_BYTES_MAX: usize = prefix_len(KEY_ID_BYTES_MAX);

/// The most an envelope adds to a payload.
pub const OVERHEAD_MAX: usize = overhead(KEY_ID_BYTES_MAX);

/// The key id, check value and salt of an envelope's prefix alone (`prefix` holds exactly
/// the prefix). Never panics.
pub fn parse_prefix(prefix: &[u8]) -> Result<EnvelopeHeader<'_>, EnvelopeError> {
    let k = *prefix.first().ok_or(EnvelopeError::KeyId)? as usize;
    if k == 0 {
        return Err(EnvelopeError::KeyId);
    }
    if prefix.len() != prefix_len(k) {
        return Err(EnvelopeError::Short {
            len: prefix.len(),
            needed: prefix_len(k),
        });
    }
    let key_id = std::str::from_utf8(&prefix[1..1 + k]).map_err(|_| EnvelopeError::KeyId)?;
    let mut key_check = [0u8; KEY_CHECK_BYTES];
    key_check.copy_from_slice(&prefix[1 + k..1 + k + KEY_CHECK_BYTES]);
    let mut salt = [0u8; SALT_BYTES];
    salt.copy_from_slice(&prefix[1 + k + KEY_CHECK_BYTES..]);
    Ok(EnvelopeHeader {
        key_id,
        key_check,
        salt,
        prefix_len: prefix.len(),
        plain_len: 0,
    })
}

/// Reads the envelope's prefix; needs no key. Never panics.
pub fn parse(payload: &[u8]) -> Result<EnvelopeHeader<'_>, EnvelopeError> {
    let k = *payload.first().ok_or(EnvelopeError::Short {
        len: payload.len(),
        needed: overhead(1),
    })? as usize;
    if k == 0 {
        return Err(EnvelopeError::KeyId);
    }
    let prefix = prefix_len(k);
    if payload.len() < prefix + TAG_BYTES {
        return Err(EnvelopeError::Short {
            len: payload.len(),
            needed: prefix + TAG_BYTES,
        });
    }
    Ok(EnvelopeHeader {
        plain_len: payload.len() - prefix - TAG_BYTES,
        ..parse_prefix(&payload[..prefix])?
    })
}

/// Seals put records for one stretch of writing into one segment: a data key, a fresh salt,
/// and the record key derived from them.
pub struct Sealer {
    key_id: String,
    key_check: [u8; KEY_CHECK_BYTES],
    salt: [u8; SALT_BYTES],
    record_key: LessSafeKey,
    segment_id: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.key_id)
            .field("segment_id", &self.segment_id)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for segment `segment_id` of channel `channel_id` with key `key_id`, under a
    /// fresh salt.
    pub fn new(
        key_id: &str,
        key: &DataKey,
        channel_id: u64,
        segment_id: u64,
    ) -> Result<Self, EnvelopeError> {
        let salt = derive::fresh_salt().map_err(|_| EnvelopeError::Crypto("draw a salt"))?;
        let record_key = derive::record_key(key.bytes(), &salt, channel_id, segment_id)
            .map_err(|_| EnvelopeError::Crypto("derive a record key"))?;
        Ok(Self {
            key_id: key_id.to_string(),
            key_check: key.check(),
            salt,
            record_key,
            segment_id,
        })
    }

    /// The segment this sealer writes into.
    pub fn segment_id(&self) -> u64 {
        self.segment_id
    }

    /// The key id it seals with.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Bytes the envelope adds to a payload.
    pub fn overhead(&self) -> usize {
        overhead(self.key_id.len())
    }

    /// Bytes of the envelope's prefix.
    pub fn prefix_len(&self) -> usize {
        prefix_len(self.key_id.len())
    }

    /// Appends the envelope's prefix to `out`.
    pub fn write_prefix(&self, out: &mut Vec<u8>) {
        out.push(self.key_id.len() as u8);
        out.extend_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(&self.key_check);
        out.extend_from_slice(&self.salt);
    }

    /// Encrypts `in_out` in place as the record at `offset`, authenticating `aad`; returns
    /// the tag.
    pub fn seal(&self, offset: u64, aad: &[u8], in_out: &mut [u8]) -> Result<Tag, EnvelopeError> {
        self.record_key
            .seal_in_place_separate_tag(derive::nonce(offset), Aad::from(aad), in_out)
            .map_err(|_| EnvelopeError::Crypto("seal a record"))
    }
}

/// Decrypts `sealed` (ciphertext then tag) in place as the record at `offset`; returns the
/// plaintext, or `None` when authentication fails.
pub fn open_in_place<'a>(
    record_key: &LessSafeKey,
    offset: u64,
    aad: &[u8],
    sealed: &'a mut [u8],
) -> Option<&'a mut [u8]> {
    record_key
        .open_in_place(derive::nonce(offset), Aad::from(aad), sealed)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trips_and_bad_envelopes_are_typed_errors() {
        let key = DataKey::new([3; 32]);
        let s = Sealer::new("key-1", &key, 9, 4).unwrap();
        let mut out = vec![];
        s.write_prefix(&mut out);
        out.extend_from_slice(b"abc");
        out.extend_from_slice(&[0; TAG_BYTES]);
        let e = parse(&out).unwrap();
        assert_eq!(e.key_id, "key-1");
        assert_eq!(e.key_check, key.check());
        assert_eq!(e.plain_len, 3);
        assert_eq!(e.prefix_len, s.prefix_len());
        assert_eq!(out.len(), 3 + s.overhead());
        assert!(matches!(parse(&[]), Err(EnvelopeError::Short { .. })));
        assert_eq!(parse(&[0; 64]), Err(EnvelopeError::KeyId));
        assert!(matches!(
            parse(&[200; 64]),
            Err(EnvelopeError::Short { .. })
        ));
        let mut bad = out.clone();
        bad[1] = 0xff;
        assert_eq!(parse(&bad), Err(EnvelopeError::KeyId));
        for n in 0..out.len() {
            let _ = parse(&out[..n]);
        }
    }

    #[test]
    fn seal_then_open_and_every_flip_fails() {
        let key = DataKey::new([3; 32]);
        let s = Sealer::new("k", &key, 9, 4).unwrap();
        let mut b = b"secret body".to_vec();
        let tag = s.seal(64, b"aad", &mut b).unwrap();
        assert_ne!(&b[..], b"secret body");
        b.extend_from_slice(tag.as_ref());
        let rk = derive::record_key(key.bytes(), &s.salt, 9, 4).unwrap();
        let mut good = b.clone();
        assert_eq!(
            open_in_place(&rk, 64, b"aad", &mut good).map(|p| p.to_vec()),
            Some(b"secret body".to_vec())
        );
        assert!(open_in_place(&rk, 72, b"aad", &mut b.clone()).is_none());
        assert!(open_in_place(&rk, 64, b"aae", &mut b.clone()).is_none());
        for bit in 0..b.len() * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                open_in_place(&rk, 64, b"aad", &mut c).is_none(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn two_sealers_never_share_a_salt() {
        let key = DataKey::new([3; 32]);
        let a = Sealer::new("k", &key, 1, 1).unwrap();
        let b = Sealer::new("k", &key, 1, 1).unwrap();
        assert_ne!(a.salt, b.salt);
    }
}
