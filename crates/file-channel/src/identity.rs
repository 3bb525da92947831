//! The channel identity file `channel.meta`: a random channel id written once when the
//! channel directory is created. Every segment header carries the id, so segments of another
//! channel copied into the directory are refused instead of being replayed.
//!
//! ```text
//!  0  8 bytes magic "SLUICECH"
//!  8  u32     format version the channel was created in (1 or 2)
//! 12  u32     reserved, 0
//! 16  u64     channel id
//! 24  u64     creation time, ms since the Unix epoch
//! 32  u32     CRC-32 of bytes 0..32
//! ```

use crate::format::le::{put_u32, put_u64, u32_at, u64_at};
use crate::format::{CorruptionKind, FORMAT_VERSION, OLDEST_READABLE_FORMAT_VERSION};
use crate::storage::Storage;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the identity file inside the channel directory.
pub const META_FILE_NAME: &str = "channel.meta";
/// Name of the lock file inside the channel directory.
pub const LOCK_FILE_NAME: &str = "in_use.lock";
const MAGIC: [u8; 8] = *b"SLUICECH";
const META_BYTES: usize = 36;

/// What `channel.meta` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The channel id every segment header and checkpoint repeats.
    pub channel_id: u64,
    /// The format version the channel was created in: in a channel created in format 2 every
    /// segment is format 2, so records behind a lost segment header are bound to the channel.
    pub format_version: u32,
}

/// Encodes an identity of a channel created in today's format.
pub fn encode(channel_id: u64, created_unix_ms: u64) -> Vec<u8> {
    encode_version(channel_id, created_unix_ms, FORMAT_VERSION)
}

/// Encodes an identity saying the channel was created in `format_version`.
pub fn encode_version(channel_id: u64, created_unix_ms: u64, format_version: u32) -> Vec<u8> {
    let mut b = vec![0u8; META_BYTES];
    b[0..8].copy_from_slice(&MAGIC);
    put_u32(&mut b, 8, format_version);
    put_u64(&mut b, 16, channel_id);
    put_u64(&mut b, 24, created_unix_ms);
    let crc = crc32fast::hash(&b[0..32]);
    put_u32(&mut b, 32, crc);
    b
}

/// Decodes an identity.
pub fn decode(b: &[u8]) -> Result<Identity, CorruptionKind> {
    if b.len() != META_BYTES {
        return Err(CorruptionKind::BadLength {
            len: b.len() as u64,
        });
    }
    if b[0..8] != MAGIC {
        return Err(CorruptionKind::BadMagic);
    }
    let expected = u32_at(b, 32);
    let actual = crc32fast::hash(&b[0..32]);
    if expected != actual {
        return Err(CorruptionKind::BadChecksum { expected, actual });
    }
    let version = u32_at(b, 8);
    if !(OLDEST_READABLE_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(CorruptionKind::UnsupportedVersion { version });
    }
    Ok(Identity {
        channel_id: u64_at(b, 16),
        format_version: version,
    })
}

/// A fresh channel id: time, process id and a stack address hashed together.
pub fn new_channel_id() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    let mut h = crc32fast::Hasher::new();
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&(std::ptr::addr_of!(local) as usize).to_le_bytes());
    let hi = u64::from(h.finalize());
    (hi << 32) ^ nanos
}

/// Writes the identity file of a channel created in `format_version` durably: temp file, fsync,
/// rename, directory fsync.
pub fn write(
    storage: &dyn Storage,
    dir: &Path,
    channel_id: u64,
    format_version: u32,
) -> io::Result<()> {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let tmp = dir.join(format!("{META_FILE_NAME}.tmp"));
    if storage.exists(&tmp) {
        storage.remove(&tmp)?;
    }
    let f = storage.create(&tmp)?;
    f.write_at(&encode_version(channel_id, created, format_version), 0)?;
    f.sync_data()?;
    storage.rename(&tmp, &dir.join(META_FILE_NAME))?;
    storage.sync_dir(dir)
}
