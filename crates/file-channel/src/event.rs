//! [`Event`]: what flows through a channel — ordered string headers plus an opaque byte body,
//! exactly Flume's event model.
//!
//! The type knows nothing of its bytes on disk: its encoding, and `Event::encoded_len`, live in
//! `format::event`, so this module imports nothing and the format module is not imported back.

/// One event: an ordered list of string headers and an opaque body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Event {
    /// Headers in insertion order; keys may repeat only if the producer repeats them.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub body: Vec<u8>,
}

impl Event {
    /// An event with the given body and no headers.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header and returns the event (builder style).
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }

    /// The first value of header `key`, if present.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
