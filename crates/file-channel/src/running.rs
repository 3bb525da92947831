//! [`Running`]: a channel while it is open — its shared state, the writer and checkpoint
//! threads, the directory lock — and how it stops.
//!
//! The channel handle and every transaction hold it; when the last one lets go (or on
//! [`crate::FileChannel::close`]) it asks the writer for a final sync, joins both threads and
//! releases the lock.

use crate::error::{CloseError, PoisonCause, Poisoned};
use crate::open_report::OpenReport;
use crate::shared::{HandleView, Shared, TxnView};
use crate::storage::LockGuard;
use crate::writer::{Completion, Request};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// An open channel's state and threads.
#[derive(Debug)]
pub(crate) struct Running {
    shared: Arc<Shared>,
    sender: Mutex<Option<Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    lock: Mutex<Option<Box<dyn LockGuard>>>,
    channel_id: u64,
    report: OpenReport,
}

/// The parts of a running channel that open assembles.
pub(crate) struct RunningParts {
    pub shared: Arc<Shared>,
    pub sender: Sender<Request>,
    pub writer: JoinHandle<()>,
    pub checkpointer: JoinHandle<()>,
    pub lock: Box<dyn LockGuard>,
    pub channel_id: u64,
    pub report: OpenReport,
}

impl Running {
    pub(crate) fn new(parts: RunningParts) -> Self {
        Self {
            shared: parts.shared,
            sender: Mutex::new(Some(parts.sender)),
            writer: Mutex::new(Some(parts.writer)),
            checkpointer: Mutex::new(Some(parts.checkpointer)),
            lock: Mutex::new(Some(parts.lock)),
            channel_id: parts.channel_id,
            report: parts.report,
        }
    }

    /// The channel handle's view of the shared state.
    pub(crate) fn handle_view(&self) -> HandleView<'_> {
        self.shared.handle_view()
    }

    /// A transaction's view of the shared state.
    pub(crate) fn txn_view(&self) -> TxnView<'_> {
        self.shared.txn_view()
    }

    /// The channel's id (in every segment header).
    pub(crate) fn channel_id(&self) -> u64 {
        self.channel_id
    }

    /// What opening found and did.
    pub(crate) fn report(&self) -> &OpenReport {
        &self.report
    }

    /// Queues work for the writer; fails when the writer has stopped.
    pub(crate) fn send(&self, req: Request) -> Result<(), Request> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        match sender.as_ref() {
            Some(s) => s.send(req).map_err(|e| e.0),
            None => Err(req),
        }
    }

    /// Syncs, stops the threads and releases the lock (once; later calls do nothing).
    pub(crate) fn shutdown(&self) -> Result<(), CloseError> {
        if !self.shared.close() {
            return Ok(());
        }
        let done = Completion::new();
        let sent = self.send(Request::Shutdown { done: done.clone() }).is_ok();
        let result = if sent { done.wait() } else { Ok(()) };
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
        self.shared.lock_queue().stop_ahead();
        // The writer held the checkpoint thread's only sender: it ends once its queue drains.
        if let Some(t) = self
            .checkpointer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
        self.lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        tracing::info!(dir = %self.shared.config().dir.display(), "channel closed");
        match result {
            Ok(()) => Ok(()),
            Err(_) => {
                Err(CloseError::Poisoned(self.shared.poisoned().unwrap_or_else(
                    || Poisoned::from(PoisonCause::FinalSyncFailed),
                )))
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
