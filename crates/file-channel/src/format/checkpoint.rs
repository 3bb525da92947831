//! Checkpoint files: a small snapshot of the queue state at a durable log position.
//!
//! ```text
//!   0  8 bytes magic "SLUICECP"
//!   8  u32     format version
//!  12  u32     reserved, 0
//!  16  u64     channel id
//!  24  u64     generation (increases by one per checkpoint)
//!  32  u64     creation time, ms since the Unix epoch
//!  40  u64     log position: segment id        } every record below this position is
//!  48  u64     log position: offset            } reflected in this snapshot; it is durable
//!  56  u64     next sequence number
//!  64  u64     low-water mark
//!  72  u64     read start: segment id          } a record position at or before the record
//!  80  u64     read start: offset              } holding the low-water mark
//!  88  u64     encoded bytes of pending events
//!  96  u64     next transaction id
//! 104  u64     first live segment (segments below it are deleted or deletable)
//! 112  u64     events lost to corruption so far
//! 120  u32     range count n
//! 124  u32     reserved, 0
//! 128  n × { u64 start, u64 end }   consumed ranges above the low-water mark, ascending
//!   …  u32     CRC-32 of every byte before it
//! ```

use super::le::{put_u32, put_u64, u32_at, u64_at};
use super::CorruptionKind;

/// The version of the checkpoint file layout: unchanged since format 1 (format 2 changed how
/// records are checksummed, not checkpoints), so a format-1 engine's checkpoints still load.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Magic bytes opening a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"SLUICECP";
/// Bytes before the ranges.
pub const CHECKPOINT_FIXED_BYTES: usize = 128;
/// Most out-of-order ranges a checkpoint holds (bounds the file at 256 MiB).
pub const MAX_CHECKPOINT_RANGES: u32 = 1 << 24;

/// A checkpoint's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The channel it belongs to.
    pub channel_id: u64,
    /// Generation; the newest valid one wins.
    pub generation: u64,
    /// Creation time, ms since the Unix epoch.
    pub created_unix_ms: u64,
    /// Log position (segment, offset) the snapshot covers.
    pub position: (u64, u64),
    /// Next sequence number at that position.
    pub next_seq: u64,
    /// Low-water mark.
    pub low_water_mark: u64,
    /// Where a reader may start: at or before the record holding the low-water mark.
    pub read_start: (u64, u64),
    /// Encoded bytes of the pending events.
    pub pending_bytes: u64,
    /// Next transaction id.
    pub next_txn_id: u64,
    /// Segments below this id are no longer needed.
    pub first_live_segment: u64,
    /// Events lost to corruption, cumulative.
    pub events_lost: u64,
    /// Consumed ranges above the low-water mark.
    pub ranges: Vec<(u64, u64)>,
}

impl Checkpoint {
    /// Encodes the checkpoint.
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            self.ranges.len() <= MAX_CHECKPOINT_RANGES as usize,
            "too many ranges"
        );
        let n = self.ranges.len();
        let mut b = vec![0u8; CHECKPOINT_FIXED_BYTES + 16 * n + 4];
        b[0..8].copy_from_slice(&CHECKPOINT_MAGIC);
        put_u32(&mut b, 8, CHECKPOINT_VERSION);
        put_u64(&mut b, 16, self.channel_id);
        put_u64(&mut b, 24, self.generation);
        put_u64(&mut b, 32, self.created_unix_ms);
        put_u64(&mut b, 40, self.position.0);
        put_u64(&mut b, 48, self.position.1);
        put_u64(&mut b, 56, self.next_seq);
        put_u64(&mut b, 64, self.low_water_mark);
        put_u64(&mut b, 72, self.read_start.0);
        put_u64(&mut b, 80, self.read_start.1);
        put_u64(&mut b, 88, self.pending_bytes);
        put_u64(&mut b, 96, self.next_txn_id);
        put_u64(&mut b, 104, self.first_live_segment);
        put_u64(&mut b, 112, self.events_lost);
        put_u32(&mut b, 120, n as u32);
        for (i, &(s, e)) in self.ranges.iter().enumerate() {
            put_u64(&mut b, CHECKPOINT_FIXED_BYTES + 16 * i, s);
            put_u64(&mut b, CHECKPOINT_FIXED_BYTES + 16 * i + 8, e);
        }
        let end = b.len() - 4;
        let crc = crc32fast::hash(&b[..end]);
        put_u32(&mut b, end, crc);
        b
    }

    /// Decodes and checks a checkpoint file's bytes.
    pub fn decode(b: &[u8]) -> Result<Self, CorruptionKind> {
        if b.len() < CHECKPOINT_FIXED_BYTES + 4 {
            return Err(CorruptionKind::Truncated {
                needed: (CHECKPOINT_FIXED_BYTES + 4) as u64,
                available: b.len() as u64,
            });
        }
        if b[0..8] != CHECKPOINT_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let n = u32_at(b, 120);
        if n > MAX_CHECKPOINT_RANGES {
            return Err(CorruptionKind::BadLength { len: u64::from(n) });
        }
        let expected_len = CHECKPOINT_FIXED_BYTES + 16 * n as usize + 4;
        if b.len() != expected_len {
            return Err(CorruptionKind::Truncated {
                needed: expected_len as u64,
                available: b.len() as u64,
            });
        }
        let end = b.len() - 4;
        let expected = u32_at(b, end);
        let actual = crc32fast::hash(&b[..end]);
        if expected != actual {
            return Err(CorruptionKind::BadChecksum { expected, actual });
        }
        let version = u32_at(b, 8);
        if version != CHECKPOINT_VERSION {
            return Err(CorruptionKind::UnsupportedVersion { version });
        }
        let cp = Self {
            channel_id: u64_at(b, 16),
            generation: u64_at(b, 24),
            created_unix_ms: u64_at(b, 32),
            position: (u64_at(b, 40), u64_at(b, 48)),
            next_seq: u64_at(b, 56),
            low_water_mark: u64_at(b, 64),
            read_start: (u64_at(b, 72), u64_at(b, 80)),
            pending_bytes: u64_at(b, 88),
            next_txn_id: u64_at(b, 96),
            first_live_segment: u64_at(b, 104),
            events_lost: u64_at(b, 112),
            ranges: (0..n as usize)
                .map(|i| {
                    (
                        u64_at(b, CHECKPOINT_FIXED_BYTES + 16 * i),
                        u64_at(b, CHECKPOINT_FIXED_BYTES + 16 * i + 8),
                    )
                })
                .collect(),
        };
        let mut prev = cp.low_water_mark;
        for &(s, e) in &cp.ranges {
            if s <= prev || e <= s || e > cp.next_seq {
                return Err(CorruptionKind::BadPayload {
                    what:
                        "checkpoint ranges are not ascending and disjoint above the low-water mark",
                });
            }
            prev = e;
        }
        if cp.low_water_mark > cp.next_seq || cp.read_start > cp.position {
            return Err(CorruptionKind::BadPayload {
                what: "checkpoint positions contradict each other",
            });
        }
        Ok(cp)
    }
}

/// File name of checkpoint generation `g`: `checkpoint-<g, 20 digits>.ckpt`.
pub fn checkpoint_file_name(generation: u64) -> String {
    format!("checkpoint-{generation:020}.ckpt")
}

/// The generation in a checkpoint file name, or `None`.
pub fn parse_checkpoint_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint-")?.strip_suffix(".ckpt")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            channel_id: 9,
            generation: 3,
            created_unix_ms: 5,
            position: (4, 4096),
            next_seq: 1000,
            low_water_mark: 100,
            read_start: (2, 64),
            pending_bytes: 12345,
            next_txn_id: 77,
            first_live_segment: 2,
            events_lost: 0,
            ranges: vec![(150, 160), (200, 300)],
        }
    }

    #[test]
    fn round_trip_and_every_bit_flip_detected() {
        let b = sample().encode();
        assert_eq!(Checkpoint::decode(&b), Ok(sample()));
        for bit in 0..b.len() * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Checkpoint::decode(&c).is_err(),
                "flip of bit {bit} accepted"
            );
        }
        for cut in 0..b.len() {
            assert!(
                Checkpoint::decode(&b[..cut]).is_err(),
                "cut at {cut} accepted"
            );
        }
    }

    #[test]
    fn inconsistent_content_is_refused_even_with_a_good_crc() {
        let mut cp = sample();
        cp.ranges = vec![(200, 300), (150, 160)];
        assert!(Checkpoint::decode(&cp.encode()).is_err());
        let mut cp = sample();
        cp.low_water_mark = 2000;
        assert!(Checkpoint::decode(&cp.encode()).is_err());
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(
            parse_checkpoint_file_name(&checkpoint_file_name(42)),
            Some(42)
        );
        assert_eq!(parse_checkpoint_file_name("checkpoint-1.ckpt"), None);
    }
}
