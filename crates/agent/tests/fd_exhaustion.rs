//! An fd-exhaustion episode (issue 14, §2): the real `sluice` binary runs under a low
//! `RLIMIT_NOFILE` (set with the shell's `ulimit -n`, present on every Debian machine), idle
//! netcat connections use up its descriptors, and the file channel's next segment cannot be
//! created (`EMFILE`). The puts that need that segment fail, but the channel is not poisoned:
//! once the idle connections close, puts succeed again without a restart.

mod common;

use common::{free_port, wait_until, write_conf, AgentProcess, Netcat};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The agent's descriptor limit: room for its own (stdio, runtime, listeners, channel files)
/// and a few dozen connections.
const FD_LIMIT: usize = 64;
/// At most this many idle connections are opened to use the descriptors up.
const IDLE_CONNECTIONS: usize = 200;

/// The agent's configuration. No checkpoint runs during the test (`checkpointInterval` of an
/// hour), so no consumed segment is deleted and no descriptor is freed behind the test's back
/// while the episode lasts.
fn conf(port: u16) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = channel/checkpoint
a1.channels.c1.dataDirs = channel/data
a1.channels.c1.maxFileSize = 4096
a1.channels.c1.checkpointInterval = 3600000
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"
    )
}

/// Starts `sluice agent` through `sh -c 'ulimit -n LIMIT && exec sluice …'`, so the agent
/// itself (same pid) runs under the limit.
fn start_limited(cwd: &Path, conf: &Path, limit: usize) -> AgentProcess {
    let metrics_port = free_port();
    let mut child = Command::new("sh")
        .current_dir(cwd)
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .args(["agent", "-n", "a1", "-f"])
        .arg(conf)
        .args(["--log-level", "info"])
        .args(["--metrics-http", &format!("127.0.0.1:{metrics_port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("stderr");
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            sink.lock().expect("lock").push_str(&line);
            line.clear();
        }
    });
    AgentProcess {
        child,
        stderr,
        metrics_port: Some(metrics_port),
    }
}

/// How many descriptors process `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn after_an_fd_exhaustion_episode_puts_succeed_again_without_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let c = write_conf(tmp.path(), "a.conf", &conf(port));
    let mut agent = start_limited(tmp.path(), &c, FD_LIMIT);
    agent.wait_started();
    let pid = agent.child.id();
    let limit = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    assert!(
        limit
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(&format!(" {FD_LIMIT} "))),
        "the agent does not run under the limit:\n{limit}"
    );

    // The talker is accepted before the episode; it is the connection the puts go through.
    let mut talker = Netcat::connect(port);
    let mut line = 0;
    let mut send = |nc: &mut Netcat| {
        line += 1;
        nc.send(&format!("line-{line:04}"))
    };
    assert_eq!(send(&mut talker), "OK");
    let segments_before = agent.counter("CHANNEL.c1", "SegmentsCreated");
    let baseline = open_fds(pid);
    assert!(
        baseline + 16 < FD_LIMIT,
        "the agent needs {baseline} descriptors at rest, too close to the limit of {FD_LIMIT}"
    );

    // The episode: idle connections take every descriptor the agent has left. Each is opened
    // once the agent has accepted the ones before (a connection it cannot accept waits in the
    // listen backlog, which is not endless); the first one it cannot accept shows the
    // descriptors are used up.
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut idle: Vec<TcpStream> = Vec::new();
    loop {
        assert!(
            idle.len() < IDLE_CONNECTIONS,
            "{IDLE_CONNECTIONS} idle connections did not use up {FD_LIMIT} descriptors ({} open)",
            open_fds(pid)
        );
        let before = open_fds(pid);
        idle.push(
            TcpStream::connect_timeout(&address, Duration::from_secs(10)).expect("connect idle"),
        );
        let accepted = wait_until(Duration::from_secs(2), || open_fds(pid) > before);
        if !accepted && open_fds(pid) >= FD_LIMIT {
            break;
        }
    }
    // Puts go on until one needs a new segment: it fails, and so does the next one that tries.
    let mut failures = Vec::new();
    for _ in 0..500 {
        let answer = send(&mut talker);
        if answer != "OK" {
            failures.push(answer);
            if failures.len() == 3 {
                break;
            }
        }
    }
    assert_eq!(
        failures.len(),
        3,
        "no put failed although no segment could be created"
    );
    for f in &failures {
        assert!(
            f.starts_with("FAILED") && f.contains("Too many open files"),
            "the failure names the cause: {f}"
        );
    }

    // The episode ends: the idle connections close, and puts succeed again, across rotations,
    // with no restart.
    drop(idle);
    assert!(
        wait_until(Duration::from_secs(30), || send(&mut talker) == "OK"),
        "puts never succeeded again after the idle connections closed:\n{}",
        agent.log()
    );
    // Two more rotations at least (a segment of 4 KiB holds a few dozen of these lines).
    let segments_after_episode = agent.counter("CHANNEL.c1", "SegmentsCreated");
    for _ in 0..150 {
        assert_eq!(send(&mut talker), "OK", "{}", agent.log());
    }
    assert!(agent.child.try_wait().expect("try_wait").is_none());
    assert_eq!(agent.counter("CHANNEL.c1", "Unhealthy"), 0);
    assert!(agent.counter("CHANNEL.c1", "FileOpenErrorCount") >= 1);
    assert!(
        agent.counter("CHANNEL.c1", "SegmentsCreated") >= segments_after_episode + 2,
        "the channel rotated again after the episode"
    );
    assert!(segments_after_episode > segments_before);
    let log = agent.log();
    assert!(
        log.contains("cannot create the next segment"),
        "the failure is logged:\n{log}"
    );
    assert!(!log.contains("channel poisoned"), "{log}");
    let (status, _) = agent.terminate();
    assert!(status.success(), "{status}");
}
