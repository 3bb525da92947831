//! Damage made on purpose in fixture channels: `verify` finds it with file, offset, kind and the
//! exact events lost (exit 1); `repair` plans without changing anything, then applies (damaged
//! bytes kept in `quarantine/`, gap records or tombstones written, checkpoints rebuilt); verify
//! exits 0 afterwards and the channel holds exactly the surviving events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use file_channel::format::record::RecordKind;
use serde_json::Value;
use std::path::Path;

fn corrupt_list(j: &Value) -> Vec<Value> {
    j["corrupt"].as_array().unwrap().clone()
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("quarantine/report.json")).unwrap())
        .unwrap()
}

/// The dry run reports the problem, exits 1 and changes nothing.
fn dry_run_changes_nothing(dir: &Path) -> String {
    let before = snapshot(dir);
    let r = on("repair", dir, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("dry run: nothing was changed"),
        "{}",
        r.stdout
    );
    assert_eq!(snapshot(dir), before, "a dry run changed the directory");
    r.stdout
}

#[test]
fn bit_flip_in_a_record_is_replaced_by_a_gap_record() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 12, 0);
    let path = seg_files(t.path())[1].clone();
    let id = seg_id(&path);
    let bytes = std::fs::read(&path).unwrap();
    let victim = records(&bytes, id)[1];
    assert_eq!(victim.kind, RecordKind::Put);
    flip(&path, victim.offset + 100, 4);
    let damaged = std::fs::read(&path).unwrap()
        [victim.offset as usize..(victim.offset + victim.aligned_len()) as usize]
        .to_vec();

    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let c = corrupt_list(&r.json());
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["segment"], id);
    assert_eq!(c[0]["offset"], victim.offset);
    assert_eq!(c[0]["kind"], "bad_checksum");
    assert_eq!(c[0]["events_lost"], 3);
    assert_eq!(c[0]["first_lost_seq"], victim.first_seq);
    assert_eq!(c[0]["bytes"], victim.aligned_len());
    assert!(c[0]["file"]
        .as_str()
        .unwrap()
        .ends_with(path.file_name().unwrap().to_str().unwrap()));
    let human = on("verify", t.path(), &[]);
    assert!(human.stdout.contains("CORRUPT"), "{}", human.stdout);
    assert!(human.stdout.contains(&format!("offset {}", victim.offset)));
    // An open trusts the checkpoint below its position (a reader meets the damage later, and
    // counts it then); `replay` reads what the checkpoint covers too, so it reports the same
    // loss as verify and exits 1. Strict mode verifies pending records below it and would
    // refuse to open.
    let rv = on("replay", t.path(), &["--json"]);
    assert_eq!(rv.code, 1, "{}", rv.stdout);
    assert_eq!(
        rv.json()["damage"].as_array().unwrap().len(),
        0,
        "{}",
        rv.stdout
    );
    let when_read = rv.json()["damage_when_read"].clone();
    assert_eq!(when_read.as_array().unwrap().len(), 1, "{}", rv.stdout);
    assert_eq!(when_read[0]["offset"], victim.offset);
    assert_eq!(rv.json()["events_lost"], 3);
    let rp = on("replay", t.path(), &["--json", "--mode", "strict"]);
    assert_eq!(rp.code, 1);
    assert!(
        rp.json()["would_fail"]
            .as_str()
            .unwrap()
            .contains("checksum"),
        "{}",
        rp.stdout
    );

    let plan = dry_run_changes_nothing(t.path());
    assert!(plan.contains("gap records"), "{plan}");
    assert!(plan.contains("3 events lost"), "{plan}");

    let j = repair_ok(t.path());
    assert_eq!(j["events_lost"], 3);
    assert_eq!(j["bytes_lost"], victim.aligned_len());
    let rep = report(t.path());
    assert_eq!(rep["events_lost"], 3);
    assert_eq!(
        rep["lost_seq_ranges"],
        serde_json::json!([[victim.first_seq, victim.first_seq + 3]])
    );
    let kept = std::fs::read(t.path().join(format!(
        "quarantine/segment-{id}-offset-{}.bin",
        victim.offset
    )))
    .unwrap();
    assert_eq!(
        kept, damaged,
        "the quarantined bytes are the damaged record"
    );
    let note = std::fs::read_to_string(t.path().join(format!(
        "quarantine/segment-{id}-offset-{}.json",
        victim.offset
    )))
    .unwrap();
    assert!(note.contains("\"events_lost\":3"), "{note}");
    // The gap record sits exactly where the damage was.
    let d = on("dump", t.path(), &["--json", "--segment", &id.to_string()]);
    let gap = d
        .json_lines()
        .into_iter()
        .find(|l| l["kind"] == "gap")
        .expect("a gap record");
    assert_eq!(gap["offset"], victim.offset);
    assert_eq!(gap["first_seq"], victim.first_seq);
    assert_eq!(gap["events"], 3);
    assert_eq!(gap["len"], victim.aligned_len());
    let lost = victim.first_seq..victim.first_seq + 3;
    assert_eq!(drain(t.path()), without(&all, lost));
    // A second repair has nothing to do.
    let again = on("repair", t.path(), &["--yes"]);
    assert_eq!(again.code, 0);
    assert!(
        again.stdout.contains("nothing to repair"),
        "{}",
        again.stdout
    );
}

#[test]
fn damage_in_the_newest_segment_before_a_durable_record_is_corruption() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 14, 0);
    let (path, _, recs) = last_segment_end(t.path());
    let id = seg_id(&path);
    assert!(recs.len() >= 2, "{recs:?}");
    let victim = recs[recs.len() - 2];
    flip(&path, victim.offset + 60, 0);
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["torn_tail"], Value::Null);
    let c = corrupt_list(&j);
    assert_eq!(c[0]["segment"], id);
    assert_eq!(c[0]["offset"], victim.offset);
    assert_eq!(c[0]["events_lost"], u64::from(victim.event_count));
    repair_ok(t.path());
    let lost = victim.first_seq..victim.first_seq + u64::from(victim.event_count);
    assert_eq!(drain(t.path()), without(&all, lost));
}

#[test]
fn bit_flips_and_truncation_in_checkpoints_are_found_and_rebuilt() {
    for variant in ["flip", "truncate", "garbage"] {
        let t = tempfile::tempdir().unwrap();
        let all = build(t.path(), 12, 5);
        let cp = ckpt_files(t.path()).pop().unwrap();
        match variant {
            "flip" => flip(&cp, 60, 2),
            "truncate" => {
                let b = std::fs::read(&cp).unwrap();
                std::fs::write(&cp, &b[..b.len() - 7]).unwrap();
            }
            _ => std::fs::write(&cp, vec![0x5A; 300]).unwrap(),
        }
        let r = on("verify", t.path(), &["--json"]);
        assert_eq!(r.code, 1, "{variant}: {}", r.stdout);
        let j = r.json();
        assert!(corrupt_list(&j).is_empty(), "{variant}: the log is fine");
        let cps = j["checkpoints"].as_array().unwrap();
        let bad = cps
            .iter()
            .find(|c| c["file"].as_str().unwrap() == cp.to_str().unwrap())
            .unwrap();
        assert_eq!(bad["valid"], false, "{variant}");
        assert_eq!(bad["status"], "invalid", "{variant}");
        let rp = on("replay", t.path(), &["--json"]).json();
        assert!(
            !rp["start"]["rejected"].as_array().unwrap().is_empty(),
            "{variant}: open refuses it: {rp}"
        );
        dry_run_changes_nothing(t.path());
        repair_ok(t.path());
        let name = cp.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            t.path().join("quarantine").join(&name).exists(),
            "{variant}: the bad checkpoint is kept"
        );
        let v = on("verify", t.path(), &["--json"]).json();
        let cps = v["checkpoints"].as_array().unwrap();
        assert!(!cps.is_empty());
        assert!(cps.iter().all(|c| c["valid"] == true), "{cps:?}");
        assert_eq!(drain(t.path()), all[5..].to_vec(), "{variant}");
    }
}

#[test]
fn a_missing_segment_gets_a_tombstone_and_the_exact_loss() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 15, 0);
    let segs = seg_files(t.path());
    assert!(segs.len() >= 4, "{segs:?}");
    let gone = segs[2].clone();
    let id = seg_id(&gone);
    let recs = records(&std::fs::read(&gone).unwrap(), id);
    let puts: Vec<_> = recs.iter().filter(|h| h.kind == RecordKind::Put).collect();
    let first = puts[0].first_seq;
    let lost: u64 = puts.iter().map(|h| u64::from(h.event_count)).sum();
    std::fs::remove_file(&gone).unwrap();

    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 1);
    let j = r.json();
    let c = corrupt_list(&j);
    let m = c
        .iter()
        .find(|x| x["kind"] == "missing_segment")
        .expect("missing segment");
    assert_eq!(m["events_lost"], lost);
    assert_eq!(m["first_lost_seq"], first);
    assert!(
        m["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("segment {id} is missing")),
        "{m}"
    );
    dry_run_changes_nothing(t.path());
    let j = repair_ok(t.path());
    assert_eq!(j["events_lost"], lost);
    assert!(gone.exists(), "a tombstone takes the segment's place");
    assert_eq!(drain(t.path()), without(&all, first..first + lost));
}

#[test]
fn a_damaged_segment_header_is_rebuilt_without_loss() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 12, 0);
    let path = seg_files(t.path())[1].clone();
    flip(&path, 20, 3);
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 1);
    let c = corrupt_list(&r.json());
    assert_eq!(c[0]["kind"], "segment_header", "{c:?}");
    assert_eq!(c[0]["offset"], 0);
    let plan = dry_run_changes_nothing(t.path());
    assert!(plan.contains("rebuild the header"), "{plan}");
    let j = repair_ok(t.path());
    assert_eq!(j["events_lost"], 0);
    assert!(t
        .path()
        .join(format!("quarantine/segment-{}-offset-0.bin", seg_id(&path)))
        .exists());
    assert_eq!(drain(t.path()), all);
}

#[test]
fn a_damaged_header_and_damaged_records_behind_it_are_repaired_in_one_round() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 12, 0);
    let path = seg_files(t.path())[1].clone();
    let id = seg_id(&path);
    let victim = records(&std::fs::read(&path).unwrap(), id)[0];
    flip(&path, 30, 1);
    flip(&path, victim.offset + 90, 6);
    assert_eq!(on("verify", t.path(), &[]).code, 1);
    // Replay reads through a rebuilt header, so the damaged record behind it is found in the
    // same pass (it used to take a second round).
    let plan = dry_run_changes_nothing(t.path());
    assert!(plan.contains("rebuild the header of segment"), "{plan}");
    assert!(!plan.contains("next round"), "{plan}");
    let j = repair_ok(t.path());
    assert_eq!(j["rounds"], 1, "{j}");
    let n = u64::from(victim.event_count);
    assert_eq!(j["events_lost"], n);
    assert_eq!(
        drain(t.path()),
        without(&all, victim.first_seq..victim.first_seq + n)
    );
}

#[test]
fn a_damaged_seal_is_replaced_and_nothing_is_lost() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 12, 0);
    let path = seg_files(t.path())[0].clone();
    let id = seg_id(&path);
    let recs = records(&std::fs::read(&path).unwrap(), id);
    let seal = *recs.last().unwrap();
    assert_eq!(seal.kind, RecordKind::Seal);
    flip(&path, seal.offset + 60, 5);
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 1);
    let c = corrupt_list(&r.json());
    assert_eq!(c[0]["offset"], seal.offset);
    assert_eq!(c[0]["events_lost"], 0);
    let j = repair_ok(t.path());
    assert_eq!(j["events_lost"], 0);
    let d = on("dump", t.path(), &["--json", "--segment", &id.to_string()]).json_lines();
    assert!(d.iter().any(|l| l["kind"] == "seal"), "a new seal");
    assert_eq!(drain(t.path()), all);
}

#[test]
fn strict_refuses_damage_but_repairs_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), 12, 0);
    let path = seg_files(t.path())[1].clone();
    let victim = records(&std::fs::read(&path).unwrap(), seg_id(&path))[0];
    flip(&path, victim.offset + 70, 1);
    let before = snapshot(t.path());
    let r = on("repair", t.path(), &["--yes", "--strict"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("strict: refusing"), "{}", r.stdout);
    let after = snapshot(t.path());
    let strip = |s: Vec<(std::path::PathBuf, Vec<u8>)>| {
        s.into_iter()
            .filter(|(p, _)| !p.ends_with("in_use.lock"))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(after), strip(before), "strict changed the directory");

    let t2 = tempfile::tempdir().unwrap();
    let all = build(t2.path(), 6, 0);
    let (seg, end, _) = last_segment_end(t2.path());
    write_at(&seg, end, &[7u8; 40]);
    let r = on("repair", t2.path(), &["--yes", "--strict"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(
        on("verify", t2.path(), &["--json"]).json()["torn_tail"],
        Value::Null
    );
    assert_eq!(drain(t2.path()), all);
}

#[test]
fn an_invalid_identity_file_is_rewritten_from_the_segments() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 6, 0);
    flip(&t.path().join("channel.meta"), 18, 0);
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 1);
    assert_eq!(corrupt_list(&r.json())[0]["kind"], "identity");
    repair_ok(t.path());
    assert!(t.path().join("quarantine/channel.meta.bad").exists());
    assert_eq!(drain(t.path()), all);
}

#[test]
fn several_problems_at_once_are_repaired_in_one_run() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 15, 3);
    let segs = seg_files(t.path());
    let a = segs[1].clone();
    let b = segs[3].clone();
    let va = records(&std::fs::read(&a).unwrap(), seg_id(&a))[0];
    let vb = records(&std::fs::read(&b).unwrap(), seg_id(&b))[1];
    flip(&a, va.offset + 200, 0);
    flip(&b, vb.offset + 57, 7);
    let (seg, end, _) = last_segment_end(t.path());
    write_at(&seg, end, b"\x01\x02\x03torn");
    flip(&ckpt_files(t.path()).pop().unwrap(), 100, 1);
    let j = on("verify", t.path(), &["--json"]).json();
    assert_eq!(corrupt_list(&j).len(), 2, "{j}");
    assert_ne!(j["torn_tail"], Value::Null);
    let r = repair_ok(t.path());
    let lost_a = u64::from(va.event_count);
    let lost_b = u64::from(vb.event_count);
    assert_eq!(r["events_lost"], lost_a + lost_b);
    let expected: Vec<_> = without(
        &without(&all, vb.first_seq..vb.first_seq + lost_b),
        va.first_seq..va.first_seq + lost_a,
    )
    .into_iter()
    .skip(3)
    .collect();
    assert_eq!(drain(t.path()), expected);
}

#[test]
fn repair_of_a_channel_whose_oldest_segment_was_deleted_reports_the_loss() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 40, 0);
    let segs = seg_files(t.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let oldest = segs[0].clone();
    let in_oldest: u64 = records(&std::fs::read(&oldest).unwrap(), seg_id(&oldest))
        .iter()
        .filter(|r| r.kind == RecordKind::Put)
        .map(|r| u64::from(r.event_count))
        .sum();
    assert!(in_oldest > 0);
    std::fs::remove_file(&oldest).unwrap();
    let v = on("verify", t.path(), &["--json"]);
    assert_eq!(v.code, 1, "{}", v.stdout);
    let rp = on("replay", t.path(), &["--json"]);
    assert_eq!(rp.code, 1, "{}", rp.stdout);
    assert_eq!(rp.json()["events_lost"], in_oldest, "{}", rp.stdout);
    let plan = on("repair", t.path(), &["--json"]);
    assert_eq!(plan.json()["events_lost"], in_oldest, "{}", plan.stdout);
    let done = on("repair", t.path(), &["--yes", "--json"]);
    assert_eq!(done.json()["events_lost"], in_oldest, "{}", done.stdout);
    assert_eq!(report(t.path())["events_lost"], in_oldest);
    assert_eq!(
        drain(t.path()).len() as u64,
        all.len() as u64 - in_oldest,
        "the survivors, and only them"
    );
}
