//! Poisoning: the one-way switch that makes a channel refuse all work after a failure that left
//! its durability unknown (a failed fsync, a write that may have half happened).
//!
//! The first cause wins and is kept for every later refusal; a cheap flag lets the hot paths
//! check for it without taking the slot's lock. Waking the threads that wait on the queue is
//! the caller's part ([`crate::shared::Shared::poison`]), since the queue's condition variables
//! are not this module's.

use crate::error::{PoisonCause, Poisoned};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Mutex, PoisonError};

/// Where the first poison cause is kept.
#[derive(Debug, Default)]
pub(crate) struct PoisonSlot {
    first: Mutex<Option<Poisoned>>,
    /// Set once `first` is; read without the lock.
    set: AtomicBool,
}

impl PoisonSlot {
    /// Poisons with `cause` unless already poisoned; returns the cause in force (the first).
    pub(crate) fn poison(&self, cause: PoisonCause) -> Poisoned {
        let mut slot = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        let p = slot.get_or_insert_with(|| {
            tracing::error!(reason = %cause, "channel poisoned; it refuses all work until reopened");
            Poisoned::from(cause)
        });
        let p = p.clone();
        self.set.store(true, SeqCst);
        p
    }

    /// The poison in force, if any.
    pub(crate) fn get(&self) -> Option<Poisoned> {
        if !self.set.load(SeqCst) {
            return None;
        }
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
