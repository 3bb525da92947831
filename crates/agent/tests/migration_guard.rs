//! The migration guard through the agent: a file channel whose `checkpointDir` or `dataDirs`
//! hold Apache Flume FileChannel files stops `sluice agent` at start, with the engine's message
//! (what the files are, how to drain them) on the key and line in its log and a non-zero exit,
//! and the directories are left as they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs `sluice agent -n a1 -f conf` in `dir` until it exits on its own (killed and failed
/// after a minute): its exit code and stderr.
fn run_to_exit(dir: &Path, conf: &Path) -> (i32, String) {
    let mut child = sluice()
        .current_dir(dir)
        .args(["agent", "-n", "a1", "-f"])
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice agent");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).expect("read stderr");
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().expect("kill");
            child.wait().expect("reap");
            panic!(
                "sluice agent kept running beside Flume's files; its log:\n{}",
                reader.join().expect("reader")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), reader.join().expect("reader"))
}

/// Names and contents of every file in `dir`, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_agent_on_a_flume_file_channel_directory_refuses_to_start_and_says_how_to_drain() {
    let t = tempfile::tempdir().unwrap();
    let cp = t.path().join("flume/checkpoint");
    let data = t.path().join("flume/data");
    std::fs::create_dir_all(&cp).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(cp.join("checkpoint"), vec![1u8; 512]).unwrap();
    std::fs::write(cp.join("checkpoint.meta"), b"m").unwrap();
    std::fs::write(data.join("log-7"), vec![2u8; 512]).unwrap();
    std::fs::write(data.join("log-7.meta"), b"m").unwrap();
    let before = (snapshot(&cp), snapshot(&data));
    let port = free_port();
    let conf = write_conf(
        t.path(),
        "a.conf",
        &format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = netcat\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = file\n\
             a1.channels.c1.checkpointDir = {}\n\
             a1.channels.c1.dataDirs = {}\n\
             a1.channels.c1.minimumRequiredSpace = 0\n\
             a1.sinks.k1.type = null\n\
             a1.sinks.k1.channel = c1\n",
            cp.display(),
            data.display()
        ),
    );
    let (code, log) = run_to_exit(t.path(), &conf);
    assert_ne!(code, 0, "{log}");
    // Refused when the configuration is read, on the key that names the directory (the
    // engine's open would refuse it too).
    assert!(
        log.contains(&format!(
            "a.conf:9: a1.channels.c1.checkpointDir: {} holds Apache Flume FileChannel files (checkpoint, checkpoint.meta)",
            cp.display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "a.conf:10: a1.channels.c1.dataDirs: {} holds Apache Flume FileChannel files (log-7, log-7.meta)",
            data.display()
        )),
        "{log}"
    );
    assert!(
        log.contains("run the old Flume agent with the same checkpointDir and dataDirs until the channel is empty"),
        "{log}"
    );
    assert_eq!((snapshot(&cp), snapshot(&data)), before, "{log}");
}
