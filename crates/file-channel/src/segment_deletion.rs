//! Segment deletion: which segments a checkpoint frees, and removing them.
//!
//! A segment may go once a durable checkpoint no longer needs it: every segment below the
//! checkpoint's first live segment (the one holding the reader's restart position), except the
//! active one. The writer picks them when it takes the snapshot ([`deletable`]); the
//! checkpoint thread removes them after the checkpoint is durable ([`delete_segments`]), and
//! open sweeps those a crash left behind (orphans, see [`crate::replay`]).

use crate::segment::SegmentSet;
use crate::shared::CheckpointView;
use crate::storage::parent_dir;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

/// The segments a checkpoint whose first live segment is `first_live` frees, while `active` is
/// being appended to.
pub(crate) fn deletable(segments: &SegmentSet, first_live: u64, active: u64) -> Vec<u64> {
    segments
        .ids()
        .into_iter()
        .filter(|&id| id < first_live && id != active)
        .collect()
}

/// Unlinks segments `ids` and fsyncs their directories; the counters follow.
pub(crate) fn delete_segments(shared: &CheckpointView, ids: &[u64]) -> std::io::Result<()> {
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for &id in ids {
        let Some(seg) = shared.segments().remove(id) else {
            continue;
        };
        let len = seg.file.len().unwrap_or(0);
        shared.storage().remove(&seg.path)?;
        dirs.insert(parent_dir(&seg.path).to_path_buf());
        let m = shared.metrics();
        m.segments_deleted.fetch_add(1, Relaxed);
        m.bytes_on_disk
            .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(len)))
            .ok();
        tracing::info!(segment = id, path = %seg.path.display(), "deleted consumed segment");
    }
    for d in &dirs {
        shared.sync_dir_gated(Path::new(d))?;
    }
    shared
        .metrics()
        .segment_count
        .store(shared.segments().len() as u64, Relaxed);
    Ok(())
}
