//! Amazon S3 and S3-compatible servers as a [`super::Destination`], through `object_store`
//! (request signing, multipart uploads, retries with back-off; docs/design.md says why).
//!
//! Where the settings come from, the AWS way, later ones winning: `~/.aws/config` and
//! `~/.aws/credentials` for `AWS_PROFILE` (see [`profile`]), then the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, and the other `AWS_*`
//! variables object_store knows), then the keys `hdfs.s3.endpoint`, `hdfs.s3.region` and
//! `hdfs.s3.pathStyle`. A plain `http://` endpoint (a test server) is allowed.
//!
//! A file up to `hdfs.s3.partSize` bytes goes up in one PUT; a larger one as a multipart
//! upload of parts of that size, two in flight, completed only once every part is in (and
//! aborted otherwise), so an object appears whole or not at all. Every request is retried by
//! object_store on connection errors, timeouts, throttling and 5xx answers, with exponential
//! back-off, up to `hdfs.s3.maxRetries` times within `hdfs.s3.retryTimeout` ms; then
//! [`S3Destination::publish`] returns the error, [`DestinationError::Transient`] or, for an
//! answer that will not change (no such bucket, access denied, bad credentials),
//! [`DestinationError::Permanent`]. The caller keeps the staged file either way.
//!
//! Blocking: the destination owns a current-thread tokio runtime, so `publish` must be called
//! from a plain thread (the sink's drain thread), never from inside an async task.

mod profile;

use super::{Destination, DestinationError, Published};
use crate::config::context::Ctx;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{HttpClient, HttpConnector};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, MultipartUpload, ObjectStoreExt, PutPayload, RetryConfig,
};
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use profile::{Profile, ProfileSource};

/// The smallest part S3 accepts (but the last).
pub const MIN_PART_SIZE_BYTES: u64 = 5 * 1024 * 1024;
/// `hdfs.s3.partSize` by default: also the largest file sent in one PUT.
pub const DEFAULT_PART_SIZE_BYTES: u64 = 8 * 1024 * 1024;
/// `hdfs.s3.maxRetries` by default.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// `hdfs.s3.retryTimeout` by default.
pub const DEFAULT_RETRY_TIMEOUT_MS: u64 = 30_000;
/// Parts uploaded at once in a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;
/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take (a part of 8 MiB at a slow 1 MiB/s takes 8 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// `hdfs.s3.*` overrides of the AWS environment, and the upload settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// `hdfs.s3.endpoint`.
    pub endpoint: Option<String>,
    /// `hdfs.s3.region`.
    pub region: Option<String>,
    /// `hdfs.s3.pathStyle`.
    pub path_style: Option<bool>,
    /// `hdfs.s3.partSize`: multipart part size, and the largest single PUT.
    pub part_size_bytes: u64,
    /// `hdfs.s3.maxRetries`: retries of one request.
    pub max_retries: u32,
    /// `hdfs.s3.retryTimeout`: no retry of a request starts after this long.
    pub retry_timeout_ms: u64,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: None,
            path_style: None,
            part_size_bytes: DEFAULT_PART_SIZE_BYTES,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeout_ms: DEFAULT_RETRY_TIMEOUT_MS,
        }
    }
}

impl S3Settings {
    /// Reads the keys; problems go to `ctx`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let endpoint = ctx.string("hdfs.s3.endpoint");
        if let Some(url) = &endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                ctx.error(
                    "hdfs.s3.endpoint",
                    format!("'{url}' is not an http:// or https:// URL"),
                );
            }
        }
        Self {
            endpoint,
            region: ctx.string("hdfs.s3.region"),
            path_style: ctx
                .get("hdfs.s3.pathStyle")
                .map(|_| ctx.bool("hdfs.s3.pathStyle", false)),
            part_size_bytes: ctx.u64_in(
                "hdfs.s3.partSize",
                DEFAULT_PART_SIZE_BYTES,
                MIN_PART_SIZE_BYTES..=5 * 1024 * 1024 * 1024,
            ),
            max_retries: ctx.u32_in("hdfs.s3.maxRetries", DEFAULT_MAX_RETRIES, 0..=100),
            retry_timeout_ms: ctx.u64_in(
                "hdfs.s3.retryTimeout",
                DEFAULT_RETRY_TIMEOUT_MS,
                0..=3_600_000,
            ),
        }
    }
}

/// What the client is built with, after the profile, the environment and the keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedAws {
    /// The access key id, if any source gave one (else object_store looks further: web
    /// identity, container and instance credentials).
    pub access_key_id: Option<String>,
    /// Its secret.
    pub secret_access_key: Option<String>,
    /// A session token.
    pub session_token: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The endpoint URL.
    pub endpoint: Option<String>,
}

/// Applies the AWS precedence: the keys over the environment over the profile. Credentials are
/// taken as a whole from the first source that has an access key id (a key id from the
/// environment is never paired with a profile's secret).
pub fn resolve(
    env: &dyn Fn(&str) -> Option<String>,
    profile: &Profile,
    settings: &S3Settings,
) -> ResolvedAws {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let (access_key_id, secret_access_key, session_token) = match env("AWS_ACCESS_KEY_ID") {
        Some(id) => (
            Some(id),
            env("AWS_SECRET_ACCESS_KEY"),
            env("AWS_SESSION_TOKEN"),
        ),
        None => (
            profile.access_key_id.clone(),
            profile.secret_access_key.clone(),
            profile.session_token.clone(),
        ),
    };
    ResolvedAws {
        access_key_id,
        secret_access_key,
        session_token,
        region: settings
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| profile.region.clone()),
        endpoint: settings
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| profile.endpoint_url.clone()),
    }
}

/// An S3 bucket that staged files are published to.
pub struct S3Destination {
    bucket: String,
    store: Arc<AmazonS3>,
    part_size_bytes: usize,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Destination")
            .field("bucket", &self.bucket)
            .field("part_size_bytes", &self.part_size_bytes)
            .finish_non_exhaustive()
    }
}

impl S3Destination {
    /// The client for `bucket`, configured from the process environment, the AWS profile
    /// files and `settings`. Makes no request.
    pub fn new(bucket: &str, settings: &S3Settings) -> Result<Self, DestinationError> {
        let env = |k: &str| std::env::var(k).ok();
        Self::with_env(bucket, settings, &env)
    }

    /// Like [`S3Destination::new`] with the variables the profile files and the precedence
    /// are read from given by `env` (object_store still reads the process's `AWS_*`, which the
    /// resolved values override).
    pub fn with_env(
        bucket: &str,
        settings: &S3Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, DestinationError> {
        let what = format!("s3://{bucket}");
        let permanent = |message: String| DestinationError::Permanent {
            what: what.clone(),
            message,
        };
        let profile = ProfileSource::from_env(env)
            .load()
            .map_err(|e| permanent(e.to_string()))?;
        let aws = resolve(env, &profile, settings);
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_http_connector(RingTlsConnector)
            .with_client_options(ClientOptions::new().with_allow_http(true))
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: settings.max_retries as usize,
                retry_timeout: Duration::from_millis(settings.retry_timeout_ms),
            });
        if let Some(id) = &aws.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &aws.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &aws.session_token {
            builder = builder.with_token(token);
        }
        if let Some(region) = &aws.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &aws.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(path_style) = settings.path_style {
            builder = builder.with_virtual_hosted_style_request(!path_style);
        }
        let store = builder.build().map_err(|e| permanent(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("s3-upload")
            .build()
            .map_err(|e| permanent(format!("starting the upload runtime: {e}")))?;
        tracing::info!(
            bucket,
            region = aws.region.as_deref().unwrap_or("(object_store's default)"),
            endpoint = aws.endpoint.as_deref().unwrap_or("(AWS)"),
            profile_credentials = aws.access_key_id.is_some() && env("AWS_ACCESS_KEY_ID").is_none(),
            "s3 destination ready"
        );
        Ok(Self {
            bucket: bucket.to_owned(),
            store: Arc::new(store),
            part_size_bytes: usize::try_from(settings.part_size_bytes)
                .unwrap_or(usize::MAX)
                .max(MIN_PART_SIZE_BYTES as usize),
            runtime,
        })
    }

    async fn upload(&self, staged: &Path, key: &ObjectPath, len: u64) -> Result<(), Failure> {
        let mut file = std::fs::File::open(staged).map_err(Failure::Staged)?;
        if len <= self.part_size_bytes as u64 {
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes).map_err(Failure::Staged)?;
            self.store
                .put(key, PutPayload::from(bytes))
                .await
                .map_err(Failure::Store)?;
            return Ok(());
        }
        let mut upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(Failure::Store)?;
        match self.upload_parts(&mut file, upload.as_mut()).await {
            Ok(()) => match upload.complete().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    abort(upload.as_mut(), key).await;
                    Err(Failure::Store(e))
                }
            },
            Err(e) => {
                abort(upload.as_mut(), key).await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        file: &mut std::fs::File,
        upload: &mut dyn MultipartUpload,
    ) -> Result<(), Failure> {
        let mut in_flight = VecDeque::new();
        loop {
            let mut part = Vec::with_capacity(self.part_size_bytes);
            file.by_ref()
                .take(self.part_size_bytes as u64)
                .read_to_end(&mut part)
                .map_err(Failure::Staged)?;
            if part.is_empty() {
                break;
            }
            if in_flight.len() >= PARTS_IN_FLIGHT {
                join_part(in_flight.pop_front()).await?;
            }
            in_flight.push_back(tokio::spawn(upload.put_part(PutPayload::from(part))));
        }
        while let Some(part) = in_flight.pop_front() {
            join_part(Some(part)).await?;
        }
        Ok(())
    }
}

type PartTask = tokio::task::JoinHandle<object_store::Result<()>>;

async fn join_part(task: Option<PartTask>) -> Result<(), Failure> {
    let Some(task) = task else { return Ok(()) };
    match task.await {
        Ok(result) => result.map_err(Failure::Store),
        Err(e) => Err(Failure::Store(object_store::Error::JoinError { source: e })),
    }
}

async fn abort(upload: &mut dyn MultipartUpload, key: &ObjectPath) {
    if let Err(e) = upload.abort().await {
        // Left to the bucket's lifecycle rule for incomplete uploads; no object appears.
        tracing::warn!(key = %key, error = %e, "aborting a failed multipart upload failed");
    }
}

enum Failure {
    Staged(std::io::Error),
    Store(object_store::Error),
}

impl Destination for S3Destination {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn publish(&self, staged: &Path, key: &str) -> Result<Published, DestinationError> {
        let what = format!(
            "uploading {} to s3://{}/{key}",
            staged.display(),
            self.bucket
        );
        let object = ObjectPath::parse(key).map_err(|e| DestinationError::Permanent {
            what: what.clone(),
            message: format!("not a valid object key: {e}"),
        })?;
        let len = std::fs::metadata(staged)
            .map_err(|e| DestinationError::Permanent {
                what: what.clone(),
                message: format!("the staged file: {e}"),
            })?
            .len();
        let start = Instant::now();
        let result = self.runtime.block_on(self.upload(staged, &object, len));
        let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(()) => {
                tracing::debug!(bucket = %self.bucket, key, bytes = len, elapsed_ms, "published");
                Ok(Published {
                    bytes: len,
                    elapsed_ms,
                    attempts: 1,
                })
            }
            Err(Failure::Staged(e)) => Err(DestinationError::Permanent {
                what,
                message: format!("reading the staged file: {e}"),
            }),
            Err(Failure::Store(e)) => Err(classify(what, &e)),
        }
    }
}

/// Transient or permanent, by what object_store made of the answer: a missing bucket (404),
/// refused access (403) and bad credentials (401) will not change by retrying, nor will a bad
/// key or configuration; everything else (connection errors, timeouts, throttling, 5xx, once
/// object_store's own retries are spent) may.
fn classify(what: String, e: &object_store::Error) -> DestinationError {
    use object_store::Error as E;
    let message = crate::error_chain::one_line(e);
    match e {
        E::NotFound { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => DestinationError::Permanent { what, message },
        _ => DestinationError::Transient { what, message },
    }
}

/// object_store's reqwest client with rustls on the agent's *ring* provider and the system's
/// root certificates (reqwest's own TLS default would bring aws-lc-rs; docs/design.md).
#[derive(Debug)]
struct RingTlsConnector;

impl HttpConnector for RingTlsConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let generic = |e: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
            store: "S3",
            source: e,
        };
        let mut roots = rustls::RootCertStore::empty();
        // No system roots leaves https endpoints failing with a certificate error that names
        // the endpoint; plain http ones (test servers) work either way.
        let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls =
            rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::ring_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| generic(Box::new(e)))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| generic(Box::new(e)))?;
        Ok(HttpClient::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::context::test_support::{ctx_under, entries_under};

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn profile() -> Profile {
        Profile {
            access_key_id: Some("PROFILEID".into()),
            secret_access_key: Some("profilesecret".into()),
            session_token: None,
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://profile:1".into()),
        }
    }

    #[test]
    fn the_profile_fills_what_the_environment_lacks() {
        let r = resolve(&env_of(&[]), &profile(), &S3Settings::default());
        assert_eq!(r.access_key_id.as_deref(), Some("PROFILEID"));
        assert_eq!(r.secret_access_key.as_deref(), Some("profilesecret"));
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.endpoint.as_deref(), Some("http://profile:1"));
    }

    #[test]
    fn the_environment_wins_over_the_profile_and_credentials_stay_paired() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "ENVID"),
            ("AWS_SESSION_TOKEN", "envtoken"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
            ("AWS_ENDPOINT_URL", "http://env:2"),
        ]);
        let r = resolve(&env, &profile(), &S3Settings::default());
        assert_eq!(r.access_key_id.as_deref(), Some("ENVID"));
        // No AWS_SECRET_ACCESS_KEY: the profile's secret belongs to another key id.
        assert_eq!(r.secret_access_key, None);
        assert_eq!(r.session_token.as_deref(), Some("envtoken"));
        assert_eq!(r.region.as_deref(), Some("us-east-2"));
        assert_eq!(r.endpoint.as_deref(), Some("http://env:2"));
        let env = env_of(&[
            ("AWS_REGION", "us-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
            ("AWS_ENDPOINT_URL", "http://env:2"),
            ("AWS_ENDPOINT_URL_S3", "http://env-s3:3"),
        ]);
        let r = resolve(&env, &profile(), &S3Settings::default());
        assert_eq!(r.region.as_deref(), Some("us-west-1"));
        assert_eq!(r.endpoint.as_deref(), Some("http://env-s3:3"));
    }

    #[test]
    fn the_keys_win_over_everything() {
        let env = env_of(&[
            ("AWS_REGION", "us-west-1"),
            ("AWS_ENDPOINT_URL", "http://env:2"),
        ]);
        let settings = S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("ap-south-1".into()),
            ..S3Settings::default()
        };
        let r = resolve(&env, &profile(), &settings);
        assert_eq!(r.region.as_deref(), Some("ap-south-1"));
        assert_eq!(r.endpoint.as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn settings_parse_with_defaults_and_refuse_bad_values() {
        let list = entries_under("a.sinks.k.", &[("hdfs.s3.pathStyle", "true")]);
        let ctx = ctx_under("a.sinks.k.", &list);
        let s = S3Settings::parse(&ctx);
        assert!(!ctx.has_errors());
        assert_eq!(
            s,
            S3Settings {
                path_style: Some(true),
                ..S3Settings::default()
            }
        );
        let list = entries_under(
            "a.sinks.k.",
            &[
                ("hdfs.s3.endpoint", "127.0.0.1:9000"),
                ("hdfs.s3.partSize", "1024"),
            ],
        );
        let ctx = ctx_under("a.sinks.k.", &list);
        let _ = S3Settings::parse(&ctx);
        assert!(ctx.has_error_for("hdfs.s3.endpoint"));
        assert!(ctx.has_error_for("hdfs.s3.partSize"));
    }

    #[test]
    fn building_needs_no_server_and_describes_the_bucket() {
        let env = env_of(&[("HOME", "/nonexistent-home")]);
        let settings = S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("us-east-1".into()),
            ..S3Settings::default()
        };
        let d = S3Destination::with_env("logs", &settings, &env).expect("build");
        assert_eq!(d.describe(), "s3://logs");
    }

    #[test]
    fn a_missing_staged_file_is_permanent_and_named() {
        let env = env_of(&[("HOME", "/nonexistent-home")]);
        let settings = S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("us-east-1".into()),
            ..S3Settings::default()
        };
        let d = S3Destination::with_env("logs", &settings, &env).expect("build");
        let err = d
            .publish(Path::new("/nonexistent/staged.tmp"), "a/b")
            .expect_err("no file");
        assert!(matches!(err, DestinationError::Permanent { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/staged.tmp"), "{err}");
    }
}
