//! Reading keystores and truststores from disk: PKCS12 (as `keytool` and `openssl pkcs12`
//! write them) and PEM, told apart by the file's content the way Java does it (a PKCS12 file
//! configured as `JKS` is read as PKCS12). Real JKS and JCEKS files are refused with the
//! `keytool` command that converts them, and every certificate of a keystore's chain is
//! checked for its validity dates here, so that a bad keystore stops the agent at start
//! rather than failing the first handshake.

use super::TlsError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::path::Path;

/// The private key and certificate chain (leaf first) of a keystore.
pub(crate) struct KeyMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// When the first certificate of a chain stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// Seconds since the Unix epoch.
    pub not_after_secs: i64,
    /// The certificate's subject.
    pub subject: String,
    /// The date, for people.
    pub not_after: String,
}

/// What a store file holds, judged by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Pkcs12,
    Pem,
    Jks,
    Jceks,
}

/// The store types a `keystore-type` / `truststore-type` key may name. The file's content
/// decides how it is read; the type only has to be one Sluice knows.
pub(crate) const KNOWN_STORE_TYPES: &[&str] = &["JKS", "PKCS12", "PEM", "JCEKS"];

fn sniff(bytes: &[u8]) -> Option<Format> {
    match bytes {
        [0xFE, 0xED, 0xFE, 0xED, ..] => Some(Format::Jks),
        [0xCE, 0xCE, 0xCE, 0xCE, ..] => Some(Format::Jceks),
        // A DER SEQUENCE: the PFX structure of PKCS12.
        [0x30, ..] => Some(Format::Pkcs12),
        _ if contains(bytes, b"-----BEGIN ") => Some(Format::Pem),
        _ => None,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The largest store file read: keystores are a few KiB, a PEM bundle of every public CA a
/// few hundred; anything larger (or a device that never ends) is not a store.
pub(crate) const MAX_STORE_BYTES: u64 = 4 * 1024 * 1024;

fn read(path: &Path) -> Result<(Vec<u8>, Format), TlsError> {
    use std::io::Read;
    let read_error = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_STORE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_STORE_BYTES {
        return Err(TlsError::Malformed {
            path: path.to_owned(),
            detail: format!("larger than {MAX_STORE_BYTES} bytes, which no keystore is"),
        });
    }
    match sniff(&bytes) {
        Some(Format::Jks) => Err(TlsError::JavaKeyStore {
            path: path.to_owned(),
            store_type: "JKS",
        }),
        Some(Format::Jceks) => Err(TlsError::JavaKeyStore {
            path: path.to_owned(),
            store_type: "JCEKS",
        }),
        Some(format) => Ok((bytes, format)),
        None => Err(TlsError::UnknownFormat {
            path: path.to_owned(),
        }),
    }
}

/// Opens a PKCS12 file; without a password, as one written without a password (empty).
fn pkcs12(
    path: &Path,
    bytes: &[u8],
    password: Option<&str>,
) -> Result<p12_keystore::Pkcs12Archive, TlsError> {
    p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password.unwrap_or("")).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) if password.is_none() => {
            TlsError::MissingPassword {
                path: path.to_owned(),
            }
        }
        p12_keystore::error::Error::MacError(_) => TlsError::WrongPassword {
            path: path.to_owned(),
        },
        other => TlsError::Malformed {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    })
}

/// Loads the private key and its certificate chain from the keystore at `path`, checking
/// that every certificate of the chain is valid `now`; also says when the first of them
/// expires.
pub(crate) fn load_keystore(
    path: &Path,
    password: Option<&str>,
    now: UnixTime,
) -> Result<(KeyMaterial, Option<Expiry>), TlsError> {
    let (bytes, format) = read(path)?;
    let material = match format {
        Format::Pkcs12 => keystore_from_pkcs12(path, &bytes, password)?,
        _ => keystore_from_pem(path, &bytes)?,
    };
    let mut first_expiry: Option<Expiry> = None;
    for cert in &material.chain {
        let expiry = check_validity(path, cert, now)?;
        if first_expiry
            .as_ref()
            .is_none_or(|e| expiry.not_after_secs < e.not_after_secs)
        {
            first_expiry = Some(expiry);
        }
    }
    Ok((material, first_expiry))
}

fn keystore_from_pkcs12(
    path: &Path,
    bytes: &[u8],
    password: Option<&str>,
) -> Result<KeyMaterial, TlsError> {
    let archive = pkcs12(path, bytes, password)?;
    // One key and one certificate without ids belong together; otherwise the first key with
    // a certificate of its own (keytool and openssl tie them by localKeyId).
    let only_pair = match (archive.keys.as_slice(), archive.certs.as_slice()) {
        ([k], [c]) => Some((k, c)),
        _ => None,
    };
    let (key, leaf) = archive
        .keys
        .iter()
        .find_map(|k| {
            let id = k.local_key_id.as_ref()?;
            let leaf = archive
                .certs
                .iter()
                .find(|c| c.local_key_id.as_deref() == Some(id.0.as_slice()))?;
            Some((k, leaf))
        })
        .or(only_pair)
        .ok_or(TlsError::NoPrivateKey {
            path: path.to_owned(),
        })?;
    let mut chain = vec![leaf.cert.clone()];
    // Follow the issuers present in the file, without loops.
    let mut current = &leaf.cert;
    while current.issuer() != current.subject() {
        let Some(issuer) = archive
            .certs
            .iter()
            .map(|c| &c.cert)
            .find(|c| c.subject() == current.issuer() && !chain.contains(c))
        else {
            break;
        };
        chain.push(issuer.clone());
        current = issuer;
    }
    Ok(KeyMaterial {
        chain: chain
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        key: PrivateKeyDer::try_from(key.key.as_der().to_vec()).map_err(|e| {
            TlsError::Malformed {
                path: path.to_owned(),
                detail: format!("private key: {e}"),
            }
        })?,
    })
}

fn keystore_from_pem(path: &Path, bytes: &[u8]) -> Result<KeyMaterial, TlsError> {
    if contains(bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(TlsError::EncryptedPemKey {
            path: path.to_owned(),
        });
    }
    let chain = pem_certificates(path, bytes)?;
    let key = match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoPrivateKey {
                path: path.to_owned(),
            })
        }
        Err(e) => {
            return Err(TlsError::Malformed {
                path: path.to_owned(),
                detail: pem_detail(&e),
            })
        }
    };
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(KeyMaterial { chain, key })
}

fn pem_certificates(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Malformed {
            path: path.to_owned(),
            detail: pem_detail(&e),
        })
}

/// A PEM parsing error in words (the library shows markers as byte lists).
fn pem_detail(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section has no \"-----END {}-----\" line (is the file cut short?)",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { line } => format!(
            "malformed PEM line \"{}\"",
            String::from_utf8_lossy(line).trim()
        ),
        Error::Base64Decode(detail) => format!("bad base64 in a PEM section: {detail}"),
        other => other.to_string(),
    }
}

/// Loads every certificate of the truststore at `path`.
pub(crate) fn load_truststore(
    path: &Path,
    password: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (bytes, format) = read(path)?;
    let certs = match format {
        Format::Pkcs12 => pkcs12(path, &bytes, password)?
            .certs
            .iter()
            .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
            .collect(),
        _ => pem_certificates(path, &bytes)?,
    };
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// An error unless `cert` is valid at `now`; when it expires.
fn check_validity(
    path: &Path,
    cert: &CertificateDer<'_>,
    now: UnixTime,
) -> Result<Expiry, TlsError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, parsed) =
        X509Certificate::from_der(cert.as_ref()).map_err(|e| TlsError::Malformed {
            path: path.to_owned(),
            detail: format!("certificate: {e}"),
        })?;
    let validity = parsed.validity();
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let subject = parsed.subject().to_string();
    if now < validity.not_before.timestamp() {
        return Err(TlsError::NotYetValid {
            path: path.to_owned(),
            subject,
            not_before: validity.not_before.to_string(),
        });
    }
    if now > validity.not_after.timestamp() {
        return Err(TlsError::Expired {
            path: path.to_owned(),
            subject,
            not_after: validity.not_after.to_string(),
        });
    }
    Ok(Expiry {
        not_after_secs: validity.not_after.timestamp(),
        subject,
        not_after: validity.not_after.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(
            sniff(&[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]),
            Some(Format::Jks)
        );
        assert_eq!(
            sniff(&[0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2]),
            Some(Format::Jceks)
        );
        assert_eq!(sniff(&[0x30, 0x82, 0x0a, 0x10]), Some(Format::Pkcs12));
        assert_eq!(
            sniff(b"Bag Attributes\n-----BEGIN PRIVATE KEY-----\n"),
            Some(Format::Pem)
        );
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"hello"), None);
    }

    #[test]
    fn a_java_store_is_refused_and_a_huge_file_is_not_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jceks = dir.path().join("old.jceks");
        std::fs::write(&jceks, [0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2]).expect("write");
        let e = load_truststore(&jceks, None)
            .expect_err("jceks")
            .to_string();
        assert!(e.contains("-srcstoretype JCEKS"), "{e}");

        let huge = dir.path().join("huge.pem");
        let f = std::fs::File::create(&huge).expect("create");
        f.set_len(MAX_STORE_BYTES + 1).expect("set_len");
        let e = load_truststore(&huge, None).expect_err("huge").to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn a_cut_pem_file_is_described_in_words() {
        let e = pem_certificates(Path::new("x.pem"), b"-----BEGIN CERTIFICATE-----\nMIIB\n")
            .expect_err("cut")
            .to_string();
        assert!(e.contains("no \"-----END CERTIFICATE-----\" line"), "{e}");
    }
}
