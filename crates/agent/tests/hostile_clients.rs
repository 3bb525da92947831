//! Hostile clients against the real `sluice` binary (issue 14, section 2): connections that
//! announce big frames and send nothing more, slow HTTP clients, half-sent requests, frames
//! and lines (slowloris), and more connections than a source serves. Each test starts its own
//! agent on a memory channel drained by a null sink, talks raw TCP (and the real avro and
//! thrift clients) to it, and reads the agent's memory from `/proc/<pid>/status` and its
//! counters from the metrics endpoint.

mod common;

use common::{free_port, wait_until, write_conf, AgentProcess};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Growth of the agent's resident memory allowed under 300 hostile connections.
const MEMORY_GROWTH_LIMIT_KIB: u64 = 64 * 1024;

/// The agent's resident memory (`VmRSS`), KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Raises this process's soft open-file limit to at least `wanted` (the agent, a child,
/// inherits it), with the real `prlimit`.
fn raise_open_file_limit(wanted: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if soft >= wanted {
        return;
    }
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={wanted}:"))
        .status()
        .expect("prlimit");
    assert!(
        status.success(),
        "cannot raise the open-file limit to {wanted}"
    );
}

/// A configuration with source `r1` (its `type` and further keys in `source`, without the
/// `a1.sources.r1.` prefix) on a memory channel drained by a null sink.
fn conf(source: &str) -> String {
    let mut text = String::from(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\na1.sources.r1.channels = c1\n",
    );
    for line in source.lines().map(str::trim).filter(|l| !l.is_empty()) {
        text.push_str(&format!("a1.sources.r1.{line}\n"));
    }
    text.push_str(
        "a1.channels.c1.type = memory\na1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n",
    );
    text
}

/// Starts an agent with metrics on `source`'s configuration and waits for it.
fn start(dir: &Path, source: &str) -> AgentProcess {
    let path = write_conf(dir, "agent.conf", &conf(source));
    let mut agent = AgentProcess::start(dir, &path, "a1", true);
    agent.wait_started();
    agent
}

/// One of the source's counters.
fn source_counter(agent: &AgentProcess, name: &str) -> u64 {
    agent.counter("SOURCE.r1", name)
}

/// Connects to the source, retrying while it starts.
fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot connect to port {port}: {e}"),
        }
    }
}

/// Reads until the server closes the connection or `within` passes; returns what was read
/// and when the close came, `None` if it did not.
fn wait_for_close(s: &mut TcpStream, within: Duration) -> Option<(Vec<u8>, Instant)> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return Some((got, Instant::now())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some((got, Instant::now())),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Waits until the source reports `n` open connections.
fn wait_open_connections(agent: &AgentProcess, n: u64) {
    let ok = wait_until(Duration::from_secs(30), || {
        source_counter(agent, "OpenConnectionCount") == n
    });
    assert!(
        ok,
        "OpenConnectionCount stayed {} instead of {n}",
        source_counter(agent, "OpenConnectionCount")
    );
}

fn thrift_client(port: u16) -> thrift_rpc::client::Connection {
    thrift_rpc::client::Connection::connect(&thrift_rpc::client::ClientConfig {
        hostname: "127.0.0.1".into(),
        port,
        protocol: thrift_rpc::Protocol::Compact,
        connect_timeout_ms: 5000,
        request_timeout_ms: 10_000,
    })
    .expect("thrift connect")
}

fn thrift_send(
    client: &mut thrift_rpc::client::Connection,
    body: &str,
) -> thrift_rpc::wire::Status {
    let event = thrift_rpc::EventRef {
        headers: &[],
        body: body.as_bytes(),
    };
    client.append_batch(&[event]).expect("thrift call")
}

fn avro_client(port: u16) -> avro_ipc::client::AvroClient {
    avro_ipc::client::AvroClient::connect(&avro_ipc::client::ClientSettings {
        hostname: "127.0.0.1".into(),
        port,
        connect_timeout_ms: 5000,
        request_timeout_ms: 10_000,
        deflate_level: None,
    })
    .expect("avro connect")
}

fn avro_send(client: &mut avro_ipc::client::AvroClient, body: &str) -> avro_ipc::protocol::Status {
    let event = avro_ipc::event::EventRef {
        headers: &[],
        body: body.as_bytes(),
    };
    client.append_batch(&[event]).expect("avro call")
}

/// Opens `n` connections that each send `first_bytes` and then nothing.
fn hold_connections(port: u16, n: usize, first_bytes: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = connect(port);
            s.write_all(first_bytes).expect("send");
            s
        })
        .collect()
}

/// Checks the agent's memory grew by less than the limit since `baseline_kib`.
fn assert_memory_growth_below_limit(agent: &AgentProcess, baseline_kib: u64, what: &str) {
    // Let the agent take in everything sent before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let now = vm_rss_kib(agent.child.id());
    let grown = now.saturating_sub(baseline_kib);
    eprintln!("{what}: VmRSS {baseline_kib} KiB -> {now} KiB (+{grown} KiB)");
    assert!(
        grown < MEMORY_GROWTH_LIMIT_KIB,
        "{what}: the agent grew by {grown} KiB (from {baseline_kib} to {now} KiB), limit {MEMORY_GROWTH_LIMIT_KIB} KiB"
    );
}

/// A Thrift frame header announcing Thrift's largest frame, 16,384,000 bytes.
const THRIFT_HEADER_16_MB: [u8; 4] = 16_384_000u32.to_be_bytes();

#[test]
fn three_hundred_header_only_thrift_connections_grow_memory_by_less_than_64_mib() {
    raise_open_file_limit(2048);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // A long readTimeout: the connections are still held when the memory is measured.
    let agent = start(
        dir.path(),
        &format!("type = thrift\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 600000"),
    );
    let mut client = thrift_client(port);
    assert_eq!(
        thrift_send(&mut client, "warm up"),
        thrift_rpc::wire::Status::Ok
    );
    let baseline = vm_rss_kib(agent.child.id());
    // Some announce a frame and go away, as a scanner would; then 300 announce and stay.
    for s in hold_connections(port, 20, &THRIFT_HEADER_16_MB) {
        drop(s);
    }
    let held = hold_connections(port, 300, &THRIFT_HEADER_16_MB);
    wait_open_connections(&agent, 301);
    assert_memory_growth_below_limit(&agent, baseline, "300 header-only thrift connections");
    assert_eq!(
        thrift_send(&mut client, "still served"),
        thrift_rpc::wire::Status::Ok
    );
    drop(held);
}

/// An Avro Netty frame header: serial 1, one buffer, announcing 128 MiB.
fn avro_header_128_mib() -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&1i32.to_be_bytes());
    h.extend_from_slice(&1i32.to_be_bytes());
    h.extend_from_slice(&(128i32 << 20).to_be_bytes());
    h
}

#[test]
fn three_hundred_header_only_avro_connections_grow_memory_by_less_than_64_mib() {
    raise_open_file_limit(2048);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!("type = avro\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 600000"),
    );
    let mut client = avro_client(port);
    assert_eq!(
        avro_send(&mut client, "warm up"),
        avro_ipc::protocol::Status::Ok
    );
    let baseline = vm_rss_kib(agent.child.id());
    for s in hold_connections(port, 20, &avro_header_128_mib()) {
        drop(s);
    }
    let held = hold_connections(port, 300, &avro_header_128_mib());
    wait_open_connections(&agent, 301);
    assert_memory_growth_below_limit(&agent, baseline, "300 header-only avro connections");
    assert_eq!(
        avro_send(&mut client, "still served"),
        avro_ipc::protocol::Status::Ok
    );
    drop(held);
}

/// Sends one HTTP/1.1 POST of `body` on a new connection and returns the status code.
fn http_post(port: u16, body: &str) -> u16 {
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"))
}

/// The start of a request whose headers never end.
const HTTP_SLOW_HEADERS: &[u8] = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// Complete headers announcing a 32 MiB body, and the first KiB of it.
fn http_stalled_body() -> Vec<u8> {
    let mut r = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        32 << 20
    )
    .into_bytes();
    r.extend_from_slice(b"[");
    r.extend(std::iter::repeat_n(b' ', 1023));
    r
}

#[test]
fn three_hundred_slow_http_clients_grow_memory_by_less_than_64_mib() {
    raise_open_file_limit(2048);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!("type = http\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 600000"),
    );
    assert_eq!(http_post(port, r#"[{"body": "warm up"}]"#), 200);
    let baseline = vm_rss_kib(agent.child.id());
    let mut held = hold_connections(port, 150, HTTP_SLOW_HEADERS);
    held.extend(hold_connections(port, 150, &http_stalled_body()));
    wait_open_connections(&agent, 300);
    assert_memory_growth_below_limit(&agent, baseline, "300 slow http clients");
    assert_eq!(http_post(port, r#"[{"body": "still served"}]"#), 200);
    drop(held);
}

/// Starts an agent whose source closes partial requests after 500 ms, sends `partial` on a
/// connection and checks that the source closes it after the timeout (and not long before),
/// counted once in `ReadTimeoutCount`. Returns what the source answered before closing.
fn slowloris(source: &str, partial: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!("{source}\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 500"),
    );
    let mut s = connect(port);
    let sent = Instant::now();
    s.write_all(partial).expect("send");
    let Some((answer, closed)) = wait_for_close(&mut s, Duration::from_secs(20)) else {
        panic!(
            "a partly sent request was still open 20 s later (readTimeout = 500 ms):\n{}",
            agent.log()
        );
    };
    assert!(
        closed - sent >= Duration::from_millis(400),
        "closed after {:?}, before readTimeout",
        closed - sent
    );
    let counted = wait_until(Duration::from_secs(10), || {
        source_counter(&agent, "ReadTimeoutCount") == 1
    });
    assert!(
        counted,
        "ReadTimeoutCount = {}",
        source_counter(&agent, "ReadTimeoutCount")
    );
    assert_eq!(source_counter(&agent, "OpenConnectionCount"), 0);
    answer
}

#[test]
fn slowloris_http_headers_are_closed_after_read_timeout() {
    slowloris("type = http", HTTP_SLOW_HEADERS);
}

#[test]
fn slowloris_http_body_is_answered_408_and_closed_after_read_timeout() {
    let mut request = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"body\"".to_vec();
    request.extend_from_slice(b": ");
    let answer = slowloris("type = http", &request);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn slowloris_avro_frame_is_closed_after_read_timeout() {
    // Serial 1, one buffer of 100 bytes, 10 of them.
    let mut partial = avro_header_128_mib();
    partial.truncate(8);
    partial.extend_from_slice(&100i32.to_be_bytes());
    partial.extend_from_slice(&[0; 10]);
    slowloris("type = avro", &partial);
}

#[test]
fn slowloris_thrift_frame_is_closed_after_read_timeout() {
    let mut partial = 100u32.to_be_bytes().to_vec();
    partial.extend_from_slice(&[0x82; 10]);
    slowloris("type = thrift", &partial);
}

#[test]
fn slowloris_netcat_partial_line_is_closed_after_read_timeout() {
    slowloris("type = netcat", b"a line that never ends");
}

#[test]
fn slowloris_syslogtcp_partial_message_is_closed_after_read_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // syslogtcp names its address `host`.
    let agent = start(
        dir.path(),
        &format!("type = syslogtcp\nhost = 127.0.0.1\nport = {port}\nreadTimeout = 500"),
    );
    let mut s = connect(port);
    s.write_all(b"<13>Jan  1 00:00:00 host app: no newline")
        .expect("send");
    assert!(
        wait_for_close(&mut s, Duration::from_secs(20)).is_some(),
        "a partial syslog message was still open 20 s later:\n{}",
        agent.log()
    );
    assert!(wait_until(Duration::from_secs(10), || source_counter(
        &agent,
        "ReadTimeoutCount"
    ) == 1));
}

#[test]
fn a_thrift_client_idle_between_calls_longer_than_read_timeout_is_not_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!("type = thrift\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 300"),
    );
    let mut client = thrift_client(port);
    assert_eq!(
        thrift_send(&mut client, "first"),
        thrift_rpc::wire::Status::Ok
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        thrift_send(&mut client, "second"),
        thrift_rpc::wire::Status::Ok
    );
    assert_eq!(source_counter(&agent, "ReadTimeoutCount"), 0);
    assert_eq!(source_counter(&agent, "EventAcceptedCount"), 2);
}

#[test]
fn an_avro_client_idle_between_calls_longer_than_read_timeout_is_not_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!("type = avro\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 300"),
    );
    let mut client = avro_client(port);
    assert_eq!(
        avro_send(&mut client, "first"),
        avro_ipc::protocol::Status::Ok
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        avro_send(&mut client, "second"),
        avro_ipc::protocol::Status::Ok
    );
    assert_eq!(source_counter(&agent, "ReadTimeoutCount"), 0);
    assert_eq!(source_counter(&agent, "EventAcceptedCount"), 2);
}

#[test]
fn connections_over_max_connections_are_closed_at_once_and_counted_while_others_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!("type = netcat\nbind = 127.0.0.1\nport = {port}\nmaxConnections = 3"),
    );
    let idle = hold_connections(port, 2, b"");
    let mut served = common::Netcat::connect(port);
    assert_eq!(served.send("within the cap"), "OK");
    wait_open_connections(&agent, 3);
    for _ in 0..2 {
        let mut over = connect(port);
        let _ = over.write_all(b"over the cap\n");
        let closed = wait_for_close(&mut over, Duration::from_secs(10));
        let (answer, _) = closed.expect("a connection over the cap is closed at once");
        assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    }
    assert_eq!(source_counter(&agent, "ConnectionRejectedCount"), 2);
    assert_eq!(served.send("still served"), "OK");
    // A slot freed is a slot for the next client.
    drop(idle);
    wait_open_connections(&agent, 1);
    let mut next = common::Netcat::connect(port);
    assert_eq!(next.send("after the others left"), "OK");
    assert_eq!(source_counter(&agent, "EventAcceptedCount"), 3);
    assert!(
        agent.log().contains("maxConnections"),
        "the refusal is logged:\n{}",
        agent.log()
    );
}

#[test]
fn an_http_body_announced_over_32_mib_is_refused_with_413_before_it_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _agent = start(
        dir.path(),
        &format!("type = http\nbind = 127.0.0.1\nport = {port}"),
    );
    let mut s = connect(port);
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n[",
        (32 << 20) + 1
    )
    .expect("send");
    let (answer, _) =
        wait_for_close(&mut s, Duration::from_secs(10)).expect("answered and closed at once");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[test]
fn half_sent_http_requests_do_not_hold_up_the_agent_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!("type = http\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 600000"),
    );
    let held = {
        let mut held = hold_connections(port, 1, HTTP_SLOW_HEADERS);
        held.extend(hold_connections(port, 1, &http_stalled_body()));
        held
    };
    wait_open_connections(&agent, 2);
    let asked = Instant::now();
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "stopping took {:?} with two half-sent requests open",
        asked.elapsed()
    );
    drop(held);
}

#[test]
fn a_netcat_client_streaming_lines_that_end_mid_read_is_not_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(
        dir.path(),
        &format!(
            "type = netcat\nbind = 127.0.0.1\nport = {port}\nreadTimeout = 300\nack-every-event = false"
        ),
    );
    let mut s = connect(port);
    // Every line completes within 150 ms, but every write ends inside the next line, so the
    // connection never sits at a line boundary for 1.5 s.
    s.write_all(b"line-0 ").expect("send");
    for i in 1..=10 {
        std::thread::sleep(Duration::from_millis(150));
        s.write_all(format!("end\nline-{i} ").as_bytes())
            .expect("send");
    }
    s.write_all(b"end\n").expect("send");
    let all = wait_until(Duration::from_secs(10), || {
        source_counter(&agent, "EventAcceptedCount") == 11
    });
    assert!(
        all,
        "EventAcceptedCount = {}, ReadTimeoutCount = {}",
        source_counter(&agent, "EventAcceptedCount"),
        source_counter(&agent, "ReadTimeoutCount")
    );
    assert_eq!(source_counter(&agent, "ReadTimeoutCount"), 0);
}
