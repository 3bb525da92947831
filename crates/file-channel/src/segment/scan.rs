//! [`Scanner`]: walks the records of one segment file with large positional reads.
//!
//! Replay, the take path and the inspection tools all read the log through this one type, so
//! they agree on where a record starts, where data ends and what counts as damage. The scanner
//! keeps one buffer (at most a chunk plus one record), never trusts a length before checking it
//! against [`MAX_RECORD_BYTES`], and reports damage as a value instead of failing.

use crate::format::record::{self, Decoded, RecordBinding, RecordHeader, RECORD_HEADER_BYTES};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::format::CorruptionKind;
use crate::limits::{MAX_RECORD_BYTES, RECORD_ALIGN_BYTES};
use crate::storage::DynFile;
use std::io;

/// Bytes read per positional read.
pub const SCAN_CHUNK_BYTES: usize = 4 << 20;

/// What the scanner found at its position.
#[derive(Debug)]
pub enum ScanItem<'a> {
    /// A valid record; the scanner moved past it.
    Record {
        /// Its header.
        header: RecordHeader,
        /// Its payload.
        payload: &'a [u8],
    },
    /// The end of data (zero length field or end of the readable bytes) at `offset`.
    End {
        /// Where data ends.
        offset: u64,
    },
    /// Bytes at `offset` are not a valid record. The scanner does not move.
    Bad {
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
}

/// Sequential reader of one segment's records.
#[derive(Debug)]
pub struct Scanner {
    file: DynFile,
    segment_id: u64,
    /// What the segment's record checksums are bound to (its format).
    binding: RecordBinding,
    /// Do not read at or past this offset (the visible end for the live reader).
    limit: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` holding file data (the rest is reused space, never re-zeroed).
    valid: usize,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Next record offset.
    pos: u64,
    /// The file ended (a read returned fewer bytes than asked) at this offset.
    eof_at: Option<u64>,
    /// Bytes of candidate records [`Scanner::find_next_valid`] decoded (and so checksummed):
    /// what keeps a search linear in the bytes scanned.
    search_decoded_bytes: u64,
}

impl Scanner {
    /// A scanner over `file` (segment `segment_id`, whose records carry `binding`) starting at
    /// `pos`, reading below `limit`.
    pub fn new(
        file: DynFile,
        segment_id: u64,
        binding: RecordBinding,
        pos: u64,
        limit: u64,
    ) -> Self {
        Self {
            file,
            segment_id,
            binding,
            limit,
            buf: Vec::new(),
            valid: 0,
            buf_start: pos,
            pos,
            eof_at: None,
            search_decoded_bytes: 0,
        }
    }

    /// A scanner at the first record of a segment, reading to the end of the file.
    pub fn from_start(file: DynFile, segment_id: u64, binding: RecordBinding) -> Self {
        Self::new(
            file,
            segment_id,
            binding,
            SEGMENT_HEADER_BYTES as u64,
            u64::MAX,
        )
    }

    /// The offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes of candidate records the searches so far decoded and checksummed.
    pub fn search_decoded_bytes(&self) -> u64 {
        self.search_decoded_bytes
    }

    /// The segment this scanner reads.
    pub fn segment_id(&self) -> u64 {
        self.segment_id
    }

    /// Raises (or lowers) the read limit; the live reader calls this as commits become visible.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
        if self.eof_at.is_some_and(|e| e < limit) {
            self.eof_at = None;
        }
    }

    /// Moves to `pos` (aligned), keeping buffered bytes when they cover it.
    pub fn seek(&mut self, pos: u64) {
        self.pos = pos;
        if pos < self.buf_start || pos > self.buf_start + self.valid as u64 {
            self.valid = 0;
            self.buf_start = pos;
        }
    }

    /// Makes `buf` hold `[pos, pos + want)` or as much of it as exists below the limit.
    /// Returns the number of bytes available from `pos`.
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        let have = |s: &Self| (s.buf_start + s.valid as u64).saturating_sub(s.pos) as usize;
        if have(self) >= want {
            return Ok(want);
        }
        // Drop consumed bytes so the buffer stays about one chunk plus one record.
        let consumed = (self.pos - self.buf_start) as usize;
        if consumed >= self.valid {
            // Past everything buffered (a record's padding can run past the end of the file).
            self.valid = 0;
            self.buf_start = self.pos;
        } else if consumed > 0 {
            self.buf.copy_within(consumed..self.valid, 0);
            self.valid -= consumed;
            self.buf_start = self.pos;
        }
        let end_wanted = self.pos + want.max(SCAN_CHUNK_BYTES) as u64;
        let mut end = end_wanted
            .min(self.limit)
            .min(self.eof_at.unwrap_or(u64::MAX));
        if self.limit == u64::MAX {
            // Reading to the end of the file: never size the buffer past it.
            end = end.min(self.file.len()?);
        }
        let mut at = self.buf_start + self.valid as u64;
        while at < end {
            let old = self.valid;
            let n = (end - at) as usize;
            if self.buf.len() < old + n {
                self.buf.resize(old + n, 0);
            }
            let got = self.file.read_at(&mut self.buf[old..old + n], at)?;
            self.valid = old + got;
            if got == 0 {
                self.eof_at = Some(at);
                break;
            }
            at += got as u64;
        }
        Ok(have(self).min(want))
    }

    /// Looks at the next record: returns it (and moves past it), the end of data, or damage.
    pub fn next_item(&mut self) -> io::Result<ScanItem<'_>> {
        let avail = self.fill(RECORD_HEADER_BYTES)?;
        let off = (self.pos - self.buf_start) as usize;
        let len = if avail >= 4 {
            u32::from_le_bytes([
                self.buf[off],
                self.buf[off + 1],
                self.buf[off + 2],
                self.buf[off + 3],
            ]) as usize
        } else {
            0
        };
        let avail = if len as u64 > RECORD_HEADER_BYTES as u64 && len as u64 <= MAX_RECORD_BYTES {
            self.fill(len)?
        } else {
            avail
        };
        let off = (self.pos - self.buf_start) as usize;
        let pos = self.pos;
        match record::decode(
            &self.buf[off..off + avail],
            self.binding,
            self.segment_id,
            pos,
        ) {
            Ok(Decoded::End) => Ok(ScanItem::End { offset: pos }),
            Err(kind) => Ok(ScanItem::Bad { offset: pos, kind }),
            Ok(Decoded::Record(header, _)) => {
                self.pos = pos + header.aligned_len();
                let start = off + RECORD_HEADER_BYTES;
                let payload = &self.buf[start..start + header.payload_len()];
                Ok(ScanItem::Record { header, payload })
            }
        }
    }

    /// Whether the record header buffered at `off` names this segment and file offset `at`.
    fn names_here(&self, off: usize, at: u64) -> bool {
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.buf[off + o..off + o + 8]);
            u64::from_le_bytes(b)
        };
        u64_at(16) == self.segment_id && u64_at(24) == at
    }

    /// Searches forward from `from` (aligned) for the next offset holding a valid record of
    /// this segment, reading below the limit. Used to tell a torn tail from damage in the
    /// middle of the log and to resume after damage. Leaves the scanner at the record found.
    pub fn find_next_valid(&mut self, from: u64) -> io::Result<Option<RecordHeader>> {
        let mut at = record::align_up(from);
        loop {
            self.seek(at);
            let avail = self.fill(RECORD_HEADER_BYTES)?;
            if avail < RECORD_HEADER_BYTES {
                return Ok(None);
            }
            let off = (at - self.buf_start) as usize;
            let len_bytes = &self.buf[off..off + 4];
            if len_bytes != [0, 0, 0, 0] {
                // Only a record of this segment written at this offset can be valid here; both
                // are in its header, so garbage (or another segment's records) is passed over
                // without checksumming the megabytes its length field may announce.
                if !self.names_here(off, at) {
                    at += RECORD_ALIGN_BYTES;
                    continue;
                }
                let len = u32::from_le_bytes([
                    self.buf[off],
                    self.buf[off + 1],
                    self.buf[off + 2],
                    self.buf[off + 3],
                ]);
                self.search_decoded_bytes += u64::from(len);
                if let ScanItem::Record { header, .. } = self.next_item()? {
                    self.seek(at);
                    return Ok(Some(header));
                }
            } else {
                // Skip the run of zero length fields already buffered without re-seeking.
                let step = RECORD_ALIGN_BYTES as usize;
                let mut o = off + step;
                while o + RECORD_HEADER_BYTES <= self.valid && self.buf[o..o + 4] == [0, 0, 0, 0] {
                    o += step;
                }
                at = self.buf_start + o as u64;
                continue;
            }
            at += RECORD_ALIGN_BYTES;
        }
    }
}
