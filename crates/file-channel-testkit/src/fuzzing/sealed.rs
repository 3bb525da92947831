//! The encrypted side of the fuzz bodies: what must hold of an encrypted put record and of an
//! encryption envelope read from any bytes (format 3, `docs/format.md`).
//!
//! * [`envelope_invariants`]: `envelope::parse` never panics, and what it accepts is
//!   consistent with the bytes (key id, prefix and tag inside the payload).
//! * [`check_encrypted_record`]: a decoded encrypted put record authenticates the header that
//!   is stored; opening it with the test key, with another key under the same id, with the id
//!   missing or with no keys at all gives exactly the failure its envelope predicts (never a
//!   panic, never "tampered" for a key problem); a record that opens decodes to its events, and
//!   sealed again at the same place opens to the same payload.

use crate::harness::encrypt::{test_keyring, TEST_KEY_ID};
use file_channel::encryption::derive::{KEY_CHECK_BYTES, SALT_BYTES, TAG_BYTES};
use file_channel::encryption::envelope::{self, EnvelopeHeader, Sealer};
use file_channel::encryption::{DataKey, KeyLookup, Keyring, OpenFailure, Opener};
use file_channel::format::record::{
    self, Decoded, PendingRecord, RecordBinding, RecordHeader, RecordKind, RecordPlace,
    RECORD_HEADER_BYTES,
};
use std::sync::Arc;

/// Checks what `envelope::parse` says about `payload` against the bytes.
pub(super) fn envelope_invariants(payload: &[u8]) {
    let Ok(env) = envelope::parse(payload) else {
        return;
    };
    let k = usize::from(payload[0]);
    assert!(k > 0, "an empty key id was accepted");
    assert_eq!(env.key_id.as_bytes(), &payload[1..1 + k], "key id");
    assert_eq!(
        env.prefix_len,
        1 + k + KEY_CHECK_BYTES + SALT_BYTES,
        "prefix"
    );
    assert_eq!(
        env.prefix_len + env.plain_len + TAG_BYTES,
        payload.len(),
        "the envelope does not add up to the payload"
    );
    assert_eq!(&env.key_check[..], &payload[1 + k..1 + k + KEY_CHECK_BYTES]);
}

/// Keyrings to open with: the test key; another key under the test key's id; a key under
/// another id only.
fn keyrings() -> [Arc<Keyring>; 3] {
    let other = |id: &str| {
        let mut k = Keyring::new();
        let _ = k.insert(id, DataKey::new([0x5a; 32]));
        let _ = k.set_active(id);
        Arc::new(k)
    };
    [test_keyring(), other(TEST_KEY_ID), other("another-key")]
}

/// What opening with `keys` must give, from the envelope alone: `None` when the key is there
/// (the record opens, or is reported tampered).
fn predicted(keys: Option<&Keyring>, env: &EnvelopeHeader<'_>) -> Option<OpenFailure> {
    let key_id = env.key_id.to_string();
    match keys.map(|k| k.lookup(env.key_id, &env.key_check)) {
        None => Some(OpenFailure::NoKeys { key_id }),
        Some(KeyLookup::Missing) => Some(OpenFailure::MissingKey { key_id }),
        Some(KeyLookup::Wrong) => Some(OpenFailure::WrongKey { key_id }),
        Some(KeyLookup::Found(_)) => None,
    }
}

/// Checks a decoded encrypted put record `h` (stored header `stored`, payload `payload`) of
/// channel `channel_id` (the decoder checked its segment id and offset). Returns its plain
/// payload if the test key opened it.
#[allow(clippy::panic)] // a panic is how a fuzz target reports a finding
pub(super) fn check_encrypted_record(
    h: &RecordHeader,
    stored: &[u8],
    payload: &[u8],
    channel_id: u64,
) -> Option<Vec<u8>> {
    assert!(h.is_encrypted() && h.kind == RecordKind::Put);
    let aad = h.aad_bytes();
    assert_eq!(&aad[..4], &stored[..4], "associated data: length");
    assert_eq!(
        &aad[4..],
        &stored[8..RECORD_HEADER_BYTES],
        "associated data differs from the stored header"
    );
    envelope_invariants(payload);
    let env = envelope::parse(payload);
    let [test, wrong, other_id] = keyrings();
    let mut plain = None;
    for (keys, is_test) in [
        (None, false),
        (Some(test), true),
        (Some(wrong), false),
        (Some(other_id), false),
    ] {
        let mut opener = Opener::new(keys.clone(), channel_id);
        let got = opener.open(&aad, h.segment_id, h.offset, payload);
        let env = match &env {
            Err(e) => {
                assert_eq!(got, Err(OpenFailure::Envelope(e.clone())), "envelope error");
                continue;
            }
            Ok(env) => env,
        };
        match (predicted(keys.as_deref(), env), got) {
            (Some(want), got) => assert_eq!(got, Err(want), "key problem misreported"),
            (None, Ok(p)) => {
                assert_eq!(p.len(), env.plain_len, "plain length");
                if is_test {
                    plain = Some(p);
                }
            }
            (None, Err(OpenFailure::Tampered { key_id })) => assert_eq!(key_id, env.key_id),
            (None, Err(e)) => panic!("the key is there, yet opening says: {e}"),
        }
    }
    if let Some(p) = &plain {
        reseal_and_open(h, p, channel_id);
    }
    plain
}

/// Seals `plain` again as the put record `h` describes (a fresh salt, the test key) and checks
/// that it decodes to the same header and opens to the same payload.
#[allow(clippy::panic)] // a panic is how a fuzz target reports a finding
fn reseal_and_open(h: &RecordHeader, plain: &[u8], channel_id: u64) {
    let keys = test_keyring();
    let Some((id, key)) = keys.active() else {
        return;
    };
    let Ok(sealer) = Sealer::new(id, key, channel_id, h.segment_id) else {
        return;
    };
    let mut p = PendingRecord::new(RecordKind::Put, h.txn_id);
    p.bytes.extend_from_slice(plain);
    p.event_count = h.event_count;
    p.seal_payload();
    let place = RecordPlace {
        segment_id: h.segment_id,
        offset: h.offset,
        durable_mark: h.durable_mark,
        binding: RecordBinding::Channel(channel_id),
    };
    let mut out = Vec::new();
    if p.frame_sealed_into(place, h.first_seq, &sealer, &mut out)
        .is_err()
    {
        return;
    }
    let decoded = record::decode(&out, place.binding, h.segment_id, h.offset);
    let Ok(Decoded::Record(h2, payload2)) = decoded else {
        panic!("a record sealed again does not decode: {decoded:?}");
    };
    assert_eq!(&h2, h, "sealed again, the header differs");
    let mut opener = Opener::new(Some(keys.clone()), channel_id);
    let again = opener.open(&h2.aad_bytes(), h.segment_id, h.offset, payload2);
    assert_eq!(
        again.as_deref(),
        Ok(plain),
        "sealed again, it opens differently"
    );
}
