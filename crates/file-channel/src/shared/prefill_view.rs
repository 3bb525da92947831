//! [`PrefillView`]: what the prefill thread may touch of the shared state — the sync gate its
//! `fdatasync`s hold, its own fsync counter, and poisoning when it hits a fatal error (with the
//! fsync error counted). It holds the state weakly, so it does not keep a closed channel alive.
//!
//! The prefill thread itself ([`crate::segment::prefill`]) knows nothing of [`Shared`]: this
//! view hands it exactly those three things when it starts.

use super::Shared;
use crate::error::PoisonCause;
use crate::segment::prefill::{OnFatal, Prefill, SyncGate};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

/// The prefill thread's view of the shared state; made once, when open starts the thread.
#[derive(Debug)]
pub(crate) struct PrefillView {
    gate: SyncGate,
    fsyncs: Arc<AtomicU64>,
    shared: Weak<Shared>,
}

impl PrefillView {
    pub(super) fn new(shared: &Arc<Shared>) -> Self {
        Self {
            gate: shared.sync_gate.clone(),
            fsyncs: shared.prefill_fsyncs.clone(),
            shared: Arc::downgrade(shared),
        }
    }

    /// Starts the prefill thread, keeping `ahead_bytes` filled beyond the writer's position.
    pub(crate) fn start(self, ahead_bytes: u64) -> std::io::Result<Prefill> {
        let weak = self.shared;
        let on_fatal: OnFatal = Box::new(move |cause: PoisonCause| {
            if let Some(shared) = weak.upgrade() {
                shared.metrics.fsync_error_count.fetch_add(1, Relaxed);
                shared.poison(cause);
            }
        });
        Prefill::start(ahead_bytes, self.gate, on_fatal, self.fsyncs)
    }
}
