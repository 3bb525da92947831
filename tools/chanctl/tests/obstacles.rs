//! Obstacles where a channel's files should be (issue 14, "Inputs and configs"): a directory, a
//! FIFO, a symbolic-link loop or a character device (`/dev/zero`) in place of a segment, a
//! checkpoint, `channel.meta`, `checkpoint.tmp`, the lock file or `quarantine/`.
//!
//! Every command must name the obstacle (its path and what kind of file it is), exit 2, never
//! hang (opening a FIFO blocks) nor read forever (`/dev/zero`), and change nothing: a repair
//! that meets an obstacle leaves every file as it was.

mod common;

use common::{build, ckpt_files, flip, seg_files};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most a command may take on these small directories before it counts as hung.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// (exit code, stdout, stderr) of `chanctl ARGS`, killed and failed if it runs past
/// [`HANG_LIMIT`].
fn run_bounded(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chanctl"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chanctl");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > HANG_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chanctl {args:?} hung for more than {HANG_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().expect("out"), err.join().expect("err"));
    assert!(
        !err.contains("panicked"),
        "chanctl {args:?} panicked: {err}"
    );
    (status.code().expect("exit code"), out, err)
}

/// What is at a path, without following symbolic links or opening anything but regular files.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    File(Vec<u8>),
    Dir,
    Link(PathBuf),
    Other(String),
}

/// Every path under `dir` with what is there: a listing to compare before and after.
fn tree(dir: &Path) -> Vec<(PathBuf, Node)> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let t = std::fs::symlink_metadata(&p).expect("lstat").file_type();
            let node = if t.is_symlink() {
                Node::Link(std::fs::read_link(&p).expect("readlink"))
            } else if t.is_dir() {
                stack.push(p.clone());
                Node::Dir
            } else if t.is_file() {
                Node::File(std::fs::read(&p).expect("read"))
            } else if t.is_fifo() {
                Node::Other("fifo".into())
            } else {
                Node::Other(format!("{t:?}"))
            };
            out.push((p, node));
        }
    }
    out.sort();
    out
}

/// Fails naming the paths whose contents differ between two [`tree`]s (not the contents).
fn assert_same_tree(after: &[(PathBuf, Node)], before: &[(PathBuf, Node)], what: &str) {
    if after == before {
        return;
    }
    let changed: Vec<&PathBuf> = before
        .iter()
        .chain(after)
        .filter(|entry| !before.contains(entry) || !after.contains(entry))
        .map(|(p, _)| p)
        .collect();
    panic!("{what} changed the directory: {changed:?}");
}

/// The kinds of obstacle, with the words a message must use for each.
#[derive(Clone, Copy, Debug)]
enum Obstacle {
    Directory,
    Fifo,
    SymlinkLoop,
    DevZero,
}

impl Obstacle {
    const ALL: [Obstacle; 4] = [
        Obstacle::Directory,
        Obstacle::Fifo,
        Obstacle::SymlinkLoop,
        Obstacle::DevZero,
    ];

    /// Replaces whatever is at `path` with the obstacle.
    fn put(self, path: &Path) {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.is_dir() {
                std::fs::remove_dir_all(path).expect("remove dir");
            } else {
                std::fs::remove_file(path).expect("remove");
            }
        }
        match self {
            Obstacle::Directory => std::fs::create_dir(path).expect("mkdir"),
            Obstacle::Fifo => {
                let ok = Command::new("mkfifo")
                    .arg(path)
                    .status()
                    .expect("mkfifo")
                    .success();
                assert!(ok, "mkfifo {}", path.display());
            }
            Obstacle::SymlinkLoop => {
                std::os::unix::fs::symlink(path, path).expect("symlink loop");
            }
            Obstacle::DevZero => {
                // A character device node of /dev/zero's numbers when we may make one (root),
                // else a link to /dev/zero itself.
                let made = Command::new("mknod")
                    .arg(path)
                    .args(["c", "1", "5"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !made {
                    std::os::unix::fs::symlink("/dev/zero", path).expect("symlink /dev/zero");
                }
            }
        }
    }

    /// The words naming this kind of file in a message.
    fn words(self) -> &'static str {
        match self {
            Obstacle::Directory => "a directory",
            Obstacle::Fifo => "a FIFO",
            Obstacle::SymlinkLoop => "symbolic link",
            Obstacle::DevZero => "character device",
        }
    }
}

/// Every read-only command and the repair, in order, on `dir`: each exits 2 within the limit,
/// names `obstacle` at `at`, and nothing under `dir` changes.
fn every_command_names_it(dir: &Path, at: &Path, obstacle: Obstacle) {
    let before = tree(dir);
    let d = dir.to_str().expect("utf8");
    for args in [
        vec!["verify", d],
        vec!["verify", d, "--json"],
        vec!["dump", d],
        vec!["stat", d],
        vec!["replay", d],
        vec!["repair", d],
        vec!["repair", d, "--yes"],
        vec!["repair", d, "--yes", "--json"],
    ] {
        let (code, out, err) = run_bounded(&args);
        assert_eq!(
            code, 2,
            "{args:?} with {obstacle:?} at {at:?}: {out}\n{err}"
        );
        assert!(
            err.contains(at.to_str().expect("utf8")) && err.contains(obstacle.words()),
            "{args:?}: the message names neither the path {at:?} nor {:?}: {err}",
            obstacle.words()
        );
        assert_same_tree(
            &tree(dir),
            &before,
            &format!("{args:?} with {obstacle:?} at {at:?}"),
        );
    }
}

#[test]
fn an_obstacle_where_a_segment_should_be_is_named_and_never_hangs() {
    for obstacle in Obstacle::ALL {
        for which in ["middle", "newest"] {
            let t = tempfile::tempdir().expect("tmp");
            build(t.path(), 12, 5);
            let segs = seg_files(t.path());
            assert!(segs.len() >= 3, "{segs:?}");
            let at = match which {
                "middle" => segs[segs.len() / 2].clone(),
                _ => segs[segs.len() - 1].clone(),
            };
            obstacle.put(&at);
            every_command_names_it(t.path(), &at, obstacle);
        }
    }
}

#[test]
fn an_obstacle_where_a_checkpoint_or_the_identity_file_should_be_is_named_and_never_hangs() {
    for obstacle in Obstacle::ALL {
        for which in [
            "checkpoint",
            "channel.meta",
            "checkpoint.tmp",
            "in_use.lock",
        ] {
            let t = tempfile::tempdir().expect("tmp");
            build(t.path(), 12, 5);
            let at = match which {
                "checkpoint" => ckpt_files(t.path()).pop().expect("a checkpoint"),
                name => t.path().join(name),
            };
            obstacle.put(&at);
            every_command_names_it(t.path(), &at, obstacle);
        }
    }
}

/// A repair with work to do (a damaged checkpoint to move to `quarantine/`) that meets an
/// obstacle where `quarantine/` should be: before the fix it moved checkpoints, then failed.
/// Now it changes nothing and names the obstacle.
#[test]
fn a_repair_that_meets_an_obstacle_changes_nothing() {
    for obstacle in [
        None,
        Some(Obstacle::Fifo),
        Some(Obstacle::SymlinkLoop),
        Some(Obstacle::DevZero),
    ] {
        let t = tempfile::tempdir().expect("tmp");
        build(t.path(), 12, 5);
        let cp = ckpt_files(t.path()).pop().expect("a checkpoint");
        flip(&cp, 60, 2);
        let q = t.path().join("quarantine");
        match obstacle {
            None => std::fs::write(&q, "a regular file").expect("write"),
            Some(o) => o.put(&q),
        }
        let words = obstacle.map_or("a regular file", Obstacle::words);
        let before = tree(t.path());
        let d = t.path().to_str().expect("utf8");
        let (code, out, err) = run_bounded(&["repair", d, "--yes"]);
        assert_eq!(code, 2, "{obstacle:?}: {out}\n{err}");
        assert!(
            err.contains(q.to_str().expect("utf8")) && err.contains(words),
            "{obstacle:?}: the message names neither {q:?} nor {words:?}: {err}"
        );
        assert_same_tree(
            &tree(t.path()),
            &before,
            &format!("repair with {obstacle:?}"),
        );
        // The read-only commands do not need quarantine/ and still work.
        let (code, out, err) = run_bounded(&["verify", d]);
        assert_eq!(code, 1, "{obstacle:?}: {out}\n{err}");
    }
}

/// A channel directory that is itself a symbolic link loop: named as such (main said it does
/// not exist), and the I/O cause is printed once, not once per error level that embeds it.
#[test]
fn each_io_cause_is_printed_once() {
    let t = tempfile::tempdir().expect("tmp");
    let d = t.path().join("chan");
    Obstacle::SymlinkLoop.put(&d);
    let (code, out, err) = run_bounded(&["verify", d.to_str().expect("utf8")]);
    assert_eq!(code, 2, "{out}\n{err}");
    // ELOOP is 40 on Linux.
    let cause = std::io::Error::from_raw_os_error(40).to_string();
    assert!(err.contains(d.to_str().expect("utf8")), "{err}");
    assert_eq!(err.matches(&cause).count(), 1, "{err}");
}
