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

/// A netcat source on `port` into file channel c1 under `dir` (with `extra` channel keys),
/// drained by a null sink.
fn file_channel_conf(port: u16, dir: &Path, extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {d}/cp\n\
         a1.channels.c1.dataDirs = {d}/data\n\
         {extra}\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n",
        d = dir.display()
    )
}

#[test]
fn a_file_channel_reports_flumes_file_channel_counters() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = write_conf(
        t.path(),
        "a.conf",
        &file_channel_conf(port, t.path(), "a1.channels.c1.minimumRequiredSpace = 0\n"),
    );
    let mut agent = AgentProcess::start(t.path(), &conf, "a1", true);
    agent.wait_started();
    let mut nc = Netcat::connect(port);
    assert_eq!(nc.send("hello"), "OK");
    let m = agent.metrics();
    let c = &m["CHANNEL.c1"];
    assert_eq!(c["Open"], "true", "{c}");
    for (name, want) in [
        ("Closed", "0"),
        ("EventPutErrorCount", "0"),
        ("EventTakeErrorCount", "0"),
        ("CheckpointWriteErrorCount", "0"),
        ("CheckpointBackupWriteErrorCount", "0"),
        ("Unhealthy", "0"),
    ] {
        assert_eq!(c[name], want, "{name} in {c}");
    }
    let (_, prom) = agent.http_get("/metrics/prometheus");
    assert!(
        prom.contains("sluice_channel_open{name=\"c1\"} 1"),
        "{prom}"
    );
    agent.terminate();
}

#[test]
fn puts_refused_for_lack_of_disk_space_count_as_put_errors() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    // More free space required than any disk has: every put is refused, as Flume refuses puts
    // below minimumRequiredSpace with an error.
    let conf = write_conf(
        t.path(),
        "a.conf",
        &file_channel_conf(
            port,
            t.path(),
            "a1.channels.c1.minimumRequiredSpace = 4611686018427387904\n",
        ),
    );
    let mut agent = AgentProcess::start(t.path(), &conf, "a1", true);
    agent.wait_started();
    let mut nc = Netcat::connect(port);
    assert!(nc.send("one").starts_with("FAILED"), "{}", agent.log());
    assert!(nc.send("two").starts_with("FAILED"), "{}", agent.log());
    assert_eq!(agent.counter("CHANNEL.c1", "EventPutErrorCount"), 2);
    assert_eq!(agent.counter("CHANNEL.c1", "EventTakeErrorCount"), 0);
    assert_eq!(agent.counter("CHANNEL.c1", "Unhealthy"), 0);
    agent.terminate();
}

#[test]
fn dual_checkpoints_are_accepted_and_the_log_says_what_the_engine_does_instead() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let backup = t.path().join("backup");
    let conf = write_conf(
        t.path(),
        "a.conf",
        &file_channel_conf(
            port,
            t.path(),
            &format!(
                "a1.channels.c1.minimumRequiredSpace = 0\n\
                 a1.channels.c1.useDualCheckpoints = true\n\
                 a1.channels.c1.backupCheckpointDir = {}\n",
                backup.display()
            ),
        ),
    );
    let mut agent = AgentProcess::start(t.path(), &conf, "a1", false);
    agent.wait_started();
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "useDualCheckpoints = true: built in, not written to backupCheckpointDir {}: the two newest checkpoints are always kept in checkpointDir",
            backup.display()
        )),
        "{log}"
    );
    assert!(!backup.exists(), "backupCheckpointDir was created");
}

/// Java regular expressions, as a Flume `.properties` file writes them (`\\` for a backslash),
/// with look-around and back-references, through interceptors of the real agent.
#[test]
fn interceptors_take_java_regular_expressions_with_look_around_and_back_references() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = write_conf(
        t.path(),
        "a.conf",
        &http_conf(
            port,
            &["c1"],
            // Keep bodies not preceded by "debug " (look-behind); turn "word word" into
            // "word x2" (back-reference and Java's $1); put the user into a header
            // (look-ahead); Java's \d is ASCII only.
            "a1.sources.r1.interceptors = f r x\n\
             a1.sources.r1.interceptors.f.type = regex_filter\n\
             a1.sources.r1.interceptors.f.regex = (?<!debug )msg:\\\\d+\n\
             a1.sources.r1.interceptors.r.type = search_replace\n\
             a1.sources.r1.interceptors.r.searchPattern = \\\\b(\\\\w+) \\\\1\\\\b\n\
             a1.sources.r1.interceptors.r.replaceString = $1 x2\n\
             a1.sources.r1.interceptors.x.type = regex_extractor\n\
             a1.sources.r1.interceptors.x.regex = user=(\\\\w+)(?=;)\n\
             a1.sources.r1.interceptors.x.serializers = u\n\
             a1.sources.r1.interceptors.x.serializers.u.name = user\n",
        ),
    );
    let mut agent = AgentProcess::start(t.path(), &conf, "a1", false);
    agent.wait_started();
    let body = r#"[{"headers":{},"body":"msg:1 hello hello user=ann;"},
                   {"headers":{},"body":"debug msg:2 user=bob;"},
                   {"headers":{},"body":"msg:٣ arabic digit"},
                   {"headers":{},"body":"info msg:4 user=eve"}]"#;
    assert_eq!(post_with_curl(port, body), 200, "{}", agent.log());
    lines_in(&t.path().join("out-c1"), 2);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    // Read after the stop, so an event that should have been dropped cannot arrive late.
    let out = lines_in(&t.path().join("out-c1"), 2);
    assert_eq!(
        out,
        vec![
            "{user=ann} msg:1 hello x2 user=ann;".to_owned(),
            "{} info msg:4 user=eve".to_owned(),
        ],
        "{log}"
    );
}

#[test]
fn a_regular_expression_that_does_not_compile_is_an_error_on_its_key_and_line() {
    let t = tempfile::tempdir().unwrap();
    let conf = write_conf(
        t.path(),
        "a.conf",
        &http_conf(
            free_port(),
            &["c1"],
            "a1.sources.r1.interceptors = f\n\
             a1.sources.r1.interceptors.f.type = regex_filter\n\
             a1.sources.r1.interceptors.f.regex = (?<=a+\n",
        ),
    );
    let out = sluice()
        .current_dir(t.path())
        .args(["validate", "-n", "a1", "-f"])
        .arg(&conf)
        .output()
        .expect("run sluice validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = std::fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("a1.sources.r1.interceptors.f.regex"))
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!(
            "a.conf:{line}: a1.sources.r1.interceptors.f.regex: invalid regular expression \"(?<=a+\":"
        )),
        "{text}"
    );
}
