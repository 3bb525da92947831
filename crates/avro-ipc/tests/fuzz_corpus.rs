//! Replays every input under `fuzz/corpus/avro_ipc_decode/` through the fuzz target's body, so
//! the checked-in seeds (and every crash input kept there) run on stable in the normal test
//! suite: each decoder answers `Ok` or a typed error, never a panic.

#[path = "support/fuzz_body.rs"]
mod fuzz_body;

use avro_ipc::call::{self, Request};
use avro_ipc::frame::FrameDecoder;
use avro_ipc::handshake::HandshakeRequest;
use std::path::PathBuf;

fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/avro_ipc_decode");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "corpus {} is empty", dir.display());
    out
}

fn seed(name: &str) -> Vec<u8> {
    inputs()
        .into_iter()
        .find(|(p, _)| p.ends_with(name))
        .unwrap_or_else(|| panic!("seed {name} missing"))
        .1
}

#[test]
fn avro_ipc_decode_corpus() {
    for (path, data) in inputs() {
        eprintln!("{}", path.display());
        fuzz_body::avro_ipc_decode(&data);
    }
}

#[test]
fn seeds_really_decode() {
    // The seeds must reach the decoding paths, not only the error paths.
    let mut frames = FrameDecoder::default();
    frames.push(&seed("first-request-frame"));
    let frame = frames.next_frame().expect("a frame").expect("complete");
    let mut input = &frame.payload[..];
    HandshakeRequest::decode(&mut input).expect("handshake");
    let Request::AppendBatch(events) = call::decode_request(&mut input).expect("call") else {
        panic!("not appendBatch");
    };
    assert_eq!(events.len(), 2);
    let mut input = &seed("call-append")[..];
    assert!(matches!(
        call::decode_request(&mut input),
        Ok(Request::Append(_))
    ));
    let mut frames = FrameDecoder::default();
    frames.push(&seed("huge-buffer-length"));
    assert!(frames.next_frame().is_err(), "a 2 GiB buffer is refused");
}
