//! `http` end to end: JSON events POSTed to the real `sluice` binary land in file_roll output;
//! bad requests, full channels and other failures get Flume's status codes.

mod common;

use common::{free_port, read_dir_lines, sluice, wait_until, write_conf, AgentProcess};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends one HTTP/1.1 request; returns (status code, body).
fn request(port: u16, method: &str, content_type: &str, body: &str) -> (u16, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "{method} / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("response");
    let code = head
        .split_whitespace()
        .nth(1)
        .expect("code")
        .parse()
        .expect("number");
    (code, body.to_owned())
}

fn post(port: u16, body: &str) -> (u16, String) {
    request(port, "POST", "application/json", body)
}

fn conf(port: u16, channel: &str) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.handler = org.apache.flume.source.http.JSONHandler
a1.sources.r1.channels = c1
{channel}
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
"
    )
}

#[test]
fn posted_events_are_committed_and_bad_requests_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let channel = "\
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = channel/checkpoint
a1.channels.c1.dataDirs = channel/data";
    let c = write_conf(tmp.path(), "a.conf", &conf(port, channel));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();

    let (code, body) = post(
        port,
        r#"[{"headers": {"a": "1", "b": "two"}, "body": "hello"}, {"body": "w\u00e9rld"}]"#,
    );
    assert_eq!((code, body.as_str()), (200, ""));
    assert_eq!(post(port, "[]").0, 200, "an empty array is fine");
    let (code, body) = post(port, r#"[{"body": "x"}"#);
    assert_eq!(code, 400);
    assert!(body.contains("Request has invalid JSON Syntax"), "{body}");
    let (code, body) = post(port, r#"{"body": "not an array"}"#);
    assert_eq!(code, 400);
    assert!(body.contains("expected a JSON array"), "{body}");
    let (code, body) = request(port, "POST", "application/json; charset=ISO-8859-1", "[]");
    assert_eq!(code, 400);
    assert!(
        body.contains("charset ISO-8859-1 is not supported"),
        "{body}"
    );
    assert_eq!(request(port, "GET", "application/json", "").0, 405);

    let out = tmp.path().join("out");
    assert!(
        wait_until(Duration::from_secs(10), || read_dir_lines(&out).len() >= 2),
        "{}",
        agent.log()
    );
    assert_eq!(read_dir_lines(&out), ["{a=1, b=two} hello", "{} wérld"]);
    let m = agent.metrics();
    assert_eq!(m["SOURCE.r1"]["EventAcceptedCount"], "2");
    assert_eq!(
        m["SOURCE.r1"]["AppendBatchAcceptedCount"], "1",
        "one transaction"
    );
    assert_eq!(m["SOURCE.r1"]["EventReadFail"], "3");
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("http source stopped"), "{log}");
}

#[test]
fn a_full_channel_is_503_and_other_channel_errors_500() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    // No sink drains c1 (its sink reads from c2, which nothing fills).
    let conf = format!(
        "\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 3
a1.channels.c1.transactionCapacity = 3
a1.channels.c1.keep-alive = 0
a1.channels.c2.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c2
"
    );
    let c = write_conf(tmp.path(), "a.conf", &conf);
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();
    let ev = |n: usize| {
        let items: Vec<String> = (0..n).map(|i| format!("{{\"body\": \"{i}\"}}")).collect();
        format!("[{}]", items.join(","))
    };
    // Four events do not fit in one transaction of 3: not "full", another failure.
    let (code, body) = post(port, &ev(4));
    assert_eq!(code, 500, "{body}");
    assert!(body.starts_with("Deliver failed."), "{body}");
    assert_eq!(post(port, &ev(2)).0, 200);
    assert_eq!(post(port, &ev(1)).0, 200);
    let (code, body) = post(port, &ev(1));
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("Channel might be full"), "{body}");
    assert_eq!(agent.counter("CHANNEL.c1", "ChannelSize"), 3);
    assert_eq!(agent.counter("SOURCE.r1", "ChannelWriteFail"), 2);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn other_handlers_and_ssl_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = conf(1234, "a1.channels.c1.type = memory").replace(
        "handler = org.apache.flume.source.http.JSONHandler",
        "handler = org.apache.flume.sink.solr.morphline.BlobHandler",
    ) + "a1.sources.r1.enableSSL = true\n";
    let c = write_conf(tmp.path(), "a.conf", &text);
    let out = sluice()
        .args(["validate", "-n", "a1", "-f"])
        .arg(&c)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("a1.sources.r1.handler: handler \"org.apache.flume.sink.solr.morphline.BlobHandler\" is not supported"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "a1.sources.r1.enableSSL: enableSSL is Flume's deprecated name of ssl; use ssl instead"
        ),
        "{stdout}"
    );
}
