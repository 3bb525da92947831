//! TLS on every network hop, checked with independent TLS stacks against the real `sluice`
//! binary on 127.0.0.1 (issue 15, "Must show"):
//!
//! - keystores and truststores come from `openssl` and Java's `keytool`, never from the code
//!   under test;
//! - independent clients get through: `curl --cacert` and a single-file Java (JSSE) client post
//!   JSON to the http source, `openssl s_client` completes verified handshakes with the avro,
//!   thrift, syslogtcp and multiport_syslogtcp ports (and delivers a syslog line), thriftpy2 over
//!   Python's `ssl` sends batches to the thrift source;
//! - the avro hop and the thrift hop (sink → source, two agents) deliver over TLS;
//! - what must fail does: plaintext clients on TLS ports get no event in, clients offering only
//!   TLS 1.1 are refused by the server (not by their own library), and a sink that does not
//!   trust the server's certificate delivers nothing, keeps every event in its channel and,
//!   once given the right truststore, delivers each exactly once.
//!
//! The peers (openssl, keytool, java, curl, python3 with pip) are on CI's machine (`.ci/run`
//! installs them and sets `SLUICE_REQUIRE_INTEROP=1`, which makes a missing one a failure);
//! elsewhere a test whose peer is missing prints `SKIPPED` and passes.

mod common;

use agent::avro_event::wire_batch;
use avro_ipc::client::{AvroClient, ClientSettings};
use common::python::run_python;
use common::tls::PASSWORD;
use common::{free_port, read_dir_lines, wait_until, write_conf, AgentProcess, Netcat};
use file_channel::Event;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const THRIFTPY2: &str = "thriftpy2==0.7.1";

/// How long a delivery may take before a test gives up.
const DELIVERY: Duration = Duration::from_secs(30);

fn interop(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/tls")
        .join(file)
}

/// Whether every tool in `tools` is installed (each `(program, argument)` run once and
/// exiting 0).
/// Without one the test prints `SKIPPED` and returns, unless `SLUICE_REQUIRE_INTEROP` is set
/// (as `.ci/run` does after installing them): then it fails.
fn peers_available(tools: &[(&str, &str)]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(tool, arg)| {
            !Command::new(tool)
                .arg(arg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|(tool, _)| *tool)
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
        "SLUICE_REQUIRE_INTEROP is set but {missing:?} are not installed \
         (apt-get install openssl curl default-jre-headless)"
    );
    eprintln!(
        "SKIPPED: this TLS interop test needs {missing:?} (apt-get install openssl curl \
         default-jre-headless); set SLUICE_REQUIRE_INTEROP=1 to make a missing peer a failure"
    );
    false
}

const OPENSSL: (&str, &str) = ("openssl", "version");
const KEYTOOL: (&str, &str) = ("keytool", "-help");
const CURL: (&str, &str) = ("curl", "--version");
const JAVA: (&str, &str) = ("java", "-version");
const PYTHON: (&str, &str) = ("python3", "--version");

/// Runs `cmd` without input and returns its output, whatever its status.
fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `timeout 60 PROGRAM`: no peer can hang a test.
fn tool(program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.arg("60").arg(program);
    c
}

/// The stores the tests use, made by `openssl` and `keytool` (`common::tls`, one CA shared by
/// the tests of this file): the CA, the server's key and certificate (for `localhost` and
/// `127.0.0.1`, signed by the CA) as a PKCS12 keystore written by `keytool` (RSA) and as one
/// PEM file (EC P-256, openssl), a PKCS12 truststore holding the CA (`keytool -importcert`),
/// and the truststore of a second, unrelated CA: the wrong one for this server.
struct Pki {
    ca_pem: PathBuf,
    keystore_p12: PathBuf,
    keystore_pem: PathBuf,
    truststore_p12: PathBuf,
    wrong_truststore_p12: PathBuf,
}

impl Pki {
    fn make() -> Self {
        let ca = common::tls::shared();
        Self {
            ca_pem: ca.ca_pem(),
            keystore_p12: ca.keystore_p12("interop-server", "localhost"),
            keystore_pem: ca.keystore_pem("interop-server-pem", "localhost"),
            truststore_p12: ca.truststore_p12(),
            wrong_truststore_p12: common::tls::shared_other().truststore_p12(),
        }
    }

    /// A source's TLS keys with the PKCS12 keystore.
    fn source_p12(&self, prefix: &str) -> String {
        format!(
            "{prefix}.ssl = true\n\
             {prefix}.keystore = {}\n\
             {prefix}.keystore-password = {PASSWORD}\n\
             {prefix}.keystore-type = PKCS12\n",
            self.keystore_p12.display()
        )
    }

    /// A source's TLS keys with the PEM keystore (key and chain in one file, no password).
    fn source_pem(&self, prefix: &str) -> String {
        format!(
            "{prefix}.ssl = true\n\
             {prefix}.keystore = {}\n\
             {prefix}.keystore-type = PEM\n",
            self.keystore_pem.display()
        )
    }

    /// A sink's TLS keys trusting `truststore` (a keytool PKCS12 truststore).
    fn sink(&self, prefix: &str, truststore: &Path) -> String {
        format!(
            "{prefix}.ssl = true\n\
             {prefix}.truststore = {}\n\
             {prefix}.truststore-password = {PASSWORD}\n\
             {prefix}.truststore-type = PKCS12\n",
            truststore.display()
        )
    }
}

/// A memory channel drained by file_roll (headers and body) into `out/`.
fn channel_and_output(agent: &str) -> String {
    format!(
        "\
{agent}.channels = c1
{agent}.sinks = out
{agent}.channels.c1.type = memory
{agent}.channels.c1.capacity = 10000
{agent}.channels.c1.transactionCapacity = 1000
{agent}.sinks.out.type = file_roll
{agent}.sinks.out.channel = c1
{agent}.sinks.out.sink.directory = out
{agent}.sinks.out.sink.rollInterval = 0
{agent}.sinks.out.sink.batchSize = 1
{agent}.sinks.out.sink.serializer = header_and_text
"
    )
}

fn start(dir: &Path, name: &str, conf: &str) -> AgentProcess {
    let path = write_conf(dir, &format!("{name}.conf"), conf);
    let mut agent = AgentProcess::start(dir, &path, name, true);
    agent.wait_started();
    agent
}

/// Waits until `dir` holds at least `n` lines; returns them.
fn wait_lines(dir: &Path, n: usize, agent: &AgentProcess) -> Vec<String> {
    let ok = wait_until(DELIVERY, || read_dir_lines(dir).len() >= n);
    assert!(
        ok,
        "only {:?} of {n} lines delivered; log:\n{}",
        read_dir_lines(dir),
        agent.log()
    );
    read_dir_lines(dir)
}

/// An http source with TLS (PKCS12 keystore) feeding file_roll.
fn http_agent(dir: &Path, pki: &Pki, port: u16) -> AgentProcess {
    let conf = format!(
        "\
h1.sources = r1
h1.sources.r1.type = http
h1.sources.r1.bind = 127.0.0.1
h1.sources.r1.port = {port}
h1.sources.r1.channels = c1
{}{}",
        pki.source_p12("h1.sources.r1"),
        channel_and_output("h1")
    );
    start(dir, "h1", &conf)
}

/// `[{"headers":{"via":VIA},"body":"VIA-i"}, …]` for `i` in `0..n`.
fn json_events(via: &str, n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"headers":{{"via":"{via}"}},"body":"{via}-{i}"}}"#))
        .collect();
    format!("[{}]", events.join(","))
}

fn expected_lines(via: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{{via={via}}} {via}-{i}")).collect()
}

/// `curl -sS ARGS… -d BODY URL`: (exit status, stdout, stderr). `-w %{http_code}` prints the
/// status (000 when no HTTP answer came).
fn curl(args: &[&str], body: &str, url: &str) -> (Option<i32>, String, String) {
    let out = run(tool("curl")
        .args(["-sS", "-v", "--max-time", "20", "-o", "/dev/null"])
        .args(["-w", "%{http_code}", "-H", "Content-Type: application/json"])
        .args(args)
        .args(["--data-binary", body, url]));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_posts_to_the_https_source_and_plaintext_or_tls_1_1_gets_nothing_in() {
    if !peers_available(&[OPENSSL, KEYTOOL, CURL]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::make();
    let port = free_port();
    let agent = http_agent(tmp.path(), &pki, port);
    let url = format!("https://127.0.0.1:{port}/");
    let ca = pki.ca_pem.to_str().expect("utf-8 path");

    // Refused first, so that the delivery below proves the refused events never got in.
    let (code, stdout, stderr) = curl(
        &[],
        &json_events("plain", 2),
        &format!("http://127.0.0.1:{port}/"),
    );
    assert!(
        code != Some(0) || stdout != "200",
        "a plaintext POST to the TLS port was answered 200:\n{stderr}"
    );
    // curl on OpenSSL 3 offers TLS 1.1 only at security level 0: without it curl would refuse
    // on its own, and the server would never be asked.
    let (code, stdout, stderr) = curl(
        &[
            "--cacert",
            ca,
            "--tlsv1.1",
            "--tls-max",
            "1.1",
            "--ciphers",
            "DEFAULT@SECLEVEL=0",
        ],
        &json_events("tls11", 2),
        &url,
    );
    assert_eq!(
        code,
        Some(35),
        "TLS 1.1 only: expected a handshake failure (35):\n{stderr}"
    );
    assert_eq!(stdout, "000");
    // The hello went out as TLS 1.1 and the server answered it with an alert (rustls sends
    // handshake_failure: it has no protocol in common with the client).
    assert!(
        stderr.contains("TLSv1.1 (OUT), TLS handshake, Client hello")
            && stderr.contains("(IN), TLS alert"),
        "the server should refuse the TLS 1.1 hello with an alert:\n{stderr}"
    );
    // Without the CA curl refuses the server: the certificate is not from a public CA.
    let (code, _, stderr) = curl(&[], &json_events("untrusted", 1), &url);
    assert_eq!(
        code,
        Some(60),
        "curl without --cacert should not trust the server:\n{stderr}"
    );

    let (code, stdout, stderr) = curl(&["--cacert", ca], &json_events("curl", 5), &url);
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "200"),
        "{stderr}\n{}",
        agent.log()
    );
    assert!(
        stderr.contains("SSL connection using TLSv1.3")
            || stderr.contains("SSL connection using TLSv1.2"),
        "{stderr}"
    );
    let lines = wait_lines(&tmp.path().join("out"), 5, &agent);
    assert_eq!(lines, expected_lines("curl", 5));
    let m = agent.metrics();
    assert_eq!(m["SOURCE.r1"]["EventAcceptedCount"], "5", "{m}");
    // The plaintext request and the TLS 1.1 hello were refused by the server, and counted.
    assert!(
        agent.counter("SOURCE.r1", "TlsHandshakeFailedCount") >= 2,
        "{m}"
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn a_java_jsse_client_posts_to_the_https_source_with_a_keytool_truststore() {
    if !peers_available(&[OPENSSL, KEYTOOL, JAVA]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::make();
    let port = free_port();
    let agent = http_agent(tmp.path(), &pki, port);
    let body = tmp.path().join("body.json");
    std::fs::write(&body, json_events("java", 4)).expect("write body");
    let java = |truststore: &Path| {
        run(tool("java")
            .arg(interop("Client.java"))
            .arg(format!("https://127.0.0.1:{port}/"))
            .arg(truststore)
            .args([PASSWORD, "PKCS12"])
            .arg(&body))
    };

    // A truststore with another CA: JSSE refuses the server, nothing is posted.
    let refused = java(&pki.wrong_truststore_p12);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("SSLHandshakeException"), "{stderr}");

    let out = java(&pki.truststore_p12);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log()
    );
    let mut answer = stdout.lines();
    assert_eq!(answer.next(), Some("status 200"), "{stdout}");
    let protocol = answer.next().unwrap_or_default();
    assert!(
        protocol == "protocol TLSv1.3" || protocol == "protocol TLSv1.2",
        "{stdout}"
    );
    let lines = wait_lines(&tmp.path().join("out"), 4, &agent);
    assert_eq!(lines, expected_lines("java", 4));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

/// `openssl s_client` against `port`, verifying the chain against the CA and the certificate
/// against the IP address, with `extra` arguments and `input` on stdin: (success, all output).
fn s_client(pki: &Pki, port: u16, extra: &[&str], input: &[u8]) -> (bool, String) {
    let mut child = tool("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .arg("-CAfile")
        .arg(&pki.ca_pem)
        .args([
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-servername",
            "localhost",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write to s_client");
    drop(stdin);
    let out = child.wait_with_output().expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The handshake completed, the chain verified, and TLS 1.2 or 1.3 was agreed.
fn assert_verified_handshake(what: &str, ok: bool, text: &str) {
    assert!(ok, "{what}: s_client failed:\n{text}");
    assert!(
        text.contains("Verify return code: 0 (ok)"),
        "{what}: the chain did not verify:\n{text}"
    );
    assert!(
        text.contains("New, TLSv1.3, Cipher is") || text.contains("New, TLSv1.2, Cipher is"),
        "{what}: no TLS 1.2/1.3 session:\n{text}"
    );
}

/// Offering TLS 1.1 only (at security level 0, so that OpenSSL 3 really offers it) is refused
/// by the server with an alert (rustls answers handshake_failure: no protocol in common);
/// offering TLS 1.2 the same way is not, so the refusal is the server's.
fn assert_tls_1_1_refused(what: &str, pki: &Pki, port: u16) {
    let (ok, text) = s_client(
        pki,
        port,
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
        b"",
    );
    assert!(!ok, "{what}: a TLS 1.1 handshake succeeded:\n{text}");
    assert!(
        text.contains("Protocol  : TLSv1.1")
            && text.contains("Cipher is (NONE)")
            && text.contains("SSL alert number"),
        "{what}: expected the server's alert to a TLS 1.1 hello:\n{text}"
    );
    let (ok, text) = s_client(
        pki,
        port,
        &["-tls1_2", "-cipher", "DEFAULT@SECLEVEL=0"],
        b"",
    );
    assert_verified_handshake(&format!("{what} (TLS 1.2 control)"), ok, &text);
}

/// Writes `bytes` on a plain TCP connection to `port`; returns whether the server closed the
/// connection within 10 s (a TLS server closes on bytes that are not a TLS record).
fn plaintext_closed(port: u16, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn openssl_s_client_handshakes_with_the_avro_thrift_and_syslog_tls_ports() {
    if !peers_available(&[OPENSSL, KEYTOOL]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::make();
    let (avro, thrift, syslog, multi_a, multi_b) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let conf = format!(
        "\
s1.sources = avro thrift syslog multi
s1.sources.avro.type = avro
s1.sources.avro.bind = 127.0.0.1
s1.sources.avro.port = {avro}
s1.sources.avro.channels = c1
{}s1.sources.thrift.type = thrift
s1.sources.thrift.bind = 127.0.0.1
s1.sources.thrift.port = {thrift}
s1.sources.thrift.channels = c1
{}s1.sources.syslog.type = syslogtcp
s1.sources.syslog.host = 127.0.0.1
s1.sources.syslog.port = {syslog}
s1.sources.syslog.channels = c1
{}s1.sources.multi.type = multiport_syslogtcp
s1.sources.multi.host = 127.0.0.1
s1.sources.multi.ports = {multi_a} {multi_b}
s1.sources.multi.channels = c1
{}{}",
        pki.source_p12("s1.sources.avro"),
        pki.source_pem("s1.sources.thrift"),
        pki.source_pem("s1.sources.syslog"),
        pki.source_p12("s1.sources.multi"),
        channel_and_output("s1"),
    );
    let agent = start(tmp.path(), "s1", &conf);
    let out = tmp.path().join("out");

    for (what, port) in [
        ("avro", avro),
        ("thrift", thrift),
        ("syslogtcp", syslog),
        ("multiport_syslogtcp, first port", multi_a),
        ("multiport_syslogtcp, second port", multi_b),
    ] {
        let (ok, text) = s_client(&pki, port, &[], b"");
        assert_verified_handshake(what, ok, &text);
        assert_tls_1_1_refused(what, &pki, port);
    }

    // A plaintext Avro client on the avro TLS port: its call is not answered, nothing gets in.
    let mut plain = AvroClient::connect(&ClientSettings {
        hostname: "127.0.0.1".into(),
        port: avro,
        connect_timeout_ms: 5000,
        request_timeout_ms: 10_000,
        deflate_level: None,
    })
    .expect("the TCP connection itself is accepted");
    let answer = plain.append_batch(&wire_batch(&[Event::new("plain-avro")]));
    assert!(
        answer.is_err(),
        "a plaintext avro call was answered: {answer:?}"
    );

    // Syslog lines sent in plaintext to the TLS ports get nowhere; the same lines over TLS
    // (s_client as the client, each line then end of input) are delivered.
    for port in [syslog, multi_a, multi_b] {
        let line = format!("<13>Dec  6 14:00:00 host plain-{port}\n");
        assert!(
            plaintext_closed(port, line.as_bytes()),
            "the TLS port {port} kept a plaintext client open"
        );
    }
    for port in [syslog, multi_a, multi_b] {
        let line = format!("<13>Dec  6 14:00:00 host tls-{port}\n");
        let (ok, text) = s_client(&pki, port, &["-quiet", "-no_ign_eof"], line.as_bytes());
        assert!(ok, "sending a syslog line over TLS to {port}:\n{text}");
    }
    wait_lines(&out, 3, &agent);
    // file_roll writes one event at a time, in order: let anything that got in arrive.
    std::thread::sleep(Duration::from_millis(500));
    let bodies: BTreeSet<String> = read_dir_lines(&out)
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
        .collect();
    let want: BTreeSet<String> = [syslog, multi_a, multi_b]
        .iter()
        .map(|p| format!("tls-{p}"))
        .collect();
    assert_eq!(bodies, want, "{:?}", read_dir_lines(&out));
    // Each TLS 1.1 hello, and each plaintext client, was a failed handshake.
    for (source, failed) in [("avro", 2), ("thrift", 1), ("syslog", 2), ("multi", 4)] {
        let counted = wait_until(DELIVERY, || {
            agent.counter(&format!("SOURCE.{source}"), "TlsHandshakeFailedCount") >= failed
        });
        assert!(counted, "{source}: {}", agent.metrics());
    }
    let m = agent.metrics();
    assert_eq!(m["SOURCE.avro"]["EventAcceptedCount"], "0", "{m}");
    assert_eq!(m["SOURCE.thrift"]["EventAcceptedCount"], "0", "{m}");
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn thriftpy2_over_python_ssl_sends_batches_to_the_thrift_source() {
    if !peers_available(&[OPENSSL, KEYTOOL, PYTHON]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::make();
    let port = free_port();
    let conf = format!(
        "\
t1.sources = r1
t1.sources.r1.type = thrift
t1.sources.r1.bind = 127.0.0.1
t1.sources.r1.port = {port}
t1.sources.r1.protocol = compact
t1.sources.r1.channels = c1
{}{}",
        pki.source_p12("t1.sources.r1"),
        channel_and_output("t1")
    );
    let agent = start(tmp.path(), "t1", &conf);
    let ca = pki.ca_pem.to_str().expect("utf-8 path");
    let port_arg = port.to_string();

    // The plaintext client of the thrift interop tests, against the TLS port: refused.
    let plain = run_python(
        &[THRIFTPY2],
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/thrift_client.py"),
        &[
            "--port",
            &port_arg,
            "--protocol",
            "compact",
            "--batches",
            "1",
            "--tag",
            "plain",
        ],
    );
    assert!(
        !plain.status.success(),
        "a plaintext thrift client got through:\n{}",
        String::from_utf8_lossy(&plain.stdout)
    );

    let out = run_python(
        &[THRIFTPY2],
        &interop("thrift_tls_client.py"),
        &[
            "--port",
            &port_arg,
            "--cafile",
            ca,
            "--batches",
            "3",
            "--batch-size",
            "10",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log()
    );
    let mut answer = stdout.lines();
    let tls = answer.next().unwrap_or_default();
    assert!(tls == "tls TLSv1.3" || tls == "tls TLSv1.2", "{stdout}");
    assert_eq!(
        answer.collect::<Vec<_>>(),
        ["appendBatch OK"; 3],
        "{stdout}"
    );
    let lines = wait_lines(&tmp.path().join("out"), 30, &agent);
    let want: Vec<String> = (0..30)
        .map(|i| format!("{{tag=pytls, seq={i}}} pytls-{i}"))
        .collect();
    assert_eq!(lines, want);
    let m = agent.metrics();
    assert_eq!(m["SOURCE.r1"]["EventAcceptedCount"], "30", "{m}");
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

/// The downstream tier: an avro source and a thrift source, both TLS, into file_roll.
fn downstream_conf(pki: &Pki, avro: u16, thrift: u16) -> String {
    format!(
        "\
d1.sources = avro thrift
d1.sources.avro.type = avro
d1.sources.avro.bind = 127.0.0.1
d1.sources.avro.port = {avro}
d1.sources.avro.channels = c1
{}d1.sources.thrift.type = thrift
d1.sources.thrift.bind = 127.0.0.1
d1.sources.thrift.port = {thrift}
d1.sources.thrift.channels = c1
{}{}",
        pki.source_p12("d1.sources.avro"),
        pki.source_pem("d1.sources.thrift"),
        channel_and_output("d1")
    )
}

/// The upstream tier: netcat → durable file channel → `kind` sink (avro or thrift) to
/// 127.0.0.1:`port` over TLS, trusting `truststore`.
fn upstream_conf(pki: &Pki, kind: &str, netcat: u16, port: u16, truststore: &Path) -> String {
    format!(
        "\
u1.sources = r1
u1.channels = c1
u1.sinks = k1
u1.sources.r1.type = netcat
u1.sources.r1.bind = 127.0.0.1
u1.sources.r1.port = {netcat}
u1.sources.r1.channels = c1
u1.sources.r1.interceptors = hop
u1.sources.r1.interceptors.hop.type = static
u1.sources.r1.interceptors.hop.key = hop
u1.sources.r1.interceptors.hop.value = {kind}
u1.channels.c1.type = file
u1.channels.c1.checkpointDir = up/checkpoint
u1.channels.c1.dataDirs = up/data
u1.sinks.k1.type = {kind}
u1.sinks.k1.channel = c1
u1.sinks.k1.hostname = 127.0.0.1
u1.sinks.k1.port = {port}
u1.sinks.k1.batch-size = 10
{}",
        pki.sink("u1.sinks.k1", truststore)
    )
}

#[test]
fn the_avro_hop_and_the_thrift_hop_deliver_over_tls() {
    if !peers_available(&[OPENSSL, KEYTOOL]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::make();
    let (avro, thrift) = (free_port(), free_port());
    let down_dir = tmp.path().join("down");
    std::fs::create_dir_all(&down_dir).expect("down dir");
    let down = start(&down_dir, "d1", &downstream_conf(&pki, avro, thrift));
    let mut ups = Vec::new();
    for (kind, port) in [("avro", avro), ("thrift", thrift)] {
        let dir = tmp.path().join(kind);
        std::fs::create_dir_all(&dir).expect("up dir");
        let netcat = free_port();
        let up = start(
            &dir,
            "u1",
            &upstream_conf(&pki, kind, netcat, port, &pki.truststore_p12),
        );
        let mut nc = Netcat::connect(netcat);
        for i in 0..25 {
            assert_eq!(nc.send(&format!("{kind}-{i:02}")), "OK");
        }
        ups.push(up);
    }
    let lines = wait_lines(&down_dir.join("out"), 50, &down);
    let got: BTreeSet<String> = lines.iter().cloned().collect();
    let want: BTreeSet<String> = ["avro", "thrift"]
        .iter()
        .flat_map(|kind| (0..25).map(move |i| format!("{{hop={kind}}} {kind}-{i:02}")))
        .collect();
    assert_eq!(lines.len(), 50, "{lines:?}");
    assert_eq!(got, want);
    for up in ups {
        assert_eq!(up.counter("SINK.k1", "EventDrainSuccessCount"), 25);
        let (status, log) = up.terminate();
        assert!(status.success(), "{log}");
    }
    let m = down.metrics();
    assert_eq!(m["SOURCE.avro"]["EventAcceptedCount"], "25", "{m}");
    assert_eq!(m["SOURCE.thrift"]["EventAcceptedCount"], "25", "{m}");
    let (status, log) = down.terminate();
    assert!(status.success(), "{log}");
}

/// A sink whose truststore holds another CA refuses the server: nothing is delivered or
/// acknowledged, every event stays in its durable channel; restarted with the right truststore
/// on the same channel, it delivers every event exactly once.
fn wrong_truststore_keeps_the_events(kind: &str) {
    if !peers_available(&[OPENSSL, KEYTOOL]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::make();
    let (avro, thrift) = (free_port(), free_port());
    let port = if kind == "avro" { avro } else { thrift };
    let down_dir = tmp.path().join("down");
    let up_dir = tmp.path().join("up");
    std::fs::create_dir_all(&down_dir).expect("down dir");
    std::fs::create_dir_all(&up_dir).expect("up dir");
    let down = start(&down_dir, "d1", &downstream_conf(&pki, avro, thrift));
    let netcat = free_port();
    let up = start(
        &up_dir,
        "u1",
        &upstream_conf(&pki, kind, netcat, port, &pki.wrong_truststore_p12),
    );
    let mut nc = Netcat::connect(netcat);
    for i in 0..30 {
        assert_eq!(nc.send(&format!("{kind}-{i:02}")), "OK");
    }
    drop(nc);
    // Two refused attempts: the sink has tried, failed, backed off and tried again.
    let tried = wait_until(DELIVERY, || {
        up.counter("SINK.k1", "ConnectionFailedCount") >= 2
    });
    assert!(tried, "{}\n{}", up.metrics(), up.log());
    assert_eq!(up.counter("SINK.k1", "EventDrainSuccessCount"), 0);
    assert_eq!(up.counter("CHANNEL.c1", "ChannelSize"), 30);
    let source = if kind == "avro" {
        "SOURCE.avro"
    } else {
        "SOURCE.thrift"
    };
    assert_eq!(down.counter(source, "EventAcceptedCount"), 0);
    assert!(read_dir_lines(&down_dir.join("out")).is_empty());
    let (status, log) = up.terminate();
    assert!(status.success(), "{log}");
    // The reason is the certificate, said in the log with the peer.
    assert!(
        log.contains(&format!("TLS handshake with 127.0.0.1:{port} failed"))
            && log.contains("UnknownIssuer"),
        "{log}"
    );

    // The same channel, now trusting the server's CA.
    let up = start(
        &up_dir,
        "u1",
        &upstream_conf(&pki, kind, netcat, port, &pki.truststore_p12),
    );
    let lines = wait_lines(&down_dir.join("out"), 30, &down);
    let want: Vec<String> = (0..30)
        .map(|i| format!("{{hop={kind}}} {kind}-{i:02}"))
        .collect();
    assert_eq!(lines, want, "every event exactly once, in order");
    assert!(wait_until(DELIVERY, || up
        .counter("CHANNEL.c1", "ChannelSize")
        == 0));
    let (status, log) = up.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(read_dir_lines(&down_dir.join("out")).len(), 30);
    let (status, log) = down.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn an_avro_sink_with_the_wrong_truststore_keeps_its_events() {
    wrong_truststore_keeps_the_events("avro");
}

#[test]
fn a_thrift_sink_with_the_wrong_truststore_keeps_its_events() {
    wrong_truststore_keeps_the_events("thrift");
}
