//! Fault injection on the simulated storage: a failed fsync poisons the channel, a full disk
//! is never acknowledged, the directory lock names its holder, acknowledged commits survive a
//! crash at every point of a workload (every prefix, and a process death after every number
//! of storage operations), and new segments' directory entries are made durable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::drain;

use file_channel::format::segment_header::segment_file_name;
use file_channel::storage::Storage;
use file_channel::{
    ChannelConfig, CommitError, Event, FileChannel, OpenError, PutError, TakeError,
};
use file_channel_testkit::{CrashMode, SimStorage};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

const DIR: &str = "/ch";

fn cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new(DIR);
    // The prefiller's own fsyncs would race the armed faults; these tests are about the writer.
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 64 << 10;
    c
}

fn small_segments() -> ChannelConfig {
    let mut c = cfg();
    c.segment_bytes_max = 4096;
    c
}

fn open(sim: &SimStorage, c: &ChannelConfig) -> FileChannel {
    FileChannel::open_with(c.clone(), Arc::new(sim.clone())).unwrap()
}

fn ev(body: &str) -> Event {
    Event::new(body.as_bytes().to_vec())
}

fn put_commit(ch: &FileChannel, events: &[Event]) -> Result<(), CommitError> {
    let mut tx = ch.transaction();
    for e in events {
        tx.put(e).unwrap();
    }
    tx.commit()
}

fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8(e.body.clone()).unwrap())
        .collect()
}

/// Event `i` of a workload: ~500 bytes, so 4 KiB segments rotate every few events.
fn big(i: usize) -> Event {
    let body: Vec<u8> = format!("{i:04}:")
        .into_bytes()
        .into_iter()
        .chain((0..500).map(|j| (i * 31 + j) as u8))
        .collect();
    Event::new(body).with_header("i", i.to_string())
}

/// Commit `k` of a workload: 1 to 3 events, numbered consecutively.
fn workload(commits: usize) -> Vec<Vec<Event>> {
    let mut n = 0;
    (0..commits)
        .map(|k| {
            let count = 1 + k % 3;
            let c = (n..n + count).map(big).collect();
            n += count;
            c
        })
        .collect()
}

#[test]
fn failed_fsync_poisons_the_channel() {
    let sim = SimStorage::new();
    let ch = open(&sim, &cfg());
    put_commit(&ch, &[ev("a")]).unwrap();
    let mut held_put = ch.transaction();
    held_put.put(&ev("held")).unwrap();
    let mut held_take = ch.transaction();
    assert_eq!(held_take.take().unwrap().unwrap(), ev("a"));

    sim.fail_next_syncs(1);
    match put_commit(&ch, &[ev("b")]) {
        Err(CommitError::Poisoned(_)) => {}
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert!(ch.poisoned().is_some());
    let m = ch.metrics();
    assert_eq!(m.unhealthy.load(Relaxed), 1);
    assert_eq!(m.fsync_error_count.load(Relaxed), 1);
    assert_eq!(m.event_put_success_count.load(Relaxed), 1);

    // Everything afterwards fails with Poisoned.
    match ch.transaction().put(&ev("c")) {
        Err(PutError::Poisoned(_)) => {}
        other => panic!("put: expected Poisoned, got {other:?}"),
    }
    match ch.transaction().take() {
        Err(TakeError::Poisoned(_)) => {}
        other => panic!("take: expected Poisoned, got {other:?}"),
    }
    match held_put.commit() {
        Err(CommitError::Poisoned(_)) => {}
        other => panic!("put commit: expected Poisoned, got {other:?}"),
    }
    match held_take.commit() {
        Err(CommitError::Poisoned(_)) => {}
        other => panic!("take commit: expected Poisoned, got {other:?}"),
    }
    assert!(ch.sync().is_err(), "sync of a poisoned channel succeeded");
    assert_eq!(m.fsync_error_count.load(Relaxed), 1);
    assert_eq!(m.unhealthy.load(Relaxed), 1);
    let _ = ch.close();

    let after = sim.crash(CrashMode::DropUnsynced);
    let ch = open(&after, &cfg());
    let got = bodies(&drain(&ch));
    assert!(
        got == ["a"] || got == ["a", "b"],
        "acknowledged 'a' must survive exactly once, the failed 'b' at most once: {got:?}"
    );
    assert_eq!(ch.metrics().unhealthy.load(Relaxed), 0);
    put_commit(&ch, &[ev("c")]).unwrap();
    assert_eq!(bodies(&drain(&ch)), ["c"]);
}

fn enospc_is_never_acknowledged(mode: CrashMode) {
    let sim = SimStorage::new();
    let ch = open(&sim, &cfg());
    put_commit(&ch, &[ev("first")]).unwrap();
    let dir = Path::new(DIR);
    sim.set_capacity_bytes(Some(1 << 40));
    let used = (1 << 40) - sim.available_space(dir).unwrap();
    // Room for three records of 216 bytes (56 + 6 + 154) and part of a fourth.
    sim.set_capacity_bytes(Some(used + 700));

    let mut acked = vec![ev("first")];
    let mut failed = None;
    for i in 0..20 {
        let e = Event::new(format!("{i:03}-{}", "n".repeat(150)).into_bytes());
        match put_commit(&ch, std::slice::from_ref(&e)) {
            Ok(()) => acked.push(e),
            Err(err) => {
                failed = Some((i, err));
                break;
            }
        }
    }
    let (i, err) = failed.expect("a full disk never failed a commit");
    assert_eq!(i, 3, "three records fit, the fourth does not: {err}");
    assert_eq!(ch.metrics().write_error_count.load(Relaxed), 1);
    assert!(
        matches!(err, CommitError::Write { .. }),
        "a full disk fails the commit without poisoning: {err}"
    );
    assert!(
        ch.poisoned().is_none(),
        "ENOSPC must not poison the channel"
    );
    let mut tx = ch.transaction();
    let later_acked = tx.put(&ev("x")).is_ok() && tx.commit().is_ok();
    assert!(
        !later_acked,
        "the disk is still full, nothing more can be acknowledged"
    );
    let _ = ch.close();

    let after = sim.crash(mode);
    after.set_capacity_bytes(None);
    let ch = open(&after, &cfg());
    // The writer cut the short write back as soon as it failed, so even when every unsynced
    // byte survives (KeepAll) there is no torn tail left to find.
    assert_eq!(ch.open_report().torn_tail, None, "{mode:?}");
    assert_eq!(drain(&ch), acked, "{mode:?}");
    put_commit(&ch, &[ev("later")]).unwrap();
    drop(ch);
    let again = after.crash(CrashMode::DropUnsynced);
    let ch = open(&again, &cfg());
    assert_eq!(bodies(&drain(&ch)), ["later"]);
}

#[test]
fn enospc_is_never_acknowledged_drop_unsynced() {
    enospc_is_never_acknowledged(CrashMode::DropUnsynced);
}

#[test]
fn enospc_is_never_acknowledged_keep_all() {
    enospc_is_never_acknowledged(CrashMode::KeepAll);
}

fn assert_locked_by_us(err: OpenError, dir: &Path) {
    let pid = format!("pid {} ", std::process::id());
    let msg = err.to_string();
    match err {
        OpenError::Locked { dir: d, holder } => {
            assert_eq!(d, dir);
            assert!(
                holder.contains(&pid),
                "holder {holder:?} does not name {pid}"
            );
            assert!(msg.contains(&pid), "message {msg:?} does not name {pid}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn second_open_of_a_locked_directory_fails_on_sim() {
    let sim = SimStorage::new();
    let ch = open(&sim, &cfg());
    put_commit(&ch, &[ev("a")]).unwrap();
    let err = FileChannel::open_with(cfg(), Arc::new(sim.clone())).unwrap_err();
    assert_locked_by_us(err, Path::new(DIR));
    // The refused open changed nothing.
    assert_eq!(ch.len(), 1);
    put_commit(&ch, &[ev("b")]).unwrap();
    ch.close().unwrap();

    let ch = open(&sim, &cfg());
    assert_eq!(bodies(&drain(&ch)), ["a", "b"]);
    drop(ch); // dropping the last handle releases the lock too
    let ch = open(&sim, &cfg());
    assert!(ch.is_empty());
}

#[test]
fn second_open_of_a_locked_directory_fails_on_the_real_fs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ChannelConfig::new(dir.path());
    c.prefill_ahead_bytes = 0;
    let ch = FileChannel::open(c.clone()).unwrap();
    put_commit(&ch, &[ev("a")]).unwrap();
    let err = FileChannel::open(c.clone()).unwrap_err();
    assert_locked_by_us(err, dir.path());
    ch.close().unwrap();
    let ch = FileChannel::open(c).unwrap();
    assert_eq!(bodies(&drain(&ch)), ["a"]);
}

#[test]
fn acknowledged_commits_survive_a_crash_after_every_prefix() {
    let commits = workload(12);
    for k in 0..=commits.len() {
        let sim = SimStorage::new();
        let c = small_segments();
        let ch = open(&sim, &c);
        for events in &commits[..k] {
            put_commit(&ch, events).unwrap();
        }
        // No close: the crash happens with the channel running.
        let after = sim.crash(CrashMode::DropUnsynced);
        drop(ch);
        let ch = FileChannel::open_with(c, Arc::new(after))
            .unwrap_or_else(|e| panic!("after {k} commits: {e}"));
        let want: Vec<Event> = commits[..k].iter().flatten().cloned().collect();
        assert_eq!(ch.len(), want.len() as u64, "after {k} commits");
        assert_eq!(drain(&ch), want, "after {k} commits");
    }
}

#[test]
fn no_commit_is_acknowledged_before_its_fdatasync() {
    let commits = workload(8);
    let mut saw_failure = 0;
    let mut saw_all_acked = false;
    for n in 1..=80 {
        let sim = SimStorage::new();
        let c = small_segments();
        let ch = open(&sim, &c);
        sim.crash_after_ops(n);
        let mut acked = 0; // commits acknowledged
        for events in &commits {
            match put_commit(&ch, events) {
                Ok(()) => acked += 1,
                Err(_) => break,
            }
        }
        if acked == commits.len() {
            saw_all_acked = true;
        } else {
            saw_failure += 1;
        }
        let after = sim.crash(CrashMode::DropUnsynced);
        let _ = ch.close();
        let ch = FileChannel::open_with(c, Arc::new(after))
            .unwrap_or_else(|e| panic!("crash after {n} ops: {e}"));
        let got = drain(&ch);
        // What survives is whole commits, in order: every acknowledged one, and at most the
        // one that was in flight when the process died.
        let acked_events: Vec<Event> = commits[..acked].iter().flatten().cloned().collect();
        let with_in_doubt: Vec<Event> = commits[..(acked + 1).min(commits.len())]
            .iter()
            .flatten()
            .cloned()
            .collect();
        assert!(
            got == acked_events || got == with_in_doubt,
            "crash after {n} ops: {acked} commits acknowledged ({} events), {} events recovered: {:?}",
            acked_events.len(),
            got.len(),
            got.iter().map(|e| e.header("i").unwrap_or("?").to_owned()).collect::<Vec<_>>()
        );
    }
    assert!(saw_failure > 10, "the crash never hit the workload");
    assert!(saw_all_acked, "no run completed the workload");
}

#[test]
fn new_segment_directory_entries_are_made_durable() {
    let sim = SimStorage::new();
    let c = small_segments();
    let ch = open(&sim, &c);
    let dir = Path::new(DIR);
    let second = segment_file_name(2);
    let mut acked = Vec::new();
    let mut i = 0;
    while !sim.list(dir).unwrap().contains(&second) {
        let e = big(i);
        put_commit(&ch, std::slice::from_ref(&e)).unwrap();
        acked.push(e);
        i += 1;
        assert!(i < 50, "no rotation after {i} commits");
    }
    // The commit that just returned landed in the new segment; crash right away.
    let after = sim.crash(CrashMode::DropUnsynced);
    drop(ch);
    let names = after.list(dir).unwrap();
    assert!(
        names.contains(&second),
        "the new segment's directory entry was not fsynced: {names:?}"
    );
    let ch = open(&after, &c);
    assert_eq!(ch.open_report().segments, 2);
    assert_eq!(ch.open_report().torn_tail, None);
    assert_eq!(drain(&ch), acked);
}

/// Found by `crashtest sweep` (EIO at the checkpointer's directory fsync, about 1 run in 20):
/// the failed directory fsync could drop a segment the writer had just created in the same
/// directory, whose own directory fsync then "succeeded" without writing it, and commits in that
/// segment were acknowledged — after a crash their take records were gone and consumed events
/// came back. A failed directory fsync now poisons the channel like a failed `fdatasync`.
#[test]
fn failed_checkpoint_directory_fsync_poisons_the_channel() {
    let sim = SimStorage::new();
    let mut c = cfg();
    c.checkpoint_interval_ms = 300;
    let ch = open(&sim, &c);
    put_commit(&ch, &[ev("a")]).unwrap();
    // The checkpoint due in 300 ms makes these operations: create the temp file, write it,
    // fsync it, rename it, fsync the directory (index 4) — nothing else runs meanwhile.
    sim.fail_op_at(sim.op_count() + 4);
    let poisoned = common::wait_until(std::time::Duration::from_secs(10), || {
        ch.poisoned().is_some()
    });
    assert!(
        poisoned,
        "the failed directory fsync did not poison the channel"
    );
    let reason = ch.poisoned().unwrap().to_string();
    assert!(reason.contains("fsync of directory"), "{reason}");
    assert_eq!(ch.metrics().checkpoint_write_error_count.load(Relaxed), 1);
    assert!(matches!(
        ch.transaction().put(&ev("b")),
        Err(PutError::Poisoned(_))
    ));
    let _ = ch.close();
    let ch = open(&sim.crash(CrashMode::DropUnsynced), &cfg());
    assert_eq!(bodies(&drain(&ch)), ["a"]);
}

/// A reader that meets damage copies it to `quarantine/`, creating that directory and fsyncing
/// the channel directory. That fsync failing is like any failed directory fsync (Linux may have
/// dropped other entries of the same directory with it): the channel must be poisoned, not
/// carry on as if it had worked. It used to be ignored, outside the sync gate.
#[test]
fn a_failed_directory_fsync_while_quarantining_at_take_time_poisons_the_channel() {
    let sim = SimStorage::new();
    let c = small_segments();
    let ch = open(&sim, &c);
    for k in workload(12) {
        put_commit(&ch, &k).unwrap();
    }
    ch.close().unwrap();
    let seg2 = Path::new(DIR).join(segment_file_name(2));
    let bytes = sim.read_file(&seg2).unwrap();
    let recs = common::records(&bytes, 2);
    assert!(recs.len() >= 2, "{recs:?}");
    sim.flip_bit(&seg2, recs[1].offset + 80, 3).unwrap();

    // The checkpoint of the clean close lets open skip segment 2's records: the reader meets
    // the damage.
    let ch = open(&sim, &c);
    assert!(ch.open_report().damage.is_empty());
    assert!(!sim.exists(&Path::new(DIR).join("quarantine")));
    sim.fail_next_syncs(1);
    let mut failure = None;
    for _ in 0..200 {
        let mut tx = ch.transaction();
        match tx.take() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
        if let Err(e) = tx.commit() {
            failure = Some(e.to_string());
            break;
        }
    }
    let failure = failure.expect("the failed directory fsync must stop the channel");
    assert!(failure.contains("fsync of directory"), "{failure}");
    let p = ch.poisoned().expect("poisoned");
    assert!(p.to_string().contains("fsync of directory"), "{p}");
    assert_eq!(ch.metrics().fsync_error_count.load(Relaxed), 1);
}
