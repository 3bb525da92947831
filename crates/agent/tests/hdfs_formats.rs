//! The hdfs sink's compressed streams read back by the tools users read them with:
//! `gzip -dc`, `bzip2 -dc` and `zstd -dc` on files of several batches (one compressed unit
//! each), whole and after a crash cut followed by `complete_prefix`.
//!
//! The tools are on CI's machine (`.ci/run` installs them and sets `SLUICE_REQUIRE_INTEROP=1`,
//! which makes a missing one a failure); elsewhere a test whose tool is missing prints
//! `SKIPPED` and passes.

use agent::sink::hdfs::format::{complete_prefix, Codec, FileType, FormatConfig};
use file_channel::Event;
use std::io::Write;
use std::process::{Command, Stdio};

/// Whether `tool` runs; without it the test prints `SKIPPED`, or fails under
/// `SLUICE_REQUIRE_INTEROP`.
fn tool_available(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
            "SLUICE_REQUIRE_INTEROP is set but `{tool}` is not installed (apt-get install {tool})"
        );
        eprintln!("SKIPPED: `{tool}` is not installed");
    }
    ok
}

/// `tool -dc` on `bytes`: its exit success and standard output.
fn decompress_with(tool: &str, bytes: &[u8]) -> (bool, Vec<u8>) {
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        // A tool that stops early closes the pipe; that shows in its exit status.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    (out.status.success(), out.stdout)
}

fn config(codec: Codec) -> FormatConfig {
    FormatConfig {
        file_type: FileType::CompressedStream,
        codec: Some(codec),
        ..FormatConfig::default()
    }
}

/// Batches of varied events, with a large one that spans many compression blocks.
fn batches() -> Vec<Vec<Event>> {
    let mut out = Vec::new();
    for b in 0..6 {
        let n = if b == 3 { 3000 } else { 1 + b * 7 };
        out.push(
            (0..n)
                .map(|i| Event::new(format!("batch {b} event {i} {}", "ab".repeat(i % 50))))
                .collect(),
        );
    }
    out
}

/// The file and the text the tool must print.
fn write(codec: Codec, batches: &[Vec<Event>]) -> (Vec<u8>, Vec<u8>, Vec<usize>) {
    let cfg = config(codec);
    let mut enc = cfg.encoder();
    let mut file = Vec::new();
    let mut text = Vec::new();
    let mut ends = Vec::new();
    enc.begin(&mut file).expect("begin");
    for batch in batches {
        enc.encode_batch(batch, 0, &mut file).expect("encode");
        ends.push(file.len());
        for e in batch {
            text.extend_from_slice(&e.body);
            text.push(b'\n');
        }
    }
    enc.end(&mut file).expect("end");
    (file, text, ends)
}

fn check_tool(tool: &str, codec: Codec) {
    if !tool_available(tool) {
        return;
    }
    let all = batches();
    let (file, text, ends) = write(codec, &all);
    let (ok, out) = decompress_with(tool, &file);
    assert!(ok, "{tool} -dc failed on the whole file");
    assert_eq!(out, text, "{tool} -dc output");

    // A crash cut inside the fifth batch: the tool rejects the torn file, and reads the
    // recovered prefix, which is the first four batches exactly.
    let cut = ends[3] + (ends[4] - ends[3]) / 2;
    let (ok, _) = decompress_with(tool, &file[..cut]);
    assert!(!ok, "{tool} -dc accepted a torn file");
    let r = complete_prefix(&config(codec), &file[..cut]);
    assert_eq!(r.len, ends[3] as u64);
    let want_events: usize = all[..4].iter().map(Vec::len).sum();
    assert_eq!(r.events, want_events as u64);
    let (ok, out) = decompress_with(tool, &file[..ends[3]]);
    assert!(ok, "{tool} -dc failed on the recovered prefix");
    let want: Vec<u8> = all[..4]
        .iter()
        .flatten()
        .flat_map(|e| e.body.iter().copied().chain([b'\n']))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn gzip_reads_every_batch() {
    check_tool("gzip", Codec::Gzip);
}

#[test]
fn bzip2_reads_every_batch() {
    check_tool("bzip2", Codec::Bzip2);
}

#[test]
fn zstd_reads_every_batch() {
    check_tool("zstd", Codec::Zstd);
}
