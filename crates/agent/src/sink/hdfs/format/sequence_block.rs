//! `hdfs.fileType = SequenceFile` with `hdfs.codeC`: Hadoop's block-compressed SequenceFile,
//! as Flume's `HDFSSequenceFile` writes it (Flume asks for `CompressionType.BLOCK` whenever a
//! codec is set), with the keys and values of [`super::sequence`].
//!
//! Layout (Hadoop's `SequenceFile.BlockCompressWriter`): the header of an uncompressed file but
//! with the compressed and block-compressed flags set (1, 1) and the codec's class name as a
//! Hadoop `Text` after them; then blocks, each:
//! - a sync escape (-1 as 4 big-endian bytes) and the 16-byte sync marker;
//! - the number of records, a Hadoop vint;
//! - four buffers, each a vint length and the codec's stream of, in order: the key lengths
//!   (vints, 8 for a `LongWritable`), the keys, the value lengths (vints), the values (each
//!   serialized as its class writes it: `BytesWritable` with a 4-byte length, `Text` with a
//!   vint length).
//!
//! What the codec's stream of one buffer is, as Hadoop's codecs write it: a gzip member
//! (`GzipCodec`), a zlib stream (`DefaultCodec`), a whole bzip2 stream with its `BZh` magic
//! (`BZip2Codec`, native or pure Java), a zstd frame (`ZStandardCodec`), and for `SnappyCodec`
//! and `Lz4Codec` one `BlockCompressorStream` block — the same units
//! [`Codec::compress_unit`] writes for a CompressedStream.
//!
//! Each batch is one block (a Hadoop writer's `sync()` ends a block the same way), so a file
//! cut after any block is whole; [`scan_blocks`] finds the last whole block after a crash.

use file_channel::Event;

use super::sequence::{
    event_key, is_whole_value, java_int, read_be_i32, read_vlong, write_header, write_value,
    write_vlong, WriteFormat, KEY_BYTES, SYNC_ENTRY_BYTES, SYNC_ESCAPE,
};
use super::{Codec, FileEncoder, FormatError};

/// One block-compressed SequenceFile's writer state.
pub struct BlockSequenceEncoder {
    format: WriteFormat,
    codec: Codec,
    sync: [u8; 16],
}

impl BlockSequenceEncoder {
    /// A writer with a random sync marker.
    pub fn new(format: WriteFormat, codec: Codec) -> Self {
        Self::with_sync(format, codec, *uuid::Uuid::new_v4().as_bytes())
    }

    /// A writer with a given marker (tests).
    pub fn with_sync(format: WriteFormat, codec: Codec, sync: [u8; 16]) -> Self {
        Self {
            format,
            codec,
            sync,
        }
    }

    /// Appends `raw` as one buffer of a block: the codec's stream and its vint length before.
    fn write_buffer(&self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        java_int(raw.len(), "block buffer")?;
        let mut compressed = Vec::new();
        self.codec.compress_unit(raw, &mut compressed)?;
        let len = java_int(compressed.len(), "compressed block buffer")?;
        write_vlong(out, i64::from(len));
        out.extend_from_slice(&compressed);
        Ok(())
    }
}

impl FileEncoder for BlockSequenceEncoder {
    fn begin(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        write_header(out, self.format, Some(self.codec), &self.sync);
        Ok(())
    }

    /// The batch as one block; nothing is appended when it fails.
    fn encode_batch(
        &mut self,
        events: &[Event],
        now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut key_lengths = Vec::with_capacity(events.len());
        let mut keys = Vec::with_capacity(events.len() * KEY_BYTES);
        let mut value_lengths = Vec::with_capacity(events.len() * 2);
        let mut values = Vec::new();
        for e in events {
            write_vlong(&mut key_lengths, KEY_BYTES as i64);
            keys.extend_from_slice(&event_key(e, now_ms)?.to_be_bytes());
            let start = values.len();
            write_value(&mut values, self.format, &e.body)?;
            let value_len = java_int(values.len() - start, "value")?;
            write_vlong(&mut value_lengths, i64::from(value_len));
        }
        let mut block = Vec::new();
        block.extend_from_slice(&SYNC_ESCAPE.to_be_bytes());
        block.extend_from_slice(&self.sync);
        write_vlong(&mut block, i64::from(java_int(events.len(), "batch")?));
        for buffer in [&key_lengths, &keys, &value_lengths, &values] {
            self.write_buffer(buffer, &mut block)?;
        }
        out.extend_from_slice(&block);
        Ok(())
    }

    fn end(&mut self, _out: &mut Vec<u8>) -> Result<(), FormatError> {
        Ok(())
    }
}

/// The longest prefix of whole, well-formed blocks from `pos` (where the header ends), and the
/// records in them.
pub(super) fn scan_blocks(
    bytes: &[u8],
    mut pos: usize,
    sync: &[u8; 16],
    codec: Codec,
    format: WriteFormat,
) -> (usize, u64) {
    let mut records = 0;
    while let Some((end, count)) = read_block(bytes, pos, sync, codec, format) {
        pos = end;
        records += count;
    }
    (pos, records)
}

/// The block at `pos`: where it ends and its record count, if it is whole and every buffer
/// decompresses to what the count and lengths say.
fn read_block(
    bytes: &[u8],
    pos: usize,
    sync: &[u8; 16],
    codec: Codec,
    format: WriteFormat,
) -> Option<(usize, u64)> {
    if read_be_i32(bytes, pos)? != SYNC_ESCAPE
        || bytes.get(pos + 4..pos.checked_add(SYNC_ENTRY_BYTES)?)? != sync
    {
        return None;
    }
    let mut pos = pos + SYNC_ENTRY_BYTES;
    let count = read_vlong(bytes, &mut pos)?;
    if !(1..=i64::from(i32::MAX)).contains(&count) {
        return None;
    }
    let mut buffers = Vec::with_capacity(4);
    for _ in 0..4 {
        let len = usize::try_from(read_vlong(bytes, &mut pos)?).ok()?;
        let stream = bytes.get(pos..pos.checked_add(len)?)?;
        let (used, raw) = codec.next_unit(stream)?;
        if used != len {
            return None;
        }
        buffers.push(raw);
        pos += len;
    }
    let [key_lengths, keys, value_lengths, values] = <[Vec<u8>; 4]>::try_from(buffers).ok()?;
    let key_lens = read_lengths(&key_lengths, count)?;
    if key_lens.iter().any(|&n| n != KEY_BYTES) || keys.len() != KEY_BYTES * key_lens.len() {
        return None;
    }
    let mut at: usize = 0;
    for n in read_lengths(&value_lengths, count)? {
        let value = values.get(at..at.checked_add(n)?)?;
        if !is_whole_value(value, format) {
            return None;
        }
        at += n;
    }
    (at == values.len()).then_some((pos, count as u64))
}

/// Exactly `count` non-negative vints filling `buffer`.
fn read_lengths(buffer: &[u8], count: i64) -> Option<Vec<usize>> {
    let mut pos = 0;
    let mut lengths = Vec::new();
    for _ in 0..count {
        lengths.push(usize::try_from(read_vlong(buffer, &mut pos)?).ok()?);
    }
    (pos == buffer.len()).then_some(lengths)
}
