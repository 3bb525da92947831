//! Fuzzes the Thrift RPC decoders: frames, and calls and replies in the compact and binary
//! protocols (body: `crates/thrift-rpc/tests/support/fuzz_body.rs`, which
//! `tests/fuzz_corpus.rs` replays).
#![no_main]

#[path = "../../crates/thrift-rpc/tests/support/fuzz_body.rs"]
mod fuzz_body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_body::thrift_rpc_decode(data));
