//! Encrypted put records as the inspection tools see them: which key sealed a record (read
//! from its envelope, no key needed) and, when keys are given, its plain payload.
//!
//! Every tool reads the record header and the envelope's prefix without a key, so `verify`,
//! `stat` and `repair` work on an encrypted channel with no key at all; only showing bodies and
//! authenticating records needs one. [`Unsealer`] is the one place a tool decrypts: it keeps
//! an engine [`Opener`] for the channel id the record's checksum is bound to (the id the
//! record key was derived with), so a damaged `channel.meta` does not turn every record into a
//! false "tampered".

use crate::encryption::{envelope, hex, EnvelopeError, Keyring, OpenFailure, Opener};
use crate::format::record::{RecordBinding, RecordHeader};
use std::sync::Arc;

/// The key an encrypted record names, read from its envelope without a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedWith {
    /// The key id (Flume's key alias).
    pub key_id: String,
    /// The key's check value, hex: tells two keys under one id apart.
    pub key_check: String,
}

/// The key `payload` (an encrypted put record's) names, or why its envelope does not parse.
pub fn sealed_with(payload: &[u8]) -> Result<SealedWith, EnvelopeError> {
    let env = envelope::parse(payload)?;
    Ok(SealedWith {
        key_id: env.key_id.to_owned(),
        key_check: hex(&env.key_check),
    })
}

/// Decrypts encrypted put records for a tool, with the keys given (none: every record fails
/// with [`OpenFailure::NoKeys`], naming its key).
pub(crate) struct Unsealer {
    keyring: Option<Arc<Keyring>>,
    opener: Option<(u64, Opener)>,
}

impl Unsealer {
    pub(crate) fn new(keyring: Option<Arc<Keyring>>) -> Self {
        Self {
            keyring,
            opener: None,
        }
    }

    /// Whether keys were given.
    pub(crate) fn has_keys(&self) -> bool {
        self.keyring.as_ref().is_some_and(|k| !k.is_empty())
    }

    /// The plain payload of the encrypted put record `header`/`payload`, read from a segment
    /// whose checksums carry `binding`.
    pub(crate) fn open(
        &mut self,
        binding: RecordBinding,
        header: &RecordHeader,
        payload: &[u8],
    ) -> Result<Vec<u8>, OpenFailure> {
        // Encrypted records exist only in format 3, bound to their channel; the channel id is
        // part of the record key.
        let channel_id = match binding {
            RecordBinding::Channel(id) => id,
            RecordBinding::Unbound => 0,
        };
        let opener = match &mut self.opener {
            Some((id, o)) if *id == channel_id => o,
            slot => {
                let o = Opener::new(self.keyring.clone(), channel_id);
                &mut slot.insert((channel_id, o)).1
            }
        };
        opener.open(
            &header.aad_bytes(),
            header.segment_id,
            header.offset,
            payload,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encryption::DataKey;

    #[test]
    fn sealed_with_needs_no_key_and_refuses_a_short_envelope() {
        assert!(sealed_with(&[]).is_err());
        assert!(sealed_with(&[0]).is_err());
        assert!(sealed_with(&[3, b'a', b'b']).is_err());
    }

    #[test]
    fn without_keys_every_record_fails_naming_nothing_it_cannot_read() {
        let mut u = Unsealer::new(None);
        assert!(!u.has_keys());
        let mut k = Keyring::new();
        k.insert("a", DataKey::new([1; 32])).unwrap();
        assert!(Unsealer::new(Some(Arc::new(k))).has_keys());
        let h = RecordHeader {
            len: 0,
            kind: crate::format::record::RecordKind::Put,
            flags: crate::format::record::FLAG_ENCRYPTED,
            event_count: 1,
            segment_id: 1,
            offset: 64,
            first_seq: 0,
            txn_id: 1,
            durable_mark: 0,
        };
        assert!(matches!(
            u.open(RecordBinding::Channel(9), &h, &[]),
            Err(OpenFailure::Envelope(_))
        ));
    }
}
