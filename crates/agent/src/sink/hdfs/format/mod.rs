//! What an HDFS sink's files hold: `hdfs.fileType` (`DataStream`, `CompressedStream`,
//! `SequenceFile`), `hdfs.codeC`, `hdfs.writeFormat` and the `serializer` of a stream.
//!
//! Every batch is encoded as a self-contained unit (a line run, a gzip member, a bzip2 stream,
//! a zstd frame, a Hadoop compression block, a run of SequenceFile records, a block of a
//! block-compressed SequenceFile, Avro blocks), so
//! a file cut after any whole batch is valid, and [`complete_prefix`] finds where the last
//! whole unit ends after a crash. For the formats whose every event is whole on its own
//! (text lines, SequenceFile records, Avro blocks in an uncompressed file) that may be inside
//! a batch: what is kept is whole events, and the rest of that batch is redelivered (the
//! sink counts the kept ones as duplicates).

mod avro;
mod codec;
mod sequence;
mod sequence_block;

#[cfg(test)]
mod sequence_block_tests;
#[cfg(test)]
mod tests;

pub use avro::{AvroCodec, DEFAULT_SYNC_INTERVAL_BYTES, FLUME_EVENT_SCHEMA};
pub use codec::Codec;
pub use sequence::{WriteFormat, SYNC_INTERVAL_BYTES};

use crate::config::context::Ctx;
use crate::sink::serializer::Serializer;
use file_channel::Event;

/// Why events could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// `hdfs.fileType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FileType {
    /// `SequenceFile` (Flume's default).
    #[default]
    SequenceFile,
    /// `DataStream`: the serializer's bytes as they are.
    DataStream,
    /// `CompressedStream`: the serializer's bytes through `hdfs.codeC`.
    CompressedStream,
}

/// `serializer` of a stream file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSerializer {
    /// `text` or `header_and_text`, with `serializer.appendNewline`.
    Text(Serializer),
    /// `avro_event`, with `serializer.compressionCodec` and `serializer.syncIntervalBytes`.
    Avro {
        /// The codec of the Avro blocks.
        codec: AvroCodec,
        /// Bytes of records before a block is cut inside a batch.
        sync_interval_bytes: u64,
    },
}

impl Default for StreamSerializer {
    fn default() -> Self {
        Self::Text(Serializer::Text {
            append_newline: true,
        })
    }
}

/// The file format of an HDFS sink.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FormatConfig {
    /// `hdfs.fileType` (SequenceFile).
    pub file_type: FileType,
    /// `hdfs.codeC` (none); always set for CompressedStream, never for DataStream; a
    /// SequenceFile with a codec is block-compressed.
    pub codec: Option<Codec>,
    /// `hdfs.writeFormat` (Writable), for SequenceFile.
    pub write_format: WriteFormat,
    /// `serializer` (text), for streams.
    pub serializer: StreamSerializer,
}

const AVRO_EVENT_CLASS: &str =
    "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder";

impl FormatConfig {
    /// Reads `hdfs.fileType`, `hdfs.codeC`, `hdfs.writeFormat`, `serializer` and
    /// `serializer.*`; problems go to `ctx`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let type_text = ctx.string_or("hdfs.fileType", "SequenceFile");
        let file_type = match type_text.trim().to_ascii_lowercase().as_str() {
            "sequencefile" => FileType::SequenceFile,
            "datastream" => FileType::DataStream,
            "compressedstream" => FileType::CompressedStream,
            _ => {
                ctx.error(
                    "hdfs.fileType",
                    format!(
                        "unknown file type `{type_text}`: use SequenceFile, DataStream or \
                         CompressedStream"
                    ),
                );
                FileType::DataStream
            }
        };
        let codec = match ctx.string("hdfs.codeC") {
            None => None,
            Some(name) if name.trim().eq_ignore_ascii_case("none") => {
                if file_type == FileType::DataStream {
                    data_stream_codec_error(ctx);
                }
                None
            }
            Some(name) => match Codec::from_name(&name) {
                Some(codec) => Some(codec),
                None => {
                    let known: Vec<_> = Codec::ALL.iter().map(|c| c.hadoop_class()).collect();
                    ctx.error(
                        "hdfs.codeC",
                        format!(
                            "unsupported compression codec `{name}`: use gzip, default (zlib), \
                             bzip2, zstd, snappy or lz4 (or their Hadoop names: {})",
                            known.join(", ")
                        ),
                    );
                    None
                }
            },
        };
        let codec = match file_type {
            FileType::DataStream if codec.is_some() => {
                data_stream_codec_error(ctx);
                None
            }
            FileType::CompressedStream if codec.is_none() => {
                if !ctx.has_error_for("hdfs.codeC") {
                    ctx.error(
                        "hdfs.fileType",
                        "CompressedStream needs hdfs.codeC (gzip, default, bzip2, zstd, snappy or lz4)",
                    );
                }
                None
            }
            _ => codec,
        };
        let write_format = Self::parse_write_format(ctx, file_type);
        let serializer = Self::parse_serializer(ctx, file_type);
        Self {
            file_type,
            codec,
            write_format,
            serializer,
        }
    }

    fn parse_write_format(ctx: &Ctx<'_>, file_type: FileType) -> WriteFormat {
        let Some(text) = ctx.string("hdfs.writeFormat") else {
            return WriteFormat::Writable;
        };
        if file_type != FileType::SequenceFile {
            ctx.warn(
                "hdfs.writeFormat",
                "applies only to fileType = SequenceFile; ignored for streams (use serializer)",
            );
        }
        match text.trim() {
            t if t.eq_ignore_ascii_case("writable")
                || t == "org.apache.flume.sink.hdfs.HDFSWritableSerializer$Builder" =>
            {
                WriteFormat::Writable
            }
            t if t.eq_ignore_ascii_case("text")
                || t == "org.apache.flume.sink.hdfs.HDFSTextSerializer$Builder" =>
            {
                WriteFormat::Text
            }
            _ => {
                ctx.error(
                    "hdfs.writeFormat",
                    format!("unknown write format `{text}`: use Writable or Text"),
                );
                WriteFormat::Writable
            }
        }
    }

    fn parse_serializer(ctx: &Ctx<'_>, file_type: FileType) -> StreamSerializer {
        if file_type == FileType::SequenceFile {
            if ctx.has("serializer") {
                ctx.warn(
                    "serializer",
                    "applies only to DataStream and CompressedStream; a SequenceFile's values \
                     follow hdfs.writeFormat",
                );
            }
            return StreamSerializer::default();
        }
        let name = ctx.string_or("serializer", "TEXT");
        let name = name.trim();
        if name.eq_ignore_ascii_case("avro_event") || name == AVRO_EVENT_CLASS {
            let codec_text = ctx.string_or("serializer.compressionCodec", "null");
            let codec = match codec_text.trim().to_ascii_lowercase().as_str() {
                "null" => AvroCodec::Null,
                "deflate" => AvroCodec::Deflate,
                _ => {
                    ctx.error(
                        "serializer.compressionCodec",
                        format!("unsupported Avro codec `{codec_text}`: use null or deflate"),
                    );
                    AvroCodec::Null
                }
            };
            let sync_interval_bytes = ctx.u64_in(
                "serializer.syncIntervalBytes",
                DEFAULT_SYNC_INTERVAL_BYTES,
                32..=(1 << 30),
            );
            if ctx.has("serializer.appendNewline") {
                ctx.warn(
                    "serializer.appendNewline",
                    "avro_event ignores it (as Flume does)",
                );
            }
            return StreamSerializer::Avro {
                codec,
                sync_interval_bytes,
            };
        }
        StreamSerializer::Text(Serializer::parse(ctx, "serializer"))
    }

    /// The extension the codec adds to file names (Hadoop's default extension: `.gz`, …), or
    /// empty.
    pub fn extension(&self) -> &'static str {
        self.codec.map_or("", Codec::extension)
    }

    /// A fresh encoder for a new file.
    pub fn encoder(&self) -> Box<dyn FileEncoder> {
        match (self.file_type, self.codec) {
            (FileType::SequenceFile, Some(codec)) => Box::new(
                sequence_block::BlockSequenceEncoder::new(self.write_format, codec),
            ),
            (FileType::SequenceFile, None) => Box::new(SequenceFileEncoder(
                sequence::SequenceEncoder::new(self.write_format),
            )),
            (FileType::DataStream | FileType::CompressedStream, _) => Box::new(StreamEncoder {
                codec: self.codec,
                payload: match self.serializer {
                    StreamSerializer::Text(s) => Payload::Text(s),
                    StreamSerializer::Avro {
                        codec,
                        sync_interval_bytes,
                    } => Payload::Avro {
                        codec,
                        sync_interval_bytes,
                        writer: None,
                    },
                },
                scratch: Vec::new(),
            }),
        }
    }
}

fn data_stream_codec_error(ctx: &Ctx<'_>) {
    ctx.error(
        "hdfs.codeC",
        "fileType DataStream does not compress (as in Flume): drop hdfs.codeC, or set \
         hdfs.fileType = CompressedStream",
    );
}

/// Encodes one file's events.
pub trait FileEncoder: Send {
    /// Bytes that start a file (a SequenceFile or Avro container header), appended to `out`.
    fn begin(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError>;
    /// One batch as a self-contained unit, appended to `out`; `now_ms` is the sink's clock
    /// (a SequenceFile key when an event has no `timestamp` header).
    fn encode_batch(
        &mut self,
        events: &[Event],
        now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError>;
    /// Bytes that end the file at close, appended to `out`.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError>;
}

/// The longest prefix of a file's bytes made of its header and whole batches, and the events
/// in it: what survives of a file cut by a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Bytes to keep.
    pub len: u64,
    /// Events in them.
    pub events: u64,
}

/// Finds the [`Recovered`] prefix of `bytes`, a file written with `cfg`.
///
/// Text events are counted by their newlines (exact unless bodies hold newlines); with
/// `serializer.appendNewline = false` an uncompressed file has no boundaries to find and is
/// kept whole, with no events counted.
pub fn complete_prefix(cfg: &FormatConfig, bytes: &[u8]) -> Recovered {
    let (len, events) = match (cfg.file_type, cfg.codec) {
        // Uncompressed or block-compressed, as the file's header says.
        (FileType::SequenceFile, _) => sequence::scan(bytes, cfg.write_format),
        (_, None) => match cfg.serializer {
            StreamSerializer::Text(s) if appends_newline(s) => {
                let len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                (len, count_newlines(&bytes[..len]))
            }
            StreamSerializer::Text(_) => (bytes.len(), 0),
            StreamSerializer::Avro { .. } => avro::AvroScan::default().feed(bytes),
        },
        (_, Some(codec)) => {
            let mut pos = 0;
            let mut events = 0;
            let mut avro_scan = avro::AvroScan::default();
            while let Some((unit_len, payload)) = codec.next_unit(&bytes[pos..]) {
                let unit_events = match cfg.serializer {
                    StreamSerializer::Text(_) => count_newlines(&payload),
                    StreamSerializer::Avro { .. } => {
                        let (used, n) = avro_scan.feed(&payload);
                        if used != payload.len() {
                            break;
                        }
                        n
                    }
                };
                pos += unit_len;
                events += unit_events;
            }
            (pos, events)
        }
    };
    Recovered {
        len: len as u64,
        events,
    }
}

fn appends_newline(s: Serializer) -> bool {
    match s {
        Serializer::Text { append_newline } | Serializer::HeaderAndText { append_newline } => {
            append_newline
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// What a stream's serializer writes, before any codec.
enum Payload {
    Text(Serializer),
    Avro {
        codec: AvroCodec,
        sync_interval_bytes: u64,
        /// Made at `begin` (the header is the file's first bytes).
        writer: Option<Box<avro::AvroEncoder>>,
    },
}

/// DataStream and CompressedStream files.
struct StreamEncoder {
    codec: Option<Codec>,
    payload: Payload,
    scratch: Vec<u8>,
}

impl StreamEncoder {
    /// Appends the scratch payload to `out`, compressed as one unit when there is a codec.
    fn emit(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        if self.scratch.is_empty() {
            return Ok(());
        }
        let result = match self.codec {
            None => {
                out.extend_from_slice(&self.scratch);
                Ok(())
            }
            Some(codec) => codec.compress_unit(&self.scratch, out),
        };
        self.scratch.clear();
        result
    }

    fn avro_writer(&mut self) -> Result<&mut avro::AvroEncoder, FormatError> {
        match &mut self.payload {
            Payload::Avro {
                codec,
                sync_interval_bytes,
                writer,
            } => {
                if writer.is_none() {
                    *writer = Some(Box::new(avro::AvroEncoder::new(
                        *codec,
                        *sync_interval_bytes,
                    )?));
                }
                writer
                    .as_deref_mut()
                    .ok_or_else(|| FormatError("avro writer missing".into()))
            }
            Payload::Text(_) => Err(FormatError("not an avro stream".into())),
        }
    }
}

impl FileEncoder for StreamEncoder {
    fn begin(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        if matches!(self.payload, Payload::Avro { .. }) {
            let mut header = Vec::new();
            self.avro_writer()?.begin(&mut header)?;
            self.scratch = header;
        }
        self.emit(out)
    }

    fn encode_batch(
        &mut self,
        events: &[Event],
        _now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        if events.is_empty() {
            return Ok(());
        }
        match &self.payload {
            Payload::Text(s) => {
                for e in events {
                    s.write(e, &mut self.scratch);
                }
            }
            Payload::Avro { .. } => {
                let mut blocks = Vec::new();
                self.avro_writer()?.encode_batch(events, &mut blocks)?;
                self.scratch = blocks;
            }
        }
        self.emit(out)
    }

    fn end(&mut self, _out: &mut Vec<u8>) -> Result<(), FormatError> {
        Ok(())
    }
}

/// SequenceFile files.
struct SequenceFileEncoder(sequence::SequenceEncoder);

impl FileEncoder for SequenceFileEncoder {
    fn begin(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.0.begin(out);
        Ok(())
    }

    fn encode_batch(
        &mut self,
        events: &[Event],
        now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        self.0.encode_batch(events, now_ms, out)
    }

    fn end(&mut self, _out: &mut Vec<u8>) -> Result<(), FormatError> {
        Ok(())
    }
}
