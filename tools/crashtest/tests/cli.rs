//! Runs the `crashtest` binary: every layer prints a JSON summary line and the final plain line
//! `N passed, N failed`, and exits 0 when nothing failed; bad usage exits 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run(args: &[&str]) -> (i32, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_crashtest"))
        .args(args)
        .output()
        .expect("run crashtest");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    (code, stdout.lines().map(str::to_owned).collect())
}

fn check_layer(layer: &str, args: &[&str], cases: u64) {
    let mut all = vec![layer];
    all.extend_from_slice(args);
    let (code, lines) = run(&all);
    assert_eq!(code, 0, "{layer}: {lines:?}");
    let last = lines.last().unwrap();
    assert_eq!(last, &format!("{cases} passed, 0 failed"), "{layer}");
    let json = &lines[lines.len() - 2];
    assert!(
        json.starts_with(&format!("{{\"layer\": \"{layer}\"")),
        "{json}"
    );
    for key in [
        "\"lost\": 0",
        "\"phantoms\": 0",
        "\"panics\": 0",
        "\"seed\": 7",
    ] {
        assert!(json.contains(key), "{layer}: {key} missing in {json}");
    }
}

#[test]
fn sim_layer_runs_cases_from_a_seed() {
    check_layer("sim", &["--seed", "7", "--cases", "6", "--no-bit-flips"], 6);
}

#[test]
fn sweep_layer_sweeps() {
    check_layer(
        "sweep",
        &["--seed", "7", "--cases", "40", "--every", "5"],
        40,
    );
}

#[test]
fn states_layer_checks_real_directories() {
    check_layer(
        "states",
        &["--seed", "7", "--cases", "40", "--every", "7"],
        40,
    );
}

#[test]
fn kill_layer_kills_and_checks() {
    let (code, lines) = run(&["kill", "--seed", "7", "--cases", "3"]);
    assert_eq!(code, 0, "{lines:?}");
    let last = lines.last().unwrap();
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    let json = &lines[lines.len() - 2];
    assert!(json.contains("\"kills\": "), "{json}");
    assert!(json.contains("\"lost\": 0") && json.contains("\"phantoms\": 0"));
}

#[test]
fn bad_usage_exits_2() {
    let (code, _) = run(&["nonsense"]);
    assert_eq!(code, 2);
}
