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
    /// Where in `buf` the payload of the record [`Scanner::next_item`] returned last is, until
    /// the scanner reads again.
    last_payload: Option<std::ops::Range<usize>>,
    /// Buffered bytes below this offset may have been changed by the caller
    /// ([`Scanner::last_payload_mut`]): a seek back below it reads the file again.
    altered_below: u64,
    /// Reads fetch [`SCAN_CHUNK_BYTES`] at a time (the default); off, only the bytes asked for.
    read_ahead: bool,
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
            last_payload: None,
            altered_below: 0,
            read_ahead: true,
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

    /// Reads ahead in chunks (on, the default), or reads only what a record needs (off: for a
    /// reader that skips most payloads, see [`Scanner::peek_header`]).
    pub fn set_read_ahead(&mut self, on: bool) {
        self.read_ahead = on;
    }

    /// Moves to `pos` (aligned), keeping buffered bytes when they cover it.
    pub fn seek(&mut self, pos: u64) {
        self.pos = pos;
        self.last_payload = None;
        if pos < self.buf_start.max(self.altered_below) || pos > self.buf_start + self.valid as u64
        {
            self.valid = 0;
            self.buf_start = pos;
        }
    }

    /// Makes `buf` hold `[pos, pos + want)` or as much of it as exists below the limit.
    /// Returns the number of bytes available from `pos`.
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        self.last_payload = None;
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
        let chunk = if self.read_ahead {
            want.max(SCAN_CHUNK_BYTES)
        } else {
            want
        };
        let end_wanted = self.pos + chunk as u64;
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
                let range = start..start + header.payload_len();
                self.last_payload = Some(range.clone());
                Ok(ScanItem::Record {
                    header,
                    payload: &self.buf[range],
                })
            }
        }
    }

    /// The payload of the record [`Scanner::next_item`] returned last, to change in place (a
    /// reader decrypts it there instead of copying it out), if the scanner has not read since.
    /// The scanner never hands those bytes out again: a seek back to them reads the file.
    pub fn last_payload_mut(&mut self) -> Option<&mut [u8]> {
        let range = self.last_payload.take()?;
        self.altered_below = self.altered_below.max(self.pos);
        self.buf.get_mut(range)
    }

    /// The header of the record at the cursor, if one is there that names this segment and
    /// this offset and ends below the limit. Its CRC is not checked: the payload is not read.
    /// Without read-ahead ([`Scanner::set_read_ahead`]), a header that is not buffered is read
    /// alone, for a reader that expects to skip the payload ([`Scanner::skip_record`]).
    pub fn peek_header(&mut self) -> io::Result<Option<RecordHeader>> {
        self.last_payload = None;
        let pos = self.pos;
        let end = pos + RECORD_HEADER_BYTES as u64;
        if end > self.limit {
            return Ok(None);
        }
        if (pos < self.buf_start || end > self.buf_start + self.valid as u64)
            && self.fill(RECORD_HEADER_BYTES)? < RECORD_HEADER_BYTES
        {
            return Ok(None);
        }
        let off = (pos - self.buf_start) as usize;
        let mut head = [0u8; RECORD_HEADER_BYTES];
        head.copy_from_slice(&self.buf[off..off + RECORD_HEADER_BYTES]);
        Ok(record::peek_header(&head).filter(|h| {
            h.segment_id == self.segment_id
                && h.offset == pos
                && pos.saturating_add(h.aligned_len()) <= self.limit
        }))
    }

    /// Moves past the record whose header [`Scanner::peek_header`] just returned, without
    /// reading its payload.
    pub fn skip_record(&mut self, header: &RecordHeader) {
        self.last_payload = None;
        if header.offset == self.pos {
            self.pos += header.aligned_len();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::{PendingRecord, RecordKind, RecordPlace};
    use crate::storage::{StdStorage, Storage};

    const BINDING: RecordBinding = RecordBinding::Channel(0x5eed);
    const SEGMENT: u64 = 7;
    const START: u64 = SEGMENT_HEADER_BYTES as u64;

    /// A segment file holding put records with these payloads from `START`; their offsets.
    fn segment(dir: &std::path::Path, payloads: &[&[u8]]) -> (DynFile, Vec<u64>) {
        let mut bytes = vec![0u8; SEGMENT_HEADER_BYTES];
        let mut offsets = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let offset = bytes.len() as u64;
            offsets.push(offset);
            let mut r = PendingRecord::new(RecordKind::Put, 1);
            r.bytes.extend_from_slice(p);
            r.event_count = 1;
            r.seal_payload();
            let place = RecordPlace {
                segment_id: SEGMENT,
                offset,
                durable_mark: offset,
                binding: BINDING,
            };
            r.frame_into(place, i as u64, &mut bytes);
        }
        let path = dir.join("seg");
        std::fs::write(&path, &bytes).unwrap();
        (StdStorage.open(&path, false).unwrap(), offsets)
    }

    fn payload_of(item: ScanItem<'_>) -> Vec<u8> {
        match item {
            ScanItem::Record { payload, .. } => payload.to_vec(),
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn a_peeked_record_is_skipped_without_reading_its_payload_and_the_next_one_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (file, offsets) = segment(dir.path(), &[b"first", &[7u8; 3000], b"third"]);
        let mut s = Scanner::new(file, SEGMENT, BINDING, START, u64::MAX);
        for read_ahead in [false, true] {
            s.set_read_ahead(read_ahead);
            s.seek(START);
            let h = s.peek_header().unwrap().expect("a header");
            assert_eq!((h.offset, h.payload_len()), (offsets[0], 5));
            s.skip_record(&h);
            assert_eq!(s.position(), offsets[1]);
            assert_eq!(payload_of(s.next_item().unwrap()), vec![7u8; 3000]);
            assert_eq!(payload_of(s.next_item().unwrap()), b"third");
        }
        // A limit below the record's end hides it from a peek.
        let (file, offsets) = segment(dir.path(), &[b"first", b"second"]);
        let mut s = Scanner::new(file, SEGMENT, BINDING, offsets[1], offsets[1] + 8);
        s.set_read_ahead(false);
        assert_eq!(s.peek_header().unwrap(), None);
    }

    #[test]
    fn a_payload_changed_in_place_is_read_again_from_the_file_after_a_seek_back() {
        let dir = tempfile::tempdir().unwrap();
        let (file, offsets) = segment(dir.path(), &[b"first", b"second", b"third"]);
        let mut s = Scanner::new(file, SEGMENT, BINDING, START, u64::MAX);
        assert_eq!(payload_of(s.next_item().unwrap()), b"first");
        assert_eq!(payload_of(s.next_item().unwrap()), b"second");
        s.last_payload_mut().expect("the last payload").fill(b'x');
        assert!(s.last_payload_mut().is_none(), "handed out once");
        assert_eq!(payload_of(s.next_item().unwrap()), b"third");
        s.seek(offsets[1]);
        assert_eq!(payload_of(s.next_item().unwrap()), b"second");
        // Reading moves on: the previous record's payload is no longer offered.
        assert!(s.peek_header().unwrap().is_some());
        assert!(s.last_payload_mut().is_none());
    }
}
