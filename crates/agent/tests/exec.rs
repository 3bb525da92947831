//! `exec` end to end: the real `sluice` binary runs commands and their output lines land in
//! file_roll output, batched by size and by time, restarted, and held back (not dropped) while
//! the channel is full.

mod common;

use common::{read_dir_lines, read_dir_text, wait_until, write_conf, AgentProcess};
use std::time::{Duration, Instant};

/// An agent with one exec source (`extra` keys appended under `a1.sources.r1.`) into a memory
/// channel drained by file_roll into `out/`.
fn conf(extra: &[(&str, &str)]) -> String {
    let mut c = String::from(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
",
    );
    for (k, v) in extra {
        c.push_str(&format!("a1.sources.r1.{k} = {v}\n"));
    }
    c
}

/// Whether a process whose command line contains `needle` runs.
fn running(needle: &str) -> bool {
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&ps.stdout).contains(needle)
}

#[test]
fn each_output_line_is_an_event_committed_in_batches_of_batch_size() {
    let tmp = tempfile::tempdir().expect("tmp");
    let c = write_conf(
        tmp.path(),
        "a.conf",
        &conf(&[
            ("shell", "/bin/sh -c"),
            ("command", r"printf 'a\nb\r\nc\nd\ne'; echo oops >&2"),
            ("batchSize", "2"),
            ("logStdErr", "true"),
        ]),
    );
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();
    let out = tmp.path().join("out");
    assert!(
        wait_until(Duration::from_secs(10), || read_dir_lines(&out).len() >= 5),
        "{}",
        agent.log()
    );
    assert_eq!(
        read_dir_text(&out),
        "a\nb\nc\nd\ne\n",
        "CRLF and a last unterminated line"
    );
    // 2 + 2 + 1 at exit: three transactions.
    assert_eq!(agent.counter("SOURCE.r1", "AppendBatchAcceptedCount"), 3);
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), 5);
    assert!(wait_until(Duration::from_secs(5), || agent
        .log()
        .contains("StdErr: oops")));
    assert!(agent.log().contains("command exited"), "{}", agent.log());
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(
        !log.contains("restarting command"),
        "restart defaults to false: {log}"
    );
}

#[test]
fn a_partial_batch_is_committed_after_batch_timeout_and_stop_ends_the_command() {
    let tmp = tempfile::tempdir().expect("tmp");
    let c = write_conf(
        tmp.path(),
        "a.conf",
        &conf(&[
            ("shell", "/bin/sh -c"),
            ("command", "echo first; sleep 61.4321; echo never"),
            ("batchSize", "100"),
            ("batchTimeout", "300"),
        ]),
    );
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let out = tmp.path().join("out");
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || read_dir_lines(&out)
            == ["first"]),
        "{}",
        agent.log()
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // SIGTERM stops the sleeping command (its process group) promptly.
    let t1 = Instant::now();
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(
        t1.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t1.elapsed()
    );
    assert!(log.contains("exec source stopped"), "{log}");
    assert_eq!(read_dir_lines(&out), ["first"]);
    // The whole process group ended, not only the shell.
    assert!(
        wait_until(Duration::from_secs(5), || !running("sleep 61.4321")),
        "the command's child survived the stop"
    );
}

#[test]
fn restart_runs_the_command_again_after_restart_throttle() {
    let tmp = tempfile::tempdir().expect("tmp");
    let c = write_conf(
        tmp.path(),
        "a.conf",
        &conf(&[
            ("command", "echo run"),
            ("restart", "true"),
            ("restartThrottle", "200"),
            ("batchSize", "1"),
        ]),
    );
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let out = tmp.path().join("out");
    assert!(
        wait_until(Duration::from_secs(10), || read_dir_lines(&out).len() >= 3),
        "{}",
        agent.log()
    );
    assert!(read_dir_lines(&out).iter().all(|l| l == "run"));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("restarting command"), "{log}");
}

#[test]
fn a_full_channel_holds_the_reader_back_instead_of_dropping_lines() {
    let tmp = tempfile::tempdir().expect("tmp");
    // No sink drains c1 (a warning, not an error): it fills at 10 events.
    let conf = "\
a1.sources = r1
a1.channels = c1
a1.sources.r1.type = exec
a1.sources.r1.command = seq 1 100000
a1.sources.r1.batchSize = 5
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10
a1.channels.c1.transactionCapacity = 10
a1.channels.c1.keep-alive = 0
";
    let c = write_conf(tmp.path(), "a.conf", conf);
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .counter("SOURCE.r1", "ChannelWriteFail")
            >= 2),
        "{}",
        agent.log()
    );
    assert_eq!(agent.counter("CHANNEL.c1", "ChannelSize"), 10);
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), 10);
    // Lines 1-15 were read; the retried batch is counted once.
    assert_eq!(agent.counter("SOURCE.r1", "EventReceivedCount"), 15);
    // The same batch (lines 11-15) is retried; the command is blocked on its pipe, not dropped.
    assert!(
        agent.log().contains("cannot commit lines; retrying"),
        "{}",
        agent.log()
    );
    assert!(!agent.log().contains("command exited"), "{}", agent.log());
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("lost=5"),
        "the unsent batch is reported at stop: {log}"
    );
}
