//! The `damage` layer: its checks on chosen damage (through `file_channel_testkit`'s
//! `harness::damage`, on real directories) and the `crashtest damage` command.
//!
//! The tests marked `ignore` are the issue-14 defects the layer finds on the engine as it is
//! before the loss ledger: each fails there, and must pass once every view counts every loss
//! (`cargo test -p crashtest --test damage -- --ignored`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use file_channel_testkit::harness::damage::actions::{
    Action, CheckpointDamage, Fill, SwapAs, Which,
};
use file_channel_testkit::harness::damage::{run_actions, CaseReport};
use file_channel_testkit::harness::encrypt::Encryption;
use std::process::Command;

/// A seed whose case 0 builds a channel of several segments with events in all of them.
const SEED: u64 = 7;

/// Cases of [`SEED`] the defect tests damage (each builds a different channel).
const CASES: u64 = 5;

fn run_case_with(case: u64, actions: &[Action]) -> CaseReport {
    run_case_in_mode(case, Encryption::Off, actions)
}

fn run_case_in_mode(case: u64, encryption: Encryption, actions: &[Action]) -> CaseReport {
    let scratch = tempfile::Builder::new()
        .prefix("damage-test-")
        .tempdir()
        .unwrap();
    run_actions(
        SEED,
        case,
        encryption,
        actions,
        &scratch.path().join("case"),
    )
}

fn skipped(r: &CaseReport) -> bool {
    r.actions.iter().any(|a| a.contains("skipped"))
}

fn run(actions: &[Action]) -> CaseReport {
    let r = run_case_with(0, actions);
    assert!(!skipped(&r), "action not applied: {:?}", r.actions);
    r
}

/// Applies `actions` to the channels of cases `0..CASES` (skipping those without the segment
/// an action needs): every case must pass, and the damage must have cost acknowledged events
/// in at least one.
fn assert_counted_in_every_view(actions: &[Action]) {
    let mut missing = 0;
    for case in 0..CASES {
        let r = run_case_with(case, actions);
        if skipped(&r) {
            continue;
        }
        assert_passes(&r);
        missing += r.committed - r.recovered;
    }
    assert!(missing > 0, "{actions:?} cost nothing in {CASES} cases");
}

fn assert_passes(r: &CaseReport) {
    assert!(
        r.ok(),
        "actions {:?}: {} committed, {} recovered:\n{}",
        r.actions,
        r.committed,
        r.recovered,
        r.failures.join("\n")
    );
}

#[test]
fn an_undamaged_directory_agrees_in_every_view() {
    let r = run(&[]);
    assert_passes(&r);
    assert!(r.committed > 0);
    assert_eq!(r.committed, r.recovered);
    assert_eq!(r.views.len(), 6, "{:?}", r.views);
    for v in &r.views {
        assert_eq!(v.lost, Some(0), "{v:?}");
    }
}

#[test]
fn a_deleted_middle_segment_is_counted_in_every_view() {
    assert_counted_in_every_view(&[Action::DeleteSegment(Which::Middle)]);
}

#[test]
fn knowable_cases_are_those_the_close_checkpoint_or_the_untouched_ends_tell() {
    let newest_gone = run(&[Action::DeleteSegment(Which::Newest)]);
    assert!(newest_gone.knowable, "the close checkpoint names the end");
    let checkpoints_gone = run(&[Action::Checkpoints(CheckpointDamage::DeleteAll)]);
    assert!(checkpoints_gone.knowable, "no segment was touched");
    let both = run(&[
        Action::Checkpoints(CheckpointDamage::DeleteAll),
        Action::DeleteSegment(Which::Newest),
    ]);
    assert!(!both.knowable);
    let garbage = run(&[Action::AllGarbage]);
    assert!(!garbage.knowable);
}

#[test]
fn the_foreign_channel_events_would_be_phantoms() {
    // A foreign segment added after the newest: whatever the engine makes of it, none of its
    // events may be delivered, and nothing of the channel's own is lost.
    let r = run(&[Action::SwapForeign(SwapAs::AfterNewest)]);
    assert!(r.checks.iter().all(|c| c.phantoms == 0), "{:?}", r.failures);
}

#[test]
fn garbage_over_a_whole_segment_is_counted_in_every_view() {
    assert_counted_in_every_view(&[Action::WipeSegment {
        which: Which::Middle,
        whole: true,
        fill: Fill::Garbage,
    }]);
}

#[test]
fn a_zeroed_oldest_segment_does_not_stop_delivery_and_is_counted() {
    assert_counted_in_every_view(&[Action::WipeSegment {
        which: Which::Oldest,
        whole: true,
        fill: Fill::Zeros,
    }]);
}

#[test]
fn a_deleted_oldest_segment_is_counted_in_every_view() {
    assert_counted_in_every_view(&[Action::DeleteSegment(Which::Oldest)]);
}

#[test]
fn a_deleted_newest_segment_is_counted_in_every_view() {
    assert_counted_in_every_view(&[Action::DeleteSegment(Which::Newest)]);
}

#[test]
fn a_truncated_oldest_segment_is_counted_exactly_in_every_view() {
    assert_counted_in_every_view(&[Action::TruncateSegment(Which::Oldest)]);
}

#[test]
fn a_truncated_newest_segment_is_counted_in_every_view() {
    assert_counted_in_every_view(&[Action::TruncateSegment(Which::Newest)]);
}

#[test]
fn a_foreign_segment_in_place_of_the_newest_is_counted_and_quarantined() {
    assert_counted_in_every_view(&[Action::SwapForeign(SwapAs::ReplaceNewest)]);
}

#[test]
fn a_foreign_segment_after_the_newest_is_quarantined_not_deleted() {
    for case in 0..CASES {
        assert_passes(&run_case_with(
            case,
            &[Action::SwapForeign(SwapAs::AfterNewest)],
        ));
    }
}

#[test]
fn garbled_checkpoints_are_quarantined_not_deleted() {
    for case in 0..CASES {
        assert_passes(&run_case_with(
            case,
            &[Action::Checkpoints(CheckpointDamage::GarbleAll)],
        ));
    }
}

#[test]
fn deleted_checkpoints_alone_lose_nothing_in_any_view() {
    for case in 0..CASES {
        let r = run_case_with(case, &[Action::Checkpoints(CheckpointDamage::DeleteAll)]);
        assert_passes(&r);
        assert_eq!(r.committed, r.recovered);
    }
}

#[test]
fn every_file_garbage_makes_every_view_say_problem() {
    assert_counted_in_every_view(&[Action::AllGarbage]);
}

#[test]
fn an_undamaged_encrypted_directory_agrees_in_every_view() {
    let r = run_case_in_mode(0, Encryption::On, &[]);
    assert_passes(&r);
    assert!(r.committed > 0);
    assert_eq!(r.committed, r.recovered);
    for v in &r.views {
        assert_eq!(v.lost, Some(0), "{v:?}");
    }
}

/// With encryption on, every kind of damage is counted as damage in every view, as with plain
/// records: every case passes, no record fails to decrypt (damage breaks the checksum, so it
/// is never taken for tampering), and the damage cost events in some case.
#[test]
fn encrypted_channels_count_every_kind_of_damage_as_damage() {
    let kinds: Vec<Vec<Action>> = vec![
        vec![Action::DeleteSegment(Which::Middle)],
        vec![Action::TruncateSegment(Which::Newest)],
        vec![Action::WipeSegment {
            which: Which::Middle,
            whole: false,
            fill: Fill::Garbage,
        }],
        vec![Action::WipeSegment {
            which: Which::Oldest,
            whole: true,
            fill: Fill::Zeros,
        }],
        vec![Action::SwapForeign(SwapAs::ReplaceNewest)],
        vec![Action::SwapForeign(SwapAs::ReplaceMiddle)],
        vec![
            Action::Checkpoints(CheckpointDamage::GarbleAll),
            Action::WipeSegment {
                which: Which::Middle,
                whole: true,
                fill: Fill::Garbage,
            },
        ],
        vec![Action::AllGarbage],
    ];
    for actions in kinds {
        let mut missing = 0;
        for case in 0..CASES {
            let r = run_case_in_mode(case, Encryption::On, &actions);
            if skipped(&r) {
                continue;
            }
            assert_passes(&r);
            assert!(
                r.checks.iter().all(|c| c.decrypt_failures == 0),
                "{:?}: {:?}",
                r.actions,
                r.checks
            );
            missing += r.committed - r.recovered;
        }
        assert!(missing > 0, "{actions:?} cost nothing in {CASES} cases");
    }
}

fn crashtest(args: &[&str]) -> (i32, Vec<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crashtest"))
        .args(args)
        .output()
        .expect("run crashtest");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    (code, stdout.lines().map(str::to_owned).collect(), stderr)
}

#[test]
fn damage_layer_prints_the_summary_and_a_reproduce_line_per_failure() {
    let (code, lines, stderr) = crashtest(&["damage", "--seed", "7", "--cases", "3"]);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    let last = lines.last().unwrap();
    let (passed, failed) = last
        .split_once(" passed, ")
        .and_then(|(p, f)| {
            Some((
                p.parse::<u64>().ok()?,
                f.strip_suffix(" failed")?.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("last line {last:?}"));
    assert_eq!(passed + failed, 3);
    assert_eq!(code == 1, failed > 0);
    let json = &lines[lines.len() - 2];
    assert!(
        json.starts_with("{\"layer\": \"damage\", \"seed\": 7"),
        "{json}"
    );
    for key in [
        "\"cases\": 3",
        "\"lost\": ",
        "\"phantoms\": ",
        "\"panics\": ",
        "\"encryption\": \"both\"",
    ] {
        assert!(json.contains(key), "{key} missing in {json}");
    }
    // Cases 0 and 2 plain, case 1 encrypted, each mode with the layer's own figures.
    for (mode, cases) in [("off", 2), ("on", 1)] {
        let json = lines
            .iter()
            .find(|l| l.contains(&format!("\"encryption\": \"{mode}\"")))
            .unwrap_or_else(|| panic!("no summary for {mode}: {lines:?}"));
        for key in [
            format!("\"cases\": {cases}"),
            "\"decrypt_failures\": 0".into(),
            "\"uncounted_losses\": ".into(),
            "\"mismatches_by_view\": {\"replay\": ".into(),
            "\"clean_exit_with_loss\": ".into(),
            "\"deleted_without_copy\": ".into(),
        ] {
            assert!(json.contains(&key), "{key} missing in {json}");
        }
    }
    assert_eq!(
        stderr
            .matches("reproduce: crashtest damage --seed 7 --case ")
            .count() as u64,
        failed,
        "{stderr}"
    );
}

#[test]
fn damage_case_flag_runs_that_case_alone() {
    let (code, lines, stderr) = crashtest(&["damage", "--seed", "7", "--case", "2"]);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    assert!(lines[lines.len() - 2].contains("\"cases\": 1"), "{lines:?}");
    if code == 1 {
        assert!(
            stderr.contains("damage: case 2 of seed 7 failed"),
            "{stderr}"
        );
    }
}

#[test]
fn open_does_not_fail_with_file_exists_after_a_foreign_newest_and_a_garbage_segment_before_it() {
    // Case 4 of the seed: the foreign segment (header id 4) replaces segment 22 and segment 21
    // is all garbage; the open answers `cannot create segment …21.seg: File exists`.
    let r = run_case_with(
        4,
        &[
            Action::SwapForeign(SwapAs::ReplaceNewest),
            Action::WipeSegment {
                which: Which::Middle,
                whole: true,
                fill: Fill::Garbage,
            },
        ],
    );
    let outright: Vec<&String> = r
        .failures
        .iter()
        .filter(|f| f.contains("failed outright"))
        .collect();
    assert!(outright.is_empty(), "{:?}: {outright:?}", r.actions);
}
