//! The crash modes between "only synced" and "everything": seeded prefixes of the unsynced
//! changes, torn writes with sector-sized holes, and garbage past the durable end.

use super::*;

/// Every kept image of `file_with_unsynced_appends(base, n, chunk)` is a prefix of the
/// writes; returns how many writes were kept.
fn kept_writes(image: &[u8], base: &[u8], n: usize, chunk: usize) -> usize {
    assert!(image.starts_with(base));
    let extra = image.len() - base.len();
    assert_eq!(extra % chunk, 0, "whole writes only");
    let k = extra / chunk;
    assert!(k <= n);
    for i in 0..k {
        let at = base.len() + i * chunk;
        assert_eq!(&image[at..at + chunk], &vec![i as u8 + 1; chunk][..]);
    }
    k
}

#[test]
fn keep_prefix_is_deterministic_and_keeps_prefixes() {
    let n = 8;
    let mut seen = BTreeSet::new();
    for seed in 0..64 {
        let a = file_with_unsynced_appends(b"base", n, 3);
        let b = file_with_unsynced_appends(b"base", n, 3);
        let ia = a.crash(CrashMode::KeepPrefix { seed });
        let ib = b.crash(CrashMode::KeepPrefix { seed });
        let fa = ia.read_file(p("d/f")).unwrap();
        assert_eq!(Some(&fa), ib.read_file(p("d/f")).as_ref(), "seed {seed}");
        // Crashing the same dead storage again gives the same image too.
        let again = a.crash(CrashMode::KeepPrefix { seed });
        assert_eq!(again.read_file(p("d/f")).unwrap(), fa);
        seen.insert(kept_writes(&fa, b"base", n, 3));
    }
    assert!(
        seen.iter().any(|&k| k > 0 && k < n),
        "some seed keeps a strict prefix: {seen:?}"
    );
    assert!(seen.len() > 2, "seeds give varied outcomes: {seen:?}");
}

#[test]
fn keep_prefix_applies_to_directory_entries() {
    let mut outcomes = BTreeSet::new();
    for seed in 0..64 {
        let s = fresh();
        s.write_file(p("d/keep"), b"k").unwrap();
        for name in ["a", "b", "c", "e"] {
            s.create(&Path::new("d").join(name)).unwrap();
        }
        let c = s.crash(CrashMode::KeepPrefix { seed });
        let names = c.list(p("d")).unwrap();
        assert!(names.contains(&"keep".to_owned()));
        // The creations persist in order: a prefix of a, b, c, e.
        let created: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != "keep")
            .collect();
        assert_eq!(created, ["a", "b", "c", "e"][..created.len()].to_vec());
        outcomes.insert(created.len());
    }
    assert!(outcomes.len() > 2, "{outcomes:?}");
}

#[test]
fn torn_write_leaves_sector_sized_holes() {
    let sector = 4u64;
    let sectors = 8usize;
    let mut saw_hole = false;
    let mut saw_torn = false;
    for seed in 0..256 {
        let s = fresh();
        let f = s.create(p("d/f")).unwrap();
        f.write_at(&[0xAA; 32], 0).unwrap();
        f.sync_data().unwrap();
        s.sync_dir(p("d")).unwrap();
        f.write_at(&[0xBB; 32], 0).unwrap();
        let mode = CrashMode::TornWrite {
            seed,
            sector_bytes: sector,
        };
        let img = s.crash(mode).read_file(p("d/f")).unwrap();
        assert_eq!(s.crash(mode).read_file(p("d/f")).unwrap(), img);
        assert_eq!(img.len(), 32);
        let new: Vec<bool> = img
            .chunks(sector as usize)
            .map(|c| {
                let all_new = c.iter().all(|&b| b == 0xBB);
                let all_old = c.iter().all(|&b| b == 0xAA);
                assert!(all_new || all_old, "sector granularity: {img:?}");
                all_new
            })
            .collect();
        assert_eq!(new.len(), sectors);
        let count = new.iter().filter(|&&x| x).count();
        if count > 0 && count < sectors {
            saw_torn = true;
        }
        // A hole: an old sector followed later by a new one.
        if let Some(first_old) = new.iter().position(|&x| !x) {
            if new[first_old..].iter().any(|&x| x) {
                saw_hole = true;
            }
        }
    }
    assert!(saw_torn);
    assert!(saw_hole, "torn writes are not only short prefixes");
}

#[test]
fn torn_append_keeps_holes_inside_the_file() {
    let mut saw_hole = false;
    for seed in 0..256 {
        let s = file_with_unsynced_appends(b"", 1, 64);
        let img = s
            .crash(CrashMode::TornWrite {
                seed,
                sector_bytes: 16,
            })
            .read_file(p("d/f"))
            .unwrap();
        assert_eq!(img.len() % 16, 0);
        if img.chunks(16).any(|c| c.iter().all(|&b| b == 0)) && img.len() == 64 {
            saw_hole = true;
        }
    }
    assert!(saw_hole);
}

#[test]
fn garbage_tail_fills_the_unsynced_extension() {
    let s = fresh();
    let f = s.create(p("d/f")).unwrap();
    f.write_at(b"durable!", 0).unwrap();
    f.sync_data().unwrap();
    s.sync_dir(p("d")).unwrap();
    f.write_at(&[0u8; 100], 8).unwrap();
    let g = s.create(p("d/g")).unwrap(); // not in the durable directory: gone
    g.write_at(b"x", 0).unwrap();

    let a = s
        .crash(CrashMode::GarbageTail { seed: 7 })
        .read_file(p("d/f"))
        .unwrap();
    let b = s
        .crash(CrashMode::GarbageTail { seed: 7 })
        .read_file(p("d/f"))
        .unwrap();
    let other = s
        .crash(CrashMode::GarbageTail { seed: 8 })
        .read_file(p("d/f"))
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 108);
    assert_eq!(&a[..8], b"durable!");
    assert_ne!(
        &a[8..],
        &[0u8; 100][..],
        "the tail is garbage, not the data"
    );
    assert_ne!(a, other);
    assert_eq!(
        s.crash(CrashMode::GarbageTail { seed: 7 })
            .read_file(p("d/g")),
        None
    );
}
