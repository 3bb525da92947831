//! [`HdfsConfig`]: the `hdfs` sink's keys with Flume's defaults (`HDFSEventSink.configure`),
//! plus Sluice's `hdfs.stagingDir`. Keys that only mean something to HDFS are explained with
//! a warning or refused; none is silently ignored (`hdfs.kerberos*` are left unread, so the
//! security rule of `config::security` refuses them).

use super::dest::s3::S3Settings;
use super::dest::DestinationUri;
use super::format::FormatConfig;
use super::path::{PathTemplate, TimeSettings};
use crate::config::context::Ctx;
use crate::sink::file_roll::directory_obstacle;
use std::path::PathBuf;

/// Configuration of an `hdfs` sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HdfsConfig {
    /// `hdfs.path` (required), scheme included.
    pub path: PathTemplate,
    /// Where `hdfs.path` points.
    pub destination: DestinationUri,
    /// `hdfs.filePrefix` (`FlumeData`), with escapes.
    pub file_prefix: PathTemplate,
    /// `hdfs.fileSuffix` (empty): replaces the codec's extension when set, as in Flume.
    pub file_suffix: String,
    /// `hdfs.inUsePrefix` (empty).
    pub in_use_prefix: String,
    /// `hdfs.inUseSuffix` (`.tmp`); empty with `hdfs.emptyInUseSuffix = true`.
    pub in_use_suffix: String,
    /// `hdfs.rollInterval` (30 s; 0 never).
    pub roll_interval_s: u64,
    /// `hdfs.rollSize` (1024 bytes of event bodies; 0 never).
    pub roll_size_bytes: u64,
    /// `hdfs.rollCount` (10 events; 0 never).
    pub roll_count: u64,
    /// `hdfs.idleTimeout` (0 s: never): a bucket not written for this long is closed.
    pub idle_timeout_s: u64,
    /// `hdfs.batchSize` (100).
    pub batch_size: u32,
    /// `hdfs.maxOpenFiles` (5000): beyond it the least recently written bucket is closed.
    pub max_open_files: u32,
    /// `hdfs.callTimeout` (10000 ms): bounds one publish attempt.
    pub call_timeout_ms: u64,
    /// `hdfs.closeTries` (0: forever): publish attempts before a file is left in staging
    /// until the next start.
    pub close_tries: u32,
    /// `hdfs.retryInterval` (180 s): between publish attempts.
    pub retry_interval_s: u64,
    /// `hdfs.stagingDir` (`~/.flume/hdfs-sink/<agent>.<sink>`): the state of in-use files and,
    /// for object storage, the staged files. Must survive restarts.
    pub staging_dir: PathBuf,
    /// `hdfs.round*`, `hdfs.timeZone`, `hdfs.useLocalTimeStamp`.
    pub time: TimeSettings,
    /// `hdfs.fileType`, `hdfs.codeC`, `hdfs.writeFormat`, `serializer*`.
    pub format: FormatConfig,
    /// `hdfs.s3.*`.
    pub s3: S3Settings,
}

/// HDFS-only keys accepted with a warning saying why they change nothing here.
const EXPLAINED: &[(&str, &str)] = &[
    (
        "hdfs.minBlockReplicas",
        "HDFS block replication has no meaning for file:// or object storage; ignored",
    ),
    (
        "hdfs.threadsPoolSize",
        "Sluice writes and publishes from the sink's own thread; ignored",
    ),
    (
        "hdfs.rollTimerPoolSize",
        "rolls are checked by the sink's own thread; ignored",
    ),
    (
        "hdfs.useRawLocalFileSystem",
        "file:// paths are always written directly and fsynced; ignored",
    ),
];

/// HDFS-only keys refused: honouring them silently would do something else than asked.
const REFUSED: &[(&str, &str)] = &[(
    "hdfs.proxyUser",
    "impersonation is an HDFS feature; Sluice writes as the agent's own user; remove the key",
)];

impl HdfsConfig {
    /// Reads the keys; problems go to `ctx`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let path = PathTemplate::parse(ctx, "hdfs.path");
        if path.is_none() && !ctx.has("hdfs.path") {
            ctx.error_at(ctx.anchor_line(), "hdfs.path", "required key is missing");
        }
        let path = path.unwrap_or_else(|| PathTemplate::literal("file:///"));
        let destination = match DestinationUri::parse(path.as_str()) {
            Ok(d) => d,
            Err(why) => {
                if ctx.has("hdfs.path") && !ctx.has_error_for("hdfs.path") {
                    ctx.error("hdfs.path", why);
                }
                DestinationUri::Local {
                    root: PathBuf::from("/"),
                }
            }
        };
        if let DestinationUri::Local { root } = &destination {
            if ctx.has("hdfs.path") {
                if let Some(why) = directory_obstacle(root) {
                    ctx.error("hdfs.path", why);
                }
            }
        }
        let file_prefix = if ctx.has("hdfs.filePrefix") {
            PathTemplate::parse(ctx, "hdfs.filePrefix")
                .unwrap_or_else(|| PathTemplate::literal("FlumeData"))
        } else {
            ctx.mark_used("hdfs.filePrefix");
            PathTemplate::literal("FlumeData")
        };
        let empty_in_use_suffix = ctx.bool("hdfs.emptyInUseSuffix", false);
        let in_use_suffix = ctx.string_or("hdfs.inUseSuffix", ".tmp");
        let in_use_prefix = ctx.string_or("hdfs.inUsePrefix", "");
        for (key, value) in [
            ("hdfs.inUsePrefix", &in_use_prefix),
            ("hdfs.inUseSuffix", &in_use_suffix),
        ] {
            if value.contains('/') {
                ctx.error(key, "must not contain '/'");
            }
        }
        let file_suffix = ctx.string_or("hdfs.fileSuffix", "");
        if file_suffix.contains('/') {
            ctx.error("hdfs.fileSuffix", "must not contain '/'");
        }
        let secs = 0..=u64::from(u32::MAX);
        let roll_interval_s = ctx.u64_in("hdfs.rollInterval", 30, secs.clone());
        let roll_size_bytes = ctx.u64_in("hdfs.rollSize", 1024, 0..=i64::MAX as u64);
        let roll_count = ctx.u64_in("hdfs.rollCount", 10, 0..=i64::MAX as u64);
        let idle_timeout_s = ctx.u64_in("hdfs.idleTimeout", 0, secs.clone());
        let batch_size = ctx.u32_in(
            "hdfs.batchSize",
            100,
            1..=file_channel::limits::MAX_EVENTS_PER_TXN,
        );
        let max_open_files = ctx.u32_in("hdfs.maxOpenFiles", 5000, 1..=1_000_000);
        let call_timeout_ms = ctx.u64_in("hdfs.callTimeout", 10_000, 1..=86_400_000);
        let close_tries = ctx.u32_in("hdfs.closeTries", 0, 0..=u32::MAX);
        let retry_interval_s = ctx.u64_in("hdfs.retryInterval", 180, 1..=86_400);
        for (key, why) in EXPLAINED {
            if let Some(e) = ctx.get(key) {
                ctx.warn(key, format!("{} = {}: {why}", key, e.value.trim()));
            }
        }
        for (key, why) in REFUSED {
            if ctx.get(key).is_some() {
                ctx.error(key, format!("is refused: {why}"));
            }
        }
        let staging_dir = match ctx.string("hdfs.stagingDir") {
            Some(d) if d.trim().is_empty() => {
                ctx.error("hdfs.stagingDir", "must not be empty");
                PathBuf::new()
            }
            Some(d) => PathBuf::from(d.trim()),
            None => default_staging_dir(ctx),
        };
        if !staging_dir.as_os_str().is_empty() {
            if !staging_dir.is_absolute() {
                ctx.error("hdfs.stagingDir", "must be an absolute path");
            } else if let Some(why) = directory_obstacle(&staging_dir) {
                ctx.error("hdfs.stagingDir", why);
            }
        }
        Self {
            destination,
            path,
            file_prefix,
            file_suffix,
            in_use_prefix,
            in_use_suffix: if empty_in_use_suffix {
                String::new()
            } else {
                in_use_suffix
            },
            roll_interval_s,
            roll_size_bytes,
            roll_count,
            idle_timeout_s,
            batch_size,
            max_open_files,
            call_timeout_ms,
            close_tries,
            retry_interval_s,
            staging_dir,
            time: TimeSettings::parse(ctx),
            format: FormatConfig::parse(ctx),
            s3: S3Settings::parse(ctx),
        }
    }
}

/// `~/.flume/hdfs-sink/<agent>.<sink>` (beside the file channel's default directories), from
/// the component's key prefix `agent.sinks.name.`.
fn default_staging_dir(ctx: &Ctx<'_>) -> PathBuf {
    let full = ctx.full_key("");
    let id = full
        .trim_end_matches('.')
        .replacen(".sinks.", ".", 1)
        .replace('/', "_");
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home)
            .join(".flume/hdfs-sink")
            .join(if id.is_empty() { "sink".into() } else { id }),
        _ => {
            ctx.error_at(
                ctx.anchor_line(),
                "hdfs.stagingDir",
                "not set, and HOME is not set for the default ~/.flume/hdfs-sink/<agent>.<sink>",
            );
            PathBuf::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_support::{ctx, entries};

    fn parse(pairs: &[(&str, &str)]) -> (HdfsConfig, Vec<String>) {
        let list = entries(pairs);
        let c = ctx(&list);
        let cfg = HdfsConfig::parse(&c);
        let d = c.finish("hdfs sink k1");
        let f = std::path::Path::new("f");
        let mut problems: Vec<String> = d.errors.iter().map(|p| p.display(f).to_string()).collect();
        problems.extend(
            d.warnings
                .iter()
                .map(|p| format!("warning: {}", p.display(f))),
        );
        (cfg, problems)
    }

    #[test]
    fn flume_defaults() {
        let (c, problems) = parse(&[
            ("hdfs.path", "file:///tmp/flume/%Y"),
            ("hdfs.stagingDir", "/tmp/st"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.file_prefix.as_str(), "FlumeData");
        assert_eq!(
            (c.in_use_prefix.as_str(), c.in_use_suffix.as_str()),
            ("", ".tmp")
        );
        assert_eq!(c.file_suffix, "");
        assert_eq!(
            (c.roll_interval_s, c.roll_size_bytes, c.roll_count),
            (30, 1024, 10)
        );
        assert_eq!(
            (c.idle_timeout_s, c.batch_size, c.max_open_files),
            (0, 100, 5000)
        );
        assert_eq!(
            (c.call_timeout_ms, c.close_tries, c.retry_interval_s),
            (10_000, 0, 180)
        );
        assert_eq!(
            c.destination,
            DestinationUri::Local {
                root: PathBuf::from("/tmp/flume")
            }
        );
    }

    #[test]
    fn keys_are_read() {
        let (c, problems) = parse(&[
            ("hdfs.path", "s3a://bucket/logs/%{host}"),
            ("hdfs.filePrefix", "events-%{host}"),
            ("hdfs.fileSuffix", ".log"),
            ("hdfs.inUsePrefix", "_"),
            ("hdfs.inUseSuffix", ".part"),
            ("hdfs.emptyInUseSuffix", "true"),
            ("hdfs.rollInterval", "0"),
            ("hdfs.rollSize", "0"),
            ("hdfs.rollCount", "1000"),
            ("hdfs.idleTimeout", "60"),
            ("hdfs.batchSize", "500"),
            ("hdfs.maxOpenFiles", "7"),
            ("hdfs.callTimeout", "3000"),
            ("hdfs.closeTries", "3"),
            ("hdfs.retryInterval", "5"),
            ("hdfs.stagingDir", "/var/lib/sluice/k1"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            c.destination,
            DestinationUri::S3 {
                bucket: "bucket".into()
            }
        );
        assert_eq!(c.file_prefix.as_str(), "events-%{host}");
        assert_eq!(c.in_use_suffix, "", "emptyInUseSuffix wins");
        assert_eq!(c.in_use_prefix, "_");
        assert_eq!(
            (
                c.roll_interval_s,
                c.roll_size_bytes,
                c.roll_count,
                c.idle_timeout_s
            ),
            (0, 0, 1000, 60)
        );
        assert_eq!((c.batch_size, c.max_open_files, c.close_tries), (500, 7, 3));
        assert_eq!((c.call_timeout_ms, c.retry_interval_s), (3000, 5));
        assert_eq!(c.staging_dir, PathBuf::from("/var/lib/sluice/k1"));
    }

    #[test]
    fn refusals_name_the_key() {
        let (_, p) = parse(&[("hdfs.stagingDir", "/tmp/st")]);
        assert_eq!(p, ["f:1: a1.sinks.k1.hdfs.path: required key is missing"]);
        let (_, p) = parse(&[
            ("hdfs.path", "hdfs://namenode/flume"),
            ("hdfs.stagingDir", "/tmp/st"),
        ]);
        assert!(
            p.len() == 1
                && p[0].contains("a1.sinks.k1.hdfs.path: hdfs:// is not supported yet")
                && p[0].contains("file://, s3://, s3a://"),
            "{p:?}"
        );
        let (_, p) = parse(&[
            ("hdfs.path", "file:///tmp/x"),
            ("hdfs.stagingDir", "relative"),
            ("hdfs.kerberosPrincipal", "flume/_HOST@REALM"),
            ("hdfs.proxyUser", "bob"),
            ("hdfs.minBlockReplicas", "1"),
            ("hdfs.rollCount", "-1"),
        ]);
        let joined = p.join("\n");
        for needle in [
            "hdfs.stagingDir: must be an absolute path",
            "hdfs.kerberosPrincipal = flume/_HOST@REALM has a security meaning",
            "hdfs.proxyUser: is refused",
            "warning: f:6: a1.sinks.k1.hdfs.minBlockReplicas: hdfs.minBlockReplicas = 1: HDFS block",
            "hdfs.rollCount: must not be negative",
        ] {
            assert!(joined.contains(needle), "{needle} not in:\n{joined}");
        }
    }

    #[test]
    fn staging_defaults_under_home_by_agent_and_sink() {
        let list = entries(&[("hdfs.path", "file:///tmp/x")]);
        let c = HdfsConfig::parse(&ctx(&list));
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                c.staging_dir,
                PathBuf::from(home).join(".flume/hdfs-sink/a1.k1")
            );
        }
    }
}
