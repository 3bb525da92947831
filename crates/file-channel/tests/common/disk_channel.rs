//! A channel on the real file system for the replay tests: its configuration (64 KiB segments,
//! no prefill), one commit of a batch of puts, and copying a channel directory to damage the
//! copy.

use file_channel::{ChannelConfig, Event, FileChannel};
use std::path::Path;

pub fn cfg(dir: &Path) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.prefill_ahead_bytes = 0;
    c.segment_bytes_max = 64 << 10;
    c
}

/// Copies every regular file of `src` into `dst`.
pub fn copy_dir(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

pub fn put_commit(ch: &FileChannel, events: &[Event]) {
    let mut tx = ch.transaction();
    for e in events {
        tx.put(e).unwrap();
    }
    tx.commit().unwrap();
}
