//! The sink's unit tests: local files, rolling, failures cut back, staging with a fake
//! object store, and crash recovery.

use super::*;
use crate::runner::Status;
use crate::sink::test_support::{ctx, entries, sink_ctx};
use crate::sink::Sink;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

fn config(path: &str, staging: &Path, pairs: &[(&str, &str)]) -> HdfsConfig {
    let staging = staging.to_string_lossy().into_owned();
    // Lines, so the tests read what they wrote (Flume's default is SequenceFile).
    let mut all = vec![
        ("hdfs.path", path),
        ("hdfs.stagingDir", staging.as_str()),
        ("hdfs.fileType", "DataStream"),
    ];
    all.extend_from_slice(pairs);
    let list = entries(&all);
    let c = ctx(&list);
    let cfg = HdfsConfig::parse(&c);
    assert!(!c.has_errors(), "{:?}", c.finish("hdfs sink k1"));
    cfg
}

/// Every file under `dir` (relative name, contents), sorted by name.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("under")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read_to_string(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn put(channel: &crate::channel::Channel, bodies: &[&str]) {
    let mut tx = channel.transaction();
    for b in bodies {
        tx.put(&Event::new(*b)).expect("put");
    }
    tx.commit().expect("commit");
}

fn drain_all(s: &mut HdfsSink) {
    while s.process().expect("process") == Status::Ready {}
}

#[test]
fn writes_rolls_by_count_and_leaves_no_in_use_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out/sub");
    let path = format!("file://{}", out.display());
    let cfg = config(
        &path,
        &tmp.path().join("st"),
        &[("hdfs.rollCount", "4"), ("hdfs.batchSize", "3")],
    );
    let ctx = sink_ctx(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
    let channel = ctx.channel.clone();
    let mut s = HdfsSink::with_destination(cfg, ctx, None);
    drain_all(&mut s);
    assert!(channel.is_empty());
    // While running: two files of 4 are finished (after their commit), the last is in use.
    let running = files(&out);
    assert_eq!(running.len(), 3, "{running:?}");
    assert_eq!(
        running.iter().filter(|(n, _)| n.ends_with(".tmp")).count(),
        1
    );
    s.stop();
    let done = files(&out);
    let text: String = done.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(text, "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
    let counts: Vec<usize> = done.iter().map(|(_, t)| t.lines().count()).collect();
    assert_eq!(counts, [4, 4, 2]);
    for (n, _) in &done {
        assert!(n.starts_with("FlumeData.") && !n.ends_with(".tmp"), "{n}");
    }
    let k = s.hdfs_counters();
    assert_eq!(k.files_opened.load(Relaxed), 3);
    assert_eq!(k.files_closed.load(Relaxed), 3);
    assert_eq!(k.event_duplicates.load(Relaxed), 0);
    assert!(
        files(&tmp.path().join("st/open")).is_empty(),
        "no record left"
    );
}

#[test]
fn rolls_by_body_size_and_interval_and_idle() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let path = format!("file://{}", out.display());
    let cfg = config(
        &path,
        &tmp.path().join("st"),
        &[
            ("hdfs.rollCount", "0"),
            ("hdfs.rollSize", "5"),
            ("hdfs.rollInterval", "60"),
        ],
    );
    // rollSize counts body bytes before each event: "abc" + "de" reaches 5, so "f" starts a
    // new file.
    let ctx = sink_ctx(&["abc", "de", "f"]);
    let channel = ctx.channel.clone();
    let mut s = HdfsSink::with_destination(cfg, ctx, None);
    drain_all(&mut s);
    let finished: Vec<_> = files(&out)
        .into_iter()
        .filter(|(n, _)| !n.ends_with(".tmp"))
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].1, "abc\nde\n");
    // The interval passes on an idle sink: the next call rolls the file.
    for f in s.files.values_mut() {
        f.opened_at -= Duration::from_secs(61);
    }
    assert_eq!(s.process().expect("idle"), Status::Backoff);
    assert!(files(&out).iter().all(|(n, _)| !n.ends_with(".tmp")));
    assert_eq!(files(&out).len(), 2);
    put(&channel, &["g"]);
    drain_all(&mut s);
    assert!(s.current.len() == 1);
    s.config.idle_timeout_s = 5;
    for f in s.files.values_mut() {
        f.last_write -= Duration::from_secs(6);
    }
    s.process().expect("idle");
    assert!(s.current.is_empty(), "closed when idle");
    assert_eq!(files(&out).len(), 3);
}

#[test]
fn a_failed_write_rolls_back_and_writes_no_second_copy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, "a file").expect("write");
    let out = blocker.join("out");
    let cfg = config(
        &format!("file://{}", tmp.path().join("x").display()),
        &tmp.path().join("st"),
        &[],
    );
    let ctx = sink_ctx(&["a", "b"]);
    let channel = ctx.channel.clone();
    let counters = ctx.counters.clone();
    let mut s = HdfsSink::with_destination(cfg, ctx, None);
    // The path is a directory under a regular file: opening fails.
    s.config.path = path::PathTemplate::literal(&format!("file://{}", out.display()));
    let e = s.process().expect_err("cannot create");
    assert!(e.to_string().contains("cannot create directory"), "{e}");
    assert_eq!(channel.len(), 2, "rolled back");
    assert_eq!(counters.event_write_fail.load(Relaxed), 1);
    assert_eq!(counters.connection_failed_count.load(Relaxed), 1);
    std::fs::remove_file(&blocker).expect("rm");
    drain_all(&mut s);
    s.stop();
    let text: String = files(&out).into_iter().map(|(_, t)| t).collect();
    assert_eq!(text, "a\nb\n");
}

#[test]
fn cut_back_restores_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let cfg = config(
        &format!("file://{}", out.display()),
        &tmp.path().join("st"),
        &[("hdfs.rollCount", "0")],
    );
    let ctx = sink_ctx(&["a"]);
    let mut s = HdfsSink::with_destination(cfg, ctx, None);
    drain_all(&mut s);
    // A batch written but failing (e.g. its fsync): deliver's error path cuts it back.
    let id = *s.current.values().next().expect("open");
    let mark = s.files[&id].written;
    let mut buf = Vec::new();
    s.files
        .get_mut(&id)
        .expect("file")
        .append(&[Event::new("never")], 0, &mut buf)
        .expect("append");
    s.files
        .get_mut(&id)
        .expect("file")
        .cut_back(mark)
        .expect("cut");
    s.stop();
    let text: String = files(&out).into_iter().map(|(_, t)| t).collect();
    assert_eq!(text, "a\n");
}

/// An object store in a directory; fails while `down` is set.
#[derive(Debug, Default)]
struct FakeStore {
    root: PathBuf,
    down: AtomicBool,
}

impl Destination for FakeStore {
    fn describe(&self) -> String {
        "fake://".into()
    }
    fn publish(&self, staged: &Path, key: &str) -> Result<Published, DestinationError> {
        if self.down.load(Relaxed) {
            return Err(DestinationError::Transient {
                what: key.into(),
                message: "down".into(),
            });
        }
        let to = self.root.join(key);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        let bytes = std::fs::copy(staged, &to).expect("copy");
        Ok(Published {
            bytes,
            elapsed_ms: 1,
            attempts: 1,
        })
    }
}

#[test]
fn staged_files_are_published_and_a_failed_publish_is_retried() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Arc::new(FakeStore {
        root: tmp.path().join("bucket"),
        down: AtomicBool::new(true),
    });
    let cfg = config(
        "s3://bucket/logs/app",
        &tmp.path().join("st"),
        &[("hdfs.rollCount", "2"), ("hdfs.batchSize", "2")],
    );
    let ctx = sink_ctx(&["a", "b", "c"]);
    let channel = ctx.channel.clone();
    let mut s = HdfsSink::with_destination(cfg, ctx, Some(store.clone()));
    drain_all(&mut s);
    assert!(channel.is_empty(), "accepted while the store is down");
    let k = s.hdfs_counters().clone();
    assert_eq!(k.publish_failures.load(Relaxed), 1);
    assert_eq!(s.retry.len(), 1, "kept in staging for a retry");
    assert!(!tmp.path().join("bucket").exists());
    store.down.store(false, Relaxed);
    for c in &mut s.retry {
        c.next_try = Instant::now();
    }
    assert_eq!(s.process().expect("retry"), Status::Backoff);
    assert!(s.retry.is_empty());
    s.stop();
    let objects = files(&tmp.path().join("bucket"));
    let names: Vec<&str> = objects.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("logs/app/FlumeData.")));
    let text: String = objects.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(text, "a\nb\nc\n");
    assert_eq!(k.files_published.load(Relaxed), 2);
    assert!(files(&tmp.path().join("st/staged")).is_empty());
    assert!(files(&tmp.path().join("st/open")).is_empty());
}

#[test]
fn close_tries_gives_up_until_the_next_start_which_publishes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Arc::new(FakeStore {
        root: tmp.path().join("bucket"),
        down: AtomicBool::new(true),
    });
    let cfg = config(
        "s3://bucket/p",
        &tmp.path().join("st"),
        &[("hdfs.closeTries", "1")],
    );
    let ctx = sink_ctx(&["a"]);
    let mut s = HdfsSink::with_destination(cfg.clone(), ctx, Some(store.clone()));
    drain_all(&mut s);
    s.stop();
    assert_eq!(s.hdfs_counters().files_pending_publish.load(Relaxed), 1);
    assert_eq!(files(&tmp.path().join("st/staged")).len(), 1, "kept");
    drop(s);
    store.down.store(false, Relaxed);
    let mut s = HdfsSink::with_destination(cfg, sink_ctx(&[]), Some(store));
    s.process().expect("recovers");
    let objects = files(&tmp.path().join("bucket"));
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].1, "a\n");
    assert_eq!(s.hdfs_counters().event_duplicates.load(Relaxed), 0);
}

#[test]
fn recovery_cuts_the_torn_tail_finishes_the_file_and_counts_duplicates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let cfg = config(
        &format!("file://{}", out.display()),
        &tmp.path().join("st"),
        &[("hdfs.rollCount", "0"), ("hdfs.rollSize", "0")],
    );
    let ctx = sink_ctx(&["a", "b"]);
    let mut s = HdfsSink::with_destination(cfg.clone(), ctx, None);
    drain_all(&mut s);
    let in_use = s.files.values().next().expect("open").path.clone();
    // The crash: a whole batch written whose take did not commit, then a torn one.
    let mut buf = Vec::new();
    s.files
        .values_mut()
        .next()
        .expect("open")
        .append(&[Event::new("c"), Event::new("d")], 0, &mut buf)
        .expect("append");
    drop(s);
    {
        use std::io::Write;
        let mut f = OpenOptions::new().append(true).open(&in_use).expect("open");
        f.write_all(b"torn li").expect("write");
    }
    let ctx = sink_ctx(&[]);
    let mut s = HdfsSink::with_destination(cfg, ctx, None);
    assert_eq!(s.process().expect("recover"), Status::Backoff);
    let done = files(&out);
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(!done[0].0.ends_with(".tmp"));
    assert_eq!(done[0].1, "a\nb\nc\nd\n");
    let k = s.hdfs_counters();
    assert_eq!(k.files_recovered.load(Relaxed), 1);
    assert_eq!(k.torn_bytes_cut.load(Relaxed), 7);
    assert_eq!(
        k.event_duplicates.load(Relaxed),
        2,
        "c and d were never committed"
    );
    assert!(files(&tmp.path().join("st/open")).is_empty());
}

#[test]
fn two_sinks_cannot_share_a_staging_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = config(
        &format!("file://{}", tmp.path().join("o").display()),
        &tmp.path().join("st"),
        &[],
    );
    let mut a = HdfsSink::with_destination(cfg.clone(), sink_ctx(&[]), None);
    a.process().expect("first");
    let mut b = HdfsSink::with_destination(cfg, sink_ctx(&[]), None);
    let e = b.process().expect_err("locked");
    assert!(e.to_string().contains("locked by another sink"), "{e}");
}

/// A file channel on simulated storage whose take commits are made durable only by a put.
fn sim_channel(sim: &file_channel_testkit::SimStorage) -> crate::channel::Channel {
    let mut c = file_channel::ChannelConfig::new("/ch");
    c.take_sync_interval_ms = 600_000;
    c.prefill_ahead_bytes = 0;
    let fc = file_channel::FileChannel::open_with(c, Arc::new(sim.clone())).expect("open");
    crate::channel::Channel::from_file("c1", fc)
}

fn file_ctx(channel: crate::channel::Channel) -> SinkContext {
    SinkContext {
        name: "k1".into(),
        channel,
        counters: Arc::default(),
    }
}

/// Lines of every finished file under `dir` (and no in-use file is left).
fn finished_lines(dir: &Path) -> Vec<String> {
    let done = files(dir);
    assert!(
        done.iter().all(|(name, _)| !name.ends_with(".tmp")),
        "an in-use file is left: {done:?}"
    );
    let mut lines: Vec<String> = done
        .iter()
        .flat_map(|(_, text)| text.lines().map(str::to_owned))
        .collect();
    lines.sort();
    lines
}

#[test]
fn events_a_crash_makes_the_file_channel_deliver_again_are_counted_exactly() {
    use file_channel_testkit::CrashMode;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let cfg = config(
        &format!("file://{}", out.display()),
        &tmp.path().join("st"),
        &[
            ("hdfs.batchSize", "10"),
            ("hdfs.rollCount", "25"),
            ("hdfs.rollSize", "0"),
        ],
    );
    let sim = file_channel_testkit::SimStorage::new();
    let channel = sim_channel(&sim);
    let bodies: Vec<String> = (0..60).map(|i| format!("e{i:02}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    put(&channel, &refs);

    // Three batches written, fsynced and their takes committed (acknowledged to the sink), a
    // fourth written whose take never commits; then the process dies. Its take commits were
    // not durable yet: the crash loses them.
    let mut s = HdfsSink::with_destination(cfg.clone(), file_ctx(channel.clone()), None);
    for _ in 0..3 {
        assert_eq!(s.process().expect("batch"), Status::Ready);
    }
    let mut tx = channel.transaction();
    let mut batch = Vec::new();
    for _ in 0..10 {
        batch.push(tx.take().expect("take").expect("event"));
    }
    s.before_deliver(&tx);
    s.deliver(batch).expect("deliver");
    drop(tx);
    let image = sim.crash(CrashMode::DropUnsynced);
    drop(s);
    drop(channel);
    assert_eq!(
        s_counters_after_restart(&cfg, &image, &out),
        40,
        "30 committed whose commit was lost, 10 never committed"
    );
    let lines = finished_lines(&out);
    assert_eq!(lines.len(), 100, "60 events, 40 of them twice");
    for (i, b) in bodies.iter().enumerate() {
        let n = lines.iter().filter(|l| *l == b).count();
        assert_eq!(n, if i < 40 { 2 } else { 1 }, "{b}");
    }
}

/// Restarts a sink on the crash image, drains the channel, stops; the duplicates it counted.
fn s_counters_after_restart(
    cfg: &HdfsConfig,
    image: &file_channel_testkit::SimStorage,
    out: &Path,
) -> u64 {
    let channel = sim_channel(image);
    assert_eq!(channel.len(), 60, "the crash lost every take commit");
    let mut s = HdfsSink::with_destination(cfg.clone(), file_ctx(channel.clone()), None);
    drain_all(&mut s);
    assert_eq!(channel.len(), 0);
    s.stop();
    assert!(out.exists());
    s.hdfs_counters().event_duplicates.load(Relaxed)
}

#[test]
fn a_batch_rolled_back_after_it_was_written_is_counted_once_when_it_comes_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let cfg = config(
        &format!("file://{}", out.display()),
        &tmp.path().join("st"),
        &[("hdfs.batchSize", "5"), ("hdfs.rollSize", "0")],
    );
    let sim = file_channel_testkit::SimStorage::new();
    let channel = sim_channel(&sim);
    put(&channel, &["a", "b", "c", "d", "e", "f"]);
    let mut s = HdfsSink::with_destination(cfg, file_ctx(channel.clone()), None);
    let mut tx = channel.transaction();
    let batch: Vec<Event> = (0..5)
        .map(|_| tx.take().expect("take").expect("event"))
        .collect();
    s.before_deliver(&tx);
    s.deliver(batch).expect("deliver");
    tx.rollback(); // the commit failed, say: the batch comes again
    drain_all(&mut s);
    s.stop();
    assert_eq!(s.hdfs_counters().event_duplicates.load(Relaxed), 5);
    assert_eq!(finished_lines(&out).len(), 11);
}

#[test]
fn a_redelivered_batch_that_fails_is_counted_only_when_it_is_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let cfg = config(
        &format!("file://{}/%Y", out.display()),
        &tmp.path().join("st"),
        &[("hdfs.batchSize", "3"), ("hdfs.rollSize", "0")],
    );
    let sim = file_channel_testkit::SimStorage::new();
    let channel = sim_channel(&sim);
    let stamped = |b: &str| Event::new(b).with_header("timestamp", "1700000000000");
    {
        let mut tx = channel.transaction();
        tx.put(&stamped("a")).expect("put");
        tx.put(&stamped("b")).expect("put");
        // No timestamp for %Y: a batch holding it cannot be placed and fails.
        tx.put(&Event::new("no-time")).expect("put");
        tx.commit().expect("commit");
    }
    let mut s = HdfsSink::with_destination(cfg, file_ctx(channel.clone()), None);
    let take = |n: usize| {
        let mut tx = channel.transaction();
        let batch: Vec<Event> = (0..n)
            .map(|_| tx.take().expect("take").expect("event"))
            .collect();
        (tx, batch)
    };
    // a and b written, their take rolled back: they come again.
    let (tx, batch) = take(2);
    s.before_deliver(&tx);
    s.deliver(batch).expect("deliver");
    tx.rollback();
    // They come again with the event that cannot be placed: the batch fails, nothing is
    // written, and nothing is counted yet.
    s.process().expect_err("no timestamp");
    assert_eq!(s.hdfs_counters().event_duplicates.load(Relaxed), 0);
    // Written again without it: counted once.
    let (tx, batch) = take(2);
    s.before_deliver(&tx);
    s.deliver(batch).expect("deliver");
    tx.commit().expect("commit");
    assert_eq!(s.hdfs_counters().event_duplicates.load(Relaxed), 2);
}
