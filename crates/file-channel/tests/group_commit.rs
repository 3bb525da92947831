//! Group commit's gather wait, made deterministic by a storage whose segment fsyncs block
//! until the test opens a gate: committers released by one fsync share the next one with the
//! commits that queued meanwhile, instead of alternating with them in two cohorts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use file_channel::storage::{DynFile, LockError, LockGuard, SimStorage, Storage, StorageFile};
use file_channel::{ChannelConfig, Event, FileChannel};
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Whether segment fsyncs may proceed.
#[derive(Debug, Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
    /// Segment fsyncs that reached the gate.
    arrived: Mutex<u64>,
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
        self.inner.write_at(buf, offset)
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

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn commit_one(ch: &FileChannel, body: &str) {
    let mut tx = ch.transaction();
    tx.put(&Event::new(body.to_owned())).unwrap();
    tx.commit().unwrap();
}

/// One committer (A) is in an fsync while two others (B, C) queue. When the fsync ends, the
/// writer expects A back as well and waits for it: B, C and A's second commit share one fsync.
/// Without the wait (`group_commit_wait_us_max = 0`) they take two.
fn scenario(wait_us_max: u64) -> (u64, u64) {
    let gate = Arc::new(Gate::default());
    let storage = Arc::new(GatedStorage {
        inner: SimStorage::new(),
        gate: gate.clone(),
    });
    let mut cfg = ChannelConfig::new("/chan");
    cfg.prefill_ahead_bytes = 0;
    cfg.group_commit_wait_us_max = wait_us_max;
    gate.set(true);
    let ch = Arc::new(FileChannel::open_with(cfg, storage).unwrap());
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

    let fsyncs_before = metric(&ch, "FsyncCount");
    let arrived_before = gate.arrived();
    gate.set(false);
    // A: two commits in a row; its first fsync is held at the gate.
    let a = {
        let ch = ch.clone();
        std::thread::spawn(move || {
            commit_one(&ch, "a1");
            // Back 50 ms after release: inside the wait (half the 600 ms warm-up fsync), and
            // long after a writer that does not wait has written B and C.
            std::thread::sleep(Duration::from_millis(50));
            commit_one(&ch, "a2");
        })
    };
    wait_for("A's fsync", || gate.arrived() == arrived_before + 1);
    let others: Vec<_> = ["b", "c"]
        .into_iter()
        .map(|name| {
            let ch = ch.clone();
            std::thread::spawn(move || commit_one(&ch, name))
        })
        .collect();
    wait_for("B and C queued", || metric(&ch, "CommitsQueued") == 2);
    gate.set(true);
    a.join().unwrap();
    for t in others {
        t.join().unwrap();
    }
    assert_eq!(ch.len(), 5, "every commit is in the channel");
    let fsyncs = metric(&ch, "FsyncCount") - fsyncs_before;
    let timeouts = metric(&ch, "GatherTimeoutCount");
    (fsyncs, timeouts)
}

#[test]
fn released_committer_joins_the_queued_ones_in_one_fsync() {
    let (fsyncs, timeouts) = scenario(1_000_000);
    assert_eq!(fsyncs, 2, "A1 alone, then B + C + A2 together");
    assert_eq!(timeouts, 0, "A came back within the wait");
}

#[test]
fn without_the_wait_the_cohorts_alternate() {
    let (fsyncs, timeouts) = scenario(0);
    assert_eq!(fsyncs, 3, "A1, then B + C, then A2");
    assert_eq!(timeouts, 0);
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
