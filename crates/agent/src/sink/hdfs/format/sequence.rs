//! `hdfs.fileType = SequenceFile`: Hadoop's SequenceFile, version 6, uncompressed, as Flume's
//! `HDFSSequenceFile` writes it with `HDFSWritableSerializer` (key `LongWritable`, value
//! `BytesWritable`) or, with `hdfs.writeFormat = Text`, `HDFSTextSerializer` (value `Text`).
//!
//! Layout (Hadoop's `SequenceFile.java`): `SEQ` 6, the key and value class names as Hadoop
//! `Text` strings, a compression flag and a block-compression flag (both 0), the metadata (a
//! 4-byte count, 0), and a 16-byte sync marker; then records, each a 4-byte big-endian record
//! length, a 4-byte key length (8), the key (the event's `timestamp` header, else the sink's
//! clock, as 8 big-endian bytes) and the value (`BytesWritable`: a 4-byte length and the body;
//! `Text`: a Hadoop vint length and the body). Before a record that starts at least
//! [`SYNC_INTERVAL_BYTES`] after the last sync, a sync escape (-1, then the marker) is written,
//! as Hadoop's `checkAndWriteSync` does. Every record is whole on its own, so any run of
//! records is a valid unit.
//!
//! The header, keys, values and Hadoop's vints here are shared with the block-compressed
//! SequenceFile of [`super::sequence_block`], and [`scan`] reads either kind by its header.

use file_channel::Event;

use super::{sequence_block, Codec, FormatError};
use crate::sink::hdfs::path::TIMESTAMP_HEADER;

/// Hadoop's `SYNC_INTERVAL` (5 KiB × the 20-byte sync entry: 100 KiB) in current Hadoop.
pub const SYNC_INTERVAL_BYTES: u64 = 5 * 1024 * 20;
pub(super) const SYNC_ESCAPE: i32 = -1;
/// The bytes of a sync escape: the escape and the 16-byte marker.
pub(super) const SYNC_ENTRY_BYTES: usize = 20;
/// The bytes of a `LongWritable` key.
pub(super) const KEY_BYTES: usize = 8;
const KEY_CLASS: &str = "org.apache.hadoop.io.LongWritable";

/// `hdfs.writeFormat`: the value class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WriteFormat {
    /// `Writable` (Flume's default): `org.apache.hadoop.io.BytesWritable`.
    #[default]
    Writable,
    /// `Text`: `org.apache.hadoop.io.Text`.
    Text,
}

impl WriteFormat {
    /// Hadoop's class of the values.
    pub fn value_class(self) -> &'static str {
        match self {
            WriteFormat::Writable => "org.apache.hadoop.io.BytesWritable",
            WriteFormat::Text => "org.apache.hadoop.io.Text",
        }
    }
}

/// One SequenceFile's writer state.
pub struct SequenceEncoder {
    format: WriteFormat,
    sync: [u8; 16],
    sync_interval_bytes: u64,
    /// Bytes written to the file so far.
    pos: u64,
    /// Where the last sync escape ended (0 before the first).
    last_sync_pos: u64,
}

impl SequenceEncoder {
    /// A writer with a random sync marker.
    pub fn new(format: WriteFormat) -> Self {
        Self::with_sync(
            format,
            *uuid::Uuid::new_v4().as_bytes(),
            SYNC_INTERVAL_BYTES,
        )
    }

    /// A writer with a given marker and interval (tests).
    pub fn with_sync(format: WriteFormat, sync: [u8; 16], sync_interval_bytes: u64) -> Self {
        Self {
            format,
            sync,
            sync_interval_bytes,
            pos: 0,
            last_sync_pos: 0,
        }
    }

    /// The file header.
    pub fn begin(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        write_header(out, self.format, None, &self.sync);
        self.pos += (out.len() - start) as u64;
    }

    /// `events` as records; `now_ms` keys events without a `timestamp` header.
    pub fn encode_batch(
        &mut self,
        events: &[Event],
        now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        for e in events {
            let key = event_key(e, now_ms)?;
            let mut value = Vec::with_capacity(e.body.len() + 5);
            write_value(&mut value, self.format, &e.body)?;
            let record_len = java_int(KEY_BYTES + value.len(), "record")?;
            let start = out.len();
            if self.pos >= self.last_sync_pos + self.sync_interval_bytes {
                out.extend_from_slice(&SYNC_ESCAPE.to_be_bytes());
                out.extend_from_slice(&self.sync);
                self.last_sync_pos = self.pos + SYNC_ENTRY_BYTES as u64;
            }
            out.extend_from_slice(&record_len.to_be_bytes());
            out.extend_from_slice(&(KEY_BYTES as i32).to_be_bytes());
            out.extend_from_slice(&key.to_be_bytes());
            out.extend_from_slice(&value);
            self.pos += (out.len() - start) as u64;
        }
        Ok(())
    }
}

/// Hadoop's SequenceFile header: version 6, the key and value classes, the compression flags
/// (with `codec`: compressed, block-compressed, and the codec's class), no metadata, the sync
/// marker.
pub(super) fn write_header(
    out: &mut Vec<u8>,
    format: WriteFormat,
    codec: Option<Codec>,
    sync: &[u8; 16],
) {
    out.extend_from_slice(b"SEQ\x06");
    write_text(out, KEY_CLASS.as_bytes());
    write_text(out, format.value_class().as_bytes());
    let compressed = u8::from(codec.is_some());
    out.push(compressed);
    out.push(compressed); // block-compressed whenever compressed, as Flume writes it
    if let Some(codec) = codec {
        write_text(out, codec.hadoop_class().as_bytes());
    }
    out.extend_from_slice(&0i32.to_be_bytes()); // metadata entries
    out.extend_from_slice(sync);
}

/// The `LongWritable` key of `e`: its `timestamp` header, else `now_ms`.
pub(super) fn event_key(e: &Event, now_ms: i64) -> Result<i64, FormatError> {
    match e.header(TIMESTAMP_HEADER) {
        None => Ok(now_ms),
        Some(text) => text.parse::<i64>().map_err(|_| {
            FormatError(format!(
                "SequenceFile key: the event's `{TIMESTAMP_HEADER}` header `{text}` is not a \
                 number of milliseconds"
            ))
        }),
    }
}

/// Appends `body` serialized as the value class of `format` (`BytesWritable`: a 4-byte length;
/// `Text`: a vint length; then the bytes).
pub(super) fn write_value(
    out: &mut Vec<u8>,
    format: WriteFormat,
    body: &[u8],
) -> Result<(), FormatError> {
    match format {
        WriteFormat::Writable => {
            out.extend_from_slice(&java_int(body.len(), "event body")?.to_be_bytes());
        }
        WriteFormat::Text => write_vlong(out, body.len() as i64),
    }
    out.extend_from_slice(body);
    Ok(())
}

/// Whether `value` is exactly one value of `format`'s class.
pub(super) fn is_whole_value(value: &[u8], format: WriteFormat) -> bool {
    match format {
        WriteFormat::Writable => read_be_i32(value, 0)
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| n + 4 == value.len()),
        WriteFormat::Text => {
            let mut p = 0;
            read_vlong(value, &mut p)
                .and_then(|n| usize::try_from(n).ok())
                .is_some_and(|n| n + p == value.len())
        }
    }
}

/// `n` as a Java int, or an error naming `what` is too large.
pub(super) fn java_int(n: usize, what: &str) -> Result<i32, FormatError> {
    i32::try_from(n).map_err(|_| FormatError(format!("a {what} of {n} bytes is too large")))
}

/// Hadoop's `Text.writeString`: a vint length, then the bytes.
fn write_text(out: &mut Vec<u8>, bytes: &[u8]) {
    write_vlong(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Hadoop's `WritableUtils.writeVLong`.
pub fn write_vlong(out: &mut Vec<u8>, value: i64) {
    if (-112..=127).contains(&value) {
        out.push(value as u8);
        return;
    }
    let (mut len, v) = if value < 0 {
        (-120i32, !value)
    } else {
        (-112, value)
    };
    let mut tmp = v;
    while tmp != 0 {
        tmp >>= 8;
        len -= 1;
    }
    out.push(len as u8);
    let bytes = if len < -120 {
        -(len + 120)
    } else {
        -(len + 112)
    };
    for idx in (0..bytes).rev() {
        out.push((v >> (idx * 8)) as u8);
    }
}

/// Hadoop's `WritableUtils.readVLong`.
pub(super) fn read_vlong(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let first = *bytes.get(*pos)? as i8;
    *pos += 1;
    if first >= -112 {
        return Some(i64::from(first));
    }
    let negative = first < -120;
    let size = if negative {
        -119 - i32::from(first)
    } else {
        -111 - i32::from(first)
    };
    let mut value: i64 = 0;
    for _ in 1..size {
        value = (value << 8) | i64::from(*bytes.get(*pos)?);
        *pos += 1;
    }
    Some(if negative { !value } else { value })
}

/// The longest prefix of header and whole records (and sync escapes), or whole blocks in a
/// block-compressed file, and the records in it. The header says which kind the file is and
/// its codec, so a file written before `hdfs.codeC` changed is still read as written.
pub fn scan(bytes: &[u8], format: WriteFormat) -> (usize, u64) {
    let Some(header) = read_header(bytes) else {
        return (0, 0);
    };
    match (header.compressed, header.block_compressed, header.codec) {
        (false, false, _) => scan_records(bytes, header.end, &header.sync, format),
        (true, true, Some(codec)) => {
            sequence_block::scan_blocks(bytes, header.end, &header.sync, codec, format)
        }
        // Not a file we write (record-compressed, or a codec we do not know): keep it whole.
        _ => (bytes.len(), 0),
    }
}

/// Whole records (and sync escapes) from `pos`, an uncompressed file's first record.
fn scan_records(
    bytes: &[u8],
    mut pos: usize,
    sync: &[u8; 16],
    format: WriteFormat,
) -> (usize, u64) {
    let mut records = 0;
    while let Some(len) = read_be_i32(bytes, pos) {
        if len == SYNC_ESCAPE {
            match bytes.get(pos + 4..pos + SYNC_ENTRY_BYTES) {
                Some(marker) if marker == sync => {
                    pos += SYNC_ENTRY_BYTES;
                    continue;
                }
                _ => break,
            }
        }
        let Some(end) = record_end(bytes, pos, len, format) else {
            break;
        };
        pos = end;
        records += 1;
    }
    (pos, records)
}

/// The end of the record at `pos` whose length field is `len`, if it is whole and well formed.
fn record_end(bytes: &[u8], pos: usize, len: i32, format: WriteFormat) -> Option<usize> {
    let len = usize::try_from(len).ok()?;
    if len < KEY_BYTES || read_be_i32(bytes, pos + 4)? != KEY_BYTES as i32 {
        return None;
    }
    let end = (pos + 8).checked_add(len)?;
    let value = bytes.get(pos + 8 + KEY_BYTES..end)?;
    is_whole_value(value, format).then_some(end)
}

/// What a SequenceFile header says.
struct Header {
    /// Its length: where records or blocks start.
    end: usize,
    sync: [u8; 16],
    compressed: bool,
    block_compressed: bool,
    /// The codec, when compressed with one we know by its exact Hadoop class.
    codec: Option<Codec>,
}

/// The header at the start of `bytes`, if it is whole.
fn read_header(bytes: &[u8]) -> Option<Header> {
    if bytes.get(..4)? != b"SEQ\x06" {
        return None;
    }
    let mut pos = 4;
    let read_text = |pos: &mut usize| -> Option<&[u8]> {
        let len = usize::try_from(read_vlong(bytes, pos)?).ok()?;
        let text = bytes.get(*pos..pos.checked_add(len)?)?;
        *pos += len;
        Some(text)
    };
    read_text(&mut pos)?;
    read_text(&mut pos)?;
    let compressed = *bytes.get(pos)? != 0;
    let block_compressed = *bytes.get(pos + 1)? != 0;
    pos += 2;
    let mut codec = None;
    if compressed {
        let class = read_text(&mut pos)?;
        codec = Codec::ALL
            .into_iter()
            .find(|c| c.hadoop_class().as_bytes() == class);
    }
    let entries = usize::try_from(read_be_i32(bytes, pos)?).ok()?;
    pos += 4;
    for _ in 0..entries {
        read_text(&mut pos)?;
        read_text(&mut pos)?;
    }
    let sync: [u8; 16] = bytes.get(pos..pos.checked_add(16)?)?.try_into().ok()?;
    Some(Header {
        end: pos + 16,
        sync,
        compressed,
        block_compressed,
        codec,
    })
}

pub(super) fn read_be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
