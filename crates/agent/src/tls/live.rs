//! A TLS configuration that follows its files: [`Live::current`] looks at the watched files'
//! (modification time, size, inode) at most once per [`CHECK_INTERVAL`], and when one changed
//! rebuilds the configuration. A rebuild that fails keeps the previous configuration, is
//! counted, and is logged at most once per [`ERROR_LOG_INTERVAL`]; it is tried again only when
//! a file changes again (a half-written file changes again when the writer finishes).

use super::TlsError;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// How often the files are looked at, at most.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often a failing reload is logged, at most.
pub const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What identifies one version of a file without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

type Build<T> = dyn Fn() -> Result<T, TlsError> + Send + Sync;

struct State<T> {
    current: Arc<T>,
    stamps: Vec<Option<Stamp>>,
    next_check: Instant,
    last_error_log: Option<Instant>,
}

/// The configuration built from `files`, rebuilt when they change.
pub(crate) struct Live<T> {
    what: String,
    files: Vec<PathBuf>,
    build: Box<Build<T>>,
    state: Mutex<State<T>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl<T> fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("what", &self.what)
            .field("files", &self.files)
            .field("reloads", &self.reloads.load(Ordering::Relaxed))
            .field(
                "reload_failures",
                &self.reload_failures.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl<T> Live<T> {
    /// Serves `first` (built by the caller, whose errors are start-up errors) and watches
    /// `files`, rebuilding with `build` when they change. `what` names the component in log lines.
    pub fn new(
        what: String,
        files: Vec<PathBuf>,
        first: T,
        build: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Live<T> {
        let stamps = files.iter().map(stamp).collect();
        let current = Arc::new(first);
        Live {
            what,
            files,
            build: Box::new(build),
            state: Mutex::new(State {
                current,
                stamps,
                next_check: Instant::now() + CHECK_INTERVAL,
                last_error_log: None,
            }),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }

    /// The configuration for the next connection, rebuilt first if a file changed.
    pub fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if self.files.is_empty() || now < state.next_check {
            return Arc::clone(&state.current);
        }
        state.next_check = now + CHECK_INTERVAL;
        let stamps: Vec<Option<Stamp>> = self.files.iter().map(stamp).collect();
        if stamps == state.stamps {
            return Arc::clone(&state.current);
        }
        state.stamps = stamps;
        match (self.build)() {
            Ok(config) => {
                state.current = Arc::new(config);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "{}: TLS files changed; new connections use the reloaded certificates",
                    self.what
                );
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                if state
                    .last_error_log
                    .is_none_or(|t| now.duration_since(t) >= ERROR_LOG_INTERVAL)
                {
                    state.last_error_log = Some(now);
                    tracing::error!(
                        "{}: TLS files changed but cannot be loaded ({e}); keeping the previous certificates",
                        self.what
                    );
                }
            }
        }
        Arc::clone(&state.current)
    }

    /// Successful reloads since start.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Failed reloads since start.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(path: &Path) -> Result<String, TlsError> {
        let text = std::fs::read_to_string(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
        if text.starts_with("bad") {
            return Err(TlsError::UnknownFormat {
                path: path.to_owned(),
            });
        }
        Ok(text)
    }

    /// A `Live` over one text file.
    fn live_over(path: &Path) -> Live<String> {
        let p = path.to_owned();
        let first = read(path).expect("first");
        Live::new("test".into(), vec![path.to_owned()], first, move || {
            read(&p)
        })
    }

    /// Moves the next check to now (`due`) or far away, instead of sleeping.
    fn set_due(live: &Live<String>, due: bool) {
        let mut state = live.state.lock().expect("lock");
        state.next_check = if due {
            Instant::now()
        } else {
            Instant::now() + Duration::from_secs(3600)
        };
    }

    fn replace(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, path).expect("rename");
    }

    #[test]
    fn a_changed_file_is_seen_at_the_next_check_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cert");
        std::fs::write(&path, "one").expect("write");
        let live = live_over(&path);
        replace(&path, "two");
        set_due(&live, false);
        assert_eq!(
            *live.current(),
            "one",
            "not looked at before the check is due"
        );
        set_due(&live, true);
        assert_eq!(*live.current(), "two");
        assert_eq!((live.reloads(), live.reload_failures()), (1, 0));
        set_due(&live, true);
        assert_eq!(*live.current(), "two");
        assert_eq!(live.reloads(), 1, "unchanged: not rebuilt");
    }

    #[test]
    fn a_failed_reload_keeps_the_previous_value_and_is_retried_only_after_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cert");
        std::fs::write(&path, "one").expect("write");
        let live = live_over(&path);
        replace(&path, "bad one");
        set_due(&live, true);
        assert_eq!(*live.current(), "one");
        set_due(&live, true);
        assert_eq!(*live.current(), "one");
        assert_eq!(
            live.reload_failures(),
            1,
            "the same bad file is not tried again"
        );
        std::fs::remove_file(&path).expect("remove");
        set_due(&live, true);
        assert_eq!(
            *live.current(),
            "one",
            "a vanished file keeps the old value too"
        );
        assert_eq!(live.reload_failures(), 2);
        replace(&path, "three");
        set_due(&live, true);
        assert_eq!(*live.current(), "three");
        assert_eq!((live.reloads(), live.reload_failures()), (1, 2));
    }

    /// A Kubernetes secret volume: `cert` → `..data/cert`, and `..data` → a dated directory
    /// that is swapped for a new one by renaming a new link over it.
    #[cfg(unix)]
    #[test]
    fn a_swapped_symbolic_link_is_seen() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for (version, text) in [("v1", "one"), ("v2", "two")] {
            std::fs::create_dir(d.join(version)).expect("mkdir");
            std::fs::write(d.join(version).join("cert"), text).expect("write");
        }
        symlink("v1", d.join("..data")).expect("link");
        symlink("..data/cert", d.join("cert")).expect("link");
        let live = live_over(&d.join("cert"));
        assert_eq!(*live.current(), "one");
        symlink("v2", d.join("..data_tmp")).expect("link");
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).expect("swap");
        set_due(&live, true);
        assert_eq!(*live.current(), "two");
    }
}
