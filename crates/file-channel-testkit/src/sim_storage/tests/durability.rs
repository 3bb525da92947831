//! What survives a crash when nothing failed: file data only through `sync_data`, directory
//! entries (creations, renames, removals) only through `sync_dir` of their directory, and open
//! handles that follow their inode.

use super::*;

#[test]
fn synced_data_survives_and_unsynced_data_is_dropped() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    f.write_at(b"hello", 0).unwrap();
    f.sync_data().unwrap();
    s.sync_dir(p("d")).unwrap();
    f.write_at(b" world", 5).unwrap();
    assert_eq!(s.read_file(p("d/f")).unwrap(), b"hello world");

    let dropped = s.crash(CrashMode::DropUnsynced);
    assert_eq!(dropped.read_file(p("d/f")).unwrap(), b"hello");
    let kept = s.crash(CrashMode::KeepAll);
    assert_eq!(kept.read_file(p("d/f")).unwrap(), b"hello world");

    // The crashed image is an ordinary, fully durable storage.
    let again = dropped.crash(CrashMode::DropUnsynced);
    assert_eq!(again.read_file(p("d/f")).unwrap(), b"hello");
}

#[test]
fn unsynced_set_len_is_dropped() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    f.write_at(&[7; 100], 0).unwrap();
    f.sync_data().unwrap();
    s.sync_dir(p("d")).unwrap();
    f.set_len(10).unwrap();
    assert_eq!(f.len().unwrap(), 10);
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")).unwrap(), vec![7; 100]);
}

#[test]
fn new_file_without_sync_dir_disappears() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    f.write_at(b"data", 0).unwrap();
    f.sync_data().unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")), None);
    assert!(c.exists(p("d")), "directories are durable once created");
    assert!(!c.exists(p("d/f")));

    // KeepAll keeps the entry too.
    let k = s.crash(CrashMode::KeepAll);
    assert_eq!(k.read_file(p("d/f")).unwrap(), b"data");

    // With sync_dir the file survives.
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    f.write_at(b"data", 0).unwrap();
    f.sync_data().unwrap();
    s.sync_dir(p("d")).unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")).unwrap(), b"data");
    assert_eq!(c.list(p("d")).unwrap(), vec!["f".to_owned()]);
}

#[test]
fn synced_entry_with_unsynced_data_is_empty_after_crash() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    s.sync_dir(p("d")).unwrap();
    f.write_at(b"data", 0).unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")).unwrap(), b"");
}

#[test]
fn rename_without_sync_dir_reverts() {
    let s = fresh();
    s.write_file(p("d/old"), b"old").unwrap();
    s.write_file(p("d/tmp"), b"new").unwrap();
    s.rename(p("d/tmp"), p("d/old")).unwrap();
    assert_eq!(s.read_file(p("d/old")).unwrap(), b"new");
    assert_eq!(s.read_file(p("d/tmp")), None);

    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/old")).unwrap(), b"old");
    assert_eq!(c.read_file(p("d/tmp")).unwrap(), b"new");

    let s2 = fresh();
    s2.write_file(p("d/old"), b"old").unwrap();
    s2.write_file(p("d/tmp"), b"new").unwrap();
    s2.rename(p("d/tmp"), p("d/old")).unwrap();
    s2.sync_dir(p("d")).unwrap();
    let c = s2.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/old")).unwrap(), b"new");
    assert_eq!(c.read_file(p("d/tmp")), None);
    assert_eq!(c.list_all(), vec![PathBuf::from("d/old")]);
}

#[test]
fn rename_across_directories_needs_both_syncs() {
    let s = SimStorage::new();
    s.create_dir_all(p("a")).unwrap();
    s.create_dir_all(p("b")).unwrap();
    s.write_file(p("a/f"), b"x").unwrap();
    s.rename(p("a/f"), p("b/g")).unwrap();
    s.sync_dir(p("b")).unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(
        c.list_all(),
        vec![PathBuf::from("a/f"), PathBuf::from("b/g")]
    );
    s.crash(CrashMode::KeepAll);
    let s = SimStorage::new();
    s.create_dir_all(p("a")).unwrap();
    s.create_dir_all(p("b")).unwrap();
    s.write_file(p("a/f"), b"x").unwrap();
    s.rename(p("a/f"), p("b/g")).unwrap();
    s.sync_dir(p("a")).unwrap();
    s.sync_dir(p("b")).unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.list_all(), vec![PathBuf::from("b/g")]);
    assert_eq!(c.read_file(p("b/g")).unwrap(), b"x");
}

#[test]
fn remove_without_sync_dir_comes_back() {
    let s = fresh();
    s.write_file(p("d/f"), b"keep").unwrap();
    s.remove(p("d/f")).unwrap();
    assert!(!s.exists(p("d/f")));
    assert_eq!(s.list(p("d")).unwrap(), Vec::<String>::new());
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")).unwrap(), b"keep");

    let s = fresh();
    s.write_file(p("d/f"), b"keep").unwrap();
    s.remove(p("d/f")).unwrap();
    s.sync_dir(p("d")).unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")), None);
}

#[test]
fn handles_follow_the_inode_through_rename_and_remove() {
    let s = fresh();
    let f = s.create(p("d/a")).unwrap();
    f.write_at(b"one", 0).unwrap();
    s.rename(p("d/a"), p("d/b")).unwrap();
    f.write_at(b"two", 3).unwrap();
    assert_eq!(s.read_file(p("d/b")).unwrap(), b"onetwo");

    s.remove(p("d/b")).unwrap();
    f.write_at(b"!", 6).unwrap();
    f.sync_data().unwrap();
    assert_eq!(f.read_all().unwrap(), b"onetwo!");
    assert_eq!(f.len().unwrap(), 7);
    s.sync_dir(p("d")).unwrap();
    let c = s.crash(CrashMode::KeepAll);
    assert!(c.list_all().is_empty(), "an unlinked inode is gone");
}
