//! The local destination (`file://`) and the staging directory: directory operations made
//! durable. A file created, renamed or removed is only known to survive a crash once the
//! directory holding its entry is fsynced, so every helper here fsyncs the directories it
//! changed before returning.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Fsyncs directory `dir` (its entries: files created, renamed or removed in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` and its missing parents; each directory created is made durable by fsyncing
/// its parent. An existing directory is left as it is.
pub fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir.ancestors().take_while(|a| !a.exists()).collect();
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => sync_dir(&parent_of(d))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Renames `from` to `to` in the same file system and fsyncs the directories involved. Does
/// not replace: `to` existing already is an `AlreadyExists` error, so no finished file is ever
/// overwritten.
pub fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    if from == to {
        return sync_dir(&parent_of(to));
    }
    if to.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists already", to.display()),
        ));
    }
    std::fs::rename(from, to)?;
    let (a, b) = (parent_of(from), parent_of(to));
    sync_dir(&b)?;
    if a != b {
        sync_dir(&a)?;
    }
    Ok(())
}

/// Removes file `path` (missing is fine) and fsyncs its directory.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(&parent_of(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, fsynced, renamed
/// over `path`, directory fsynced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("partial");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(&parent_of(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_parents_and_never_overwrites_on_rename() {
        let tmp = tempfile::tempdir().expect("tmp");
        let deep = tmp.path().join("a/b/c");
        create_dirs(&deep).expect("create");
        assert!(deep.is_dir());
        create_dirs(&deep).expect("exists is fine");
        let (x, y) = (deep.join("x"), deep.join("y"));
        std::fs::write(&x, "x").expect("write");
        std::fs::write(&y, "y").expect("write");
        let e = rename_durably(&x, &y).expect_err("y exists");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&y).expect("read"), "y");
        remove_durably(&y).expect("rm");
        rename_durably(&x, &y).expect("rename");
        assert_eq!(std::fs::read_to_string(&y).expect("read"), "x");
        remove_durably(&x).expect("missing is fine");
        write_atomically(&x, b"whole").expect("write");
        assert_eq!(std::fs::read(&x).expect("read"), b"whole");
    }
}
