//! Flume 1.11 parity through the real agent (issue 17 §5): what a Flume configuration does
//! when moved to Sluice unchanged. Events are posted with curl to the http source.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// POSTs a JSON array of events with curl: the HTTP status.
fn post_with_curl(port: u16, body: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// An http source `r1` on `port` feeding `channels` (memory channels, each drained by a
/// file_roll sink writing to `out-<channel>`), then `extra` lines.
fn http_conf(port: u16, channels: &[&str], extra: &str) -> String {
    let mut c = format!(
        "a1.sources = r1\n\
         a1.channels = {chs}\n\
         a1.sinks = {sinks}\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = {chs}\n",
        chs = channels.join(" "),
        sinks = channels
            .iter()
            .map(|c| format!("k{c}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    for ch in channels {
        c.push_str(&format!(
            "a1.channels.{ch}.type = memory\n\
             a1.sinks.k{ch}.type = file_roll\n\
             a1.sinks.k{ch}.channel = {ch}\n\
             a1.sinks.k{ch}.sink.directory = out-{ch}\n\
             a1.sinks.k{ch}.sink.rollInterval = 0\n\
             a1.sinks.k{ch}.sink.serializer = header_and_text\n"
        ));
    }
    c.push_str(extra);
    c
}

/// Waits until `dir` holds `n` lines (or 20 s), then returns them sorted.
fn lines_in(dir: &Path, n: usize) -> Vec<String> {
    wait_until(Duration::from_secs(20), || {
        dir.exists() && read_dir_lines(dir).len() >= n
    });
    let mut v = if dir.exists() {
        read_dir_lines(dir)
    } else {
        Vec::new()
    };
    v.sort();
    v
}

#[test]
fn multiplexing_without_default_sends_unmatched_events_to_their_optional_channels_or_nowhere() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = write_conf(
        t.path(),
        "a.conf",
        &http_conf(
            port,
            &["c1", "c2"],
            "a1.sources.r1.selector.type = multiplexing\n\
             a1.sources.r1.selector.header = state\n\
             a1.sources.r1.selector.mapping.CZ = c1\n\
             a1.sources.r1.selector.optional.FR = c2\n",
        ),
    );
    let mut agent = AgentProcess::start(t.path(), &conf, "a1", true);
    agent.wait_started();
    assert!(
        agent
            .log()
            .contains("multiplexing without selector.default"),
        "{}",
        agent.log()
    );
    let body = r#"[{"headers":{"state":"CZ"},"body":"cz"},
                   {"headers":{"state":"FR"},"body":"fr"},
                   {"headers":{"state":"US"},"body":"us"},
                   {"headers":{},"body":"none"}]"#;
    assert_eq!(post_with_curl(port, body), 200, "{}", agent.log());
    let c1 = lines_in(&t.path().join("out-c1"), 1);
    let c2 = lines_in(&t.path().join("out-c2"), 1);
    assert_eq!(c1.len(), 1, "{c1:?}");
    assert!(c1[0].ends_with("cz"), "{c1:?}");
    assert_eq!(c2.len(), 1, "{c2:?}");
    assert!(c2[0].ends_with("fr"), "{c2:?}");
    assert_eq!(agent.counter("SOURCE.r1", "EventUnroutedCount"), 2);
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), 4);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    // Nothing arrived late.
    assert_eq!(read_dir_lines(&t.path().join("out-c1")).len(), 1);
    assert_eq!(read_dir_lines(&t.path().join("out-c2")).len(), 1);
}
