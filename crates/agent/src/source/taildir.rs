//! `TAILDIR`: follows files matched by patterns, line by line, remembering how far each is
//! committed in a JSON position file (Flume's `TaildirSource`).
//!
//! Keys and Flume's defaults: `filegroups` (names, required), `filegroups.<g>` (a path whose
//! file-name part is a regular expression matched against whole file names; the directory part
//! is literal), `headers.<g>.<key>` = value (added to every event of group `g`),
//! `positionFile` (`~/.flume/taildir_position.json`), `batchSize` (100), `skipToEnd` (false),
//! `idleTimeout` (120000 ms), `writePosInterval` (3000 ms), `byteOffsetHeader` (false; header
//! `byteoffset` = the line's first byte), `fileHeader` (false) / `fileHeaderKey` (`file`; the
//! absolute path), `maxBatchCount` (unlimited: batches read from one file before the next file
//! gets a turn), `cachePatternMatching` (read, unused), and the pollable back-off keys.
//!
//! An event is a line without its `\n` (and a `\r` before it), bytes as they are. A last line
//! without `\n` waits until the line is complete. Lines longer than [`MAX_LINE_BYTES`] are cut
//! into events of that size.
//!
//! ## Following files
//!
//! Files are known by inode, polled (as Flume does): every call lists each group's directory.
//! - A known inode under a new matching name (rename) keeps its position.
//! - A known inode no longer matching (rotated to `app.log.1`, or deleted) stays open and is
//!   read to its end; it is dropped once at its end and idle for `idleTimeout`. Its data comes
//!   before the new file's in the same call.
//! - A file smaller than its position (truncated, as by `copytruncate`) is read again from 0.
//! - `skipToEnd` applies to files found by the first scan that are not in the position file.
//!
//! ## Position file
//!
//! Flume's format, `[{"inode":1,"pos":2,"file":"/abs/path"}]` (Gson's escaping), replaced
//! atomically (temp + fsync + rename + directory fsync) after every committed batch, every
//! `writePosInterval` when something else changed (a rename, a drop, a truncation), and at
//! stop. It only ever holds positions whose events are committed to every required channel.
//! A restart resumes each file at its recorded position, found by inode (so a file renamed
//! while the agent was down keeps its place); a file no longer matched is read to its end, at
//! the path recorded or wherever its inode now is in the groups' directories, with the headers
//! of the group its recorded path matches (the position file, Flume's format, does not name
//! the group; Flume itself forgets such files). Guarantee: after
//! a kill, only the batch whose commit finished but whose position write did not is read again
//! (at most `batchSize` events, one file at a time); nothing committed is lost. So a batch's
//! commit is submitted only after the previous batch's position is written; what overlaps the
//! commit's fsync is reading the next batch's lines.
//!
//! The keys are parsed in `config`, the position file is written and read in `positions`;
//! this module follows the files.

use super::durable_file::write_atomic;
use super::{Backoff, PollableSource, SourceContext, SourceError, Status};
use crate::config::context::Ctx;
use crate::event::set_header;
use fancy_regex::Regex;
use file_channel::Event;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Longest line kept in one event; longer lines are split.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Bytes read at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// Largest position file read back.
const MAX_POSITION_FILE_BYTES: u64 = 64 << 20;
/// Most files followed at once.
pub const MAX_FILES: usize = 100_000;

mod config;
mod positions;

pub use config::{split_group_path, FileGroup, TaildirConfig};
pub use positions::{decode_positions, encode_positions, Position};

/// A followed file.
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    /// The group it matched last (none: known only from the position file).
    group: Option<usize>,
    /// Committed bytes.
    pos: u64,
    file: Option<File>,
    /// Seen under a matching name by the last scan.
    matched: bool,
    /// Last time data was read (or the file was found).
    last_active: Instant,
}

/// The TAILDIR source.
#[derive(Debug)]
pub struct TaildirSource {
    config: TaildirConfig,
    ctx: SourceContext,
    patterns: Vec<Option<Regex>>,
    tails: BTreeMap<u64, Tail>,
    /// Positions loaded at start and not yet matched to a file.
    loaded: Option<HashMap<u64, Position>>,
    first_scan: bool,
    dirty: bool,
    last_write: Instant,
    /// The read buffer, kept across batches ([`READ_CHUNK_BYTES`]).
    read_buf: Vec<u8>,
}

impl TaildirSource {
    /// A TAILDIR source; the position file is read on the first call.
    pub fn new(config: TaildirConfig, ctx: SourceContext) -> Self {
        ctx.counters.lifetime.started();
        let patterns = config
            .groups
            .iter()
            .map(|g| crate::java_regex::compile_whole(&g.pattern).ok())
            .collect();
        Self {
            config,
            ctx,
            patterns,
            tails: BTreeMap::new(),
            loaded: None,
            first_scan: true,
            dirty: false,
            last_write: Instant::now(),
            read_buf: vec![0u8; READ_CHUNK_BYTES],
        }
    }

    fn load_positions(&mut self) -> HashMap<u64, Position> {
        let path = &self.config.position_file;
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::warn!(source = %self.ctx.name, dir = %dir.display(), error = %e, "cannot create the position file's directory");
            }
        }
        let text = match File::open(path) {
            Ok(f) => {
                let mut s = String::new();
                match std::io::Read::read_to_string(
                    &mut std::io::Read::take(f, MAX_POSITION_FILE_BYTES),
                    &mut s,
                ) {
                    Ok(_) => s,
                    Err(e) => {
                        tracing::warn!(source = %self.ctx.name, file = %path.display(), error = %e, "cannot read the position file; starting without it");
                        return HashMap::new();
                    }
                }
            }
            Err(_) => return HashMap::new(),
        };
        if text.trim().is_empty() {
            return HashMap::new();
        }
        match decode_positions(&text) {
            Ok(list) => {
                tracing::info!(source = %self.ctx.name, file = %path.display(), entries = list.len(), "position file loaded");
                list.into_iter().map(|p| (p.inode, p)).collect()
            }
            Err(e) => {
                tracing::warn!(source = %self.ctx.name, file = %path.display(), error = %e, "position file is not valid; starting without it");
                HashMap::new()
            }
        }
    }

    /// Lists the groups' directories and updates the followed files.
    fn scan(&mut self) {
        let mut loaded = self.loaded.take().unwrap_or_else(|| self.load_positions());
        for t in self.tails.values_mut() {
            t.matched = false;
        }
        for (gi, group) in self.config.groups.iter().enumerate() {
            let Some(re) = &self.patterns[gi] else {
                continue;
            };
            let entries = match std::fs::read_dir(&group.dir) {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(source = %self.ctx.name, dir = %group.dir.display(), error = %e, "cannot list directory");
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !crate::java_regex::is_match(re, name) {
                    continue;
                }
                let path = entry.path();
                let Ok(m) = std::fs::metadata(&path) else {
                    continue;
                };
                if !m.is_file() {
                    continue;
                }
                let inode = m.ino();
                if let Some(t) = self.tails.get_mut(&inode) {
                    if t.matched {
                        continue; // Another name of the same file.
                    }
                    if t.path != path {
                        tracing::info!(source = %self.ctx.name, from = %t.path.display(), to = %path.display(), inode, "file renamed; position kept");
                        t.path = path;
                        self.dirty = true;
                    }
                    t.matched = true;
                    t.group = Some(gi);
                    continue;
                }
                if self.tails.len() >= MAX_FILES {
                    tracing::warn!(source = %self.ctx.name, "following {MAX_FILES} files already; {} ignored", path.display());
                    continue;
                }
                let pos = match loaded.remove(&inode) {
                    Some(p) => p.pos,
                    None if self.first_scan && self.config.skip_to_end => m.len(),
                    None => 0,
                };
                tracing::info!(source = %self.ctx.name, file = %path.display(), inode, pos, "following file");
                self.tails.insert(
                    inode,
                    Tail {
                        path,
                        group: Some(gi),
                        pos,
                        file: None,
                        matched: true,
                        last_active: Instant::now(),
                    },
                );
                self.dirty = true;
            }
        }
        // Positions of files no longer matched: read them to their end, at the recorded path
        // or wherever `find_renamed` finds the inode (rotated while the agent was down).
        for (inode, p) in loaded.drain() {
            if self.tails.len() >= MAX_FILES {
                break;
            }
            let path = PathBuf::from(&p.file);
            let group = self.group_of_recorded_path(&path);
            tracing::info!(source = %self.ctx.name, file = %p.file, inode, pos = p.pos, group = group.map(|g| self.config.groups[g].name.as_str()), "file in the position file no longer matches; reading it to its end if it is still there");
            self.tails.insert(
                inode,
                Tail {
                    path,
                    group,
                    pos: p.pos,
                    file: None,
                    matched: false,
                    last_active: Instant::now(),
                },
            );
        }
        self.loaded = Some(loaded);
        self.first_scan = false;
        self.find_renamed();
        // Unmatched files without an open descriptor are opened by path (inode checked).
        let name = self.ctx.name.clone();
        let before = self.tails.len();
        self.tails.retain(|inode, t| {
            if t.matched || t.file.is_some() {
                return true;
            }
            match File::open(&t.path) {
                Ok(f) if f.metadata().is_ok_and(|m| m.ino() == *inode) => {
                    t.file = Some(f);
                    true
                }
                _ => {
                    tracing::info!(source = %name, file = %t.path.display(), inode, "file is gone; forgotten");
                    false
                }
            }
        });
        if self.tails.len() != before {
            self.dirty = true;
        }
    }

    /// The group a file known only from the position file was followed under: the first group
    /// whose directory holds its recorded path and whose pattern matches its recorded name (so
    /// its events keep their `headers.<group>.*` after a restart). `None` if no group does (the
    /// configuration changed since).
    fn group_of_recorded_path(&self, path: &std::path::Path) -> Option<usize> {
        let name = path.file_name()?.to_str()?;
        let dir = path.parent()?;
        self.config.groups.iter().enumerate().find_map(|(gi, g)| {
            let re = self.patterns[gi].as_ref()?;
            (g.dir == dir && crate::java_regex::is_match(re, name)).then_some(gi)
        })
    }

    /// Files no longer matched whose recorded path now names another file (or nothing): looks
    /// for their inode among the groups' directories, so the position file names where they
    /// went (a restart then reads them to their end).
    fn find_renamed(&mut self) {
        let stale: Vec<u64> = self
            .tails
            .iter()
            .filter(|(inode, t)| {
                !t.matched && !std::fs::metadata(&t.path).is_ok_and(|m| m.ino() == **inode)
            })
            .map(|(inode, _)| *inode)
            .collect();
        if stale.is_empty() {
            return;
        }
        for group in &self.config.groups {
            let Ok(entries) = std::fs::read_dir(&group.dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(m) = std::fs::metadata(&path) else {
                    continue;
                };
                if let Some(t) = self.tails.get_mut(&m.ino()) {
                    if stale.contains(&m.ino()) && t.path != path {
                        tracing::info!(source = %self.ctx.name, from = %t.path.display(), to = %path.display(), "file renamed to a name that does not match; reading it to its end");
                        t.path = path;
                        self.dirty = true;
                    }
                }
            }
        }
    }

    /// Writes the position file (committed positions only).
    fn write_positions(&mut self) {
        let list: Vec<Position> = self
            .tails
            .iter()
            .map(|(inode, t)| Position {
                inode: *inode,
                pos: t.pos,
                file: t.path.to_string_lossy().into_owned(),
            })
            .collect();
        match write_atomic(
            &self.config.position_file,
            encode_positions(&list).as_bytes(),
        ) {
            Ok(()) => {
                self.dirty = false;
                self.last_write = Instant::now();
            }
            Err(e) => {
                self.ctx
                    .counters
                    .generic_processing_fail
                    .fetch_add(1, Relaxed);
                tracing::error!(source = %self.ctx.name, file = %self.config.position_file.display(), error = %e, "cannot write the position file");
            }
        }
    }

    /// Reads and commits batches of one file; returns the events committed, or `None` if a put
    /// failed (the position stays; the batch is read again later).
    ///
    /// While a full batch's commit waits for its fsync, the next batch's lines are read (not
    /// put): the next commit is still submitted only after this one's position is written, so
    /// a kill still re-reads at most one batch.
    fn tail_one(&mut self, inode: u64) -> Option<u64> {
        let batch = self.config.batch_size as usize;
        let processor = self.ctx.processor.clone();
        let mut committed = 0u64;
        let mut batches = 0u64;
        // Lines read ahead from the current position while the last commit was in flight.
        let mut read_ahead: Option<(Lines, u64)> = None;
        loop {
            let Some(t) = self.tails.get_mut(&inode) else {
                return Some(committed);
            };
            if t.file.is_none() {
                match File::open(&t.path) {
                    Ok(f) if f.metadata().is_ok_and(|m| m.ino() == inode) => t.file = Some(f),
                    _ => return Some(committed),
                }
            }
            let Some(f) = t.file.as_ref() else {
                return Some(committed);
            };
            let size = match f.metadata() {
                Ok(m) => m.len(),
                Err(e) => {
                    tracing::warn!(source = %self.ctx.name, file = %t.path.display(), error = %e, "cannot stat");
                    return Some(committed);
                }
            };
            if size < t.pos {
                tracing::info!(source = %self.ctx.name, file = %t.path.display(), pos = t.pos, size, "file is smaller than the position (truncated); reading it again from 0");
                t.pos = 0;
                self.dirty = true;
                read_ahead = None;
            }
            let (lines, end) = match read_ahead.take() {
                Some(ahead) => ahead,
                None => {
                    if size == t.pos {
                        return Some(committed);
                    }
                    match read_lines(f, t.pos, batch, &mut self.read_buf) {
                        Ok(r) => r,
                        Err(e) => {
                            self.ctx.counters.event_read_fail.fetch_add(1, Relaxed);
                            tracing::warn!(source = %self.ctx.name, file = %t.path.display(), error = %e, "cannot read");
                            return Some(committed);
                        }
                    }
                }
            };
            if lines.is_empty() {
                return Some(committed); // Only a partial line so far.
            }
            let events = self.to_events(inode, lines);
            let n = events.len() as u64;
            let c = &self.ctx.counters;
            c.event_received_count.fetch_add(n, Relaxed);
            c.append_batch_received_count.fetch_add(1, Relaxed);
            let last = (n as usize) < batch || batches + 1 >= self.config.max_batch_count;
            let result = match processor.submit_batch(events) {
                Ok(submitted) => {
                    if !last {
                        read_ahead = self.read_ahead(inode, end, batch);
                    }
                    submitted.wait()
                }
                Err(error) => Err(error),
            };
            let c = &self.ctx.counters;
            if let Err(error) = result {
                c.channel_write_fail.fetch_add(1, Relaxed);
                let e = SourceError::Channel {
                    source_name: self.ctx.name.to_string(),
                    error,
                };
                tracing::warn!(error = %e, "batch not committed; it will be read again");
                return None;
            }
            c.event_accepted_count.fetch_add(n, Relaxed);
            c.append_batch_accepted_count.fetch_add(1, Relaxed);
            if let Some(t) = self.tails.get_mut(&inode) {
                t.pos = end;
                t.last_active = Instant::now();
            }
            self.write_positions();
            committed += n;
            batches += 1;
            if last {
                return Some(committed);
            }
        }
    }

    /// The next batch's lines from `pos`, read while a commit is in flight; `None` if there
    /// is nothing whole to read or the read failed (it is then made again, and reported, in
    /// turn).
    fn read_ahead(&mut self, inode: u64, pos: u64, batch: usize) -> Option<(Lines, u64)> {
        let f = self.tails.get(&inode)?.file.as_ref()?;
        match read_lines(f, pos, batch, &mut self.read_buf) {
            Ok((lines, end)) if !lines.is_empty() => Some((lines, end)),
            _ => None,
        }
    }

    fn to_events(&self, inode: u64, lines: Lines) -> Vec<Event> {
        let Some(t) = self.tails.get(&inode) else {
            return Vec::new();
        };
        let headers: &[(String, String)] = match t.group {
            Some(g) => &self.config.groups[g].headers,
            None => &[],
        };
        let path = t.path.to_string_lossy();
        lines
            .into_iter()
            .map(|(offset, body)| {
                let mut e = Event::new(body);
                for (k, v) in headers {
                    set_header(&mut e, k, v.clone());
                }
                if self.config.byte_offset_header {
                    set_header(&mut e, "byteoffset", offset.to_string());
                }
                if let Some(k) = &self.config.file_header_key {
                    set_header(&mut e, k, path.clone().into_owned());
                }
                e
            })
            .collect()
    }
}

/// Lines read: each line's first byte offset and its bytes.
type Lines = Vec<(u64, Vec<u8>)>;

/// Reads up to `max_lines` complete lines from `pos` through `buf`: each with its first byte's
/// offset, and the offset after the last. A line is cut at [`MAX_LINE_BYTES`].
fn read_lines(
    f: &File,
    pos: u64,
    max_lines: usize,
    buf: &mut [u8],
) -> std::io::Result<(Lines, u64)> {
    let mut lines = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    let mut off = pos;
    let mut start = pos;
    while lines.len() < max_lines {
        let n = f.read_at(buf, off)?;
        if n == 0 {
            break;
        }
        let mut s = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[s..n]) {
            let i = s + i;
            let mut line = if carry.is_empty() {
                buf[s..i].to_vec()
            } else {
                carry.extend_from_slice(&buf[s..i]);
                std::mem::take(&mut carry)
            };
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push((start, line));
            start = off + i as u64 + 1;
            s = i + 1;
            if lines.len() >= max_lines {
                return Ok((lines, start));
            }
        }
        carry.extend_from_slice(&buf[s..n]);
        off += n as u64;
        if carry.len() >= MAX_LINE_BYTES {
            tracing::warn!("line longer than {MAX_LINE_BYTES} bytes; split");
            let rest = carry.split_off(MAX_LINE_BYTES);
            lines.push((start, std::mem::replace(&mut carry, rest)));
            start += MAX_LINE_BYTES as u64;
        }
    }
    Ok((lines, start))
}

impl PollableSource for TaildirSource {
    fn process(&mut self) -> Result<Status, SourceError> {
        self.scan();
        // Files no longer matched first: their data is older than the new file's.
        let mut order: Vec<(bool, u64)> = self
            .tails
            .iter()
            .map(|(inode, t)| (t.matched, *inode))
            .collect();
        order.sort();
        let mut total = 0u64;
        for (_, inode) in order {
            match self.tail_one(inode) {
                Some(n) => total += n,
                None => return Ok(Status::Backoff),
            }
        }
        // Drop unmatched files at their end once idle.
        let idle = Duration::from_millis(self.config.idle_timeout_ms);
        let name = self.ctx.name.clone();
        let before = self.tails.len();
        self.tails.retain(|inode, t| {
            if t.matched || t.last_active.elapsed() < idle {
                return true;
            }
            let at_end = t
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .is_none_or(|m| m.len() <= t.pos);
            if at_end {
                tracing::info!(source = %name, file = %t.path.display(), inode, "finished a file that no longer matches");
            }
            !at_end
        });
        if self.tails.len() != before {
            self.dirty = true;
        }
        if self.dirty
            && self.last_write.elapsed() >= Duration::from_millis(self.config.write_pos_interval_ms)
        {
            self.write_positions();
        }
        Ok(if total > 0 {
            Status::Ready
        } else {
            Status::Backoff
        })
    }

    fn backoff(&self) -> Backoff {
        self.config.backoff
    }

    fn stop(&mut self) {
        if self.loaded.is_some() {
            self.write_positions();
        }
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests;
