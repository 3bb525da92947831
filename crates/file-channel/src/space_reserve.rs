//! The free-space reserve: puts are refused while a channel directory has less than
//! `minimum_required_space` free, so a full disk still leaves room to drain (takes go on).
//!
//! The verdict is cached: the writer refreshes it between batches, a write that fails with
//! ENOSPC sets it at once, and a put that finds it "low" and older than
//! [`SPACE_RECHECK_AFTER`] checks again itself, so the channel accepts puts again soon after
//! space comes back even when nothing is being written.

use crate::config::ChannelConfig;
use crate::metrics::ChannelMetrics;
use crate::storage::Storage;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How stale a "space is low" verdict may be before a put checks again itself.
const SPACE_RECHECK_AFTER: Duration = Duration::from_secs(1);

/// A directory short of space.
#[derive(Clone, Debug)]
pub(crate) struct SpaceLow {
    pub dir: PathBuf,
    pub available: u64,
}

/// The last free-space check.
#[derive(Debug)]
struct SpaceCheck {
    at: Instant,
    low: Option<SpaceLow>,
}

/// The cached verdict on free space.
#[derive(Debug)]
pub(crate) struct SpaceReserve {
    /// Whether every directory had at least `minimum_required_space` free at the last check.
    ok: AtomicBool,
    last: Mutex<SpaceCheck>,
}

impl Default for SpaceReserve {
    fn default() -> Self {
        Self {
            ok: AtomicBool::new(true),
            last: Mutex::new(SpaceCheck {
                at: Instant::now(),
                low: None,
            }),
        }
    }
}

impl SpaceReserve {
    /// Checks the free space of the channel and data directories now.
    pub(crate) fn refresh(
        &self,
        storage: &dyn Storage,
        config: &ChannelConfig,
        metrics: &ChannelMetrics,
    ) -> Option<SpaceLow> {
        let required = config.minimum_required_space;
        let mut low = None;
        if required > 0 {
            for dir in std::iter::once(&config.dir).chain(config.data_dirs.iter()) {
                match storage.available_space(dir) {
                    Ok(available) if available < required => {
                        low = Some(SpaceLow {
                            dir: dir.clone(),
                            available,
                        });
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot read free space")
                    }
                }
            }
        }
        let was_ok = self.ok.swap(low.is_none(), SeqCst);
        metrics
            .disk_space_low
            .store(u64::from(low.is_some()), Relaxed);
        match (&low, was_ok) {
            (Some(l), true) => {
                tracing::error!(dir = %l.dir.display(), available = l.available, required,
                "free space below minimum_required_space: refusing puts, takes continue")
            }
            (None, false) => {
                tracing::info!("free space is back above minimum_required_space: accepting puts")
            }
            _ => {}
        }
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.at = Instant::now();
        last.low = low.clone();
        low
    }

    /// Whether puts must be refused for lack of space (re-checking a stale verdict).
    pub(crate) fn low(
        &self,
        storage: &dyn Storage,
        config: &ChannelConfig,
        metrics: &ChannelMetrics,
    ) -> Option<SpaceLow> {
        if self.ok.load(Relaxed) {
            return None;
        }
        {
            let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.at.elapsed() < SPACE_RECHECK_AFTER {
                return last.low.clone();
            }
        }
        self.refresh(storage, config, metrics)
    }

    /// A write just failed with ENOSPC: refuse puts until a check says otherwise.
    pub(crate) fn note_no_space(
        &self,
        storage: &dyn Storage,
        config: &ChannelConfig,
        metrics: &ChannelMetrics,
    ) {
        let dir = config.dir.clone();
        let available = storage.available_space(&dir).unwrap_or(0);
        self.ok.store(false, SeqCst);
        metrics.disk_space_low.store(1, Relaxed);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.at = Instant::now();
        last.low = Some(SpaceLow { dir, available });
    }
}
