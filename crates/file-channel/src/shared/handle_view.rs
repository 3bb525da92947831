//! [`HandleView`]: what the channel handle ([`crate::FileChannel`]) may touch of the shared
//! state — it only reports (lengths, counters and gauges, config, poison) and waits for events;
//! it never changes the queue, the segments or the poison.

use super::Shared;
use crate::config::ChannelConfig;
use crate::error::Poisoned;
use crate::metrics::ChannelMetrics;
use crate::queue::QueueState;
use crate::segment::SegmentSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::MutexGuard;
use std::time::Duration;

/// The channel handle's view of the shared state: a borrowed reference, made per call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HandleView<'a> {
    shared: &'a Shared,
}

impl<'a> HandleView<'a> {
    pub(super) fn new(shared: &'a Shared) -> Self {
        Self { shared }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &'a ChannelConfig {
        &self.shared.config
    }

    /// The channel's counters.
    pub(crate) fn metrics(&self) -> &'a ChannelMetrics {
        &self.shared.metrics
    }

    /// The open segment files (for the bytes-on-disk gauge).
    pub(crate) fn segments(&self) -> &'a SegmentSet {
        &self.shared.segments
    }

    /// fdatasyncs issued by the prefill thread so far.
    pub(crate) fn prefill_fsyncs(&self) -> u64 {
        self.shared.prefill_fsyncs.load(Relaxed)
    }

    /// Put commits sent to the writer and not yet received by it.
    pub(crate) fn put_commits_queued(&self) -> u64 {
        self.shared.put_commits_queued.load(Relaxed)
    }

    /// The poison reason, if the channel is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Poisoned> {
        self.shared.poisoned()
    }

    /// The queue, locked (to read its lengths).
    pub(crate) fn lock_queue(&self) -> MutexGuard<'a, QueueState> {
        self.shared.lock_queue()
    }

    /// Waits up to `timeout` for events to become visible (or come back).
    pub(crate) fn wait_not_empty<'q>(
        &self,
        queue: MutexGuard<'q, QueueState>,
        timeout: Duration,
    ) -> MutexGuard<'q, QueueState> {
        self.shared.wait_not_empty(queue, timeout)
    }
}
