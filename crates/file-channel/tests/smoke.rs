//! Basic end-to-end behaviour on the real file system: put, take, reopen, rotate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use file_channel::{ChannelConfig, Event, FileChannel};

#[test]
fn put_take_reopen_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ChannelConfig::new(dir.path());
    cfg.segment_bytes_max = 64 << 10;
    cfg.prefill_ahead_bytes = 16 << 10;
    let ch = FileChannel::open(cfg.clone()).unwrap();
    for b in 0..50u32 {
        let mut tx = ch.transaction();
        for i in 0..20u32 {
            tx.put(
                &Event::new(format!("{b}-{i}-{}", "x".repeat(100))).with_header("b", b.to_string()),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    assert_eq!(ch.len(), 1000);
    let mut tx = ch.transaction();
    for i in 0..300u32 {
        let e = tx.take().unwrap().unwrap();
        assert!(
            e.body
                .starts_with(format!("{}-{}-", i / 20, i % 20).as_bytes()),
            "{i}"
        );
    }
    tx.commit().unwrap();
    assert_eq!(ch.len(), 700);
    ch.close().unwrap();

    let ch = FileChannel::open(cfg).unwrap();
    assert_eq!(ch.len(), 700, "{:?}", ch.open_report());
    assert!(ch.open_report().segments > 1);
    let mut tx = ch.transaction();
    let e = tx.take().unwrap().unwrap();
    assert!(
        e.body.starts_with(b"15-0-"),
        "{}",
        String::from_utf8_lossy(&e.body)
    );
    assert_eq!(e.header("b"), Some("15"));
    tx.rollback();
    let mut n = 0;
    loop {
        let mut tx = ch.transaction();
        let mut got = 0;
        while got < 100 {
            match tx.take().unwrap() {
                Some(_) => got += 1,
                None => break,
            }
        }
        tx.commit().unwrap();
        n += got;
        if got == 0 {
            break;
        }
    }
    assert_eq!(n, 700);
    assert_eq!(ch.len(), 0);
}
