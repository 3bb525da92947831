//! Replays every input under `fuzz/corpus/thrift_rpc_decode/` through the fuzz target's body,
//! so the checked-in seeds (and every crash input kept there) run on stable in the normal test
//! suite: each decoder answers `Ok` or a typed error, never a panic.

#[path = "support/fuzz_body.rs"]
mod fuzz_body;

use std::path::PathBuf;
use thrift_rpc::frame::{self, MAX_FRAME_BYTES};
use thrift_rpc::wire::{self, Method, Request, Status};
use thrift_rpc::Protocol;

fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/thrift_rpc_decode");
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
fn thrift_rpc_decode_corpus() {
    for (path, data) in inputs() {
        eprintln!("{}", path.display());
        fuzz_body::thrift_rpc_decode(&data);
    }
}

#[test]
fn seeds_really_decode() {
    // The seeds must reach the decoding paths, not only the error paths.
    for (name, protocol) in [
        ("append-batch-compact", Protocol::Compact),
        ("append-batch-binary", Protocol::Binary),
    ] {
        let framed = seed(name);
        let message = frame::read_frame(&mut &framed[..], MAX_FRAME_BYTES).expect("a frame");
        let request = wire::decode_request(&message, protocol).expect("a call");
        assert!(
            matches!(&request, Request::Call { events, .. } if events.len() == 1),
            "{name}: {request:?}"
        );
    }
    let framed = seed("reply-ok-compact");
    let message = frame::read_frame(&mut &framed[..], MAX_FRAME_BYTES).expect("a frame");
    let status = wire::decode_reply(&message, Protocol::Compact, Method::AppendBatch, 1);
    assert_eq!(status.expect("a reply"), Status::Ok);
    let huge = seed("huge-frame-length");
    assert!(frame::read_frame(&mut &huge[..], MAX_FRAME_BYTES).is_err());
}
