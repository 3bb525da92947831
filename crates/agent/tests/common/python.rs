//! Runs Python peers for interoperability tests: independent client libraries from PyPI
//! (kafka-python, thrift) installed on first use into a directory under the cargo target dir,
//! so the README's test command needs nothing but `python3` with `pip` on the machine.
//!
//! Installation is serialised across test processes with a lock file and done once per package
//! set; a failure to install fails the test with pip's own output (a test that silently skipped
//! would not be able to fail).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the packages go: `<target>/python-deps/<name>`, next to the test binaries.
fn deps_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>: three levels up is the target dir.
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    target.join("python-deps").join(name)
}

/// A `PYTHONPATH` holding `packages` (pip requirement strings such as `kafka-python==2.0.2`),
/// installing them if this set was not installed before.
pub fn python_path(packages: &[&str]) -> PathBuf {
    let key: String = packages
        .iter()
        .map(|p| p.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        .collect::<Vec<_>>()
        .join("-");
    let dir = deps_dir(&key);
    let done = dir.join(".installed");
    if done.exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("create python deps dir");
    let lock_file = std::fs::File::create(dir.with_extension("lock")).expect("lock file");
    fs2::FileExt::lock_exclusive(&lock_file).expect("lock python deps");
    if !done.exists() {
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-warn-script-location", "--target"])
            .arg(&dir)
            .args(packages)
            .output()
            .expect("run python3 -m pip (python3 with pip is required for interop tests)");
        assert!(
            out.status.success(),
            "pip install {packages:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, b"ok").expect("mark installed");
    }
    dir
}

/// Runs `python3 script args…` with `packages` importable; returns its output (not checked).
pub fn run_python(packages: &[&str], script: &Path, args: &[&str]) -> Output {
    let path = python_path(packages);
    Command::new("python3")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3")
}

/// Like [`run_python`] but fails the test, with the script's stdout and stderr, if it failed.
pub fn run_python_ok(packages: &[&str], script: &Path, args: &[&str]) -> String {
    let out = run_python(packages, script, args);
    assert!(
        out.status.success(),
        "python3 {} {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
