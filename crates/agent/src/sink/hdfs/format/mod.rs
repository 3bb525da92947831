//! What an HDFS sink's files hold: `hdfs.fileType` (`DataStream`, `CompressedStream`,
//! `SequenceFile`), `hdfs.codeC`, `hdfs.writeFormat` and the `serializer` of a stream.
//!
//! Every batch is encoded as a self-contained unit (a line run, a gzip member, a bzip2 stream,
//! a zstd frame, a Hadoop compression block, a run of SequenceFile records, an Avro block), so
//! a file cut after any whole batch is valid, and [`complete_prefix`] finds where the last
//! whole batch ends after a crash.
//!
//! Interface for the sink (issue 18); the encoders are the "formats" part's to write.

use crate::config::context::Ctx;
use file_channel::Event;

/// Why events could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// The file format of an HDFS sink.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FormatConfig {}

impl FormatConfig {
    /// Reads `hdfs.fileType`, `hdfs.codeC`, `hdfs.writeFormat`, `serializer` and
    /// `serializer.*`; problems go to `ctx`.
    pub fn parse(_ctx: &Ctx<'_>) -> Self {
        Self {}
    }

    /// The extension the codec adds to file names (Hadoop's default extension: `.gz`, …), or
    /// empty.
    pub fn extension(&self) -> &'static str {
        ""
    }

    /// A fresh encoder for a new file.
    pub fn encoder(&self) -> Box<dyn FileEncoder> {
        Box::new(Lines)
    }
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
pub fn complete_prefix(_cfg: &FormatConfig, bytes: &[u8]) -> Recovered {
    let len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Recovered {
        len: len as u64,
        events: bytes[..len].iter().filter(|&&b| b == b'\n').count() as u64,
    }
}

/// Bodies, one per line.
struct Lines;

impl FileEncoder for Lines {
    fn begin(&mut self, _out: &mut Vec<u8>) -> Result<(), FormatError> {
        Ok(())
    }
    fn encode_batch(
        &mut self,
        events: &[Event],
        _now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        for e in events {
            out.extend_from_slice(&e.body);
            out.push(b'\n');
        }
        Ok(())
    }
    fn end(&mut self, _out: &mut Vec<u8>) -> Result<(), FormatError> {
        Ok(())
    }
}
