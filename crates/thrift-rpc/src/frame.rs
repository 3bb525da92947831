//! Thrift's framed transport: every message is preceded by its length, a 4-byte big-endian
//! signed integer. Lengths are checked against a cap before anything is allocated: Thrift's
//! own default (`TConfiguration.DEFAULT_MAX_FRAME_SIZE`, 16,384,000 bytes, which Flume's Java
//! server and client use). A length that is negative, zero or over the cap means the peer does
//! not speak framed Thrift, and the error says what the first bytes look like (HTTP, TLS,
//! unframed Thrift) so an operator sees the cause at once.
//!
//! A frame's buffer grows with the bytes that arrive, never to the announced length up front:
//! a peer that announces 16 MB and sends nothing more costs nothing. A server can bound how
//! long a frame, once started, may take to arrive ([`read_frame_within`]); the wait for the
//! first byte of a frame, between two calls, is not bounded.

use std::io::Read;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The buffer of a frame first grows by at most this much; then by what has arrived.
const FIRST_GROWTH_BYTES: usize = 8 << 10;

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
    /// The peer started a frame and did not finish it in time.
    #[error("a frame was not received within {timeout_ms} ms of its first byte ({read} of {expected} bytes read)")]
    TimedOut {
        /// Bytes of the frame (or of its length prefix) received.
        read: usize,
        /// Bytes expected (4 while the length prefix is incomplete).
        expected: usize,
        /// The time allowed, ms.
        timeout_ms: u64,
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
        "the peer starts a TLS handshake: set ssl = true on this source (with a keystore) to accept TLS clients".into()
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
    read_frame_within(reader, max, None).await
}

/// Reads one frame from an async stream, waiting for its first byte as long as it takes and
/// then, with `partial_timeout`, at most that long for the rest of it
/// ([`FrameError::TimedOut`]). `Ok(None)` if the stream ended cleanly before a new frame
/// started. The frame's buffer grows as its bytes arrive.
pub async fn read_frame_within<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    partial_timeout: Option<Duration>,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut progress = Progress::default();
    progress.prefix_got = reader.read(&mut progress.prefix).await?;
    if progress.prefix_got == 0 {
        return Ok(None);
    }
    let rest = read_rest(reader, &mut progress, max);
    match partial_timeout {
        None => rest.await?,
        Some(timeout) => match tokio::time::timeout(timeout, rest).await {
            Ok(r) => r?,
            Err(_) => {
                let (read, expected) = match progress.length {
                    Some(length) => (progress.frame.len(), length),
                    None => (progress.prefix_got, 4),
                };
                return Err(FrameError::TimedOut {
                    read,
                    expected,
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
        },
    }
    Ok(Some(progress.frame))
}

/// How much of a frame has arrived.
#[derive(Default)]
struct Progress {
    prefix: [u8; 4],
    prefix_got: usize,
    length: Option<usize>,
    frame: Vec<u8>,
}

/// The rest of a frame whose first bytes are in `progress`.
async fn read_rest<R: AsyncRead + Unpin>(
    reader: &mut R,
    progress: &mut Progress,
    max: usize,
) -> Result<(), FrameError> {
    while progress.prefix_got < 4 {
        let n = reader
            .read(&mut progress.prefix[progress.prefix_got..])
            .await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                read: progress.prefix_got,
                expected: 4,
            });
        }
        progress.prefix_got += n;
    }
    let length = frame_length(progress.prefix, max)?;
    progress.length = Some(length);
    let frame = &mut progress.frame;
    while frame.len() < length {
        if frame.len() == frame.capacity() {
            let grow = frame.len().max(FIRST_GROWTH_BYTES);
            frame.reserve_exact(grow.min(length - frame.len()));
        }
        let remaining = (length - frame.len()) as u64;
        let n = (&mut *reader).take(remaining).read_buf(frame).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                read: frame.len(),
                expected: length,
            });
        }
    }
    Ok(())
}

/// Reads one frame from a blocking stream; a stream that ends is an error.
pub fn read_frame<R: Read>(reader: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    read_full(reader, &mut prefix)?;
    let length = frame_length(prefix, max)?;
    // Grows as bytes arrive: a peer announcing a large frame and sending less costs less.
    let mut frame = Vec::new();
    let got = reader
        .take(length as u64)
        .read_to_end(&mut frame)
        .map_err(FrameError::Io)?;
    if got < length {
        return Err(FrameError::Truncated {
            read: got,
            expected: length,
        });
    }
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
        assert!(
            e.to_string().contains("set ssl = true on this source"),
            "{e}"
        );
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

    #[tokio::test]
    async fn a_header_announcing_sixteen_mb_allocates_nothing_until_bytes_arrive() {
        let (mut client, mut server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client
            .write_all(&(MAX_FRAME_BYTES as u32).to_be_bytes())
            .await
            .expect("send");
        client.write_all(b"abc").await.expect("send");
        let mut progress = Progress::default();
        progress.prefix_got = server.read(&mut progress.prefix).await.expect("read");
        let rest = read_rest(&mut server, &mut progress, MAX_FRAME_BYTES);
        let waited = tokio::time::timeout(Duration::from_millis(50), rest).await;
        assert!(waited.is_err(), "the frame is incomplete");
        assert_eq!(progress.length, Some(MAX_FRAME_BYTES));
        assert_eq!(progress.frame, b"abc");
        assert!(
            progress.frame.capacity() <= FIRST_GROWTH_BYTES,
            "{} bytes reserved for 3 received",
            progress.frame.capacity()
        );
    }

    #[tokio::test]
    async fn a_frame_started_and_not_finished_in_time_is_an_error_idle_is_not() {
        use tokio::io::AsyncWriteExt;
        let timeout = Some(Duration::from_millis(50));
        let (mut client, mut server) = tokio::io::duplex(64);
        // Idle longer than the timeout, then a whole frame: fine.
        let reader = tokio::spawn(async move {
            let f = read_frame_within(&mut server, 100, timeout).await;
            (f.map_err(|e| e.to_string()), server)
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        client
            .write_all(&[0, 0, 0, 2, b'o', b'k'])
            .await
            .expect("send");
        let (f, mut server) = reader.await.expect("join");
        assert_eq!(f, Ok(Some(b"ok".to_vec())));
        // Half a frame: timed out, saying how much came.
        client.write_all(&[0, 0, 0, 9, b'x']).await.expect("send");
        let e = read_frame_within(&mut server, 100, timeout)
            .await
            .expect_err("timed out");
        assert_eq!(
            e.to_string(),
            "a frame was not received within 50 ms of its first byte (1 of 9 bytes read)"
        );
        // Half a prefix.
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(&[0, 0]).await.expect("send");
        let e = read_frame_within(&mut server, 100, timeout)
            .await
            .expect_err("timed out");
        assert!(
            matches!(
                e,
                FrameError::TimedOut {
                    read: 2,
                    expected: 4,
                    ..
                }
            ),
            "{e}"
        );
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
