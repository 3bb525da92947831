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

fn read(path: &Path) -> Result<(Vec<u8>, Format), TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
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
/// that every certificate of the chain is valid `now`.
pub(crate) fn load_keystore(
    path: &Path,
    password: Option<&str>,
    now: UnixTime,
) -> Result<KeyMaterial, TlsError> {
    let (bytes, format) = read(path)?;
    let material = match format {
        Format::Pkcs12 => keystore_from_pkcs12(path, &bytes, password)?,
        _ => keystore_from_pem(path, &bytes)?,
    };
    for cert in &material.chain {
        check_validity(path, cert, now)?;
    }
    Ok(material)
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
                detail: e.to_string(),
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
            detail: e.to_string(),
        })
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

/// An error unless `cert` is valid at `now`.
fn check_validity(path: &Path, cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), TlsError> {
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
    Ok(())
}
