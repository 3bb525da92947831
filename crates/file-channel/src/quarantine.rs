//! Quarantine: damaged log bytes are copied (never moved or deleted from the log by the
//! engine) to `<channel dir>/quarantine/` with a small JSON note, so an operator can see exactly
//! what was skipped and a tool can try to salvage it.
//!
//! Names: `segment-<id>-offset-<offset>.bin` and `.json`; saving the same damage twice
//! overwrites the same two files.

use crate::error::Corruption;
use crate::storage::{DynFile, Storage};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The quarantine directory of a channel directory.
pub const QUARANTINE_DIR_NAME: &str = "quarantine";

/// Most bytes copied for one damaged range (the note records the full length).
pub const MAX_QUARANTINE_COPY_BYTES: u64 = 256 << 20;

/// How a quarantine write fsyncs a directory: plainly at open and in the tools (one thread owns
/// the directory), through the sync gate in a running channel (a failed directory fsync there
/// poisons the channel, see `Shared::sync_dir_gated`).
pub type SyncDir<'a> = &'a dyn Fn(&Path) -> io::Result<()>;

/// Escapes a string for a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Copies `bytes` bytes of `file` at the damage's offset into the quarantine directory under
/// `channel_dir` and fsyncs it (directories with `sync_dir`). Returns the `.bin` path. The note
/// follows with [`write_note`] once the events lost are known.
pub fn save_bytes(
    storage: &dyn Storage,
    sync_dir: SyncDir<'_>,
    channel_dir: &Path,
    at: &Corruption,
    file: &DynFile,
    bytes: u64,
) -> io::Result<PathBuf> {
    let dir = channel_dir.join(QUARANTINE_DIR_NAME);
    if !storage.exists(&dir) {
        storage.create_dir_all(&dir)?;
        sync_dir(channel_dir)?;
    }
    let bin = dir.join(format!("{}.bin", stem(at)));
    let copy = bytes.min(MAX_QUARANTINE_COPY_BYTES) as usize;
    let mut data = vec![0u8; copy];
    let mut got = 0usize;
    while got < copy {
        let n = file.read_at(&mut data[got..], at.offset + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    data.truncate(got);
    write_file(storage, &bin, &data)?;
    sync_dir(&dir)?;
    Ok(bin)
}

fn stem(at: &Corruption) -> String {
    format!("segment-{}-offset-{}", at.segment, at.offset)
}

/// Writes the JSON note of a damaged range next to its bytes (or alone, when no bytes were
/// copied, e.g. a missing segment) and fsyncs it and the directory (with `sync_dir`).
pub fn write_note(
    storage: &dyn Storage,
    sync_dir: SyncDir<'_>,
    channel_dir: &Path,
    at: &Corruption,
    bytes: u64,
    events_lost: u64,
) -> io::Result<PathBuf> {
    let dir = channel_dir.join(QUARANTINE_DIR_NAME);
    if !storage.exists(&dir) {
        storage.create_dir_all(&dir)?;
        sync_dir(channel_dir)?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let note = format!(
        "{{\"file\":\"{}\",\"segment\":{},\"offset\":{},\"bytes\":{},\"kind\":\"{}\",\"events_lost\":{},\"found_unix_ms\":{}}}\n",
        json_escape(&at.file.display().to_string()),
        at.segment,
        at.offset,
        bytes,
        json_escape(&at.kind.to_string()),
        events_lost,
        now
    );
    let path = dir.join(format!("{}.json", stem(at)));
    write_file(storage, &path, note.as_bytes())?;
    sync_dir(&dir)?;
    Ok(path)
}

/// Moves a whole file of the channel directory that the engine cannot use (a checkpoint that
/// does not decode, or belongs to another channel) into `quarantine/` under its own name (a
/// numbered suffix if that is taken), with a JSON note saying why; both directories are fsynced.
/// A rename, so every byte is kept however large the file.
pub fn move_file(
    storage: &dyn Storage,
    sync_dir: SyncDir<'_>,
    channel_dir: &Path,
    path: &Path,
    reason: &str,
) -> io::Result<PathBuf> {
    let dir = channel_dir.join(QUARANTINE_DIR_NAME);
    if !storage.exists(&dir) {
        storage.create_dir_all(&dir)?;
        sync_dir(channel_dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mut to = dir.join(&name);
    let mut n = 1;
    while storage.exists(&to) {
        to = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    storage.rename(path, &to)?;
    let note = format!(
        "{{\"file\":\"{}\",\"reason\":\"{}\"}}\n",
        json_escape(&path.display().to_string()),
        json_escape(reason)
    );
    let mut note_path = to.clone().into_os_string();
    note_path.push(".json");
    write_file(storage, Path::new(&note_path), note.as_bytes())?;
    sync_dir(&dir)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(to)
}

/// Writes a whole file durably (replacing it).
fn write_file(storage: &dyn Storage, path: &Path, data: &[u8]) -> io::Result<()> {
    if storage.exists(path) {
        storage.remove(path)?;
    }
    let f = storage.create(path)?;
    f.write_at(data, 0)?;
    f.sync_data()
}
