//! Running out of disk space: below `minimum_required_space` puts are refused with
//! `InsufficientSpace` (naming directory, free and required bytes) while takes, take commits,
//! checkpoints and deletion go on so the channel drains, and puts come back once space does;
//! a write that hits ENOSPC fails its commit with `CommitError::Write` without poisoning the
//! channel, and nothing acknowledged is lost across a crash; a take commit whose record hit
//! ENOSPC is still durable once a later put commit returns; and the same on a real, small
//! tmpfs (skipped with a message where it cannot be mounted).
//!
//! One topic, the channel's answer to a full disk, kept in one file of about 600 lines: the
//! simulated and the tmpfs tests check the same contract with the same put, take and refusal
//! helpers, and split apart they would need those helpers shared for no gain in reading.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::wait_until;

use file_channel::format::segment_header::segment_file_name;
use file_channel::storage::Storage;
use file_channel::{ChannelConfig, CommitError, Event, FileChannel, PutError};
use file_channel_testkit::{CrashMode, SimStorage};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DIR: &str = "/ch";
const MIB: u64 = 1 << 20;

fn open(sim: &SimStorage, c: &ChannelConfig) -> FileChannel {
    FileChannel::open_with(c.clone(), Arc::new(sim.clone())).unwrap()
}

/// Event `i`: ~250 bytes, numbered by header `i`.
fn big(i: usize) -> Event {
    let body: Vec<u8> = format!("{i:05}:")
        .into_bytes()
        .into_iter()
        .chain((0..240).map(|j| (i * 13 + j) as u8))
        .collect();
    Event::new(body).with_header("i", i.to_string())
}

fn id_of(e: &Event) -> usize {
    let i: usize = e.header("i").expect("header i").parse().unwrap();
    assert_eq!(*e, big(i), "event {i} came back damaged");
    i
}

/// What went wrong with a put commit: at `put` or at `commit`.
#[derive(Debug)]
enum Refused {
    Put(PutError),
    Commit(CommitError),
}

/// Puts `e` in its own transaction and commits it.
fn put_one(ch: &FileChannel, e: &Event) -> Result<(), Refused> {
    let mut tx = ch.transaction();
    tx.put(e).map_err(Refused::Put)?;
    tx.commit().map_err(Refused::Commit)
}

fn put_each(ch: &FileChannel, r: std::ops::Range<usize>) -> Vec<usize> {
    for i in r.clone() {
        put_one(ch, &big(i)).unwrap();
    }
    r.collect()
}

/// Takes exactly `n` events in one transaction and commits it.
fn take_commit(ch: &FileChannel, n: usize) -> Vec<usize> {
    let mut tx = ch.transaction();
    let mut out = Vec::new();
    for k in 0..n {
        let e = tx
            .take()
            .unwrap()
            .unwrap_or_else(|| panic!("only {k} of {n} events to take"));
        out.push(id_of(&e));
    }
    tx.commit().unwrap();
    out
}

/// Everything visible, taken in one transaction that is then rolled back.
fn peek_all(ch: &FileChannel) -> Vec<usize> {
    let mut tx = ch.transaction();
    let mut out = Vec::new();
    while let Some(e) = tx.take().unwrap() {
        out.push(id_of(&e));
    }
    tx.rollback();
    out
}

/// Takes and commits everything visible.
fn drain(ch: &FileChannel) -> Vec<usize> {
    let mut out = Vec::new();
    loop {
        let mut tx = ch.transaction();
        let mut n = 0;
        while n < 200 {
            match tx.take().unwrap() {
                Some(e) => {
                    out.push(id_of(&e));
                    n += 1;
                }
                None => break,
            }
        }
        tx.commit().unwrap();
        if n < 200 {
            return out;
        }
    }
}

/// Retries a put of `e` for up to `timeout` while it is refused for lack of space; returns
/// how long it took to be accepted. Any other failure fails the test.
fn put_when_space_returns(ch: &FileChannel, e: &Event, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match put_one(ch, e) {
            Ok(()) => return started.elapsed(),
            Err(Refused::Put(PutError::InsufficientSpace { .. })) => {}
            Err(other) => panic!("put after space came back: {other:?}"),
        }
        assert!(
            started.elapsed() < timeout,
            "puts still refused {timeout:?} after space came back"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sim_cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new(DIR);
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 4096;
    c.checkpoint_interval_ms = 30;
    c.minimum_required_space = MIB;
    c
}

#[test]
fn below_minimum_space_puts_are_refused_and_the_channel_drains() {
    let sim = SimStorage::new();
    let c = sim_cfg();
    let ch = open(&sim, &c);
    let observer = ch.clone();
    let m = observer.metrics();
    let mut acked = put_each(&ch, 0..30);
    assert_eq!(m.disk_space_low.load(Relaxed), 0);

    let low = 300 << 10;
    sim.set_available_space(Some(low));
    // The writer re-checks the free space at most every 500 ms while it works; keep it busy.
    let started = Instant::now();
    let mut i = 30;
    let refused = loop {
        match put_one(&ch, &big(i)) {
            Ok(()) => acked.push(i),
            Err(Refused::Put(e)) => break e,
            Err(other) => panic!("put {i}: expected InsufficientSpace, got {other:?}"),
        }
        i += 1;
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "puts still accepted {:?} after the space went low",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    match refused {
        PutError::InsufficientSpace {
            dir,
            available,
            required,
        } => {
            assert_eq!(dir, Path::new(DIR));
            assert_eq!(available, low);
            assert_eq!(required, MIB);
        }
        other => panic!("expected InsufficientSpace, got {other:?}"),
    }
    assert_eq!(m.put_refused_no_space_count.load(Relaxed), 1);
    assert_eq!(m.disk_space_low.load(Relaxed), 1);
    assert!(ch.poisoned().is_none());
    // Every further put is refused and counted; the refused event reserved nothing.
    for k in 0..3 {
        match put_one(&ch, &big(i)) {
            Err(Refused::Put(PutError::InsufficientSpace { available, .. })) => {
                assert_eq!(available, low);
            }
            other => panic!("put while low: {other:?}"),
        }
        assert_eq!(m.put_refused_no_space_count.load(Relaxed), 2 + k);
    }
    assert_eq!(ch.len(), acked.len() as u64);

    // Takes, take commits, checkpoints and deletion go on.
    let checkpoints = m.checkpoint_count.load(Relaxed);
    let deleted = m.segments_deleted.load(Relaxed);
    let half = acked.len() / 2;
    assert_eq!(take_commit(&ch, half), acked[..half]);
    assert!(
        wait_until(Duration::from_secs(5), || m.checkpoint_count.load(Relaxed)
            > checkpoints
            && m.segments_deleted.load(Relaxed) > deleted),
        "no checkpoint or deletion while space is low: {} checkpoints, {} deleted",
        m.checkpoint_count.load(Relaxed),
        m.segments_deleted.load(Relaxed)
    );
    assert_eq!(m.checkpoint_write_error_count.load(Relaxed), 0);
    assert_eq!(
        m.disk_space_low.load(Relaxed),
        1,
        "deleting segments freed nothing here"
    );

    // A crash now: every acknowledged event not consumed is there, and space is still low.
    ch.sync().unwrap();
    let image = sim.crash(CrashMode::DropUnsynced);
    drop(ch);
    drop(observer);
    image.set_available_space(Some(low));
    let ch = open(&image, &c);
    let m = ch.metrics();
    assert_eq!(m.disk_space_low.load(Relaxed), 1, "open checks the space");
    match put_one(&ch, &big(i)) {
        Err(Refused::Put(PutError::InsufficientSpace {
            dir,
            available,
            required,
        })) => assert_eq!(
            (dir.as_path(), available, required),
            (Path::new(DIR), low, MIB)
        ),
        other => panic!("first put after reopen while low: {other:?}"),
    }
    assert_eq!(m.put_refused_no_space_count.load(Relaxed), 1);
    assert_eq!(peek_all(&ch), acked[half..]);

    // Drains to empty; a checkpoint records it and the consumed segments go.
    assert_eq!(drain(&ch), acked[half..]);
    assert!(ch.is_empty());
    assert!(
        wait_until(Duration::from_secs(5), || m.checkpoint_count.load(Relaxed)
            >= 1
            && m.segments_deleted.load(Relaxed) >= 1),
        "after draining: {} checkpoints, {} deleted",
        m.checkpoint_count.load(Relaxed),
        m.segments_deleted.load(Relaxed)
    );

    // Space comes back: puts are accepted again within the re-check interval.
    image.set_available_space(None);
    let took = put_when_space_returns(&ch, &big(1000), Duration::from_millis(1500));
    assert!(took <= Duration::from_millis(1500));
    assert_eq!(m.disk_space_low.load(Relaxed), 0);
    let later = put_each(&ch, 1001..1005);
    ch.close().unwrap();
    let ch = open(&image, &c);
    let mut want = vec![1000];
    want.extend(later);
    assert_eq!(drain(&ch), want);
}

/// Sets the simulated capacity so that exactly `free` more bytes fit.
fn leave_free(sim: &SimStorage, free: u64) {
    sim.set_capacity_bytes(Some(1 << 40));
    let used = (1 << 40) - sim.available_space(Path::new(DIR)).unwrap();
    sim.set_capacity_bytes(Some(used + free));
}

fn enospc_cfg() -> ChannelConfig {
    let mut c = ChannelConfig::new(DIR);
    c.prefill_ahead_bytes = 0;
    c.minimum_required_space = 0;
    c.segment_bytes_max = 64 << 10;
    c
}

#[test]
fn enospc_fails_the_commit_without_poisoning() {
    let sim = SimStorage::new();
    let c = enospc_cfg();
    let ch = open(&sim, &c);
    let m = ch.metrics();
    let mut acked = put_each(&ch, 0..5);
    leave_free(&sim, 1500);

    let mut failed = None;
    for i in 5..40 {
        match put_one(&ch, &big(i)) {
            Ok(()) => acked.push(i),
            Err(Refused::Commit(e)) => {
                failed = Some(e);
                break;
            }
            Err(other) => panic!("put {i}: expected a failed commit, got {other:?}"),
        }
    }
    let failed = failed.expect("a full disk never failed a commit");
    assert!(acked.len() > 5, "1500 bytes hold a few records: {acked:?}");
    match &failed {
        CommitError::Write { path, source } => {
            assert_eq!(path, &Path::new(DIR).join(segment_file_name(1)));
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
        }
        other => panic!("expected CommitError::Write, got {other:?}"),
    }
    assert!(
        ch.poisoned().is_none(),
        "ENOSPC must not poison the channel"
    );
    assert_eq!(m.unhealthy.load(Relaxed), 0);
    assert_eq!(m.write_error_count.load(Relaxed), 1);
    assert_eq!(m.fsync_error_count.load(Relaxed), 0);
    assert_eq!(
        ch.len(),
        acked.len() as u64,
        "the failed put is not pending"
    );

    // Takes still work (and see exactly the acknowledged events).
    assert_eq!(peek_all(&ch), acked);
    assert_eq!(take_commit(&ch, 2), acked[..2]);

    // Space freed: puts work again once the channel re-checks (within about a second).
    sim.set_capacity_bytes(None);
    put_when_space_returns(&ch, &big(100), Duration::from_secs(3));
    assert!(ch.poisoned().is_none());
    acked.push(100);
    acked.extend(put_each(&ch, 101..104));
    ch.close().unwrap();

    let ch = open(&sim, &c);
    assert_eq!(ch.open_report().torn_tail, None);
    assert_eq!(drain(&ch), acked[2..]);
}

#[test]
fn enospc_then_crash_keeps_every_acknowledged_event() {
    let sim = SimStorage::new();
    let c = enospc_cfg();
    let ch = open(&sim, &c);
    let mut acked = put_each(&ch, 0..5);
    leave_free(&sim, 1200);
    let mut saw_failure = false;
    for i in 5..40 {
        match put_one(&ch, &big(i)) {
            Ok(()) => acked.push(i),
            Err(Refused::Commit(CommitError::Write { .. })) => {
                saw_failure = true;
                break;
            }
            Err(other) => panic!("put {i}: {other:?}"),
        }
    }
    assert!(saw_failure, "the disk never filled");
    sim.set_capacity_bytes(None);
    put_when_space_returns(&ch, &big(200), Duration::from_secs(3));
    acked.push(200);
    // Crash with the channel running: every acknowledged put was fsynced.
    let image = sim.crash(CrashMode::DropUnsynced);
    drop(ch);
    let ch = open(&image, &c);
    assert_eq!(peek_all(&ch), acked);
}

#[test]
fn a_take_commit_whose_record_hit_enospc_is_durable_after_a_later_put_commit() {
    let sim = SimStorage::new();
    let mut c = enospc_cfg();
    // No checkpoint interferes: only the log can say event 0 was consumed.
    c.checkpoint_interval_ms = 600_000;
    let ch = open(&sim, &c);
    let m = ch.metrics();
    put_each(&ch, 0..5);
    leave_free(&sim, 0);
    assert_eq!(take_commit(&ch, 1), vec![0]);
    // The take record's write fails for lack of space (nobody waits for it).
    assert!(
        wait_until(Duration::from_secs(2), || m.write_error_count.load(Relaxed)
            == 1),
        "the take record was written with no space left"
    );
    assert!(ch.poisoned().is_none());
    sim.set_capacity_bytes(None);
    put_when_space_returns(&ch, &big(5), Duration::from_secs(3));
    assert_eq!(m.checkpoint_count.load(Relaxed), 0);
    assert_eq!(ch.len(), 5, "in memory, event 0 is consumed");
    // docs/design.md: once any later put commit has returned, every earlier take commit is
    // durable. So event 0 must not come back after a crash.
    let image = sim.crash(CrashMode::DropUnsynced);
    drop(ch);
    let ch = open(&image, &c);
    assert_eq!(
        peek_all(&ch),
        vec![1, 2, 3, 4, 5],
        "the take commit of event 0 was acknowledged and followed by a put commit"
    );
}

/// A tmpfs mounted for the test; unmounted on drop (also when the test panics).
struct TmpfsMount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it open (a panicking test): detach it instead.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// How the small-filesystem test puts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    /// 4 KiB events with a pause after each: at most ~0.8 MiB/s, so the writer's free-space
    /// check (every 500 ms) sees the reserve shrink long before the disk is full.
    Slow,
    /// 1 KiB events as fast as the channel takes them: the disk may fill between two checks.
    Flat,
}

/// On a 4 MiB tmpfs with a 1 MiB reserve: put until refused, drain every acknowledged event,
/// then wait (bounded) for checkpoint and deletion to free the segments and puts to come back.
fn fill_drain_recover(pace: Pace) {
    let mount = match TmpfsMount::new("4m") {
        Ok(m) => m,
        Err(reason) => {
            println!("skipped: cannot mount tmpfs ({reason})");
            return;
        }
    };
    let mut c = ChannelConfig::new(mount.path.join("ch"));
    c.minimum_required_space = MIB;
    c.segment_bytes_max = 256 << 10;
    c.prefill_ahead_bytes = 256 << 10;
    c.checkpoint_interval_ms = 50;
    let ch = FileChannel::open(c.clone()).unwrap();
    let observer = ch.clone();
    let m = observer.metrics();
    let body_len = match pace {
        Pace::Slow => 4096,
        Pace::Flat => 1024,
    };
    let event = |i: usize| {
        let mut body = format!("{i:06}:").into_bytes();
        body.resize(body_len, b'a' + (i % 26) as u8);
        Event::new(body).with_header("i", i.to_string())
    };
    let free = || fs2::available_space(&c.dir).unwrap_or(0);

    // One event per commit until the channel refuses.
    let started = Instant::now();
    let mut acked = Vec::new();
    let mut i = 0;
    let refusal = loop {
        match put_one(&ch, &event(i)) {
            Ok(()) => acked.push(i),
            Err(e) => break e,
        }
        i += 1;
        assert!(
            i < 20_000 && started.elapsed() < Duration::from_secs(10),
            "4 MiB never filled: {i} events acknowledged"
        );
        if pace == Pace::Slow {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let bytes = acked.len() * body_len;
    match &refusal {
        Refused::Put(PutError::InsufficientSpace {
            dir,
            available,
            required,
        }) => {
            assert_eq!(dir, &c.dir);
            assert_eq!(*required, MIB);
            assert!(*available < MIB, "refused with {available} bytes free");
            println!(
                "{pace:?}: InsufficientSpace after {} events ({bytes} bytes, {:?}), {available} free",
                acked.len(),
                started.elapsed()
            );
        }
        Refused::Commit(CommitError::Write { source, .. }) if pace == Pace::Flat => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
            println!(
                "{pace:?}: ENOSPC after {} events ({bytes} bytes, {:?}) although \
                 minimum_required_space is {MIB}",
                acked.len(),
                started.elapsed()
            );
        }
        other => panic!("{pace:?}: expected InsufficientSpace or an ENOSPC write, got {other:?}"),
    }
    assert!(
        ch.poisoned().is_none(),
        "running out of space poisoned the channel: {:?}",
        ch.poisoned()
    );
    assert!(bytes > 2 * MIB as usize, "only {bytes} bytes accepted");

    // Takes drain every acknowledged event, in order.
    let mut tx = ch.transaction();
    let mut got = Vec::new();
    while let Some(e) = tx.take().unwrap() {
        let k: usize = e.header("i").unwrap().parse().unwrap();
        assert_eq!(e, event(k));
        got.push(k);
        if got.len().is_multiple_of(200) {
            tx.commit().unwrap();
            tx = ch.transaction();
        }
    }
    tx.commit().unwrap();
    assert_eq!(got, acked, "every acknowledged event, once, in order");
    assert!(ch.is_empty());

    // Checkpoint and deletion free the segments; puts are accepted again.
    let deadline = Instant::now() + Duration::from_secs(5);
    let next = acked.last().unwrap() + 1;
    loop {
        match put_one(&ch, &event(next)) {
            Ok(()) => break,
            Err(Refused::Put(PutError::InsufficientSpace { .. }))
            | Err(Refused::Commit(CommitError::Write { .. })) => {}
            Err(other) => panic!("put after draining: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "{pace:?}: puts still refused 5 s after draining: {} checkpoints written, {} \
             failed, {} segments deleted, {} on disk, {} write errors, {} bytes free",
            m.checkpoint_count.load(Relaxed),
            m.checkpoint_write_error_count.load(Relaxed),
            m.segments_deleted.load(Relaxed),
            m.segment_count.load(Relaxed),
            m.write_error_count.load(Relaxed),
            free()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(m.segments_deleted.load(Relaxed) > 0);
    assert_eq!(m.disk_space_low.load(Relaxed), 0);
    assert!(free() >= MIB);
    for k in next + 1..next + 10 {
        put_one(&ch, &event(k)).unwrap();
    }
    ch.close().unwrap();
    drop(observer);

    let ch = FileChannel::open(c).unwrap();
    let mut tx = ch.transaction();
    let mut after = Vec::new();
    while let Some(e) = tx.take().unwrap() {
        after.push(e.header("i").unwrap().parse::<usize>().unwrap());
    }
    tx.rollback();
    assert_eq!(after, (next..next + 10).collect::<Vec<_>>());
    ch.close().unwrap();
    drop(mount);
}

#[test]
fn a_small_real_filesystem_refuses_puts_below_the_reserve_and_recovers() {
    fill_drain_recover(Pace::Slow);
}

#[test]
fn a_small_real_filesystem_filled_at_full_speed_drains_and_recovers() {
    fill_drain_recover(Pace::Flat);
}
