//! Helpers shared by the integration tests: fixture channels made by the engine, the binary
//! run on them, and small file surgeries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use file_channel::format::record::{decode, Decoded, RecordHeader};
use file_channel::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use file_channel::{ChannelConfig, Event, FileChannel};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as one JSON object.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// stdout parsed as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

fn finish(out: Output) -> Run {
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "the tool panicked: {}",
        run.stderr
    );
    assert!(
        [0, 1, 2].contains(&run.code),
        "exit code {} (stderr: {})",
        run.code,
        run.stderr
    );
    run
}

/// Runs `chanctl` with `args`.
pub fn chanctl(args: &[&str]) -> Run {
    finish(
        Command::new(env!("CARGO_BIN_EXE_chanctl"))
            .args(args)
            .output()
            .expect("run chanctl"),
    )
}

/// Runs `chanctl CMD DIR extra…`.
pub fn on(cmd: &str, dir: &Path, extra: &[&str]) -> Run {
    let d = dir.to_str().unwrap();
    let mut args = vec![cmd, d];
    args.extend_from_slice(extra);
    chanctl(&args)
}

/// A small-segment configuration (4 KiB segments, no prefill, no space reserve).
pub fn cfg(dir: &Path) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4096;
    c.minimum_required_space = 0;
    c
}

/// Event `i` of round `round`: about 330 bytes, one header.
pub fn ev(round: u32, i: u32) -> Event {
    Event::new(format!("r{round}-e{i}-{}", "p".repeat(300)).into_bytes())
        .with_header("round", round.to_string())
}

/// Builds a channel of `rounds` put transactions of 3 events (several segments), takes the
/// first `take` events back, and closes it. Returns every event put, in order.
pub fn build(dir: &Path, rounds: u32, take: usize) -> Vec<Event> {
    let ch = FileChannel::open(cfg(dir)).unwrap();
    let mut all = Vec::new();
    for round in 0..rounds {
        let mut tx = ch.transaction();
        for i in 0..3 {
            let e = ev(round, i);
            tx.put(&e).unwrap();
            all.push(e);
        }
        tx.commit().unwrap();
    }
    let mut left = take;
    while left > 0 {
        let mut tx = ch.transaction();
        let mut n = 0;
        while n < left.min(4) {
            tx.take().unwrap().unwrap();
            n += 1;
        }
        tx.commit().unwrap();
        left -= n;
    }
    ch.close().unwrap();
    all
}

/// Opens the channel and takes every event.
pub fn drain(dir: &Path) -> Vec<Event> {
    let ch = FileChannel::open(cfg(dir)).unwrap();
    let mut out = Vec::new();
    loop {
        let mut tx = ch.transaction();
        let mut n = 0;
        while n < 10 {
            match tx.take().unwrap() {
                Some(e) => {
                    out.push(e);
                    n += 1;
                }
                None => break,
            }
        }
        tx.commit().unwrap();
        if n == 0 {
            break;
        }
    }
    ch.close().unwrap();
    out
}

/// Segment files, sorted.
pub fn seg_files(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "seg")
}

/// Checkpoint files, sorted.
pub fn ckpt_files(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "ckpt")
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// The segment id of a segment file.
pub fn seg_id(path: &Path) -> u64 {
    path.file_name().unwrap().to_str().unwrap()[4..24]
        .parse()
        .unwrap()
}

/// The valid records of a segment's bytes (bound as its header says; these tests read
/// segments whose header is intact).
pub fn records(bytes: &[u8], segment: u64) -> Vec<RecordHeader> {
    let mut out = Vec::new();
    let binding = SegmentHeader::decode(bytes)
        .expect("the segment header decodes")
        .binding();
    let mut off = SEGMENT_HEADER_BYTES as u64;
    while (off as usize) < bytes.len() {
        match decode(&bytes[off as usize..], binding, segment, off) {
            Ok(Decoded::Record(h, _)) => {
                off += h.aligned_len();
                out.push(h);
            }
            _ => break,
        }
    }
    out
}

/// Flips bit `bit` of byte `at` of `path`.
pub fn flip(path: &Path, at: u64, bit: u8) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 1 << bit;
    std::fs::write(path, &b).unwrap();
}

/// Removes every checkpoint file.
pub fn remove_checkpoints(dir: &Path) {
    for p in ckpt_files(dir) {
        std::fs::remove_file(p).unwrap();
    }
}

/// Every file under `dir` (recursively) with its bytes, sorted: a snapshot to compare.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `all` without the events whose sequence numbers are in `lost`.
pub fn without(all: &[Event], lost: std::ops::Range<u64>) -> Vec<Event> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(&(*i as u64)))
        .map(|(_, e)| e.clone())
        .collect()
}

/// Repairs with `--yes --json`, asserts exit 0 and a clean verify afterwards; returns the
/// repair's JSON.
pub fn repair_ok(dir: &Path) -> Value {
    let r = on("repair", dir, &["--yes", "--json"]);
    assert_eq!(r.code, 0, "repair failed: {}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["clean"], true, "{j}");
    let v = on("verify", dir, &["--json"]);
    assert_eq!(v.code, 0, "verify after repair: {}", v.stdout);
    j
}

/// Copies the files of `src` (not subdirectories) into a new directory `dst`.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// The end of the valid records of the newest segment, its file and its records.
pub fn last_segment_end(dir: &Path) -> (PathBuf, u64, Vec<RecordHeader>) {
    let path = seg_files(dir).pop().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let recs = records(&bytes, seg_id(&path));
    let end = recs
        .last()
        .map_or(SEGMENT_HEADER_BYTES as u64, |h| h.offset + h.aligned_len());
    (path, end, recs)
}

/// Writes `data` into `path` at `at` (extending the file if needed).
pub fn write_at(path: &Path, at: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(data, at).unwrap();
}
