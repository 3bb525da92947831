//! Writes a format-compatibility fixture: a small channel directory in today's on-disk format,
//! and `expected.json`, the events a later engine must drain from it, in order.
//!
//! ```text
//! cargo run -p file-channel --example write_compat_fixture -- OUT_DIR [--key-file KEY]
//! ```
//!
//! With `--key-file` (32 raw bytes), every put record is encrypted under that key, as key id
//! `fixture-key` (format 3 on); the key is copied to `OUT_DIR/key.bin` for the test to read.
//!
//! `OUT_DIR` must not exist; the channel goes to `OUT_DIR/channel/`. This is run once per
//! format version, when that version gets its fixture (`crates/file-channel/tests/fixtures/
//! format-v<N>/`, see its `README.md`). A fixture already checked in is never regenerated: its
//! point is that it was written by an older engine. Only the engine's public API is used.
//!
//! What the directory holds (segment size 4 KiB, no prefill, so the files stay small):
//! - two put commits of five events each in segment 1, with headers (several, an empty value,
//!   non-ASCII), an empty body, a one-byte body, every byte value, zeros and a 1000-byte body;
//! - a committed take of events 0–2 (the low-water mark moves to 3), then a clean close, which
//!   writes checkpoint 1;
//! - a second session (reopen):
//!   a take of events 3–4 that is never committed: while it is open a second transaction takes
//!   events 5–6 and commits, then the first one rolls back. A take leaves nothing on disk until
//!   its commit, so the log holds no take record for 3–4 and they are the first events at the
//!   next take; 5–6 are a consumed range above the low-water mark;
//! - put commits that no longer fit segment 1, so the writer seals it and rotates to segment 2;
//! - a clean close, which writes checkpoint 2 (the engine keeps the two newest checkpoints, so
//!   checkpoint 1 stays: opening from it replays the second session's records on top of it).
//!
//! `in_use.lock` (which names this process and host) is removed; the engine creates it at open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use file_channel::encryption::{DataKey, Keyring};
use file_channel::{ChannelConfig, Event, FileChannel};

/// The key id of the fixture's key, when it is encrypted.
const FIXTURE_KEY_ID: &str = "fixture-key";
use serde_json::json;
use std::path::PathBuf;

/// The events put, in order: event `i` gets sequence number `i` (a new channel starts at 0).
fn events() -> Vec<Event> {
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let patterned = |len: usize, seed: usize| -> Vec<u8> {
        (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
    };
    vec![
        // Put commit 1.
        Event::new(Vec::new()).with_header("kind", "empty body"),
        Event::new("a"),
        Event::new("hello, sluice")
            .with_header("host", "web-1")
            .with_header("path", "/var/log/app.log"),
        Event::new(every_byte).with_header("kind", "every byte value"),
        Event::new("x".repeat(100))
            .with_header("empty", "")
            .with_header("unicode", "grüße ✓ 日本"),
        // Put commit 2.
        Event::new(patterned(1000, 7)).with_header("size", "1000"),
        Event::new("line with a trailing newline\n").with_header("k", "v"),
        Event::new(vec![0u8; 7]).with_header("kind", "zeros"),
        Event::new("{\"json\": true}").with_header("content-type", "application/json"),
        Event::new("b".repeat(333))
            .with_header("a", "1")
            .with_header("b", "2")
            .with_header("c", "3"),
        // Put commit 3: does not fit segment 1, so segment 2 starts with it.
        Event::new(patterned(1500, 11)).with_header("size", "1500"),
        Event::new(patterned(1200, 13)).with_header("size", "1200"),
        // Put commit 4, in segment 2.
        Event::new(Vec::new()),
        Event::new("last but one").with_header("timestamp", "1700000000000"),
        Event::new(patterned(64, 17)).with_header("kind", "last"),
    ]
}

/// Event `seq` of [`events`] as JSON; `seq` is for the reader (the public API does not show it).
fn event_json(seq: usize, e: &Event) -> serde_json::Value {
    let headers: Vec<[&str; 2]> = e
        .headers
        .iter()
        .map(|(k, v)| [k.as_str(), v.as_str()])
        .collect();
    let hex: String = e.body.iter().map(|b| format!("{b:02x}")).collect();
    json!({ "seq": seq, "headers": headers, "body_hex": hex })
}

fn put(ch: &FileChannel, events: &[Event]) {
    let mut tx = ch.transaction();
    for e in events {
        tx.put(e).expect("put");
    }
    tx.commit().expect("put commit");
}

fn take(tx: &mut file_channel::Transaction, n: usize) -> Vec<Event> {
    (0..n)
        .map(|_| tx.take().expect("take").expect("an event is pending"))
        .collect()
}

fn main() {
    let out = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .expect("usage: write_compat_fixture OUT_DIR"),
    );
    assert!(
        !out.exists(),
        "{} exists; give a new directory",
        out.display()
    );
    let key = match (
        std::env::args().nth(2).as_deref(),
        std::env::args_os().nth(3),
    ) {
        (Some("--key-file"), Some(path)) => Some(std::fs::read(path).expect("read the key file")),
        (None, _) => None,
        _ => panic!("usage: write_compat_fixture OUT_DIR [--key-file KEY]"),
    };
    let dir = out.join("channel");
    std::fs::create_dir_all(&dir).expect("create the output directory");

    let mut cfg = ChannelConfig::new(&dir);
    cfg.segment_bytes_max = 4096;
    cfg.prefill_ahead_bytes = 0;
    cfg.minimum_required_space = 0;
    cfg.checkpoint_interval_ms = 3_600_000;
    if let Some(key) = &key {
        let mut keys = Keyring::new();
        keys.insert(
            FIXTURE_KEY_ID,
            DataKey::from_slice(key).expect("a 32-byte key"),
        )
        .expect("key id");
        keys.set_active(FIXTURE_KEY_ID).expect("active key");
        cfg.keyring = Some(keys.shared());
        std::fs::write(out.join("key.bin"), key).expect("write key.bin");
    }
    let all = events();

    // First session: two put commits and a committed take; the close writes checkpoint 1.
    let ch = FileChannel::open(cfg.clone()).expect("open");
    put(&ch, &all[0..5]);
    put(&ch, &all[5..10]);
    let mut committed = ch.transaction();
    assert_eq!(take(&mut committed, 3), all[0..3]);
    committed.commit().expect("take commit");
    ch.close().expect("close");

    // Second session: a take rolled back around a committed one, then puts that rotate; the
    // close writes checkpoint 2.
    let ch = FileChannel::open(cfg).expect("reopen");
    assert_eq!(ch.len(), 7);
    let mut rolled_back = ch.transaction();
    assert_eq!(take(&mut rolled_back, 2), all[3..5]);
    let mut concurrent = ch.transaction();
    assert_eq!(take(&mut concurrent, 2), all[5..7]);
    concurrent.commit().expect("take commit");
    rolled_back.rollback();
    put(&ch, &all[10..12]);
    put(&ch, &all[12..15]);
    assert_eq!(ch.len(), 10);
    ch.close().expect("close");

    std::fs::remove_file(dir.join(file_channel::identity::LOCK_FILE_NAME)).ok();
    let segments = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .count();
    assert!(segments >= 2, "the fixture must span at least two segments");

    let expected: Vec<serde_json::Value> = [3, 4, 7, 8, 9, 10, 11, 12, 13, 14]
        .iter()
        .map(|&i| event_json(i, &all[i]))
        .collect();
    let doc = json!({
        "comment": "The events a later engine must drain from channel/, in this order, with these headers (in this order) and bodies (hex). seq is the sequence number, for the reader.",
        "events": expected,
    });
    let text = serde_json::to_string_pretty(&doc).expect("render");
    std::fs::write(out.join("expected.json"), format!("{text}\n")).expect("write expected.json");
    println!("wrote {}", out.display());
}
