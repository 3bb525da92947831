//! A Flume deployment's command lines, run for real: `bin/flume-ng` (the wrapper) execs the built
//! `sluice` the way an init script starts Flume; `-D` system properties (spaced and glued) reach
//! the metrics server, the log level and `${sys:…}`; ZooKeeper is refused; `flume-ng
//! avro-client` delivers a file's lines with headers through an avro source to file_roll; an
//! `external` config filter runs a real script, and `sluice validate` names its failures by
//! `file:line: key`.
//!
//! The metrics are fetched with curl, as an operator would; without curl the test uses a plain
//! TCP client instead, unless `SLUICE_REQUIRE_INTEROP` is set (then a missing curl fails).

mod common;

use common::{free_port, read_dir_lines, sluice, wait_until, write_conf, AgentProcess, Netcat};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn wrapper() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bin/flume-ng")).to_owned()
}

/// `bin/flume-ng ARGS…` in `cwd`, finding the binary under test through `SLUICE_BIN`.
fn flume_ng(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper());
    cmd.current_dir(cwd)
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        .args(args);
    cmd
}

fn output(mut cmd: Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.stdin(Stdio::null()).output().expect("run");
    (
        status.code().expect("exit code"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Starts `cmd` (a long-running agent) with its standard error collected.
fn spawn_agent(mut cmd: Command) -> AgentProcess {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
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
    AgentProcess {
        child,
        stderr,
        metrics_port: None,
    }
}

/// `GET http://127.0.0.1:PORT/metrics` with curl (or a plain TCP client without curl).
fn get_metrics(port: u16) -> Option<String> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    match Command::new("curl").args(["-sS", "--fail", &url]).output() {
        Ok(out) => out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(_) => {
            assert!(
                std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
                "SLUICE_REQUIRE_INTEROP is set but curl is not installed (apt-get install curl)"
            );
            eprintln!("curl not found: fetching {url} with a plain TCP client");
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            let (code, body) = common::http_get(port, "/metrics");
            (code == 200).then_some(body)
        }
    }
}

const NETCAT_TO_MEMORY: &str = "\
a1.sources = r1
a1.channels = c1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = ${sys:nc.port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
";

/// The must-show start: an init script's `flume-ng agent` line, unchanged, serves Flume's JSON.
#[test]
fn an_init_script_start_through_the_wrapper_serves_flumes_json_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).expect("conf dir");
    let nc_port = free_port();
    std::fs::write(
        conf.join("a.conf"),
        NETCAT_TO_MEMORY.replace("${sys:nc.port}", &nc_port.to_string()),
    )
    .expect("conf");
    std::fs::write(conf.join("flume-env.sh"), "export JAVA_OPTS=\"-Xmx2g\"\n").expect("env");
    std::fs::write(
        conf.join("log4j.properties"),
        "flume.root.logger=INFO,LOGFILE\n",
    )
    .expect("log4j");
    let port = free_port();
    let mut agent = spawn_agent(flume_ng(
        dir.path(),
        &[
            "agent",
            "-n",
            "a1",
            "-c",
            "conf",
            "-f",
            "conf/a.conf",
            "-Dflume.monitoring.type=http",
            &format!("-Dflume.monitoring.port={port}"),
            "-Dflume.root.logger=INFO,console",
        ],
    ));
    agent.wait_started();
    let mut nc = Netcat::connect(nc_port);
    assert_eq!(nc.send("one"), "OK");
    assert_eq!(nc.send("two"), "OK");

    let mut body = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            body = get_metrics(port);
            body.is_some()
        }),
        "no metrics on 127.0.0.1:{port}:\n{}",
        agent.log()
    );
    let json: serde_json::Value = serde_json::from_str(&body.expect("body")).expect("JSON");
    let c1 = &json["CHANNEL.c1"];
    assert_eq!(c1["ChannelSize"], "2", "{json}");
    assert_eq!(c1["EventPutSuccessCount"], "2", "{json}");
    assert_eq!(json["SOURCE.r1"]["EventAcceptedCount"], "2", "{json}");

    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains(" INFO "), "INFO,console logs at info:\n{log}");
    for f in ["flume-env.sh", "log4j.properties"] {
        assert!(
            log.lines().any(|l| l.contains(f) && l.contains("not used")),
            "{f} is named as not used:\n{log}"
        );
    }
}

/// `-D key=value` and `-Dkey=value` both reach `${sys:…}`; without them the file is invalid and
/// says which property is missing.
#[test]
fn spaced_and_glued_defines_reach_sys_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{NETCAT_TO_MEMORY}a1.channels.c1.capacity = ${{sys:cap}}\n");
    let conf = write_conf(dir.path(), "a.conf", &text);
    let conf = conf.to_str().expect("utf8");
    let port = free_port().to_string();
    let spaced = [
        "validate",
        "-n",
        "a1",
        "-f",
        conf,
        "-D",
        &format!("nc.port={port}"),
        "-D",
        "cap=500",
    ];
    let glued = [
        "validate",
        "-n",
        "a1",
        "-f",
        conf,
        &format!("-Dnc.port={port}"),
        "-Dcap=500",
    ];
    for args in [&spaced[..], &glued[..]] {
        let mut cmd = sluice();
        cmd.args(args);
        let (code, out, err) = output(cmd);
        assert_eq!(code, 0, "{args:?}\n{out}{err}");
        assert!(out.contains("agent a1 is valid"), "{out}");
    }
    let mut cmd = sluice();
    cmd.args(["validate", "-n", "a1", "-f", conf, "-Dcap=500"]);
    let (code, out, _) = output(cmd);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(":5: a1.sources.r1.port: system property nc.port is not set: pass -Dnc.port=VALUE (referenced as ${sys:nc.port})"),
        "{out}"
    );
}

/// `-Dflume.root.logger` sets the level (WARN hides the INFO start-up lines), an appender other
/// than console is named, and --log-level wins over it.
#[test]
fn the_root_logger_property_sets_the_level_and_log_level_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write_conf(dir.path(), "a.conf", NETCAT_TO_MEMORY);
    let start = |extra: &[&str]| {
        let nc_port = free_port();
        let metrics = free_port();
        let mut cmd = sluice();
        cmd.current_dir(dir.path())
            .args(["agent", "-n", "a1", "-f"])
            .arg(&conf)
            .arg(format!("-Dnc.port={nc_port}"))
            .args(["-Dflume.monitoring.type=http", "-D"])
            .arg(format!("flume.monitoring.port={metrics}"))
            .args(extra);
        let agent = spawn_agent(cmd);
        assert!(
            wait_until(Duration::from_secs(20), || get_metrics(metrics).is_some()),
            "not serving metrics:\n{}",
            agent.log()
        );
        let (status, log) = agent.terminate();
        assert!(status.success(), "{log}");
        log
    };
    let log = start(&["-Dflume.root.logger=WARN,console"]);
    assert!(!log.contains("agent started"), "WARN hides INFO:\n{log}");
    let log = start(&["-Dflume.root.logger=warn,LOGFILE", "--log-level", "info"]);
    assert!(log.contains("agent started"), "--log-level wins:\n{log}");
    assert!(
        log.contains("--log-level wins over -Dflume.root.logger")
            && log.contains("LOGFILE")
            && log.contains("not used"),
        "{log}"
    );
    let mut cmd = sluice();
    cmd.args(["agent", "-n", "a1", "-f"])
        .arg(&conf)
        .arg("-Dflume.root.logger=LOUD,console");
    let (code, _, err) = output(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"LOUD\" is not a log level"), "{err}");
}

/// ZooKeeper configuration, Ganglia and unknown wrapper commands are refused with a reason;
/// `version` works, Java options are dropped and `--dryrun` prints the command.
#[test]
fn the_wrapper_refuses_what_sluice_does_not_have() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = output(flume_ng(
        dir.path(),
        &[
            "agent", "-n", "a1", "-c", "conf", "-z", "zk1:2181", "-p", "/flume",
        ],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "ZooKeeper configuration (-z/--zkConnString, -p/--zkBasePath) is not supported"
        ),
        "{err}"
    );
    let (code, _, err) = output(flume_ng(
        dir.path(),
        &[
            "agent",
            "-n",
            "a1",
            "-f",
            "x.conf",
            "-Dflume.monitoring.type=ganglia",
        ],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Ganglia reporting is not supported"), "{err}");

    let (code, _, err) = output(flume_ng(dir.path(), &["tool", "fcintegritytool"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("'flume-ng tool'") && err.contains("chanctl verify"),
        "{err}"
    );
    let (code, _, err) = output(flume_ng(dir.path(), &["node2"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown or unsupported command 'node2'"),
        "{err}"
    );

    let (code, out, err) = output(flume_ng(dir.path(), &["version"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sluice "), "{out}");

    let (code, out, err) = output(flume_ng(
        dir.path(),
        &[
            "agent",
            "-Xmx20m",
            "-n",
            "a1",
            "--classpath",
            "/opt/x.jar",
            "-f",
            "my file.conf",
            "-Dk=v",
            "--dryrun",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim_end(),
        format!(
            "{} agent -n a1 -f my file.conf -Dk=v",
            env!("CARGO_BIN_EXE_sluice")
        )
    );
    assert!(
        err.contains("ignoring Java option -Xmx20m")
            && err.contains("ignoring --classpath /opt/x.jar"),
        "{err}"
    );

    let (code, _, err) = output({
        let mut c = flume_ng(dir.path(), &["version"]);
        c.env("SLUICE_BIN", dir.path().join("nope"));
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("is not an executable file"), "{err}");
}

/// `flume-ng avro-client -H -p -F -R` into an agent's avro source: every line lands in
/// file_roll with the headers of the properties file; a source that is not there is exit 1.
#[test]
fn avro_client_delivers_lines_with_headers_to_a_running_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let avro_port = free_port();
    let conf = write_conf(
        dir.path(),
        "a.conf",
        &format!(
            "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {avro_port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
"
        ),
    );
    let mut agent = AgentProcess::start(dir.path(), &conf, "a1", false);
    agent.wait_started();
    let lines: Vec<String> = (0..250).map(|i| format!("line {i}")).collect();
    std::fs::write(dir.path().join("events.txt"), lines.join("\r\n") + "\n").expect("events");
    std::fs::write(
        dir.path().join("headers.properties"),
        "# for every event\nhost = web-1\ndc: east\n",
    )
    .expect("headers");
    let (code, _, err) = output(flume_ng(
        dir.path(),
        &[
            "avro-client",
            "-c",
            "conf",
            "-H",
            "127.0.0.1",
            "-p",
            &avro_port.to_string(),
            "-F",
            "events.txt",
            "-R",
            "headers.properties",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("250 event(s) sent"), "{err}");
    let out = dir.path().join("out");
    let expected: Vec<String> = lines
        .iter()
        .map(|l| format!("{{dc=east, host=web-1}} {l}"))
        .collect();
    let mut got = Vec::new();
    let all = wait_until(Duration::from_secs(20), || {
        got = read_dir_lines(&out);
        got.len() >= expected.len()
    });
    assert!(all, "{} of 250 lines:\n{}", got.len(), agent.log());
    assert_eq!(got, expected);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");

    // Now nobody listens there.
    let mut cmd = sluice();
    cmd.current_dir(dir.path()).args([
        "avro-client",
        "-H",
        "127.0.0.1",
        "-p",
        &avro_port.to_string(),
        "-F",
        "events.txt",
    ]);
    let (code, _, err) = output(cmd);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("0 event(s) acknowledged, then: cannot connect to 127.0.0.1:"),
        "{err}"
    );
}

/// An `external` config filter runs a real script with the key as its last argument; its
/// failures (non-zero exit, unknown key) and a hadoop filter are listed by `sluice validate` as
/// `file:line: key: message`.
#[test]
fn an_external_config_filter_runs_a_script_and_validate_names_failures() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("secret.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n# $1 is the key; prints its value or fails\ncase \"$2\" in\n  nc_port) echo \"$1\" ;;\n  *) echo \"no secret named $2\" >&2; exit 4 ;;\nesac\n",
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = free_port();
    let good = format!(
        "\
a1.configfilters = f1
a1.configfilters.f1.type = external
a1.configfilters.f1.command = {} {port}
a1.sources = r1
a1.channels = c1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = ${{f1['nc_port']}}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
",
        script.display()
    );
    let conf = write_conf(dir.path(), "good.conf", &good);
    // The agent really listens on the port the script printed.
    let mut agent = AgentProcess::start(dir.path(), &conf, "a1", false);
    agent.wait_started();
    assert_eq!(Netcat::connect(port).send("hello"), "OK");
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");

    let bad = format!(
        "{good}a1.channels.c1.capacity = ${{f1[\"capacity\"]}}\na1.configfilters = f1 h\na1.configfilters.h.type = hadoop\n"
    );
    let conf = write_conf(dir.path(), "bad.conf", &bad);
    let mut cmd = sluice();
    cmd.args(["validate", "-n", "a1", "-f"]).arg(&conf);
    let (code, out, _) = output(cmd);
    assert_eq!(code, 1, "{out}");
    let file = conf.display();
    let cmdline = format!("{} {port}", script.display());
    assert!(
        out.contains(&format!(
            "{file}:11: a1.channels.c1.capacity: config filter f1 (external) for key capacity: `{cmdline} capacity` exited with status 4: no secret named capacity"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{file}:13: a1.configfilters.h.type: the hadoop credential store filter is not supported"
        )),
        "{out}"
    );
}

/// `-Djavax.net.ssl.keyStore` is the TLS default of a source with `ssl = true` and no
/// `keystore` of its own: validate reads that file (here missing, so it is named).
#[test]
fn javax_net_ssl_defines_are_the_tls_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}a1.sources.r1.ssl = true\n",
        NETCAT_TO_MEMORY
            .replace("netcat", "avro")
            .replace("${sys:nc.port}", "4545")
    );
    let conf = write_conf(dir.path(), "tls.conf", &text);
    let missing = dir.path().join("missing-keystore.p12");
    let mut cmd = sluice();
    cmd.env_remove("FLUME_SSL_KEYSTORE_PATH")
        .args(["validate", "-n", "a1", "-f"])
        .arg(&conf)
        .arg(format!("-Djavax.net.ssl.keyStore={}", missing.display()))
        .arg("-Djavax.net.ssl.keyStorePassword=changeit");
    let (code, out, _) = output(cmd);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "cannot read {}: No such file or directory (os error 2) (keystore from javax.net.ssl.keyStore)",
            missing.display()
        )),
        "{out}"
    );
}
