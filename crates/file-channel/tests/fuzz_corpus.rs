//! Replays every input under `fuzz/corpus/<target>/` through the fuzz target bodies, so the
//! checked-in corpus and every past crash input run on stable in the normal test suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "corpus {} is empty", dir.display());
    out
}

#[test]
fn record_decoder_corpus() {
    for (path, data) in inputs("record_decoder") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::record_decoder(&data);
    }
}

#[test]
fn segment_scan_corpus() {
    for (path, data) in inputs("segment_scan") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::segment_scan(&data);
    }
}

#[test]
fn seed_records_really_decode() {
    // The seeds must exercise the decoding paths, not only the error paths.
    let (_, put) = &inputs("record_decoder")
        .into_iter()
        .find(|(p, _)| p.ends_with("put-two-events"))
        .unwrap();
    // Written before format 2: unbound.
    let decoded = file_channel::format::record::decode(
        put,
        file_channel::format::record::RecordBinding::Unbound,
        1,
        64,
    )
    .unwrap();
    assert!(
        matches!(decoded, file_channel::format::record::Decoded::Record(h, _) if h.event_count == 2),
        "seed put record does not decode as two events"
    );
}

#[test]
fn checkpoint_decoder_corpus() {
    for (path, data) in inputs("checkpoint_decoder") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::checkpoint_decoder(&data);
    }
}

#[test]
fn open_dir_corpus() {
    for (path, data) in inputs("open_dir") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::open_dir(&data);
    }
}

#[test]
fn channel_ops_corpus() {
    for (path, data) in inputs("channel_ops") {
        eprintln!("{}", path.display());
        file_channel_testkit::fuzzing::channel_ops(&data);
    }
}

#[test]
fn seed_checkpoint_really_decodes() {
    let (_, cp) = &inputs("checkpoint_decoder")
        .into_iter()
        .find(|(p, _)| p.ends_with("two-ranges"))
        .unwrap();
    let decoded = file_channel::format::checkpoint::Checkpoint::decode(cp).unwrap();
    assert_eq!(decoded.ranges, vec![(4, 5), (7, 9)]);
}
