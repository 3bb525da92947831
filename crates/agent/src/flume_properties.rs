//! The Java system properties `flume-ng agent` is started with (`-D key=value`), read the way
//! Flume 1.11 reads them, so an init script's command line runs unchanged:
//!
//! - `flume.monitoring.type=http` with `flume.monitoring.port` (41414, Flume's default) serves
//!   the JSON metrics; `flume.monitoring.host` (ours) chooses the address, 127.0.0.1 by default
//!   (Flume listens on every interface). `ganglia` and custom classes are refused.
//! - `flume.root.logger=LEVEL,appender…` gives the log level (log4j's levels mapped to
//!   `tracing`'s); appenders other than `console` are reported as not used (logs go to stderr).
//! - Every property is visible to `${sys:…}` and the TLS defaults read `javax.net.ssl.*` and
//!   `flume.ssl.*` (in [`crate::config`] and [`crate::tls`]).
//!
//! Also here: what `-c/--conf DIR` holds that Flume would use and Sluice does not.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Flume's default port of its HTTP metrics server.
pub const DEFAULT_MONITORING_PORT: u16 = 41414;

/// A `-D` value that cannot be honoured.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    /// `-D` without a key.
    #[error("-D{0:?}: expected -Dkey=value")]
    Malformed(String),
    /// A key given a value Sluice does not take.
    #[error("-D{key}={value}: {reason}")]
    Unsupported {
        /// The property.
        key: String,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
}

/// Parses one `-D` argument (`key=value`; `key` alone is an empty value, as in Java).
pub fn parse_define(arg: &str) -> Result<(String, String), PropertyError> {
    let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
    if key.trim().is_empty() {
        return Err(PropertyError::Malformed(arg.to_owned()));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn unsupported(key: &str, value: &str, reason: impl Into<String>) -> PropertyError {
    PropertyError::Unsupported {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Where `flume.monitoring.*` asks the JSON metrics to be served; `None` when it asks for none.
pub fn monitoring_address(
    props: &BTreeMap<String, String>,
) -> Result<Option<SocketAddr>, PropertyError> {
    let Some(ty) = props.get("flume.monitoring.type") else {
        return Ok(None);
    };
    match ty.trim().to_ascii_lowercase().as_str() {
        "http" | "org.apache.flume.instrumentation.http.httpmetricsserver" => {}
        "ganglia" | "org.apache.flume.instrumentation.gangliaserver" => {
            return Err(unsupported(
                "flume.monitoring.type",
                ty,
                "Ganglia reporting is not supported; use flume.monitoring.type=http (Flume's JSON at /metrics, Prometheus text at /metrics/prometheus)",
            ))
        }
        _ => {
            return Err(unsupported(
                "flume.monitoring.type",
                ty,
                "only http is supported (a custom monitoring class cannot be loaded)",
            ))
        }
    }
    let port = match props.get("flume.monitoring.port") {
        None => DEFAULT_MONITORING_PORT,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| unsupported("flume.monitoring.port", p, "not a port number (0-65535)"))?,
    };
    let host = match props.get("flume.monitoring.host") {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(h) => h.trim().parse::<IpAddr>().map_err(|_| {
            unsupported(
                "flume.monitoring.host",
                h,
                "not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every interface)",
            )
        })?,
    };
    Ok(Some(SocketAddr::new(host, port)))
}

/// What `flume.root.logger` asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct RootLogger {
    /// A `tracing` filter directive: `trace`, `debug`, `info`, `warn`, `error` or `off`.
    pub level: &'static str,
    /// Appenders named besides `console`, which are not used (logs go to standard error).
    pub unused_appenders: Vec<String>,
}

/// Reads `flume.root.logger` (`LEVEL,appender,…`, as Flume's log4j configuration takes it);
/// `None` if it is not set.
pub fn root_logger(props: &BTreeMap<String, String>) -> Result<Option<RootLogger>, PropertyError> {
    let Some(value) = props.get("flume.root.logger") else {
        return Ok(None);
    };
    let mut parts = value.split(',').map(str::trim);
    let level_word = parts.next().unwrap_or("");
    let level = match level_word.to_ascii_uppercase().as_str() {
        "ALL" | "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => {
            return Err(unsupported(
                "flume.root.logger",
                value,
                format!(
                "{level_word:?} is not a log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF)"
            ),
            ))
        }
    };
    let unused_appenders = parts
        .filter(|a| !a.is_empty() && !a.eq_ignore_ascii_case("console"))
        .map(str::to_owned)
        .collect();
    Ok(Some(RootLogger {
        level,
        unused_appenders,
    }))
}

/// Properties Flume's start-up reads that have no effect here, with why (logged at start).
pub fn unused_properties(props: &BTreeMap<String, String>) -> Vec<(String, &'static str)> {
    const UNUSED: [(&str, &str); 6] = [
        ("flume.log.dir", "logs go to standard error"),
        ("flume.log.file", "logs go to standard error"),
        ("log4j.configuration", "logging is not configured by log4j"),
        (
            "log4j.configurationFile",
            "logging is not configured by log4j",
        ),
        (
            "propertiesImplementation",
            "${NAME} is always read from the environment",
        ),
        (
            "flume.called.from.service",
            "the configuration file must exist at start",
        ),
    ];
    UNUSED
        .iter()
        .filter(|(k, _)| props.contains_key(*k))
        .map(|(k, why)| ((*k).to_owned(), *why))
        .collect()
}

/// The files of Flume's configuration directory (`-c/--conf`) that Flume would use and Sluice
/// does not: `flume-env.sh` (sourced by `flume-ng` for `JAVA_OPTS` and exported variables) and
/// `log4j*.properties` / `log4j2*.xml` (logging); sorted.
pub fn unused_conf_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name == "flume-env.sh"
                || name == "flume-env.ps1"
                || (name.starts_with("log4j")
                    && (name.ends_with(".properties") || name.ends_with(".xml")))
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defines_split_at_the_first_equals_sign() {
        assert_eq!(parse_define("a.b=c=d"), Ok(("a.b".into(), "c=d".into())));
        assert_eq!(parse_define("flag"), Ok(("flag".into(), String::new())));
        assert_eq!(parse_define("k="), Ok(("k".into(), String::new())));
        assert_eq!(
            parse_define("=v").map_err(|e| e.to_string()),
            Err("-D\"=v\": expected -Dkey=value".into())
        );
    }

    #[test]
    fn monitoring_http_on_loopback_by_default() {
        assert_eq!(monitoring_address(&props(&[])), Ok(None));
        assert_eq!(
            monitoring_address(&props(&[("flume.monitoring.port", "5")])),
            Ok(None),
            "a port without a type serves nothing, as in Flume"
        );
        assert_eq!(
            monitoring_address(&props(&[("flume.monitoring.type", "HTTP")])),
            Ok(Some("127.0.0.1:41414".parse().expect("addr")))
        );
        assert_eq!(
            monitoring_address(&props(&[
                ("flume.monitoring.type", "http"),
                ("flume.monitoring.port", "34545"),
                ("flume.monitoring.host", "0.0.0.0"),
            ])),
            Ok(Some("0.0.0.0:34545".parse().expect("addr")))
        );
    }

    #[test]
    fn other_monitoring_types_and_bad_ports_are_refused() {
        let err = |pairs: &[(&str, &str)]| {
            monitoring_address(&props(pairs))
                .expect_err("refused")
                .to_string()
        };
        assert!(err(&[("flume.monitoring.type", "ganglia")])
            .starts_with("-Dflume.monitoring.type=ganglia: Ganglia reporting is not supported"));
        assert_eq!(
            err(&[("flume.monitoring.type", "com.example.Mon")]),
            "-Dflume.monitoring.type=com.example.Mon: only http is supported (a custom monitoring class cannot be loaded)"
        );
        assert_eq!(
            err(&[
                ("flume.monitoring.type", "http"),
                ("flume.monitoring.port", "70000")
            ]),
            "-Dflume.monitoring.port=70000: not a port number (0-65535)"
        );
        assert!(err(&[
            ("flume.monitoring.type", "http"),
            ("flume.monitoring.host", "localhost")
        ])
        .starts_with("-Dflume.monitoring.host=localhost: not an IP address"));
    }

    #[test]
    fn log4j_levels_map_to_tracing_and_other_appenders_are_named() {
        let level = |v: &str| {
            root_logger(&props(&[("flume.root.logger", v)]))
                .map(|r| r.map(|r| (r.level, r.unused_appenders)))
        };
        assert_eq!(level("INFO,console"), Ok(Some(("info", vec![]))));
        assert_eq!(level("debug"), Ok(Some(("debug", vec![]))));
        assert_eq!(level("FATAL,console"), Ok(Some(("error", vec![]))));
        assert_eq!(level("ALL"), Ok(Some(("trace", vec![]))));
        assert_eq!(level("OFF,console"), Ok(Some(("off", vec![]))));
        assert_eq!(
            level("WARN,LOGFILE,console"),
            Ok(Some(("warn", vec!["LOGFILE".to_owned()])))
        );
        assert_eq!(
            level("LOUD,console").map_err(|e| e.to_string()),
            Err("-Dflume.root.logger=LOUD,console: \"LOUD\" is not a log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF)".into())
        );
        assert_eq!(root_logger(&props(&[])), Ok(None));
    }

    #[test]
    fn the_conf_directory_files_flume_would_use_are_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["flume-env.sh", "log4j.properties", "log4j2.xml", "a.conf"] {
            std::fs::write(dir.path().join(f), "").expect("write");
        }
        let names: Vec<String> = unused_conf_files(dir.path())
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["flume-env.sh", "log4j.properties", "log4j2.xml"]);
        assert!(unused_conf_files(&dir.path().join("missing")).is_empty());
    }
}
