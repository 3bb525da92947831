//! `serializer = avro_event`: Flume's `FlumeEventAvroEventSerializer`, an Avro object
//! container file of Flume's event record `{headers: map<string>, body: bytes}`, written with
//! the apache-avro crate; each batch ends with a flush, so it is one or more whole blocks.
//!
//! The scan walks the container's framing (header, then blocks of a count, a size, the data
//! and the sync marker) to find where the last whole block ends after a crash.

use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};
use file_channel::Event;

use super::FormatError;

/// Flume's event schema, as `FlumeEventAvroEventSerializer` declares it.
pub const FLUME_EVENT_SCHEMA: &str = r#"{"type": "record", "name": "Event", "fields": [{"name": "headers", "type": {"type": "map", "values": "string"}}, {"name": "body", "type": "bytes"}]}"#;

/// `serializer.compressionCodec` values we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AvroCodec {
    /// `null` (Flume's default).
    #[default]
    Null,
    /// `deflate`.
    Deflate,
}

/// `serializer.syncIntervalBytes`' default in Flume.
pub const DEFAULT_SYNC_INTERVAL_BYTES: u64 = 2_048_000;

fn schema() -> Result<&'static Schema, FormatError> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::parse_str(FLUME_EVENT_SCHEMA).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| FormatError(format!("Flume's event schema does not parse: {e}")))
}

/// One file's Avro writer; bytes are taken out of it after each flush.
pub struct AvroEncoder {
    writer: Writer<'static, Vec<u8>>,
}

impl AvroEncoder {
    /// A writer with a fresh sync marker.
    pub fn new(codec: AvroCodec, sync_interval_bytes: u64) -> Result<Self, FormatError> {
        let codec = match codec {
            AvroCodec::Null => Codec::Null,
            AvroCodec::Deflate => Codec::Deflate(Default::default()),
        };
        let writer = Writer::builder()
            .schema(schema()?)
            .writer(Vec::new())
            .codec(codec)
            .block_size(sync_interval_bytes as usize)
            .build()
            .map_err(avro_error)?;
        Ok(Self { writer })
    }

    /// The container header.
    pub fn begin(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.writer.flush().map_err(avro_error)?;
        out.append(self.writer.get_mut());
        Ok(())
    }

    /// `events` as whole blocks.
    pub fn encode_batch(&mut self, events: &[Event], out: &mut Vec<u8>) -> Result<(), FormatError> {
        for e in events {
            let headers: HashMap<String, Value> = e
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let record = Value::Record(vec![
                ("headers".to_owned(), Value::Map(headers)),
                ("body".to_owned(), Value::Bytes(e.body.clone())),
            ]);
            self.writer.append_value(record).map_err(avro_error)?;
        }
        self.writer.flush().map_err(avro_error)?;
        out.append(self.writer.get_mut());
        Ok(())
    }
}

fn avro_error(e: apache_avro::Error) -> FormatError {
    FormatError(format!("avro_event serializer: {e}"))
}

/// Walks an Avro container's bytes, possibly fed in pieces (one per compressed unit).
#[derive(Default)]
pub struct AvroScan {
    sync: Option<[u8; 16]>,
}

impl AvroScan {
    /// Reads `bytes`, which continue what was fed before: the length of the longest prefix
    /// made of the header (if not yet seen) and whole blocks, and the events in those blocks.
    pub fn feed(&mut self, bytes: &[u8]) -> (usize, u64) {
        let mut pos = 0;
        let mut events = 0;
        if self.sync.is_none() {
            match read_header(bytes) {
                Some((len, sync)) => {
                    self.sync = Some(sync);
                    pos = len;
                }
                None => return (0, 0),
            }
        }
        let Some(sync) = self.sync else {
            return (0, 0);
        };
        while let Some((len, count)) = read_block(&bytes[pos..], &sync) {
            pos += len;
            events += count;
        }
        (pos, events)
    }
}

/// The header's length and sync marker.
fn read_header(bytes: &[u8]) -> Option<(usize, [u8; 16])> {
    let mut pos = 4;
    if bytes.get(..4)? != b"Obj\x01" {
        return None;
    }
    loop {
        let mut count = read_long(bytes, &mut pos)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            count = count.checked_neg()?;
            read_long(bytes, &mut pos)?;
        }
        for _ in 0..count {
            for _ in 0..2 {
                let len = usize::try_from(read_long(bytes, &mut pos)?).ok()?;
                pos = pos.checked_add(len)?;
                bytes.get(..pos)?;
            }
        }
    }
    let sync: [u8; 16] = bytes.get(pos..pos + 16)?.try_into().ok()?;
    Some((pos + 16, sync))
}

/// A whole block at the start of `bytes`: its length and its count of records.
fn read_block(bytes: &[u8], sync: &[u8; 16]) -> Option<(usize, u64)> {
    let mut pos = 0;
    let count = u64::try_from(read_long(bytes, &mut pos)?).ok()?;
    let size = usize::try_from(read_long(bytes, &mut pos)?).ok()?;
    if count == 0 {
        return None;
    }
    let end = pos.checked_add(size)?;
    let marker = bytes.get(end..end.checked_add(16)?)?;
    (marker == sync).then_some((end + 16, count))
}

/// Avro's zig-zag varint `long`.
fn read_long(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}
