//! Syslog sources end to end: RFC 3164 and RFC 5424 messages sent over TCP (newline and
//! octet-counted framing) and UDP to the real `sluice` binary land in file_roll output with
//! Flume's headers; invalid and over-long messages are kept and marked.

mod common;

use common::{free_port, read_dir_lines, wait_until, write_conf, AgentProcess};
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

/// One agent, source `r1` of `source_keys`, memory channel, file_roll with headers into `out/`.
fn start(dir: &Path, source_keys: &str) -> AgentProcess {
    let conf = format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
{source_keys}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
"
    );
    let c = write_conf(dir, "a.conf", &conf);
    let mut agent = AgentProcess::start(dir, &c, "a1", true);
    agent.wait_started();
    agent
}

fn connect(port: u16) -> TcpStream {
    for _ in 0..500 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("cannot connect to {port}");
}

fn wait_lines(agent: &AgentProcess, out: &Path, n: usize) -> Vec<String> {
    assert!(
        wait_until(Duration::from_secs(10), || read_dir_lines(out).len() >= n),
        "{:?}\n{}",
        read_dir_lines(out),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    read_dir_lines(out)
}

#[test]
fn syslogtcp_parses_both_rfcs_both_framings_and_marks_bad_messages() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let agent = start(
        tmp.path(),
        &format!(
            "a1.sources.r1.type = syslogtcp\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.port = {port}\na1.sources.r1.eventSize = 100\na1.sources.r1.clientIPHeader = ip"
        ),
    );
    let mut s = connect(port);
    let rfc5424 =
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed";
    let framed = "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 app 8710 - - hi\nthere";
    let long = format!("<13>1 - host1 app - - - {}", "x".repeat(120));
    write!(
        s,
        "{rfc5424}\r\n{} {framed}<13>Oct 11 22:14:15 web-1 sshd[1]: from 3164\nnot syslog at all\n{long}\n<13>after long\n",
        framed.len()
    )
    .expect("send");
    drop(s);
    let lines = wait_lines(&agent, &tmp.path().join("out"), 7);
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(
        lines[0],
        "{Facility=4, Severity=2, timestamp=1065910455003, host=mymachine.example.com, ip=127.0.0.1} su - ID47 - 'su root' failed"
    );
    // Octet-counted: the newline inside the frame is data (it splits the output line).
    assert_eq!(
        lines[1],
        "{Facility=20, Severity=5, timestamp=1061727255000, host=192.0.2.1, ip=127.0.0.1} app 8710 - - hi"
    );
    assert_eq!(lines[2], "there");
    assert!(
        lines[3].starts_with("{Facility=1, Severity=5, timestamp=")
            && lines[3].ends_with(", host=web-1, ip=127.0.0.1} sshd[1]: from 3164"),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4],
        "{Facility=0, Severity=0, flume.syslog.status=Invalid, ip=127.0.0.1} not syslog at all"
    );
    assert_eq!(
        lines[5],
        format!(
            "{{Facility=1, Severity=5, host=host1, flume.syslog.status=Incomplete, ip=127.0.0.1}} app - - - {}",
            "x".repeat(100 - "<13>1 - host1 app - - - ".len())
        )
    );
    assert_eq!(
        lines[6], "{Facility=1, Severity=5, ip=127.0.0.1} <13>after long",
        "the rest of the long line was skipped; a header matching neither RFC keeps the body whole"
    );
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), 6);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn multiport_syslogtcp_listens_on_every_port_with_the_port_header_and_keeps_fields() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (p1, p2) = (free_port(), free_port());
    let agent = start(
        tmp.path(),
        &format!(
            "a1.sources.r1.type = multiport_syslogtcp\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.ports = {p1} {p2}\na1.sources.r1.portHeader = port\na1.sources.r1.keepFields = priority hostname\na1.sources.r1.batchSize = 10"
        ),
    );
    let mut a = connect(p1);
    writeln!(a, "<34>1 2003-10-11T22:14:15Z h1 app - - - one").expect("send");
    drop(a);
    let out = tmp.path().join("out");
    wait_lines(&agent, &out, 1);
    let mut b = connect(p2);
    writeln!(b, "<13>Oct 11 22:14:15 h2 two").expect("send");
    drop(b);
    let lines = wait_lines(&agent, &out, 2);
    assert_eq!(
        lines,
        [
            format!("{{Facility=4, Severity=2, timestamp=1065910455000, host=h1, port={p1}}} <34>h1 app - - - one"),
            format!("{{Facility=1, Severity=5, timestamp={}, host=h2, port={p2}}} <13>h2 two", ts_3164(&lines[1])),
        ]
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

/// The timestamp header of an output line (RFC 3164's depends on the current year).
fn ts_3164(line: &str) -> String {
    let start = line.find("timestamp=").expect("timestamp") + "timestamp=".len();
    line[start..].split(',').next().expect("value").to_owned()
}

#[test]
fn syslogudp_takes_one_message_per_datagram_and_keep_fields_all_keeps_it_whole() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let agent = start(
        tmp.path(),
        &format!(
            "a1.sources.r1.type = org.apache.flume.source.SyslogUDPSource\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.port = {port}\na1.sources.r1.keepFields = all"
        ),
    );
    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    let msg = "<14>1 2003-10-11T22:14:15.003Z h app - - - udp message";
    client
        .send_to(format!("{msg}\n").as_bytes(), ("127.0.0.1", port))
        .expect("send");
    std::thread::sleep(Duration::from_millis(20));
    client
        .send_to(b"garbage", ("127.0.0.1", port))
        .expect("send");
    let lines = wait_lines(&agent, &tmp.path().join("out"), 2);
    assert_eq!(
        lines,
        [
            format!("{{Facility=1, Severity=6, timestamp=1065910455003, host=h}} {msg}"),
            "{Facility=0, Severity=0, flume.syslog.status=Invalid} garbage".to_owned(),
        ]
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("syslogudp source stopped"), "{log}");
}

#[test]
fn bad_syslog_keys_are_refused_at_validation() {
    let tmp = tempfile::tempdir().expect("tmp");
    let conf = "\
a1.sources = r1 r2
a1.channels = c1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = 5140
a1.sources.r1.keepFields = timestamp host
a1.sources.r1.channels = c1
a1.sources.r2.type = multiport_syslogtcp
a1.sources.r2.host = 127.0.0.1
a1.sources.r2.ports = 5141 x 5141
a1.sources.r2.channels = c1
a1.channels.c1.type = memory
";
    let c = write_conf(tmp.path(), "a.conf", conf);
    let out = common::sluice()
        .args(["validate", "-n", "a1", "-f"])
        .arg(&c)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("a.conf:6: a1.sources.r1.keepFields: unknown field \"host\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("a1.sources.r2.ports: \"x\" is not a port number"),
        "{stdout}"
    );
    assert!(
        stdout.contains("a1.sources.r2.ports: port 5141 is listed twice"),
        "{stdout}"
    );
}
