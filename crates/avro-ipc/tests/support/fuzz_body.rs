//! The body of the fuzz target `avro_ipc_decode` (`fuzz/fuzz_targets/avro_ipc_decode.rs`
//! includes this file), kept here so `tests/fuzz_corpus.rs` replays the checked-in corpus with
//! the same code on stable and no fuzz code is compiled into the library.
//!
//! The bytes are read the ways a peer's bytes reach the crate's public decoders: as a stream of
//! Netty frames (plain and through the zlib stream of `compression-type = deflate`), and as one
//! frame's payload seen by a server (a first request: handshake then call; a later one: the
//! call alone) and by a client (handshake response then call response). Every decoder must
//! return `Ok` or a typed error, never panic; and whatever decodes must encode and decode back
//! to the same value.

use avro_ipc::call::{self, Request, Response};
use avro_ipc::compression::Incoming;
use avro_ipc::event::{self, EventRef};
use avro_ipc::frame::FrameDecoder;
use avro_ipc::handshake::{HandshakeRequest, HandshakeResponse};
use avro_ipc::protocol;

/// Most bytes the zlib decoder may produce from one input.
const INFLATED_BYTES_MAX: usize = 1 << 20;

/// Runs every decoder over `data`.
pub fn avro_ipc_decode(data: &[u8]) {
    frames(data);
    let mut incoming = Incoming::new(true);
    if let Ok(inflated) = incoming.decode(data, INFLATED_BYTES_MAX) {
        frames(&inflated);
    }
    payload(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = protocol::check_remote(text);
    }
}

/// `data` as a stream of frames, all at once and byte by byte; the same frames either way.
fn frames(data: &[u8]) {
    let mut whole = FrameDecoder::default();
    whole.push(data);
    let mut from_whole = Vec::new();
    while let Ok(Some(frame)) = whole.next_frame() {
        payload(&frame.payload);
        from_whole.push(frame);
    }
    let mut split = FrameDecoder::default();
    let mut from_split = Vec::new();
    'bytes: for b in data {
        split.push(std::slice::from_ref(b));
        loop {
            match split.next_frame() {
                Ok(Some(frame)) => from_split.push(frame),
                Ok(None) => break,
                Err(_) => break 'bytes,
            }
        }
    }
    assert_eq!(
        from_whole, from_split,
        "frames depend on how the bytes arrive"
    );
}

/// `p` as a frame's payload, on the server's side and on the client's.
fn payload(p: &[u8]) {
    let mut input = p;
    if let Ok(handshake) = HandshakeRequest::decode(&mut input) {
        let mut again = &handshake.encode()[..];
        assert_eq!(HandshakeRequest::decode(&mut again).ok(), Some(handshake));
        request(input);
    }
    request(p);
    let mut input = p;
    if let Ok(handshake) = HandshakeResponse::decode(&mut input) {
        let mut again = &handshake.encode()[..];
        assert_eq!(HandshakeResponse::decode(&mut again).ok(), Some(handshake));
        response(input);
    }
    response(p);
    if let Ok(e) = event::decode(p) {
        assert_eq!(event::decode(&event::encode((&e).into())).ok(), Some(e));
    }
}

fn request(mut input: &[u8]) {
    let Ok(decoded) = call::decode_request(&mut input) else {
        return;
    };
    let encoded = match &decoded {
        Request::Append(e) => call::encode_append(e.into()),
        Request::AppendBatch(events) => {
            let refs: Vec<EventRef<'_>> = events.iter().map(EventRef::from).collect();
            call::encode_append_batch(&refs)
        }
        Request::Ping | Request::Unknown(_) => return,
    };
    let mut again = &encoded[..];
    assert_eq!(call::decode_request(&mut again).ok(), Some(decoded));
}

fn response(mut input: &[u8]) {
    let Ok(decoded) = call::decode_response(&mut input) else {
        return;
    };
    let encoded = call::encode_response(&decoded);
    let mut again = &encoded[..];
    let back: Option<Response> = call::decode_response(&mut again).ok();
    assert_eq!(back, Some(decoded));
}
