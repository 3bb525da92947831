//! Transient errors do not poison the channel (issue 14, §2): a segment or a directory that
//! cannot be created or opened (too many open files, no permission) fails the put or the
//! checkpoint that needed it, is counted in `FileOpenErrorCount`, and is retried by the next
//! put or checkpoint; once the cause is gone the channel works again without a reopen, and
//! everything acknowledged is recovered after a crash. A failed fsync, by contrast, still
//! poisons.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{drain, wait_until};

use file_channel::storage::{DynFile, LockError, LockGuard, Storage};
use file_channel::{ChannelConfig, CommitError, Event, FileChannel};
use file_channel_testkit::{CrashMode, SimStorage};
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

const DIR: &str = "/ch";

/// 4 KiB segments and ~500-byte events: a rotation every few commits.
fn small_segments() -> ChannelConfig {
    let mut c = ChannelConfig::new(DIR);
    // The prefiller's own fsyncs would race the armed faults; these tests are about the writer.
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4096;
    c
}

fn event(i: usize) -> Event {
    Event::new(format!("{i:04}:{}", "x".repeat(500)).into_bytes())
}

fn put_commit(ch: &FileChannel, e: &Event) -> Result<(), CommitError> {
    let mut tx = ch.transaction();
    tx.put(e).unwrap();
    tx.commit()
}

/// Puts events until a commit fails; returns the failure (the events acknowledged before it
/// are appended to `acked`).
fn put_until_failure(ch: &FileChannel, acked: &mut Vec<Event>, next: &mut usize) -> CommitError {
    for _ in 0..50 {
        let e = event(*next);
        *next += 1;
        match put_commit(ch, &e) {
            Ok(()) => acked.push(e),
            Err(err) => return err,
        }
    }
    panic!("50 commits of 500 bytes into 4 KiB segments never needed a new segment");
}

/// An open of a new segment fails with `errno`: that put fails with `SegmentUnavailable`, the
/// channel is not poisoned, the next put tries again, and once the fault clears puts succeed
/// and everything acknowledged survives a crash and a reopen.
fn a_segment_that_cannot_be_created_fails_the_put_without_poisoning(errno: i32) {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(small_segments(), Arc::new(sim.clone())).unwrap();
    let mut acked = Vec::new();
    let mut next = 0;
    put_commit(&ch, &event(next)).unwrap();
    acked.push(event(next));
    next += 1;

    sim.fail_opens_with(Some(errno));
    let err = put_until_failure(&ch, &mut acked, &mut next);
    match &err {
        CommitError::SegmentUnavailable { op, path, source } => {
            assert_eq!(*op, "create", "{err}");
            assert_eq!(source.raw_os_error(), Some(errno), "{err}");
            assert!(path.starts_with(DIR), "the error names the segment: {err}");
        }
        other => panic!("errno {errno}: expected SegmentUnavailable, got {other:?}"),
    }
    assert!(
        ch.poisoned().is_none(),
        "errno {errno} poisoned the channel: {:?}",
        ch.poisoned()
    );
    let m = ch.metrics();
    assert_eq!(m.unhealthy.load(Relaxed), 0);
    assert_eq!(m.file_open_error_count.load(Relaxed), 1);

    // Still failing: the next put tries the rotation again and fails the same way.
    let e = event(next);
    next += 1;
    assert!(
        matches!(
            put_commit(&ch, &e),
            Err(CommitError::SegmentUnavailable { .. })
        ),
        "errno {errno}: the retry while the fault lasts must fail too"
    );
    assert_eq!(m.file_open_error_count.load(Relaxed), 2);
    assert!(ch.poisoned().is_none());

    // The episode ends: puts succeed again with no reopen, across further rotations.
    sim.fail_opens_with(None);
    let created_before = m.segments_created.load(Relaxed);
    for _ in 0..20 {
        let e = event(next);
        next += 1;
        put_commit(&ch, &e).unwrap();
        acked.push(e);
    }
    assert!(m.segments_created.load(Relaxed) >= created_before + 2);
    assert!(ch.poisoned().is_none());
    drop(ch);

    let after = sim.crash(CrashMode::DropUnsynced);
    let ch = FileChannel::open_with(small_segments(), Arc::new(after)).unwrap();
    assert_eq!(
        drain(&ch),
        acked,
        "errno {errno}: exactly the acknowledged events come back, in order"
    );
}

#[test]
fn emfile_creating_a_segment_fails_the_put_without_poisoning() {
    a_segment_that_cannot_be_created_fails_the_put_without_poisoning(libc::EMFILE);
}

#[test]
fn enfile_creating_a_segment_fails_the_put_without_poisoning() {
    a_segment_that_cannot_be_created_fails_the_put_without_poisoning(libc::ENFILE);
}

#[test]
fn eacces_creating_a_segment_fails_the_put_without_poisoning() {
    a_segment_that_cannot_be_created_fails_the_put_without_poisoning(libc::EACCES);
}

#[test]
fn enospc_creating_a_segment_fails_the_put_without_poisoning() {
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(small_segments(), Arc::new(sim.clone())).unwrap();
    let mut acked = Vec::new();
    let mut next = 0;
    sim.fail_opens_with(Some(libc::ENOSPC));
    let err = put_until_failure(&ch, &mut acked, &mut next);
    assert!(
        matches!(&err, CommitError::Write { source, .. } if source.raw_os_error() == Some(libc::ENOSPC)),
        "a segment that cannot be created for lack of space fails like a full disk: {err}"
    );
    assert!(ch.poisoned().is_none());
    sim.fail_opens_with(None);
    // The free-space verdict refuses puts until the next check sees room again.
    let recovered = wait_until(Duration::from_secs(20), || {
        let e = event(next);
        let mut tx = ch.transaction();
        if tx.put(&e).is_err() {
            tx.rollback();
            std::thread::sleep(Duration::from_millis(50));
            return false;
        }
        let ok = tx.commit().is_ok();
        if ok {
            acked.push(e);
            next += 1;
        }
        ok
    });
    assert!(
        recovered,
        "puts never succeeded again after the ENOSPC ended"
    );
    assert!(ch.poisoned().is_none());
    drop(ch);
    let ch = FileChannel::open_with(
        small_segments(),
        Arc::new(sim.crash(CrashMode::DropUnsynced)),
    )
    .unwrap();
    assert_eq!(drain(&ch), acked);
}

/// A new segment's fsync fails: that still poisons (durability is in doubt).
#[test]
fn a_failed_fsync_while_rotating_still_poisons() {
    // Which put rotates: the same puts into a fault-free channel tell.
    let rotating_put = {
        let ch = FileChannel::open_with(small_segments(), Arc::new(SimStorage::new())).unwrap();
        let created = ch.metrics().segments_created.load(Relaxed);
        (0..50)
            .find(|&i| {
                put_commit(&ch, &event(i)).unwrap();
                ch.metrics().segments_created.load(Relaxed) > created
            })
            .expect("50 puts never rotated")
    };
    let sim = SimStorage::new();
    let ch = FileChannel::open_with(small_segments(), Arc::new(sim.clone())).unwrap();
    for i in 0..rotating_put {
        put_commit(&ch, &event(i)).unwrap();
    }
    // The first fsync of the rotating put is the new segment's header's.
    sim.fail_next_syncs(1);
    let err = put_commit(&ch, &event(rotating_put)).unwrap_err();
    assert!(
        matches!(&err, CommitError::Poisoned(p) if p.to_string().contains("cannot fsync segment")),
        "a failed fsync of the new segment must poison: {err}"
    );
    assert!(ch.poisoned().is_some());
    assert_eq!(ch.metrics().unhealthy.load(Relaxed), 1);
    assert_eq!(ch.metrics().file_open_error_count.load(Relaxed), 0);
}

/// A storage whose directory opens (for `sync_dir`) fail with `EMFILE` while armed; everything
/// else goes to the simulated storage.
#[derive(Debug)]
struct DirOpenFails {
    sim: SimStorage,
    armed: AtomicBool,
}

impl Storage for DirOpenFails {
    fn create(&self, path: &Path) -> io::Result<DynFile> {
        self.sim.create(path)
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile> {
        self.sim.open(path, writable)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.sim.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.sim.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.armed.load(SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        self.sim.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.sim.create_dir_all(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.sim.exists(path)
    }
    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        self.sim.available_space(dir)
    }
    fn lock(&self, path: &Path, owner: &str) -> Result<Box<dyn LockGuard>, LockError> {
        self.sim.lock(path, owner)
    }
}

/// The new segment was created but its directory cannot be opened to fsync its entry: the put
/// fails, the half-made segment is removed, and the next rotation makes it again.
#[test]
fn emfile_opening_the_directory_of_a_new_segment_fails_the_put_without_poisoning() {
    let sim = SimStorage::new();
    let storage = Arc::new(DirOpenFails {
        sim: sim.clone(),
        armed: AtomicBool::new(false),
    });
    let ch = FileChannel::open_with(small_segments(), storage.clone()).unwrap();
    let mut acked = Vec::new();
    let mut next = 0;
    storage.armed.store(true, SeqCst);
    let err = put_until_failure(&ch, &mut acked, &mut next);
    match &err {
        CommitError::SegmentUnavailable { op, source, .. } => {
            assert_eq!(*op, "fsync the directory of", "{err}");
            assert_eq!(source.raw_os_error(), Some(libc::EMFILE), "{err}");
        }
        other => panic!("expected SegmentUnavailable, got {other:?}"),
    }
    assert!(ch.poisoned().is_none(), "{:?}", ch.poisoned());
    assert_eq!(ch.metrics().fsync_error_count.load(Relaxed), 0);
    assert!(ch.metrics().file_open_error_count.load(Relaxed) >= 1);

    storage.armed.store(false, SeqCst);
    for _ in 0..20 {
        let e = event(next);
        next += 1;
        put_commit(&ch, &e).unwrap();
        acked.push(e);
    }
    assert!(ch.poisoned().is_none());
    drop(ch);
    let ch = FileChannel::open_with(
        small_segments(),
        Arc::new(sim.crash(CrashMode::DropUnsynced)),
    )
    .unwrap();
    assert_eq!(drain(&ch), acked);
}

/// A checkpoint whose directory cannot be opened for the fsync fails (and is counted) without
/// poisoning; the next one succeeds once the fault is gone.
#[test]
fn emfile_opening_the_directory_for_a_checkpoint_does_not_poison() {
    let sim = SimStorage::new();
    let storage = Arc::new(DirOpenFails {
        sim: sim.clone(),
        armed: AtomicBool::new(false),
    });
    let mut cfg = small_segments();
    cfg.checkpoint_interval_ms = 20;
    let ch = FileChannel::open_with(cfg.clone(), storage.clone()).unwrap();
    let m = ch.metrics();
    storage.armed.store(true, SeqCst);
    let mut acked = Vec::new();
    // One small put at a time, well inside the first segment: only checkpoints sync the
    // directory.
    let mut i = 0;
    let failed = wait_until(Duration::from_secs(20), || {
        let e = Event::new(format!("small {i}").into_bytes());
        i += 1;
        put_commit(&ch, &e).unwrap();
        acked.push(e);
        std::thread::sleep(Duration::from_millis(10));
        m.checkpoint_write_error_count.load(Relaxed) >= 1
    });
    assert!(
        failed,
        "no checkpoint was attempted while the directory open failed"
    );
    assert!(ch.poisoned().is_none(), "{:?}", ch.poisoned());
    assert!(m.file_open_error_count.load(Relaxed) >= 1);

    storage.armed.store(false, SeqCst);
    let written_before = m.checkpoint_count.load(Relaxed);
    let written = wait_until(Duration::from_secs(20), || {
        let e = Event::new(format!("small {i}").into_bytes());
        i += 1;
        put_commit(&ch, &e).unwrap();
        acked.push(e);
        std::thread::sleep(Duration::from_millis(10));
        m.checkpoint_count.load(Relaxed) > written_before
    });
    assert!(written, "no checkpoint was written after the fault cleared");
    assert!(ch.poisoned().is_none());
    drop(ch);
    let ch = FileChannel::open_with(cfg, Arc::new(sim.crash(CrashMode::DropUnsynced))).unwrap();
    assert_eq!(drain(&ch), acked);
}

/// A checkpoint file that cannot be created fails that checkpoint alone, counted in both
/// `CheckpointWriteErrorCount` and `FileOpenErrorCount`; puts inside the active segment go on,
/// and the next checkpoint after the fault is written.
#[test]
fn emfile_creating_a_checkpoint_fails_that_checkpoint_only() {
    let sim = SimStorage::new();
    let mut cfg = small_segments();
    cfg.segment_bytes_max = 1 << 20;
    cfg.checkpoint_interval_ms = 20;
    let ch = FileChannel::open_with(cfg.clone(), Arc::new(sim.clone())).unwrap();
    let m = ch.metrics();
    sim.fail_opens_with(Some(libc::EMFILE));
    let mut acked = Vec::new();
    let mut i = 0;
    let failed = wait_until(Duration::from_secs(20), || {
        let e = Event::new(format!("small {i}").into_bytes());
        i += 1;
        put_commit(&ch, &e).unwrap();
        acked.push(e);
        std::thread::sleep(Duration::from_millis(10));
        m.checkpoint_write_error_count.load(Relaxed) >= 1
    });
    assert!(failed, "no checkpoint was attempted while opens failed");
    assert!(m.file_open_error_count.load(Relaxed) >= 1);
    assert!(ch.poisoned().is_none(), "{:?}", ch.poisoned());

    sim.fail_opens_with(None);
    let written_before = m.checkpoint_count.load(Relaxed);
    let written = wait_until(Duration::from_secs(20), || {
        let e = Event::new(format!("small {i}").into_bytes());
        i += 1;
        put_commit(&ch, &e).unwrap();
        acked.push(e);
        std::thread::sleep(Duration::from_millis(10));
        m.checkpoint_count.load(Relaxed) > written_before
    });
    assert!(written, "no checkpoint was written after the fault cleared");
    drop(ch);
    let ch = FileChannel::open_with(cfg, Arc::new(sim.crash(CrashMode::DropUnsynced))).unwrap();
    assert_eq!(drain(&ch), acked);
}
