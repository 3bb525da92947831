//! `spooldir`: reads files dropped into a directory, one event per line, and marks each file
//! done once all its events are committed (Flume's `SpoolDirectorySource`).
//!
//! Keys and Flume's defaults: `spoolDir` (required), `fileSuffix` (`.COMPLETED`),
//! `deletePolicy` (`never` | `immediate`), `fileHeader` (false) / `fileHeaderKey` (`file`),
//! `basenameHeader` (false) / `basenameHeaderKey` (`basename`), `trackerDir` (`.flumespool`,
//! relative to `spoolDir`), `includePattern` (`^.*$`) / `ignorePattern` (`^$`), both matched
//! against the whole file name, `consumeOrder` (`oldest` | `youngest` | `random`),
//! `recursiveDirectorySearch` (false), `batchSize` (100), `inputCharset` (`UTF-8`, the only
//! one), `decodeErrorPolicy` (`FAIL` | `REPLACE` | `IGNORE`), `deserializer` (`LINE`, the only
//! one) with `deserializer.maxLineLength` (2048 characters; longer lines are cut, the rest of
//! the line skipped) and `deserializer.outputCharset` (`UTF-8`), `pollDelay` (500 ms),
//! `trackingPolicy` (`rename`, the only one), `maxBackoff` (read, unused: a failed put is
//! retried every `pollDelay`).
//!
//! Files are taken one at a time in `consumeOrder` (ties by path); names starting with `.` are
//! skipped (as are directories when not recursive), and so is `trackerDir`.
//!
//! ## Progress and crashes
//!
//! After each batch is committed to every required channel, the tracker file
//! `<trackerDir>/.flumespool-main.meta` is replaced atomically with the file's path, inode, and
//! the committed byte offset and line count. A restart resumes the tracked file first, at that
//! offset. When a file's last batch is committed it is renamed to `<name><fileSuffix>` (or
//! deleted), the directory fsynced, and the tracker removed. Guarantee: nothing committed is
//! read again except the one batch whose commit finished but whose tracker update did not
//! (a kill between the two): at most `batchSize` duplicated events per crash, none lost.
//!
//! ## Failing loudly, as Flume does
//!
//! A file whose size or modification time changed between opening it and marking it done, a
//! done name that already exists (for another file), or a line that is not UTF-8 under
//! `decodeErrorPolicy = FAIL` stops the source: the error is logged, counted
//! (`GenericProcessingFail`, or `EventReadFail` for decoding), and nothing more is read until
//! the agent restarts. Everything committed so far is in the tracker, so a restart (after the
//! operator fixed the cause) resumes without loss.
//!
//! The keys are parsed in `config`, the directory listing and line reading are in `read`; this
//! module holds the file filter, the tracker and the source itself.

use super::durable_file::{remove_durably, sync_dir, write_atomic};
use super::{Backoff, PollableSource, SourceContext, SourceError, Status};
use crate::config::context::Ctx;
use crate::config::registry::{
    resolve, unknown_message, Resolved, DESERIALIZER_TYPES, FLUME_ONLY_DESERIALIZERS,
};
use crate::event::set_header;
use fancy_regex::Regex;
use file_channel::Event;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

/// Name of the tracker file inside `trackerDir` (Flume's name).
pub const TRACKER_FILE_NAME: &str = ".flumespool-main.meta";
/// Most directory entries looked at in one scan, so a huge directory cannot exhaust memory.
pub const MAX_FILES_PER_SCAN: usize = 1_000_000;
/// Deepest directory level entered with `recursiveDirectorySearch`.
pub const MAX_DIR_DEPTH: usize = 64;
/// Largest tracker file read back.
const MAX_TRACKER_BYTES: u64 = 64 << 10;

mod config;
mod read;

pub use config::{ConsumeOrder, DecodeErrorPolicy, DeletePolicy, SpoolDirConfig};
use read::{read_line, scan};

/// The file-name filter: `includePattern`, `ignorePattern`, hidden names, the done suffix.
#[derive(Clone, Debug)]
pub struct NameFilter {
    include: Regex,
    ignore: Regex,
    suffix: String,
}

impl NameFilter {
    /// The filter of `config` (its patterns were checked when parsed); both are Java patterns
    /// matched against the whole name, as Flume's `Matcher.matches()` does.
    pub fn new(config: &SpoolDirConfig) -> Result<Self, crate::java_regex::PatternError> {
        Ok(Self {
            include: crate::java_regex::compile_whole(&config.include_pattern)?,
            ignore: crate::java_regex::compile_whole(&config.ignore_pattern)?,
            suffix: config.file_suffix.clone(),
        })
    }

    /// Whether a file named `name` is to be read.
    pub fn accepts(&self, name: &str) -> bool {
        !name.starts_with('.')
            && (self.suffix.is_empty() || !name.ends_with(&self.suffix))
            && crate::java_regex::is_match(&self.include, name)
            && !crate::java_regex::is_match(&self.ignore, name)
    }
}

/// What the tracker file records: the file being read and how far it is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerState {
    /// The file, relative to `spoolDir`.
    pub file: String,
    /// Its inode.
    pub inode: u64,
    /// Bytes committed (the next line starts here).
    pub pos: u64,
    /// Lines committed.
    pub line: u64,
}

impl TrackerState {
    /// The tracker file's content: `{"file":…,"inode":…,"pos":…,"line":…}`.
    pub fn encode(&self) -> String {
        serde_json::json!({
            "file": self.file,
            "inode": self.inode,
            "pos": self.pos,
            "line": self.line,
        })
        .to_string()
    }

    /// Reads [`TrackerState::encode`]'s output; `None` if it is not that.
    pub fn decode(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(Self {
            file: v.get("file")?.as_str()?.to_owned(),
            inode: v.get("inode")?.as_u64()?,
            pos: v.get("pos")?.as_u64()?,
            line: v.get("line")?.as_u64()?,
        })
    }
}

/// The file being read.
#[derive(Debug)]
struct Current {
    path: PathBuf,
    rel: String,
    inode: u64,
    reader: BufReader<File>,
    /// Committed byte offset and line count.
    pos: u64,
    line: u64,
    opened_len: u64,
    opened_mtime: Option<SystemTime>,
}

/// One line read: its text and the bytes it took in the file.
struct Line {
    body: String,
    consumed: u64,
}

/// The spooldir source.
#[derive(Debug)]
pub struct SpoolDirSource {
    config: SpoolDirConfig,
    ctx: SourceContext,
    filter: Option<NameFilter>,
    current: Option<Current>,
    halted: bool,
    resumed: bool,
    rng: u64,
}

impl SpoolDirSource {
    /// A spooldir source; the directory is looked at on the first call.
    pub fn new(config: SpoolDirConfig, ctx: SourceContext) -> Self {
        ctx.counters.lifetime.started();
        let filter = match NameFilter::new(&config) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(source = %ctx.name, error = %e, "invalid pattern; source stopped");
                None
            }
        };
        let rng = crate::metrics::now_epoch_ms() | 1;
        Self {
            config,
            ctx,
            filter,
            current: None,
            halted: false,
            resumed: false,
            rng,
        }
    }

    fn tracker_path(&self) -> PathBuf {
        self.config.tracker_dir.join(TRACKER_FILE_NAME)
    }

    /// Stops the source for good (until restart), loudly.
    fn halt(&mut self, message: String, read_fail: bool) {
        let c = &self.ctx.counters;
        if read_fail {
            c.event_read_fail.fetch_add(1, Relaxed);
        } else {
            c.generic_processing_fail.fetch_add(1, Relaxed);
        }
        tracing::error!(source = %self.ctx.name, "{message}; the source stops reading until the agent is restarted (committed progress is kept in the tracker)");
        self.halted = true;
    }

    /// On the first call: the tracker's file, if it is still there and not done.
    fn resume_from_tracker(&mut self) -> std::io::Result<()> {
        self.resumed = true;
        let path = self.tracker_path();
        let text = match File::open(&path) {
            Ok(f) => {
                let mut s = String::new();
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(f, MAX_TRACKER_BYTES),
                    &mut s,
                )?;
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(state) = TrackerState::decode(&text) else {
            tracing::warn!(source = %self.ctx.name, tracker = %path.display(), "tracker file is unreadable; ignored");
            return remove_durably(&path);
        };
        let file = self.config.spool_dir.join(&state.file);
        match std::fs::metadata(&file) {
            Ok(m) if m.ino() == state.inode && m.len() >= state.pos => {
                tracing::info!(source = %self.ctx.name, file = %file.display(), pos = state.pos, line = state.line, "resuming from the tracker");
                self.open(file, state.file, state.pos, state.line)
            }
            _ => {
                tracing::info!(source = %self.ctx.name, file = %state.file, "tracked file is done or gone; tracker removed");
                remove_durably(&path)
            }
        }
    }

    fn open(&mut self, path: PathBuf, rel: String, pos: u64, line: u64) -> std::io::Result<()> {
        let f = File::open(&path)?;
        let m = f.metadata()?;
        let mut reader = BufReader::with_capacity(64 << 10, f);
        reader.seek(SeekFrom::Start(pos))?;
        self.current = Some(Current {
            path,
            rel,
            inode: m.ino(),
            reader,
            pos,
            line,
            opened_len: m.len(),
            opened_mtime: m.modified().ok(),
        });
        Ok(())
    }

    /// Picks the next file in `consumeOrder`.
    fn next_file(&mut self) -> std::io::Result<Option<(PathBuf, String)>> {
        let Some(filter) = &self.filter else {
            return Ok(None);
        };
        let mut found = Vec::new();
        scan(
            &self.config.spool_dir,
            &self.config.tracker_dir,
            filter,
            self.config.recursive,
            0,
            &mut found,
        )?;
        if found.is_empty() {
            return Ok(None);
        }
        let pick = match self.config.consume_order {
            ConsumeOrder::Oldest => found.iter().min_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0))),
            ConsumeOrder::Youngest => found
                .iter()
                .min_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))),
            ConsumeOrder::Random => {
                // xorshift: no need for a cryptographic choice.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                found.get((self.rng % found.len() as u64) as usize)
            }
        };
        Ok(pick.map(|(path, _)| {
            let rel = path
                .strip_prefix(&self.config.spool_dir)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            (path.clone(), rel)
        }))
    }

    /// Reads up to a batch of lines; returns them, the bytes they took, and whether the end of
    /// the file was reached. A decoding failure under `FAIL` is an error message.
    fn read_batch(&mut self) -> Result<(Vec<Event>, u64, bool), String> {
        let batch = self.config.batch_size as usize;
        let max_chars = self.config.max_line_length as usize;
        let policy = self.config.decode_error_policy;
        let file_key = self.config.file_header_key.clone();
        let base_key = self.config.basename_header_key.clone();
        let Some(cur) = self.current.as_mut() else {
            return Ok((Vec::new(), 0, false));
        };
        let abs = std::path::absolute(&cur.path)
            .unwrap_or_else(|_| cur.path.clone())
            .to_string_lossy()
            .into_owned();
        let base = cur
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut events = Vec::with_capacity(batch.min(1024));
        let mut consumed = 0u64;
        let mut eof = false;
        let mut raw = Vec::new();
        while events.len() < batch {
            let offset = cur.pos + consumed;
            let line = read_line(&mut cur.reader, max_chars, policy, &mut raw)
                .map_err(|e| format!("cannot read {} at byte {offset}: {e}", cur.path.display()))?;
            let Some(line) = line else {
                eof = true;
                break;
            };
            let Line { body, consumed: n } = line.map_err(|()| {
                format!(
                    "{} is not valid UTF-8 in the line at byte {offset} (decodeErrorPolicy = FAIL)",
                    cur.path.display()
                )
            })?;
            consumed += n;
            let mut e = Event::new(body.into_bytes());
            if let Some(k) = &file_key {
                set_header(&mut e, k, abs.clone());
            }
            if let Some(k) = &base_key {
                set_header(&mut e, k, base.clone());
            }
            events.push(e);
        }
        if !eof && events.len() == batch {
            // Look ahead so the last batch of a file marks it done at once.
            eof = cur.reader.fill_buf().map(|b| b.is_empty()).unwrap_or(false);
        }
        Ok((events, consumed, eof))
    }

    /// Marks the current file done: checks it did not change, renames or deletes it, removes
    /// the tracker. On a violation the source halts and the file stays as it is.
    fn finish_file(&mut self) -> Result<(), String> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let m = std::fs::metadata(&cur.path)
            .map_err(|e| format!("cannot stat {}: {e}", cur.path.display()))?;
        if m.ino() != cur.inode
            || m.len() != cur.opened_len
            || m.modified().ok() != cur.opened_mtime
        {
            let msg = format!(
                "file has been modified since being read: {} (size {} → {})",
                cur.path.display(),
                cur.opened_len,
                m.len()
            );
            self.current = Some(cur);
            return Err(msg);
        }
        let dir = cur.path.parent().unwrap_or(Path::new("."));
        match self.config.delete_policy {
            DeletePolicy::Immediate => {
                std::fs::remove_file(&cur.path)
                    .map_err(|e| format!("cannot delete {}: {e}", cur.path.display()))?;
            }
            DeletePolicy::Never => {
                let mut dest = cur.path.clone().into_os_string();
                dest.push(&self.config.file_suffix);
                let dest = PathBuf::from(dest);
                // A hard link cannot replace an existing name: the check and the rename are
                // one step. A link left by a crash between link and unlink is the same inode.
                if let Err(e) = std::fs::hard_link(&cur.path, &dest) {
                    let same = e.kind() == std::io::ErrorKind::AlreadyExists
                        && std::fs::metadata(&dest).is_ok_and(|d| d.ino() == cur.inode);
                    if !same {
                        let msg = if e.kind() == std::io::ErrorKind::AlreadyExists {
                            format!(
                                "file name has been re-used with different files; spooling assumptions violated for {}",
                                dest.display()
                            )
                        } else {
                            format!(
                                "cannot rename {} to {}: {e}",
                                cur.path.display(),
                                dest.display()
                            )
                        };
                        self.current = Some(cur);
                        return Err(msg);
                    }
                }
                std::fs::remove_file(&cur.path)
                    .map_err(|e| format!("cannot rename {}: {e}", cur.path.display()))?;
            }
        }
        sync_dir(dir).map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
        remove_durably(&self.tracker_path())
            .map_err(|e| format!("cannot remove the tracker: {e}"))?;
        tracing::info!(source = %self.ctx.name, file = %cur.path.display(), lines = cur.line, "file done");
        Ok(())
    }
}

impl PollableSource for SpoolDirSource {
    fn process(&mut self) -> Result<Status, SourceError> {
        if self.halted {
            return Ok(Status::Backoff);
        }
        if !self.resumed {
            if let Err(e) = self.resume_from_tracker() {
                self.halt(format!("cannot read the tracker: {e}"), false);
                return Ok(Status::Backoff);
            }
        }
        if self.current.is_none() {
            match self.next_file() {
                Ok(Some((path, rel))) => {
                    // A new file: an old tracker (if any) belongs to a file already done.
                    if let Err(e) = std::fs::create_dir_all(&self.config.tracker_dir) {
                        self.halt(
                            format!(
                                "cannot create trackerDir {}: {e}",
                                self.config.tracker_dir.display()
                            ),
                            false,
                        );
                        return Ok(Status::Backoff);
                    }
                    if let Err(e) = self.open(path.clone(), rel, 0, 0) {
                        tracing::warn!(source = %self.ctx.name, file = %path.display(), error = %e, "cannot open file; will retry");
                        return Ok(Status::Backoff);
                    }
                    tracing::info!(source = %self.ctx.name, file = %path.display(), "reading file");
                }
                Ok(None) => return Ok(Status::Backoff),
                Err(e) => {
                    self.ctx
                        .counters
                        .generic_processing_fail
                        .fetch_add(1, Relaxed);
                    tracing::warn!(source = %self.ctx.name, dir = %self.config.spool_dir.display(), error = %e, "cannot list the spool directory");
                    return Ok(Status::Backoff);
                }
            }
        }
        let (events, consumed, eof) = match self.read_batch() {
            Ok(b) => b,
            Err(msg) => {
                let read_fail = msg.contains("UTF-8");
                self.halt(msg, read_fail);
                return Ok(Status::Backoff);
            }
        };
        if !events.is_empty() {
            let n = events.len() as u64;
            let c = &self.ctx.counters;
            c.event_received_count.fetch_add(n, Relaxed);
            c.append_batch_received_count.fetch_add(1, Relaxed);
            if let Err(error) = self.ctx.processor.process_batch(events) {
                c.channel_write_fail.fetch_add(1, Relaxed);
                let e = SourceError::Channel {
                    source_name: self.ctx.name.to_string(),
                    error,
                };
                tracing::warn!(error = %e, "batch not committed; it will be read again");
                if let Some(cur) = self.current.as_mut() {
                    if let Err(e) = cur.reader.seek(SeekFrom::Start(cur.pos)) {
                        let msg = format!("cannot seek back in {}: {e}", cur.path.display());
                        self.halt(msg, false);
                    }
                }
                return Ok(Status::Backoff);
            }
            c.event_accepted_count.fetch_add(n, Relaxed);
            c.append_batch_accepted_count.fetch_add(1, Relaxed);
            let tracker = self.tracker_path();
            if let Some(cur) = self.current.as_mut() {
                cur.pos += consumed;
                cur.line += n;
                let state = TrackerState {
                    file: cur.rel.clone(),
                    inode: cur.inode,
                    pos: cur.pos,
                    line: cur.line,
                };
                if let Err(e) = write_atomic(&tracker, state.encode().as_bytes()) {
                    let msg = format!("cannot write the tracker {}: {e}", tracker.display());
                    self.halt(msg, false);
                    return Ok(Status::Backoff);
                }
            }
        }
        if eof {
            if let Err(msg) = self.finish_file() {
                self.halt(msg, false);
                return Ok(Status::Backoff);
            }
        }
        Ok(Status::Ready)
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            increment_ms: self.config.poll_delay_ms,
            max_ms: self.config.poll_delay_ms,
        }
    }

    fn stop(&mut self) {
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests;
