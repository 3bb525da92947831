//! The body of the fuzz target `thrift_rpc_decode` (`fuzz/fuzz_targets/thrift_rpc_decode.rs`
//! includes this file), kept here so `tests/fuzz_corpus.rs` replays the checked-in corpus with
//! the same code on stable and no fuzz code is compiled into the library.
//!
//! The bytes are read the ways a peer's bytes reach the crate's public decoders: as a stream of
//! frames (the length prefix checked against the cap), and as one frame's message in the
//! compact and in the binary protocol, seen by a server (a call) and by a client (a reply to
//! either method). Every decoder must return `Ok` or a typed error, never panic; and a call
//! that decodes must encode and decode back to the same request.

use thrift_rpc::frame::{self, MAX_FRAME_BYTES};
use thrift_rpc::wire::{self, EventRef, Method, Request};
use thrift_rpc::Protocol;

/// The sequence id the replies are expected to answer (the seeds' calls use 1).
const SEQID: i32 = 1;

/// Runs every decoder over `data`.
pub fn thrift_rpc_decode(data: &[u8]) {
    if let Some(prefix) = data.first_chunk::<4>() {
        let _ = frame::frame_length(*prefix, MAX_FRAME_BYTES);
    }
    let mut stream = data;
    while let Ok(message) = frame::read_frame(&mut stream, MAX_FRAME_BYTES) {
        decode_message(&message);
    }
    decode_message(data);
}

/// `message` (a frame's content) in both protocols, as a call and as a reply.
fn decode_message(message: &[u8]) {
    for protocol in [Protocol::Compact, Protocol::Binary] {
        if let Ok(request) = wire::decode_request(message, protocol) {
            round_trip(&request, protocol);
        }
        for method in [Method::Append, Method::AppendBatch] {
            let _ = wire::decode_reply(message, protocol, method, SEQID);
        }
    }
}

/// A decoded call encodes and decodes back to itself.
fn round_trip(request: &Request, protocol: Protocol) {
    let Request::Call {
        method,
        seqid,
        events,
    } = request
    else {
        return;
    };
    let refs: Vec<EventRef<'_>> = events.iter().map(EventRef::from).collect();
    let framed = wire::encode_call(protocol, *method, *seqid, &refs, MAX_FRAME_BYTES)
        .unwrap_or_else(|e| panic!("a decoded call does not encode: {e}"));
    let again = wire::decode_request(&framed[4..], protocol)
        .unwrap_or_else(|e| panic!("an encoded call does not decode: {e}"));
    assert_eq!(&again, request);
}
