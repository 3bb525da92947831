//! The TAILDIR source's keys, Flume's defaults and their validation (`TaildirConfig`,
//! `FileGroup`).

use super::*;

/// One `filegroups.<g>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileGroup {
    /// The group's name.
    pub name: String,
    /// The directory (literal).
    pub dir: PathBuf,
    /// The regular expression file names must match as a whole.
    pub pattern: String,
    /// `headers.<g>.*`, in file order.
    pub headers: Vec<(String, String)>,
}

/// Configuration of a TAILDIR source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaildirConfig {
    /// `filegroups` with their paths and headers.
    pub groups: Vec<FileGroup>,
    /// `positionFile`. Default: `~/.flume/taildir_position.json`.
    pub position_file: PathBuf,
    /// `batchSize`. Default: 100.
    pub batch_size: u32,
    /// `skipToEnd`. Default: false.
    pub skip_to_end: bool,
    /// `idleTimeout`, ms. Default: 120000.
    pub idle_timeout_ms: u64,
    /// `writePosInterval`, ms. Default: 3000.
    pub write_pos_interval_ms: u64,
    /// `byteOffsetHeader`. Default: false.
    pub byte_offset_header: bool,
    /// `fileHeaderKey` when `fileHeader` is true. Default: off, key `file`.
    pub file_header_key: Option<String>,
    /// `maxBatchCount`. Default: unlimited.
    pub max_batch_count: u64,
    /// Back-off settings.
    pub backoff: Backoff,
}

impl TaildirConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let names = ctx.list("filegroups");
        if !ctx.has("filegroups") {
            ctx.required("filegroups");
        } else if names.is_empty() {
            ctx.error("filegroups", "names no file group");
        }
        let header_entries = ctx.prefixed("headers.");
        let mut groups = Vec::new();
        for name in &names {
            let key = format!("filegroups.{name}");
            let Some(path) = ctx.required(&key) else {
                continue;
            };
            let (dir, pattern) = split_group_path(&path);
            if let Err(e) = crate::java_regex::compile_whole(&pattern) {
                ctx.error(&key, e.to_string());
            }
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            let headers = header_entries
                .iter()
                .filter_map(|(rest, e)| {
                    let (g, k) = rest.split_once('.')?;
                    (g == name).then(|| (k.to_owned(), e.value.clone()))
                })
                .collect();
            groups.push(FileGroup {
                name: name.clone(),
                dir,
                pattern,
                headers,
            });
        }
        for (rest, e) in &header_entries {
            let g = rest.split_once('.').map_or(*rest, |(g, _)| g);
            if !names.iter().any(|n| n == g) {
                ctx.warn(
                    &format!("headers.{rest}"),
                    format!(
                        "file group {g} is not in filegroups; header ignored (line {})",
                        e.line
                    ),
                );
            }
        }
        let position_file = match ctx.string("positionFile") {
            Some(p) => expand_home(p.trim()),
            None => expand_home("~/.flume/taildir_position.json"),
        };
        let file_on = ctx.bool("fileHeader", false);
        let file_key = ctx.string_or("fileHeaderKey", "file");
        ctx.mark_used("cachePatternMatching");
        Self {
            groups,
            position_file,
            batch_size: ctx.u32_in(
                "batchSize",
                100,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
            skip_to_end: ctx.bool("skipToEnd", false),
            idle_timeout_ms: ctx.u64_in("idleTimeout", 120_000, 0..=i64::MAX as u64),
            write_pos_interval_ms: ctx.u64_in("writePosInterval", 3000, 0..=i64::MAX as u64),
            byte_offset_header: ctx.bool("byteOffsetHeader", false),
            file_header_key: file_on.then_some(file_key),
            max_batch_count: ctx.u64_in("maxBatchCount", i64::MAX as u64, 1..=i64::MAX as u64),
            backoff: Backoff::parse(ctx),
        }
    }
}

/// `~/x` → `$HOME/x`; anything else as it is.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Splits `filegroups.<g>` into the directory and the file-name pattern.
pub fn split_group_path(path: &str) -> (PathBuf, String) {
    match path.rfind('/') {
        Some(0) => (PathBuf::from("/"), path[1..].to_owned()),
        Some(i) => (PathBuf::from(&path[..i]), path[i + 1..].to_owned()),
        None => (PathBuf::from("."), path.to_owned()),
    }
}
