//! Injected faults: a full disk's short write, failed fsyncs with Linux's semantics, an `EIO`
//! at a chosen operation, a process death after a number of operations, bit flips, and opens
//! failing with a chosen errno.

use super::*;

#[test]
fn enospc_is_a_short_write() {
    let s = fresh();
    s.set_capacity_bytes(Some(10));
    assert_eq!(s.available_space(p("d")).unwrap(), 10);
    let f = s.create(p("d/f")).unwrap();
    f.write_at(b"0123", 0).unwrap();
    let err = f.write_at(b"456789abcdef", 4).unwrap_err();
    assert_eq!(raw(&err), Some(libc::ENOSPC));
    assert_eq!(s.read_file(p("d/f")).unwrap(), b"0123456789");
    assert_eq!(s.available_space(p("d")).unwrap(), 0);
    // Overwriting in place needs no space.
    f.write_at(b"AB", 0).unwrap();
    assert_eq!(raw(&f.set_len(11).unwrap_err()), Some(libc::ENOSPC));
    assert_eq!(f.len().unwrap(), 10);
    // Freeing space by truncation.
    f.set_len(5).unwrap();
    assert_eq!(s.available_space(p("d")).unwrap(), 5);
    let g = s.create(p("d/g")).unwrap();
    assert_eq!(raw(&g.set_len(8).unwrap_err()), Some(libc::ENOSPC));
    assert_eq!(g.len().unwrap(), 5, "set_len extends as far as fits");

    s.set_available_space(Some(12345));
    assert_eq!(s.available_space(p("d")).unwrap(), 12345);
    s.set_available_space(None);
    assert_eq!(s.available_space(p("d")).unwrap(), 0);
    s.set_capacity_bytes(None);
    assert_eq!(s.available_space(p("d")).unwrap(), UNLIMITED_SPACE);

    // A removed, unopened file frees its space.
    s.set_capacity_bytes(Some(10));
    drop(g);
    s.remove(p("d/g")).unwrap();
    assert_eq!(s.available_space(p("d")).unwrap(), 5);
}

#[test]
fn failed_fsync_loses_the_data_and_the_retry_lies() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    s.sync_dir(p("d")).unwrap();
    f.write_at(b"lost", 0).unwrap();
    s.fail_next_syncs(1);
    assert_eq!(raw(&f.sync_data().unwrap_err()), Some(libc::EIO));
    f.sync_data().unwrap();
    assert_eq!(s.read_file(p("d/f")).unwrap(), b"lost", "still live");
    let c = s.crash(CrashMode::KeepPrefix { seed: 1 });
    assert_eq!(c.read_file(p("d/f")).unwrap(), b"");
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")).unwrap(), b"");
}

#[test]
fn later_writes_after_a_failed_fsync_do_persist() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    s.sync_dir(p("d")).unwrap();
    f.write_at(b"lost", 0).unwrap();
    s.fail_next_syncs(1);
    f.sync_data().unwrap_err();
    f.write_at(b"kept", 4).unwrap();
    f.sync_data().unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")).unwrap(), b"\0\0\0\0kept");
}

#[test]
fn failed_sync_dir_loses_the_entries() {
    let s = fresh();
    s.create(p("d/f")).unwrap();
    s.fail_next_syncs(1);
    assert_eq!(raw(&s.sync_dir(p("d")).unwrap_err()), Some(libc::EIO));
    s.sync_dir(p("d")).unwrap();
    assert!(s.exists(p("d/f")));
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")), None);
    assert_eq!(s.sync_count(), 1);
}

#[test]
fn fail_op_at_fails_exactly_that_op() {
    let s = fresh();
    assert_eq!(s.op_count(), 1);
    let f = s.create(p("d/f")).unwrap();
    assert_eq!(s.op_count(), 2);
    s.fail_op_at(3);
    s.fail_op_at(5);
    f.write_at(b"a", 0).unwrap(); // op 2
    let err = f.write_at(b"bbbb", 1).unwrap_err(); // op 3
    assert_eq!(raw(&err), Some(libc::EIO));
    assert_eq!(s.read_file(p("d/f")).unwrap(), b"a", "nothing written");
    s.sync_dir(p("d")).unwrap(); // op 4
    assert_eq!(raw(&f.sync_data().unwrap_err()), Some(libc::EIO)); // op 5
    f.sync_data().unwrap(); // op 6, "succeeds"
    assert_eq!(s.op_count(), 7);
    assert_eq!(s.sync_count(), 2);
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(
        c.read_file(p("d/f")).unwrap(),
        b"",
        "the failed sync lost 'a'"
    );

    // Reads, lists, exists, len and locks are not counted.
    let s = fresh();
    let before = s.op_count();
    s.list(p("d")).unwrap();
    s.exists(p("d"));
    s.available_space(p("d")).unwrap();
    let _g = s.lock(p("d/LOCK"), "me").unwrap();
    let f = s.open(p("d/LOCK"), false).unwrap();
    f.len().unwrap();
    f.read_all().unwrap();
    assert_eq!(s.op_count(), before);
}

#[test]
fn fail_op_at_create_rename_remove() {
    let s = fresh();
    s.write_file(p("d/f"), b"x").unwrap();
    let n = s.op_count();
    s.fail_op_at(n);
    s.fail_op_at(n + 1);
    s.fail_op_at(n + 2);
    s.fail_op_at(n + 3);
    assert_eq!(raw(&s.create(p("d/g")).unwrap_err()), Some(libc::EIO));
    assert_eq!(
        raw(&s.rename(p("d/f"), p("d/h")).unwrap_err()),
        Some(libc::EIO)
    );
    assert_eq!(raw(&s.remove(p("d/f")).unwrap_err()), Some(libc::EIO));
    assert_eq!(raw(&s.create_dir_all(p("e")).unwrap_err()), Some(libc::EIO));
    assert_eq!(s.list_all(), vec![PathBuf::from("d/f")]);
    assert!(!s.exists(p("e")));
    s.create(p("d/g")).unwrap();
}

#[test]
fn crash_after_ops_kills_everything() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    s.crash_after_ops(2);
    f.write_at(b"one", 0).unwrap();
    f.sync_data().unwrap(); // the second success: dead afterwards
    assert_dead(&f.write_at(b"two", 3).unwrap_err());
    let mut buf = [0u8; 3];
    assert_dead(&f.read_at(&mut buf, 0).unwrap_err());
    assert_dead(&f.len().unwrap_err());
    assert_dead(&f.sync_data().unwrap_err());
    assert_dead(&s.create(p("d/g")).unwrap_err());
    assert_dead(&s.open(p("d/f"), false).unwrap_err());
    assert_dead(&s.list(p("d")).unwrap_err());
    assert_dead(&s.sync_dir(p("d")).unwrap_err());
    assert_dead(&s.rename(p("d/f"), p("d/g")).unwrap_err());
    assert_dead(&s.remove(p("d/f")).unwrap_err());
    assert_dead(&s.create_dir_all(p("x")).unwrap_err());
    assert_dead(&s.available_space(p("d")).unwrap_err());
    assert!(!s.exists(p("d")));
    match s.lock(p("d/LOCK"), "me") {
        Err(LockError::Io { source, .. }) => assert_dead(&source),
        other => panic!("expected a dead-storage error, got {other:?}"),
    }
    // The image a crash leaves is still available and sane.
    let c = s.crash(CrashMode::KeepAll);
    assert_eq!(c.read_file(p("d/f")).unwrap(), b"one");
    c.create(p("d/g")).unwrap();
}

#[test]
fn crash_after_zero_ops_and_failures_do_not_count() {
    let s = fresh();
    s.crash_after_ops(1);
    s.remove(p("d/missing")).unwrap_err(); // a failure does not use the budget
    s.create(p("d/f")).unwrap();
    assert_dead(&s.create(p("d/g")).unwrap_err());

    let s = fresh();
    s.crash_after_ops(0);
    assert_dead(&s.create(p("d/f")).unwrap_err());
}

#[test]
fn crash_kills_the_old_storage_and_resets_faults() {
    let s = fresh();
    s.set_capacity_bytes(Some(1000));
    s.fail_next_syncs(5);
    s.fail_op_at(100);
    s.write_file(p("d/f"), b"abc").unwrap();
    let f = s.open(p("d/f"), true).unwrap();
    let _lock = s.lock(p("d/LOCK"), "old").unwrap();
    let c = s.crash(CrashMode::DropUnsynced);
    assert_dead(&f.write_at(b"x", 0).unwrap_err());
    assert_dead(&s.open(p("d/f"), false).unwrap_err());

    assert_eq!(c.op_count(), 0);
    assert_eq!(c.sync_count(), 0);
    // The lock file's entry was never synced, and no lock is held.
    assert_eq!(c.list(p("d")).unwrap(), vec!["f".to_owned()]);
    let g = c.open(p("d/f"), true).unwrap();
    g.sync_data().unwrap();
    assert_eq!(c.available_space(p("d")).unwrap(), 1000 - 3);
    let _new_lock = c.lock(p("d/LOCK"), "new").unwrap();
    assert_eq!(
        c.list(p("d")).unwrap(),
        vec!["LOCK".to_owned(), "f".to_owned()]
    );
}

#[test]
fn flip_bit_corrupts_live_and_durable() {
    let s = fresh();
    s.write_file(p("d/f"), &[0u8; 4]).unwrap();
    s.flip_bit(p("d/f"), 2, 3).unwrap();
    assert_eq!(s.read_file(p("d/f")).unwrap(), vec![0, 0, 8, 0]);
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("d/f")).unwrap(), vec![0, 0, 8, 0]);
    c.flip_bit(p("d/f"), 2, 3).unwrap();
    assert_eq!(c.read_file(p("d/f")).unwrap(), vec![0; 4]);
    assert_eq!(
        c.flip_bit(p("d/f"), 4, 0).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        c.flip_bit(p("d/f"), 0, 8).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        c.flip_bit(p("d/nope"), 0, 0).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn failing_opens_fail_every_open_and_touch_nothing() {
    let s = fresh();
    let open = s.create(p("d/open")).unwrap();
    s.sync_dir(p("d")).unwrap();
    let ops = s.op_count();
    let syncs = s.sync_count();
    s.fail_opens_with(Some(libc::EMFILE));
    assert_eq!(raw(&s.create(p("d/new")).unwrap_err()), Some(libc::EMFILE));
    assert!(!s.exists(p("d/new")), "a failed create leaves no file");
    assert_eq!(
        raw(&s.open(p("d/open"), false).unwrap_err()),
        Some(libc::EMFILE)
    );
    assert_eq!(raw(&s.sync_dir(p("d")).unwrap_err()), Some(libc::EMFILE));
    match s.lock(p("d/lock"), "me") {
        Err(LockError::Io { source, .. }) => assert_eq!(raw(&source), Some(libc::EMFILE)),
        other => panic!("expected an EMFILE lock error, got {other:?}"),
    }
    // Handles already open keep working.
    open.write_at(b"still", 0).unwrap();
    open.sync_data().unwrap();
    assert_eq!(
        s.op_count(),
        ops + 2,
        "only the write and the sync were counted"
    );
    assert_eq!(s.sync_count(), syncs + 1);

    s.fail_opens_with(None);
    s.create(p("d/new")).unwrap();
    s.sync_dir(p("d")).unwrap();
    assert!(s.exists(p("d/new")));
}
