//! Live reload on the real `sluice` binary (issue 17's Must-show): netcat → file channel →
//! file_roll runs with a netcat client connected and sending; the file gains a second file
//! channel and file_roll sink and the source writes to both. Triggered by SIGHUP, by the
//! directory watch, and by polling, the new lines reach both outputs while the process, its
//! listening socket and the client's connection stay as they were, and every line answered
//! `OK` is in the first sink's output. A broken edit then leaves the running topology as it is
//! and logs the error with its line; removing a channel that still holds events is refused.

mod common;

use common::{free_port, read_dir_lines, wait_until, AgentProcess, Netcat};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the reload is triggered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Sighup,
    Watch,
    Poll,
}

/// Starts the agent with the reload environment `env` (a metrics endpoint on).
fn start(dir: &Path, conf: &Path, env: &[(&str, &str)]) -> AgentProcess {
    let metrics_port = free_port();
    let mut child = common::sluice()
        .current_dir(dir)
        .args(["agent", "-n", "a1", "-f"])
        .arg(conf)
        .args(["--log-level", "info"])
        .args(["--metrics-http", &format!("127.0.0.1:{metrics_port}")])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
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
    let mut agent = AgentProcess {
        child,
        stderr,
        metrics_port: Some(metrics_port),
    };
    agent.wait_started();
    agent
}

/// Replaces `conf` as an editor or a ConfigMap does: a new file renamed over the old one, so
/// no reader ever sees it half written.
fn replace_conf(conf: &Path, text: &str) {
    let tmp = conf.with_extension("conf.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, conf).expect("rename");
}

fn kill(pid: u32, signal: &str) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

fn file_channel(dir: &Path, name: &str) -> String {
    let d = dir.join(name);
    format!(
        "a1.channels.{name}.type = file\na1.channels.{name}.checkpointDir = {}\n\
         a1.channels.{name}.dataDirs = {}\n",
        d.join("checkpoint").display(),
        d.join("data").display()
    )
}

fn file_roll(dir: &Path, sink: &str, channel: &str) -> String {
    format!(
        "a1.sinks.{sink}.type = file_roll\na1.sinks.{sink}.channel = {channel}\n\
         a1.sinks.{sink}.sink.directory = {}\na1.sinks.{sink}.sink.rollInterval = 0\n\
         a1.sinks.{sink}.sink.batchSize = 10\n",
        out(dir, sink).display()
    )
}

fn out(dir: &Path, sink: &str) -> PathBuf {
    dir.join(format!("out-{sink}"))
}

fn netcat(port: u16, channels: &str) -> String {
    format!(
        "a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\na1.sources.r1.channels = {channels}\n"
    )
}

/// netcat → c1 → k1.
fn one_flow(dir: &Path, port: u16) -> String {
    format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n{}{}{}",
        netcat(port, "c1"),
        file_channel(dir, "c1"),
        file_roll(dir, "k1", "c1")
    )
}

/// netcat → c1 → k1 and → c2 → k2.
fn two_flows(dir: &Path, port: u16) -> String {
    format!(
        "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1 k2\n{}{}{}{}{}",
        netcat(port, "c1 c2"),
        file_channel(dir, "c1"),
        file_roll(dir, "k1", "c1"),
        file_channel(dir, "c2"),
        file_roll(dir, "k2", "c2")
    )
}

/// Sends `line` and asserts it was acknowledged.
fn send_ok(nc: &mut Netcat, line: &str, acked: &mut Vec<String>) {
    assert_eq!(nc.send(line), "OK", "line {line}");
    acked.push(line.to_owned());
}

/// Waits until every one of `lines` is in `sink`'s output.
fn wait_delivered(dir: &Path, sink: &str, lines: &[String]) {
    let ok = wait_until(Duration::from_secs(30), || {
        let got = read_dir_lines(&out(dir, sink));
        lines.iter().all(|l| got.contains(l))
    });
    let got = read_dir_lines(&out(dir, sink));
    let missing: Vec<&String> = lines.iter().filter(|l| !got.contains(l)).collect();
    assert!(ok, "{sink} is missing acknowledged lines {missing:?}");
}

fn second_flow_is_added_live(trigger: Trigger) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let port = free_port();
    let conf = dir.join("a.conf");
    std::fs::write(&conf, one_flow(dir, port)).expect("conf");
    let env: &[(&str, &str)] = match trigger {
        // Neither watch nor poll: only the signal can reload.
        Trigger::Sighup => &[
            ("SLUICE_CONF_WATCH", "off"),
            ("SLUICE_CONF_POLL_INTERVAL_MS", "0"),
        ],
        Trigger::Watch => &[("SLUICE_CONF_POLL_INTERVAL_MS", "0")],
        Trigger::Poll => &[
            ("SLUICE_CONF_WATCH", "off"),
            ("SLUICE_CONF_POLL_INTERVAL_MS", "500"),
        ],
    };
    let mut agent = start(dir, &conf, env);
    let pid = agent.child.id();

    let mut nc = Netcat::connect(port);
    let mut acked = Vec::new();
    for i in 0..10 {
        send_ok(&mut nc, &format!("before-{i}"), &mut acked);
    }

    replace_conf(&conf, &two_flows(dir, port));
    if trigger == Trigger::Sighup {
        kill(pid, "HUP");
    }
    // The client goes on sending, waiting for each answer, while the reload happens.
    let mut i = 0;
    let reloaded = wait_until(Duration::from_secs(35), || {
        send_ok(&mut nc, &format!("during-{i}"), &mut acked);
        i += 1;
        agent.log().contains("reload done")
    });
    assert!(reloaded, "no reload within 35 s:\n{}", agent.log());
    assert!(
        agent.log().contains("re-bound source r1"),
        "the source is re-bound, not restarted:\n{}",
        agent.log()
    );

    // The same connection, after the reload: the lines reach both sinks.
    let after: Vec<String> = (0..10).map(|i| format!("after-{i}")).collect();
    for l in &after {
        send_ok(&mut nc, l, &mut acked);
    }
    wait_delivered(dir, "k2", &after);
    wait_delivered(dir, "k1", &acked);
    assert_eq!(
        agent.child.try_wait().expect("try_wait"),
        None,
        "the process {pid} still runs"
    );
    assert_eq!(agent.child.id(), pid);
    assert_eq!(agent.counter("AGENT.a1", "ReloadCount"), 1);
    assert_eq!(agent.counter("AGENT.a1", "ReloadFailedCount"), 0);
    assert_eq!(agent.counter("SOURCE.r1", "OpenConnectionCount"), 1);
    assert!(
        agent.counter("SINK.k2", "EventDrainSuccessCount") >= after.len() as u64,
        "{}",
        agent.metrics()
    );

    if trigger == Trigger::Sighup {
        broken_edit_leaves_the_topology_running(dir, &conf, &mut agent, &mut nc, &mut acked);
    }
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    // Nothing acknowledged was lost, up to the clean stop.
    let got = read_dir_lines(&out(dir, "k1"));
    assert!(acked.iter().all(|l| got.contains(l)), "{log}");
}

/// An invalid edit: the running topology (both flows) stays, the error is logged with its
/// line, the failed-reload counter goes up.
fn broken_edit_leaves_the_topology_running(
    dir: &Path,
    conf: &Path,
    agent: &mut AgentProcess,
    nc: &mut Netcat,
    acked: &mut Vec<String>,
) {
    let port = agent_port(conf);
    let broken = two_flows(dir, port) + "a1.sinks.k2.sink.rollInterval = soon\n";
    let line = broken.lines().count();
    replace_conf(conf, &broken);
    kill(agent.child.id(), "HUP");
    let failed = wait_until(Duration::from_secs(20), || {
        agent.log().contains("reload failed")
    });
    assert!(failed, "{}", agent.log());
    let expected = format!("{}:{line}: a1.sinks.k2.sink.rollInterval", conf.display());
    assert!(
        agent.log().contains(&expected),
        "the error names its line ({expected}):\n{}",
        agent.log()
    );
    assert_eq!(agent.counter("AGENT.a1", "ReloadFailedCount"), 1);
    assert_eq!(agent.counter("AGENT.a1", "ReloadCount"), 1);
    assert_eq!(agent.counter("AGENT.a1", "LastReloadSucceeded"), 0);
    let (code, prometheus) = agent.http_get("/metrics/prometheus");
    assert_eq!(code, 200);
    for line in [
        "sluice_agent_reload_total{name=\"a1\"} 1",
        "sluice_agent_reload_failed_total{name=\"a1\"} 1",
        "sluice_agent_last_reload_succeeded{name=\"a1\"} 0",
    ] {
        assert!(
            prometheus.lines().any(|l| l == line),
            "{line} in {prometheus}"
        );
    }
    let still: Vec<String> = (0..5).map(|i| format!("still-{i}")).collect();
    for l in &still {
        send_ok(nc, l, acked);
    }
    wait_delivered(dir, "k1", &still);
    wait_delivered(dir, "k2", &still);
}

fn agent_port(conf: &Path) -> u16 {
    let text = std::fs::read_to_string(conf).expect("conf");
    text.lines()
        .find_map(|l| l.strip_prefix("a1.sources.r1.port = "))
        .expect("port")
        .parse()
        .expect("number")
}

#[test]
fn sighup_adds_a_second_flow_live_and_a_broken_edit_changes_nothing() {
    second_flow_is_added_live(Trigger::Sighup);
}

#[test]
fn the_file_watch_adds_a_second_flow_live() {
    second_flow_is_added_live(Trigger::Watch);
}

#[test]
fn polling_adds_a_second_flow_live() {
    second_flow_is_added_live(Trigger::Poll);
}

#[test]
fn removing_a_channel_that_holds_events_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let port = free_port();
    let conf = dir.join("a.conf");
    // c2 has no sink: what the source puts there stays.
    let with_c2 = format!(
        "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1\n{}{}{}{}",
        netcat(port, "c1 c2"),
        file_channel(dir, "c1"),
        file_roll(dir, "k1", "c1"),
        file_channel(dir, "c2"),
    );
    std::fs::write(&conf, &with_c2).expect("conf");
    let agent = start(
        dir,
        &conf,
        &[
            ("SLUICE_CONF_WATCH", "off"),
            ("SLUICE_CONF_POLL_INTERVAL_MS", "0"),
        ],
    );
    let mut nc = Netcat::connect(port);
    let mut acked = Vec::new();
    for i in 0..3 {
        send_ok(&mut nc, &format!("kept-{i}"), &mut acked);
    }
    replace_conf(&conf, &one_flow(dir, port));
    kill(agent.child.id(), "HUP");
    assert!(
        wait_until(Duration::from_secs(20), || agent
            .log()
            .contains("reload failed")),
        "{}",
        agent.log()
    );
    let log = agent.log();
    assert!(
        log.contains("reload refused, nothing changed: channel c2 is removed from the file but holds 3 event(s)"),
        "{log}"
    );
    assert_eq!(agent.counter("AGENT.a1", "ReloadFailedCount"), 1);
    // Still both channels: c2 keeps growing.
    send_ok(&mut nc, "after-refusal", &mut acked);
    assert_eq!(agent.counter("CHANNEL.c2", "ChannelSize"), 4);
    wait_delivered(dir, "k1", &acked);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn changed_settings_restart_the_source_and_the_sink_and_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (port, new_port) = (free_port(), free_port());
    let conf = dir.join("a.conf");
    std::fs::write(&conf, one_flow(dir, port)).expect("conf");
    let agent = start(
        dir,
        &conf,
        &[
            ("SLUICE_CONF_WATCH", "off"),
            ("SLUICE_CONF_POLL_INTERVAL_MS", "0"),
        ],
    );
    let mut nc = Netcat::connect(port);
    let mut acked = Vec::new();
    for i in 0..20 {
        send_ok(&mut nc, &format!("old-{i}"), &mut acked);
    }
    let changed =
        one_flow(dir, new_port).replace("k1.sink.batchSize = 10", "k1.sink.batchSize = 3");
    replace_conf(&conf, &changed);
    kill(agent.child.id(), "HUP");
    assert!(
        wait_until(Duration::from_secs(20), || agent
            .log()
            .contains("reload done")),
        "{}",
        agent.log()
    );
    let log = agent.log();
    assert!(
        log.contains("changes=restarted sink k1, restarted source r1"),
        "{log}"
    );
    // The old listener is gone with the old source; the new one serves.
    assert_eq!(
        nc.try_answer(),
        None,
        "the restarted source closed its connections"
    );
    let mut nc = Netcat::connect(new_port);
    for i in 0..5 {
        send_ok(&mut nc, &format!("new-{i}"), &mut acked);
    }
    // A restart on the same port: the old listener is closed before the new one binds.
    replace_conf(
        &conf,
        &changed.replace(
            "r1.channels = c1\n",
            "r1.channels = c1\na1.sources.r1.max-line-length = 100\n",
        ),
    );
    kill(agent.child.id(), "HUP");
    assert!(
        wait_until(Duration::from_secs(20), || agent
            .log()
            .matches("reload done")
            .count()
            == 2),
        "{}",
        agent.log()
    );
    assert!(
        agent.log().contains("changes=restarted source r1\n"),
        "{}",
        agent.log()
    );
    let mut nc = Netcat::connect(new_port);
    send_ok(&mut nc, "same-port", &mut acked);
    wait_delivered(dir, "k1", &acked);
    assert_eq!(agent.counter("AGENT.a1", "ReloadCount"), 2);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}
