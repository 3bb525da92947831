//! [`CheckpointView`]: what the checkpoint thread and segment deletion may touch of the shared
//! state — the storage (checkpoint files, segment unlinks), the channel directory, the segment
//! registry (to forget deleted segments), directory fsyncs under the sync gate (which poison
//! on failure), the poison (no deletion without a checkpoint once poisoned) and the counters.
//! Never the queue: the writer hands the thread a snapshot of it.

use super::Shared;
use crate::error::Poisoned;
use crate::metrics::ChannelMetrics;
use crate::segment::SegmentSet;
use crate::storage::DynStorage;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The checkpoint thread's view of the shared state; made once, when open starts the thread.
#[derive(Debug)]
pub(crate) struct CheckpointView {
    shared: Arc<Shared>,
}

impl CheckpointView {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The channel directory (where checkpoints live).
    pub(crate) fn dir(&self) -> &Path {
        &self.shared.config.dir
    }

    /// The file system.
    pub(crate) fn storage(&self) -> &DynStorage {
        self.shared.storage()
    }

    /// The open segment files.
    pub(crate) fn segments(&self) -> &SegmentSet {
        &self.shared.segments
    }

    /// The channel's counters.
    pub(crate) fn metrics(&self) -> &ChannelMetrics {
        &self.shared.metrics
    }

    /// The poison reason, if the channel is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Poisoned> {
        self.shared.poisoned()
    }

    /// Fsyncs directory `dir` under the sync gate; a failure poisons the channel.
    pub(crate) fn sync_dir_gated(&self, dir: &Path) -> io::Result<()> {
        self.shared.sync_dir_gated(dir)
    }
}
