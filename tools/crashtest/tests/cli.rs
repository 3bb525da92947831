//! Runs the `crashtest` binary: every layer prints a JSON summary line per encryption mode (and
//! one for both) and the final plain line `N passed, N failed`, and exits 0 when nothing failed;
//! bad usage exits 2.
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

/// The summary line of `mode` ("off", "on" or "both") among `lines`.
fn summary<'a>(lines: &'a [String], layer: &str, mode: &str) -> &'a str {
    lines
        .iter()
        .find(|l| {
            l.starts_with(&format!("{{\"layer\": \"{layer}\""))
                && l.contains(&format!("\"encryption\": \"{mode}\""))
        })
        .unwrap_or_else(|| panic!("no {layer} summary for encryption {mode} in {lines:?}"))
}

/// The number after `"key": ` in a JSON line.
fn figure(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + key.len()
        + 4;
    json[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not a number in {json}"))
}

/// Runs a layer with the default `--encrypt both`: the last lines are the summary of both modes
/// and `N passed, 0 failed`; each mode has its own summary, with cases in it.
fn check_layer(layer: &str, args: &[&str], cases: u64) {
    let mut all = vec![layer];
    all.extend_from_slice(args);
    let (code, lines) = run(&all);
    assert_eq!(code, 0, "{layer}: {lines:?}");
    let last = lines.last().unwrap();
    assert_eq!(last, &format!("{cases} passed, 0 failed"), "{layer}");
    let json = &lines[lines.len() - 2];
    assert_eq!(json, summary(&lines, layer, "both"));
    assert_eq!(figure(json, "cases"), cases, "{json}");
    let mut per_mode = 0;
    for mode in ["off", "on", "both"] {
        let json = summary(&lines, layer, mode);
        for key in [
            "\"lost\": 0",
            "\"phantoms\": 0",
            "\"panics\": 0",
            "\"decrypt_failures\": 0",
            "\"seed\": 7",
        ] {
            assert!(json.contains(key), "{layer}: {key} missing in {json}");
        }
        if mode != "both" {
            assert!(figure(json, "cases") > 0, "{layer}: no case {mode}: {json}");
            per_mode += figure(json, "cases");
        }
    }
    assert_eq!(per_mode, cases);
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
    assert_eq!(json, summary(&lines, "kill", "both"));
    assert!(json.contains("\"lost\": 0") && json.contains("\"phantoms\": 0"));
    // Plain first, then encrypted on the same directory: both phases killed children.
    for mode in ["off", "on"] {
        let json = summary(&lines, "kill", mode);
        assert!(figure(json, "kills") > 0, "{json}");
        assert!(json.contains("\"lost\": 0") && json.contains("\"phantoms\": 0"));
    }
}

#[test]
fn encrypt_on_alone_prints_one_summary() {
    let (code, lines) = run(&[
        "sim",
        "--seed",
        "7",
        "--cases",
        "3",
        "--no-bit-flips",
        "--encrypt",
        "on",
    ]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], summary(&lines, "sim", "on"));
    assert_eq!(figure(&lines[0], "cases"), 3);
    assert_eq!(lines[1], "3 passed, 0 failed");
}

#[test]
fn bad_usage_exits_2() {
    let (code, _) = run(&["nonsense"]);
    assert_eq!(code, 2);
    let (code, _) = run(&["sim", "--encrypt", "sometimes"]);
    assert_eq!(code, 2);
}
