//! Random bytes as segment, checkpoint and identity files (a seeded loop, so a failure names
//! its seed): every command exits 0, 1 or 2 — never a panic — and a repair that reports
//! success leaves a directory `verify` passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use file_channel::format::checkpoint::{checkpoint_file_name, Checkpoint};
use file_channel::format::segment_header::{segment_file_name, SegmentHeader};
use std::path::Path;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn channel_id(dir: &Path) -> u64 {
    let b = std::fs::read(dir.join("channel.meta")).unwrap_or_default();
    file_channel::identity::decode(&b).map_or(7, |i| i.channel_id)
}

fn mutate(rng: &mut Rng, dir: &Path) {
    let id = channel_id(dir);
    for _ in 0..1 + rng.below(4) {
        let fs = files(dir);
        match rng.below(9) {
            // Overwrite a few random bytes of a random file.
            0..=2 if !fs.is_empty() => {
                let p = &fs[rng.below(fs.len() as u64) as usize];
                let mut b = std::fs::read(p).unwrap();
                if !b.is_empty() {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(b.len().min(12_000) as u64) as usize;
                        b[at] = rng.next() as u8;
                    }
                    std::fs::write(p, &b).unwrap();
                }
            }
            // Truncate a random file.
            3 if !fs.is_empty() => {
                let p = &fs[rng.below(fs.len() as u64) as usize];
                let len = std::fs::metadata(p).unwrap().len();
                let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(rng.below(len + 1)).unwrap();
            }
            // Delete a random file.
            4 if !fs.is_empty() => {
                std::fs::remove_file(&fs[rng.below(fs.len() as u64) as usize]).unwrap();
            }
            // A segment file of random bytes, sometimes behind a valid header.
            5..=6 => {
                let seg = rng.below(12);
                let mut b = if rng.below(2) == 0 {
                    SegmentHeader::new(seg, id, rng.below(100), 0)
                        .encode()
                        .to_vec()
                } else {
                    Vec::new()
                };
                let n = rng.below(9000) as usize;
                b.extend(rng.bytes(n));
                std::fs::write(dir.join(segment_file_name(seg)), b).unwrap();
            }
            // A checkpoint of random bytes, or a well-formed one with random content.
            7 => {
                let gen = rng.below(20);
                let b = if rng.below(2) == 0 {
                    let n = rng.below(600) as usize;
                    rng.bytes(n)
                } else {
                    let next_seq = rng.below(100);
                    let lwm = rng.below(next_seq + 1);
                    Checkpoint {
                        channel_id: if rng.below(4) == 0 { rng.next() } else { id },
                        generation: gen,
                        created_unix_ms: rng.next(),
                        position: (rng.below(8), rng.below(5000)),
                        next_seq,
                        low_water_mark: lwm,
                        read_start: (rng.below(3), rng.below(200)),
                        pending_bytes: rng.next(),
                        next_txn_id: rng.next(),
                        first_live_segment: rng.below(4),
                        events_lost: rng.below(3),
                        ranges: Vec::new(),
                    }
                    .encode()
                };
                std::fs::write(dir.join(checkpoint_file_name(gen)), b).unwrap();
            }
            // Garbage identity.
            _ => {
                let n = rng.below(60) as usize;
                std::fs::write(dir.join("channel.meta"), rng.bytes(n)).unwrap();
            }
        }
    }
}

#[test]
fn random_bytes_never_make_the_tool_panic() {
    let t = tempfile::tempdir().unwrap();
    let template = t.path().join("template");
    build(&template, 10, 4);
    // CHANCTL_RANDOM_SEEDS=N runs more seeds (the default keeps the suite fast).
    let seeds: u64 = std::env::var("CHANCTL_RANDOM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let first: u64 = std::env::var("CHANCTL_RANDOM_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut codes = [[0u32; 3]; 2];
    for seed in first..first + seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let dir = t.path().join(format!("s{seed}"));
        if rng.below(4) == 0 {
            // From scratch: only random files.
            std::fs::create_dir_all(&dir).unwrap();
            let n = rng.below(800) as usize;
            std::fs::write(dir.join("channel.meta"), rng.bytes(n)).unwrap();
        } else {
            copy_dir(&template, &dir);
        }
        mutate(&mut rng, &dir);
        let ctx = format!("seed {seed}");
        // `common::on` asserts exit codes 0/1/2 and no panic message.
        let v = on("verify", &dir, &["--json"]);
        if v.code != 2 {
            let j = v.json();
            assert_eq!(v.code == 0, j["clean"] == true, "{ctx}: {}", v.stdout);
        }
        on("verify", &dir, &[]);
        on("dump", &dir, &["--json", "--data"]);
        on("dump", &dir, &[]);
        on("stat", &dir, &["--json"]);
        on("replay", &dir, &["--json"]);
        on("replay", &dir, &["--mode", "strict"]);
        on("repair", &dir, &[]);
        let r = on("repair", &dir, &["--yes", "--json"]);
        codes[0][v.code as usize] += 1;
        codes[1][r.code as usize] += 1;
        if r.code == 2 {
            eprintln!("{ctx}: repair exit 2: {}", r.stderr.trim());
        }
        if r.code == 1 {
            eprintln!("{ctx}: repair exit 1: {}", r.stdout.trim());
        }
        if r.code == 0 {
            let after = on("verify", &dir, &["--json"]);
            assert_eq!(
                after.code, 0,
                "{ctx}: repair said clean but verify disagrees: {}\nrepair: {}",
                after.stdout, r.stdout
            );
            // And the engine opens it.
            if dir.join("channel.meta").exists() || !seg_files(&dir).is_empty() {
                drain(&dir);
            }
        }
    }
    eprintln!(
        "exit codes 0/1/2: verify {:?}, repair --yes {:?}",
        codes[0], codes[1]
    );
    if std::env::var("CHANCTL_RANDOM_KEEP").is_ok() {
        eprintln!("kept {}", t.keep().display());
        return;
    }
    assert!(
        codes[0][1] > 0,
        "no seed produced corruption: the test exercises nothing"
    );
}
