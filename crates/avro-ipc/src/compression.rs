//! `compression-type = deflate`: Flume puts Netty's `ZlibEncoder` / `ZlibDecoder` (zlib
//! wrapper, RFC 1950) in front of the Avro transport on both ends, so the whole connection in
//! each direction is one zlib stream, flushed (sync flush) after every frame written. Both
//! ends must agree: a compressing peer and a plain one do not understand each other.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Output produced at a time while decompressing.
const STEP_BYTES: usize = 64 << 10;

/// Why incoming bytes are not a zlib stream.
#[derive(Debug, thiserror::Error)]
#[error("not a zlib (deflate) stream: {reason}")]
pub struct CompressionError {
    /// What flate2 said or what was wrong.
    pub reason: String,
}

/// How one direction of a connection is encoded.
#[derive(Debug)]
pub enum Outgoing {
    /// Bytes as they are.
    Plain,
    /// A zlib stream.
    Zlib(Box<Compress>),
}

impl Outgoing {
    /// Plain, or zlib at `level` (0–9).
    pub fn new(deflate_level: Option<u32>) -> Self {
        match deflate_level {
            None => Self::Plain,
            Some(level) => Self::Zlib(Box::new(Compress::new(Compression::new(level), true))),
        }
    }

    /// The bytes to write for `data`, flushed so the peer can decode all of it now.
    pub fn encode(&mut self, data: Vec<u8>) -> Vec<u8> {
        let Self::Zlib(z) = self else {
            return data;
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = &data[..];
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before_in = z.total_in();
            let flush = if input.is_empty() {
                FlushCompress::Sync
            } else {
                FlushCompress::None
            };
            // Compressing into a Vec cannot fail: the stream state is ours alone.
            let _ = z.compress_vec(input, &mut out, flush);
            let consumed = (z.total_in() - before_in) as usize;
            input = &input[consumed..];
            if input.is_empty() && flush == FlushCompress::Sync && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

/// How the other direction is decoded.
#[derive(Debug)]
pub enum Incoming {
    /// Bytes as they are.
    Plain,
    /// A zlib stream.
    Zlib(Box<Decompress>),
}

impl Incoming {
    /// Plain, or zlib.
    pub fn new(deflate: bool) -> Self {
        if deflate {
            Self::Zlib(Box::new(Decompress::new(true)))
        } else {
            Self::Plain
        }
    }

    /// The decoded bytes of `data` as read from the socket; at most `max_bytes` of output.
    pub fn decode(&mut self, data: &[u8], max_bytes: usize) -> Result<Vec<u8>, CompressionError> {
        let Self::Zlib(z) = self else {
            return Ok(data.to_vec());
        };
        let mut out: Vec<u8> = Vec::new();
        let mut input = data;
        loop {
            out.reserve(STEP_BYTES);
            let before_in = z.total_in();
            let before_out = out.len();
            let status = z
                .decompress_vec(input, &mut out, FlushDecompress::None)
                .map_err(|e| CompressionError {
                    reason: e.to_string(),
                })?;
            input = &input[(z.total_in() - before_in) as usize..];
            if out.len() > max_bytes {
                return Err(CompressionError {
                    reason: format!("more than {max_bytes} bytes from one read"),
                });
            }
            let progressed = out.len() > before_out;
            match status {
                Status::StreamEnd => {
                    if !input.is_empty() {
                        return Err(CompressionError {
                            reason: format!("{} bytes after the end of the stream", input.len()),
                        });
                    }
                    return Ok(out);
                }
                _ if input.is_empty() && out.len() < out.capacity() => return Ok(out),
                _ if !progressed && input.is_empty() => return Ok(out),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_one_at_a_time_with_a_zlib_header() {
        let mut tx = Outgoing::new(Some(6));
        let mut rx = Incoming::new(true);
        let first = tx.encode(b"hello hello hello".to_vec());
        // RFC 1950 header: CM = 8 (deflate), CINFO = 7; FCHECK makes it a multiple of 31.
        assert_eq!(first[0], 0x78);
        assert_eq!(u16::from_be_bytes([first[0], first[1]]) % 31, 0);
        // A sync flush ends with an empty stored block.
        assert!(first.ends_with(&[0x00, 0x00, 0xff, 0xff]));
        assert_eq!(
            rx.decode(&first, 1 << 20).expect("ok"),
            b"hello hello hello"
        );
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let second = tx.encode(big.clone());
        let mut got = Vec::new();
        for chunk in second.chunks(1000) {
            got.extend(rx.decode(chunk, 1 << 20).expect("ok"));
        }
        assert_eq!(got, big);
    }

    #[test]
    fn plain_bytes_are_not_a_zlib_stream() {
        let mut rx = Incoming::new(true);
        let err = rx
            .decode(&[0, 0, 0, 1, 0, 0, 0, 1], 1 << 20)
            .expect_err("not zlib");
        assert!(err.to_string().starts_with("not a zlib"), "{err}");
    }

    #[test]
    fn output_is_bounded() {
        let mut tx = Outgoing::new(Some(9));
        let zeros = tx.encode(vec![0u8; 2 << 20]);
        let mut rx = Incoming::new(true);
        assert!(rx.decode(&zeros, 1 << 20).is_err());
    }
}
