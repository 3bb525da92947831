//! Tests of the TAILDIR source.

use super::*;
use crate::channel::Channel;
use std::io::Write;
use std::path::Path;

#[test]
fn position_file_has_flumes_exact_shape() {
    let list = vec![
        Position {
            inode: 2496275,
            pos: 10,
            file: "/tmp/a.log".into(),
        },
        Position {
            inode: 1,
            pos: 0,
            file: "/x/<a>&b='c'\"\\\n".into(),
        },
    ];
    let text = encode_positions(&list);
    assert_eq!(
        text,
        r#"[{"inode":2496275,"pos":10,"file":"/tmp/a.log"},{"inode":1,"pos":0,"file":"/x/\u003ca\u003e\u0026b\u003d\u0027c\u0027\"\\\n"}]"#
    );
    assert_eq!(decode_positions(&text).expect("decode"), list);
    assert_eq!(encode_positions(&[]), "[]");
    // What Flume wrote, with spaces and in another key order, reads the same.
    assert_eq!(
        decode_positions("[ {\"file\": \"/a\", \"pos\": 3, \"inode\": 9} ]").expect("decode"),
        vec![Position {
            inode: 9,
            pos: 3,
            file: "/a".into()
        }]
    );
    assert!(decode_positions("{}").is_err());
    assert!(decode_positions("[{\"inode\":1}]")
        .expect("skips")
        .is_empty());
}

#[test]
fn group_paths_split_into_directory_and_whole_name_pattern() {
    assert_eq!(
        split_group_path("/var/log/test2/.*log.*"),
        (PathBuf::from("/var/log/test2"), ".*log.*".to_owned())
    );
    assert_eq!(
        split_group_path("app.log"),
        (PathBuf::from("."), "app.log".to_owned())
    );
    let re = crate::java_regex::compile_whole(r"app\.log").expect("re");
    assert!(re.is_match("app.log").expect("ran"));
    assert!(!re.is_match("app.log.1").expect("ran"));
    assert!(!re.is_match("xapp.log").expect("ran"));
    // Java's syntax: look-behind, ASCII \w (Flume matches file names with java.util.regex).
    let re = crate::java_regex::compile_whole(r"\w+(?<!\.tmp)\.log").expect("re");
    assert!(re.is_match("app.log").expect("ran"));
    assert!(!re.is_match("résumé.log").expect("ran"));
}

fn source(dir: &Path, pattern: &str) -> (TaildirSource, Channel) {
    let (ctx, ch) = crate::source::test_context(10_000, 100);
    let cfg = TaildirConfig {
        groups: vec![FileGroup {
            name: "g".into(),
            dir: dir.to_path_buf(),
            pattern: pattern.into(),
            headers: vec![("h".into(), "v".into())],
        }],
        position_file: dir.join("pos").join("taildir_position.json"),
        batch_size: 3,
        skip_to_end: false,
        idle_timeout_ms: 0,
        write_pos_interval_ms: 0,
        byte_offset_header: true,
        file_header_key: None,
        max_batch_count: u64::MAX,
        backoff: Backoff {
            increment_ms: 10,
            max_ms: 10,
        },
    };
    (TaildirSource::new(cfg, ctx), ch)
}

fn drain(ch: &Channel) -> Vec<(String, String)> {
    let mut tx = ch.transaction();
    let mut v = Vec::new();
    while let Some(e) = tx.take().expect("take") {
        let off = e
            .headers
            .iter()
            .find(|(k, _)| k == "byteoffset")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        v.push((String::from_utf8(e.body).expect("utf8"), off));
    }
    tx.commit().expect("commit");
    v
}

fn bodies(ch: &Channel) -> Vec<String> {
    drain(ch).into_iter().map(|(b, _)| b).collect()
}

fn append(p: &Path, s: &str) {
    let mut f = File::options()
        .create(true)
        .append(true)
        .open(p)
        .expect("open");
    f.write_all(s.as_bytes()).expect("write");
}

#[test]
fn follows_rename_rotation_truncation_and_partial_lines() {
    let d = tempfile::tempdir().expect("tmp");
    let log = d.path().join("app.log");
    append(&log, "a\r\nb\nc\nd\npart");
    let (mut s, ch) = source(d.path(), r"app\.log");
    while s.process().expect("p") == Status::Ready {}
    assert_eq!(
        drain(&ch),
        vec![
            ("a".into(), "0".into()),
            ("b".into(), "3".into()),
            ("c".into(), "5".into()),
            ("d".into(), "7".into())
        ]
    );
    append(&log, "ial\ne\n");
    std::fs::rename(&log, d.path().join("app.log.1")).expect("rotate");
    append(&d.path().join("app.log.1"), "f\n");
    append(&log, "new1\n");
    while s.process().expect("p") == Status::Ready {}
    assert_eq!(bodies(&ch), vec!["partial", "e", "f", "new1"]);
    assert_eq!(
        s.tails.len(),
        1,
        "the rotated file was finished and dropped"
    );
    // Truncation.
    std::fs::write(&log, "x\n").expect("truncate");
    while s.process().expect("p") == Status::Ready {}
    assert_eq!(bodies(&ch), vec!["x"]);
    // Positions written are the committed ones.
    let text =
        std::fs::read_to_string(d.path().join("pos/taildir_position.json")).expect("positions");
    let inode = std::fs::metadata(&log).expect("stat").ino();
    assert_eq!(
        decode_positions(&text).expect("decode"),
        vec![Position {
            inode,
            pos: 2,
            file: log.to_string_lossy().into_owned()
        }]
    );
}

#[test]
fn a_file_rotated_while_down_is_read_to_its_end_then_the_new_one() {
    let d = tempfile::tempdir().expect("tmp");
    let log = d.path().join("app.log");
    append(&log, "1\n");
    let (mut s, ch) = source(d.path(), r"app\.log");
    while s.process().expect("p") == Status::Ready {}
    s.stop();
    assert_eq!(bodies(&ch), vec!["1"]);
    append(&log, "2\n");
    std::fs::rename(&log, d.path().join("app.log.1")).expect("rotate");
    append(&log, "3\n");
    let (mut s, ch) = source(d.path(), r"app\.log");
    while s.process().expect("p") == Status::Ready {}
    assert_eq!(bodies(&ch), vec!["2", "3"]);
}

#[test]
fn a_restart_resumes_from_the_position_file_even_after_a_rename() {
    let d = tempfile::tempdir().expect("tmp");
    let log = d.path().join("app.log");
    append(&log, "1\n2\n");
    let (mut s, ch) = source(d.path(), r"app.*\.log");
    while s.process().expect("p") == Status::Ready {}
    s.stop();
    assert_eq!(bodies(&ch), vec!["1", "2"]);
    append(&log, "3\n");
    std::fs::rename(&log, d.path().join("app-old.log")).expect("rename");
    let (mut s, ch) = source(d.path(), r"app.*\.log");
    while s.process().expect("p") == Status::Ready {}
    assert_eq!(bodies(&ch), vec!["3"]);
}

/// Lines are cut at `\n` (a `\r` before it dropped) wherever the reads' chunks end, batch by
/// batch through one reused buffer, with each line's first byte offset; an unfinished last line
/// is left for later.
#[test]
fn read_lines_splits_across_chunks_batch_by_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut want: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut bytes = Vec::new();
    for i in 0..400usize {
        // Lengths around the chunk size, so lines start, end and straddle chunk boundaries.
        let len = [0, 1, 700, READ_CHUNK_BYTES - 3, 5000][i % 5] + i % 7;
        let body: Vec<u8> = (0..len).map(|k| b'a' + ((i + k) % 26) as u8).collect();
        want.push((bytes.len() as u64, body.clone()));
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
    }
    let whole = bytes.len() as u64;
    bytes.extend_from_slice(b"unfinished");
    std::fs::write(&path, &bytes).expect("write");
    let f = File::open(&path).expect("open");
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let (mut got, mut pos) = (Vec::new(), 0u64);
    loop {
        let (lines, end) = read_lines(&f, pos, 37, &mut buf).expect("read");
        if lines.is_empty() {
            break;
        }
        assert!(lines.len() <= 37);
        got.extend(lines);
        pos = end;
    }
    assert_eq!(pos, whole, "stops before the unfinished line");
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.0, w.0, "offset of line {k}");
        assert!(g.1 == w.1, "body of line {k}");
    }
}
