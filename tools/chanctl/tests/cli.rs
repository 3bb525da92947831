//! The commands on healthy directories and on directories that are not channels: output,
//! JSON fields and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use file_channel::FileChannel;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn clean_channel_verifies_with_exit_0_and_full_json() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 12, 5);
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let j = r.json();
    let segs = seg_files(t.path()).len() as u64;
    assert!(segs >= 3, "{segs}");
    assert_eq!(j["segments"], segs);
    assert_eq!(j["torn_tail"], serde_json::Value::Null);
    assert_eq!(j["corrupt"].as_array().unwrap().len(), 0);
    assert_eq!(j["clean"], true);
    assert!(j["records"].as_u64().unwrap() > 0);
    assert!(j["bytes"].as_u64().unwrap() > 0);
    assert!(j["events"].as_u64().unwrap() <= all.len() as u64);
    assert_eq!(j["next_seq"], all.len() as u64);
    let cps = j["checkpoints"].as_array().unwrap();
    assert!(!cps.is_empty());
    assert!(cps.iter().all(|c| c["valid"] == true), "{cps:?}");
    assert_eq!(cps[0]["status"], "valid");

    let human = on("verify", t.path(), &[]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.contains("result: clean"), "{}", human.stdout);
    assert!(human.stdout.contains("log: no corruption"));
}

#[test]
fn not_a_channel_empty_missing_and_file_exit_2() {
    let t = tempfile::tempdir().unwrap();
    for cmd in ["verify", "dump", "stat", "replay", "repair"] {
        let r = on(cmd, t.path(), &[]);
        assert_eq!(r.code, 2, "{cmd} on an empty directory");
        assert!(r.stderr.contains("not a channel directory"), "{}", r.stderr);
    }
    std::fs::write(t.path().join("notes.txt"), b"hello").unwrap();
    std::fs::write(t.path().join("log-1.seg"), b"short name, not a segment").unwrap();
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("not a channel directory"), "{}", r.stderr);

    let missing = t.path().join("nope");
    let r = on("verify", &missing, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let r = on("stat", &t.path().join("notes.txt"), &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
    // Usage errors are exit 2 too.
    assert_eq!(chanctl(&["verify"]).code, 2);
    assert_eq!(chanctl(&["frobnicate", "x"]).code, 2);
    let r = on("repair", t.path(), &["--yes", "--dry-run"]);
    assert_eq!(r.code, 2);
}

#[test]
fn garbage_files_are_ignored_and_listed() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), 6, 0);
    std::fs::write(t.path().join("core.1234"), vec![0xAB; 5000]).unwrap();
    std::fs::write(t.path().join("log-xx.seg.bak"), b"junk").unwrap();
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let other: Vec<String> = r.json()["other_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(other.contains(&"core.1234".to_owned()), "{other:?}");
    assert!(other.contains(&"log-xx.seg.bak".to_owned()));
}

#[test]
fn dump_lists_records_in_order_with_filters_and_data() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 12, 0);
    let r = on("dump", t.path(), &["--json", "--data"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.json_lines();
    let recs: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "record").collect();
    let puts: Vec<&&serde_json::Value> = recs.iter().filter(|l| l["kind"] == "put").collect();
    assert_eq!(puts.len(), 12);
    // Log order: sequence ranges ascend and are contiguous.
    let mut next = 0;
    for p in &puts {
        assert_eq!(p["first_seq"], next);
        assert_eq!(p["crc_ok"], true);
        next = p["end_seq"].as_u64().unwrap();
        assert_eq!(p["events"], 3);
    }
    assert_eq!(next, all.len() as u64);
    // Bodies come back exactly (base64).
    use base64::Engine as _;
    let ev0 = &puts[0]["data"]["events"][0];
    let body = base64::engine::general_purpose::STANDARD
        .decode(ev0["body_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(body, all[0].body);
    assert_eq!(ev0["headers"][0][0], "round");
    assert!(lines
        .iter()
        .any(|l| l["type"] == "checkpoint" && l["valid"] == true));
    assert!(lines.iter().any(|l| l["type"] == "segment"
        && l["header_ok"] == true
        && l["format_version"] == file_channel::format::FORMAT_VERSION));
    assert!(lines
        .iter()
        .any(|l| l["type"] == "record" && l["kind"] == "seal"));

    let r = on("dump", t.path(), &["--json", "--limit", "2"]);
    let n = r
        .json_lines()
        .iter()
        .filter(|l| l["type"] == "record")
        .count();
    assert_eq!(n, 2);

    let seg2 = seg_id(&seg_files(t.path())[1]).to_string();
    let r = on("dump", t.path(), &["--json", "--segment", &seg2]);
    let lines = r.json_lines();
    assert!(lines
        .iter()
        .filter(|l| l["type"] == "record")
        .all(|l| l["segment"].as_u64().unwrap().to_string() == seg2));
    assert!(!lines.iter().any(|l| l["type"] == "checkpoint"));

    let r = on("dump", t.path(), &["--json", "--from-seq", "30"]);
    let puts: Vec<serde_json::Value> = r
        .json_lines()
        .into_iter()
        .filter(|l| l["kind"] == "put")
        .collect();
    assert_eq!(puts.len(), 2, "rounds 10 and 11 hold 30..36");
    assert_eq!(puts[0]["first_seq"], 30);

    let human = on("dump", t.path(), &["--data", "--limit", "1"]);
    assert!(human.stdout.contains("put"), "{}", human.stdout);
    assert!(human.stdout.contains("crc ok"));
    assert!(human.stdout.contains("round=0"));
    assert!(human.stdout.contains("r0-e0-ppp"));
}

#[test]
fn broken_pipe_exits_0_quietly() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("big");
    // About 4 MB of dump output: far more than a pipe buffers.
    let r = chanctl(&[
        "bench",
        "--dir",
        dir.to_str().unwrap(),
        "--events",
        "5000",
        "--size",
        "200",
        "--batch",
        "100",
        "--no-consume",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut child = Command::new(env!("CARGO_BIN_EXE_chanctl"))
        .args(["dump", dir.to_str().unwrap(), "--data"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stat_and_replay_report_pending_and_the_checkpoint_start() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 12, 7);
    let r = on("stat", t.path(), &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["pending_events"], (all.len() - 7) as u64);
    assert_eq!(j["low_water_mark"], 7);
    assert_eq!(j["next_seq"], all.len() as u64);
    assert_eq!(j["locked"], serde_json::Value::Null);
    assert!(j["pending_bytes"].as_u64().unwrap() > 0);
    assert!(j["newest_checkpoint"]["age_secs"].as_f64().unwrap() >= 0.0);
    assert_eq!(j["segments"], seg_files(t.path()).len() as u64);

    let r = on("replay", t.path(), &["--json"]);
    assert_eq!(r.code, 0);
    let j = r.json();
    assert_eq!(j["start"]["kind"], "checkpoint");
    assert_eq!(j["pending_events"], (all.len() - 7) as u64);
    assert_eq!(j["torn_tail"], serde_json::Value::Null);

    remove_checkpoints(t.path());
    let j = on("replay", t.path(), &["--json"]).json();
    assert_eq!(j["start"]["kind"], "full");
    assert_eq!(j["pending_events"], (all.len() - 7) as u64);
    assert!(j["records"].as_u64().unwrap() >= 12);
    let human = on("replay", t.path(), &[]);
    assert!(human.stdout.contains("full replay"), "{}", human.stdout);
    assert!(human.stdout.contains("nothing was written"));
    assert_eq!(on("replay", t.path(), &["--mode", "bogus"]).code, 2);
}

#[test]
fn a_live_channel_is_reported_by_stat_and_refused_by_repair() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), 3, 0);
    let ch = FileChannel::open(cfg(t.path())).unwrap();
    let j = on("stat", t.path(), &["--json"]).json();
    let holder = j["locked"].as_str().unwrap();
    assert!(
        holder.contains(&format!("pid {}", std::process::id())),
        "{holder}"
    );
    let r = on("repair", t.path(), &["--yes"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("locked by"), "{}", r.stderr);
    let r = on("repair", t.path(), &[]);
    assert_eq!(r.code, 2);
    let v = on("verify", t.path(), &[]);
    assert!(v.stdout.contains("locked by"), "{}", v.stdout);
    ch.close().unwrap();
    assert_eq!(
        on("stat", t.path(), &["--json"]).json()["locked"],
        serde_json::Value::Null
    );
}

#[test]
fn repair_of_a_clean_directory_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), 6, 2);
    let before = snapshot(t.path());
    let r = on("repair", t.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("nothing to repair"), "{}", r.stdout);
    let r = on("repair", t.path(), &["--yes"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let after = snapshot(t.path());
    let names =
        |s: &[(std::path::PathBuf, Vec<u8>)]| s.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&before), names(&after));
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        if !p.ends_with("in_use.lock") {
            assert_eq!(a, b, "{} changed", p.display());
        }
    }
}

#[test]
fn bench_writes_and_reads_back_with_json_keys() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("b");
    let d = dir.to_str().unwrap();
    let r = chanctl(&[
        "bench",
        "--dir",
        d,
        "--events",
        "300",
        "--size",
        "64",
        "--batch",
        "10",
        "--producers",
        "2",
        "--consumers",
        "2",
        "--baseline",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    for k in [
        "written",
        "read",
        "write_secs",
        "read_secs",
        "commit_p50_us",
        "commit_p99_us",
        "fsyncs",
        "baseline_secs",
        "ratio",
    ] {
        assert!(j.get(k).is_some(), "missing {k}: {j}");
    }
    assert_eq!(j["written"], 300);
    assert_eq!(j["read"], 300);
    assert!(j["fsyncs"].as_u64().unwrap() >= 1);
    assert_eq!(j["baseline_fsyncs"], 30);
    assert!(j["commit_p99_us"].as_u64().unwrap() >= j["commit_p50_us"].as_u64().unwrap());
    assert_eq!(on("verify", &dir, &[]).code, 0);

    // --no-consume leaves a backlog; a non-empty directory is refused.
    let dir2 = t.path().join("c");
    let d2 = dir2.to_str().unwrap();
    let r = chanctl(&[
        "bench",
        "--dir",
        d2,
        "--events",
        "100",
        "--size",
        "32",
        "--batch",
        "25",
        "--no-consume",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("events/s"), "{}", r.stdout);
    assert!(r.stdout.contains("p99"));
    assert_eq!(on("stat", &dir2, &["--json"]).json()["pending_events"], 100);
    let r = chanctl(&[
        "bench", "--dir", d2, "--events", "10", "--size", "32", "--batch", "5",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not empty"), "{}", r.stderr);
    let r = chanctl(&[
        "bench",
        "--dir",
        d2,
        "--events",
        "10",
        "--size",
        "32",
        "--batch",
        "5",
        "--sync",
        "sometimes",
    ]);
    assert_eq!(r.code, 2);
}

/// `chanctl bench --dir DIR --events N --size S --batch B` and `extra`.
fn bench(dir: &Path, events: u64, size: u64, batch: u64, extra: &[&str]) -> Run {
    let (events, size, batch) = (events.to_string(), size.to_string(), batch.to_string());
    let mut args = vec![
        "bench",
        "--dir",
        dir.to_str().unwrap(),
        "--events",
        &events,
        "--size",
        &size,
        "--batch",
        &batch,
    ];
    args.extend_from_slice(extra);
    chanctl(&args)
}

/// `--in-flight N`: each producer keeps up to N commits in flight; every event still lands,
/// is counted once, and is read back; 0 is refused.
#[test]
fn bench_keeps_commits_in_flight() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("f");
    let r = bench(&dir, 1005, 48, 10, &["--in-flight", "4", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["in_flight"], 4);
    assert_eq!(j["written"], 1005);
    assert_eq!(j["read"], 1005);
    assert_eq!(j["commits"], 101, "{j}");
    assert_eq!(on("verify", &dir, &[]).code, 0);
    let r = bench(&t.path().join("g"), 10, 8, 5, &["--in-flight", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn bench_encrypts_with_a_throwaway_key_and_compares_side_by_side() {
    let t = tempfile::tempdir().unwrap();
    // --encrypt --no-consume: the backlog is sealed under the throwaway key, which stat names
    // and nothing can open.
    let dir = t.path().join("enc");
    let d = dir.to_str().unwrap();
    let r = chanctl(&[
        "bench",
        "--dir",
        d,
        "--events",
        "200",
        "--size",
        "48",
        "--batch",
        "20",
        "--encrypt",
        "--no-consume",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["encrypted"], true);
    let s = on("stat", &dir, &["--json"]).json();
    assert_eq!(s["keys"]["referenced"][0]["key_id"], "bench");
    assert_eq!(s["keys"]["referenced"][0]["pending_events"], 200);
    let v = on("verify", &dir, &["--json"]).json();
    assert_eq!(v["encryption"]["records"], 10);
    assert_eq!(v["clean"], true);

    // --compare-encrypt: both ways, every round, every event back; the directory left empty.
    let dir = t.path().join("cmp");
    let d = dir.to_str().unwrap();
    let r = chanctl(&[
        "bench",
        "--dir",
        d,
        "--events",
        "300",
        "--size",
        "64",
        "--batch",
        "10",
        "--compare-encrypt",
        "--rounds",
        "2",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["rounds"], 2);
    for way in ["plain", "encrypted"] {
        assert_eq!(j[way]["written"], 600, "{j}");
        assert_eq!(j[way]["read"], 600, "{j}");
        for k in [
            "write_events_per_sec",
            "read_events_per_sec",
            "commit_p50_us",
            "take_commit_p99_us",
            "log_bytes",
        ] {
            assert!(j[way].get(k).is_some(), "missing {way}.{k}: {j}");
        }
    }
    // The envelope makes every encrypted record longer: the runs did differ. Compared on the
    // put records, whose bytes do not depend on when take records reach the file.
    let put_bytes = |way: &str| j[way]["write_log_bytes"].as_u64().unwrap();
    assert!(put_bytes("encrypted") > put_bytes("plain"), "{j}");
    assert!(
        j["encrypted"]["log_bytes"].as_u64() >= Some(put_bytes("encrypted")),
        "{j}"
    );
    for k in [
        "put_ratio",
        "take_ratio",
        "put_ratio_median",
        "take_ratio_median",
    ] {
        assert!(j[k].as_f64().unwrap() > 0.0, "{k}: {j}");
    }
    assert_eq!(j["round_put_ratios"].as_array().unwrap().len(), 2);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let r = chanctl(&[
        "bench",
        "--dir",
        d,
        "--events",
        "10",
        "--size",
        "8",
        "--batch",
        "5",
        "--compare-encrypt",
        "--baseline",
    ]);
    assert_eq!(r.code, 2, "--baseline does not go with --compare-encrypt");
}

#[test]
fn a_flume_file_channel_directory_is_named_as_such_with_exit_2() {
    let t = tempfile::tempdir().unwrap();
    for name in [
        "checkpoint",
        "checkpoint.meta",
        "inflighttakes",
        "inflightputs",
    ] {
        std::fs::write(t.path().join(name), b"flume").unwrap();
    }
    std::fs::write(t.path().join("log-1"), b"flume").unwrap();
    for cmd in ["verify", "dump", "stat", "replay", "repair"] {
        let r = on(cmd, t.path(), &[]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        assert!(
            r.stderr.contains("holds Apache Flume FileChannel files (checkpoint, checkpoint.meta, inflightputs, inflighttakes and 1 more)"),
            "{cmd}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("ChannelSize metric is 0"), "{}", r.stderr);
    }
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
}
