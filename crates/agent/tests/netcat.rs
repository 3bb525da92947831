//! End to end: the real binary, a netcat client over TCP, a file channel, file_roll output,
//! the metrics endpoint, and a clean SIGTERM shutdown.

mod common;

use common::{free_port, read_dir_lines, wait_until, write_conf, AgentProcess, Netcat};
use std::io::Write;
use std::time::Duration;

fn conf(port: u16, batch: u32) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.max-line-length = 64
a1.sources.r1.batch-size = {batch}
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = dc
a1.sources.r1.interceptors.dc.type = static
a1.sources.r1.interceptors.dc.key = dc
a1.sources.r1.interceptors.dc.value = eu-1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = channel/checkpoint
a1.channels.c1.dataDirs = channel/data
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
"
    )
}

#[test]
fn lines_are_acked_delivered_counted_and_not_redelivered_after_a_clean_stop() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let c = write_conf(tmp.path(), "a.conf", &conf(port, 1));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();

    let mut nc = Netcat::connect(port);
    for i in 0..20 {
        assert_eq!(nc.send(&format!("line-{i:02}")), "OK");
    }
    // A line of 64 bytes or more is refused and the connection closed.
    assert_eq!(
        nc.send(&"x".repeat(64)),
        "FAILED: Event exceeds the maximum length (64 bytes, including newline)"
    );
    assert_eq!(nc.answer(), "", "connection closed");

    let out = tmp.path().join("out");
    assert!(wait_until(Duration::from_secs(20), || read_dir_lines(&out)
        .len()
        >= 20));
    let expected: Vec<String> = (0..20)
        .map(|i| format!("{{dc=eu-1}} line-{i:02}"))
        .collect();
    assert_eq!(read_dir_lines(&out), expected);

    // Flume's JSON shape with Flume's counter names.
    assert!(wait_until(Duration::from_secs(5), || agent
        .counter("CHANNEL.c1", "ChannelSize")
        == 0));
    let m = agent.metrics();
    assert_eq!(m["SOURCE.r1"]["Type"], "SOURCE");
    assert_eq!(m["SOURCE.r1"]["EventReceivedCount"], "20");
    assert_eq!(m["SOURCE.r1"]["EventAcceptedCount"], "20");
    assert_eq!(m["SOURCE.r1"]["EventReadFail"], "1");
    assert_eq!(m["CHANNEL.c1"]["Type"], "CHANNEL");
    assert_eq!(m["CHANNEL.c1"]["EventPutSuccessCount"], "20");
    assert_eq!(m["CHANNEL.c1"]["EventTakeSuccessCount"], "20");
    assert_eq!(m["CHANNEL.c1"]["ChannelCapacity"], "1000000");
    assert_eq!(m["CHANNEL.c1"]["ChannelFillPercentage"], "0.0");
    assert_ne!(
        m["CHANNEL.c1"]["FsyncCount"], "0",
        "engine metrics are included"
    );
    assert_eq!(m["SINK.k1"]["Type"], "SINK");
    assert_eq!(m["SINK.k1"]["EventDrainSuccessCount"], "20");
    assert_eq!(m["SINK.k1"]["ConnectionCreatedCount"], "1");
    let (code, prom) = agent.http_get("/metrics/prometheus");
    assert_eq!(code, 200);
    assert!(prom.contains("# TYPE sluice_source_event_accepted_total counter\nsluice_source_event_accepted_total{name=\"r1\"} 20\n"), "{prom}");
    assert!(
        prom.contains("sluice_channel_channel_size{name=\"c1\"} 0\n"),
        "{prom}"
    );
    assert!(
        prom.contains("sluice_sink_event_drain_success_total{name=\"k1\"} 20\n"),
        "{prom}"
    );
    assert_eq!(agent.http_get("/nope").0, 404);

    let (status, log) = agent.terminate();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("SIGTERM received; stopping"), "{log}");
    assert!(log.contains("agent stopped cleanly"), "{log}");

    // Restarted, the channel is empty: nothing is delivered twice.
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();
    assert_eq!(agent.counter("CHANNEL.c1", "ChannelSize"), 0);
    let mut nc = Netcat::connect(port);
    assert_eq!(nc.send("after restart"), "OK");
    assert!(wait_until(Duration::from_secs(20), || read_dir_lines(&out)
        .len()
        >= 21));
    std::thread::sleep(Duration::from_millis(300));
    let lines = read_dir_lines(&out);
    assert_eq!(lines.len(), 21, "{lines:?}");
    assert_eq!(lines[20], "{dc=eu-1} after restart");
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn batching_mode_commits_pipelined_lines_together_and_acks_each() {
    const N: usize = 2000;
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let c = write_conf(tmp.path(), "a.conf", &conf(port, 500));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();

    let mut nc = Netcat::connect(port);
    let mut w = nc.writer.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut all = String::new();
        for i in 0..N {
            all.push_str(&format!("{i}\n"));
        }
        w.write_all(all.as_bytes()).expect("send");
    });
    for i in 0..N {
        assert_eq!(nc.answer(), "OK", "answer {i}");
    }
    writer.join().expect("writer");

    let out = tmp.path().join("out");
    assert!(wait_until(Duration::from_secs(20), || read_dir_lines(&out)
        .len()
        >= N));
    let expected: Vec<String> = (0..N).map(|i| format!("{{dc=eu-1}} {i}")).collect();
    assert_eq!(read_dir_lines(&out), expected);
    // Fewer transactions than lines: lines were committed in batches.
    let batches = agent.counter("SOURCE.r1", "AppendBatchAcceptedCount");
    assert!(batches > 0 && batches < N as u64 / 2, "{batches} batches");
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), N as u64);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn sigint_stops_cleanly_too() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let c = write_conf(tmp.path(), "a.conf", &conf(port, 1));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    assert_eq!(Netcat::connect(port).send("x"), "OK");
    let (status, log) = agent.signal("INT");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("SIGINT received; stopping") && log.contains("agent stopped cleanly"),
        "{log}"
    );
}
