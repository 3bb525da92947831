//! Avro's handshake records (specification, "Handshake"): the client names its protocol by MD5
//! (and sends the text when the server may not know it), and guesses the server's hash; the
//! server answers whether both are known (`BOTH`), only the client's (`CLIENT`, with the
//! server's text and hash), or neither (`NONE`, the client must resend with its text).
//!
//! On Avro's Netty transport the connection is stateful: the handshake rides on the first
//! call only; once it succeeded, calls carry no handshake.

use crate::WireError;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use std::sync::OnceLock;

/// `org.apache.avro.ipc.HandshakeRequest`, as in the specification.
pub const HANDSHAKE_REQUEST_SCHEMA: &str = r#"{"type":"record","name":"HandshakeRequest","namespace":"org.apache.avro.ipc","fields":[{"name":"clientHash","type":{"type":"fixed","name":"MD5","size":16}},{"name":"clientProtocol","type":["null","string"]},{"name":"serverHash","type":"MD5"},{"name":"meta","type":["null",{"type":"map","values":"bytes"}]}]}"#;

/// `org.apache.avro.ipc.HandshakeResponse`, as in the specification.
pub const HANDSHAKE_RESPONSE_SCHEMA: &str = r#"{"type":"record","name":"HandshakeResponse","namespace":"org.apache.avro.ipc","fields":[{"name":"match","type":{"type":"enum","name":"HandshakeMatch","symbols":["BOTH","CLIENT","NONE"]}},{"name":"serverProtocol","type":["null","string"]},{"name":"serverHash","type":["null",{"type":"fixed","name":"MD5","size":16}]},{"name":"meta","type":["null",{"type":"map","values":"bytes"}]}]}"#;

fn parsed(cell: &'static OnceLock<Schema>, text: &str) -> &'static Schema {
    cell.get_or_init(|| {
        Schema::parse_str(text)
            .unwrap_or_else(|e| unreachable!("the handshake schemas are valid constants: {e}"))
    })
}

fn request_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    parsed(&S, HANDSHAKE_REQUEST_SCHEMA)
}

fn response_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    parsed(&S, HANDSHAKE_RESPONSE_SCHEMA)
}

/// A client's handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// MD5 of the client's protocol text.
    pub client_hash: [u8; 16],
    /// The client's protocol text, when sent.
    pub client_protocol: Option<String>,
    /// The client's guess of the server's hash.
    pub server_hash: [u8; 16],
}

/// `HandshakeMatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeMatch {
    /// Both protocols known.
    Both,
    /// The client's known, the server's sent back.
    Client,
    /// The client's unknown: resend with its text.
    None,
}

/// A server's handshake answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// How the hashes matched.
    pub match_kind: HandshakeMatch,
    /// The server's protocol text, when the client's guess was wrong.
    pub server_protocol: Option<String>,
    /// The server's hash, when the client's guess was wrong.
    pub server_hash: Option<[u8; 16]>,
}

fn optional_string(v: Option<&String>) -> Value {
    match v {
        Some(s) => Value::Union(1, Box::new(Value::String(s.clone()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

fn write(schema: &Schema, value: Value) -> Vec<u8> {
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .unwrap_or_else(|e| unreachable!("handshake values always fit their schema: {e}"))
}

fn read(schema: &Schema, what: &'static str, input: &mut &[u8]) -> Result<Value, WireError> {
    GenericDatumReader::builder(schema)
        .build()
        .and_then(|r| r.read_value(input))
        .map_err(|e| WireError::datum(what, e))
}

fn fields(value: Value, what: &'static str) -> Result<Vec<(String, Value)>, WireError> {
    match value {
        Value::Record(f) => Ok(f),
        other => Err(WireError::datum(what, format!("not a record: {other:?}"))),
    }
}

fn md5_value(v: Value, what: &'static str) -> Result<[u8; 16], WireError> {
    match v {
        Value::Fixed(16, bytes) => bytes
            .try_into()
            .map_err(|_| WireError::datum(what, "MD5 of the wrong size")),
        other => Err(WireError::datum(what, format!("not an MD5: {other:?}"))),
    }
}

fn union_inner(v: Value) -> Value {
    match v {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

impl HandshakeRequest {
    /// The request as an Avro datum (no metadata).
    pub fn encode(&self) -> Vec<u8> {
        write(
            request_schema(),
            Value::Record(vec![
                (
                    "clientHash".into(),
                    Value::Fixed(16, self.client_hash.to_vec()),
                ),
                (
                    "clientProtocol".into(),
                    optional_string(self.client_protocol.as_ref()),
                ),
                (
                    "serverHash".into(),
                    Value::Fixed(16, self.server_hash.to_vec()),
                ),
                ("meta".into(), Value::Union(0, Box::new(Value::Null))),
            ]),
        )
    }

    /// Reads a request from the front of `input` (metadata read and ignored).
    pub fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "handshake request";
        let mut out = Self {
            client_hash: [0; 16],
            client_protocol: None,
            server_hash: [0; 16],
        };
        for (name, v) in fields(read(request_schema(), WHAT, input)?, WHAT)? {
            match name.as_str() {
                "clientHash" => out.client_hash = md5_value(v, WHAT)?,
                "serverHash" => out.server_hash = md5_value(v, WHAT)?,
                "clientProtocol" => {
                    if let Value::String(s) = union_inner(v) {
                        out.client_protocol = Some(s);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl HandshakeResponse {
    /// The response as an Avro datum (no metadata).
    pub fn encode(&self) -> Vec<u8> {
        let (index, symbol) = match self.match_kind {
            HandshakeMatch::Both => (0, "BOTH"),
            HandshakeMatch::Client => (1, "CLIENT"),
            HandshakeMatch::None => (2, "NONE"),
        };
        let hash = match self.server_hash {
            Some(h) => Value::Union(1, Box::new(Value::Fixed(16, h.to_vec()))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        write(
            response_schema(),
            Value::Record(vec![
                ("match".into(), Value::Enum(index, symbol.into())),
                (
                    "serverProtocol".into(),
                    optional_string(self.server_protocol.as_ref()),
                ),
                ("serverHash".into(), hash),
                ("meta".into(), Value::Union(0, Box::new(Value::Null))),
            ]),
        )
    }

    /// Reads a response from the front of `input` (metadata read and ignored).
    pub fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "handshake response";
        let mut out = Self {
            match_kind: HandshakeMatch::None,
            server_protocol: None,
            server_hash: None,
        };
        for (name, v) in fields(read(response_schema(), WHAT, input)?, WHAT)? {
            match (name.as_str(), union_inner(v)) {
                ("match", Value::Enum(i, _)) => {
                    out.match_kind = match i {
                        0 => HandshakeMatch::Both,
                        1 => HandshakeMatch::Client,
                        _ => HandshakeMatch::None,
                    }
                }
                ("serverProtocol", Value::String(s)) => out.server_protocol = Some(s),
                ("serverHash", v @ Value::Fixed(..)) => out.server_hash = Some(md5_value(v, WHAT)?),
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_of_a_request_without_protocol_text() {
        let r = HandshakeRequest {
            client_hash: [0xaa; 16],
            client_protocol: None,
            server_hash: [0xbb; 16],
        };
        // fixed(16) raw, union index 0 (null) = 0x00, fixed(16) raw, meta union index 0.
        let mut want = vec![0xaa; 16];
        want.push(0x00);
        want.extend([0xbb; 16]);
        want.push(0x00);
        let bytes = r.encode();
        assert_eq!(bytes, want);
        let mut input = &bytes[..];
        assert_eq!(HandshakeRequest::decode(&mut input).expect("decode"), r);
        assert!(input.is_empty());
    }

    #[test]
    fn golden_bytes_of_a_request_with_protocol_text_and_metadata() {
        // Union index 1 (zigzag 2), string "P" (length zigzag 2); a meta map {"k": b"v"}.
        let mut bytes = vec![0x01; 16];
        bytes.extend([0x02, 0x02, b'P']);
        bytes.extend([0x02; 16]);
        bytes.extend([0x02, 0x02, 0x02, b'k', 0x02, b'v', 0x00]);
        let mut input = &bytes[..];
        let r = HandshakeRequest::decode(&mut input).expect("decode");
        assert!(input.is_empty());
        assert_eq!(r.client_protocol.as_deref(), Some("P"));
        assert_eq!(r.server_hash, [0x02; 16]);
    }

    #[test]
    fn golden_bytes_of_responses() {
        let both = HandshakeResponse {
            match_kind: HandshakeMatch::Both,
            server_protocol: None,
            server_hash: None,
        };
        // enum index 0, null, null, null.
        assert_eq!(both.encode(), [0x00, 0x00, 0x00, 0x00]);
        let client = HandshakeResponse {
            match_kind: HandshakeMatch::Client,
            server_protocol: Some("P".into()),
            server_hash: Some([0x11; 16]),
        };
        // enum index 1 (zigzag 2), union 1 + "P", union 1 + fixed, null meta.
        let mut want = vec![0x02, 0x02, 0x02, b'P', 0x02];
        want.extend([0x11; 16]);
        want.push(0x00);
        assert_eq!(client.encode(), want);
        let mut input = &want[..];
        assert_eq!(
            HandshakeResponse::decode(&mut input).expect("decode"),
            client
        );
        let none = HandshakeResponse {
            match_kind: HandshakeMatch::None,
            server_protocol: None,
            server_hash: None,
        };
        assert_eq!(none.encode()[0], 0x04);
    }

    #[test]
    fn truncated_handshake_is_a_typed_error() {
        let mut input = &[0xaa; 10][..];
        let err = HandshakeRequest::decode(&mut input).expect_err("short");
        assert!(
            err.to_string().starts_with("malformed handshake request"),
            "{err}"
        );
    }
}
