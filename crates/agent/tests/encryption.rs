//! Issue 16 end to end: the real `sluice` binary with a file channel encrypted under a key
//! made by Java's `keytool` (PKCS12), never by the code under test.
//!
//! - Lines sent to a netcat source arrive through the encrypted channel in a file_roll sink,
//!   and no marker body is found in any file under that channel's directories, while the same
//!   lines are found in plain text under an unencrypted channel fed by the same source (so the
//!   scan can find what it looks for).
//! - With events pending, restarting with the key gone from the keystore fails at start-up:
//!   listed in the configuration but absent from the keystore, on the configuration key naming
//!   the alias; no longer listed, from the engine naming the key id and the segment.
//! - Rotation: a new key made active with the old one still listed delivers what the old key
//!   sealed, and what is written next is sealed with the new key.
//!
//! Without `keytool` a test prints `SKIPPED` and passes, unless `SLUICE_REQUIRE_INTEROP` is set
//! (as on CI): then it fails.

mod common;

use common::{free_port, read_dir_lines, sluice, wait_until, write_conf, AgentProcess, Netcat};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const STORE_PASSWORD: &str = "keystore-pass-1";

/// How long a delivery may take before a test gives up.
const DELIVERY: Duration = Duration::from_secs(30);

/// Whether `keytool` runs; without it the test is skipped (printed), or fails when
/// `SLUICE_REQUIRE_INTEROP` is set.
fn keytool_available() -> bool {
    let ok = Command::new("keytool")
        .arg("-help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
            "SLUICE_REQUIRE_INTEROP is set but keytool is not installed (apt-get install default-jre-headless)"
        );
        eprintln!(
            "SKIPPED: this test needs keytool (apt-get install default-jre-headless); set \
             SLUICE_REQUIRE_INTEROP=1 to make a missing keytool a failure"
        );
    }
    ok
}

/// `keytool -genseckey` of a 256-bit AES key `alias` into the PKCS12 keystore `store`.
fn genseckey(dir: &Path, store: &str, alias: &str) {
    let out = Command::new("keytool")
        .args([
            "-genseckey",
            "-alias",
            alias,
            "-keyalg",
            "AES",
            "-keysize",
            "256",
            "-storetype",
            "PKCS12",
            "-keystore",
            store,
            "-storepass",
            STORE_PASSWORD,
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run keytool");
    assert!(
        out.status.success(),
        "keytool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The agent's configuration: a netcat source replicating into `c1` (encrypted with `keys`
/// from `keystore`, `active`) and `c2` (plain); `c1` drained by `c1_sink` (sink lines for
/// `k1`), `c2` by a null sink.
fn conf(port: u16, keystore: &str, keys: &str, active: &str, c1_sink: &str) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1 c2
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = enc/checkpoint
a1.channels.c1.dataDirs = enc/data
a1.channels.c1.encryption.activeKey = {active}
a1.channels.c1.encryption.keyProvider = PKCS12FILE
a1.channels.c1.encryption.keyProvider.keyStoreFile = keys/{keystore}
a1.channels.c1.encryption.keyProvider.keyStorePasswordFile = keys/keystore.password
a1.channels.c1.encryption.keyProvider.keys = {keys}
a1.channels.c2.type = file
a1.channels.c2.checkpointDir = plain/checkpoint
a1.channels.c2.dataDirs = plain/data
a1.sinks.k1.channel = c1
{c1_sink}\
a1.sinks.k2.type = null
a1.sinks.k2.channel = c2
"
    )
}

/// k1 writes what it takes to `out`.
const FILE_ROLL: &str = "\
a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = out
a1.sinks.k1.sink.rollInterval = 0
";

/// k1 sends to a port nobody listens on, so what `c1` holds stays pending.
fn dead_avro_sink() -> String {
    format!(
        "a1.sinks.k1.type = avro\na1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = {}\n",
        free_port()
    )
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let files = files_under(dir);
    assert!(!files.is_empty(), "no files under {}", dir.display());
    files
        .into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).expect("read");
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// Sends `lines`, each acknowledged once durable in both channels.
fn send(port: u16, lines: &[String]) {
    let mut nc = Netcat::connect(port);
    for l in lines {
        assert_eq!(nc.send(l), "OK", "{l}");
    }
}

/// Starts the agent on `conf`, which must fail at start-up: its exit code and stderr.
fn refused_start(dir: &Path, conf: &Path) -> (i32, String) {
    let out = sluice()
        .current_dir(dir)
        .args(["agent", "-n", "a1", "-f"])
        .arg(conf)
        .stdin(Stdio::null())
        .output()
        .expect("run sluice agent");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_encrypted_file_channel_delivers_stores_no_plain_text_and_needs_its_key() {
    if !keytool_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = dir.join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    std::fs::write(
        keys.join("keystore.password"),
        format!("{STORE_PASSWORD}\n"),
    )
    .expect("write");
    genseckey(&keys, "keystore.p12", "key-0");
    // The keystore after the old key is gone: only key-1.
    genseckey(&keys, "new-only.p12", "key-1");
    let port = free_port();
    let out = dir.join("out");

    // 1. Delivered through the encrypted channel; no plain text under it.
    let c = write_conf(
        dir,
        "run1.conf",
        &conf(port, "keystore.p12", "key-0", "key-0", FILE_ROLL),
    );
    let mut agent = AgentProcess::start(dir, &c, "a1", false);
    agent.wait_started();
    let sent: Vec<String> = (0..20).map(|i| format!("MARKER-7f3a-{i:02}")).collect();
    send(port, &sent);
    assert!(
        wait_until(DELIVERY, || read_dir_lines(&out).len() >= sent.len()),
        "not delivered: {:?}\n{}",
        read_dir_lines(&out),
        agent.log()
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(read_dir_lines(&out), sent);
    assert_eq!(
        files_containing(&dir.join("enc"), "MARKER-7f3a"),
        Vec::<PathBuf>::new(),
        "plain text in the encrypted channel"
    );
    assert!(
        !files_containing(&dir.join("plain"), "MARKER-7f3a").is_empty(),
        "the scan finds plain text where it is stored unencrypted"
    );

    // 2. Events left pending in the encrypted channel (its sink cannot deliver).
    let c = write_conf(
        dir,
        "run2.conf",
        &conf(port, "keystore.p12", "key-0", "key-0", &dead_avro_sink()),
    );
    let mut agent = AgentProcess::start(dir, &c, "a1", false);
    agent.wait_started();
    let pending: Vec<String> = (0..5).map(|i| format!("PENDING-9c1e-{i}")).collect();
    send(port, &pending);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(
        files_containing(&dir.join("enc"), "PENDING-9c1e"),
        Vec::<PathBuf>::new()
    );

    // 3a. The key still listed but gone from the keystore: a configuration error on its key.
    let c = write_conf(
        dir,
        "run3a.conf",
        &conf(port, "new-only.p12", "key-0 key-1", "key-1", FILE_ROLL),
    );
    let (code, err) = refused_start(dir, &c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("run3a.conf:15: a1.channels.c1.encryption.keyProvider.keys: the keystore keys/new-only.p12 holds no secret key under the alias \"key-0\""),
        "{err}"
    );
    assert!(err.contains("sluice: agent a1 not started"), "{err}");

    // 3b. The key no longer listed: the engine refuses before replay, naming key id and
    // segment.
    let c = write_conf(
        dir,
        "run3b.conf",
        &conf(port, "new-only.p12", "key-1", "key-1", FILE_ROLL),
    );
    let (code, err) = refused_start(dir, &c);
    assert_eq!(code, 1, "{err}");
    let segment_named = err.lines().any(|l| {
        l.contains("sluice: agent a1 did not start: cannot open channel c1: segment ")
            && l.contains("enc/data")
            && l.contains("holds pending events encrypted with key \"key-0\": no key of that id is configured (listed: key-1)")
    });
    assert!(segment_named, "{err}");
    assert_eq!(
        read_dir_lines(&out),
        sent,
        "nothing delivered by a refused start"
    );

    // 4. Rotation: key-1 added to the keystore and active, key-0 still listed. The pending
    // events (sealed with key-0) are delivered; new ones are sealed with key-1.
    genseckey(&keys, "keystore.p12", "key-1");
    let c = write_conf(
        dir,
        "run4.conf",
        &conf(port, "keystore.p12", "key-0 key-1", "key-1", FILE_ROLL),
    );
    let mut agent = AgentProcess::start(dir, &c, "a1", false);
    agent.wait_started();
    let after: Vec<String> = (0..3).map(|i| format!("ROTATED-55d0-{i}")).collect();
    send(port, &after);
    let total = sent.len() + pending.len() + after.len();
    assert!(
        wait_until(DELIVERY, || read_dir_lines(&out).len() >= total),
        "not delivered: {:?}\n{}",
        read_dir_lines(&out),
        agent.log()
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let mut expected: Vec<String> = sent.clone();
    expected.extend(pending.iter().cloned());
    expected.extend(after.iter().cloned());
    assert_eq!(read_dir_lines(&out), expected);
    for marker in ["MARKER-7f3a", "PENDING-9c1e", "ROTATED-55d0"] {
        assert_eq!(
            files_containing(&dir.join("enc"), marker),
            Vec::<PathBuf>::new(),
            "{marker}"
        );
    }

    // 5. Left pending after the rotation: sealed with key-1.
    let c = write_conf(
        dir,
        "run5.conf",
        &conf(
            port,
            "keystore.p12",
            "key-0 key-1",
            "key-1",
            &dead_avro_sink(),
        ),
    );
    let mut agent = AgentProcess::start(dir, &c, "a1", false);
    agent.wait_started();
    let late: Vec<String> = (0..4).map(|i| format!("LATE-0b7e-{i}")).collect();
    send(port, &late);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");

    // 6. Another key under the id key-1 is told apart from the right one.
    let c = write_conf(
        dir,
        "run6.conf",
        &conf(port, "new-only.p12", "key-1", "key-1", FILE_ROLL),
    );
    let (code, err) = refused_start(dir, &c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("holds pending events encrypted with key \"key-1\": the key configured under that id is another key"),
        "{err}"
    );

    // 7. Once nothing pending needs key-0, it can go: a keystore without it (keytool -delete)
    // and key-1 alone deliver the rest.
    std::fs::copy(keys.join("keystore.p12"), keys.join("retired.p12")).expect("copy");
    let deleted = Command::new("keytool")
        .args([
            "-delete",
            "-alias",
            "key-0",
            "-keystore",
            "retired.p12",
            "-storepass",
            STORE_PASSWORD,
        ])
        .current_dir(&keys)
        .stdin(Stdio::null())
        .output()
        .expect("run keytool");
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let c = write_conf(
        dir,
        "run7.conf",
        &conf(port, "retired.p12", "key-1", "key-1", FILE_ROLL),
    );
    let mut agent = AgentProcess::start(dir, &c, "a1", false);
    agent.wait_started();
    expected.extend(late.iter().cloned());
    assert!(
        wait_until(DELIVERY, || read_dir_lines(&out).len() >= expected.len()),
        "not delivered: {:?}\n{}",
        read_dir_lines(&out),
        agent.log()
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(read_dir_lines(&out), expected);
    assert_eq!(
        files_containing(&dir.join("enc"), "LATE-0b7e"),
        Vec::<PathBuf>::new()
    );
}
