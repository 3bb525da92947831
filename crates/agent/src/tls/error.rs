//! [`TlsError`]: why a keystore, truststore or TLS setting cannot be used. One error type
//! for the whole `tls` module (store reading, protocol choices, building the rustls configs),
//! kept apart so that every part can name it without depending on the others.

use std::path::PathBuf;

/// Why a keystore, truststore or TLS setting cannot be used. Messages name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A Java JKS or JCEKS keystore, which only Java reads.
    #[error(
        "{} is a Java {store_type} keystore, which Sluice cannot read; convert it to PKCS12 with: \
         keytool -importkeystore -srckeystore {} -srcstoretype {store_type} -destkeystore {}.p12 -deststoretype PKCS12",
        path.display(), path.display(), path.display()
    )]
    JavaKeyStore {
        /// The file.
        path: PathBuf,
        /// `JKS` or `JCEKS`.
        store_type: &'static str,
    },
    /// Neither PKCS12 nor PEM.
    #[error("{} is neither a PKCS12 file nor PEM text", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The PKCS12 integrity check failed: the password is wrong (or the file damaged).
    #[error("wrong password for {} (or the file is damaged)", path.display())]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// A PKCS12 file needs its password, and none is set.
    #[error("{} is a PKCS12 file, which needs its password, and none is set", path.display())]
    MissingPassword {
        /// The file.
        path: PathBuf,
    },
    /// The file's structure or a certificate or key in it cannot be decoded.
    #[error("{} cannot be decoded: {detail}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A PEM private key protected by a passphrase.
    #[error(
        "{} holds an encrypted private key, which Sluice does not read; store it unencrypted \
         (e.g. `openssl pkey -in key.pem -out plain.pem`) with tight file permissions, or use PKCS12",
        path.display()
    )]
    EncryptedPemKey {
        /// The file.
        path: PathBuf,
    },
    /// A keystore without a private key (for example a truststore given as keystore).
    #[error("{} holds no private key with its certificate", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A store without a certificate.
    #[error("{} holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key in {} does not match its certificate", path.display())]
    KeyMismatch {
        /// The file.
        path: PathBuf,
    },
    /// The private key cannot be used by rustls.
    #[error("the private key in {} cannot be used: {detail}", path.display())]
    UnusableKey {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A certificate whose validity ended.
    #[error("the certificate \"{subject}\" in {} expired on {not_after}", path.display())]
    Expired {
        /// The file.
        path: PathBuf,
        /// The certificate's subject.
        subject: String,
        /// When it expired.
        not_after: String,
    },
    /// A certificate whose validity has not begun.
    #[error("the certificate \"{subject}\" in {} is not valid before {not_before}", path.display())]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// The certificate's subject.
        subject: String,
        /// When it becomes valid.
        not_before: String,
    },
    /// A protocol or cipher-suite key that leaves nothing usable.
    #[error("{key}: {msg}")]
    Choice {
        /// The key.
        key: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// No truststore and no CA certificate on this system.
    #[error("no truststore is set and the system's CA certificates cannot be loaded: {detail}")]
    NoSystemRoots {
        /// Why.
        detail: String,
    },
    /// A host name that cannot be checked against a certificate.
    #[error("\"{host}\" is not a valid DNS name or IP address for TLS")]
    InvalidServerName {
        /// The host.
        host: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}
