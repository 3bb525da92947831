//! `file_roll`: writes events to files in a directory, starting a new file every
//! `sink.rollInterval` seconds (Flume's `RollingFileSink`).
//!
//! Keys and Flume's defaults: `sink.directory` (required), `sink.rollInterval` (30; 0 never
//! rolls), `sink.batchSize` (100), `sink.serializer` (`TEXT`; also `HEADER_AND_TEXT`) with
//! `sink.serializer.appendNewline` (true), `sink.pathManager` (`DEFAULT`, the only one),
//! `sink.pathManager.prefix` (empty) and `sink.pathManager.extension` (empty); ours:
//! `sink.batchLingerMs` (5: a batch that has its first event waits that long for the rest of
//! `sink.batchSize` before it is written with fewer, so the sink fsyncs once per batch size,
//! not once per source commit; 0 takes what is there, as Flume does). Files are named
//! `<prefix><start millis>-<n>[.<extension>]`, `n` counting from 1, as Flume's
//! `DefaultPathManager` names them.
//!
//! A file is opened when there is a batch to write (Flume opens one at every call, so an idle
//! sink leaves an empty file every `rollInterval`); so a broken directory is noticed, and
//! counted in `ConnectionFailedCount`, when there is something to write, and the batch is
//! rolled back into the channel.
//!
//! Safer than Flume: a batch is written with one `write`, then `fdatasync`ed, and only then is
//! the take committed, so an event removed from the channel is on disk (Flume commits after a
//! flush to the page cache). A new file's directory entry is fsynced too. A failed write is
//! cut back off the file (`ftruncate` to the length before it) and the batch rolled back, so a
//! retry does not leave a partial copy; if even that fails the file is abandoned and the next
//! batch starts a new one. The directory is created if missing. Existing files are never
//! overwritten. A process killed in the middle of a write can leave a torn last line in the
//! file it was writing; those events were not committed and are delivered again.

use super::serializer::Serializer;
use super::{Deliver, SinkContext, SinkError};
use crate::config::context::Ctx;
use crate::metrics::now_epoch_ms;
use file_channel::Event;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Configuration of a file_roll sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRollConfig {
    /// Where files go. `sink.directory`.
    pub directory: PathBuf,
    /// Seconds between new files, 0 for never. `sink.rollInterval`. Default: 30.
    pub roll_interval_s: u64,
    /// Events per transaction. `sink.batchSize`. Default: 100.
    pub batch_size: u32,
    /// How long a batch that has its first event waits for the rest before it is written with
    /// fewer, in milliseconds. `sink.batchLingerMs` (ours). Default: 5.
    pub batch_linger_ms: u64,
    /// How events are written. `sink.serializer`. Default: TEXT.
    pub serializer: Serializer,
    /// File name prefix. `sink.pathManager.prefix`. Default: empty.
    pub prefix: String,
    /// File name extension (without the dot). `sink.pathManager.extension`. Default: empty.
    pub extension: String,
}

impl FileRollConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let directory = ctx
            .required("sink.directory")
            .map(PathBuf::from)
            .unwrap_or_default();
        if !directory.as_os_str().is_empty() {
            if let Some(why) = directory_obstacle(&directory) {
                ctx.error("sink.directory", why);
            }
        }
        let roll_interval_s = ctx.u64_in("sink.rollInterval", 30, 0..=u64::from(u32::MAX));
        let batch_size = ctx.u32_in(
            "sink.batchSize",
            100,
            1..=file_channel::limits::MAX_EVENTS_PER_TXN,
        );
        let batch_linger_ms = ctx.u64_in(
            "sink.batchLingerMs",
            DEFAULT_BATCH_LINGER_MS,
            0..=BATCH_LINGER_MS_MAX,
        );
        let serializer = Serializer::parse(ctx, "sink.serializer");
        if let Some(pm) = ctx.string("sink.pathManager") {
            if !pm.trim().eq_ignore_ascii_case("default") {
                ctx.error(
                    "sink.pathManager",
                    format!("unknown path manager \"{}\"; known: DEFAULT", pm.trim()),
                );
            }
        }
        Self {
            directory,
            roll_interval_s,
            batch_size,
            batch_linger_ms,
            serializer,
            prefix: ctx.string_or("sink.pathManager.prefix", ""),
            extension: ctx.string_or("sink.pathManager.extension", ""),
        }
    }
}

/// Default `sink.batchLingerMs`: a batch fills from source commits arriving within a few
/// milliseconds, so the sink fsyncs once per `sink.batchSize` events, not once per source
/// commit; an event waits at most this long more before it is written.
pub const DEFAULT_BATCH_LINGER_MS: u64 = 5;
/// Largest `sink.batchLingerMs`: a minute.
const BATCH_LINGER_MS_MAX: u64 = 60_000;

/// Why `dir` can never be used as the sink's directory, if something on disk already says so:
/// it, or the nearest of its ancestors that exists, is not a directory (a regular file, a FIFO,
/// ...), or cannot be looked at. Checked when the configuration is read, so that `validate`
/// and the agent's start refuse it instead of the sink retrying forever. A directory that is
/// merely missing is fine: the sink creates it.
pub fn directory_obstacle(dir: &Path) -> Option<String> {
    for ancestor in dir.ancestors() {
        let shown = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        match std::fs::metadata(shown) {
            Ok(m) if m.is_dir() => return None,
            Ok(m) if ancestor == dir => {
                return Some(format!(
                    "{} is {}, not a directory",
                    dir.display(),
                    file_kind(&m.file_type())
                ))
            }
            Ok(m) => {
                return Some(format!(
                    "{} can never be created: {} is {}, not a directory",
                    dir.display(),
                    shown.display(),
                    file_kind(&m.file_type())
                ))
            }
            // Missing, or a parent of it is not a directory: a nearer ancestor says which.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory => {}
            Err(e) => {
                return Some(format!(
                    "{} cannot be used: cannot look at {}: {e}",
                    dir.display(),
                    shown.display()
                ))
            }
        }
    }
    None
}

/// What kind of file this is, in words, for messages.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    file_channel::storage::EntryKind::of(t).describe()
}

#[derive(Debug)]
struct Output {
    file: File,
    path: PathBuf,
    len: u64,
}

/// The file_roll sink.
#[derive(Debug)]
pub struct FileRollSink {
    config: FileRollConfig,
    ctx: SinkContext,
    series_ms: u64,
    index: u64,
    output: Option<Output>,
    next_roll: Option<Instant>,
    buf: Vec<u8>,
}

impl FileRollSink {
    /// A file_roll sink; nothing is opened before the first `process`.
    pub fn new(config: FileRollConfig, ctx: SinkContext) -> Self {
        ctx.counters.lifetime.started();
        let next_roll = (config.roll_interval_s > 0)
            .then(|| Instant::now() + Duration::from_secs(config.roll_interval_s));
        Self {
            config,
            ctx,
            series_ms: now_epoch_ms(),
            index: 0,
            output: None,
            next_roll,
            buf: Vec::new(),
        }
    }

    fn io(&self, op: &'static str, path: &Path, source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink: self.ctx.name.to_string(),
            op,
            path: path.to_owned(),
            source,
        }
    }

    fn file_name(&self, index: u64) -> String {
        let mut n = format!("{}{}-{index}", self.config.prefix, self.series_ms);
        if !self.config.extension.is_empty() {
            n.push('.');
            n.push_str(&self.config.extension);
        }
        n
    }

    /// Closes the current file (flushed and synced) when its roll interval has passed.
    fn roll_if_due(&mut self) -> Result<(), SinkError> {
        let Some(at) = self.next_roll else {
            return Ok(());
        };
        let now = Instant::now();
        if now < at {
            return Ok(());
        }
        let interval = Duration::from_secs(self.config.roll_interval_s);
        let mut next = at;
        while next <= now {
            next += interval;
        }
        self.next_roll = Some(next);
        self.close_output()
    }

    fn close_output(&mut self) -> Result<(), SinkError> {
        if let Some(out) = self.output.take() {
            let c = &self.ctx.counters;
            if let Err(e) = out.file.sync_all() {
                c.connection_failed_count.fetch_add(1, Relaxed);
                return Err(self.io("sync", &out.path, e));
            }
            c.connection_closed_count.fetch_add(1, Relaxed);
            tracing::debug!(sink = %self.ctx.name, file = %out.path.display(), "closed");
        }
        Ok(())
    }

    /// Opens the next file (creating the directory if needed) if none is open.
    fn ensure_output(&mut self) -> Result<(), SinkError> {
        if self.output.is_some() {
            return Ok(());
        }
        let c = self.ctx.counters.clone();
        let dir = self.config.directory.clone();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            c.connection_failed_count.fetch_add(1, Relaxed);
            return Err(self.io("create directory", &dir, e));
        }
        loop {
            self.index += 1;
            let path = dir.join(self.file_name(self.index));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
                        c.connection_failed_count.fetch_add(1, Relaxed);
                        return Err(self.io("fsync directory", &dir, e));
                    }
                    c.connection_created_count.fetch_add(1, Relaxed);
                    tracing::debug!(sink = %self.ctx.name, file = %path.display(), "opened");
                    self.output = Some(Output { file, path, len: 0 });
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    c.connection_failed_count.fetch_add(1, Relaxed);
                    return Err(self.io("create", &path, e));
                }
            }
        }
    }

    /// Writes and syncs `self.buf`; on failure cuts the file back and abandons it if needed.
    fn write_batch(&mut self) -> Result<(), SinkError> {
        let Some(out) = self.output.as_mut() else {
            return Ok(());
        };
        let result = out
            .file
            .write_all(&self.buf)
            .and_then(|()| out.file.sync_data());
        match result {
            Ok(()) => {
                out.len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let path = out.path.clone();
                let restored = out
                    .file
                    .set_len(out.len)
                    .and_then(|()| out.file.sync_data());
                if restored.is_err() {
                    tracing::warn!(sink = %self.ctx.name, file = %path.display(), "cannot cut a failed write back off; starting a new file");
                    self.output = None;
                }
                Err(self.io("write", &path, e))
            }
        }
    }
}

impl Deliver for FileRollSink {
    fn context(&self) -> &SinkContext {
        &self.ctx
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size as usize
    }

    fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.config.batch_linger_ms)
    }

    fn before_take(&mut self) -> Result<(), SinkError> {
        self.roll_if_due()
    }

    fn deliver(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        self.buf.clear();
        for e in &events {
            self.config.serializer.write(e, &mut self.buf);
        }
        self.ensure_output()?;
        self.write_batch().inspect_err(|_| {
            self.ctx.counters.event_write_fail.fetch_add(1, Relaxed);
        })
    }

    fn on_stop(&mut self) {
        if let Err(e) = self.close_output() {
            tracing::error!(error = %e, "closing the output failed");
        }
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Status;
    use crate::sink::test_support::{ctx, entries, sink_ctx};
    use crate::sink::Sink;

    fn config(dir: &Path, batch: u32) -> FileRollConfig {
        FileRollConfig {
            directory: dir.to_owned(),
            roll_interval_s: 0,
            batch_size: batch,
            batch_linger_ms: 0,
            serializer: Serializer::Text {
                append_newline: true,
            },
            prefix: String::new(),
            extension: String::new(),
        }
    }

    fn read_all(dir: &Path) -> (Vec<String>, String) {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let text = names
            .iter()
            .map(|n| std::fs::read_to_string(dir.join(n)).expect("read"))
            .collect();
        (names, text)
    }

    #[test]
    fn parse_flume_keys() {
        let list = entries(&[
            ("sink.directory", "/tmp/out"),
            ("sink.rollInterval", "0"),
            ("sink.batchSize", "10"),
            ("sink.batchLingerMs", "0"),
            (
                "sink.serializer",
                "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder",
            ),
            ("sink.pathManager.prefix", "app-"),
            ("sink.pathManager.extension", "log"),
        ]);
        let c = FileRollConfig::parse(&ctx(&list));
        assert_eq!(c.directory, PathBuf::from("/tmp/out"));
        assert_eq!(c.roll_interval_s, 0);
        assert_eq!((c.batch_size, c.batch_linger_ms), (10, 0));
        assert_eq!(
            c.serializer,
            Serializer::HeaderAndText {
                append_newline: true
            }
        );
        assert_eq!((c.prefix.as_str(), c.extension.as_str()), ("app-", "log"));
        let list = entries(&[("sink.directory", "/x")]);
        let c = FileRollConfig::parse(&ctx(&list));
        assert_eq!((c.roll_interval_s, c.batch_size), (30, 100));
        assert_eq!(c.batch_linger_ms, DEFAULT_BATCH_LINGER_MS);
        let list = entries(&[("sink.directory", "/x"), ("sink.batchLingerMs", "60001")]);
        let c = ctx(&list);
        FileRollConfig::parse(&c);
        assert!(c.has_errors(), "a linger over a minute is refused");
    }

    #[test]
    fn writes_batches_in_flume_file_names_and_commits_after_sync() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out/sub");
        let ctx = sink_ctx(&["a", "b", "c"]);
        let channel = ctx.channel.clone();
        let mut cfg = config(&dir, 2);
        cfg.prefix = "p-".into();
        cfg.extension = "txt".into();
        let mut s = FileRollSink::new(cfg, ctx);
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(
            s.process().expect("a partial batch is Ready"),
            Status::Ready
        );
        assert!(channel.is_empty());
        assert_eq!(s.process().expect("ok"), Status::Backoff);
        s.stop();
        let (names, text) = read_all(&dir);
        assert_eq!(text, "a\nb\nc\n");
        assert_eq!(names.len(), 1);
        let n = &names[0];
        assert!(n.starts_with("p-") && n.ends_with("-1.txt"), "{n}");
    }

    #[test]
    fn a_broken_directory_fails_and_keeps_the_events_in_the_channel() {
        let tmp = tempfile::tempdir().expect("tmp");
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, "not a directory").expect("write");
        let ctx = sink_ctx(&["a"]);
        let channel = ctx.channel.clone();
        let counters = ctx.counters.clone();
        let mut s = FileRollSink::new(config(&blocker.join("out"), 10), ctx);
        let e = s.process().expect_err("cannot create the directory");
        assert_eq!(
            counters.event_write_fail.load(Relaxed),
            0,
            "nothing was written"
        );
        assert!(
            e.to_string()
                .starts_with("sink k1: cannot create directory "),
            "{e}"
        );
        assert_eq!(channel.len(), 1);
        assert_eq!(counters.connection_failed_count.load(Relaxed), 1);
        // Repair it: the next call delivers.
        std::fs::remove_file(&blocker).expect("rm");
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert!(channel.is_empty());
        assert_eq!(read_all(&blocker.join("out")).1, "a\n");
    }

    #[test]
    fn rolls_to_a_new_file_after_the_interval() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ctx = sink_ctx(&["a"]);
        let channel = ctx.channel.clone();
        let mut cfg = config(tmp.path(), 10);
        cfg.roll_interval_s = 1;
        let mut s = FileRollSink::new(cfg, ctx);
        s.process().expect("ok");
        s.next_roll = Some(Instant::now() - Duration::from_millis(1));
        let mut tx = channel.transaction();
        tx.put(&file_channel::Event::new("b")).expect("put");
        tx.commit().expect("commit");
        s.process().expect("ok");
        s.stop();
        let (names, text) = read_all(tmp.path());
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("-1")) && names.iter().any(|n| n.ends_with("-2")));
        assert_eq!(text.len(), 4);
    }
}
