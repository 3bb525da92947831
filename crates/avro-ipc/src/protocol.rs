//! Flume's `AvroSourceProtocol` (`flume-ng-sdk/src/main/avro/flume.avdl`) as the JSON text
//! Avro's IDL compiler makes of it, which is what a Flume peer hashes in the handshake.
//!
//! The IDL file's licence comment is a `/** */` comment before the protocol, so the compiler
//! keeps it as the protocol's `doc`; the text below is the compact JSON `Protocol.toString()`
//! prints (key order: protocol, namespace, doc, types, messages), checked byte for byte
//! against Avro's Java IDL compiler (1.8.2) run on `flume.avdl`: MD5
//! `86aadae2c45474c0fe93ffd0f2350a65`. Its MD5 is the hash we send and answer with. A peer
//! whose text differs (a Flume built with another Avro version may format the doc
//! differently) still works: the handshake falls back to exchanging protocol texts, and
//! [`check_remote`] accepts any protocol with the same two messages.

use md5::{Digest, Md5};
use std::sync::OnceLock;

/// The protocol's full name.
pub const PROTOCOL_NAME: &str = "org.apache.flume.source.avro.AvroSourceProtocol";

/// `AvroSourceProtocol` as Flume's generated `AvroSourceProtocol.PROTOCOL` prints it.
pub const PROTOCOL_JSON: &str = concat!(
    r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro","doc":""#,
    r#"* Licensed to the Apache Software Foundation (ASF) under one\n"#,
    r#" * or more contributor license agreements.  See the NOTICE file\n"#,
    r#" * distributed with this work for additional information\n"#,
    r#" * regarding copyright ownership.  The ASF licenses this file\n"#,
    r#" * to you under the Apache License, Version 2.0 (the\n"#,
    r#" * \"License\"); you may not use this file except in compliance\n"#,
    r#" * with the License.  You may obtain a copy of the License at\n"#,
    r#" *\n"#,
    r#" * http://www.apache.org/licenses/LICENSE-2.0\n"#,
    r#" *\n"#,
    r#" * Unless required by applicable law or agreed to in writing,\n"#,
    r#" * software distributed under the License is distributed on an\n"#,
    r#" * \"AS IS\" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY\n"#,
    r#" * KIND, either express or implied.  See the License for the\n"#,
    r#" * specific language governing permissions and limitations\n"#,
    r#" * under the License.","#,
    r#""types":[{"type":"enum","name":"Status","symbols":["OK","FAILED","UNKNOWN"]},"#,
    r#"{"type":"record","name":"AvroFlumeEvent","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}],"#,
    r#""messages":{"append":{"request":[{"name":"event","type":"AvroFlumeEvent"}],"response":"Status"},"#,
    r#""appendBatch":{"request":[{"name":"events","type":{"type":"array","items":"AvroFlumeEvent"}}],"response":"Status"}}}"#
);

/// The MD5 of [`PROTOCOL_JSON`] (UTF-8), as sent in handshakes.
pub fn protocol_hash() -> [u8; 16] {
    static HASH: OnceLock<[u8; 16]> = OnceLock::new();
    *HASH.get_or_init(|| md5_of(PROTOCOL_JSON))
}

/// The MD5 of a protocol text.
pub fn md5_of(text: &str) -> [u8; 16] {
    Md5::digest(text.as_bytes()).into()
}

/// Flume's `Status`: the response of both messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Committed.
    Ok,
    /// Not committed (the channel refused).
    Failed,
    /// Unknown outcome.
    Unknown,
}

impl Status {
    /// The enum symbols in schema order.
    pub const SYMBOLS: [&'static str; 3] = ["OK", "FAILED", "UNKNOWN"];

    /// The symbol's index.
    pub fn index(self) -> u32 {
        match self {
            Self::Ok => 0,
            Self::Failed => 1,
            Self::Unknown => 2,
        }
    }

    /// The status at `index`.
    pub fn from_index(index: u32) -> Option<Self> {
        match index {
            0 => Some(Self::Ok),
            1 => Some(Self::Failed),
            2 => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// Checks that a peer's protocol text has Flume's two messages with one parameter each, and
/// returns why not otherwise.
pub fn check_remote(text: &str) -> Result<(), String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("protocol text is not JSON: {e}"))?;
    let name = json.get("protocol").and_then(|v| v.as_str()).unwrap_or("");
    let messages = json
        .get("messages")
        .and_then(|v| v.as_object())
        .ok_or_else(|| format!("protocol {name:?} has no messages"))?;
    for message in ["append", "appendBatch"] {
        let request = messages
            .get(message)
            .and_then(|m| m.get("request"))
            .and_then(|r| r.as_array())
            .ok_or_else(|| format!("protocol {name:?} has no message {message:?}"))?;
        if request.len() != 1 {
            return Err(format!(
                "protocol {name:?}: message {message:?} takes {} parameters, Flume's takes 1",
                request.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_text_parses_as_avro_and_matches_the_idl() {
        let json: serde_json::Value = serde_json::from_str(PROTOCOL_JSON).expect("json");
        assert_eq!(json["protocol"], "AvroSourceProtocol");
        assert_eq!(json["namespace"], "org.apache.flume.source.avro");
        assert_eq!(json["types"][0]["symbols"][1], "FAILED");
        assert_eq!(
            json["messages"]["appendBatch"]["request"][0]["type"]["items"],
            "AvroFlumeEvent"
        );
        // Compact: no whitespace outside strings (Protocol.toString() prints none).
        assert!(!PROTOCOL_JSON.contains("\": "));
        assert!(check_remote(PROTOCOL_JSON).is_ok());
    }

    #[test]
    fn hash_is_the_md5_of_the_text() {
        // RFC 1321 test vector, then ours is stable.
        assert_eq!(
            md5_of("abc"),
            [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ]
        );
        assert_eq!(protocol_hash(), md5_of(PROTOCOL_JSON));
        // What Avro's Java IDL compiler (1.8.2) prints for flume.avdl and its Protocol.getMD5().
        let hex: String = protocol_hash().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "86aadae2c45474c0fe93ffd0f2350a65");
    }

    #[test]
    fn foreign_protocols_are_refused_with_a_reason() {
        let err = check_remote(r#"{"protocol":"Mail","messages":{"send":{"request":[]}}}"#)
            .expect_err("not Flume's");
        assert!(err.contains("no message \"append\""), "{err}");
        assert!(check_remote("GET /").is_err());
    }
}
