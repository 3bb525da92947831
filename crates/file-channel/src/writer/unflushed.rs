//! [`Unflushed`]: the framed records the writer has not written yet, in log order.
//!
//! Small records (take and seal records, small puts, every sealed record) are framed into one
//! reused buffer; a large put record is framed in its own buffer, the one its committer filled,
//! and kept as it is. One vectored write (`StorageFile::write_all_vectored_at`) then hands all
//! of them to the file, so the bytes of a large commit are copied once, by the kernel, instead
//! of first into the writer's buffer (`docs/design.md`, "Writing without a copy").

use std::ops::Range;

/// A put record at least this long is written from its own buffer; shorter ones are copied,
/// which costs less than a slice of their own in the write call.
pub(super) const OWN_BUFFER_BYTES_MIN: u64 = 16 << 10;

/// One run of bytes to write.
#[derive(Debug)]
enum Part {
    /// A range of the shared buffer.
    Copied(Range<usize>),
    /// A record framed in its own buffer.
    Own(Vec<u8>),
}

/// Framed, unwritten records.
#[derive(Debug)]
pub(super) struct Unflushed {
    copied: Vec<u8>,
    parts: Vec<Part>,
    len: u64,
}

impl Unflushed {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        Self {
            copied: Vec::with_capacity(bytes),
            parts: Vec::new(),
            len: 0,
        }
    }

    /// Bytes waiting to be written.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frames a record into the shared buffer: `frame` appends it to the vector it is given.
    /// Whatever `frame` appended counts, even when it fails (the batch fails then, and its
    /// bytes are cleared with it).
    pub(super) fn copy_in<R>(&mut self, frame: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let start = self.copied.len();
        let r = frame(&mut self.copied);
        let end = self.copied.len();
        if end > start {
            self.len += (end - start) as u64;
            match self.parts.last_mut() {
                Some(Part::Copied(range)) if range.end == start => range.end = end,
                _ => self.parts.push(Part::Copied(start..end)),
            }
        }
        r
    }

    /// Adds a record framed in its own buffer.
    pub(super) fn push_own(&mut self, framed: Vec<u8>) {
        if framed.is_empty() {
            return;
        }
        self.len += framed.len() as u64;
        self.parts.push(Part::Own(framed));
    }

    /// The bytes in order, as slices for one vectored write.
    pub(super) fn slices(&self) -> Vec<&[u8]> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Copied(r) => &self.copied[r.clone()],
                Part::Own(v) => v.as_slice(),
            })
            .collect()
    }

    /// Forgets everything (written, or rolled back); keeps the shared buffer's capacity.
    pub(super) fn clear(&mut self) {
        self.copied.clear();
        self.parts.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_log_order_and_copied_runs_merge() {
        let mut u = Unflushed::with_capacity(16);
        assert!(u.is_empty());
        u.copy_in(|b| b.extend_from_slice(b"ab"));
        u.copy_in(|b| b.extend_from_slice(b"cd"));
        u.push_own(b"EFG".to_vec());
        u.push_own(Vec::new());
        u.copy_in(|_| ());
        u.copy_in(|b| b.extend_from_slice(b"h"));
        assert_eq!(u.len(), 8);
        assert_eq!(u.slices(), vec![&b"abcd"[..], &b"EFG"[..], &b"h"[..]]);
        u.clear();
        assert!(u.is_empty());
        assert!(u.slices().is_empty());
    }
}
