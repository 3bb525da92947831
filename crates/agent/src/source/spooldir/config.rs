//! The spooldir source's keys, Flume's defaults and their validation (`SpoolDirConfig`).

use super::*;

/// `deletePolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Rename done files with `fileSuffix`.
    Never,
    /// Delete done files.
    Immediate,
}

/// `consumeOrder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumeOrder {
    /// Oldest modification time first.
    Oldest,
    /// Youngest modification time first.
    Youngest,
    /// Any.
    Random,
}

/// `decodeErrorPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorPolicy {
    /// Stop the source.
    Fail,
    /// Replace each bad sequence with U+FFFD.
    Replace,
    /// Drop bad bytes.
    Ignore,
}

/// Configuration of a spooldir source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolDirConfig {
    /// `spoolDir`. Required.
    pub spool_dir: PathBuf,
    /// `fileSuffix`. Default: `.COMPLETED`.
    pub file_suffix: String,
    /// `deletePolicy`. Default: never.
    pub delete_policy: DeletePolicy,
    /// `fileHeaderKey` when `fileHeader` is true. Default: off, key `file`.
    pub file_header_key: Option<String>,
    /// `basenameHeaderKey` when `basenameHeader` is true. Default: off, key `basename`.
    pub basename_header_key: Option<String>,
    /// `trackerDir`, resolved against `spoolDir`. Default: `<spoolDir>/.flumespool`.
    pub tracker_dir: PathBuf,
    /// `includePattern`. Default: `^.*$`.
    pub include_pattern: String,
    /// `ignorePattern`. Default: `^$`.
    pub ignore_pattern: String,
    /// `consumeOrder`. Default: oldest.
    pub consume_order: ConsumeOrder,
    /// `recursiveDirectorySearch`. Default: false.
    pub recursive: bool,
    /// `batchSize`. Default: 100.
    pub batch_size: u32,
    /// `decodeErrorPolicy`. Default: FAIL.
    pub decode_error_policy: DecodeErrorPolicy,
    /// `deserializer.maxLineLength`, in characters. Default: 2048.
    pub max_line_length: u32,
    /// `pollDelay`, ms. Default: 500.
    pub poll_delay_ms: u64,
}

impl SpoolDirConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let spool_dir = PathBuf::from(ctx.required("spoolDir").unwrap_or_default());
        let delete_policy = match ctx.string_or("deletePolicy", "never").trim() {
            p if p.eq_ignore_ascii_case("never") => DeletePolicy::Never,
            p if p.eq_ignore_ascii_case("immediate") => DeletePolicy::Immediate,
            p => {
                ctx.error(
                    "deletePolicy",
                    format!("expected never or immediate, got \"{p}\""),
                );
                DeletePolicy::Never
            }
        };
        let consume_order = match ctx.string_or("consumeOrder", "oldest").trim() {
            p if p.eq_ignore_ascii_case("oldest") => ConsumeOrder::Oldest,
            p if p.eq_ignore_ascii_case("youngest") => ConsumeOrder::Youngest,
            p if p.eq_ignore_ascii_case("random") => ConsumeOrder::Random,
            p => {
                ctx.error(
                    "consumeOrder",
                    format!("expected oldest, youngest or random, got \"{p}\""),
                );
                ConsumeOrder::Oldest
            }
        };
        let decode_error_policy = match ctx.string_or("decodeErrorPolicy", "FAIL").trim() {
            p if p.eq_ignore_ascii_case("FAIL") => DecodeErrorPolicy::Fail,
            p if p.eq_ignore_ascii_case("REPLACE") => DecodeErrorPolicy::Replace,
            p if p.eq_ignore_ascii_case("IGNORE") => DecodeErrorPolicy::Ignore,
            p => {
                ctx.error(
                    "decodeErrorPolicy",
                    format!("expected FAIL, REPLACE or IGNORE, got \"{p}\""),
                );
                DecodeErrorPolicy::Fail
            }
        };
        for key in ["inputCharset", "deserializer.outputCharset"] {
            let cs = ctx.string_or(key, "UTF-8");
            if !is_utf8_name(&cs) {
                ctx.error(
                    key,
                    format!("only UTF-8 is supported, got \"{}\"", cs.trim()),
                );
            }
        }
        let deserializer = ctx.string_or("deserializer", "LINE");
        let resolved = resolve(&deserializer, DESERIALIZER_TYPES, FLUME_ONLY_DESERIALIZERS);
        if !matches!(resolved, Resolved::Known(_)) {
            ctx.error(
                "deserializer",
                unknown_message("deserializer", &deserializer, &resolved, DESERIALIZER_TYPES),
            );
        }
        let tracking = ctx.string_or("trackingPolicy", "rename");
        if !tracking.trim().eq_ignore_ascii_case("rename") {
            ctx.error(
                "trackingPolicy",
                format!("only rename is supported, got \"{}\"", tracking.trim()),
            );
        }
        let pattern = |key: &str, default: &str| {
            let p = ctx.string_or(key, default);
            if let Err(e) = crate::java_regex::compile_whole(&p) {
                ctx.error(key, e.to_string());
            }
            p
        };
        let include_pattern = pattern("includePattern", "^.*$");
        let ignore_pattern = pattern("ignorePattern", "^$");
        let tracker = PathBuf::from(ctx.string_or("trackerDir", ".flumespool").trim());
        let tracker_dir = if tracker.is_absolute() {
            tracker
        } else {
            spool_dir.join(tracker)
        };
        let header = |flag: &str, key: &str, default: &str| {
            let on = ctx.bool(flag, false);
            let k = ctx.string_or(key, default);
            on.then_some(k)
        };
        let file_header_key = header("fileHeader", "fileHeaderKey", "file");
        let basename_header_key = header("basenameHeader", "basenameHeaderKey", "basename");
        ctx.mark_used("maxBackoff");
        Self {
            file_suffix: ctx.string_or("fileSuffix", ".COMPLETED"),
            delete_policy,
            file_header_key,
            basename_header_key,
            tracker_dir,
            include_pattern,
            ignore_pattern,
            consume_order,
            recursive: ctx.bool("recursiveDirectorySearch", false),
            batch_size: ctx.u32_in(
                "batchSize",
                100,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
            decode_error_policy,
            max_line_length: ctx.u32_in("deserializer.maxLineLength", 2048, 1..=(8 << 20)),
            poll_delay_ms: ctx.u64_in("pollDelay", 500, 1..=3_600_000),
            spool_dir,
        }
    }
}

fn is_utf8_name(cs: &str) -> bool {
    let c = cs.trim();
    c.eq_ignore_ascii_case("UTF-8") || c.eq_ignore_ascii_case("UTF8")
}
