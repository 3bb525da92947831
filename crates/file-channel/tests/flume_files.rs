//! The migration guard on the real file system: a directory laid out as Apache Flume's
//! FileChannel leaves it is refused by open and by the inspection tools, with a message that
//! says what the files are and how to drain them, and nothing in it changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use file_channel::inspect::{ChannelDir, InspectError};
use file_channel::{ChannelConfig, Event, FileChannel, OpenError};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// Flume's checkpoint directory and data directory under `root`, as a Flume 1.11 agent leaves
/// them (contents are stand-ins: only the names matter to the guard).
fn flume_layout(root: &Path) -> (PathBuf, PathBuf) {
    let cp = root.join("checkpoint");
    let data = root.join("data");
    std::fs::create_dir_all(cp.join("queueset")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    for (name, bytes) in [
        ("checkpoint", vec![7u8; 4096]),
        ("checkpoint.meta", b"meta".to_vec()),
        ("inflighttakes", vec![0u8; 16]),
        ("inflightputs", vec![0u8; 16]),
        ("in_use.lock", Vec::new()),
    ] {
        std::fs::write(cp.join(name), bytes).unwrap();
    }
    std::fs::write(cp.join("queueset").join("queueset.p"), b"q").unwrap();
    for n in 1..=3 {
        std::fs::write(data.join(format!("log-{n}")), vec![n as u8; 1000]).unwrap();
        std::fs::write(data.join(format!("log-{n}.meta")), b"m").unwrap();
    }
    std::fs::write(data.join("in_use.lock"), b"").unwrap();
    (cp, data)
}

/// Every path under `root` with its kind, length, mode, modification time and a hash of
/// its bytes.
fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let mut h = DefaultHasher::new();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                std::fs::read(e.path()).unwrap().hash(&mut h);
            }
            use std::os::unix::fs::MetadataExt;
            out.insert(
                e.path(),
                format!(
                    "dir={} len={} mode={:o} mtime={}.{} hash={:x}",
                    m.is_dir(),
                    m.len(),
                    m.mode(),
                    m.mtime(),
                    m.mtime_nsec(),
                    h.finish()
                ),
            );
        }
    }
    out
}

fn config(cp: &Path, data: &Path) -> ChannelConfig {
    let mut c = ChannelConfig::new(cp);
    c.data_dirs = vec![data.to_path_buf()];
    c.minimum_required_space = 0;
    c
}

#[test]
fn a_flume_channel_directory_is_refused_and_left_as_it_was() {
    let t = tempfile::tempdir().unwrap();
    let (cp, data) = flume_layout(t.path());
    let before = listing(t.path());
    let err = FileChannel::open(config(&cp, &data)).expect_err("Flume files must be refused");
    let OpenError::FlumeFiles(found) = &err else {
        panic!("expected OpenError::FlumeFiles, got {err:?}");
    };
    assert_eq!(found.dir, cp);
    assert_eq!(
        found.names,
        [
            "checkpoint",
            "checkpoint.meta",
            "inflightputs",
            "inflighttakes",
            "queueset"
        ]
    );
    let m = err.to_string();
    assert!(
        m.starts_with(&format!(
            "{} holds Apache Flume FileChannel files (checkpoint, checkpoint.meta, inflightputs, inflighttakes and 1 more); Sluice cannot read Flume's file-channel format",
            cp.display()
        )),
        "{m}"
    );
    assert!(m.contains("run the old Flume agent with the same checkpointDir and dataDirs until the channel is empty (its ChannelSize metric is 0)"), "{m}");
    assert_eq!(listing(t.path()), before, "open changed the directory");

    // The inspection tools refuse it too, read-only.
    let e = ChannelDir::open(&cp, std::slice::from_ref(&data)).expect_err("refused");
    assert!(matches!(e, InspectError::FlumeFiles(_)), "{e:?}");
    assert_eq!(
        listing(t.path()),
        before,
        "inspection changed the directory"
    );
}

#[test]
fn flume_data_files_alone_are_refused_and_no_channel_directory_is_created() {
    let t = tempfile::tempdir().unwrap();
    let (_, data) = flume_layout(t.path());
    let fresh = t.path().join("sluice-checkpoint");
    let before = listing(t.path());
    let err = FileChannel::open(config(&fresh, &data)).expect_err("refused");
    let OpenError::FlumeFiles(found) = &err else {
        panic!("expected OpenError::FlumeFiles, got {err:?}");
    };
    assert_eq!(found.dir, data);
    assert_eq!(
        found.names,
        [
            "log-1",
            "log-1.meta",
            "log-2",
            "log-2.meta",
            "log-3",
            "log-3.meta"
        ]
    );
    assert!(!fresh.exists(), "the new channel directory was created");
    assert_eq!(listing(t.path()), before);
}

#[test]
fn a_sluice_channel_with_its_own_lock_and_segments_is_not_mistaken_for_flume() {
    let t = tempfile::tempdir().unwrap();
    let ch = FileChannel::open(config(&t.path().join("cp"), &t.path().join("d"))).unwrap();
    let mut tx = ch.transaction();
    tx.put(&Event::new("one")).unwrap();
    tx.commit().unwrap();
    ch.close().unwrap();
    let ch = FileChannel::open(config(&t.path().join("cp"), &t.path().join("d"))).unwrap();
    assert_eq!(ch.len(), 1);
    ch.close().unwrap();
}

#[test]
fn after_draining_and_moving_flumes_files_away_the_directory_opens() {
    let t = tempfile::tempdir().unwrap();
    let (cp, data) = flume_layout(t.path());
    let moved = t.path().join("flume-drained");
    std::fs::create_dir(&moved).unwrap();
    for d in [&cp, &data] {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "in_use.lock" {
                std::fs::rename(e.path(), moved.join(e.file_name())).unwrap();
            }
        }
    }
    let ch = FileChannel::open(config(&cp, &data)).unwrap();
    assert_eq!(ch.len(), 0);
    ch.close().unwrap();
}
