//! The `Storage` and `StorageFile` contract as the simulated storage answers it: path errors,
//! reads and writes past the end, directory listings, the lock, the setup helpers and
//! concurrent use.

use super::*;
use std::thread;

#[test]
fn open_create_and_path_errors() {
    let s = fresh();
    assert_eq!(
        s.open(p("d/nope"), false).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        s.create(p("nodir/f")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        s.list(p("nodir")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        s.sync_dir(p("nodir")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        s.available_space(p("nodir")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        s.rename(p("d/nope"), p("d/x")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        s.remove(p("d/nope")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    s.create(p("d/f")).unwrap();
    assert_eq!(
        s.create(p("d/f")).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        s.create(p("d")).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        s.create(p("/")).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        s.create_dir_all(p("d/f/sub")).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );

    let ro = s.open(p("d/f"), false).unwrap();
    assert_eq!(
        ro.write_at(b"x", 0).unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    assert_eq!(
        ro.set_len(3).unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    ro.sync_data().unwrap();

    let rw = s.open(p("d/f"), true).unwrap();
    assert_eq!(
        rw.write_at(b"x", u64::MAX).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        raw(&rw.write_at(b"x", 1 << 60).unwrap_err()),
        Some(libc::EFBIG)
    );
    assert_eq!(raw(&rw.set_len(u64::MAX).unwrap_err()), Some(libc::EFBIG));
    rw.write_at(b"", u64::MAX).unwrap_err();
    assert_eq!(rw.len().unwrap(), 0);
}

#[test]
fn reads_past_eof_and_writes_past_eof() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    f.write_at(b"ab", 4).unwrap();
    assert_eq!(s.read_file(p("d/f")).unwrap(), b"\0\0\0\0ab");
    let mut buf = [9u8; 4];
    assert_eq!(f.read_at(&mut buf, 6).unwrap(), 0);
    assert_eq!(f.read_at(&mut buf, u64::MAX).unwrap(), 0);
    assert_eq!(f.read_at(&mut buf, 4).unwrap(), 2);
    assert_eq!(&buf[..2], b"ab");
    assert_eq!(
        f.read_exact_at(&mut buf, 4).unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
    f.set_len(8).unwrap();
    assert_eq!(s.read_file(p("d/f")).unwrap(), b"\0\0\0\0ab\0\0");
}

#[test]
fn directories_list_and_exists() {
    let s = SimStorage::new();
    assert!(s.exists(p(".")));
    assert!(!s.exists(p("a")));
    s.create_dir_all(p("a/b/c")).unwrap();
    assert!(s.exists(p("a")));
    assert!(s.exists(p("a/b")));
    assert!(s.exists(p("a/b/c")));
    assert_eq!(s.list(p("a/b")).unwrap(), Vec::<String>::new());
    s.create(p("a/b/z")).unwrap();
    s.create(p("a/b/y")).unwrap();
    s.create(p("top")).unwrap();
    assert_eq!(s.list(p("a/b")).unwrap(), vec!["y", "z"]);
    assert!(s.exists(p("a/b/y")));
    assert_eq!(s.list(p(".")).unwrap(), vec!["top"]);
    assert_eq!(
        s.list_all(),
        vec![
            PathBuf::from("a/b/y"),
            PathBuf::from("a/b/z"),
            PathBuf::from("top")
        ]
    );
    s.create_dir_all(p("")).unwrap();
    s.create_dir_all(p("/abs/dir")).unwrap();
    s.create(p("/abs/dir/f")).unwrap();
    assert!(s.exists(p("/abs/dir/f")));
    assert!(s.list_all().contains(&PathBuf::from("/abs/dir/f")));
}

#[test]
fn lock_is_exclusive_until_dropped() {
    let s = fresh();
    let guard = s.lock(p("d/LOCK"), "pid 1 on host a").unwrap();
    assert_eq!(s.read_file(p("d/LOCK")).unwrap(), b"pid 1 on host a");
    match s.lock(p("d/LOCK"), "pid 2 on host b") {
        Err(LockError::Held { path, holder }) => {
            assert_eq!(path, PathBuf::from("d/LOCK"));
            assert_eq!(holder, "pid 1 on host a");
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // A clone shares the lock table.
    assert!(s.clone().lock(p("d/LOCK"), "pid 3").is_err());
    drop(guard);
    let _g = s.lock(p("d/LOCK"), "pid 2 on host b").unwrap();
    assert_eq!(s.read_file(p("d/LOCK")).unwrap(), b"pid 2 on host b");
    assert!(matches!(
        s.lock(p("nodir/LOCK"), "x"),
        Err(LockError::Io { .. })
    ));
}

#[test]
fn write_and_truncate_file_helpers_are_durable() {
    let s = SimStorage::new();
    s.write_file(p("x/y/f"), b"hello").unwrap();
    assert!(s.exists(p("x/y")));
    s.truncate_file(p("x/y/f"), 2).unwrap();
    s.write_file(p("x/y/g"), b"1").unwrap();
    s.write_file(p("x/y/g"), b"22").unwrap();
    assert_eq!(s.op_count(), 0);
    let c = s.crash(CrashMode::DropUnsynced);
    assert_eq!(c.read_file(p("x/y/f")).unwrap(), b"he");
    assert_eq!(c.read_file(p("x/y/g")).unwrap(), b"22");
    c.truncate_file(p("x/y/g"), 4).unwrap();
    assert_eq!(c.read_file(p("x/y/g")).unwrap(), b"22\0\0");
    assert_eq!(
        c.truncate_file(p("x/y/none"), 1).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );

    // write_file over an unsynced removal is not undone by a crash.
    let s = fresh();
    s.write_file(p("d/f"), b"old").unwrap();
    s.remove(p("d/f")).unwrap();
    s.write_file(p("d/f"), b"new").unwrap();
    for mode in [CrashMode::DropUnsynced, CrashMode::KeepPrefix { seed: 3 }] {
        assert_eq!(s.crash(mode).read_file(p("d/f")).unwrap(), b"new");
    }
}

#[test]
fn concurrent_writer_and_readers() {
    let s = fresh();
    let f = s.create(p("d/log")).unwrap();
    thread::scope(|scope| {
        let writer = {
            let f = Arc::clone(&f);
            scope.spawn(move || {
                for i in 0..200u64 {
                    f.write_at(&i.to_le_bytes(), i * 8).unwrap();
                    if i % 50 == 0 {
                        f.sync_data().unwrap();
                    }
                }
            })
        };
        for _ in 0..3 {
            let s = s.clone();
            scope.spawn(move || {
                let r = s.open(p("d/log"), false).unwrap();
                for _ in 0..200 {
                    let len = r.len().unwrap();
                    let mut buf = vec![0u8; len as usize];
                    // The file only grows, in whole 8-byte words.
                    let n = r.read_at(&mut buf, 0).unwrap();
                    assert_eq!(n as u64, len);
                    assert_eq!(n % 8, 0);
                    for (i, word) in buf.chunks(8).enumerate() {
                        let v = u64::from_le_bytes(word.try_into().unwrap());
                        assert_eq!(v, i as u64);
                    }
                }
            });
        }
        writer.join().unwrap();
    });
    assert_eq!(f.len().unwrap(), 1600);
}

#[test]
fn handles_and_guards_do_not_keep_inodes_or_deadlock() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    let g = s.lock(p("d/LOCK"), "me").unwrap();
    s.remove(p("d/f")).unwrap();
    s.sync_dir(p("d")).unwrap();
    assert_eq!(lock_state(&s.shared).inodes.len(), 2);
    drop(f);
    assert_eq!(lock_state(&s.shared).inodes.len(), 1);
    drop(s);
    drop(g);
}
