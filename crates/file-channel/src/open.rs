//! Opening a channel directory, in the order the phases must run:
//!
//! 0. [`crate::flume_files`]: no directory holds Apache Flume FileChannel files (the
//!    migration guard; nothing is created, locked or changed before it passes);
//! 1. [`create_dirs`]: the channel and data directories exist (their creation fsynced);
//! 2. [`lock_dir`]: no other process or handle has the directory;
//! 3. [`read_identity`]: the channel id from `channel.meta`, or a new one for a new channel;
//! 4. replay ([`crate::replay::replay`]): checkpoint chosen, orphans swept, torn tail cut,
//!    damage skipped or refused — the queue as the disk describes it;
//! 5. [`remove_checkpoint_tmp`] and [`settle_identity`] (a lost identity file is rewritten from
//!    the segment headers);
//! 6. [`resume_active_segment`]: the newest unsealed segment is fsynced and appended to, or a
//!    new one is created;
//! 7. [`place_reader`] and [`publish_replay_metrics`]: the queue and the counters start from
//!    the replay;
//! 8. [`start_prefill`] and [`start_threads`]: the prefill, checkpoint and writer threads run.

use crate::checkpoint::{self, CHECKPOINT_TMP_NAME};
use crate::config::ChannelConfig;
use crate::decrypt_ahead::{Ahead, SegmentLookup};
use crate::encryption::{envelope, Opener};
use crate::error::OpenError;
use crate::format::record::SEAL_RECORD_BYTES;
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::{FORMAT_VERSION, OLDEST_READABLE_FORMAT_VERSION};
use crate::identity::{self, Identity, LOCK_FILE_NAME, META_FILE_NAME};
use crate::keys_at_open;
use crate::limits::MAX_RECORD_BYTES;
use crate::open_report::OpenReport;
use crate::queue::{LogPos, QueueState};
use crate::replay::{list_checkpoints, replay, ReplayOptions, ReplayStart, Replayed};
use crate::running::{Running, RunningParts};
use crate::segment::prefill::Prefill;
use crate::segment::scan::Scanner;
use crate::segment::{list_segments, OpenSegment};
use crate::shared::{Shared, WriterView};
use crate::storage::{parent_dir, DynStorage, EntryKind, LockError, LockGuard, Storage};
use crate::writer::{create_segment, Active, Request, Writer, WriterStart};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// An [`OpenError::Io`] for `op` on `path`.
fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OpenError {
    let path = path.to_path_buf();
    move |source| OpenError::Io { op, path, source }
}

/// Opens the channel `config` describes through `storage`.
pub(crate) fn open(config: ChannelConfig, storage: DynStorage) -> Result<Running, OpenError> {
    open_with_key_check(config, storage, true)
}

/// [`open`], with the key check of pending encrypted events before replay only if
/// `check_keys` (repair's reopen, which reads no payload, goes without).
pub(crate) fn open_with_key_check(
    config: ChannelConfig,
    storage: DynStorage,
    check_keys: bool,
) -> Result<Running, OpenError> {
    config.validate()?;
    let dir = config.dir.clone();
    let dirs = config.segment_dirs();
    refuse_flume_files(storage.as_ref(), &dir, &dirs)?;
    create_dirs(storage.as_ref(), &dir, &dirs)?;
    let lock = lock_dir(storage.as_ref(), &dir)?;
    let known = read_identity(storage.as_ref(), &dir)?;
    let known_id = known.map(|k| k.channel_id);
    let existing = list_segments(storage.as_ref(), &dirs).map_err(io("list", &dir))?;
    let new_id = match known_id {
        None if existing.is_empty() => {
            let id = identity::new_channel_id();
            identity::write(storage.as_ref(), &dir, id, FORMAT_VERSION)
                .map_err(io("write", &dir.join(META_FILE_NAME)))?;
            Some(id)
        }
        _ => None, // known, or learnt from the segments below
    };
    // Before replay, which may truncate, quarantine and rebuild: a key problem changes nothing.
    if check_keys {
        keys_at_open::check_keys(
            storage.as_ref(),
            &dir,
            &dirs,
            config.keyring.as_deref(),
            known_id.or(new_id),
        )?;
    }
    // Taken before replay, which moves unusable checkpoint files to quarantine/: the next
    // checkpoint's generation stays above every one ever written here.
    let newest_generation = list_checkpoints(storage.as_ref(), &dir)
        .map_err(io("list checkpoints in", &dir))?
        .first()
        .map_or(0, |(g, _)| *g);
    let replayed = replay(
        storage.as_ref(),
        &dir,
        &dirs,
        ReplayOptions {
            writable: true,
            channel_id: known_id.or(new_id),
            channel_format_version: known.map_or(
                if new_id.is_some() {
                    FORMAT_VERSION
                } else {
                    OLDEST_READABLE_FORMAT_VERSION
                },
                |k| k.format_version,
            ),
            mode: config.recovery_mode,
            ignore_checkpoints: false,
            progress: None,
        },
    )?;
    remove_checkpoint_tmp(storage.as_ref(), &dir)?;
    let channel_id = match known_id.or(new_id) {
        Some(id) => id,
        None => settle_identity(storage.as_ref(), &dir, &replayed)?,
    };

    // An encrypted record is its plain record plus the envelope.
    let envelope_bytes = if config
        .keyring
        .as_ref()
        .is_some_and(|k| k.active().is_some())
    {
        envelope::OVERHEAD_MAX as u64
    } else {
        0
    };
    let record_bytes_max = MAX_RECORD_BYTES
        .min(config.segment_bytes_max - SEGMENT_HEADER_BYTES as u64 - SEAL_RECORD_BYTES)
        - envelope_bytes;
    let shared = Arc::new(Shared::new(
        config,
        storage,
        replayed.next_txn_id,
        record_bytes_max,
    ));
    shared.refresh_space();
    for s in &replayed.segments {
        shared.segments().insert(
            s.id,
            OpenSegment {
                path: s.path.clone(),
                file: s.file.clone(),
                binding: s.binding,
            },
        );
    }
    let writer_view = shared.writer_view();
    let active = resume_active_segment(&writer_view, &dirs, &replayed, channel_id)?;
    place_reader(&shared, &replayed, &active, channel_id);
    publish_replay_metrics(&shared, &replayed);
    let prefill = start_prefill(&shared, &active)?;
    let report = OpenReport::of(&replayed);
    let threads = start_threads(
        &shared,
        writer_view,
        ThreadsStart {
            active,
            replayed: &replayed,
            newest_generation,
            channel_id,
            dirs,
            prefill,
        },
    )?;
    tracing::info!(dir = %dir.display(), pending = report.pending_events, segments = report.segments, "channel open");
    Ok(Running::new(RunningParts {
        shared,
        sender: threads.sender,
        writer: threads.writer,
        checkpointer: threads.checkpointer,
        lock,
        channel_id,
        report,
    }))
}

/// The migration guard: fails if the channel directory or a data directory holds Apache Flume
/// FileChannel files. Runs first, so a refused directory is left exactly as it was.
fn refuse_flume_files(
    storage: &dyn Storage,
    dir: &Path,
    dirs: &[PathBuf],
) -> Result<(), OpenError> {
    let all = std::iter::once(dir).chain(dirs.iter().map(PathBuf::as_path));
    match crate::flume_files::find_in_any(storage, all) {
        Ok(None) => Ok(()),
        Ok(Some(found)) => {
            tracing::error!(dir = %found.dir.display(), files = ?found.names, "refusing to open: the directory holds Apache Flume FileChannel files");
            Err(OpenError::FlumeFiles(found))
        }
        Err((path, source)) => Err(OpenError::Io {
            op: "look for Flume files in",
            path,
            source,
        }),
    }
}

/// Creates the channel directory and the data directories that are missing, fsyncing each
/// one's parent so the creation is durable. A directory, or a parent of a missing one, that is
/// something else (a regular file, a FIFO, …) is named in the error as the obstacle.
fn create_dirs(storage: &dyn Storage, dir: &Path, dirs: &[PathBuf]) -> Result<(), OpenError> {
    for d in std::iter::once(dir).chain(dirs.iter().map(PathBuf::as_path)) {
        match storage.entry_kind(d).map_err(io("inspect", d))? {
            EntryKind::Directory => {}
            EntryKind::Missing => {
                check_parents_are_directories(storage, d)?;
                storage
                    .create_dir_all(d)
                    .map_err(io("create directory", d))?;
                let parent = parent_dir(d);
                storage
                    .sync_dir(parent)
                    .map_err(io("fsync directory", parent))?;
            }
            other => return Err(not_a_directory(d, other, d)),
        }
    }
    Ok(())
}

/// Fails naming the nearest existing parent of the missing directory `d` if it is not a
/// directory (then `d` could never be created).
fn check_parents_are_directories(storage: &dyn Storage, d: &Path) -> Result<(), OpenError> {
    for parent in d.ancestors().skip(1) {
        if parent.as_os_str().is_empty() {
            break;
        }
        match storage.entry_kind(parent).map_err(io("inspect", parent))? {
            EntryKind::Missing => continue,
            EntryKind::Directory => break,
            other => return Err(not_a_directory(parent, other, d)),
        }
    }
    Ok(())
}

/// `obstacle` is `found` where the directory `wanted` (or a parent of it) should be.
fn not_a_directory(obstacle: &Path, found: EntryKind, wanted: &Path) -> OpenError {
    OpenError::NotADirectory {
        path: obstacle.to_path_buf(),
        found: found.describe(),
        wanted: wanted.to_path_buf(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "an unknown host".to_owned())
}

/// Takes the directory's lock, naming this process and host as the holder.
fn lock_dir(storage: &dyn Storage, dir: &Path) -> Result<Box<dyn LockGuard>, OpenError> {
    let owner = format!("pid {} on host {}", std::process::id(), hostname());
    storage
        .lock(&dir.join(LOCK_FILE_NAME), &owner)
        .map_err(|e| match e {
            LockError::Held { holder, .. } => OpenError::Locked {
                dir: dir.to_path_buf(),
                holder,
            },
            LockError::Io { path, source } => OpenError::Io {
                op: "lock",
                path,
                source,
            },
        })
}

/// What `channel.meta` holds, if the file exists.
fn read_identity(storage: &dyn Storage, dir: &Path) -> Result<Option<Identity>, OpenError> {
    let meta_path = dir.join(META_FILE_NAME);
    if !storage.exists(&meta_path) {
        return Ok(None);
    }
    let bytes = storage
        .open(&meta_path, false)
        .and_then(|f| f.read_all())
        .map_err(io("read", &meta_path))?;
    identity::decode(&bytes)
        .map(Some)
        .map_err(|kind| OpenError::Foreign {
            path: meta_path.clone(),
            reason: format!("not a valid channel identity file: {kind}"),
        })
}

/// Removes the temporary file of a checkpoint write a crash interrupted.
fn remove_checkpoint_tmp(storage: &dyn Storage, dir: &Path) -> Result<(), OpenError> {
    let tmp = dir.join(CHECKPOINT_TMP_NAME);
    if storage.exists(&tmp) {
        storage.remove(&tmp).map_err(io("remove", &tmp))?;
    }
    Ok(())
}

/// Rewrites a missing identity file from the first segment's header (segments exist, so the
/// channel had an id). The format it names is the oldest segment's: a channel that may still
/// hold format-1 segments must not claim to be format 2 throughout.
fn settle_identity(storage: &dyn Storage, dir: &Path, r: &Replayed) -> Result<u64, OpenError> {
    let first = first_header(storage, r);
    let id = first.map_or_else(identity::new_channel_id, |h| h.channel_id);
    let format_version = r
        .segments
        .iter()
        .map(|s| s.binding.format_version())
        .min()
        .unwrap_or(FORMAT_VERSION);
    let meta_path = dir.join(META_FILE_NAME);
    tracing::warn!(path = %meta_path.display(), format_version, "channel identity file missing; rewriting it from the segment headers");
    identity::write(storage, dir, id, format_version).map_err(io("write", &meta_path))?;
    Ok(id)
}

fn first_header(storage: &dyn Storage, r: &Replayed) -> Option<SegmentHeader> {
    let seg = r.segments.first()?;
    let f = storage.open(&seg.path, false).ok()?;
    let mut head = [0u8; SEGMENT_HEADER_BYTES];
    f.read_exact_at(&mut head, 0).ok()?;
    SegmentHeader::decode(&head).ok()
}

/// The segment the writer appends to: the newest one if it is not sealed (fsynced first: a
/// killed process may have left data in the page cache only), else a new one.
fn resume_active_segment(
    writer_view: &WriterView,
    dirs: &[PathBuf],
    replayed: &Replayed,
    channel_id: u64,
) -> Result<Active, OpenError> {
    match replayed.segments.last() {
        Some(last) if !last.sealed => {
            last.file.sync_data().map_err(io("fsync", &last.path))?;
            Ok(Active {
                id: last.id,
                path: last.path.clone(),
                file: last.file.clone(),
                offset: last.end,
                durable: last.end,
                binding: last.binding,
                sealer: None,
                rotate_first: writer_view
                    .config()
                    .keyring
                    .as_ref()
                    .is_some_and(|k| k.active().is_some()),
            })
        }
        other => {
            // Above every segment file still in place, replayed or left out.
            let left_out = replayed.left_out.iter().max().map_or(0, |id| id + 1);
            let id = other.map_or(1, |s| s.id + 1).max(left_out);
            create_segment(writer_view, dirs, id, channel_id, replayed.next_seq).map_err(|e| {
                OpenError::Io {
                    op: "create segment",
                    path: e.path,
                    source: e.source,
                }
            })
        }
    }
}

/// Starts the queue where the replay left it: everything up to the active segment's end is
/// visible, and the reader starts at the replay's read start.
fn place_reader(shared: &Arc<Shared>, replayed: &Replayed, active: &Active, channel_id: u64) {
    let cursor = match replayed.read_start {
        Some((id, pos)) => shared
            .segments()
            .get(id)
            .map(|s| Scanner::new(s.file, id, s.binding, pos, u64::MAX)),
        None => Some(Scanner::new(
            active.file.clone(),
            active.id,
            active.binding,
            active.offset,
            u64::MAX,
        )),
    };
    *shared.lock_queue() = QueueState::new(
        replayed.next_seq,
        LogPos::new(active.id, active.offset),
        replayed.consumed.clone(),
        replayed.pending_bytes(),
        cursor,
    );
    let keyring = shared.config().keyring.clone().filter(|k| !k.is_empty());
    let ahead = keyring.as_ref().and_then(|k| {
        let weak = Arc::downgrade(shared);
        let lookup: SegmentLookup = Box::new(move |id| {
            let s = weak.upgrade()?;
            s.segments().get(id).map(|seg| (seg.file, seg.binding))
        });
        let opener = Opener::new(Some(k.clone()), channel_id);
        match Ahead::start(opener, lookup, (active.id, active.offset)) {
            Ok(a) => Some(a),
            Err(error) => {
                tracing::warn!(%error, "cannot start the decrypt-ahead thread; takes decrypt on their own thread");
                None
            }
        }
    });
    shared
        .lock_queue()
        .set_decryption(Opener::new(keyring, channel_id), ahead);
}

/// Sets the counters the replay determines.
fn publish_replay_metrics(shared: &Shared, replayed: &Replayed) {
    let queue = shared.lock_queue();
    let m = shared.metrics();
    m.channel_capacity.store(shared.config().capacity, Relaxed);
    m.channel_size.store(queue.pending_events(), Relaxed);
    m.pending_bytes.store(queue.pending_bytes(), Relaxed);
    m.replay_records.store(replayed.records, Relaxed);
    m.replay_ms.store(replayed.took.as_millis() as u64, Relaxed);
    m.segment_count
        .store(shared.segments().len() as u64, Relaxed);
    m.bytes_on_disk.store(replayed.record_bytes, Relaxed);
    if let Some(t) = &replayed.torn_tail {
        m.torn_tail_bytes.store(t.bytes, Relaxed);
    }
    m.events_lost.store(replayed.events_lost, Relaxed);
    m.corrupt_record_count
        .store(replayed.damage.len() as u64, Relaxed);
}

/// Starts the prefill thread on the active segment, if prefill is configured. Its fatal errors
/// poison the channel (its view holds the shared state weakly, so it does not keep it alive).
fn start_prefill(shared: &Arc<Shared>, active: &Active) -> Result<Option<Prefill>, OpenError> {
    let config = shared.config();
    if config.prefill_ahead_bytes == 0 {
        return Ok(None);
    }
    let p = shared
        .prefill_view()
        .start(config.prefill_ahead_bytes)
        .map_err(io("start prefill for", &config.dir))?;
    let file_len = active
        .file
        .len()
        .map_err(io("read the length of", &active.path))?;
    p.switch(
        active.file.clone(),
        active.offset,
        file_len,
        config.segment_bytes_max,
    );
    Ok(Some(p))
}

/// What the writer and checkpoint threads start from.
struct ThreadsStart<'a> {
    active: Active,
    replayed: &'a Replayed,
    newest_generation: u64,
    channel_id: u64,
    dirs: Vec<PathBuf>,
    prefill: Option<Prefill>,
}

/// The running threads and the writer's queue.
struct Threads {
    sender: Sender<Request>,
    writer: JoinHandle<()>,
    checkpointer: JoinHandle<()>,
}

/// Starts the checkpoint thread and the writer thread (which writes a checkpoint at once when
/// the replay was slow to get or changed the log: damage, a torn tail, orphans, a full replay).
fn start_threads(
    shared: &Arc<Shared>,
    writer_view: WriterView,
    start: ThreadsStart<'_>,
) -> Result<Threads, OpenError> {
    let dir = &shared.config().dir;
    let replayed = start.replayed;
    let (tx, rx) = channel();
    let checkpointer = checkpoint::start(shared.checkpoint_view(), start.newest_generation)
        .map_err(io("start the checkpoint thread for", dir))?;
    let checkpoint_now = !replayed.damage.is_empty()
        || replayed.torn_tail.is_some()
        || !replayed.orphans.is_empty()
        || (matches!(replayed.start, ReplayStart::Full { .. }) && replayed.records > 0);
    let writer = Writer::new(
        writer_view,
        WriterStart {
            rx,
            active: start.active,
            next_seq: replayed.next_seq,
            channel_id: start.channel_id,
            dirs: start.dirs,
            prefill: start.prefill,
            checkpoints: checkpointer.tx,
            checkpoint_now,
        },
    );
    let handle = std::thread::Builder::new()
        .name("sluice-writer".into())
        .spawn(move || writer.run())
        .map_err(io("start the writer for", dir))?;
    Ok(Threads {
        sender: tx,
        writer: handle,
        checkpointer: checkpointer.thread,
    })
}
