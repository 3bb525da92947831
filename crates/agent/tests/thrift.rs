//! The thrift source and sink against an independent Thrift implementation (thriftpy2, from
//! PyPI, loading Flume's IDL at run time) in both protocols, behind a failover group, and two
//! Sluice tiers joined by thrift as real processes, the downstream one killed with SIGKILL and
//! restarted without losing an acknowledged line.

mod common;

use common::python::python_path;
use common::python::run_python_ok;
use common::{free_port, read_dir_lines, wait_until, write_conf, AgentProcess, Netcat};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const THRIFTPY2: &str = "thriftpy2==0.7.1";

fn interop(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script)
}

/// thrift source → file channel → file_roll (headers and body).
fn downstream_conf(port: u16, protocol: &str) -> String {
    format!(
        "\
b1.sources = r1
b1.channels = c1
b1.sinks = k1
b1.sources.r1.type = thrift
b1.sources.r1.bind = 127.0.0.1
b1.sources.r1.port = {port}
b1.sources.r1.protocol = {protocol}
b1.sources.r1.channels = c1
b1.channels.c1.type = file
b1.channels.c1.checkpointDir = down/checkpoint
b1.channels.c1.dataDirs = down/data
b1.sinks.k1.type = file_roll
b1.sinks.k1.channel = c1
b1.sinks.k1.sink.directory = down/out
b1.sinks.k1.sink.rollInterval = 0
b1.sinks.k1.sink.serializer = header_and_text
"
    )
}

fn python_client_to_source(protocol: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let conf = write_conf(tmp.path(), "b.conf", &downstream_conf(port, protocol));
    let mut agent = AgentProcess::start(tmp.path(), &conf, "b1", true);
    agent.wait_started();
    let tag = format!("py{protocol}");
    let out = run_python_ok(
        &[THRIFTPY2],
        &interop("thrift_client.py"),
        &[
            "--port",
            &port.to_string(),
            "--protocol",
            protocol,
            "--batches",
            "3",
            "--batch-size",
            "10",
            "--tag",
            &tag,
        ],
    );
    // OK was answered only after the commit, so every event is in the channel already.
    assert_eq!(
        out,
        "appendBatch OK\nappendBatch OK\nappendBatch OK\nappend OK\n"
    );
    let dir = tmp.path().join("down/out");
    assert!(
        wait_until(Duration::from_secs(20), || read_dir_lines(&dir).len() >= 31),
        "{:?}",
        read_dir_lines(&dir)
    );
    let expected: Vec<String> = (0..31)
        .map(|i| format!("{{tag={tag}, seq={i}}} {tag}-{i}"))
        .collect();
    assert_eq!(read_dir_lines(&dir), expected);
    let m = agent.metrics();
    assert_eq!(m["SOURCE.r1"]["AppendBatchReceivedCount"], "3");
    assert_eq!(m["SOURCE.r1"]["AppendBatchAcceptedCount"], "3");
    assert_eq!(m["SOURCE.r1"]["AppendReceivedCount"], "1");
    assert_eq!(m["SOURCE.r1"]["AppendAcceptedCount"], "1");
    assert_eq!(m["SOURCE.r1"]["EventReceivedCount"], "31");
    assert_eq!(m["SOURCE.r1"]["EventAcceptedCount"], "31");
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("thrift source stopped"), "{log}");
}

#[test]
fn a_python_client_sends_to_the_thrift_source_compact() {
    python_client_to_source("compact");
}

#[test]
fn a_python_client_sends_to_the_thrift_source_binary() {
    python_client_to_source("binary");
}

/// A running thriftpy2 server (see `interop/thrift_server.py`).
struct PyServer {
    child: Child,
    out: PathBuf,
}

impl PyServer {
    fn start(dir: &Path, port: u16, protocol: &str, expect: usize, fail: &str) -> Self {
        let out = dir.join(format!("py-{port}.jsonl"));
        let mut child = Command::new("python3")
            .arg(interop("thrift_server.py"))
            .args(["--port", &port.to_string(), "--protocol", protocol])
            .arg("--out")
            .arg(&out)
            .args(["--expect", &expect.to_string(), "--fail", fail])
            .args(["--timeout", "90"])
            .env("PYTHONPATH", python_path(&[THRIFTPY2]))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line, "listening\n", "python server did not start");
        Self { child, out }
    }

    /// Waits for the server to have received what it expected; returns the bodies.
    fn finish(mut self) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "python server did not finish");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "python server: {status}");
        std::fs::read_to_string(&self.out)
            .expect("read")
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                (
                    v["body"].as_str().expect("body").to_owned(),
                    v["headers"]["dc"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// netcat → file channel → thrift sink `k1` (plus `extra` lines).
fn upstream_conf(netcat_port: u16, k1_port: u16, protocol: &str, extra: &str) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {netcat_port}
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = dc
a1.sources.r1.interceptors.dc.type = static
a1.sources.r1.interceptors.dc.key = dc
a1.sources.r1.interceptors.dc.value = eu-1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = up/checkpoint
a1.channels.c1.dataDirs = up/data
a1.sinks.k1.type = thrift
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {k1_port}
a1.sinks.k1.protocol = {protocol}
a1.sinks.k1.batch-size = 5
a1.sinks.k1.request-timeout = 5000
a1.sinks.k1.connect-timeout = 2000
{extra}"
    )
}

fn sink_to_python_server(protocol: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (nc_port, py_port) = (free_port(), free_port());
    let conf = write_conf(
        tmp.path(),
        "a.conf",
        &upstream_conf(nc_port, py_port, protocol, ""),
    );
    let mut agent = AgentProcess::start(tmp.path(), &conf, "a1", true);
    agent.wait_started();
    // Nobody listens yet: the lines wait in the channel while the sink fails to connect.
    let mut nc = Netcat::connect(nc_port);
    let sent: Vec<String> = (0..20).map(|i| format!("{protocol}-{i:02}")).collect();
    for l in &sent {
        assert_eq!(nc.send(l), "OK");
    }
    assert!(
        wait_until(Duration::from_secs(30), || agent
            .counter("SINK.k1", "ConnectionFailedCount")
            >= 1),
        "the sink never failed to connect to 127.0.0.1:{py_port}:\n{}",
        agent.log()
    );
    // The server answers FAILED to its second call: that batch must come again.
    let server = PyServer::start(tmp.path(), py_port, protocol, sent.len(), "2");
    let got = server.finish();
    let bodies: Vec<&String> = got.iter().map(|(b, _)| b).collect();
    let unique: BTreeSet<&String> = bodies.iter().copied().collect();
    assert_eq!(unique.len(), bodies.len(), "duplicates: {bodies:?}");
    assert_eq!(unique, sent.iter().collect::<BTreeSet<_>>());
    assert!(got.iter().all(|(_, dc)| dc == "eu-1"), "{got:?}");
    assert!(wait_until(Duration::from_secs(10), || agent
        .counter("CHANNEL.c1", "ChannelSize")
        == 0));
    assert_eq!(agent.counter("SINK.k1", "EventDrainSuccessCount"), 20);
    assert!(agent.counter("SINK.k1", "EventWriteFail") >= 1);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "127.0.0.1:{py_port} answered FAILED to appendBatch of 5 events"
        )),
        "{log}"
    );
}

#[test]
fn the_thrift_sink_delivers_to_a_python_server_and_resends_a_failed_batch_compact() {
    sink_to_python_server("compact");
}

#[test]
fn the_thrift_sink_delivers_to_a_python_server_and_resends_a_failed_batch_binary() {
    sink_to_python_server("binary");
}

/// Sends `lines` through netcat, each acknowledged before the next.
fn send_all(port: u16, lines: &[String]) {
    let mut nc = Netcat::connect(port);
    for l in lines {
        assert_eq!(nc.send(l), "OK", "{l}");
    }
}

fn delivered(dir: &Path) -> BTreeSet<String> {
    read_dir_lines(dir).into_iter().collect()
}

#[test]
fn two_tiers_over_thrift_lose_nothing_when_the_downstream_agent_is_killed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (nc_port, b_port) = (free_port(), free_port());
    let a_conf = write_conf(
        tmp.path(),
        "a.conf",
        &upstream_conf(nc_port, b_port, "compact", ""),
    );
    let b_conf = write_conf(tmp.path(), "b.conf", &downstream_conf(b_port, "compact"));
    let mut b = AgentProcess::start(tmp.path(), &b_conf, "b1", false);
    b.wait_started();
    let mut a = AgentProcess::start(tmp.path(), &a_conf, "a1", true);
    a.wait_started();
    let out = tmp.path().join("down/out");
    let lines: Vec<String> = (0..200).map(|i| format!("line-{i:03}")).collect();
    let expected = |n: usize| -> BTreeSet<String> {
        lines[..n]
            .iter()
            .map(|l| format!("{{dc=eu-1}} {l}"))
            .collect()
    };
    // Lines flow while the downstream agent is killed: some were acknowledged to the upstream
    // sink (committed downstream) and not yet written by file_roll, some are in flight.
    let sender = {
        let lines = lines.clone();
        std::thread::spawn(move || send_all(nc_port, &lines))
    };
    assert!(wait_until(Duration::from_secs(20), || read_dir_lines(&out)
        .len()
        >= 20));
    b.kill9();
    let at_kill = read_dir_lines(&out).len();
    assert!(
        at_kill < 200,
        "the kill came after everything was delivered"
    );
    // The upstream agent keeps accepting; its sink fails and keeps the events.
    sender
        .join()
        .expect("every line acknowledged by the upstream agent");
    assert!(wait_until(Duration::from_secs(20), || a
        .counter("SINK.k1", "ConnectionFailedCount")
        >= 1));
    let mut b = AgentProcess::start(tmp.path(), &b_conf, "b1", false);
    b.wait_started();
    assert!(
        wait_until(Duration::from_secs(60), || delivered(&out)
            .is_superset(&expected(200))),
        "missing: {:?}",
        expected(200)
            .difference(&delivered(&out))
            .collect::<Vec<_>>()
    );
    assert!(delivered(&out).is_subset(&expected(200)));
    assert!(
        a.counter("SINK.k1", "ConnectionCreatedCount") >= 2,
        "reconnected"
    );
    assert!(wait_until(Duration::from_secs(10), || a
        .counter("CHANNEL.c1", "ChannelSize")
        == 0));
    let (status, log) = b.terminate();
    assert!(status.success(), "{log}");
    let (status, log) = a.terminate();
    assert!(status.success(), "{log}");
}

fn group_moves_past_a_dead_thrift_peer(processor: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (nc_port, dead_port, b_port) = (free_port(), free_port(), free_port());
    let extra = format!(
        "\
a1.sinks = k1 k2
a1.sinks.k2.type = thrift
a1.sinks.k2.channel = c1
a1.sinks.k2.hostname = 127.0.0.1
a1.sinks.k2.port = {b_port}
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1 k2
{processor}"
    );
    // k1 (first, or preferred) points at a port nobody listens on.
    let a_conf = write_conf(
        tmp.path(),
        "a.conf",
        &upstream_conf(nc_port, dead_port, "compact", &extra),
    );
    let b_conf = write_conf(tmp.path(), "b.conf", &downstream_conf(b_port, "compact"));
    let mut a = AgentProcess::start(tmp.path(), &a_conf, "a1", true);
    a.wait_started();
    let lines: Vec<String> = (0..30).map(|i| format!("fo-{i:02}")).collect();
    send_all(nc_port, &lines);
    // Both peers are down at first, so k1 certainly fails with events to send; then the
    // downstream agent starts and the group moves everything through k2.
    assert!(wait_until(Duration::from_secs(20), || a
        .counter("SINK.k1", "ConnectionFailedCount")
        >= 1));
    let mut b = AgentProcess::start(tmp.path(), &b_conf, "b1", false);
    b.wait_started();
    let out = tmp.path().join("down/out");
    let want: BTreeSet<String> = lines.iter().map(|l| format!("{{dc=eu-1}} {l}")).collect();
    assert!(wait_until(Duration::from_secs(30), || delivered(&out) == want));
    assert_eq!(read_dir_lines(&out).len(), 30, "each delivered once");
    assert_eq!(a.counter("SINK.k1", "EventDrainSuccessCount"), 0);
    assert_eq!(a.counter("SINK.k2", "EventDrainSuccessCount"), 30);
    let (status, log) = a.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!("cannot connect to 127.0.0.1:{dead_port}")),
        "{log}"
    );
    let (status, _) = b.terminate();
    assert!(status.success());
}

#[test]
fn a_failover_group_moves_past_a_dead_thrift_peer() {
    group_moves_past_a_dead_thrift_peer(
        "\
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
a1.sinkgroups.g1.processor.priority.k2 = 5
",
    );
}

#[test]
fn a_load_balance_group_moves_past_a_dead_thrift_peer() {
    group_moves_past_a_dead_thrift_peer(
        "\
a1.sinkgroups.g1.processor.type = load_balance
a1.sinkgroups.g1.processor.selector = round_robin
a1.sinkgroups.g1.processor.backoff = true
",
    );
}
