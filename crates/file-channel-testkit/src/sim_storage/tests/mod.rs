//! The simulated storage's own tests, one file per part of its contract; the helpers every file
//! shares are here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod crash_modes;
mod durability;
mod faults;

use super::state::{lock_state, DEAD_MESSAGE, UNLIMITED_SPACE};
use super::{CrashMode, SimStorage};
use file_channel::storage::{LockError, Storage};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// A storage with the directory `d` created.
fn fresh() -> SimStorage {
    let s = SimStorage::new();
    s.create_dir_all(p("d")).unwrap();
    s
}

fn raw(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

fn assert_dead(e: &io::Error) {
    assert_eq!(e.kind(), io::ErrorKind::Other);
    assert_eq!(e.to_string(), DEAD_MESSAGE);
}

/// A file `d/f` with a durable entry and durable contents `base`, then `writes` unsynced
/// single-byte-pattern writes of `chunk` bytes each, appended in order.
fn file_with_unsynced_appends(base: &[u8], writes: usize, chunk: usize) -> SimStorage {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    f.write_at(base, 0).unwrap();
    f.sync_data().unwrap();
    s.sync_dir(p("d")).unwrap();
    for i in 0..writes {
        let off = (base.len() + i * chunk) as u64;
        f.write_at(&vec![i as u8 + 1; chunk], off).unwrap();
    }
    s
}
