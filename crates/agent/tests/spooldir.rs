//! `spooldir` end to end with the real binary: files dropped in the spool directory land in
//! file_roll output and are renamed when done; a SIGKILL mid-file loses nothing and duplicates
//! at most one source batch.

mod common;

use common::{read_dir_lines, wait_until, write_conf, AgentProcess};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A spooldir source into file channel c1. With `sink_on_c1` false the file_roll sink reads
/// an unused channel, so c1 keeps everything the source put (no sink-side duplicates).
fn conf(batch: u32, sink_on_c1: bool) -> String {
    let sink_channel = if sink_on_c1 { "c1" } else { "c2" };
    format!(
        "\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = spool
a1.sources.r1.batchSize = {batch}
a1.sources.r1.pollDelay = 50
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

/// Writes a file under a hidden name and renames it in, as producers should.
fn drop_file(spool: &Path, name: &str, text: &str) {
    let tmp = spool.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, spool.join(name)).expect("rename in");
}

fn lines(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix}-{i:06}\n")).collect()
}

#[test]
fn files_land_in_file_roll_output_and_are_renamed_when_done() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spool = tmp.path().join("spool");
    std::fs::create_dir_all(&spool).expect("mkdir");
    drop_file(&spool, "a.log", &lines("a", 250));
    let c = write_conf(tmp.path(), "a.conf", &conf(100, true));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    drop_file(&spool, "b.log", &lines("b", 10));
    let out = tmp.path().join("out");
    let ok = wait_until(Duration::from_secs(20), || {
        read_dir_lines(&out).len() >= 260 && spool.join("b.log.COMPLETED").exists()
    });
    let (status, log) = agent.terminate();
    assert!(ok, "not everything arrived:\n{log}");
    assert!(status.success(), "{log}");
    let mut got = read_dir_lines(&out);
    got.sort();
    let mut want: Vec<String> = lines("a", 250).lines().map(str::to_owned).collect();
    want.extend(lines("b", 10).lines().map(str::to_owned));
    assert_eq!(got, want, "every line exactly once");
    assert!(spool.join("a.log.COMPLETED").exists());
    assert!(!spool.join("a.log").exists() && !spool.join("b.log").exists());
    assert!(
        !spool.join(".flumespool/.flumespool-main.meta").exists(),
        "no tracker once every file is done"
    );
}

#[test]
fn sigkill_mid_file_resumes_from_the_tracker_with_at_most_one_batch_again() {
    const N: usize = 100_000;
    const BATCH: u32 = 100;
    let tmp = tempfile::tempdir().expect("tmp");
    let spool = tmp.path().join("spool");
    std::fs::create_dir_all(&spool).expect("mkdir");
    drop_file(&spool, "big.log", &lines("x", N));
    let tracker = spool.join(".flumespool/.flumespool-main.meta");

    // Run 1: no sink on c1, so every duplicate found later is the source's.
    let c = write_conf(tmp.path(), "run1.conf", &conf(BATCH, false));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let tracked_line = |t: &Path| -> u64 {
        let text = std::fs::read_to_string(t).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["line"].as_u64())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(20), || tracked_line(&tracker) >= 2000),
        "no progress:\n{}",
        agent.log()
    );
    agent.kill9();
    let at_kill = tracked_line(&tracker);
    assert!(
        spool.join("big.log").exists() && (at_kill as usize) < N,
        "the kill should land mid-file (tracker at line {at_kill})"
    );

    // Run 2: resume, with the sink draining c1.
    let c = write_conf(tmp.path(), "run2.conf", &conf(BATCH, true));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let out = tmp.path().join("out");
    let ok = wait_until(Duration::from_secs(30), || {
        spool.join("big.log.COMPLETED").exists() && read_dir_lines(&out).len() >= N
    });
    std::thread::sleep(Duration::from_millis(200));
    let (status, log) = agent.terminate();
    assert!(ok, "did not finish:\n{log}");
    assert!(status.success(), "{log}");
    assert!(log.contains("resuming from the tracker"), "{log}");

    let got = read_dir_lines(&out);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &got {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let want: Vec<String> = lines("x", N).lines().map(str::to_owned).collect();
    let missing = want
        .iter()
        .filter(|l| !counts.contains_key(l.as_str()))
        .count();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "tracker at line {at_kill} when killed; output {} lines, {duplicates} duplicates",
        got.len()
    );
    assert_eq!(missing, 0, "lines lost");
    assert_eq!(counts.len(), N, "nothing invented");
    assert!(
        duplicates <= BATCH as usize,
        "{duplicates} duplicates: more than one batch of {BATCH}"
    );
    // Any duplicates are one contiguous run right after the tracked position.
    for (l, c) in &counts {
        if *c > 1 {
            let i: u64 = l[2..].parse().expect("number");
            assert!(
                i >= at_kill && i < at_kill + u64::from(BATCH),
                "{l} duplicated"
            );
        }
    }
}
