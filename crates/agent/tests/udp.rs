//! `netcatudp` end to end: datagrams sent to the real `sluice` binary land in file_roll output,
//! one event per datagram, with the sender header.

mod common;

use common::{read_dir_lines, read_dir_text, wait_until, write_conf, AgentProcess};
use std::net::UdpSocket;
use std::time::Duration;

/// A free UDP port on 127.0.0.1.
fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

#[test]
fn each_datagram_is_one_event_without_its_trailing_newline() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_udp_port();
    let conf = format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.NetcatUdpSource
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.remoteAddressHeader = sender
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
"
    );
    let c = write_conf(tmp.path(), "a.conf", &conf);
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();

    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    let sent: [&[u8]; 4] = [b"hello\n", b"no newline", b"two\nlines\n", b"cr\r\n"];
    for d in sent {
        client.send_to(d, ("127.0.0.1", port)).expect("send");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = tmp.path().join("out");
    assert!(
        wait_until(Duration::from_secs(10), || read_dir_lines(&out).len() >= 5),
        "{:?}\n{}",
        read_dir_lines(&out),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    // Byte for byte: only one final newline is removed, a `\r` before it stays.
    assert_eq!(
        read_dir_text(&out),
        "{sender=127.0.0.1} hello\n{sender=127.0.0.1} no newline\n{sender=127.0.0.1} two\nlines\n{sender=127.0.0.1} cr\r\n"
    );
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), 4);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("netcatudp source stopped"), "{log}");
}
