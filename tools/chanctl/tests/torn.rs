//! Torn tails of the newest segment at many offsets: `verify` reports them as torn (exit 0, not
//! corruption), `replay` says it would truncate them, `repair --yes` cuts them (keeping the
//! non-zero bytes in `quarantine/`) and the channel then holds exactly the acknowledged events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn torn_tails_at_many_offsets_are_not_corruption_and_repair_cuts_them() {
    let t = tempfile::tempdir().unwrap();
    let template = t.path().join("template");
    let all = build(&template, 9, 4);
    let expected: Vec<_> = all[4..].to_vec();
    let (path, end, recs) = last_segment_end(&template);
    let last = *recs.last().unwrap();
    let last_bytes = std::fs::read(&path).unwrap()
        [last.offset as usize..(last.offset + last.aligned_len()) as usize]
        .to_vec();
    let name = path.file_name().unwrap().to_owned();
    // A prefix of a record (the crash hit an unsynced write), of every interesting length.
    let mut cases: Vec<(String, Vec<u8>)> = [1usize, 2, 4, 7, 8, 55, 56, 57, 100]
        .into_iter()
        .chain([last_bytes.len() - 1, last_bytes.len()])
        .filter(|&k| k <= last_bytes.len())
        .map(|k| (format!("prefix {k}"), last_bytes[..k].to_vec()))
        .collect();
    cases.push((
        "garbage".into(),
        (0..3000u32).map(|i| (i * 7 + 3) as u8).collect(),
    ));
    cases.push(("ones".into(), vec![0xFF; 8]));
    for (i, (what, tail)) in cases.iter().enumerate() {
        let dir = t.path().join(format!("case{i}"));
        copy_dir(&template, &dir);
        let seg = dir.join(&name);
        write_at(&seg, end, tail);
        let file_len = std::fs::metadata(&seg).unwrap().len();

        let r = on("verify", &dir, &["--json"]);
        assert_eq!(
            r.code, 0,
            "{what}: a torn tail is not corruption: {}",
            r.stdout
        );
        let j = r.json();
        assert_eq!(j["torn_tail"]["offset"], end, "{what}");
        assert_eq!(j["torn_tail"]["bytes"], file_len - end, "{what}");
        assert_eq!(j["torn_tail"]["segment"], seg_id(&seg), "{what}");
        assert!(j["corrupt"].as_array().unwrap().is_empty(), "{what}");

        let human = on("verify", &dir, &[]);
        assert!(human.stdout.contains("torn tail"), "{}", human.stdout);
        assert!(human.stdout.contains("not corruption"));

        let rp = on("replay", &dir, &["--json"]).json();
        assert_eq!(rp["torn_tail"]["offset"], end, "{what}");

        let plan = on("repair", &dir, &[]);
        assert_eq!(plan.code, 0, "{what}: {}", plan.stdout);
        assert!(
            plan.stdout.contains("truncate the torn tail"),
            "{}",
            plan.stdout
        );

        let cp = ckpt_files(&dir).pop().unwrap();
        let j = repair_ok(&dir);
        assert_eq!(j["events_lost"], 0, "{what}");
        assert!(
            cp.exists(),
            "{what}: a valid checkpoint above the torn tail is kept"
        );
        assert_eq!(j["torn_tail_bytes"], file_len - end, "{what}");
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), end, "{what}");
        let v = on("verify", &dir, &["--json"]).json();
        assert_eq!(v["torn_tail"], serde_json::Value::Null, "{what}");
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("quarantine/report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["torn_tail_bytes"], file_len - end);
        assert_eq!(report["events_lost"], 0);
        // The non-zero torn bytes were kept.
        let kept = std::fs::read(dir.join(format!(
            "quarantine/segment-{}-offset-{end}.bin",
            seg_id(&seg)
        )))
        .unwrap();
        let nonzero = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        assert_eq!(kept, tail[..nonzero].to_vec(), "{what}");
        assert_eq!(drain(&dir), expected, "{what}");
    }
}

#[test]
fn a_record_cut_in_half_without_checkpoints_is_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 9, 0);
    remove_checkpoints(t.path());
    let (path, _, recs) = last_segment_end(t.path());
    let last = *recs.last().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(last.offset + 100).unwrap();
    drop(f);
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["torn_tail"]["offset"], last.offset);
    repair_ok(t.path());
    let lost = last.first_seq..last.first_seq + u64::from(last.event_count);
    assert_eq!(drain(t.path()), without(&all, lost));
}

#[test]
fn a_log_shorter_than_its_checkpoint_is_corruption() {
    // Cutting into acknowledged data the checkpoint covers is not a torn tail.
    let t = tempfile::tempdir().unwrap();
    let all = build(t.path(), 9, 0);
    let (path, _, recs) = last_segment_end(t.path());
    let last = *recs.last().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(last.offset + 100).unwrap();
    drop(f);
    let r = on("verify", t.path(), &["--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    let cps = j["checkpoints"].as_array().unwrap();
    assert_eq!(cps[0]["status"], "disagrees", "{cps:?}");
    assert!(
        cps[0]["detail"].as_str().unwrap().contains("past the end"),
        "{cps:?}"
    );
    repair_ok(t.path());
    let lost = last.first_seq..last.first_seq + u64::from(last.event_count);
    assert_eq!(drain(t.path()), without(&all, lost));
}
