//! kill -9: netcat source (acking, batching) → file channel → file_roll. A client streams
//! numbered lines; the agent is SIGKILLed mid-stream, restarted, killed again, restarted.
//! Every line answered `OK` must be in the output (duplicates allowed and counted), and every
//! output line must be a line that was sent.

mod common;

use common::{free_port, stream_lines, wait_until, write_conf, AgentProcess, Pace};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn conf(port: u16) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.batch-size = 50
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = channel/checkpoint
a1.channels.c1.dataDirs = channel/data
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 100
"
    )
}

/// Lines now and then paused, so the kill finds commits in every state.
const PACE: Pace = Pace {
    every: 200,
    pause: Duration::from_millis(2),
};

/// The output: every complete line, plus torn last lines (no newline) per file.
fn output(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut torn = Vec::new();
    // In creation order: file_roll names are `<millis>-<n>` (read_dir's order is arbitrary).
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort_by_key(|p| {
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        let mut it = name.split('-').map(|n| n.parse::<u64>().unwrap_or(0));
        (it.next(), it.next(), name)
    });
    for path in paths {
        let text = std::fs::read_to_string(path).expect("read");
        let mut parts: Vec<&str> = text.split('\n').collect();
        let last = parts.pop().unwrap_or_default();
        if !last.is_empty() {
            torn.push(last.to_owned());
        }
        lines.extend(parts.into_iter().map(str::to_owned));
    }
    (lines, torn)
}

#[test]
fn every_acknowledged_line_survives_kill_9_and_nothing_is_invented() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let c = write_conf(tmp.path(), "a.conf", &conf(port));
    let out = tmp.path().join("out");
    let mut acked_lines: Vec<String> = Vec::new();
    let mut sent_lines: BTreeSet<String> = BTreeSet::new();

    for round in 0..2u32 {
        let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
        agent.wait_started();
        let acked = Arc::new(AtomicUsize::new(0));
        let client = stream_lines(port, round, acked.clone(), PACE, None);
        let started = Instant::now();
        assert!(
            wait_until(Duration::from_secs(20), || acked.load(SeqCst) >= 3000),
            "only {} acknowledged in {:?}\n{}",
            acked.load(SeqCst),
            started.elapsed(),
            agent.log()
        );
        agent.kill9();
        let sent = client.join().expect("client");
        let n_acked = acked.load(SeqCst);
        assert!(n_acked <= sent);
        eprintln!("round {round}: sent {sent}, acknowledged {n_acked}");
        acked_lines.extend((0..n_acked).map(|n| format!("line-{round}-{n:07}")));
        sent_lines.extend((0..sent).map(|n| format!("line-{round}-{n:07}")));
    }

    // Recover: every acknowledged line reaches the output.
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let want: BTreeSet<&String> = acked_lines.iter().collect();
    let ok = wait_until(Duration::from_secs(30), || {
        let (lines, _) = output(&out);
        let have: BTreeSet<&String> = lines.iter().collect();
        want.iter().all(|l| have.contains(l))
    });
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let (lines, torn) = output(&out);
    let have: BTreeSet<&String> = lines.iter().collect();
    let missing: Vec<&&String> = want.iter().filter(|l| !have.contains(*l)).collect();
    assert!(
        ok && missing.is_empty(),
        "{} acknowledged lines lost, first: {:?}",
        missing.len(),
        missing.first()
    );

    // Nothing invented: every line was sent; a torn last line is a prefix of a sent line.
    for l in &lines {
        assert!(sent_lines.contains(l), "output line {l:?} was never sent");
    }
    for t in &torn {
        assert!(
            sent_lines.iter().any(|s| s.starts_with(t.as_str())),
            "torn line {t:?} is not a prefix of a sent line"
        );
    }
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for l in &lines {
        *counts.entry(l).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let unacked_delivered = lines.iter().filter(|l| !want.contains(l)).count();
    eprintln!(
        "acknowledged {}, output lines {}, duplicates {duplicates}, delivered but never acknowledged {unacked_delivered}, torn {}",
        want.len(),
        lines.len(),
        torn.len()
    );
}

#[test]
fn sigterm_mid_stream_finishes_in_flight_work_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let c = write_conf(tmp.path(), "a.conf", &conf(port));
    let out = tmp.path().join("out");
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let acked = Arc::new(AtomicUsize::new(0));
    let client = stream_lines(port, 0, acked.clone(), PACE, None);
    assert!(wait_until(Duration::from_secs(20), || acked.load(SeqCst) >= 3000));
    let (status, log) = agent.terminate();
    assert_eq!(status.code(), Some(0), "{log}");
    let sent = client.join().expect("client");
    let n_acked = acked.load(SeqCst);
    eprintln!("sent {sent}, acknowledged {n_acked}");

    // Restart to drain what the stop left in the channel.
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    assert!(wait_until(Duration::from_secs(20), || output(&out).0.len() >= n_acked));
    std::thread::sleep(Duration::from_millis(300));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let (lines, torn) = output(&out);
    assert!(
        torn.is_empty(),
        "a clean stop leaves no torn line: {torn:?}"
    );
    let expected: Vec<String> = (0..lines.len()).map(|n| format!("line-0-{n:07}")).collect();
    assert_eq!(lines, expected, "in order, exactly once");
    // Lines received before the stop were committed and answered; nothing else was committed.
    assert_eq!(lines.len(), n_acked, "committed lines = answered lines");
}
