//! What `chanctl repair` writes (issue 14, §3): the `quarantine/` directory it creates is 0700
//! and every file it writes there or in the channel directory (quarantined bytes, notes,
//! `report.json`, rebuilt checkpoints, its lock file) is 0600, whatever the umask it runs under.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use file_channel::format::record::RecordKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every entry under `dir`, recursively, with whether it is a directory and its mode bits.
fn modes_under(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let path = entry.path();
        out.push((
            path.clone(),
            meta.is_dir(),
            meta.permissions().mode() & 0o7777,
        ));
        if meta.is_dir() {
            out.extend(modes_under(&path));
        }
    }
    out
}

#[test]
fn repair_writes_quarantine_files_0600_and_dirs_0700_whatever_the_umask() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), 12, 0);
    let path = seg_files(t.path())[1].clone();
    let id = seg_id(&path);
    let victim = records(&std::fs::read(&path).unwrap(), id)[1];
    assert_eq!(victim.kind, RecordKind::Put);
    flip(&path, victim.offset + 100, 4);
    // The repair makes its own lock file when there is none.
    std::fs::remove_file(t.path().join("in_use.lock")).unwrap();

    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" repair \"$1\" --yes --json")
        .arg(env!("CARGO_BIN_EXE_chanctl"))
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "repair under umask 000 failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let entries = modes_under(t.path());
    let quarantine = t.path().join("quarantine");
    assert!(
        entries
            .iter()
            .any(|(p, _, _)| p == &quarantine.join("report.json")),
        "the repair wrote no report: {entries:?}"
    );
    assert!(
        entries
            .iter()
            .filter(|(p, is_dir, _)| !is_dir && p.starts_with(&quarantine))
            .count()
            >= 3,
        "expected the quarantined bytes, their note and the report: {entries:?}"
    );
    let wrong: Vec<_> = entries
        .iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { 0o700 } else { 0o600 })
        .map(|(p, is_dir, mode)| {
            format!(
                "{} ({}) is {mode:o}",
                p.display(),
                if *is_dir { "dir" } else { "file" }
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "files must be 0600 and directories 0700: {wrong:#?}"
    );
}
