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

use file_channel::Event;

use super::FormatError;
use crate::sink::hdfs::path::TIMESTAMP_HEADER;

/// Hadoop's `SYNC_INTERVAL` (5 KiB × the 20-byte sync entry: 100 KiB) in current Hadoop.
pub const SYNC_INTERVAL_BYTES: u64 = 5 * 1024 * 20;
const SYNC_ESCAPE: i32 = -1;
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
        out.extend_from_slice(b"SEQ\x06");
        write_text(out, KEY_CLASS.as_bytes());
        write_text(out, self.format.value_class().as_bytes());
        out.push(0); // compressed
        out.push(0); // block-compressed
        out.extend_from_slice(&0i32.to_be_bytes()); // metadata entries
        out.extend_from_slice(&self.sync);
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
            let key = match e.header(TIMESTAMP_HEADER) {
                None => now_ms,
                Some(text) => text.parse::<i64>().map_err(|_| {
                    FormatError(format!(
                        "SequenceFile key: the event's `{TIMESTAMP_HEADER}` header `{text}` is \
                         not a number of milliseconds"
                    ))
                })?,
            };
            let mut value = Vec::with_capacity(e.body.len() + 5);
            match self.format {
                WriteFormat::Writable => {
                    value.extend_from_slice(&java_int(e.body.len(), "event body")?.to_be_bytes());
                }
                WriteFormat::Text => write_vlong(&mut value, e.body.len() as i64),
            }
            value.extend_from_slice(&e.body);
            let record_len = java_int(8 + value.len(), "record")?;
            let start = out.len();
            if self.pos >= self.last_sync_pos + self.sync_interval_bytes {
                out.extend_from_slice(&SYNC_ESCAPE.to_be_bytes());
                out.extend_from_slice(&self.sync);
                self.last_sync_pos = self.pos + 20;
            }
            out.extend_from_slice(&record_len.to_be_bytes());
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&key.to_be_bytes());
            out.extend_from_slice(&value);
            self.pos += (out.len() - start) as u64;
        }
        Ok(())
    }
}

fn java_int(n: usize, what: &str) -> Result<i32, FormatError> {
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
fn read_vlong(bytes: &[u8], pos: &mut usize) -> Option<i64> {
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

/// The longest prefix of header and whole records (and sync escapes), and the records in it.
pub fn scan(bytes: &[u8], format: WriteFormat) -> (usize, u64) {
    let Some((mut pos, sync, compressed)) = read_header(bytes) else {
        return (0, 0);
    };
    if compressed {
        // Not a file we write: keep it as it is.
        return (bytes.len(), 0);
    }
    let mut records = 0;
    while let Some(len) = read_be_i32(bytes, pos) {
        if len == SYNC_ESCAPE {
            match bytes.get(pos + 4..pos + 20) {
                Some(marker) if marker == sync => {
                    pos += 20;
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
    if len < 8 || read_be_i32(bytes, pos + 4)? != 8 {
        return None;
    }
    let end = (pos + 8).checked_add(len)?;
    let value = bytes.get(pos + 16..end)?;
    let body_len_ok = match format {
        WriteFormat::Writable => read_be_i32(value, 0)
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| n + 4 == value.len()),
        WriteFormat::Text => {
            let mut p = 0;
            read_vlong(value, &mut p)
                .and_then(|n| usize::try_from(n).ok())
                .is_some_and(|n| n + p == value.len())
        }
    };
    body_len_ok.then_some(end)
}

/// The header's length, its sync marker and whether it says the records are compressed.
fn read_header(bytes: &[u8]) -> Option<(usize, [u8; 16], bool)> {
    if bytes.get(..4)? != b"SEQ\x06" {
        return None;
    }
    let mut pos = 4;
    let skip_text = |pos: &mut usize| -> Option<()> {
        let len = usize::try_from(read_vlong(bytes, pos)?).ok()?;
        *pos = pos.checked_add(len)?;
        bytes.get(..*pos).map(|_| ())
    };
    skip_text(&mut pos)?;
    skip_text(&mut pos)?;
    let compressed = *bytes.get(pos)? != 0;
    let block = *bytes.get(pos + 1)? != 0;
    pos += 2;
    if compressed {
        skip_text(&mut pos)?;
    }
    let entries = usize::try_from(read_be_i32(bytes, pos)?).ok()?;
    pos += 4;
    for _ in 0..entries {
        skip_text(&mut pos)?;
        skip_text(&mut pos)?;
    }
    let sync: [u8; 16] = bytes.get(pos..pos + 16)?.try_into().ok()?;
    Some((pos + 16, sync, compressed || block))
}

fn read_be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
