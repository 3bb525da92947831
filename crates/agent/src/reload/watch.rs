//! Noticing that the configuration file changed: a `notify` watcher on the file's directory
//! (an editor's save-by-rename and a Kubernetes ConfigMap's symlink swap replace the file
//! rather than write it, and only a watch on the directory sees that), and a poll of the file
//! as a fallback (file systems without change events: NFS, some container mounts).
//!
//! Both only say "look again": [`Fingerprint`] of the file's bytes decides whether it really
//! changed, so a touch, an unrelated file in the directory or an editor's swap file does not
//! reload.

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Quiet time after the last change event before the file is read: an editor's save is several
/// events (write the new file, rename it over, change its mode).
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// What the file held when last read: its length and a hash of its bytes (following
/// symlinks). `None` when it could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(Option<(u64, u64)>);

impl Fingerprint {
    /// Reads `file` now.
    pub fn of(file: &Path) -> Self {
        match std::fs::read(file) {
            Ok(bytes) => {
                let mut h = DefaultHasher::new();
                h.write(&bytes);
                Self(Some((bytes.len() as u64, h.finish())))
            }
            Err(_) => Self(None),
        }
    }

    /// Whether the file could be read.
    pub fn is_readable(&self) -> bool {
        self.0.is_some()
    }
}

/// A directory watcher; dropping it stops the watch.
pub struct DirWatch {
    _watcher: RecommendedWatcher,
    rx: mpsc::Receiver<()>,
}

impl DirWatch {
    /// Watches the directory of `file`. An error (no inotify instances left, a directory that
    /// cannot be watched) is returned so the caller can fall back to polling alone.
    pub fn new(file: &Path) -> notify::Result<Self> {
        let dir = watched_dir(file);
        let (tx, rx) = mpsc::channel(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    // A full queue already holds a "look again".
                    let _ = tx.try_send(());
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(Self {
            _watcher: watcher,
            rx,
        })
    }

    /// Resolves after a change in the directory, once it has been quiet for [`DEBOUNCE`].
    pub async fn changed(&mut self) {
        if self.rx.recv().await.is_none() {
            // The watcher thread is gone: never resolve again (polling still works).
            std::future::pending::<()>().await;
        }
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, self.rx.recv()).await {}
    }
}

/// The directory holding `file` (`.` for a bare file name).
pub fn watched_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_the_bytes_not_the_mtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.conf");
        assert!(!Fingerprint::of(&f).is_readable());
        std::fs::write(&f, "a1.sources = r1\n").expect("write");
        let one = Fingerprint::of(&f);
        std::fs::write(&f, "a1.sources = r1\n").expect("write again");
        assert_eq!(Fingerprint::of(&f), one, "same bytes, same fingerprint");
        std::fs::write(&f, "a1.sources = r2\n").expect("write");
        assert_ne!(Fingerprint::of(&f), one, "same length, other bytes");
    }

    #[test]
    fn a_bare_file_name_is_watched_in_the_current_directory() {
        assert_eq!(watched_dir(Path::new("a.conf")), PathBuf::from("."));
        assert_eq!(watched_dir(Path::new("conf/a.conf")), PathBuf::from("conf"));
    }

    #[tokio::test]
    async fn a_rename_over_the_file_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.conf");
        std::fs::write(&f, "one\n").expect("write");
        let mut w = DirWatch::new(&f).expect("watch");
        let tmp = dir.path().join(".a.conf.swp");
        std::fs::write(&tmp, "two\n").expect("write");
        std::fs::rename(&tmp, &f).expect("rename");
        tokio::time::timeout(Duration::from_secs(10), w.changed())
            .await
            .expect("the rename is seen");
        assert_eq!(std::fs::read_to_string(&f).expect("read"), "two\n");
    }
}
