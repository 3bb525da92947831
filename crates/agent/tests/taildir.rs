//! `TAILDIR` end to end with the real binary: lines appended to followed files land in
//! file_roll output exactly once across rename-rotation, truncation and a clean restart from
//! the position file; after a SIGKILL only the batch whose position was not yet written comes
//! again.

mod common;

use common::{read_dir_lines, wait_until, write_conf, AgentProcess};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// A TAILDIR source following `logs/app\.log` into file channel c1. With `sink_on_c1` false
/// the sink reads an unused channel, so c1 keeps everything the source put.
fn conf(batch: u32, sink_on_c1: bool) -> String {
    let sink_channel = if sink_on_c1 { "c1" } else { "c2" };
    format!(
        "\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = logs/app\\\\.log
a1.sources.r1.headers.f1.topic = app
a1.sources.r1.positionFile = state/taildir_position.json
a1.sources.r1.batchSize = {batch}
a1.sources.r1.idleTimeout = 500
a1.sources.r1.writePosInterval = 200
a1.sources.r1.backoffSleepIncrement = 20
a1.sources.r1.maxBackoffSleep = 50
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = channel/checkpoint
a1.channels.c1.dataDirs = channel/data
a1.channels.c1.transactionCapacity = 1000
a1.channels.c2.type = memory
a1.channels.c2.transactionCapacity = 1000
a1.channels.c2.capacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = {sink_channel}
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
"
    )
}

fn append(p: &Path, from: usize, to: usize) {
    let mut f = std::fs::File::options()
        .create(true)
        .append(true)
        .open(p)
        .expect("open");
    let text: String = (from..to).map(|i| format!("line-{i:06}\n")).collect();
    f.write_all(text.as_bytes()).expect("append");
}

fn expected(to: usize) -> Vec<String> {
    (0..to).map(|i| format!("line-{i:06}")).collect()
}

fn sorted_output(out: &Path) -> Vec<String> {
    let mut v = read_dir_lines(out);
    v.sort();
    v
}

fn wait_lines(agent: &AgentProcess, out: &Path, n: usize) {
    assert!(
        wait_until(Duration::from_secs(60), || read_dir_lines(out).len() >= n),
        "expected {n} lines, have {}:\n{}",
        read_dir_lines(out).len(),
        agent.log()
    );
}

#[test]
fn rotation_truncation_and_clean_restart_deliver_every_line_exactly_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let app = logs.join("app.log");
    let out = tmp.path().join("out");
    let posfile = tmp.path().join("state/taildir_position.json");
    append(&app, 0, 1000);
    let c = write_conf(tmp.path(), "a.conf", &conf(100, true));

    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    wait_lines(&agent, &out, 1000);
    // Rename-rotation: more lines into the old file, then it is renamed (to a name the
    // pattern does not match) and a new app.log starts.
    append(&app, 1000, 1500);
    std::fs::rename(&app, logs.join("app.log.1")).expect("rotate");
    append(&logs.join("app.log.1"), 1500, 1600);
    append(&app, 1600, 2000);
    wait_lines(&agent, &out, 2000);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(sorted_output(&out), expected(2000));

    // The position file: Flume's shape, the committed end of the current app.log.
    let text = std::fs::read_to_string(&posfile).expect("position file");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let entries = v.as_array().expect("array");
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&app).expect("stat"));
    let entry = entries
        .iter()
        .find(|e| e["inode"].as_u64() == Some(inode))
        .unwrap_or_else(|| panic!("no entry for app.log in {text}"));
    assert_eq!(entry["file"].as_str(), app.to_str(), "{text}");
    for e in entries {
        let f = e["file"].as_str().expect("file");
        assert!(f.ends_with("app.log") || f.ends_with("app.log.1"), "{text}");
    }
    assert_eq!(
        entry["pos"].as_u64(),
        Some(std::fs::metadata(&app).expect("stat").len())
    );
    assert!(text.starts_with("[{\"inode\":"), "{text}");

    // Appended while stopped: picked up exactly where the position file says.
    append(&app, 2000, 2500);
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    wait_lines(&agent, &out, 2500);
    // Truncation (copytruncate): the file restarts smaller than the position.
    std::fs::write(&app, "").expect("truncate");
    append(&app, 2500, 2600);
    wait_lines(&agent, &out, 2600);
    std::thread::sleep(Duration::from_millis(300));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("truncated"), "{log}");
    assert_eq!(
        sorted_output(&out),
        expected(2600),
        "every line exactly once"
    );
}

#[test]
fn sigkill_repeats_at_most_the_batch_whose_position_was_not_written() {
    const N: usize = 100_000;
    const BATCH: u32 = 100;
    let tmp = tempfile::tempdir().expect("tmp");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let app = logs.join("app.log");
    append(&app, 0, N);
    let posfile = tmp.path().join("state/taildir_position.json");
    let pos = || -> u64 {
        let text = std::fs::read_to_string(&posfile).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v[0]["pos"].as_u64())
            .unwrap_or(0)
    };

    // Run 1: no sink on c1, so every duplicate found later is the source's.
    let c = write_conf(tmp.path(), "run1.conf", &conf(BATCH, false));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let line_bytes = "line-000000\n".len() as u64;
    assert!(
        wait_until(Duration::from_secs(20), || pos() >= 2000 * line_bytes),
        "no progress:\n{}",
        agent.log()
    );
    agent.kill9();
    let at_kill = pos() / line_bytes;
    assert!((at_kill as usize) < N, "the kill should land mid-file");

    let c = write_conf(tmp.path(), "run2.conf", &conf(BATCH, true));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let out = tmp.path().join("out");
    wait_lines(&agent, &out, N);
    std::thread::sleep(Duration::from_millis(300));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");

    let got = read_dir_lines(&out);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &got {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "position at line {at_kill} when killed; output {} lines, {duplicates} duplicates",
        got.len()
    );
    assert_eq!(counts.len(), N, "every line, nothing invented");
    assert!(
        expected(N).iter().all(|l| counts.contains_key(l.as_str())),
        "lines lost"
    );
    assert!(
        duplicates <= BATCH as usize,
        "{duplicates} duplicates: more than one batch of {BATCH}"
    );
    for (l, c) in &counts {
        if *c > 1 {
            let i: u64 = l[5..].parse().expect("number");
            assert!(
                i >= at_kill && i < at_kill + u64::from(BATCH),
                "{l} duplicated"
            );
        }
    }
}

/// Issue 17: a file known only from the position file (rotated to a name the group no longer
/// matches while the agent was down) is read to its end with its group's `headers.<g>.*`, as
/// header-based routing downstream needs.
#[test]
fn a_file_known_only_from_the_position_file_keeps_its_group_headers_after_a_restart() {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(t.path().join("logs")).expect("mkdir");
    let log = t.path().join("logs/app.log");
    let text = conf(10, true).replace(
        "a1.sinks.k1.sink.batchSize = 1000\n",
        "a1.sinks.k1.sink.batchSize = 1000\na1.sinks.k1.sink.serializer = header_and_text\n",
    );
    let path = write_conf(t.path(), "a.conf", &text);
    let out = t.path().join("out");
    append(&log, 0, 3);
    let mut agent = AgentProcess::start(t.path(), &path, "a1", false);
    agent.wait_started();
    wait_lines(&agent, &out, 3);
    let (status, log_text) = agent.terminate();
    assert!(status.success(), "{log_text}");
    // Rotated while the agent is down, and the writer finishes its last lines in the old file.
    std::fs::rename(&log, t.path().join("logs/app.log.1")).expect("rotate");
    append(&t.path().join("logs/app.log.1"), 3, 5);
    let mut agent = AgentProcess::start(t.path(), &path, "a1", false);
    agent.wait_started();
    wait_lines(&agent, &out, 5);
    let (status, log_text) = agent.terminate();
    assert!(status.success(), "{log_text}");
    let lines = sorted_output(&out);
    assert_eq!(lines.len(), 5, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("{{topic=app}} line-{i:06}"), "{lines:?}");
    }
}
