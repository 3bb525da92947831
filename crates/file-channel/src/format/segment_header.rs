//! The 64-byte header at the start of every segment file.
//!
//! ```text
//!  0  8 bytes  magic "SLUICESG"
//!  8  u32      format version (1 or 2: how the segment's records are checksummed)
//! 12  u32      header length (64)
//! 16  u64      segment id
//! 24  u64      channel id
//! 32  u64      first sequence number (the channel's next sequence when the segment was created)
//! 40  u64      creation time, milliseconds since the Unix epoch
//! 48  12 bytes reserved, zero
//! 60  u32      CRC-32 (crc32fast, IEEE) of bytes 0..60
//! ```

use super::le::{put_u32, put_u64, u32_at, u64_at};
use super::record::RecordBinding;
use super::{CorruptionKind, FORMAT_VERSION, OLDEST_READABLE_FORMAT_VERSION};

/// Size of the segment header; records start right after it.
pub const SEGMENT_HEADER_BYTES: usize = 64;

/// Magic bytes opening every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SLUICESG";

/// The decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The format version the segment was created in; it decides its records' binding.
    pub format_version: u32,
    /// The segment's id; also in its file name and in every record it holds.
    pub segment_id: u64,
    /// The channel the segment belongs to.
    pub channel_id: u64,
    /// The channel's next sequence number when the segment was created.
    pub first_seq: u64,
    /// Creation time in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
}

impl SegmentHeader {
    /// The header of a new segment, in today's format.
    pub fn new(segment_id: u64, channel_id: u64, first_seq: u64, created_unix_ms: u64) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            segment_id,
            channel_id,
            first_seq,
            created_unix_ms,
        }
    }

    /// What the checksums of the segment's records are bound to.
    pub fn binding(&self) -> RecordBinding {
        RecordBinding::for_version(self.format_version, self.channel_id)
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut b = [0u8; SEGMENT_HEADER_BYTES];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        put_u32(&mut b, 8, self.format_version);
        put_u32(&mut b, 12, SEGMENT_HEADER_BYTES as u32);
        put_u64(&mut b, 16, self.segment_id);
        put_u64(&mut b, 24, self.channel_id);
        put_u64(&mut b, 32, self.first_seq);
        put_u64(&mut b, 40, self.created_unix_ms);
        let crc = crc32fast::hash(&b[0..60]);
        put_u32(&mut b, 60, crc);
        b
    }

    /// Decodes and checks a header from the first bytes of a segment file.
    pub fn decode(b: &[u8]) -> Result<Self, CorruptionKind> {
        if b.len() < SEGMENT_HEADER_BYTES {
            return Err(CorruptionKind::Truncated {
                needed: SEGMENT_HEADER_BYTES as u64,
                available: b.len() as u64,
            });
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let expected = u32_at(b, 60);
        let actual = crc32fast::hash(&b[0..60]);
        if expected != actual {
            return Err(CorruptionKind::BadChecksum { expected, actual });
        }
        let version = u32_at(b, 8);
        if !(OLDEST_READABLE_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(CorruptionKind::UnsupportedVersion { version });
        }
        let header_len = u32_at(b, 12);
        if header_len as usize != SEGMENT_HEADER_BYTES {
            return Err(CorruptionKind::BadLength {
                len: u64::from(header_len),
            });
        }
        Ok(Self {
            format_version: version,
            segment_id: u64_at(b, 16),
            channel_id: u64_at(b, 24),
            first_seq: u64_at(b, 32),
            created_unix_ms: u64_at(b, 40),
        })
    }
}

/// The file name of segment `id`: `log-<id, 20 digits>.seg`, so names sort by id.
pub fn segment_file_name(id: u64) -> String {
    format!("log-{id:020}.seg")
}

/// The segment id in a segment file name, or `None` if `name` is not one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log-")?.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_every_single_bit_flip() {
        let h = SegmentHeader::new(7, 0xdead_beef, 1234, 99);
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(h.binding(), RecordBinding::Channel(0xdead_beef));
        let v1 = SegmentHeader {
            format_version: 1,
            ..h
        };
        assert_eq!(SegmentHeader::decode(&v1.encode()), Ok(v1));
        assert_eq!(v1.binding(), RecordBinding::Unbound);
        let v2 = SegmentHeader {
            format_version: 2,
            ..h
        };
        assert_eq!(SegmentHeader::decode(&v2.encode()), Ok(v2));
        assert_eq!(v2.binding(), RecordBinding::Channel(0xdead_beef));
        let v4 = SegmentHeader {
            format_version: 4,
            ..h
        };
        assert_eq!(
            SegmentHeader::decode(&v4.encode()),
            Err(CorruptionKind::UnsupportedVersion { version: 4 })
        );
        for bit in 0..(SEGMENT_HEADER_BYTES * 8) {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                SegmentHeader::decode(&c).is_err(),
                "flip of bit {bit} not detected"
            );
        }
        assert!(matches!(
            SegmentHeader::decode(&b[..10]),
            Err(CorruptionKind::Truncated {
                needed: 64,
                available: 10
            })
        ));
    }

    #[test]
    fn file_names_sort_by_id_and_parse_back() {
        assert_eq!(segment_file_name(42), "log-00000000000000000042.seg");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert!(segment_file_name(9) < segment_file_name(10));
        for bad in [
            "log-1.seg",
            "log-0000000000000000004x.seg",
            "x.seg",
            "log-00000000000000000042.tmp",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }
}
