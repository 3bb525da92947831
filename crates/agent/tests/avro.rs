//! End to end over Avro IPC with real `sluice` processes: a netcat → file channel → avro sink
//! tier feeding an avro source → file channel → file_roll tier, plain and with deflate; a raw
//! Avro client (the library's) against a running source; garbage from a peer; and the
//! configuration refusals `sluice validate` reports for the avro components; and both
//! directions against an independent implementation of Avro IPC on the Netty transport, avsc
//! (Avro for JavaScript, npm-installed on first use), whose protocol hash differs from Flume's
//! so the handshake's resend-with-text path is taken each way.

mod common;

use agent::avro_event::{wire, wire_batch};
use avro_ipc::client::{AvroClient, ClientSettings};
use avro_ipc::protocol::Status;
use common::{free_port, read_dir_lines, sluice, wait_until, write_conf, AgentProcess, Netcat};
use file_channel::Event;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn downstream_conf(port: u16, compression: &str) -> String {
    format!(
        "\
b1.sources = r1
b1.channels = c1
b1.sinks = k1
b1.sources.r1.type = avro
b1.sources.r1.bind = 127.0.0.1
b1.sources.r1.port = {port}
b1.sources.r1.threads = 4
b1.sources.r1.compression-type = {compression}
b1.sources.r1.channels = c1
b1.channels.c1.type = file
b1.channels.c1.checkpointDir = channel/checkpoint
b1.channels.c1.dataDirs = channel/data
b1.sinks.k1.type = file_roll
b1.sinks.k1.channel = c1
b1.sinks.k1.sink.directory = out
b1.sinks.k1.sink.rollInterval = 0
b1.sinks.k1.sink.serializer = header_and_text
"
    )
}

fn upstream_conf(netcat_port: u16, avro_port: u16, compression: &str) -> String {
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
a1.channels.c1.checkpointDir = channel/checkpoint
a1.channels.c1.dataDirs = channel/data
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {avro_port}
a1.sinks.k1.batch-size = 50
a1.sinks.k1.compression-type = {compression}
a1.sinks.k1.compression-level = 1
"
    )
}

fn start(dir: &Path, name: &str, conf: &str) -> AgentProcess {
    std::fs::create_dir_all(dir).expect("dir");
    let c = write_conf(dir, "agent.conf", conf);
    let mut agent = AgentProcess::start(dir, &c, name, true);
    agent.wait_started();
    agent
}

#[test]
fn two_tiers_deliver_every_line_with_headers_plain_and_deflate() {
    for compression in ["none", "deflate"] {
        let tmp = tempfile::tempdir().expect("tmp");
        let (nc_port, avro_port) = (free_port(), free_port());
        let down = start(
            &tmp.path().join("down"),
            "b1",
            &downstream_conf(avro_port, compression),
        );
        let up = start(
            &tmp.path().join("up"),
            "a1",
            &upstream_conf(nc_port, avro_port, compression),
        );
        let mut nc = Netcat::connect(nc_port);
        for i in 0..300 {
            assert_eq!(nc.send(&format!("line-{i:03}")), "OK");
        }
        let out = tmp.path().join("down/out");
        assert!(
            wait_until(Duration::from_secs(20), || read_dir_lines(&out).len()
                >= 300),
            "{compression}: got {} lines\nup:\n{}\ndown:\n{}",
            read_dir_lines(&out).len(),
            up.log(),
            down.log()
        );
        let lines = read_dir_lines(&out);
        let want: Vec<String> = (0..300)
            .map(|i| format!("{{dc=eu-1}} line-{i:03}"))
            .collect();
        assert_eq!(lines, want, "{compression}");
        assert_eq!(up.counter("SINK.k1", "EventDrainSuccessCount"), 300);
        assert_eq!(up.counter("SINK.k1", "ConnectionCreatedCount"), 1);
        assert_eq!(down.counter("SOURCE.r1", "EventAcceptedCount"), 300);
        assert!(down.counter("SOURCE.r1", "AppendBatchAcceptedCount") >= 6);
        assert_eq!(down.counter("SOURCE.r1", "OpenConnectionCount"), 1);
        let (status, log) = up.terminate();
        assert!(status.success(), "{log}");
        let (status, log) = down.terminate();
        assert!(status.success(), "{log}");
    }
}

#[test]
fn a_library_client_and_a_garbage_peer_against_a_running_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let down = start(tmp.path(), "b1", &downstream_conf(port, "none"));
    // Garbage: logged with the peer's address, connection closed, the source keeps serving.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut buf = Vec::new();
    assert_eq!(s.read_to_end(&mut buf).unwrap_or(0), 0, "closed, no answer");
    let local = s.local_addr().expect("addr");
    assert!(
        wait_until(Duration::from_secs(5), || down
            .log()
            .contains("peer does not speak Avro IPC")),
        "{}",
        down.log()
    );
    let log = down.log();
    assert!(log.contains(&local.to_string()), "{log}");
    assert!(
        log.contains("not an Avro Netty frame: buffer count"),
        "{log}"
    );

    let mut c = AvroClient::connect(&ClientSettings {
        hostname: "localhost".into(),
        port,
        connect_timeout_ms: 2000,
        request_timeout_ms: 10_000,
        deflate_level: None,
    })
    .expect("connect");
    let batch: Vec<Event> = (0..5)
        .map(|i| Event::new(format!("b{i}")).with_header("k", "v"))
        .collect();
    assert_eq!(
        c.append_batch(&wire_batch(&batch)).expect("batch"),
        Status::Ok
    );
    assert_eq!(c.append(wire(&Event::new("one"))).expect("one"), Status::Ok);
    let out = tmp.path().join("out");
    assert!(wait_until(Duration::from_secs(20), || read_dir_lines(&out)
        .len()
        >= 6));
    assert_eq!(
        read_dir_lines(&out),
        ["{k=v} b0", "{k=v} b1", "{k=v} b2", "{k=v} b3", "{k=v} b4", "{} one"]
    );
    assert_eq!(down.counter("SOURCE.r1", "AppendReceivedCount"), 1);
    assert_eq!(down.counter("SOURCE.r1", "AppendBatchReceivedCount"), 1);
    let (status, log) = down.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn validate_names_the_bad_avro_keys() {
    let tmp = tempfile::tempdir().expect("tmp");
    let conf = write_conf(
        tmp.path(),
        "bad.conf",
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.AvroSource
a1.sources.r1.bind = 0.0.0.0
a1.sources.r1.port = 4141
a1.sources.r1.ipFilter = true
a1.sources.r1.ipFilterRules = allow:ip:10.*,permit:ip:*
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = collector
a1.sinks.k1.port = 4141
a1.sinks.k1.compression-type = snappy
a1.sinks.k1.ssl = true
a1.sinks.k1.truststore = missing-truststore.p12
",
    );
    let out = sluice()
        .current_dir(tmp.path())
        .args(["validate", "-n", "a1", "-f"])
        .arg(&conf)
        .output()
        .expect("run");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(":8: a1.sources.r1.ipFilterRules: invalid ipFilter rule \"permit:ip:*\""),
        "{text}"
    );
    assert!(
        text.contains(
            ":15: a1.sinks.k1.compression-type: expected none or deflate, got \"snappy\""
        ),
        "{text}"
    );
    // TLS is checked at start: a truststore that is not there is an error naming it.
    assert!(
        text.contains(":17: a1.sinks.k1.truststore: ") && text.contains("missing-truststore.p12"),
        "{text}"
    );
}

/// The avsc version the interop tests run against.
const AVSC: &str = "avsc@5.7.9";

/// A `NODE_PATH` holding avsc, installed with npm on first use into `<target>/node-deps/`
/// (serialised across test processes with a lock file; an install failure fails the test).
fn avsc_node_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("node-deps").join(AVSC.replace('@', "-"));
    let done = dir.join(".installed");
    if !done.exists() {
        std::fs::create_dir_all(&dir).expect("node deps dir");
        let lock = std::fs::File::create(dir.with_extension("lock")).expect("lock file");
        fs2::FileExt::lock_exclusive(&lock).expect("lock node deps");
        if !done.exists() {
            let out = Command::new("npm")
                .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg(AVSC)
                .output()
                .expect("run npm (Node.js with npm is required for the avsc interop tests)");
            assert!(
                out.status.success(),
                "npm install {AVSC} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&done, b"ok").expect("mark installed");
        }
    }
    dir.join("node_modules")
}

/// Whether Node.js with npm is here to run avsc. The README's test command must pass on a
/// machine with only the Rust toolchain, gcc, make and python3, so without them these two
/// interop tests say so and return — unless `SLUICE_REQUIRE_INTEROP` is set, as `.ci/run`
/// does after installing Node.js: then a missing peer fails the test.
fn node_available() -> bool {
    let found = ["node", "npm"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
            "SLUICE_REQUIRE_INTEROP is set but Node.js with npm is not installed"
        );
        eprintln!(
            "SKIPPED: the avsc interop test needs Node.js with npm (apt-get install nodejs npm); \
             set SLUICE_REQUIRE_INTEROP=1 to make a missing peer a failure"
        );
    }
    found
}

/// `node tests/interop/avsc_flume.js ARGS` with avsc on its path.
fn avsc_peer(args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", avsc_node_path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/avsc_flume.js"
        ))
        .args(args);
    cmd
}

#[test]
fn an_avsc_client_delivers_to_our_source() {
    if !node_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let down = start(tmp.path(), "b1", &downstream_conf(port, "none"));
    let out = avsc_peer(&["client", &port.to_string(), "20"])
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        down.log()
    );
    assert_eq!(stdout.trim(), r#"{"appendBatch":"OK","append":"OK"}"#);
    let dir = tmp.path().join("out");
    assert!(wait_until(Duration::from_secs(20), || read_dir_lines(&dir)
        .len()
        >= 21));
    let mut want: Vec<String> = (0..20)
        .map(|i| format!("{{n={i}, src=avsc}} avsc-{i}"))
        .collect();
    want.push("{} avsc-single".into());
    assert_eq!(read_dir_lines(&dir), want);
    let (status, log) = down.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn our_sink_delivers_to_an_avsc_server() {
    if !node_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = avsc_peer(&["server", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let avsc_port: u16 = first
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("expected PORT n, got {first:?}"));
    let nc_port = free_port();
    let conf = upstream_conf(nc_port, avsc_port, "none").replace(
        "a1.channels.c1.type = file\na1.channels.c1.checkpointDir = channel/checkpoint\na1.channels.c1.dataDirs = channel/data\n",
        "a1.channels.c1.type = memory\n",
    );
    let up = start(tmp.path(), "a1", &conf);
    let mut nc = Netcat::connect(nc_port);
    for i in 0..30 {
        assert_eq!(nc.send(&format!("to-avsc-{i:02}")), "OK");
    }
    let received: Vec<serde_json::Value> = lines
        .take(30)
        .map(|l| serde_json::from_str(&l.expect("read")).expect("JSON line"))
        .collect();
    let status = server.wait().expect("node exits after 30 events");
    let mut err = String::new();
    if let Some(mut e) = server.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "{err}\n{}", up.log());
    assert_eq!(received.len(), 30, "{err}");
    for (i, e) in received.iter().enumerate() {
        assert_eq!(e["body"], format!("to-avsc-{i:02}"));
        assert_eq!(e["headers"], serde_json::json!({"dc": "eu-1"}));
    }
    assert_eq!(up.counter("SINK.k1", "EventDrainSuccessCount"), 30);
    let (status, log) = up.terminate();
    assert!(status.success(), "{log}");
}
