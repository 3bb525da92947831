//! Avro's Netty transport framing (`NettyTransportCodec`'s `NettyDataPack`): every request and
//! every response is one frame
//!
//! ```text
//! serial: int32 BE | count: int32 BE | count × (length: int32 BE | length bytes)
//! ```
//!
//! The serial numbers a request; the response carries the same serial. The buffers together
//! are one message (a sender may split a message anywhere; Java splits at 8 KiB), so the
//! decoder hands out their concatenation. Sizes are checked as soon as their four bytes
//! arrive, so a peer speaking something else (an HTTP request reads as an absurd buffer
//! count) is refused before anything is allocated for it. Nothing is allocated from an
//! announced count or length: memory grows with the bytes that arrive.

/// Largest message (sum of a frame's buffers) accepted by default: 128 MiB.
pub const MAX_FRAME_BYTES: usize = 128 << 20;
/// Most buffers in one frame: 8 KiB buffers of a [`MAX_FRAME_BYTES`] message, twice over.
pub const MAX_BUFFERS_PER_FRAME: usize = 2 * (MAX_FRAME_BYTES / 8192);

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The request's serial (echoed by the response).
    pub serial: i32,
    /// The message: every buffer, concatenated.
    pub payload: Vec<u8>,
}

/// Why bytes are not a Netty transport frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The buffer count is negative or absurd.
    #[error("not an Avro Netty frame: buffer count {count} (at most {max})")]
    BufferCount {
        /// The count read.
        count: i64,
        /// The most accepted.
        max: usize,
    },
    /// A buffer length is negative.
    #[error("not an Avro Netty frame: negative buffer length {length}")]
    NegativeLength {
        /// The length read.
        length: i32,
    },
    /// The frame is larger than allowed.
    #[error("Avro Netty frame too large: more than {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: usize,
    },
}

/// Encodes `payload` as one frame of a single buffer (no buffer for an empty payload).
pub fn encode(serial: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(&serial.to_be_bytes());
    if payload.is_empty() {
        out.extend_from_slice(&0i32.to_be_bytes());
        return out;
    }
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reassembles frames from a byte stream, bounded by a maximum message size. A frame's
/// buffer headers are read once each, however the frame is split into reads.
#[derive(Debug)]
pub struct FrameDecoder {
    pending: Vec<u8>,
    max_frame_bytes: usize,
    scan: Scan,
}

/// How far the frame at the start of `pending` has been read.
#[derive(Debug, Default)]
struct Scan {
    /// Buffer headers read so far.
    buffers_read: usize,
    /// Where the next buffer header starts.
    at: usize,
    /// Bytes of the buffers so far.
    total: usize,
    /// Where each buffer read so far starts, and its length.
    spans: Vec<(usize, usize)>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_BYTES)
    }
}

fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let b = bytes.get(at..at + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl FrameDecoder {
    /// A decoder refusing messages over `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            pending: Vec::new(),
            max_frame_bytes,
            scan: Scan::default(),
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Bytes received and not yet part of a complete frame.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The next complete frame, `None` if more bytes are needed. After an error the stream
    /// cannot be resynchronised: close the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let buf = &self.pending;
        let Some(serial) = be_i32(buf, 0) else {
            return Ok(None);
        };
        let Some(count) = be_i32(buf, 4) else {
            return Ok(None);
        };
        if count < 0 || count as usize > MAX_BUFFERS_PER_FRAME {
            return Err(FrameError::BufferCount {
                count: i64::from(count),
                max: MAX_BUFFERS_PER_FRAME,
            });
        }
        let scan = &mut self.scan;
        if scan.buffers_read == 0 && scan.at == 0 {
            scan.at = 8;
        }
        while scan.buffers_read < count as usize {
            let Some(length) = be_i32(buf, scan.at) else {
                return Ok(None);
            };
            if length < 0 {
                return Err(FrameError::NegativeLength { length });
            }
            let start = scan.at + 4;
            let end = start + length as usize;
            if end > buf.len() {
                // Checked before the buffer's bytes arrive; read again once they have.
                if scan.total + length as usize > self.max_frame_bytes {
                    return Err(FrameError::TooLarge {
                        max_bytes: self.max_frame_bytes,
                    });
                }
                return Ok(None);
            }
            scan.total += length as usize;
            if scan.total > self.max_frame_bytes {
                return Err(FrameError::TooLarge {
                    max_bytes: self.max_frame_bytes,
                });
            }
            scan.spans.push((start, length as usize));
            scan.buffers_read += 1;
            scan.at = end;
        }
        let scan = std::mem::take(&mut self.scan);
        let mut payload = Vec::with_capacity(scan.total);
        for (start, len) in scan.spans {
            payload.extend_from_slice(&buf[start..start + len]);
        }
        self.pending.drain(..scan.at);
        Ok(Some(Frame { serial, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_of_a_one_buffer_frame() {
        assert_eq!(
            encode(7, b"abc"),
            [0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c']
        );
        assert_eq!(encode(-1, b""), [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    }

    #[test]
    fn reassembles_split_buffers_and_byte_by_byte_input() {
        // Two buffers, "he" and "llo", serial 2, then a second frame.
        let mut wire = vec![0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, b'h', b'e', 0, 0, 0, 3];
        wire.extend_from_slice(b"llo");
        wire.extend_from_slice(&encode(3, b"x"));
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        for b in wire {
            d.push(&[b]);
            while let Some(f) = d.next_frame().expect("valid") {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame {
                    serial: 2,
                    payload: b"hello".to_vec()
                },
                Frame {
                    serial: 3,
                    payload: b"x".to_vec()
                }
            ]
        );
        assert_eq!(d.pending_bytes(), 0);
    }

    #[test]
    fn a_frame_split_anywhere_gives_the_same_frames() {
        // Three buffers in one frame, an empty one among them, then a second frame.
        let mut wire = vec![0, 0, 0, 9, 0, 0, 0, 3];
        for part in [&b"ab"[..], b"", b"cde"] {
            wire.extend_from_slice(&(part.len() as i32).to_be_bytes());
            wire.extend_from_slice(part);
        }
        wire.extend_from_slice(&encode(10, b"z"));
        for split in 0..wire.len() {
            let mut d = FrameDecoder::default();
            let mut frames = Vec::new();
            for piece in [&wire[..split], &wire[split..]] {
                d.push(piece);
                while let Some(f) = d.next_frame().expect("valid") {
                    frames.push(f);
                }
            }
            let payloads: Vec<(i32, &[u8])> =
                frames.iter().map(|f| (f.serial, &f.payload[..])).collect();
            assert_eq!(
                payloads,
                vec![(9, &b"abcde"[..]), (10, b"z")],
                "split at {split}"
            );
            assert_eq!(d.pending_bytes(), 0);
        }
    }

    #[test]
    fn http_request_is_refused_by_its_buffer_count() {
        let mut d = FrameDecoder::default();
        d.push(b"GET / HTTP/1.1\r\n");
        let err = d.next_frame().expect_err("not a frame");
        assert!(matches!(err, FrameError::BufferCount { .. }), "{err}");
    }

    #[test]
    fn negative_and_oversized_lengths_are_refused_before_the_body_arrives() {
        let mut d = FrameDecoder::default();
        d.push(&[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0]);
        assert_eq!(
            d.next_frame(),
            Err(FrameError::NegativeLength { length: -16 })
        );
        let mut d = FrameDecoder::new(100);
        d.push(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 101]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge { max_bytes: 100 }));
    }
}
