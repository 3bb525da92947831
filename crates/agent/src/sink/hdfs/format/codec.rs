//! `hdfs.codeC`: the compression codecs by Hadoop's names, each batch compressed as one
//! self-contained unit, and the walk over a file's units that crash recovery needs.
//!
//! Units: a gzip member (flate2), a zlib stream for Hadoop's `DefaultCodec` (flate2), a bzip2
//! stream (bzip2), a zstd frame with a content checksum (zstd) — so `gzip -dc`, `bzip2 -dc` and
//! `zstd -dc` read a whole file of them — and, for
//! snappy and lz4, a block of Hadoop's `BlockCompressorStream` (a 4-byte big-endian
//! uncompressed length, then chunks of a 4-byte big-endian compressed length and a raw
//! snappy/lz4 block) as Hadoop's `SnappyCodec` and `Lz4Codec` write it.

use std::io::{Read, Write};

use super::FormatError;

/// A codec Flume's `hdfs.codeC` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// `GzipCodec` (`.gz`).
    Gzip,
    /// `DefaultCodec` (`.deflate`): a zlib stream, as Hadoop's `ZlibCompressor` (or Java's
    /// `Deflater`) writes it.
    Deflate,
    /// `BZip2Codec` (`.bz2`).
    Bzip2,
    /// `ZStandardCodec` (`.zst`).
    Zstd,
    /// `SnappyCodec` (`.snappy`), Hadoop block framing.
    Snappy,
    /// `Lz4Codec` (`.lz4`), Hadoop block framing.
    Lz4,
}

/// Uncompressed bytes per chunk of a Hadoop block: under the 256 KiB buffers Hadoop's snappy
/// and lz4 decompressors use by default.
const HADOOP_CHUNK_BYTES: usize = 64 * 1024;
/// The largest chunk a reader accepts (Hadoop's default codec buffer).
const HADOOP_MAX_CHUNK_BYTES: usize = 256 * 1024;
/// zstd's level 3, its own default.
const ZSTD_LEVEL: i32 = 3;

impl Codec {
    /// Every codec, in the order errors list them.
    pub const ALL: [Codec; 6] = [
        Codec::Gzip,
        Codec::Deflate,
        Codec::Bzip2,
        Codec::Zstd,
        Codec::Snappy,
        Codec::Lz4,
    ];

    /// Hadoop's class name.
    pub fn hadoop_class(self) -> &'static str {
        match self {
            Codec::Gzip => "org.apache.hadoop.io.compress.GzipCodec",
            Codec::Deflate => "org.apache.hadoop.io.compress.DefaultCodec",
            Codec::Bzip2 => "org.apache.hadoop.io.compress.BZip2Codec",
            Codec::Zstd => "org.apache.hadoop.io.compress.ZStandardCodec",
            Codec::Snappy => "org.apache.hadoop.io.compress.SnappyCodec",
            Codec::Lz4 => "org.apache.hadoop.io.compress.Lz4Codec",
        }
    }

    /// Hadoop's default extension.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Deflate => ".deflate",
            Codec::Bzip2 => ".bz2",
            Codec::Zstd => ".zst",
            Codec::Snappy => ".snappy",
            Codec::Lz4 => ".lz4",
        }
    }

    /// The codec `name` means as Flume matches it: the full class name, the simple class name
    /// or that name without `Codec`, case-insensitively (`gzip`, `GzipCodec`,
    /// `org.apache.hadoop.io.compress.GzipCodec`; `default` for `DefaultCodec`); `zstd` is also
    /// taken.
    pub fn from_name(name: &str) -> Option<Codec> {
        let name = name.trim();
        Codec::ALL.into_iter().find(|c| {
            let class = c.hadoop_class();
            let simple = class.rsplit('.').next().unwrap_or(class);
            let short = simple.strip_suffix("Codec").unwrap_or(simple);
            name == class
                || name.eq_ignore_ascii_case(simple)
                || name.eq_ignore_ascii_case(short)
                || (*c == Codec::Zstd && name.eq_ignore_ascii_case("zstd"))
        })
    }

    /// Appends `payload` compressed as one self-contained unit.
    pub fn compress_unit(self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        let io = |e: std::io::Error| FormatError(format!("{self:?} compression failed: {e}"));
        match self {
            Codec::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                enc.write_all(payload).map_err(io)?;
                enc.finish().map_err(io)?;
            }
            Codec::Deflate => {
                let mut enc = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
                enc.write_all(payload).map_err(io)?;
                enc.finish().map_err(io)?;
            }
            Codec::Bzip2 => {
                let mut enc = bzip2::write::BzEncoder::new(out, bzip2::Compression::default());
                enc.write_all(payload).map_err(io)?;
                enc.finish().map_err(io)?;
            }
            Codec::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(io)?;
                enc.include_checksum(true).map_err(io)?;
                enc.set_pledged_src_size(Some(payload.len() as u64))
                    .map_err(io)?;
                enc.write_all(payload).map_err(io)?;
                enc.finish().map_err(io)?;
            }
            Codec::Snappy | Codec::Lz4 => {
                let raw_len = u32::try_from(payload.len())
                    .ok()
                    .filter(|&n| n <= i32::MAX as u32)
                    .ok_or_else(|| {
                        FormatError(format!(
                            "a batch of {} bytes is too large for one Hadoop block",
                            payload.len()
                        ))
                    })?;
                out.extend_from_slice(&raw_len.to_be_bytes());
                let mut snappy = snap::raw::Encoder::new();
                for chunk in payload.chunks(HADOOP_CHUNK_BYTES) {
                    let compressed = if self == Codec::Snappy {
                        snappy
                            .compress_vec(chunk)
                            .map_err(|e| FormatError(format!("snappy compression failed: {e}")))?
                    } else {
                        lz4_flex::block::compress(chunk)
                    };
                    out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                    out.extend_from_slice(&compressed);
                }
            }
        }
        Ok(())
    }

    /// The unit at the start of `bytes`: its length and its decompressed payload; None when
    /// it is cut short or damaged.
    pub fn next_unit(self, bytes: &[u8]) -> Option<(usize, Vec<u8>)> {
        if bytes.is_empty() {
            return None;
        }
        let mut payload = Vec::new();
        match self {
            Codec::Gzip => {
                let mut dec = flate2::bufread::GzDecoder::new(bytes);
                dec.read_to_end(&mut payload).ok()?;
                let rest = dec.into_inner().len();
                Some((bytes.len() - rest, payload))
            }
            Codec::Deflate => {
                let mut dec = flate2::bufread::ZlibDecoder::new(bytes);
                dec.read_to_end(&mut payload).ok()?;
                let rest = dec.into_inner().len();
                Some((bytes.len() - rest, payload))
            }
            Codec::Bzip2 => {
                let mut dec = bzip2::bufread::BzDecoder::new(bytes);
                dec.read_to_end(&mut payload).ok()?;
                let rest = dec.into_inner().len();
                Some((bytes.len() - rest, payload))
            }
            Codec::Zstd => {
                let len = zstd::zstd_safe::find_frame_compressed_size(bytes).ok()?;
                let frame = bytes.get(..len)?;
                let mut dec = zstd::stream::read::Decoder::with_buffer(frame)
                    .ok()?
                    .single_frame();
                dec.read_to_end(&mut payload).ok()?;
                Some((len, payload))
            }
            Codec::Snappy | Codec::Lz4 => {
                let raw_len = read_be_u32(bytes, 0)? as usize;
                if raw_len > i32::MAX as usize {
                    return None;
                }
                let mut pos = 4;
                while payload.len() < raw_len {
                    let clen = read_be_u32(bytes, pos)? as usize;
                    let chunk = bytes.get(pos + 4..(pos + 4).checked_add(clen)?)?;
                    pos += 4 + clen;
                    let room = (raw_len - payload.len()).min(HADOOP_MAX_CHUNK_BYTES);
                    let plain = if self == Codec::Snappy {
                        if snap::raw::decompress_len(chunk).ok()? > room {
                            return None;
                        }
                        snap::raw::Decoder::new().decompress_vec(chunk).ok()?
                    } else {
                        lz4_flex::block::decompress(chunk, room).ok()?
                    };
                    if plain.is_empty() {
                        return None;
                    }
                    payload.extend_from_slice(&plain);
                }
                (payload.len() == raw_len).then_some((pos, payload))
            }
        }
    }
}

fn read_be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
