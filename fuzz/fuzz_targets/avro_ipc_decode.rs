//! Fuzzes the Avro IPC decoders: Netty frames (plain and deflated), handshake requests and
//! responses, calls and responses, `AvroFlumeEvent`, a peer's protocol text (body:
//! `crates/avro-ipc/tests/support/fuzz_body.rs`, which `tests/fuzz_corpus.rs` replays).
#![no_main]

#[path = "../../crates/avro-ipc/tests/support/fuzz_body.rs"]
mod fuzz_body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_body::avro_ipc_decode(data));
