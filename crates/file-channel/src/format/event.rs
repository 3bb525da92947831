//! The encoding of one event inside a put record's payload.
//!
//! ```text
//! u16 header count
//! header count × { u16 key length, u16 value length, key bytes (UTF-8), value bytes (UTF-8) }
//! u32 body length
//! body bytes
//! ```

use super::le::{put_u16, put_u32, u16_at, u32_at};
use super::CorruptionKind;
use crate::limits::{MAX_EVENT_BYTES, MAX_HEADERS_PER_EVENT, MAX_HEADER_FIELD_BYTES};
use crate::Event;

impl Event {
    /// Bytes this event occupies inside a put record; also the unit of the channel's byte limit.
    pub fn encoded_len(&self) -> u64 {
        encoded_len(self)
    }
}

/// Why an event cannot be stored (checked when it is put, long before it reaches disk).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventTooLarge {
    /// More headers than [`MAX_HEADERS_PER_EVENT`].
    #[error("event has {count} headers, the limit is {MAX_HEADERS_PER_EVENT}")]
    TooManyHeaders {
        /// Headers on the event.
        count: usize,
    },
    /// A header key or value longer than [`MAX_HEADER_FIELD_BYTES`].
    #[error("header {key:?} has a {len}-byte key or value, the limit is {MAX_HEADER_FIELD_BYTES}")]
    HeaderTooLong {
        /// The header key (cut to 64 bytes).
        key: String,
        /// The offending length.
        len: usize,
    },
    /// The encoded event exceeds [`MAX_EVENT_BYTES`].
    #[error("event encodes to {len} bytes, the limit is {MAX_EVENT_BYTES}")]
    TooLarge {
        /// Encoded length.
        len: u64,
    },
}

/// Bytes `event` takes when encoded.
pub fn encoded_len(event: &Event) -> u64 {
    let headers: u64 = event
        .headers
        .iter()
        .map(|(k, v)| 4 + k.len() as u64 + v.len() as u64)
        .sum();
    2 + headers + 4 + event.body.len() as u64
}

/// Checks that `event` can be encoded; returns its encoded length.
pub fn check(event: &Event) -> Result<u64, EventTooLarge> {
    if event.headers.len() > MAX_HEADERS_PER_EVENT {
        return Err(EventTooLarge::TooManyHeaders {
            count: event.headers.len(),
        });
    }
    for (k, v) in &event.headers {
        let len = k.len().max(v.len());
        if len > MAX_HEADER_FIELD_BYTES {
            let mut key: String = k.chars().take(64).collect();
            key.shrink_to_fit();
            return Err(EventTooLarge::HeaderTooLong { key, len });
        }
    }
    let len = encoded_len(event);
    if len > MAX_EVENT_BYTES {
        return Err(EventTooLarge::TooLarge { len });
    }
    Ok(len)
}

/// Appends the encoding of a checked event to `out`.
pub fn encode_into(event: &Event, out: &mut Vec<u8>) {
    debug_assert!(check(event).is_ok(), "encode_into needs a checked event");
    let start = out.len();
    out.resize(start + 2, 0);
    put_u16(out, start, event.headers.len() as u16);
    for (k, v) in &event.headers {
        let at = out.len();
        out.resize(at + 4, 0);
        put_u16(out, at, k.len() as u16);
        put_u16(out, at + 2, v.len() as u16);
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    let at = out.len();
    out.resize(at + 4, 0);
    put_u32(out, at, event.body.len() as u32);
    out.extend_from_slice(&event.body);
    debug_assert_eq!((out.len() - start) as u64, encoded_len(event));
}

fn need(b: &[u8], at: usize, n: usize) -> Result<(), CorruptionKind> {
    if b.len().saturating_sub(at) < n {
        return Err(CorruptionKind::BadPayload {
            what: "event runs past the end of the record",
        });
    }
    Ok(())
}

fn utf8(b: &[u8]) -> Result<String, CorruptionKind> {
    String::from_utf8(b.to_vec()).map_err(|_| CorruptionKind::BadPayload {
        what: "header is not UTF-8",
    })
}

/// Decodes one event from the start of `b`; returns it and the bytes it used.
pub fn decode(b: &[u8]) -> Result<(Event, usize), CorruptionKind> {
    need(b, 0, 2)?;
    let count = usize::from(u16_at(b, 0));
    if count > MAX_HEADERS_PER_EVENT {
        return Err(CorruptionKind::BadPayload {
            what: "too many headers",
        });
    }
    let mut at = 2usize;
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        need(b, at, 4)?;
        let klen = usize::from(u16_at(b, at));
        let vlen = usize::from(u16_at(b, at + 2));
        at += 4;
        need(b, at, klen + vlen)?;
        let key = utf8(&b[at..at + klen])?;
        let value = utf8(&b[at + klen..at + klen + vlen])?;
        at += klen + vlen;
        headers.push((key, value));
    }
    need(b, at, 4)?;
    let body_len = u32_at(b, at) as usize;
    at += 4;
    if body_len as u64 > MAX_EVENT_BYTES {
        return Err(CorruptionKind::BadPayload {
            what: "body length over the event limit",
        });
    }
    need(b, at, body_len)?;
    let body = b[at..at + body_len].to_vec();
    at += body_len;
    Ok((Event { headers, body }, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_length_agree() {
        let e = Event::new(b"hello".to_vec())
            .with_header("host", "a")
            .with_header("ü", "");
        let mut out = vec![];
        encode_into(&e, &mut out);
        assert_eq!(out.len() as u64, e.encoded_len());
        let (d, used) = decode(&out).unwrap();
        assert_eq!(d, e);
        assert_eq!(used, out.len());
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err(), "cut at {cut} decoded");
        }
    }

    #[test]
    fn limits_are_enforced_at_the_edge() {
        let mut e = Event::new(vec![]);
        e.headers = (0..MAX_HEADERS_PER_EVENT)
            .map(|i| (i.to_string(), String::new()))
            .collect();
        assert!(check(&e).is_ok());
        e.headers.push(("x".into(), String::new()));
        assert_eq!(
            check(&e),
            Err(EventTooLarge::TooManyHeaders {
                count: MAX_HEADERS_PER_EVENT + 1
            })
        );
        let e = Event::new(vec![]).with_header("k", "v".repeat(MAX_HEADER_FIELD_BYTES));
        assert!(check(&e).is_ok());
        let e = Event::new(vec![]).with_header("k", "v".repeat(MAX_HEADER_FIELD_BYTES + 1));
        assert!(
            matches!(check(&e), Err(EventTooLarge::HeaderTooLong { len, .. }) if len == MAX_HEADER_FIELD_BYTES + 1)
        );
        let body = (MAX_EVENT_BYTES - 6) as usize;
        assert_eq!(check(&Event::new(vec![0; body])), Ok(MAX_EVENT_BYTES));
        assert_eq!(
            check(&Event::new(vec![0; body + 1])),
            Err(EventTooLarge::TooLarge {
                len: MAX_EVENT_BYTES + 1
            })
        );
    }
}
