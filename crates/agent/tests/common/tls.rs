//! Keystores and truststores made by the real tools, `openssl` and Java's `keytool`, never by
//! the code under test: a test CA, server and client certificates signed by it (for
//! `localhost` and 127.0.0.1), as PKCS12 written by `keytool` and as one PEM file with key
//! and chain, a PKCS12 truststore, a JKS keystore, an expired certificate, and a keystore
//! holding only a certificate. A missing tool fails the test with what to install.
//!
//! Each store is made once per [`TestPki`] and file name (asked again, the same file is
//! returned), under a lock, so the tests of one binary can share one CA ([`shared`]) and pay
//! for Java's start-up a few times rather than in every test.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

/// The password of every store made here.
pub const PASSWORD: &str = "changeit";

/// Runs `program` with `args` in `dir`; panics with its output when it fails, and with what
/// to install when it is missing.
pub fn run_tool(dir: &Path, program: &str, args: &[&str]) {
    let out = match Command::new(program).args(args).current_dir(dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed, and the TLS tests need it to make keystores: install \
             openssl and a Java runtime with keytool (Debian: apt-get install openssl \
             default-jre-headless)"
        ),
        Err(e) => panic!("cannot run {program}: {e}"),
    };
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The *ring* provider, for the peers below (built here with rustls directly, not through
/// `agent::tls`, so that a test of a source or sink does not check the agent against itself).
#[allow(deprecated)]
fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration that trusts the CA certificates in the PEM file `ca_pem`
/// (e.g. [`TestPki::ca_pem`]), for talking to a TLS source.
pub fn rustls_client_trusting(ca_pem: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).expect("read CA") {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS server configuration serving the key and chain of the PEM file `keystore_pem` (e.g.
/// [`TestPki::keystore_pem`]), for a sink to connect to.
pub fn rustls_server(keystore_pem: &Path) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(keystore_pem)
        .expect("read keystore")
        .map(|c| c.expect("certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(keystore_pem).expect("private key");
    Arc::new(
        rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config"),
    )
}

/// The CA "Sluice" shared by the tests of one test binary (its directory stays in the
/// target directory's temporary folder). Tests that change files make their own [`TestPki`].
pub fn shared() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::new("Sluice"))
}

/// A second shared CA, "Other", which [`shared`]'s truststore does not trust.
pub fn shared_other() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::new("Other"))
}

/// A certificate authority in a temporary directory, and the stores made from it.
pub struct TestPki {
    dir: tempfile::TempDir,
    /// A name for this CA, so that two CAs differ (for "wrong truststore" tests).
    name: String,
    /// Held while a store is made, so that parallel tests do not make the same file twice.
    making: Mutex<()>,
}

impl TestPki {
    /// A new CA (`openssl req -x509`, RSA 2048, ten years) named `name`.
    pub fn new(name: &str) -> TestPki {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki {
            dir,
            name: name.to_owned(),
            making: Mutex::new(()),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            &format!("/CN={name} Test CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki
    }

    /// The directory the files are in (removed when `self` is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.making.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `file` in the directory, made by `make` unless it exists (under the lock).
    fn once(&self, file: &str, make: impl FnOnce()) -> PathBuf {
        let _making = self.lock();
        let path = self.path(file);
        if !path.exists() {
            make();
        }
        path
    }

    fn openssl(&self, args: &[&str]) {
        run_tool(self.dir.path(), "openssl", args);
    }

    fn keytool(&self, args: &[&str]) {
        run_tool(self.dir.path(), "keytool", args);
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// Signs `csr` with the CA into `out` (PEM) with the SANs localhost and 127.0.0.1.
    fn sign(&self, csr: &str, out: &str, days: &str) {
        let ext = format!("{out}.ext");
        std::fs::write(
            self.path(&ext),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
             extendedKeyUsage=serverAuth,clientAuth\n\
             basicConstraints=CA:FALSE\n",
        )
        .expect("write ext");
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            days,
            "-sha256",
            "-extfile",
            &ext,
            "-out",
            out,
        ]);
    }

    /// A PKCS12 keystore written by `keytool` (its default PBES2/AES encryption): a key pair
    /// made by `keytool -genkeypair`, its request signed by the CA, and the chain imported
    /// back. The certificate's CN is `cn`; `name` names the files (asked again for the same
    /// `name`, the store made the first time is returned).
    pub fn keystore_p12(&self, name: &str, cn: &str) -> PathBuf {
        let store = format!("{name}.p12");
        self.once(&store, || self.make_keystore_p12(&store, name, cn))
    }

    fn make_keystore_p12(&self, store: &str, name: &str, cn: &str) {
        let store = store.to_owned();
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        self.keytool(&[
            "-genkeypair",
            "-storetype",
            "PKCS12",
            "-keystore",
            &store,
            "-storepass",
            PASSWORD,
            "-alias",
            "server",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "365",
            "-dname",
            &format!("CN={cn}"),
        ]);
        self.keytool(&[
            "-certreq",
            "-storetype",
            "PKCS12",
            "-keystore",
            &store,
            "-storepass",
            PASSWORD,
            "-alias",
            "server",
            "-file",
            &csr,
        ]);
        self.sign(&csr, &crt, "365");
        self.keytool(&[
            "-importcert",
            "-storetype",
            "PKCS12",
            "-keystore",
            &store,
            "-storepass",
            PASSWORD,
            "-alias",
            "ca",
            "-file",
            "ca.pem",
            "-noprompt",
        ]);
        self.keytool(&[
            "-importcert",
            "-storetype",
            "PKCS12",
            "-keystore",
            &store,
            "-storepass",
            PASSWORD,
            "-alias",
            "server",
            "-file",
            &crt,
            "-noprompt",
        ]);
    }

    /// One PEM file with an unencrypted EC (P-256) private key, the certificate for `cn`
    /// signed by the CA, and the CA certificate, made by `openssl`.
    pub fn keystore_pem(&self, name: &str, cn: &str) -> PathBuf {
        let pem = format!("{name}.pem");
        self.once(&pem, || self.make_keystore_pem(&pem, name, cn))
    }

    fn make_keystore_pem(&self, pem: &str, name: &str, cn: &str) {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        self.sign(&csr, &crt, "365");
        let mut all = std::fs::read(self.path(&key)).expect("key");
        all.extend(std::fs::read(self.path(&crt)).expect("crt"));
        all.extend(std::fs::read(self.ca_pem()).expect("ca"));
        std::fs::write(self.path(pem), all).expect("write pem");
    }

    /// Like [`TestPki::keystore_pem`], but the key is encrypted with [`PASSWORD`].
    pub fn keystore_pem_encrypted(&self, name: &str) -> PathBuf {
        let plain = format!("{name}-plain");
        self.keystore_pem(&plain, "localhost");
        let pem = format!("{name}.pem");
        self.once(&pem, || {
            let enc_key = format!("{name}.enc.key");
            self.openssl(&[
                "pkey",
                "-in",
                &format!("{plain}.key"),
                "-aes256",
                "-passout",
                &format!("pass:{PASSWORD}"),
                "-out",
                &enc_key,
            ]);
            let mut all = std::fs::read(self.path(&enc_key)).expect("key");
            all.extend(std::fs::read(self.path(&format!("{plain}.crt"))).expect("crt"));
            std::fs::write(self.path(&pem), all).expect("write pem");
        })
    }

    /// A PKCS12 keystore from `openssl pkcs12 -export` (key and certificate of
    /// [`TestPki::keystore_pem`] `name`, which must have been made).
    pub fn keystore_p12_openssl(&self, name: &str) -> PathBuf {
        let out = format!("{name}.openssl.p12");
        self.once(&out, || {
            self.openssl(&[
                "pkcs12",
                "-export",
                "-inkey",
                &format!("{name}.key"),
                "-in",
                &format!("{name}.crt"),
                "-certfile",
                "ca.pem",
                "-passout",
                &format!("pass:{PASSWORD}"),
                "-name",
                "server",
                "-out",
                &out,
            ])
        })
    }

    /// A PKCS12 truststore holding the CA certificate (`keytool -importcert -storetype
    /// PKCS12`). It is also "a keystore holding only a certificate".
    pub fn truststore_p12(&self) -> PathBuf {
        let store = "truststore.p12";
        self.once(store, || {
            self.keytool(&[
                "-importcert",
                "-storetype",
                "PKCS12",
                "-keystore",
                store,
                "-storepass",
                PASSWORD,
                "-alias",
                "ca",
                "-file",
                "ca.pem",
                "-noprompt",
            ])
        })
    }

    /// A Java JKS keystore (`keytool -genkeypair -storetype JKS`).
    pub fn keystore_jks(&self) -> PathBuf {
        let store = "keystore.jks";
        self.once(store, || {
            self.keytool(&[
                "-genkeypair",
                "-storetype",
                "JKS",
                "-keystore",
                store,
                "-storepass",
                PASSWORD,
                "-keypass",
                PASSWORD,
                "-alias",
                "server",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-dname",
                "CN=localhost",
            ])
        })
    }

    /// A PKCS12 keystore whose self-signed certificate expired (valid for one day, ten days
    /// ago: `keytool -startdate -10d -validity 1`).
    pub fn keystore_expired(&self) -> PathBuf {
        let store = "expired.p12";
        self.once(store, || {
            self.keytool(&[
                "-genkeypair",
                "-storetype",
                "PKCS12",
                "-keystore",
                store,
                "-storepass",
                PASSWORD,
                "-alias",
                "server",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-startdate",
                "-10d",
                "-validity",
                "1",
                "-dname",
                "CN=localhost",
            ])
        })
    }

    /// A PKCS12 keystore whose self-signed certificate expires in five days.
    pub fn keystore_expiring_soon(&self) -> PathBuf {
        let store = "expiring.p12";
        self.once(store, || {
            self.keytool(&[
                "-genkeypair",
                "-storetype",
                "PKCS12",
                "-keystore",
                store,
                "-storepass",
                PASSWORD,
                "-alias",
                "server",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-validity",
                "5",
                "-dname",
                "CN=localhost",
            ])
        })
    }

    /// A PKCS12 keystore whose certificate is valid only from ten days on.
    pub fn keystore_not_yet_valid(&self) -> PathBuf {
        let store = "future.p12";
        self.once(store, || {
            self.keytool(&[
                "-genkeypair",
                "-storetype",
                "PKCS12",
                "-keystore",
                store,
                "-storepass",
                PASSWORD,
                "-alias",
                "server",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-startdate",
                "+10d",
                "-validity",
                "30",
                "-dname",
                "CN=localhost",
            ])
        })
    }

    /// A PEM file whose private key belongs to another certificate: the key of `a` with the
    /// certificate of `b` (both made by [`TestPki::keystore_pem`]).
    pub fn keystore_pem_mismatched(&self, a: &str, b: &str) -> PathBuf {
        let mut all = std::fs::read(self.path(&format!("{a}.key"))).expect("key");
        all.extend(std::fs::read(self.path(&format!("{b}.crt"))).expect("crt"));
        let pem = format!("{a}-{b}-mismatch.pem");
        self.once(&pem, || {
            std::fs::write(self.path(&pem), all).expect("write pem")
        })
    }

    /// This CA's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
