//! Tests of the spooling directory source.

use super::*;
use crate::channel::Channel;

fn config(dir: &Path) -> SpoolDirConfig {
    SpoolDirConfig {
        spool_dir: dir.to_path_buf(),
        file_suffix: ".COMPLETED".into(),
        delete_policy: DeletePolicy::Never,
        file_header_key: None,
        basename_header_key: Some("basename".into()),
        tracker_dir: dir.join(".flumespool"),
        include_pattern: "^.*$".into(),
        ignore_pattern: "^$".into(),
        consume_order: ConsumeOrder::Oldest,
        recursive: false,
        batch_size: 2,
        decode_error_policy: DecodeErrorPolicy::Fail,
        max_line_length: 2048,
        poll_delay_ms: 10,
    }
}

fn source(cfg: SpoolDirConfig) -> (SpoolDirSource, Channel) {
    let (ctx, ch) = crate::source::test_context(1000, 100);
    (SpoolDirSource::new(cfg, ctx), ch)
}

fn drain(ch: &Channel) -> Vec<String> {
    let mut tx = ch.transaction();
    let mut v = Vec::new();
    while let Some(e) = tx.take().expect("take") {
        v.push(String::from_utf8(e.body).expect("utf8"));
    }
    tx.commit().expect("commit");
    v
}

fn run(s: &mut SpoolDirSource) {
    for _ in 0..100 {
        if s.process().expect("process") == Status::Backoff {
            return;
        }
    }
    panic!("source never backed off");
}

fn parse(pairs: &[(&str, &str)]) -> (SpoolDirConfig, Vec<String>) {
    let list = crate::source::test_support::entries(pairs);
    let ctx = crate::source::test_support::ctx(&list);
    let c = SpoolDirConfig::parse(&ctx);
    let errs = ctx
        .finish("spooldir source r1")
        .errors
        .iter()
        .map(|p| p.display(Path::new("f")).to_string())
        .collect();
    (c, errs)
}

#[test]
fn flume_defaults_and_refusals() {
    let (c, errs) = parse(&[("spoolDir", "/s")]);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(c, {
        let mut d = config(Path::new("/s"));
        d.basename_header_key = None;
        d.batch_size = 100;
        d.poll_delay_ms = 500;
        d
    });
    let (_, errs) = parse(&[
        ("spoolDir", "/s"),
        ("deserializer", "AVRO"),
        ("inputCharset", "ISO-8859-1"),
        ("includePattern", "(("),
        ("consumeOrder", "newest"),
    ]);
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(
        errs[0].contains("`AVRO` is a Flume deserializer type"),
        "{errs:?}"
    );
    assert!(errs[1].contains("only UTF-8 is supported"), "{errs:?}");
    let (_, errs) = parse(&[]);
    assert_eq!(
        errs,
        vec!["f:1: a1.sources.r1.spoolDir: required key is missing"]
    );
}

#[test]
fn recursive_search_skips_the_tracker_and_hidden_directories() {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(d.path().join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(d.path().join(".hidden")).expect("mkdir");
    std::fs::write(d.path().join("sub/deeper/x"), "deep\n").expect("write");
    std::fs::write(d.path().join(".hidden/y"), "hidden\n").expect("write");
    let mut c = config(d.path());
    c.recursive = true;
    let (mut s, ch) = source(c);
    run(&mut s);
    assert_eq!(drain(&ch), vec!["deep"]);
    assert!(d.path().join("sub/deeper/x.COMPLETED").exists());
}

#[test]
fn patterns_match_whole_names_and_skip_hidden_and_done_files() {
    let d = tempfile::tempdir().expect("tmp");
    let mut c = config(d.path());
    c.include_pattern = r".*\.log".into();
    c.ignore_pattern = "skip.*".into();
    let f = NameFilter::new(&c).expect("patterns");
    assert!(f.accepts("a.log"));
    assert!(
        !f.accepts("a.log.1"),
        "whole-name match, as Java's matches()"
    );
    assert!(!f.accepts("skip.log"));
    assert!(!f.accepts(".hidden.log"));
    assert!(!f.accepts("x.log.COMPLETED"));
    let f = NameFilter::new(&config(d.path())).expect("defaults");
    assert!(f.accepts("anything"));
    assert!(!f.accepts(""), "Flume's ^$ ignores only an empty name");
}

#[test]
fn tracker_state_round_trips_and_rejects_garbage() {
    let s = TrackerState {
        file: "sub/a \"b\".log".into(),
        inode: 42,
        pos: 1 << 40,
        line: 7,
    };
    assert_eq!(TrackerState::decode(&s.encode()), Some(s));
    assert_eq!(TrackerState::decode("{\"file\":\"a\"}"), None);
    assert_eq!(TrackerState::decode("not json"), None);
}

#[test]
fn reads_lines_in_batches_renames_when_done_and_removes_the_tracker() {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(d.path().join("a.txt"), "one\ntwo\r\nthree\nfour").expect("write");
    let (mut s, ch) = source(config(d.path()));
    run(&mut s);
    assert_eq!(drain(&ch), vec!["one", "two\r", "three", "four"]);
    assert!(d.path().join("a.txt.COMPLETED").exists());
    assert!(!d.path().join("a.txt").exists());
    assert!(!d
        .path()
        .join(".flumespool")
        .join(TRACKER_FILE_NAME)
        .exists());
    assert_eq!(s.ctx.counters.event_accepted_count.load(Relaxed), 4);
}

#[test]
fn a_restart_resumes_at_the_tracked_position() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path().join("a.txt");
    std::fs::write(&p, "l0\nl1\nl2\nl3\nl4\n").expect("write");
    let inode = std::fs::metadata(&p).expect("stat").ino();
    let tracker = TrackerState {
        file: "a.txt".into(),
        inode,
        pos: 6,
        line: 2,
    };
    std::fs::create_dir_all(d.path().join(".flumespool")).expect("mkdir");
    std::fs::write(
        d.path().join(".flumespool").join(TRACKER_FILE_NAME),
        tracker.encode(),
    )
    .expect("write");
    let (mut s, ch) = source(config(d.path()));
    assert_eq!(s.process().expect("batch"), Status::Ready);
    let after = TrackerState::decode(
        &std::fs::read_to_string(d.path().join(".flumespool").join(TRACKER_FILE_NAME))
            .expect("tracker"),
    )
    .expect("decode");
    assert_eq!((after.pos, after.line), (12, 4));
    run(&mut s);
    assert_eq!(drain(&ch), vec!["l2", "l3", "l4"]);
}

#[test]
fn long_lines_are_cut_and_decode_policies_apply() {
    let d = tempfile::tempdir().expect("tmp");
    let mut c = config(d.path());
    c.max_line_length = 3;
    c.decode_error_policy = DecodeErrorPolicy::Replace;
    c.batch_size = 10;
    std::fs::write(
        d.path().join("a"),
        b"abcdef\nx\xffy\n\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n",
    )
    .expect("write");
    let (mut s, ch) = source(c.clone());
    run(&mut s);
    assert_eq!(drain(&ch), vec!["abc", "x\u{fffd}y", "ééé"]);

    c.decode_error_policy = DecodeErrorPolicy::Ignore;
    std::fs::write(d.path().join("b"), b"x\xffy\n").expect("write");
    let (mut s, ch) = source(c.clone());
    run(&mut s);
    assert_eq!(drain(&ch), vec!["xy"]);

    c.decode_error_policy = DecodeErrorPolicy::Fail;
    std::fs::write(d.path().join("c"), b"ok\nx\xffy\n").expect("write");
    let (mut s, ch) = source(c);
    run(&mut s);
    assert!(s.halted);
    assert_eq!(s.ctx.counters.event_read_fail.load(Relaxed), 1);
    assert!(
        drain(&ch).is_empty(),
        "the batch with the bad line is not put"
    );
    assert!(d.path().join("c").exists(), "the file is kept");
}

#[test]
fn a_file_modified_while_read_halts_and_a_restart_resumes_without_loss() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path().join("a");
    std::fs::write(&p, "1\n2\n3\n").expect("write");
    let (mut s, ch) = source(config(d.path()));
    assert_eq!(s.process().expect("first batch"), Status::Ready);
    let mut f = File::options().append(true).open(&p).expect("open");
    std::io::Write::write_all(&mut f, b"4\n").expect("append");
    run(&mut s);
    assert!(s.halted);
    assert_eq!(s.ctx.counters.generic_processing_fail.load(Relaxed), 1);
    assert!(p.exists() && !d.path().join("a.COMPLETED").exists());
    assert_eq!(drain(&ch), vec!["1", "2", "3", "4"]);
    // Restarted (after the writer is done): resumes after "4", nothing again.
    let (mut s, ch) = source(config(d.path()));
    run(&mut s);
    assert!(!s.halted);
    assert!(drain(&ch).is_empty());
    assert!(d.path().join("a.COMPLETED").exists());
}

#[test]
fn a_reused_done_name_halts_and_keeps_the_file() {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(d.path().join("a"), "new\n").expect("write");
    std::fs::write(d.path().join("a.COMPLETED"), "old\n").expect("write");
    let (mut s, ch) = source(config(d.path()));
    run(&mut s);
    assert!(s.halted);
    assert_eq!(drain(&ch), vec!["new"]);
    assert_eq!(
        std::fs::read_to_string(d.path().join("a.COMPLETED")).expect("old"),
        "old\n"
    );
    assert!(d.path().join("a").exists());
    assert_eq!(s.ctx.counters.generic_processing_fail.load(Relaxed), 1);
}

#[test]
fn delete_policy_immediate_and_youngest_first() {
    let d = tempfile::tempdir().expect("tmp");
    let mut c = config(d.path());
    c.delete_policy = DeletePolicy::Immediate;
    c.consume_order = ConsumeOrder::Youngest;
    std::fs::write(d.path().join("old"), "1\n").expect("write");
    let t = SystemTime::now() - std::time::Duration::from_secs(60);
    File::options()
        .write(true)
        .open(d.path().join("old"))
        .expect("open")
        .set_modified(t)
        .expect("mtime");
    std::fs::write(d.path().join("new"), "2\n").expect("write");
    let (mut s, ch) = source(c);
    run(&mut s);
    assert_eq!(drain(&ch), vec!["2", "1"]);
    let left: Vec<_> = std::fs::read_dir(d.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from(".flumespool")]);
}
