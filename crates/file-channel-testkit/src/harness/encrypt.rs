//! Encryption at rest in the harness: every layer and fuzz target runs its channels with
//! encryption off (plain records) or on (every put record sealed, `docs/format.md`), and holds
//! both to the same checks: recovered bodies must equal what was put, nothing acknowledged is
//! lost, no phantoms, and damage is counted as damage, never as tampering.
//!
//! The key is a fixed test key ([`test_keyring`]), not a random one: a case is then the same
//! case whichever process runs it (the `kill` layer's children reopen each other's channels)
//! and a fuzz input replays alike on every machine. Which key seals the records changes
//! nothing the harness checks; salts stay fresh per segment, as in production.

use file_channel::encryption::{DataKey, Keyring};
use file_channel::ChannelConfig;
use std::fmt;
use std::sync::Arc;

/// Id of the test key (Flume's key alias).
pub const TEST_KEY_ID: &str = "harness-key-1";

/// Bytes of the test key.
const TEST_KEY_BYTES: [u8; 32] = *b"sluice-harness-test-key-32-bytes";

/// The test key.
pub fn test_key() -> DataKey {
    DataKey::new(TEST_KEY_BYTES)
}

/// A keyring holding the test key, active: every new put record is encrypted.
pub fn test_keyring() -> Arc<Keyring> {
    let mut k = Keyring::new();
    // A fixed, valid id and a 32-byte key: neither call can fail.
    let _ = k.insert(TEST_KEY_ID, test_key());
    let _ = k.set_active(TEST_KEY_ID);
    Arc::new(k)
}

/// Another key under the test key's id: what another channel (another agent, another keystore)
/// may hold under the same alias. The `damage` layer seals its foreign channel with it.
pub fn foreign_keyring() -> Arc<Keyring> {
    let mut k = Keyring::new();
    let _ = k.insert(
        TEST_KEY_ID,
        DataKey::new(*b"another-channel-key-same-id-32-b"),
    );
    let _ = k.set_active(TEST_KEY_ID);
    Arc::new(k)
}

/// Whether a case's channel encrypts its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encryption {
    /// Plain records (no keyring).
    #[default]
    Off,
    /// The test key active: every put record is sealed.
    On,
}

impl Encryption {
    /// Both modes, off first.
    pub const BOTH: [Encryption; 2] = [Encryption::Off, Encryption::On];

    /// `"off"` or `"on"`, as summaries and reproduce lines spell it.
    pub fn name(self) -> &'static str {
        match self {
            Encryption::Off => "off",
            Encryption::On => "on",
        }
    }

    /// The keyring a channel of this mode is opened with.
    pub fn keyring(self) -> Option<Arc<Keyring>> {
        match self {
            Encryption::Off => None,
            Encryption::On => Some(test_keyring()),
        }
    }

    /// `cfg` in this mode.
    pub fn apply(self, mut cfg: ChannelConfig) -> ChannelConfig {
        cfg.keyring = self.keyring();
        cfg
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_has_an_active_key_and_off_has_none() {
        let cfg = Encryption::On.apply(ChannelConfig::new("/x"));
        let ring = cfg.keyring.unwrap_or_else(|| panic!("no keyring"));
        assert_eq!(ring.active().map(|(id, _)| id), Some(TEST_KEY_ID));
        assert!(Encryption::Off
            .apply(ChannelConfig::new("/x"))
            .keyring
            .is_none());
    }
}
