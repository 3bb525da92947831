//! Thrift's framed transport: every message is preceded by its length, a 4-byte big-endian
//! signed integer. Lengths are checked against a cap before anything is allocated: Thrift's
//! own default (`TConfiguration.DEFAULT_MAX_FRAME_SIZE`, 16,384,000 bytes, which Flume's Java
//! server and client use). A length that is negative, zero or over the cap means the peer does
//! not speak framed Thrift, and the error says what the first bytes look like (HTTP, TLS,
//! unframed Thrift) so an operator sees the cause at once.

use std::io::Read;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest frame accepted or sent: Thrift's default maximum frame size.
pub const MAX_FRAME_BYTES: usize = 16_384_000;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is not a plausible frame length.
    #[error("frame length prefix {prefix} ({length} bytes) is not a valid Thrift frame (at most {max} bytes); {hint}")]
    BadLength {
        /// The four bytes, escaped.
        prefix: String,
        /// The length they encode.
        length: i64,
        /// The cap.
        max: usize,
        /// What the bytes look like.
        hint: String,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame ({read} of {expected} bytes read)")]
    Truncated {
        /// Bytes of the frame (or of its length prefix) received.
        read: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// Reading failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The frame length in `prefix`, checked against `max`.
pub fn frame_length(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    if length > 0 && length as usize <= max {
        return Ok(length as usize);
    }
    Err(FrameError::BadLength {
        prefix: escape(&prefix),
        length: i64::from(length),
        max,
        hint: describe_foreign(&prefix),
    })
}

/// `\x..`-escaped bytes, printable ASCII kept, in quotes.
pub fn escape(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

/// What the first bytes of a stream that is not framed Thrift look like.
pub fn describe_foreign(first: &[u8]) -> String {
    const HTTP: [&[u8]; 7] = [
        b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"HTTP",
    ];
    if HTTP.iter().any(|m| first.starts_with(m)) {
        "the peer speaks HTTP, not framed Thrift".into()
    } else if first.starts_with(&[0x16, 0x03]) {
        "the peer starts a TLS handshake; ssl is not supported".into()
    } else if first.starts_with(&[0x80, 0x01]) {
        "the peer speaks unframed Thrift binary protocol; Flume's Thrift RPC needs framed transport"
            .into()
    } else if first.first() == Some(&0x82) {
        "the peer speaks unframed Thrift compact protocol; Flume's Thrift RPC needs framed transport".into()
    } else {
        "the peer does not speak framed Thrift (wrong port or protocol?)".into()
    }
}

/// Reads one frame from an async stream. `Ok(None)` if the stream ended cleanly before a new
/// frame started.
pub async fn read_frame_async<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut prefix[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                read: got,
                expected: 4,
            });
        }
        got += n;
    }
    let length = frame_length(prefix, max)?;
    let mut frame = vec![0u8; length];
    let mut got = 0;
    while got < length {
        let n = reader.read(&mut frame[got..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                read: got,
                expected: length,
            });
        }
        got += n;
    }
    Ok(Some(frame))
}

/// Reads one frame from a blocking stream; a stream that ends is an error.
pub fn read_frame<R: Read>(reader: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    read_full(reader, &mut prefix)?;
    let length = frame_length(prefix, max)?;
    let mut frame = vec![0u8; length];
    read_full(reader, &mut frame)?;
    Ok(frame)
}

fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(FrameError::Truncated {
                    read: got,
                    expected: buf.len(),
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Starts a frame in `buf`: a length placeholder that [`finish_frame`] fills in.
pub fn start_frame(buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0; 4]);
}

/// Writes the length of the frame started by [`start_frame`]; `None` if it is over `max`.
pub fn finish_frame(buf: &mut [u8], max: usize) -> Option<usize> {
    let length = buf.len().checked_sub(4)?;
    if length > max {
        return None;
    }
    buf[..4].copy_from_slice(&(length as u32).to_be_bytes());
    Some(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_before_allocation() {
        assert_eq!(
            frame_length([0, 0, 0, 30], MAX_FRAME_BYTES).expect("ok"),
            30
        );
        let e = frame_length(*b"GET ", MAX_FRAME_BYTES).expect_err("http");
        assert_eq!(
            e.to_string(),
            "frame length prefix \"GET \" (1195725856 bytes) is not a valid Thrift frame (at most 16384000 bytes); the peer speaks HTTP, not framed Thrift"
        );
        let e = frame_length([0x80, 0x01, 0x00, 0x01], MAX_FRAME_BYTES).expect_err("unframed");
        assert!(e.to_string().contains("(-2147418111 bytes)"), "{e}");
        assert!(e.to_string().contains("unframed Thrift binary"), "{e}");
        let e = frame_length([0x16, 0x03, 0x01, 0x02], MAX_FRAME_BYTES).expect_err("tls");
        assert!(e.to_string().ends_with("ssl is not supported"), "{e}");
        let e = frame_length([0, 0, 0, 0], MAX_FRAME_BYTES).expect_err("empty");
        assert!(e.to_string().contains("(0 bytes)"), "{e}");
        assert!(frame_length([0, 0, 0, 11], 10).is_err());
    }

    #[test]
    fn sync_reader_reports_truncation() {
        let mut data: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 5, b'x'];
        assert_eq!(read_frame(&mut data, 100).expect("frame"), b"abc");
        let e = read_frame(&mut data, 100).expect_err("truncated");
        assert_eq!(
            e.to_string(),
            "connection closed in the middle of a frame (1 of 5 bytes read)"
        );
    }

    #[tokio::test]
    async fn async_reader_ends_cleanly_between_frames_only() {
        let mut data: &[u8] = &[0, 0, 0, 1, b'z'];
        assert_eq!(
            read_frame_async(&mut data, 100).await.expect("ok"),
            Some(b"z".to_vec())
        );
        assert_eq!(read_frame_async(&mut data, 100).await.expect("eof"), None);
        let mut data: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame_async(&mut data, 100).await,
            Err(FrameError::Truncated {
                read: 2,
                expected: 4
            })
        ));
    }

    #[test]
    fn frames_get_their_length_and_respect_the_cap() {
        let mut buf = Vec::new();
        start_frame(&mut buf);
        buf.extend_from_slice(b"hello");
        assert_eq!(finish_frame(&mut buf, 100), Some(5));
        assert_eq!(buf, b"\0\0\0\x05hello");
        assert_eq!(finish_frame(&mut buf, 4), None);
    }
}
