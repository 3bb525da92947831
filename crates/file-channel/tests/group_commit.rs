//! Group commit's gather wait, made deterministic by a storage whose segment fsyncs block
//! until the test opens a gate: committers released by one fsync share the next one with the
//! commits that queued meanwhile, instead of alternating with them in two cohorts, and the
//! writer writes what it has while it waits for the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use file_channel::storage::{DynFile, LockError, LockGuard, Storage, StorageFile};
use file_channel::{ChannelConfig, CommitError, Event, FileChannel};
use file_channel_testkit::{CrashMode, SimStorage};
use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Whether segment fsyncs may proceed.
#[derive(Debug, Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
    /// Segment fsyncs that reached the gate.
    arrived: Mutex<u64>,
    /// Every write to a segment file, in order.
    writes: Mutex<Vec<Vec<u8>>>,
    /// How long each segment fsync takes once through the gate.
    sync_delay: Mutex<Duration>,
    /// Sync a segment right after each write to it, outside the gate, as another fsync of the
    /// same file (the prefill thread's) can.
    sync_after_write: AtomicBool,
}

impl Gate {
    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.changed.notify_all();
    }

    fn pass(&self) {
        *self.arrived.lock().unwrap() += 1;
        self.changed.notify_all();
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }

    fn arrived(&self) -> u64 {
        *self.arrived.lock().unwrap()
    }
}

#[derive(Debug)]
struct GatedStorage {
    inner: SimStorage,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: DynFile,
    gate: Option<Arc<Gate>>,
}

impl StorageFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if let Some(g) = &self.gate {
            g.writes.lock().unwrap().push(buf.to_vec());
        }
        self.inner.write_at(buf, offset)?;
        if self
            .gate
            .as_ref()
            .is_some_and(|g| g.sync_after_write.load(SeqCst))
        {
            self.inner.sync_data()?;
        }
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        if let Some(g) = &self.gate {
            g.pass();
            std::thread::sleep(*g.sync_delay.lock().unwrap());
        }
        self.inner.sync_data()
    }
}

impl GatedStorage {
    fn wrap(&self, path: &Path, file: DynFile) -> DynFile {
        let is_segment = path.extension().is_some_and(|e| e == "seg");
        Arc::new(GatedFile {
            inner: file,
            gate: is_segment.then(|| self.gate.clone()),
        })
    }
}

impl Storage for GatedStorage {
    fn create(&self, path: &Path) -> io::Result<DynFile> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<DynFile> {
        Ok(self.wrap(path, self.inner.open(path, writable)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        self.inner.available_space(dir)
    }
    fn lock(&self, path: &Path, owner: &str) -> Result<Box<dyn LockGuard>, LockError> {
        self.inner.lock(path, owner)
    }
}

fn metric(ch: &FileChannel, name: &str) -> u64 {
    ch.metrics_snapshot()
        .into_iter()
        .find(|m| m.0 == name)
        .map_or_else(|| panic!("no metric {name}"), |m| m.1)
}

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    assert!(
        common::wait_until(Duration::from_secs(60), f),
        "timed out waiting for {what}"
    );
}

fn commit_one(ch: &FileChannel, body: &str) {
    let mut tx = ch.transaction();
    tx.put(&Event::new(body.to_owned())).unwrap();
    tx.commit().unwrap();
}

/// What the scenario saw.
struct Outcome {
    /// Segment fsyncs from A's first commit on.
    fsyncs: u64,
    gather_timeouts: u64,
    /// Segment writes from A's first commit on.
    writes: Vec<Vec<u8>>,
}

impl Outcome {
    /// The index of the write that holds `body`.
    fn write_holding(&self, body: &str) -> usize {
        self.writes
            .iter()
            .position(|w| w.windows(body.len()).any(|x| x == body.as_bytes()))
            .unwrap_or_else(|| panic!("no write holds {body}"))
    }
}

/// A channel on a gated simulated disk whose fsync-time estimate is warmed up.
struct Warmed {
    ch: Arc<FileChannel>,
    gate: Arc<Gate>,
    sim: SimStorage,
    cfg: ChannelConfig,
}

/// Opens a channel (no prefill, no space reserve) and commits one event, `warm`, whose fsync
/// the gate holds for 600 ms: the wait allowed afterwards (half the fsync-time estimate,
/// capped by `wait_us_max`) is then long on any machine.
fn open_warmed(wait_us_max: u64) -> Warmed {
    let sim = SimStorage::new();
    let gate = Arc::new(Gate::default());
    let storage = Arc::new(GatedStorage {
        inner: sim.clone(),
        gate: gate.clone(),
    });
    let mut cfg = ChannelConfig::new("/chan");
    cfg.prefill_ahead_bytes = 0;
    cfg.minimum_required_space = 0;
    cfg.group_commit_wait_us_max = wait_us_max;
    gate.set(true);
    let ch = Arc::new(FileChannel::open_with(cfg.clone(), storage).unwrap());
    // Warm up the fsync-time estimate with a slow fsync (the gate held 600 ms), so the wait
    // allowed afterwards (half of it, capped by the setting) is long on any machine.
    let opened = gate.arrived();
    gate.set(false);
    let warm = {
        let ch = ch.clone();
        std::thread::spawn(move || commit_one(&ch, "warm"))
    };
    wait_for("the warm-up fsync", || gate.arrived() == opened + 1);
    std::thread::sleep(Duration::from_millis(600));
    gate.set(true);
    warm.join().unwrap();
    Warmed { ch, gate, sim, cfg }
}

/// Committer A commits `event-a1`, whose fsync the (closed) gate holds, then — 50 ms after it
/// returns — `event-a2`; meanwhile B and C queue `event-b` and `event-c`. Returns once both are
/// queued, with the gate still closed: A's thread answers whether A2 was acknowledged (false if
/// its put or commit failed), B's and C's their commit results.
fn hold_a_and_queue_b_and_c(
    ch: &Arc<FileChannel>,
    gate: &Gate,
) -> (JoinHandle<bool>, Vec<JoinHandle<Result<(), CommitError>>>) {
    let arrived_before = gate.arrived();
    gate.set(false);
    let a = {
        let ch = ch.clone();
        std::thread::spawn(move || {
            commit_one(&ch, "event-a1");
            // Back 50 ms after release: inside the wait (half the 600 ms warm-up fsync), and
            // long after a writer that does not wait has written B and C.
            std::thread::sleep(Duration::from_millis(50));
            let mut tx = ch.transaction();
            tx.put(&Event::new("event-a2")).is_ok() && tx.commit().is_ok()
        })
    };
    wait_for("A's fsync", || gate.arrived() == arrived_before + 1);
    let others = ["event-b", "event-c"]
        .into_iter()
        .map(|name| {
            let ch = ch.clone();
            std::thread::spawn(move || {
                let mut tx = ch.transaction();
                tx.put(&Event::new(name)).unwrap();
                tx.commit()
            })
        })
        .collect();
    wait_for("B and C queued", || metric(ch, "CommitsQueued") == 2);
    (a, others)
}

/// One committer (A) is in an fsync while two others (B, C) queue. When the fsync ends, the
/// writer expects A back as well and waits for it: B, C and A's second commit share one fsync.
/// Without the wait (`group_commit_wait_us_max = 0`) they take two.
fn scenario(wait_us_max: u64) -> Outcome {
    let Warmed { ch, gate, .. } = open_warmed(wait_us_max);
    let fsyncs_before = metric(&ch, "FsyncCount");
    let writes_before = gate.writes.lock().unwrap().len();
    let (a, others) = hold_a_and_queue_b_and_c(&ch, &gate);
    gate.set(true);
    assert!(a.join().unwrap(), "A2 acknowledged");
    for t in others {
        t.join().unwrap().unwrap();
    }
    assert_eq!(ch.len(), 5, "every commit is in the channel");
    let writes = gate.writes.lock().unwrap().split_off(writes_before);
    Outcome {
        fsyncs: metric(&ch, "FsyncCount") - fsyncs_before,
        gather_timeouts: metric(&ch, "GatherTimeoutCount"),
        writes,
    }
}

#[test]
fn released_committer_joins_the_queued_ones_in_one_fsync() {
    let outcome = scenario(1_000_000);
    assert_eq!(outcome.fsyncs, 2, "A1 alone, then B + C + A2 together");
    assert_eq!(outcome.gather_timeouts, 0, "A came back within the wait");
}

#[test]
fn the_writer_writes_what_it_has_while_it_waits_for_the_rest_of_the_batch() {
    let outcome = scenario(1_000_000);
    let (b, c, a2) = (
        outcome.write_holding("event-b"),
        outcome.write_holding("event-c"),
        outcome.write_holding("event-a2"),
    );
    assert_eq!(outcome.fsyncs, 2, "B, C and A2 still share one fsync");
    assert!(
        b < a2 && c < a2,
        "B and C are written during the 50 ms wait for A, before A2's write \
         (writes holding B, C, A2: {b}, {c}, {a2})"
    );
}

#[test]
fn without_the_wait_the_cohorts_alternate() {
    let outcome = scenario(0);
    assert_eq!(outcome.fsyncs, 3, "A1, then B + C, then A2");
    assert_eq!(outcome.gather_timeouts, 0);
}

#[test]
fn a_single_committer_never_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ChannelConfig::new(dir.path());
    cfg.prefill_ahead_bytes = 0;
    let ch = FileChannel::open(cfg).unwrap();
    let before = metric(&ch, "FsyncCount");
    for i in 0..200 {
        commit_one(&ch, &format!("e{i}"));
    }
    assert_eq!(
        metric(&ch, "FsyncCount") - before,
        200,
        "one fsync per commit"
    );
    assert_eq!(metric(&ch, "GatherTimeoutCount"), 0);
    assert_eq!(metric(&ch, "CommitsQueued"), 0);
}

#[test]
fn a_wait_over_one_second_is_refused() {
    let mut cfg = ChannelConfig::new("/nowhere");
    cfg.group_commit_wait_us_max = 1_000_001;
    let err = FileChannel::open(cfg).unwrap_err();
    assert!(
        err.to_string().contains("group_commit_wait_us_max"),
        "{err}"
    );
}

/// Crashes `sim` dropping everything unsynced, reopens it with `cfg` (and no capacity limit) and
/// returns the bodies of every event there, in order.
fn bodies_after_a_crash(sim: &SimStorage, cfg: ChannelConfig) -> Vec<String> {
    let crashed = sim.crash(CrashMode::DropUnsynced);
    crashed.set_capacity_bytes(None);
    let reopened = FileChannel::open_with(cfg, Arc::new(crashed)).unwrap();
    common::peek_all(&reopened)
        .into_iter()
        .map(|e| String::from_utf8(e.body).unwrap())
        .collect()
}

/// The scenario above on a disk with no room left when B and C arrive: the write of B and C
/// made while the writer waits for A fails with ENOSPC. It fails B's and C's commits (and only
/// theirs), the channel is not poisoned, and after a crash that drops everything unsynced
/// exactly the acknowledged events are there.
#[test]
fn a_full_disk_at_a_write_made_while_waiting_fails_that_batch() {
    let Warmed { ch, gate, sim, cfg } = open_warmed(1_000_000);
    let (a, others) = hold_a_and_queue_b_and_c(&ch, &gate);
    sim.set_capacity_bytes(Some(1 << 40));
    let used = (1u64 << 40) - sim.available_space(Path::new("/chan")).unwrap();
    sim.set_capacity_bytes(Some(used));
    gate.set(true);
    for t in others {
        match t.join().unwrap() {
            Err(CommitError::Write { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
            }
            other => panic!("B and C must fail for lack of space, got {other:?}"),
        }
    }
    assert!(
        !a.join().unwrap(),
        "A2 comes back after the failure, while the channel refuses puts for lack of space"
    );
    assert!(
        ch.poisoned().is_none(),
        "ENOSPC must not poison the channel"
    );
    assert_eq!(ch.len(), 2, "warm and A1");

    assert_eq!(bodies_after_a_crash(&sim, cfg), ["warm", "event-a1"]);
}

/// The scenario above with room for B's and C's write but not for A2's, on a file that
/// another fsync (as the prefill thread's can) syncs right after each write: B's and C's records
/// are durable when A2's write fails with ENOSPC and the batch B + C + A2 is cut back. The cut is
/// fsynced too, so after a crash B and C, whose commits failed, are not there.
#[test]
fn a_failed_batch_another_fsync_made_durable_stays_cut_back_after_a_crash() {
    let Warmed { ch, gate, sim, cfg } = open_warmed(1_000_000);
    gate.sync_after_write.store(true, SeqCst);
    let (a, others) = hold_a_and_queue_b_and_c(&ch, &gate);
    let writes_before = gate.writes.lock().unwrap().len();
    gate.set(true);
    wait_for("B's and C's write", || {
        gate.writes.lock().unwrap()[writes_before..]
            .iter()
            .any(|w| w.windows(7).any(|x| x == b"event-c"))
    });
    // A comes back 50 ms after its release; from now on no write finds room.
    sim.set_capacity_bytes(Some(1 << 40));
    let used = (1u64 << 40) - sim.available_space(Path::new("/chan")).unwrap();
    sim.set_capacity_bytes(Some(used));
    for t in others {
        match t.join().unwrap() {
            Err(CommitError::Write { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
            }
            other => panic!("B and C must fail with their batch, got {other:?}"),
        }
    }
    assert!(!a.join().unwrap(), "A2 finds no room");
    assert!(ch.poisoned().is_none(), "ENOSPC must not poison");
    assert_eq!(bodies_after_a_crash(&sim, cfg), ["warm", "event-a1"]);
}

/// Four committers, 2 ms fsyncs (so the writer waits for the committers it released, and
/// writes what has arrived while it waits) and a disk that fills up: wherever the writes hit
/// ENOSPC, they fail exactly their batch's commits, the channel keeps serving, and after a
/// crash that drops everything unsynced exactly the acknowledged events are there.
#[test]
fn a_full_disk_while_a_batch_is_gathered_fails_only_that_batch() {
    let sim = SimStorage::new();
    let gate = Arc::new(Gate::default());
    gate.set(true);
    *gate.sync_delay.lock().unwrap() = Duration::from_millis(2);
    let storage = Arc::new(GatedStorage {
        inner: sim.clone(),
        gate,
    });
    let mut cfg = ChannelConfig::new("/chan");
    cfg.prefill_ahead_bytes = 0;
    cfg.minimum_required_space = 0;
    let ch = Arc::new(FileChannel::open_with(cfg.clone(), storage).unwrap());
    // Room for about 60 of the 200 one-KiB commits below.
    sim.set_capacity_bytes(Some(1 << 40));
    let used = (1u64 << 40) - sim.available_space(Path::new("/chan")).unwrap();
    sim.set_capacity_bytes(Some(used + 60 * 1100));

    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let ch = ch.clone();
            std::thread::spawn(move || {
                let (mut acked, mut failed) = (Vec::new(), 0u64);
                for k in 0..50u64 {
                    let id = p * 1000 + k;
                    let mut tx = ch.transaction();
                    let mut body = format!("{id:08}").into_bytes();
                    body.resize(1024, b'.');
                    if tx.put(&Event::new(body)).is_err() {
                        // Refused while the channel waits for space: not a commit.
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    match tx.commit() {
                        Ok(()) => acked.push(id),
                        Err(CommitError::Write { source, .. }) => {
                            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
                            failed += 1;
                        }
                        Err(e) => panic!("commit of {id}: {e}"),
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    let mut acked = BTreeSet::new();
    let mut failed = 0;
    for t in producers {
        let (a, f) = t.join().unwrap();
        acked.extend(a);
        failed += f;
    }
    assert!(
        failed > 0,
        "the disk never filled: {} acknowledged",
        acked.len()
    );
    assert!(!acked.is_empty());
    assert!(
        ch.poisoned().is_none(),
        "ENOSPC must not poison the channel"
    );
    assert_eq!(
        ch.len(),
        acked.len() as u64,
        "failed commits are not pending"
    );

    let mut found = BTreeSet::new();
    for body in bodies_after_a_crash(&sim, cfg) {
        let id: u64 = body[..8].parse().unwrap();
        assert!(found.insert(id), "event {id} came back twice");
    }
    assert_eq!(
        found, acked,
        "exactly the acknowledged events survive the crash"
    );
}

/// `commit_submit` hands a put commit to the writer and returns while its fsync is still held;
/// the events are not visible until the fsync covering them ends, `wait` answers only then,
/// and two commits submitted one after the other land in that order.
#[test]
fn a_submitted_commit_returns_before_its_fsync_and_keeps_its_place() {
    let Warmed { ch, gate, .. } = open_warmed(0);
    drain_all(&ch);
    let put_success_before = metric(&ch, "EventPutSuccessCount");
    let arrived_before = gate.arrived();
    gate.set(false);
    // Submitted on another thread, so a submit that waited for the held fsync fails the test
    // (by the timeout below) instead of hanging it.
    let (sent, submitted) = std::sync::mpsc::channel();
    {
        let ch = ch.clone();
        std::thread::spawn(move || {
            let submit = |bodies: &[&str]| {
                let mut tx = ch.transaction();
                for b in bodies {
                    tx.put(&Event::new((*b).to_owned())).unwrap();
                }
                tx.commit_submit().unwrap()
            };
            let first = submit(&["s1-a", "s1-b"]);
            let second = submit(&["s2-a"]);
            sent.send((first, second)).unwrap();
        });
    }
    let (first, second) = submitted
        .recv_timeout(Duration::from_secs(60))
        .expect("commit_submit returned while the fsync was held");
    wait_for("the first submitted commit's fsync", || {
        gate.arrived() == arrived_before + 1
    });
    assert_eq!(ch.len(), 0, "nothing is visible before its fsync");
    assert_eq!(
        metric(&ch, "EventPutSuccessCount"),
        put_success_before,
        "nothing counted as put before it is durable"
    );
    let waiter = std::thread::spawn(move || (first.wait(), second.wait()));
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !waiter.is_finished(),
        "wait returned while the fsync was held"
    );
    gate.set(true);
    let (a, b) = waiter.join().unwrap();
    a.unwrap();
    b.unwrap();
    assert_eq!(metric(&ch, "EventPutSuccessCount"), put_success_before + 3);
    assert_eq!(drain_all(&ch), ["s1-a", "s1-b", "s2-a"]);
}

/// A submitted commit that is dropped instead of waited for still settles: the events are
/// durable and counted, like a commit that returned.
#[test]
fn a_dropped_submitted_commit_still_settles() {
    let Warmed { ch, .. } = open_warmed(0);
    drain_all(&ch);
    let before = metric(&ch, "EventPutSuccessCount");
    let mut tx = ch.transaction();
    tx.put(&Event::new("dropped-wait".to_owned())).unwrap();
    drop(tx.commit_submit().unwrap());
    assert_eq!(metric(&ch, "EventPutSuccessCount"), before + 1);
    assert_eq!(drain_all(&ch), ["dropped-wait"]);
}

/// A submitted commit whose fsync fails answers the failure from `wait`; on the channel that
/// poisoned, the next submit is refused at once. Both count as rolled back.
#[test]
fn a_failed_submitted_commit_fails_its_wait_and_poison_refuses_the_next_submit() {
    let sim = SimStorage::new();
    let mut cfg = ChannelConfig::new("/chan");
    cfg.prefill_ahead_bytes = 0;
    cfg.minimum_required_space = 0;
    let ch = FileChannel::open_with(cfg, Arc::new(sim.clone())).unwrap();
    let mut first = ch.transaction();
    first.put(&Event::new("a".to_owned())).unwrap();
    let mut second = ch.transaction();
    second.put(&Event::new("b".to_owned())).unwrap();
    let rollbacks_before = metric(&ch, "PutRollbackCount");
    sim.fail_next_syncs(1);
    let failed = first.commit_submit().unwrap().wait();
    assert!(
        matches!(failed, Err(CommitError::Poisoned(_))),
        "a failed fsync fails the waiting commit: {failed:?}"
    );
    let refused = second.commit_submit();
    assert!(
        matches!(refused, Err(CommitError::Poisoned(_))),
        "a poisoned channel refuses the submit itself: {refused:?}"
    );
    assert_eq!(metric(&ch, "PutRollbackCount"), rollbacks_before + 2);
    assert_eq!(metric(&ch, "EventPutSuccessCount"), 0);
}

fn drain_all(ch: &FileChannel) -> Vec<String> {
    common::drain(ch)
        .into_iter()
        .map(|e| String::from_utf8(e.body.to_vec()).unwrap())
        .collect()
}
