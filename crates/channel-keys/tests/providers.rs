//! The key providers against keys made by the real tools, never by the code under test:
//! PKCS12 keystores written by Java's `keytool -genseckey` (and, where the key's bytes must be
//! known, by Java's own `KeyStore` through `tests/interop/SecretKeystore.java`), a JCEKS
//! keystore by `keytool -storetype JCEKS`, raw key files by `openssl rand` and `python3`.
//!
//! Without `keytool`/`java`/`openssl`/`python3` a test prints `SKIPPED` and passes, unless
//! `SLUICE_REQUIRE_INTEROP` is set (as on CI): then it fails.

use channel_keys::{keyring_from_keystore, keyring_from_properties, KeyConfigError, Keyring};
use file_channel::encryption::DataKey;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The password of every keystore made here.
const STORE_PASSWORD: &str = "storepass-1";

/// Whether `program arg` runs; a missing tool skips the test (printed), or fails it when
/// `SLUICE_REQUIRE_INTEROP` is set.
fn available(program: &str, arg: &str) -> bool {
    let ok = Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
            "SLUICE_REQUIRE_INTEROP is set but `{program}` is not installed \
             (apt-get install default-jre-headless openssl python3)"
        );
        eprintln!(
            "SKIPPED: this test needs `{program}` (apt-get install default-jre-headless openssl \
             python3); set SLUICE_REQUIRE_INTEROP=1 to make a missing tool a failure"
        );
    }
    ok
}

/// Runs `program args` in `dir`, which must succeed.
fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `keytool -genseckey` of `alias` into `store` (PKCS12 unless `store_type` says otherwise).
fn genseckey(dir: &Path, store: &str, store_type: &str, alias: &str, alg: &str, bits: u32) {
    run(
        dir,
        "keytool",
        &[
            "-genseckey",
            "-alias",
            alias,
            "-keyalg",
            alg,
            "-keysize",
            &bits.to_string(),
            "-storetype",
            store_type,
            "-keystore",
            store,
            "-storepass",
            STORE_PASSWORD,
        ],
    );
}

/// The key bytes of the keystore written by Java with a known key.
const KNOWN_KEY: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

/// The keystores every test of this file shares, made once (Java starts slowly).
struct Stores {
    dir: PathBuf,
    /// `storepass-1` and a newline, as `echo` writes it.
    password_file: PathBuf,
    /// key-0, key-1 (AES-256), `Key-2` (AES-256, stored by Java as key-2), hmac (HmacSHA256),
    /// k128 (AES-128).
    main: PathBuf,
    /// key-0 (AES-256) in a JCEKS keystore.
    jceks: PathBuf,
    /// Only keys Sluice cannot use: hmac (HmacSHA256), k128 (AES-128).
    unusable: PathBuf,
    /// `Known-Key` = [`KNOWN_KEY`], written by Java's KeyStore.
    known: PathBuf,
}

fn stores() -> Option<&'static Stores> {
    static STORES: OnceLock<Option<Stores>> = OnceLock::new();
    STORES
        .get_or_init(|| {
            if !available("keytool", "-help") || !available("java", "-version") {
                return None;
            }
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("channel-keys-providers-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let password_file = dir.join("store.password");
            std::fs::write(&password_file, format!("{STORE_PASSWORD}\n")).expect("write");
            for (alias, alg, bits) in [
                ("key-0", "AES", 256),
                ("key-1", "AES", 256),
                ("Key-2", "AES", 256),
                ("hmac", "HmacSHA256", 256),
                ("k128", "AES", 128),
            ] {
                genseckey(&dir, "main.p12", "PKCS12", alias, alg, bits);
            }
            genseckey(&dir, "keys.jceks", "JCEKS", "key-0", "AES", 256);
            genseckey(&dir, "unusable.p12", "PKCS12", "hmac", "HmacSHA256", 256);
            genseckey(&dir, "unusable.p12", "PKCS12", "k128", "AES", 128);
            let hex: String = KNOWN_KEY.iter().map(|b| format!("{b:02x}")).collect();
            let source =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/SecretKeystore.java");
            run(
                &dir,
                "java",
                &[
                    source.to_str().expect("utf8 path"),
                    "known.p12",
                    "Known-Key",
                    STORE_PASSWORD,
                    &hex,
                ],
            );
            Some(Stores {
                main: dir.join("main.p12"),
                jceks: dir.join("keys.jceks"),
                unusable: dir.join("unusable.p12"),
                known: dir.join("known.p12"),
                password_file,
                dir,
            })
        })
        .as_ref()
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf8 path")
}

/// The properties of a PKCS12FILE channel over `keystore` with `keys` and `active`.
fn pkcs12_props(s: &Stores, keystore: &Path, keys: &str, active: &str) -> BTreeMap<String, String> {
    props(&[
        ("type", "file"),
        ("checkpointDir", "/unused"),
        ("encryption.activeKey", active),
        ("encryption.keyProvider", "PKCS12FILE"),
        ("encryption.keyProvider.keyStoreFile", p(keystore)),
        (
            "encryption.keyProvider.keyStorePasswordFile",
            p(&s.password_file),
        ),
        ("encryption.keyProvider.keys", keys),
    ])
}

fn keyring(props: &BTreeMap<String, String>) -> Keyring {
    keyring_from_properties(props)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a keyring")
}

fn refused(props: &BTreeMap<String, String>) -> KeyConfigError {
    match keyring_from_properties(props) {
        Ok(k) => panic!("accepted: {k:?}"),
        Err(e) => e,
    }
}

/// Asserts `e` is about `property` and its message contains every one of `says`.
fn assert_error(e: &KeyConfigError, property: &str, says: &[&str]) {
    assert_eq!(e.property.as_deref(), Some(property), "{e}");
    let m = e.to_string();
    assert!(m.starts_with(&format!("{property}: ")), "{m}");
    for s in says {
        assert!(m.contains(s), "{m:?} does not say {s:?}");
    }
}

fn ids(k: &Keyring) -> Vec<&str> {
    k.ids().collect()
}

#[test]
fn one_key_from_a_keytool_keystore_is_active() {
    let Some(s) = stores() else { return };
    let k = keyring(&pkcs12_props(s, &s.main, "key-0", "key-0"));
    assert_eq!(ids(&k), vec!["key-0"]);
    assert_eq!(k.active().expect("active").0, "key-0");
}

#[test]
fn two_keys_are_both_read_and_differ() {
    let Some(s) = stores() else { return };
    let k = keyring(&pkcs12_props(s, &s.main, "key-0 key-1", "key-1"));
    assert_eq!(ids(&k), vec!["key-0", "key-1"]);
    assert_eq!(k.active().expect("active").0, "key-1");
    assert_ne!(
        k.get("key-0").expect("key-0").check(),
        k.get("key-1").expect("key-1").check()
    );
    // Read again, the same keys.
    let again = keyring(&pkcs12_props(s, &s.main, "key-1 key-0", "key-1"));
    assert_eq!(
        again.get("key-0").expect("key-0").check(),
        k.get("key-0").expect("key-0").check()
    );
}

#[test]
fn the_bytes_read_are_the_key_java_stored() {
    let Some(s) = stores() else { return };
    let k = keyring(&pkcs12_props(s, &s.known, "Known-Key", "KNOWN-key"));
    assert_eq!(ids(&k), vec!["known-key"]);
    let (id, key) = k.active().expect("active");
    assert_eq!(id, "known-key");
    assert_eq!(key.check(), DataKey::new(KNOWN_KEY).check());
}

#[test]
fn aliases_match_ignoring_case_and_ids_are_lower_case() {
    let Some(s) = stores() else { return };
    // keytool was given -alias Key-2 and stored key-2.
    let k = keyring(&pkcs12_props(s, &s.main, "KEY-2 Key-0", "Key-2"));
    assert_eq!(ids(&k), vec!["key-0", "key-2"]);
    assert_eq!(k.active().expect("active").0, "key-2");
}

#[test]
fn a_wrong_keystore_password_names_both_files() {
    let Some(s) = stores() else { return };
    let wrong = s.dir.join("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").expect("write");
    let mut pr = pkcs12_props(s, &s.main, "key-0", "key-0");
    pr.insert(
        "encryption.keyProvider.keyStorePasswordFile".into(),
        p(&wrong).into(),
    );
    let e = refused(&pr);
    assert_error(
        &e,
        "encryption.keyProvider.keyStorePasswordFile",
        &["wrong password", p(&s.main), p(&wrong)],
    );
}

#[test]
fn an_unreadable_password_file_is_named() {
    let Some(s) = stores() else { return };
    let missing = s.dir.join("no-such.password");
    let mut pr = pkcs12_props(s, &s.main, "key-0", "key-0");
    pr.insert(
        "encryption.keyProvider.keyStorePasswordFile".into(),
        p(&missing).into(),
    );
    let e = refused(&pr);
    assert_error(
        &e,
        "encryption.keyProvider.keyStorePasswordFile",
        &["cannot read password file", p(&missing)],
    );
    let empty = s.dir.join("empty.password");
    std::fs::write(&empty, " \n").expect("write");
    pr.insert(
        "encryption.keyProvider.keyStorePasswordFile".into(),
        p(&empty).into(),
    );
    assert_error(
        &refused(&pr),
        "encryption.keyProvider.keyStorePasswordFile",
        &["is empty", p(&empty)],
    );
}

#[test]
fn a_missing_alias_names_it_and_what_the_keystore_holds() {
    let Some(s) = stores() else { return };
    let e = refused(&pkcs12_props(s, &s.main, "key-0 key-9", "key-0"));
    assert_error(
        &e,
        "encryption.keyProvider.keys",
        &[
            "no secret key under the alias \"key-9\"",
            p(&s.main),
            "key-0 (AES-256)",
            "k128 (AES-128)",
            "hmac (HmacSHA256)",
            "ignoring case",
        ],
    );
}

#[test]
fn keys_that_are_not_aes_256_are_refused() {
    let Some(s) = stores() else { return };
    let e = refused(&pkcs12_props(s, &s.main, "key-0 hmac", "key-0"));
    assert_error(
        &e,
        "encryption.keyProvider.keys",
        &["\"hmac\"", "HmacSHA256 key, not AES", "-keysize 256"],
    );
    let e = refused(&pkcs12_props(s, &s.main, "k128", "k128"));
    assert_error(
        &e,
        "encryption.keyProvider.keys",
        &["\"k128\"", "128-bit", "needs a 256-bit key"],
    );
}

#[test]
fn a_jceks_keystore_is_refused_with_the_command_that_converts_it_and_the_command_works() {
    let Some(s) = stores() else { return };
    let e = refused(&pkcs12_props(s, &s.jceks, "key-0", "key-0"));
    assert_error(
        &e,
        "encryption.keyProvider.keyStoreFile",
        &["is a JCEKS keystore", "keytool -importkeystore"],
    );
    // The advice, run as given (passwords added so keytool does not prompt), converts it.
    let m = e.to_string();
    let command = m
        .split('`')
        .nth(1)
        .expect("a command in backquotes")
        .replace("KEYSTORE.p12", "converted.p12");
    let mut args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args.remove(0), "keytool", "{command}");
    args.extend([
        "-srcstorepass",
        STORE_PASSWORD,
        "-deststorepass",
        STORE_PASSWORD,
    ]);
    run(&s.dir, "keytool", &args);
    let k = keyring(&pkcs12_props(
        s,
        &s.dir.join("converted.p12"),
        "key-0",
        "key-0",
    ));
    assert_eq!(ids(&k), vec!["key-0"]);
}

#[test]
fn flumes_jceksfile_provider_is_refused_with_the_command() {
    let Some(s) = stores() else { return };
    let mut pr = pkcs12_props(s, &s.jceks, "key-0", "key-0");
    pr.insert("encryption.keyProvider".into(), "JCEKSFILE".into());
    assert_error(
        &refused(&pr),
        "encryption.keyProvider",
        &[
            "JCEKSFILE is refused",
            "keytool -importkeystore -srckeystore KEYSTORE.jceks -srcstoretype JCEKS -destkeystore KEYSTORE.p12 -deststoretype PKCS12",
            "PKCS12FILE",
        ],
    );
}

#[test]
fn a_key_password_file_falls_back_to_the_keystore_password() {
    let Some(s) = stores() else { return };
    // keytool ignores -keypass for PKCS12: the key is under the keystore password.
    let key_password = s.dir.join("key-0.password");
    std::fs::write(&key_password, "some-other-password\n").expect("write");
    let mut pr = pkcs12_props(s, &s.main, "key-0 key-1", "key-0");
    pr.insert(
        "encryption.keyProvider.keys.key-0.passwordFile".into(),
        p(&key_password).into(),
    );
    pr.insert(
        "encryption.keyProvider.keys.key-1.passwordFile".into(),
        p(&s.password_file).into(),
    );
    let k = keyring(&pr);
    assert_eq!(ids(&k), vec!["key-0", "key-1"]);
    // An unreadable key password file is still an error, on its own key.
    let missing = s.dir.join("missing.password");
    pr.insert(
        "encryption.keyProvider.keys.key-0.passwordFile".into(),
        p(&missing).into(),
    );
    assert_error(
        &refused(&pr),
        "encryption.keyProvider.keys.key-0.passwordFile",
        &["cannot read password file", p(&missing)],
    );
}

#[test]
fn the_active_key_must_be_listed_and_required_keys_present() {
    let Some(s) = stores() else { return };
    assert_error(
        &refused(&pkcs12_props(s, &s.main, "key-0", "key-1")),
        "encryption.activeKey",
        &["\"key-1\" is not listed", "key-0"],
    );
    let mut pr = pkcs12_props(s, &s.main, "key-0", "key-0");
    pr.remove("encryption.keyProvider.keyStoreFile");
    assert_error(
        &refused(&pr),
        "encryption.keyProvider.keyStoreFile",
        &["required"],
    );
    let mut pr = pkcs12_props(s, &s.main, "key-0", "key-0");
    pr.remove("encryption.activeKey");
    assert_error(&refused(&pr), "encryption.activeKey", &["required"]);
    let mut pr = pkcs12_props(s, &s.main, "key-0", "key-0");
    pr.remove("encryption.keyProvider.keys");
    assert_error(&refused(&pr), "encryption.keyProvider.keys", &["required"]);
}

#[test]
fn cipher_provider_defaults_to_aes_256_gcm_and_refuses_aes_ctr() {
    let Some(s) = stores() else { return };
    let mut pr = pkcs12_props(s, &s.main, "key-0", "key-0");
    assert!(!pr.contains_key("encryption.cipherProvider"));
    keyring(&pr);
    pr.insert("encryption.cipherProvider".into(), "aes-256-gcm".into());
    keyring(&pr);
    pr.insert("encryption.cipherProvider".into(), "AESCTRNOPADDING".into());
    assert_error(
        &refused(&pr),
        "encryption.cipherProvider",
        &[
            "AESCTRNOPADDING is refused",
            "unauthenticated",
            "reuses IVs",
            "AES-256-GCM",
        ],
    );
    pr.insert("encryption.cipherProvider".into(), "AES-128-CBC".into());
    assert_error(
        &refused(&pr),
        "encryption.cipherProvider",
        &["unknown cipher provider"],
    );
}

#[test]
fn keyring_from_keystore_reads_every_aes_256_key_and_no_active_one() {
    let Some(s) = stores() else { return };
    let k = keyring_from_keystore(&s.main, &s.password_file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&k), vec!["key-0", "key-1", "key-2"]);
    assert!(k.active().is_none());
    let from_props = keyring(&pkcs12_props(s, &s.main, "key-1", "key-1"));
    assert_eq!(
        k.get("key-1").expect("key-1").check(),
        from_props.get("key-1").expect("key-1").check()
    );
    let e = keyring_from_keystore(&s.unusable, &s.password_file).expect_err("no usable key");
    assert_eq!(e.property, None);
    let m = e.to_string();
    assert!(
        m.contains("holds no 256-bit AES secret key") && m.contains("k128 (AES-128)"),
        "{m}"
    );
    let e = keyring_from_keystore(&s.jceks, &s.password_file).expect_err("jceks");
    assert!(e.to_string().contains("-srcstoretype JCEKS"), "{e}");
}

// ---- raw key files (KEYFILE) ----

/// A directory for key files, made fresh for each test and removed after it.
fn key_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tmp")
}

/// `openssl rand -out FILE N`, then `chmod MODE`.
fn openssl_key(dir: &Path, file: &str, bytes: usize, mode: &str) -> PathBuf {
    run(dir, "openssl", &["rand", "-out", file, &bytes.to_string()]);
    run(dir, "chmod", &[mode, file]);
    dir.join(file)
}

fn key_file_props(keys: &[(&str, &Path)], active: &str) -> BTreeMap<String, String> {
    let mut pr = props(&[
        ("encryption.activeKey", active),
        ("encryption.keyProvider", "KEYFILE"),
    ]);
    pr.insert(
        "encryption.keyProvider.keys".into(),
        keys.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(" "),
    );
    for (alias, path) in keys {
        pr.insert(
            format!("encryption.keyProvider.keys.{alias}.keyFile"),
            p(path).into(),
        );
    }
    pr
}

#[test]
fn a_raw_key_file_of_mode_0600_is_read_byte_for_byte() {
    if !available("openssl", "version") || !available("python3", "--version") {
        return;
    }
    let tmp = key_dir();
    let dir = tmp.path();
    let a = openssl_key(dir, "a.key", 32, "600");
    run(
        dir,
        "python3",
        &[
            "-c",
            "import os; open('b.key', 'wb').write(os.urandom(32)); os.chmod('b.key', 0o400)",
        ],
    );
    let b = dir.join("b.key");
    let k = keyring(&key_file_props(&[("Key-A", &a), ("key-b", &b)], "key-b"));
    assert_eq!(ids(&k), vec!["key-a", "key-b"]);
    assert_eq!(k.active().expect("active").0, "key-b");
    let bytes = |path: &Path| -> [u8; 32] {
        std::fs::read(path)
            .expect("read")
            .try_into()
            .expect("32 bytes")
    };
    assert_eq!(
        k.get("key-a").expect("a").check(),
        DataKey::new(bytes(&a)).check()
    );
    assert_eq!(
        k.get("key-b").expect("b").check(),
        DataKey::new(bytes(&b)).check()
    );
}

#[test]
fn a_raw_key_file_readable_by_others_is_refused_naming_file_and_mode() {
    if !available("openssl", "version") {
        return;
    }
    let tmp = key_dir();
    let dir = tmp.path();
    for (mode, shown) in [
        ("644", "0644"),
        ("640", "0640"),
        ("604", "0604"),
        ("610", "0610"),
    ] {
        let f = openssl_key(dir, &format!("k{mode}.key"), 32, mode);
        let e = refused(&key_file_props(&[("key-0", &f)], "key-0"));
        assert_error(
            &e,
            "encryption.keyProvider.keys.key-0.keyFile",
            &[p(&f), &format!("has mode {shown}"), "chmod 600"],
        );
    }
}

#[test]
fn a_raw_key_file_of_the_wrong_length_is_refused() {
    if !available("openssl", "version") {
        return;
    }
    let tmp = key_dir();
    let dir = tmp.path();
    for n in [1, 16, 31, 33, 4096] {
        let f = openssl_key(dir, &format!("k{n}.key"), n, "600");
        let e = refused(&key_file_props(&[("key-0", &f)], "key-0"));
        assert_error(
            &e,
            "encryption.keyProvider.keys.key-0.keyFile",
            &[p(&f), &format!("holds {n} bytes"), "exactly 32 raw bytes"],
        );
    }
    // A key written as hex text (openssl rand -hex) gets a hint.
    let out = Command::new("openssl")
        .args(["rand", "-hex", "32"])
        .output()
        .expect("openssl");
    let hex = dir.join("hex.key");
    std::fs::write(&hex, &out.stdout).expect("write");
    run(dir, "chmod", &["600", "hex.key"]);
    let e = refused(&key_file_props(&[("key-0", &hex)], "key-0"));
    assert_error(
        &e,
        "encryption.keyProvider.keys.key-0.keyFile",
        &["holds 65 bytes", "looks like hex text"],
    );
}

#[test]
fn keyfile_needs_a_file_for_every_alias_and_refuses_keystore_keys() {
    if !available("openssl", "version") {
        return;
    }
    let tmp = key_dir();
    let dir = tmp.path();
    let a = openssl_key(dir, "a.key", 32, "600");
    let mut pr = key_file_props(&[("key-0", &a)], "key-0");
    pr.insert("encryption.keyProvider.keys".into(), "key-0 key-1".into());
    assert_error(
        &refused(&pr),
        "encryption.keyProvider.keys.key-1.keyFile",
        &["required", "\"key-1\""],
    );
    let mut pr = key_file_props(&[("key-0", &a)], "key-0");
    pr.insert(
        "encryption.keyProvider.keyStoreFile".into(),
        "/k.p12".into(),
    );
    assert_error(
        &refused(&pr),
        "encryption.keyProvider.keyStoreFile",
        &["applies only to encryption.keyProvider = PKCS12FILE, not KEYFILE"],
    );
    let mut pr = key_file_props(&[("key-0", &a)], "key-0");
    pr.insert(
        "encryption.keyProvider.keys.key-0.passwordFile".into(),
        "/p".into(),
    );
    assert_error(
        &refused(&pr),
        "encryption.keyProvider.keys.key-0.passwordFile",
        &["applies only to encryption.keyProvider = PKCS12FILE"],
    );
    let missing = dir.join("missing.key");
    assert_error(
        &refused(&key_file_props(&[("key-0", &missing)], "key-0")),
        "encryption.keyProvider.keys.key-0.keyFile",
        &["cannot read key file", p(&missing)],
    );
}

// ---- properties alone (no files needed) ----

#[test]
fn no_encryption_key_means_no_keyring() {
    let pr = props(&[("type", "file"), ("capacity", "10"), ("encryptionX", "1")]);
    assert!(keyring_from_properties(&pr).expect("ok").is_none());
    assert!(keyring_from_properties(&BTreeMap::new())
        .expect("ok")
        .is_none());
}

#[test]
fn unknown_and_misspelt_encryption_keys_are_refused_by_name() {
    for key in [
        "encryption.activekey",
        "Encryption.activeKey",
        "encryption.keyProvider.keyStorePassword",
        "encryption.keyProvider.keys.key-0.password",
        "encryption",
        "encryption.keyProvider.keys.",
    ] {
        let e = refused(&props(&[(key, "x")]));
        assert_error(&e, key, &["not an encryption key Sluice knows"]);
    }
}

#[test]
fn a_provider_is_required_and_must_be_known() {
    assert_error(
        &refused(&props(&[("encryption.activeKey", "key-0")])),
        "encryption.keyProvider",
        &["required", "PKCS12FILE", "KEYFILE"],
    );
    assert_error(
        &refused(&props(&[
            ("encryption.activeKey", "key-0"),
            ("encryption.keyProvider", "VAULT"),
        ])),
        "encryption.keyProvider",
        &["unknown key provider \"VAULT\""],
    );
    assert_error(
        &refused(&props(&[
            ("encryption.activeKey", "key-0"),
            (
                "encryption.keyProvider",
                "org.apache.flume.channel.file.encryption.JCEFileKeyProvider",
            ),
        ])),
        "encryption.keyProvider",
        &["-srcstoretype JCEKS"],
    );
}

#[test]
fn aliases_are_checked_before_any_file_is_read() {
    let base = |keys: &str, active: &str| {
        props(&[
            ("encryption.activeKey", active),
            ("encryption.keyProvider", "KEYFILE"),
            ("encryption.keyProvider.keys", keys),
        ])
    };
    assert_error(
        &refused(&base("key-0 KEY-0", "key-0")),
        "encryption.keyProvider.keys",
        &["twice"],
    );
    assert_error(
        &refused(&base("   ", "key-0")),
        "encryption.keyProvider.keys",
        &["must not be empty"],
    );
    let mut pr = base("key-0", "key-0");
    pr.insert(
        "encryption.keyProvider.keys.key-7.keyFile".into(),
        "/k".into(),
    );
    assert_error(
        &refused(&pr),
        "encryption.keyProvider.keys.key-7.keyFile",
        &["\"key-7\", which is not listed"],
    );
}
