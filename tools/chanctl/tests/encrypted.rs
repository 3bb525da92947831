//! `chanctl` on an encrypted channel, with keys made where users make them: a PKCS12 keystore
//! from `keytool -genseckey`. `verify` is clean without keys (structure and checksums) and
//! authenticates every record with them; `dump` and `replay --data` show bodies only with keys
//! (given as a keystore, or as the agent's `--conf`), and without them say which key, never
//! ciphertext; tampering and a wrong key are reported naming key and segment; `stat` lists the
//! keys pending events use; `repair` needs none.
//!
//! `keytool` (Java) is on CI's machine (`.ci/run` sets `SLUICE_REQUIRE_INTEROP=1`, which makes
//! a missing one a failure); elsewhere the tests print `SKIPPED` and pass without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{chanctl, on};
use file_channel::format::record::{FLAG_ENCRYPTED, RECORD_HEADER_BYTES};
use file_channel::format::segment_header::SEGMENT_HEADER_BYTES;
use file_channel::{ChannelConfig, Event, FileChannel};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

const PASSWORD: &str = "store-pass-4e1";
const MARKER: &str = "Body-Marker-7c2e";

/// Whether keytool runs; without it the test is skipped, or fails under
/// `SLUICE_REQUIRE_INTEROP`.
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
            "SKIPPED: this test needs keytool (apt-get install default-jre-headless); set SLUICE_REQUIRE_INTEROP=1 to make its absence a failure"
        );
    }
    ok
}

/// A PKCS12 keystore with one AES-256 key `alias`, made by keytool, and its password file.
fn keystore(dir: &Path, name: &str, alias: &str) -> (PathBuf, PathBuf) {
    let ks = dir.join(format!("{name}.p12"));
    let out = Command::new("timeout")
        .args(["60", "keytool", "-genseckey", "-alias", alias])
        .args(["-keyalg", "AES", "-keysize", "256", "-storetype", "PKCS12"])
        .arg("-keystore")
        .arg(&ks)
        .args(["-storepass", PASSWORD])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keytool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pw = dir.join(format!("{name}.password"));
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (ks, pw)
}

/// A channel in `dir` with 30 transactions of 5 events sealed with `key-0` of `ks`, over
/// several segments; the first 12 events taken.
fn channel(dir: &Path, ks: &Path, pw: &Path) {
    let mut ring = channel_keys::keyring_from_keystore(ks, pw).unwrap();
    ring.set_active("key-0").unwrap();
    let mut c = ChannelConfig::new(dir);
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4096;
    c.minimum_required_space = 0;
    c.keyring = Some(Arc::new(ring));
    let ch = FileChannel::open(c).unwrap();
    for t in 0..30 {
        let mut tx = ch.transaction();
        for e in 0..5 {
            tx.put(&Event::new(format!("{MARKER}-{t}-{e}")).with_header("t", t.to_string()))
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut tx = ch.transaction();
    for _ in 0..12 {
        tx.take().unwrap().unwrap();
    }
    tx.commit().unwrap();
    ch.close().unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    chan: PathBuf,
    ks: String,
    pw: String,
    conf: String,
}

impl Fixture {
    fn keys(&self) -> Vec<&str> {
        vec!["--keystore", &self.ks, "--keystore-password-file", &self.pw]
    }

    fn conf(&self) -> Vec<&str> {
        vec!["--conf", &self.conf, "--name", "a1", "--channel", "c1"]
    }
}

fn fixture() -> Option<Fixture> {
    if !keytool_available() {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ks, pw) = keystore(tmp.path(), "keys", "key-0");
    let chan = tmp.path().join("chan");
    channel(&chan, &ks, &pw);
    let conf = tmp.path().join("agent.conf");
    std::fs::write(
        &conf,
        format!(
            "a1.sources = s1\na1.channels = c1\na1.sinks = k1\n\
             a1.channels.c1.type = file\n\
             a1.channels.c1.checkpointDir = {chan}\n\
             a1.channels.c1.encryption.activeKey = key-0\n\
             a1.channels.c1.encryption.keyProvider = PKCS12FILE\n\
             a1.channels.c1.encryption.keyProvider.keyStoreFile = {ks}\n\
             a1.channels.c1.encryption.keyProvider.keyStorePasswordFile = {pw}\n\
             a1.channels.c1.encryption.keyProvider.keys = key-0\n",
            chan = chan.display(),
            ks = ks.display(),
            pw = pw.display()
        ),
    )
    .unwrap();
    Some(Fixture {
        ks: ks.to_str().unwrap().to_owned(),
        pw: pw.to_str().unwrap().to_owned(),
        conf: conf.to_str().unwrap().to_owned(),
        chan,
        _tmp: tmp,
    })
}

#[test]
fn verify_is_clean_without_keys_and_authenticates_every_record_with_them() {
    let Some(f) = fixture() else { return };
    let bare = on("verify", &f.chan, &["--json"]);
    assert_eq!(bare.code, 0, "{}", bare.stdout);
    let e = &bare.json()["encryption"];
    assert_eq!(e["records"], 30);
    assert_eq!(e["authenticated"], 0);
    assert_eq!(e["keys_given"], false);
    assert_eq!(e["keys"][0]["key_id"], "key-0");
    let text = on("verify", &f.chan, &[]);
    assert!(
        text.stdout.contains("not authenticated: no keys given"),
        "{}",
        text.stdout
    );

    for keys in [f.keys(), f.conf()] {
        let mut args = vec!["--json"];
        args.extend(keys);
        let r = on("verify", &f.chan, &args);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let e = &r.json()["encryption"];
        assert_eq!(e["authenticated"], 30, "{e}");
        assert_eq!(e["findings"].as_array().unwrap().len(), 0);
    }
}

#[test]
fn dump_and_replay_show_bodies_with_keys_and_only_the_key_id_without() {
    let Some(f) = fixture() else { return };
    // Without keys: every put record names its key; no body, no ciphertext read as events.
    let bare = on("dump", &f.chan, &["--data"]);
    assert_eq!(bare.code, 0);
    assert!(!bare.stdout.contains(MARKER), "{}", bare.stdout);
    assert!(bare.stdout.contains("encrypted, key \"key-0\""));
    assert!(bare.stdout.contains("not shown"));
    let lines = on("dump", &f.chan, &["--data", "--json"]).json_lines();
    let puts: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "record" && l["kind"] == "put")
        .collect();
    assert_eq!(puts.len(), 30);
    for p in &puts {
        assert_eq!(p["encrypted"], true);
        assert_eq!(p["seal"]["key_id"], "key-0");
        assert!(p["data"].get("events").is_none(), "{p}");
        assert!(p["data"]["sealed"].as_str().unwrap().contains("key-0"));
    }

    // With the keystore, or the agent's configuration: the bodies.
    for keys in [f.keys(), f.conf()] {
        let mut args = vec!["--data"];
        args.extend(keys.iter().copied());
        let r = on("dump", &f.chan, &args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.contains(&format!("\"{MARKER}-0-0\"")),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains(&format!("\"{MARKER}-29-4\"")));
        assert_eq!(r.stdout.matches("authenticated").count(), 30);

        let mut args = vec!["--data", "--limit", "4"];
        args.extend(keys.iter().copied());
        let r = on("replay", &f.chan, &args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        // 12 were taken: the next a reader gets is the 13th (transaction 2, event 2).
        let shown: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("seq "))
            .collect();
        assert_eq!(shown.len(), 4, "{}", r.stdout);
        assert!(
            shown[0].contains(&format!("\"{MARKER}-2-2\"")),
            "{}",
            shown[0]
        );
        assert!(
            shown[3].contains(&format!("\"{MARKER}-3-0\"")),
            "{}",
            shown[3]
        );
    }
    let r = on("replay", &f.chan, &["--data", "--json"]);
    let events = r.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 150 - 12);
    assert!(events.iter().all(|e| e["key_id"] == "key-0"
        && e.get("body_base64").is_none()
        && e["sealed"].as_str().unwrap().contains("no keys were given")));
    assert!(!r.stdout.contains(MARKER));
}

#[test]
fn tampering_and_a_wrong_key_are_reported_naming_key_and_segment() {
    let Some(f) = fixture() else { return };
    // Another keystore with another key under the same alias.
    let dir = f.chan.parent().unwrap();
    let (other, other_pw) = keystore(dir, "other", "key-0");
    let r = on(
        "verify",
        &f.chan,
        &[
            "--json",
            "--keystore",
            other.to_str().unwrap(),
            "--keystore-password-file",
            other_pw.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(v["corrupt"].as_array().unwrap().len(), 0, "not damage");
    let findings = v["encryption"]["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    assert!(findings
        .iter()
        .all(|x| x["kind"] == "wrong_key" && x["key_id"] == "key-0" && x["segment"].is_u64()));

    // Flip a ciphertext byte of the newest segment's first put and recompute its checksum.
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&f.chan)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    let seg = segs.last().unwrap();
    let mut b = std::fs::read(seg).unwrap();
    let at = SEGMENT_HEADER_BYTES;
    assert_eq!((b[at + 8], b[at + 9]), (1, FLAG_ENCRYPTED), "a sealed put");
    let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    assert!(len > RECORD_HEADER_BYTES + 40);
    b[at + len - 20] ^= 0x04;
    let mut h = crc32fast::Hasher::new();
    h.update(&b[24..32]);
    h.update(&b[at + 8..at + len]);
    b[at + 4..at + 8].copy_from_slice(&h.finalize().to_le_bytes());
    std::fs::write(seg, &b).unwrap();

    assert_eq!(
        on("verify", &f.chan, &[]).code,
        0,
        "a valid record without keys"
    );
    let mut args = vec!["--json"];
    args.extend(f.keys());
    let r = on("verify", &f.chan, &args);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(v["corrupt"].as_array().unwrap().len(), 0, "not damage");
    let findings = v["encryption"]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["kind"], "tampered");
    assert_eq!(findings[0]["offset"], at as u64);
    assert_eq!(findings[0]["file"], seg.to_str().unwrap());
    let text = on("verify", &f.chan, &f.keys());
    assert!(
        text.stdout.contains("tampered with, not media damage"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("result: ENCRYPTION PROBLEM"));
    // Dump says so on the record, and shows the others.
    let d = on("dump", &f.chan, &f.keys());
    assert!(d.stdout.contains("NOT OPENED"), "{}", d.stdout);

    // Repair needs no key and leaves the record alone.
    let r = on("repair", &f.chan, &["--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read(seg).unwrap(), b);
}

#[test]
fn stat_lists_the_keys_pending_events_use_without_a_key() {
    let Some(f) = fixture() else { return };
    let r = on("stat", &f.chan, &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let keys = v["keys"]["referenced"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["key_id"], "key-0");
    assert_eq!(keys[0]["pending_events"], 150 - 12);
    assert_eq!(v["pending_events"], 150 - 12);
    let text = on("stat", &f.chan, &[]);
    assert!(
        text.stdout.contains("\"key-0\": 138 pending event(s)"),
        "{}",
        text.stdout
    );
}

#[test]
fn key_options_are_checked() {
    let Some(f) = fixture() else { return };
    // The channel named must exist in the file.
    let r = on(
        "verify",
        &f.chan,
        &["--conf", &f.conf, "--name", "a1", "--channel", "c9"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no channel \"c9\""), "{}", r.stderr);
    // A wrong password is an error naming the keystore, not a verify without keys.
    let dir = f.chan.parent().unwrap();
    let bad = dir.join("bad.password");
    std::fs::write(&bad, "nope\n").unwrap();
    let r = on(
        "dump",
        &f.chan,
        &[
            "--keystore",
            &f.ks,
            "--keystore-password-file",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains(&f.ks), "{}", r.stderr);
    // --keystore needs its password file; --conf needs --name and --channel.
    assert_eq!(
        chanctl(&["verify", f.chan.to_str().unwrap(), "--keystore", &f.ks]).code,
        2
    );
    assert_eq!(
        chanctl(&["verify", f.chan.to_str().unwrap(), "--conf", &f.conf]).code,
        2
    );
}
