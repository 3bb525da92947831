//! Where an HDFS sink's files go: [`DestinationUri`] (the scheme and root of `hdfs.path`) and
//! the [`Destination`] a finished file is published to.
//!
//! A local destination (`file://`) is written in place: the in-use file lives in the target
//! directory and is renamed when it rolls (the sink does that, see `dest::local` in the
//! sink). Object storage is staged: the file is written to a local staging file that survives
//! a crash, and [`Destination::publish`] uploads it when it rolls.

use s3::S3Settings;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

pub mod local;
pub mod s3;

/// The schemes `hdfs.path` may use, for messages.
pub const SUPPORTED_SCHEMES: &str = "file://, s3://, s3a://";

/// The scheme and root of `hdfs.path`; the rest of the path (with escapes) follows the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationUri {
    /// `file:///dir/...`: the root is `/`.
    Local {
        /// The absolute path before the first escape's directory (or `/`).
        root: PathBuf,
    },
    /// `s3://bucket/...` or `s3a://bucket/...`.
    S3 {
        /// The bucket.
        bucket: String,
    },
}

impl DestinationUri {
    /// Parses `hdfs.path` (a template: escapes may follow the scheme's fixed part). Errors say
    /// what is wrong and name the supported schemes.
    pub fn parse(path: &str) -> Result<Self, String> {
        let path = path.trim();
        let Some((scheme, rest)) = path.split_once("://") else {
            return Err(format!(
                "\"{path}\" has no scheme: Flume writes such a path to Hadoop's default \
                 filesystem (fs.defaultFS, usually HDFS), which is not supported; write \
                 file://{} for a local disk or s3://BUCKET/... for object storage (supported \
                 schemes: {SUPPORTED_SCHEMES})",
                if path.starts_with('/') { path } else { "/..." }
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file:///abs and file://localhost/abs; any other host is not local.
                let abs = match rest.strip_prefix("localhost") {
                    Some(r) if r.starts_with('/') => r,
                    _ => rest,
                };
                if !abs.starts_with('/') {
                    return Err(format!(
                        "\"{path}\": a file:// path must be absolute with no host \
                         (file:///dir/...)"
                    ));
                }
                if Path::new(abs)
                    .components()
                    .any(|c| matches!(c, Component::ParentDir))
                {
                    return Err(format!("\"{path}\": \"..\" is not allowed in the path"));
                }
                Ok(Self::Local {
                    root: literal_root(abs),
                })
            }
            "s3" | "s3a" => {
                let bucket = rest.split('/').next().unwrap_or_default();
                if bucket.is_empty() {
                    return Err(format!(
                        "\"{path}\" names no bucket (s3://BUCKET/prefix/...)"
                    ));
                }
                if bucket.contains('%') {
                    return Err(format!(
                        "\"{path}\": the bucket name cannot hold escapes; put them in the \
                         prefix after it"
                    ));
                }
                Ok(Self::S3 {
                    bucket: bucket.to_owned(),
                })
            }
            "hdfs" | "webhdfs" | "swebhdfs" | "viewfs" => Err(format!(
                "{scheme}:// is not supported yet: no HDFS can be tested here, so it is refused \
                 rather than half-done (supported schemes: {SUPPORTED_SCHEMES})"
            )),
            other => Err(format!(
                "the scheme {other}:// is not supported (supported schemes: {SUPPORTED_SCHEMES})"
            )),
        }
    }

    /// What comes before the expanded path of a file: `file://` or `s3://bucket/` (as written,
    /// `s3a` included), so `expanded.strip_prefix(...)` is the local path or object key.
    pub fn fixed_prefix(template: &str) -> &str {
        let t = template.trim_start();
        let Some(i) = t.find("://") else { return "" };
        let after = i + 3;
        if t[..i].eq_ignore_ascii_case("file") {
            let rest = &t[after..];
            if rest.starts_with("localhost/") {
                return &t[..after + "localhost".len()];
            }
            return &t[..after];
        }
        // s3: through the bucket's trailing '/' (or the end).
        match t[after..].find('/') {
            Some(j) => &t[..after + j + 1],
            None => t,
        }
    }
}

/// The directories of `abs` before the first component with an escape.
fn literal_root(abs: &str) -> PathBuf {
    let mut root = PathBuf::from("/");
    for part in abs.split('/').filter(|p| !p.is_empty()) {
        if part.contains('%') {
            break;
        }
        root.push(part);
    }
    root
}

/// The object storage of `uri` (None for a local destination, which the sink writes in place).
pub fn connect(
    uri: &DestinationUri,
    s3: &S3Settings,
) -> Result<Option<Arc<dyn Destination>>, DestinationError> {
    match uri {
        DestinationUri::Local { .. } => Ok(None),
        DestinationUri::S3 { bucket } => {
            let d: Arc<dyn Destination> = Arc::new(s3::S3Destination::new(bucket, s3)?);
            Ok(Some(d))
        }
    }
}

/// A published file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Published {
    /// Bytes uploaded.
    pub bytes: u64,
    /// How long the upload took, retries included.
    pub elapsed_ms: u64,
    /// Attempts made (1: no retry).
    pub attempts: u32,
}

/// Why a file could not be published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// Worth retrying later (the server is unreachable, throttles, or failed).
    #[error("{what}: {message} (will retry)")]
    Transient {
        /// What was being done.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// Will not succeed as configured (no such bucket, access denied, bad credentials).
    #[error("{what}: {message}")]
    Permanent {
        /// What was being done.
        what: String,
        /// Why it failed.
        message: String,
    },
}

/// Object storage a staged file is uploaded to.
pub trait Destination: Send + Sync + std::fmt::Debug {
    /// For logs and errors, e.g. `s3://bucket`.
    fn describe(&self) -> String;
    /// Uploads the finished, fsynced staged file `staged` as object `key` ('/'-separated,
    /// without a leading '/'). Idempotent: publishing the same file under the same key twice
    /// leaves one object with its bytes; an object appears whole or not at all (multipart
    /// uploads are completed or aborted). Blocking; retries transient failures with back-off
    /// for a bounded time, then returns the error (the caller keeps the staged file).
    fn publish(&self, staged: &Path, key: &str) -> Result<Published, DestinationError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_schemes() {
        assert_eq!(
            DestinationUri::parse("file:///data/flume/%Y/%{host}"),
            Ok(DestinationUri::Local {
                root: PathBuf::from("/data/flume")
            })
        );
        assert_eq!(
            DestinationUri::parse("file://localhost/x"),
            Ok(DestinationUri::Local {
                root: PathBuf::from("/x")
            })
        );
        for p in ["s3://b/p/%Y", "s3a://b", "S3A://b/"] {
            assert_eq!(
                DestinationUri::parse(p),
                Ok(DestinationUri::S3 { bucket: "b".into() }),
                "{p}"
            );
        }
    }

    #[test]
    fn refuses_the_rest_naming_the_supported_schemes() {
        for p in [
            "hdfs://namenode/flume",
            "webhdfs://nn/x",
            "/flume/events",
            "gs://b/x",
        ] {
            let e = DestinationUri::parse(p).expect_err(p);
            assert!(e.contains(SUPPORTED_SCHEMES), "{p}: {e}");
        }
        assert!(DestinationUri::parse("file://host/x").is_err());
        assert!(DestinationUri::parse("file:///a/../b").is_err());
        assert!(DestinationUri::parse("s3:///x").is_err());
        assert!(DestinationUri::parse("s3://%{b}/x").is_err());
    }

    #[test]
    fn fixed_prefix_is_what_the_expanded_path_starts_with() {
        assert_eq!(DestinationUri::fixed_prefix("file:///a/%Y"), "file://");
        assert_eq!(
            DestinationUri::fixed_prefix("file://localhost/a"),
            "file://localhost"
        );
        assert_eq!(DestinationUri::fixed_prefix("s3a://b/p/%Y"), "s3a://b/");
        assert_eq!(DestinationUri::fixed_prefix("s3://b"), "s3://b");
    }
}
