//! Issue 15, point 1: a key with a security or durability meaning in Flume (`ssl`,
//! `keystore*`, `truststore*`, `kerberos*`, `*-principal`, `*-keytab`, `encryption.*`,
//! `security.protocol`, `sasl.*`) that Sluice does not honour is a configuration error, never a
//! warning (issue 16: a file channel honours `encryption.*`; its Flume-only values are refused). Each fail-open case is run through the real `sluice` binary twice: `sluice validate`
//! must exit 1 naming `file:line: key`, and `sluice agent` must refuse to start with the same.
//!
//! The http and syslog sources gain TLS in parallel work; their literal `ssl = true` cases
//! (without a keystore) must fail either way, so they accept an error on `ssl` or on `keystore`.
//! Every other case uses a key the TLS work does not read.

mod common;

use common::{free_port, sluice, write_conf};
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const FILE: &str = "fc.conf";

/// Flume 1.9's agent-wide TLS defaults (issue 15 point 3): unset for the child, so that
/// `ssl = true` without a keystore cannot pick one up from the environment the tests run in.
const FLUME_SSL_ENV: [&str; 6] = [
    "FLUME_SSL_KEYSTORE_PATH",
    "FLUME_SSL_KEYSTORE_PASSWORD",
    "FLUME_SSL_KEYSTORE_TYPE",
    "FLUME_SSL_TRUSTSTORE_PATH",
    "FLUME_SSL_TRUSTSTORE_PASSWORD",
    "FLUME_SSL_TRUSTSTORE_TYPE",
];

/// The binary, run in `dir` without the agent-wide TLS defaults.
fn sluice_in(dir: &Path) -> std::process::Command {
    let mut c = sluice();
    c.current_dir(dir);
    for name in FLUME_SSL_ENV {
        c.env_remove(name);
    }
    c
}

/// The channel and sink every case shares; sources are added by each case.
fn conf(sources: &str, extra: &str) -> String {
    format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         {sources}a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
         {extra}"
    )
}

fn netcat() -> String {
    format!(
        "a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {}\n",
        free_port()
    )
}

fn http() -> String {
    format!(
        "a1.sources.r1.type = http\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {}\n",
        free_port()
    )
}

fn syslogtcp() -> String {
    format!(
        "a1.sources.r1.type = syslogtcp\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.port = {}\n",
        free_port()
    )
}

fn multiport_syslogtcp() -> String {
    format!(
        "a1.sources.r1.type = multiport_syslogtcp\na1.sources.r1.host = 127.0.0.1\n\
         a1.sources.r1.ports = {} {}\n",
        free_port(),
        free_port()
    )
}

/// The 1-based line of `key` (the full key) in `text`.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.split('=').next().map(str::trim) == Some(key))
        .unwrap_or_else(|| panic!("{key} is not in\n{text}"))
        + 1
}

/// `sluice validate -n a1 -f fc.conf` in `dir`: exit status and stdout.
fn validate(dir: &Path) -> (i32, String) {
    let out = sluice_in(dir)
        .args(["validate", "-n", "a1", "-f", FILE])
        .output()
        .expect("run sluice validate");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf8"),
    )
}

/// `sluice agent -n a1 -f fc.conf` in `dir`, which must exit on its own: its exit status and
/// stderr. An agent still running after a minute started although it should not have: it is
/// killed and the test fails.
fn run_agent(dir: &Path) -> (i32, String) {
    let mut child = sluice_in(dir)
        .args(["agent", "-n", "a1", "-f", FILE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice agent");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).expect("read stderr");
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().expect("kill");
            child.wait().expect("reap");
            panic!(
                "sluice agent started although the configuration asks for a security feature it ignores; its log:\n{}",
                reader.join().expect("reader")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = reader.join().expect("reader");
    (status.code().unwrap_or(-1), err)
}

/// Asserts that both `sluice validate` and `sluice agent` refuse `text` with an error located
/// at one of `expected` (`(line, full key)`), whose message contains `says`.
fn assert_refused_at(text: &str, expected: &[(Option<usize>, &str)], says: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    write_conf(tmp.path(), FILE, text);
    let located = |output: &str| -> bool {
        output.lines().any(|l| {
            expected.iter().any(|(line, key)| {
                let Some(rest) = l.strip_prefix(&format!("{FILE}:")) else {
                    return false;
                };
                let Some((n, rest)) = rest.split_once(": ") else {
                    return false;
                };
                let line_ok = match line {
                    Some(line) => n == line.to_string(),
                    None => n.parse::<usize>().is_ok(),
                };
                line_ok && rest.starts_with(&format!("{key}: ")) && l.contains(says)
            })
        })
    };

    let (code, out) = validate(tmp.path());
    assert_eq!(code, 1, "sluice validate accepted\n{text}\nit said:\n{out}");
    assert!(
        located(&out),
        "sluice validate did not name {expected:?} with \"{says}\":\n{out}"
    );

    let (code, err) = run_agent(tmp.path());
    assert_ne!(code, 0, "sluice agent exited 0:\n{err}");
    assert!(
        located(&err),
        "sluice agent did not name {expected:?} with \"{says}\":\n{err}"
    );
    assert!(err.contains("sluice: agent a1 not started"), "{err}");
}

/// Asserts the refusal is on `key`'s own line.
fn assert_refused(text: &str, key: &str, says: &str) {
    let line = line_of(text, key);
    assert_refused_at(text, &[(Some(line), key)], says);
}

const SECURITY_MEANING: &str = "has a security meaning in Flume";

#[test]
fn http_source_kerberos_is_refused() {
    let text = conf(&http(), "a1.sources.r1.kerberos = true\n");
    assert_refused(&text, "a1.sources.r1.kerberos", SECURITY_MEANING);
}

/// The literal case. Before TLS on the http source it is refused as a key the source
/// does not read; after, as `ssl` without a keystore. Either way it is refused, on `ssl` or
/// `keystore`.
#[test]
fn http_source_ssl_true_without_keystore_is_refused() {
    let text = conf(&http(), "a1.sources.r1.ssl = true\n");
    let ssl_line = line_of(&text, "a1.sources.r1.ssl");
    assert_refused_at(
        &text,
        &[
            (Some(ssl_line), "a1.sources.r1.ssl"),
            (None, "a1.sources.r1.keystore"),
        ],
        "",
    );
}

#[test]
fn syslogtcp_ssl_true_without_keystore_is_refused() {
    let text = conf(&syslogtcp(), "a1.sources.r1.ssl = true\n");
    let ssl_line = line_of(&text, "a1.sources.r1.ssl");
    assert_refused_at(
        &text,
        &[
            (Some(ssl_line), "a1.sources.r1.ssl"),
            (None, "a1.sources.r1.keystore"),
        ],
        "",
    );
}

#[test]
fn multiport_syslogtcp_ssl_true_without_keystore_is_refused() {
    let text = conf(&multiport_syslogtcp(), "a1.sources.r1.ssl = true\n");
    let ssl_line = line_of(&text, "a1.sources.r1.ssl");
    assert_refused_at(
        &text,
        &[
            (Some(ssl_line), "a1.sources.r1.ssl"),
            (None, "a1.sources.r1.keystore"),
        ],
        "",
    );
}

#[test]
fn syslog_sources_kerberos_principals_and_keytabs_are_refused() {
    let text = conf(
        &syslogtcp(),
        "a1.sources.r1.agent-principal = flume/host@EXAMPLE.COM\n",
    );
    assert_refused(&text, "a1.sources.r1.agent-principal", SECURITY_MEANING);
    let text = conf(
        &multiport_syslogtcp(),
        "a1.sources.r1.agent-keytab = /etc/flume.keytab\n",
    );
    assert_refused(&text, "a1.sources.r1.agent-keytab", SECURITY_MEANING);
}

/// Encryption at rest is the file channel's: anywhere else an `encryption.*` key is refused.
#[test]
fn encryption_keys_off_a_file_channel_are_refused() {
    for (key, value) in [
        ("encryption.activeKey", "key-0"),
        ("encryption.keyProvider", "PKCS12FILE"),
        ("encryption.keyProvider.keyStoreFile", "/etc/flume/keys.p12"),
    ] {
        let text = conf(&netcat(), &format!("a1.channels.c1.{key} = {value}\n"));
        assert_refused(
            &text,
            &format!("a1.channels.c1.{key}"),
            "but memory channel c1 does not read it",
        );
    }
    let text = conf(&netcat(), "a1.sinks.k1.encryption.activeKey = key-0\n");
    assert_refused(
        &text,
        "a1.sinks.k1.encryption.activeKey",
        "encryption at rest is a file channel's",
    );
}

/// On a file channel the `encryption.*` keys are read; Flume's unauthenticated cipher, its
/// JCEKS provider and a key without a provider are refused, each on its key.
#[test]
fn file_channel_encryption_mistakes_are_refused() {
    for (key, value, error_key, own_line, says) in [
        (
            "encryption.cipherProvider",
            "AESCTRNOPADDING",
            "encryption.cipherProvider",
            true,
            "AESCTRNOPADDING is refused: AES-CTR without padding is unauthenticated",
        ),
        (
            "encryption.keyProvider",
            "JCEKSFILE",
            "encryption.keyProvider",
            true,
            "-srcstoretype JCEKS -destkeystore KEYSTORE.p12 -deststoretype PKCS12",
        ),
        (
            "encryption.keyProvider.keyStoreFile",
            "/etc/flume/keys.jceks",
            "encryption.keyProvider",
            false,
            "required when any encryption key is set",
        ),
        (
            "encryption.activeKey",
            "key-0",
            "encryption.keyProvider",
            false,
            "required when any encryption key is set",
        ),
    ] {
        let text = conf(&netcat(), "").replace(
            "a1.channels.c1.type = memory\n",
            &format!(
                "a1.channels.c1.type = file\na1.channels.c1.checkpointDir = cp\n\
                 a1.channels.c1.dataDirs = data\na1.channels.c1.{key} = {value}\n"
            ),
        );
        let full = format!("a1.channels.c1.{error_key}");
        let line = own_line.then(|| line_of(&text, &full));
        assert_refused_at(&text, &[(line, &full)], says);
    }
}

#[test]
fn netcat_keystore_is_refused() {
    let text = conf(&netcat(), "a1.sources.r1.keystore = /etc/flume/ks.p12\n");
    assert_refused(&text, "a1.sources.r1.keystore", SECURITY_MEANING);
}

#[test]
fn kerberos_principal_and_keytab_on_a_sink_are_refused() {
    let text = conf(
        &netcat(),
        "a1.sinks.k1.kerberosPrincipal = flume@EXAMPLE.COM\n",
    );
    assert_refused(&text, "a1.sinks.k1.kerberosPrincipal", SECURITY_MEANING);
    let text = conf(&netcat(), "a1.sinks.k1.client-keytab = /etc/flume.keytab\n");
    assert_refused(&text, "a1.sinks.k1.client-keytab", SECURITY_MEANING);
}

fn kafka_sink(extra: &str) -> String {
    conf(&netcat(), "").replace(
        "a1.sinks.k1.type = null\n",
        &format!(
            "a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
             a1.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:9\na1.sinks.k1.kafka.topic = t\n{extra}"
        ),
    )
}

/// librdkafka's own names for security settings are not Kafka's: never passed on unexamined,
/// and a Kafka security key without the protocol that uses it is refused rather than ignored.
#[test]
fn kafka_security_keys_are_mapped_or_refused_never_passed_through() {
    for (key, says) in [
        (
            "kafka.producer.sasl.mechanism = PLAIN",
            "has no effect unless kafka.producer.security.protocol is SASL_PLAINTEXT",
        ),
        (
            "kafka.producer.sasl.username = flume",
            "security keys are never passed on unexamined",
        ),
        (
            "kafka.producer.ssl.ca.location = /etc/ca.pem",
            "security keys are never passed on unexamined",
        ),
    ] {
        let text = kafka_sink(&format!("a1.sinks.k1.{key}\n"));
        let name = key.split(" = ").next().expect("key");
        assert_refused(&text, &format!("a1.sinks.k1.{name}"), says);
    }
}

/// SASL_SSL without a mechanism asks for Kafka's default, GSSAPI: refused on the mechanism's
/// key; `PLAINTEXT` still validates.
#[test]
fn kafka_sasl_without_mechanism_is_refused_and_plaintext_validates() {
    let text = kafka_sink("a1.sinks.k1.kafka.producer.security.protocol = SASL_SSL\n");
    assert_refused_at(
        &text,
        &[(None, "a1.sinks.k1.kafka.producer.sasl.mechanism")],
        "GSSAPI (Kerberos)",
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let text = kafka_sink("a1.sinks.k1.kafka.producer.security.protocol = PLAINTEXT\n");
    write_conf(tmp.path(), FILE, &text);
    let (code, out) = validate(tmp.path());
    assert_eq!(code, 0, "{out}");
}

#[test]
fn agent_level_ssl_is_refused() {
    let text = conf(&netcat(), "a1.ssl = true\n");
    assert_refused(&text, "a1.ssl", "agent a1 does not read it");
}

/// A switch set to `false` asks for nothing: the configuration loads, with the ordinary
/// warning where no component reads the key.
/// A guard against refusing too much (it passes on main too).
#[test]
fn switches_set_to_false_ask_for_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = conf(
        &netcat(),
        "a1.sources.r1.ssl = false\na1.sources.r1.kerberos = FALSE\n",
    );
    write_conf(tmp.path(), FILE, &text);
    let (code, out) = validate(tmp.path());
    assert_eq!(code, 0, "{out}");
    let ssl_line = line_of(&text, "a1.sources.r1.ssl");
    assert!(
        out.contains(&format!(
            "{FILE}:{ssl_line}: warning: a1.sources.r1.ssl: unknown key for netcat source r1; it is ignored"
        )),
        "{out}"
    );
}
