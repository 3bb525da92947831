//! The avro source's keys (`bind`, `port`, `threads`, `compression-type`, `ipFilter`,
//! `ipFilterRules`, `ssl` and the TLS keys, and ours `maxConnections`, `readTimeout`) read into
//! [`AvroSourceConfig`], with Flume's defaults; the `compression-type` rule is shared with the
//! avro sink.

use super::ip_filter::IpFilter;
use crate::config::context::Ctx;
use crate::source::net::{ConnectionLimits, TlsConfig};

/// `compression-type` of the avro source and sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionType {
    /// `none`.
    None,
    /// `deflate`.
    Deflate,
}

impl CompressionType {
    /// Reads `compression-type` (`none` or `deflate`, any case; default `none`).
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        match ctx
            .string_or("compression-type", "none")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => Self::None,
            "deflate" => Self::Deflate,
            other => {
                ctx.error(
                    "compression-type",
                    format!("expected none or deflate, got \"{other}\""),
                );
                Self::None
            }
        }
    }
}

/// Configuration of an avro source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvroSourceConfig {
    /// Address to listen on. `bind`.
    pub bind: String,
    /// Port. `port`.
    pub port: u16,
    /// Most calls processed at once. `threads`. Default: 0, unbounded.
    pub threads: Option<u32>,
    /// `compression-type`. Default: none.
    pub compression: CompressionType,
    /// `ipFilterRules` when `ipFilter = true`. Default: no filter.
    pub ip_filter: Option<IpFilter>,
    /// `maxConnections` and `readTimeout`.
    pub limits: ConnectionLimits,
    /// `ssl` and the TLS keys. Default: plain TCP.
    pub tls: TlsConfig,
}

impl AvroSourceConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let bind = ctx.required("bind").unwrap_or_default();
        let port = match ctx.get("port") {
            Some(_) => ctx.u64_in("port", 0, 0..=65_535) as u16,
            None => {
                ctx.required("port");
                0
            }
        };
        // Flume: 0 (the default) or less is an unbounded worker pool.
        let threads = match ctx.i64_in("threads", 0, i64::from(i32::MIN)..=65_536) {
            n if n <= 0 => None,
            n => Some(n as u32),
        };
        let ip_filter = if ctx.bool("ipFilter", false) {
            match ctx.get("ipFilterRules") {
                None => {
                    ctx.error("ipFilterRules", "required when ipFilter is true");
                    None
                }
                Some(e) => match IpFilter::parse(&e.value) {
                    Ok(f) => Some(f),
                    Err(reason) => {
                        ctx.error("ipFilterRules", reason);
                        None
                    }
                },
            }
        } else {
            None
        };
        Self {
            bind,
            port,
            threads,
            compression: CompressionType::parse(ctx),
            ip_filter,
            limits: ConnectionLimits::parse(ctx),
            tls: TlsConfig::parse(ctx, "avro source"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::context::test_support::{ctx_under, entries_under};

    fn parse(pairs: &[(&str, &str)]) -> (AvroSourceConfig, Vec<String>) {
        let list = entries_under("a1.sources.r1.", pairs);
        let ctx = ctx_under("a1.sources.r1.", &list);
        let cfg = AvroSourceConfig::parse(&ctx);
        let errors = ctx
            .finish("source r1")
            .errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect();
        (cfg, errors)
    }

    #[test]
    fn keys_defaults_and_errors_name_the_key() {
        let (cfg, errors) = parse(&[("bind", "0.0.0.0"), ("port", "4141")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.threads, None);
        assert_eq!(cfg.compression, CompressionType::None);
        let (cfg, errors) = parse(&[("bind", "0.0.0.0"), ("port", "4141"), ("threads", "0")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.threads, None);
        assert_eq!(cfg.ip_filter, None);
        let (cfg, errors) = parse(&[
            ("bind", "0.0.0.0"),
            ("port", "4141"),
            ("threads", "4"),
            ("compression-type", "DEFLATE"),
            ("ipFilter", "true"),
            ("ipFilterRules", "allow:ip:127.*,deny:ip:*"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.threads, Some(4));
        assert_eq!(cfg.compression, CompressionType::Deflate);
        assert!(cfg.ip_filter.is_some());
        let (_, errors) = parse(&[
            ("bind", "0.0.0.0"),
            ("port", "4141"),
            ("compression-type", "gzip"),
            ("ssl", "true"),
            ("ipFilter", "true"),
        ]);
        let all = errors.join("\n");
        assert!(
            all.contains("a1.sources.r1.compression-type: expected none or deflate"),
            "{all}"
        );
        assert!(
            all.contains("a1.sources.r1.keystore: avro source: ssl is true but no keystore"),
            "{all}"
        );
        assert!(
            all.contains("a1.sources.r1.ipFilterRules: required when ipFilter is true"),
            "{all}"
        );
        let (_, errors) = parse(&[
            ("bind", "0.0.0.0"),
            ("port", "4141"),
            ("ipFilter", "true"),
            ("ipFilterRules", "allow:ip:*,nope"),
        ]);
        assert!(
            errors.join("\n").contains("invalid ipFilter rule \"nope\""),
            "{errors:?}"
        );
    }
}
