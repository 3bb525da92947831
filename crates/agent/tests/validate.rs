//! `sluice validate` and refusals of `sluice agent`: exit codes and exact output.

mod common;

use common::{sluice, write_conf};
use std::path::Path;

fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn run(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = sluice()
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run sluice");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf8"),
        String::from_utf8(out.stderr).expect("utf8"),
    )
}

#[test]
fn the_bundled_quickstart_is_valid() {
    let (code, out, err) = run(
        workspace_root(),
        &["validate", "-n", "a1", "-f", "examples/quickstart.conf"],
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "examples/quickstart.conf: agent a1 is valid: 1 source(s), 2 channel(s), 2 sink(s), 0 sink group(s)\n"
    );
}

const BAD: &str = "\
# A configuration with one of each common mistake.
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2 k3
a1.sinkgroups = g1

a1.sources.r1.type = netcatt
a1.sources.r1.channels = c1

a1.channels.c1.type = memory
a1.channels.c1.capacity = 10k
a1.channels.c1.transactionCapacity = 10

a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1 c2
a1.sinks.k2.type = file_roll
a1.sinks.k2.sink.directory = /tmp/out
a1.sinks.k2.channel = c1
a1.sinks.k3.type = null
a1.sinks.k3.channel = c1

a1.sinkgroups.g1.sinks = k2 k3
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k2 = 5
a1.sinkgroups.g1.processor.priority.k3 = 5
a1.sinkgroups.g1.processor.maxpenalty = 30000
a1.sinkgroups.g1.processor.max_penalty = 30000
";

#[test]
fn every_problem_is_listed_with_file_line_and_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_conf(tmp.path(), "bad.conf", BAD);
    let (code, out, err) = run(
        tmp.path(),
        &["validate", "--name", "a1", "--conf-file", "bad.conf"],
    );
    assert_eq!(err, "");
    assert_eq!(code, 1, "{out}");
    let expected = "\
bad.conf:7: a1.sources.r1.type: unknown source type \"netcatt\"; known source types: netcat, seq
bad.conf:11: a1.channels.c1.capacity: expected an integer, got \"10k\"
bad.conf:15: a1.sinks.k1.channel: sink k1 is bound to 2 channels (c1 c2); a sink takes from exactly one channel
bad.conf:16: a1.sinks.k2.sink.batchSize: batch size 100 (sink.batchSize) is larger than the transactionCapacity 10 of channel c1 (line 12); a batch must fit in one transaction
bad.conf:19: a1.sinks.k3.batchSize: batch size 100 (batchSize) is larger than the transactionCapacity 10 of channel c1 (line 12); a batch must fit in one transaction
bad.conf:25: a1.sinkgroups.g1.processor.priority.k3: priority 5 is also the priority of sink k2 (line 24); failover priorities must be unique (Flume silently drops the sink)
bad.conf:27: warning: a1.sinkgroups.g1.processor.max_penalty: unknown key for sink group g1; it is ignored
bad.conf: agent a1 is invalid: 6 problem(s)
";
    // The list grows as sources are added; it is SOURCE_TYPES in order.
    let known: Vec<&str> = agent::source::SOURCE_TYPES
        .iter()
        .map(|t| t.alias)
        .collect();
    let expected = expected.replace(
        "known source types: netcat, seq\n",
        &format!("known source types: {}\n", known.join(", ")),
    );
    assert_eq!(out, expected);
}

#[test]
fn io_and_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, out, err) = run(tmp.path(), &["validate", "-n", "a1", "-f", "missing.conf"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "sluice: cannot read missing.conf: No such file or directory (os error 2)\n"
    );

    let (code, _, err) = run(tmp.path(), &["validate", "-f", "x.conf"]);
    assert_eq!(code, 2);
    assert!(err.contains("--name <NAME>"), "{err}");

    let (code, _, _) = run(tmp.path(), &["frobnicate"]);
    assert_eq!(code, 2);
}

#[test]
fn an_unknown_agent_name_is_invalid() {
    let (code, out, _) = run(
        workspace_root(),
        &["validate", "-n", "agent7", "-f", "examples/quickstart.conf"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "examples/quickstart.conf: no agent named \"agent7\" in this file (agents defined: a1)\nexamples/quickstart.conf: agent agent7 is invalid: 1 problem(s)\n"
    );
}

#[test]
fn the_agent_refuses_an_invalid_configuration() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_conf(tmp.path(), "bad.conf", BAD);
    let (code, out, err) = run(tmp.path(), &["agent", "-n", "a1", "-f", "bad.conf"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("bad.conf:7: a1.sources.r1.type: unknown source type \"netcatt\""),
        "{err}"
    );
    assert!(err.ends_with("sluice: agent a1 not started: 6 problem(s) in bad.conf (run `sluice validate` to list warnings too)\n"), "{err}");
}

#[test]
fn the_agent_exits_1_when_a_source_cannot_listen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let conf = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\na1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\na1.channels.c1.checkpointDir = cp\na1.channels.c1.dataDirs = data\n\
         a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n"
    );
    write_conf(tmp.path(), "a.conf", &conf);
    let (code, _, err) = run(tmp.path(), &["agent", "-n", "a1", "-f", "a.conf"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("sluice: agent a1 did not start: source r1: cannot listen on 127.0.0.1:{port}: Address already in use")),
        "{err}"
    );
    drop(taken);
}

/// A key with a security meaning that nothing reads is an error with the whole message, not
/// the "unknown key" warning it used to be; `ssl = false` asks for nothing and stays a warning.
#[test]
fn a_security_key_nobody_reads_is_an_error_not_a_warning() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_conf(
        tmp.path(),
        "enc.conf",
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = seq\na1.sources.r1.channels = c1\na1.sources.r1.ssl = false\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.encryption.activeKey = key-0\n\
         a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n",
    );
    let (code, out, err) = run(tmp.path(), &["validate", "-n", "a1", "-f", "enc.conf"]);
    assert_eq!((code, err.as_str()), (1, ""), "{out}");
    assert_eq!(
        out,
        "\
enc.conf:8: a1.channels.c1.encryption.activeKey: encryption.activeKey = key-0 has a security meaning in Flume, but memory channel c1 does not read it, so it would be silently ignored; encryption at rest is a file channel's (its encryption.activeKey, encryption.keyProvider, ... keys; see docs/agent.md), and this component stores nothing it could encrypt; remove the key, or move it to the file channel it was meant for
enc.conf:6: warning: a1.sources.r1.ssl: unknown key for seq source r1; it is ignored
enc.conf: agent a1 is invalid: 1 problem(s)
"
    );
}
