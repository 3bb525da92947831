//! What is derived from a data key: its check value, and the record keys and nonces that
//! actually seal records.
//!
//! A data key never seals a record itself. The writer draws a fresh random 128-bit salt each
//! time it starts writing into a segment (a new segment, a segment resumed at open, a batch
//! rolled back), and derives from (data key, salt, channel id, segment id) one record key by
//! HKDF-SHA256. Under that record key the nonce is the record's offset in the segment, which
//! only grows while the salt is in use. So a (record key, nonce) pair never repeats: two
//! records under one record key differ in offset, and two record keys from one data key
//! differ in salt (drawn independently, 2^-128 per pair) or in channel or segment.

use super::DATA_KEY_BYTES;
use ring::aead::{LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::hmac;

/// Bytes of a key check value.
pub const KEY_CHECK_BYTES: usize = 8;

/// Bytes of the salt a record key is derived with.
pub const SALT_BYTES: usize = 16;

/// Bytes of the GCM tag.
pub const TAG_BYTES: usize = 16;

const KEY_CHECK_LABEL: &[u8] = b"sluice key check v1";
const RECORD_KEY_LABEL: &[u8] = b"sluice record key v1";

/// The check value of a data key: the first 8 bytes of HMAC-SHA256(key, a fixed label). It
/// tells which key sealed a record; it reveals nothing a GCM tag would not.
pub fn key_check(key: &[u8; DATA_KEY_BYTES]) -> [u8; KEY_CHECK_BYTES] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), KEY_CHECK_LABEL);
    let mut out = [0u8; KEY_CHECK_BYTES];
    out.copy_from_slice(&tag.as_ref()[..KEY_CHECK_BYTES]);
    out
}

/// The record key for records of segment `segment_id` of channel `channel_id` written under
/// `salt`. (`ring` fails only on lengths outside HKDF's and AES-256's, which these are not.)
pub fn record_key(
    key: &[u8; DATA_KEY_BYTES],
    salt: &[u8; SALT_BYTES],
    channel_id: u64,
    segment_id: u64,
) -> Result<LessSafeKey, ring::error::Unspecified> {
    let prk = Salt::new(HKDF_SHA256, salt).extract(key);
    let channel = channel_id.to_le_bytes();
    let segment = segment_id.to_le_bytes();
    let info = [RECORD_KEY_LABEL, &channel[..], &segment[..]];
    let mut bytes = zeroize::Zeroizing::new([0u8; DATA_KEY_BYTES]);
    prk.expand(&info, &AES_256_GCM)?.fill(&mut bytes[..])?;
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes[..])?))
}

/// The nonce of the record at `offset`: the offset (8 bytes, little-endian), then 4 zero bytes.
pub fn nonce(offset: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&offset.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// A fresh random salt.
pub fn fresh_salt() -> Result<[u8; SALT_BYTES], ring::error::Unspecified> {
    let mut s = [0u8; SALT_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::aead::Aad;

    #[test]
    fn check_values_differ_between_keys_and_are_stable() {
        assert_eq!(key_check(&[1; 32]), key_check(&[1; 32]));
        assert_ne!(key_check(&[1; 32]), key_check(&[2; 32]));
    }

    #[test]
    fn record_keys_differ_by_salt_channel_and_segment() {
        let seal = |salt: [u8; 16], ch, seg| {
            let k = record_key(&[7; 32], &salt, ch, seg).unwrap();
            let mut b = b"same plaintext".to_vec();
            k.seal_in_place_append_tag(nonce(64), Aad::empty(), &mut b)
                .unwrap();
            b
        };
        let base = seal([1; 16], 1, 1);
        assert_eq!(base, seal([1; 16], 1, 1));
        assert_ne!(base, seal([2; 16], 1, 1));
        assert_ne!(base, seal([1; 16], 2, 1));
        assert_ne!(base, seal([1; 16], 1, 2));
    }
}
