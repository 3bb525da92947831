//! Doing a planned [`Action`]: every file written is fsynced, every directory changed is
//! fsynced, and every byte overwritten or removed is first copied to `quarantine/` (with the
//! engine's note) and fsynced. Whole new files (tombstones, the identity file, the report) are
//! written under a temporary name and renamed into place; files are moved into `quarantine/`
//! with a `rename` inside the channel directory's file system, so a crash at any point leaves
//! each file either where it was or where it goes, never half copied.

use super::action::Action;
use super::records::{seal_record, tombstone_segment, write_gaps};
use crate::error::Corruption;
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::identity;
use crate::inspect::json::Json;
use crate::inspect::{now_unix_ms, InspectError};
use crate::quarantine::{self, QUARANTINE_DIR_NAME};
use crate::storage::{parent_dir, DynFile, Storage};
use std::path::{Path, PathBuf};

/// The end of the non-zero bytes of `file` at or after `from`.
fn nonzero_end(file: &DynFile, from: u64) -> std::io::Result<u64> {
    let len = file.len()?;
    let mut end = len;
    let mut buf = vec![0u8; 1 << 20];
    while end > from {
        let start = end.saturating_sub(buf.len() as u64).max(from);
        let n = (end - start) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(from)
}

/// The channel directory as a repair writes it: durable file writes, removals and renames
/// with their directory fsyncs, and copies into `quarantine/`.
pub(super) struct DurableDir<'a> {
    pub(super) storage: &'a dyn Storage,
    pub(super) dir: &'a Path,
}

impl DurableDir<'_> {
    pub(super) fn io(
        &self,
        op: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> InspectError {
        InspectError::io(op, path)
    }

    pub(super) fn qdir(&self) -> Result<PathBuf, InspectError> {
        let q = self.dir.join(QUARANTINE_DIR_NAME);
        if !self.storage.exists(&q) {
            self.storage
                .create_dir_all(&q)
                .map_err(self.io("create", &q))?;
            self.storage
                .sync_dir(self.dir)
                .map_err(self.io("fsync directory", self.dir))?;
        }
        Ok(q)
    }

    /// A name in quarantine/ not yet taken.
    pub(super) fn free_name(&self, q: &Path, name: &str) -> PathBuf {
        let p = q.join(name);
        if !self.storage.exists(&p) {
            return p;
        }
        let stamp = now_unix_ms();
        (0..1000)
            .map(|i| q.join(format!("{name}.{stamp}.{i}")))
            .find(|p| !self.storage.exists(p))
            .unwrap_or_else(|| q.join(format!("{name}.{stamp}.x")))
    }

    fn sync_dir(&self, d: &Path) -> Result<(), InspectError> {
        self.storage
            .sync_dir(d)
            .map_err(self.io("fsync directory", d))
    }

    fn remove(&self, path: &Path) -> Result<(), InspectError> {
        self.storage.remove(path).map_err(self.io("remove", path))?;
        self.sync_dir(parent_dir(path))
    }

    fn move_to_quarantine(&self, path: &Path, name: &str) -> Result<PathBuf, InspectError> {
        let q = self.qdir()?;
        let to = self.free_name(&q, name);
        self.storage
            .rename(path, &to)
            .map_err(self.io("move to quarantine", path))?;
        self.sync_dir(&q)?;
        self.sync_dir(parent_dir(path))?;
        Ok(to)
    }

    /// Copies `[offset, offset + bytes)` of `file` to quarantine with the engine's note.
    fn save(
        &self,
        at: &Corruption,
        file: &DynFile,
        bytes: u64,
        events_lost: u64,
    ) -> Result<Vec<PathBuf>, InspectError> {
        self.qdir()?;
        let path = at.file.as_path();
        let sync_dir = |d: &Path| self.storage.sync_dir(d);
        let mut out = Vec::new();
        if bytes > 0 {
            out.push(
                quarantine::save_bytes(self.storage, &sync_dir, self.dir, at, file, bytes)
                    .map_err(self.io("copy damaged bytes of", path))?,
            );
        }
        out.push(
            quarantine::write_note(self.storage, &sync_dir, self.dir, at, bytes, events_lost)
                .map_err(self.io("write a quarantine note for", path))?,
        );
        Ok(out)
    }

    /// Copies a torn tail's non-zero bytes with a note of kind "torn tail".
    fn save_torn(
        &self,
        path: &Path,
        segment: u64,
        offset: u64,
        file: &DynFile,
    ) -> Result<Vec<PathBuf>, InspectError> {
        let end = nonzero_end(file, offset).map_err(self.io("read", path))?;
        if end <= offset {
            return Ok(Vec::new());
        }
        let q = self.qdir()?;
        let at = Corruption {
            file: path.to_path_buf(),
            segment,
            offset,
            kind: CorruptionKind::Truncated {
                needed: 0,
                available: 0,
            },
        };
        let bin = quarantine::save_bytes(
            self.storage,
            &|d| self.storage.sync_dir(d),
            self.dir,
            &at,
            file,
            end - offset,
        )
        .map_err(self.io("copy the torn tail of", path))?;
        let note = Json::obj()
            .with("file", path)
            .with("segment", segment)
            .with("offset", offset)
            .with("bytes", end - offset)
            .with("kind", "torn tail (never acknowledged)")
            .with("events_lost", 0u64)
            .with("found_unix_ms", now_unix_ms())
            .render();
        let note_path = q.join(format!("segment-{segment}-offset-{offset}.json"));
        self.write_file(&note_path, format!("{note}\n").as_bytes())?;
        Ok(vec![bin, note_path])
    }

    /// Writes a whole file durably: temp file, fsync, rename, directory fsync.
    pub(super) fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), InspectError> {
        let tmp = path.with_extension("tmp-chanctl");
        if self.storage.exists(&tmp) {
            self.storage.remove(&tmp).map_err(self.io("remove", &tmp))?;
        }
        let f = self.storage.create(&tmp).map_err(self.io("create", &tmp))?;
        f.write_at(data, 0).map_err(self.io("write", &tmp))?;
        f.sync_data().map_err(self.io("fsync", &tmp))?;
        drop(f);
        self.storage
            .rename(&tmp, path)
            .map_err(self.io("rename", &tmp))?;
        self.sync_dir(parent_dir(path))
    }
}

fn corruption(path: &Path, segment: u64, offset: u64, kind: CorruptionKind) -> Corruption {
    Corruption {
        file: path.to_path_buf(),
        segment,
        offset,
        kind,
    }
}

/// Does `action`; returns the files it wrote to `quarantine/`.
pub(super) fn execute(ctx: &DurableDir<'_>, action: &Action) -> Result<Vec<PathBuf>, InspectError> {
    let storage = ctx.storage;
    match action {
        Action::RemoveOrphan { path, .. }
        | Action::RemoveCheckpoint { path }
        | Action::RemoveCheckpointTmp { path } => {
            ctx.remove(path)?;
            Ok(Vec::new())
        }
        Action::QuarantineCheckpoint { path, .. } => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("checkpoint.ckpt")
                .to_owned();
            Ok(vec![ctx.move_to_quarantine(path, &name)?])
        }
        Action::RewriteIdentity {
            path,
            channel_id,
            format_version,
        } => {
            let moved = ctx.move_to_quarantine(path, "channel.meta.bad")?;
            identity::write(storage, ctx.dir, *channel_id, *format_version)
                .map_err(ctx.io("write", path))?;
            Ok(vec![moved])
        }
        Action::RebuildSegmentHeader {
            segment,
            path,
            channel_id,
            format_version,
            first_seq,
            kind,
            ..
        } => {
            let file = storage.open(path, true).map_err(ctx.io("open", path))?;
            let at = corruption(path, *segment, 0, kind.clone());
            let saved = ctx.save(&at, &file, SEGMENT_HEADER_BYTES as u64, 0)?;
            let header = SegmentHeader {
                format_version: *format_version,
                segment_id: *segment,
                channel_id: *channel_id,
                first_seq: *first_seq,
                created_unix_ms: now_unix_ms(),
            };
            file.write_at(&header.encode(), 0)
                .map_err(ctx.io("write", path))?;
            file.sync_data().map_err(ctx.io("fsync", path))?;
            Ok(saved)
        }
        Action::FillWithGap {
            segment,
            path,
            offset,
            damaged_bytes,
            fill_bytes,
            first_seq,
            events,
            kind,
            seal,
            binding,
        } => {
            let file = storage.open(path, true).map_err(ctx.io("open", path))?;
            let at = corruption(path, *segment, *offset, kind.clone());
            let saved = ctx.save(&at, &file, *damaged_bytes, *events)?;
            if *fill_bytes > 0 {
                write_gaps(
                    &file,
                    *binding,
                    *segment,
                    *offset,
                    offset + fill_bytes,
                    *first_seq,
                    *events,
                )
                .map_err(ctx.io("write gap records into", path))?;
            }
            if let Some(s) = seal {
                file.write_at(
                    &seal_record(*binding, *segment, s.offset, s.next_segment, s.next_seq),
                    s.offset,
                )
                .map_err(ctx.io("write a seal record into", path))?;
            }
            file.sync_data().map_err(ctx.io("fsync", path))?;
            Ok(saved)
        }
        Action::CreateTombstone {
            segment,
            path,
            first_seq,
            events,
            next_seq,
        } => {
            let identity = match identity_of(storage, ctx.dir) {
                Some(identity) => identity,
                None => {
                    return Err(InspectError::Usage(
                        "cannot create a tombstone segment: the channel id is unknown".into(),
                    ))
                }
            };
            let bytes = tombstone_segment(
                // The channel's own format, so the tombstone reads like its neighbours.
                SegmentHeader {
                    format_version: identity.format_version,
                    segment_id: *segment,
                    channel_id: identity.channel_id,
                    first_seq: *first_seq,
                    created_unix_ms: now_unix_ms(),
                },
                *events,
                *next_seq,
            );
            // Written under a temporary name and renamed into place, so a crash leaves either
            // no tombstone (the next repair writes it) or a whole one, never a torn segment.
            ctx.write_file(path, &bytes)?;
            let f = storage.open(path, false).map_err(ctx.io("open", path))?;
            let kind = CorruptionKind::BadPayload {
                what: "segment missing; chanctl repair wrote a tombstone in its place",
            };
            let note = ctx.save(&corruption(path, *segment, 0, kind), &f, 0, *events)?;
            Ok(note)
        }
        Action::TruncateTornTail {
            segment,
            path,
            offset,
            ..
        } => {
            let file = storage.open(path, true).map_err(ctx.io("open", path))?;
            let saved = ctx.save_torn(path, *segment, *offset, &file)?;
            file.set_len(*offset).map_err(ctx.io("truncate", path))?;
            file.sync_data().map_err(ctx.io("fsync", path))?;
            Ok(saved)
        }
        Action::RemoveTornSegment { segment, path, .. } => {
            let file = storage.open(path, false).map_err(ctx.io("open", path))?;
            let saved = ctx.save_torn(path, *segment, 0, &file)?;
            drop(file);
            ctx.remove(path)?;
            Ok(saved)
        }
        Action::RebuildCheckpoint => Ok(Vec::new()),
    }
}

pub(super) fn identity_of(storage: &dyn Storage, dir: &Path) -> Option<identity::Identity> {
    let f = storage
        .open(&dir.join(identity::META_FILE_NAME), false)
        .ok()?;
    identity::decode(&f.read_all().ok()?).ok()
}
