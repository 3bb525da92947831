//! The checkpoint thread: makes snapshots durable and deletes the segments they free.
//!
//! The writer thread takes a snapshot between two batches (after an fsync, so the position it
//! covers is durable) and hands it here; puts and takes go on while the file is written:
//!
//! 1. write `checkpoint.tmp`, fsync it;
//! 2. rename it to `checkpoint-<generation>.ckpt`, fsync the directory;
//! 3. remove generations older than the previous one (two are kept), fsync the directory;
//! 4. unlink every segment below the snapshot's first live segment, fsync their directories
//!    ([`crate::segment_deletion`]).
//!
//! A crash anywhere leaves either the new checkpoint or the previous one valid, and segments
//! are only ever deleted after a durable checkpoint no longer needs them; open removes those a
//! crash left behind (orphans).

use crate::error::IoFailure;
use crate::format::checkpoint::{checkpoint_file_name, Checkpoint};
use crate::replay::list_checkpoints;
use crate::segment_deletion::delete_segments;
use crate::shared::CheckpointView;
use crate::storage::failed_before_any_io;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Name of the temporary file a checkpoint is written to before its rename.
pub const CHECKPOINT_TMP_NAME: &str = "checkpoint.tmp";

/// Generations kept on disk.
pub const CHECKPOINT_GENERATIONS_KEPT: usize = 2;

/// A snapshot to make durable.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub checkpoint: Checkpoint,
    /// Segment ids the checkpoint frees.
    pub deletable: Vec<u64>,
    /// Completed when the checkpoint is durable (or failed).
    pub done: Option<Arc<CheckpointDone>>,
}

/// A waitable outcome of one checkpoint.
#[derive(Debug, Default)]
pub(crate) struct CheckpointDone {
    slot: Mutex<Option<Result<u64, IoFailure>>>,
    ready: Condvar,
}

impl CheckpointDone {
    fn complete(&self, r: Result<u64, IoFailure>) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        self.ready.notify_all();
    }

    /// Waits for the outcome: the generation written, or why it failed.
    pub(crate) fn wait(&self) -> Result<u64, IoFailure> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = slot.take() {
                return r;
            }
            slot = self
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Handle to the checkpoint thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    pub tx: Sender<Snapshot>,
    pub thread: JoinHandle<()>,
}

/// Starts the thread; `generation` is the newest generation on disk.
pub(crate) fn start(shared: CheckpointView, generation: u64) -> std::io::Result<Checkpointer> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("sluice-checkpoint".into())
        .spawn(move || run(&shared, &rx, generation))?;
    Ok(Checkpointer { tx, thread })
}

fn run(shared: &CheckpointView, rx: &Receiver<Snapshot>, mut generation: u64) {
    while let Ok(mut snap) = rx.recv() {
        generation += 1;
        snap.checkpoint.generation = generation;
        snap.checkpoint.created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let started = Instant::now();
        let result = write_checkpoint(shared, &snap.checkpoint);
        let m = shared.metrics();
        match &result {
            Ok(path) => {
                m.checkpoint_count.fetch_add(1, Relaxed);
                m.checkpoint_ms
                    .store(started.elapsed().as_millis() as u64, Relaxed);
                m.last_checkpoint_unix_ms
                    .store(snap.checkpoint.created_unix_ms, Relaxed);
                tracing::debug!(path = %path.display(), generation,
                    position_segment = snap.checkpoint.position.0,
                    position_offset = snap.checkpoint.position.1,
                    took_us = started.elapsed().as_micros() as u64, "checkpoint written");
                if let Err(e) = delete_segments(shared, &snap.deletable) {
                    tracing::warn!(error = %e, "segment deletion failed; open will sweep the orphans");
                }
            }
            Err(e) => {
                m.checkpoint_write_error_count.fetch_add(1, Relaxed);
                tracing::error!(generation, error = %e, "checkpoint write failed; the previous one stays valid");
                generation -= 1;
                // Free the temp file's blocks: a full disk must still be able to drain.
                let tmp = shared.dir().join(CHECKPOINT_TMP_NAME);
                if shared.storage().exists(&tmp) {
                    let _ = shared.storage().remove(&tmp);
                }
                // Deleting the consumed prefix of the log without a new checkpoint is still
                // safe: an older checkpoint that names a deleted segment is refused at open, and
                // a full replay starts from the first remaining segment, whose header's first
                // sequence number is the low-water mark (a take record in a deleted segment can
                // only concern events in deleted segments). It costs a slower next open; not
                // deleting would keep a full disk full forever.
                if !snap.deletable.is_empty() && shared.poisoned().is_none() {
                    tracing::warn!(segments = snap.deletable.len(),
                        "deleting consumed segments without a new checkpoint; the next open may replay the whole log");
                    if let Err(e) = delete_segments(shared, &snap.deletable) {
                        tracing::warn!(error = %e, "segment deletion failed; open will sweep the orphans");
                    }
                }
            }
        }
        if let Some(done) = snap.done.take() {
            done.complete(result.map(|_| generation).map_err(|e| IoFailure::from(&e)));
        }
    }
}

fn write_checkpoint(shared: &CheckpointView, cp: &Checkpoint) -> std::io::Result<PathBuf> {
    let storage = shared.storage();
    let dir = shared.dir();
    let tmp = dir.join(CHECKPOINT_TMP_NAME);
    if storage.exists(&tmp) {
        storage.remove(&tmp)?;
    }
    let f = storage.create(&tmp).inspect_err(|e| {
        if failed_before_any_io(e) {
            // Too many open files or no permission: this checkpoint fails, the next one retries.
            shared.metrics().file_open_error_count.fetch_add(1, Relaxed);
        }
    })?;
    f.write_at(&cp.encode(), 0)?;
    f.sync_data()?;
    drop(f);
    let path = dir.join(checkpoint_file_name(cp.generation));
    storage.rename(&tmp, &path)?;
    shared.sync_dir_gated(dir)?;
    let old: Vec<PathBuf> = list_checkpoints(storage.as_ref(), dir)?
        .into_iter()
        .skip(CHECKPOINT_GENERATIONS_KEPT)
        .map(|(_, p)| p)
        .collect();
    if !old.is_empty() {
        for p in &old {
            storage.remove(p)?;
        }
        shared.sync_dir_gated(dir)?;
    }
    Ok(path)
}
