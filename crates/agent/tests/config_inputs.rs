//! Hostile or unlucky configuration inputs (issue 14, "Inputs and configs"), through the real
//! `sluice` binary: each test is named after the defect it pins, and each failed before the fix.

mod common;

use common::{free_port, sluice, write_conf};
use std::path::Path;

/// Runs `sluice ARGS` in `cwd`; (exit code, stdout, stderr).
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

fn validate(cwd: &Path, conf: &str) -> (i32, String, String) {
    run(cwd, &["validate", "-n", "a1", "-f", conf])
}

/// A netcat source, a memory channel and a null sink; `extra` is appended.
fn netcat_conf(port: u16, extra: &str) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
{extra}"
    )
}

#[test]
fn a_utf8_byte_order_mark_does_not_drop_the_first_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = format!("\u{feff}{}", netcat_conf(free_port(), ""));
    write_conf(tmp.path(), "bom.conf", &text);
    let (code, out, err) = validate(tmp.path(), "bom.conf");
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert_eq!(
        out,
        "bom.conf: agent a1 is valid: 1 source(s), 1 channel(s), 1 sink(s), 0 sink group(s)\n"
    );
}

/// A file_roll sink whose directory lies under a regular file: refused by `validate` and by
/// `agent`, naming the key and both paths.
#[test]
fn a_file_roll_directory_that_can_never_be_created_is_refused_at_validate_and_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("plain"), "a regular file").expect("write");
    let text = netcat_conf(free_port(), "")
        .replace("a1.sinks.k1.type = null", "a1.sinks.k1.type = file_roll")
        + "a1.sinks.k1.sink.directory = plain/out\n";
    write_conf(tmp.path(), "a.conf", &text);
    let (code, out, _) = validate(tmp.path(), "a.conf");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(
            "a.conf:11: a1.sinks.k1.sink.directory: plain/out can never be created: plain is a regular file, not a directory\n"
        ),
        "{out}"
    );

    let (code, _, err) = run(tmp.path(), &["agent", "-n", "a1", "-f", "a.conf"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("a1.sinks.k1.sink.directory: plain/out can never be created"),
        "{err}"
    );

    // The directory itself being a FIFO is named as such.
    let fifo = tmp.path().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    write_conf(tmp.path(), "b.conf", &text.replace("plain/out", "fifo"));
    let (code, out, _) = validate(tmp.path(), "b.conf");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("a1.sinks.k1.sink.directory: fifo is a FIFO, not a directory"),
        "{out}"
    );
}

/// A start-up failure with an I/O cause (a file channel whose lock file is a directory: EISDIR)
/// names the cause once, not once per error level that embeds it.
#[test]
fn each_io_cause_is_printed_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(tmp.path().join("cp/in_use.lock")).expect("mkdir");
    let text = netcat_conf(free_port(), "").replace(
        "a1.channels.c1.type = memory",
        "a1.channels.c1.type = file\na1.channels.c1.checkpointDir = cp\na1.channels.c1.dataDirs = data",
    );
    write_conf(tmp.path(), "a.conf", &text);
    let (code, _, err) = run(tmp.path(), &["agent", "-n", "a1", "-f", "a.conf"]);
    assert_eq!(code, 1, "{err}");
    let last = err
        .lines()
        .rfind(|l| l.starts_with("sluice: "))
        .expect("a sluice: line");
    let cause = std::io::Error::from_raw_os_error(EISDIR).to_string();
    assert!(last.contains("cp/in_use.lock"), "{last}");
    assert_eq!(last.matches(&cause).count(), 1, "{last}");
    assert_eq!(last.matches("cp/in_use.lock").count(), 1, "{last}");
}

/// Linux's errno for "Is a directory".
const EISDIR: i32 = 21;

/// A file channel under a regular file names the regular file as the obstacle, and the
/// directory the configuration wanted (issue 14, section 3).
#[test]
fn a_checkpoint_dir_under_a_regular_file_names_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("plain"), "a regular file").expect("write");
    let text = netcat_conf(free_port(), "").replace(
        "a1.channels.c1.type = memory",
        "a1.channels.c1.type = file\na1.channels.c1.checkpointDir = plain/cp\na1.channels.c1.dataDirs = plain/data",
    );
    write_conf(tmp.path(), "a.conf", &text);
    let (code, _, err) = run(tmp.path(), &["agent", "-n", "a1", "-f", "a.conf"]);
    assert_eq!(code, 1, "{err}");
    let last = err
        .lines()
        .rfind(|l| l.starts_with("sluice: "))
        .expect("a sluice: line");
    assert!(
        last.ends_with(
            "cannot open channel c1: plain is a regular file, expected a directory on the way to plain/cp"
        ),
        "{last}"
    );
}

#[test]
fn a_huge_capacity_is_reported_as_too_large() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (value, max) in [
        ("99999999999999999999", "4294967295"),
        ("5000000000", "4294967295"),
        (
            "9999999999999999999999999999999999999999999999",
            "4294967295",
        ),
    ] {
        let text = netcat_conf(free_port(), &format!("a1.channels.c1.capacity = {value}\n"));
        write_conf(tmp.path(), "a.conf", &text);
        let (code, out, _) = validate(tmp.path(), "a.conf");
        assert_eq!(code, 1, "{out}");
        assert!(
            out.starts_with(&format!(
                "a.conf:11: a1.channels.c1.capacity: too large: the maximum is {max}, got {value}\n"
            )),
            "{out}"
        );
    }
}

/// Every listening source type takes part: TCP with TCP, UDP with UDP, wildcards overlapping
/// specific hosts; both sources are named.
#[test]
fn two_sources_on_one_port_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let header = "a1.sources = r1 r2\na1.channels = c1\na1.sinks = k1\n\
                  a1.channels.c1.type = memory\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
                  a1.sources.r1.channels = c1\na1.sources.r2.channels = c1\n";
    let cases = [
        (
            "a1.sources.r1.type = http\na1.sources.r1.port = {port}\n\
             a1.sources.r2.type = avro\na1.sources.r2.bind = 127.0.0.1\na1.sources.r2.port = {port}\n",
            "a1.sources.r2.port: source r2 would listen on 127.0.0.1:{port} (TCP), which overlaps 0.0.0.0:{port} of source r1 (line 10)",
        ),
        (
            "a1.sources.r1.type = syslogudp\na1.sources.r1.host = localhost\na1.sources.r1.port = {port}\n\
             a1.sources.r2.type = netcatudp\na1.sources.r2.bind = 127.0.0.1\na1.sources.r2.port = {port}\n",
            "a1.sources.r2.port: source r2 would listen on 127.0.0.1:{port} (UDP), which overlaps localhost:{port} of source r1 (line 11)",
        ),
        (
            "a1.sources.r1.type = thrift\na1.sources.r1.bind = ::\na1.sources.r1.port = {port}\n\
             a1.sources.r2.type = multiport_syslogtcp\na1.sources.r2.host = 127.0.0.1\na1.sources.r2.ports = 1 {port}\n",
            "a1.sources.r2.ports: source r2 would listen on 127.0.0.1:{port} (TCP), which overlaps [::]:{port} of source r1 (line 11)",
        ),
    ];
    for (sources, expected) in cases {
        let text = format!("{header}{}", sources.replace("{port}", &port.to_string()));
        write_conf(tmp.path(), "a.conf", &text);
        let (code, out, _) = validate(tmp.path(), "a.conf");
        assert_eq!(code, 1, "{text}\n{out}");
        assert!(
            out.contains(&expected.replace("{port}", &port.to_string())),
            "{text}\n{out}"
        );
    }
    // A TCP and a UDP source may share a port number, and different hosts may share a port.
    for sources in [
        "a1.sources.r1.type = netcat\na1.sources.r1.bind = 0.0.0.0\na1.sources.r1.port = {port}\n\
         a1.sources.r2.type = netcatudp\na1.sources.r2.bind = 0.0.0.0\na1.sources.r2.port = {port}\n",
        "a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n\
         a1.sources.r2.type = netcat\na1.sources.r2.bind = 127.0.0.2\na1.sources.r2.port = {port}\n",
    ] {
        let text = format!("{header}{}", sources.replace("{port}", &port.to_string()));
        write_conf(tmp.path(), "a.conf", &text);
        let (code, out, _) = validate(tmp.path(), "a.conf");
        assert_eq!(code, 0, "{text}\n{out}");
    }
}

/// SASL without a mechanism means Kafka's default, GSSAPI (Kerberos), which this build lacks:
/// refused at validation on the mechanism's key. SSL alone (the system's CAs) validates.
#[test]
fn a_kafka_sasl_protocol_without_mechanism_is_refused_at_validate() {
    let tmp = tempfile::tempdir().expect("tmp");
    for protocol in ["SASL_PLAINTEXT", "SASL_SSL"] {
        let text = netcat_conf(free_port(), "").replace(
            "a1.sinks.k1.type = null",
            "a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink",
        ) + &format!(
            "a1.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:9\n\
                 a1.sinks.k1.kafka.topic = t\n\
                 a1.sinks.k1.kafka.producer.security.protocol = {protocol}\n"
        );
        write_conf(tmp.path(), "a.conf", &text);
        let (code, out, _) = validate(tmp.path(), "a.conf");
        assert_eq!(code, 1, "{out}");
        let line = out
            .lines()
            .find(|l| l.contains("a1.sinks.k1.kafka.producer.sasl.mechanism"))
            .unwrap_or_else(|| panic!("no error names the key:\n{out}"));
        assert!(line.contains("GSSAPI (Kerberos)"), "{line}");
    }
    let text = netcat_conf(free_port(), "").replace(
        "a1.sinks.k1.type = null",
        "a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink",
    )
        + "a1.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:9\na1.sinks.k1.kafka.topic = t\n\
           a1.sinks.k1.kafka.producer.security.protocol = SSL\n";
    write_conf(tmp.path(), "a.conf", &text);
    let (code, out, _) = validate(tmp.path(), "a.conf");
    assert_eq!(code, 0, "{out}");
    // PLAINTEXT itself is fine.
    let text = netcat_conf(free_port(), "").replace(
        "a1.sinks.k1.type = null",
        "a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink",
    )
        + "a1.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:9\na1.sinks.k1.kafka.topic = t\n\
           a1.sinks.k1.kafka.producer.security.protocol = PLAINTEXT\n";
    write_conf(tmp.path(), "a.conf", &text);
    let (code, out, _) = validate(tmp.path(), "a.conf");
    assert_eq!(code, 0, "{out}");
}
