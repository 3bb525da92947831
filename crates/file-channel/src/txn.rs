//! [`Transaction`]: Flume's put and take transactions.
//!
//! A transaction becomes a put or a take transaction with its first operation; the other kind
//! is then refused. A put transaction reserves room for each event as it is put (waiting up to
//! keep-alive) and encodes it straight into the record it will commit, so nothing of an
//! uncommitted transaction ever touches the disk. A take transaction remembers what it took;
//! committing writes one small record of consumed ranges, rolling back returns the events to the
//! head of the queue. Dropping an unfinished transaction rolls it back.

use crate::error::{CommitError, FullLimit, PutError, TakeError};
use crate::format::event;
use crate::format::record::{align_up, PendingRecord, RecordKind, TakePayload};
use crate::queue::{NoRoom, Taken};
use crate::running::Running;
use crate::shared::TxnView;
use crate::take_inbox::Poke;
use crate::writer::{Completion, Request};
use crate::Event;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Kind {
    Fresh,
    Put {
        record: PendingRecord,
        count: u32,
        bytes: u64,
    },
    Take {
        taken: Vec<Taken>,
    },
}

/// A put or take transaction on a [`crate::FileChannel`].
#[derive(Debug)]
pub struct Transaction {
    running: Arc<Running>,
    txn_id: u64,
    kind: Kind,
}

impl Transaction {
    pub(crate) fn new(running: Arc<Running>) -> Self {
        let txn_id = running.txn_view().new_txn_id();
        Self {
            running,
            txn_id,
            kind: Kind::Fresh,
        }
    }

    /// Events put or taken so far.
    pub fn len(&self) -> usize {
        match &self.kind {
            Kind::Fresh => 0,
            Kind::Put { count, .. } => *count as usize,
            Kind::Take { taken } => taken.len(),
        }
    }

    /// Whether nothing was put or taken yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The transaction id (stored in its record).
    pub fn id(&self) -> u64 {
        self.txn_id
    }

    /// Adds an event. Waits up to keep-alive for room; fails with
    /// [`PutError::ChannelFull`] naming the limit if none appears.
    pub fn put(&mut self, event: &Event) -> Result<(), PutError> {
        let shared = self.running.txn_view();
        shared
            .metrics()
            .event_put_attempt_count
            .fetch_add(1, Relaxed);
        if let Some(p) = shared.poisoned() {
            return Err(p.into());
        }
        if shared.is_closed() {
            return Err(PutError::Closed);
        }
        let len = event::check(event)?;
        if let Some(low) = shared.space_low() {
            shared
                .metrics()
                .put_refused_no_space_count
                .fetch_add(1, Relaxed);
            return Err(PutError::InsufficientSpace {
                dir: low.dir,
                available: low.available,
                required: shared.config().minimum_required_space,
            });
        }
        if matches!(self.kind, Kind::Fresh) {
            // Sized like the last put record, so a big transaction does not grow (and copy)
            // its buffer a dozen times.
            let capacity = shared.put_record_bytes_hint();
            self.kind = Kind::Put {
                record: PendingRecord::with_capacity(RecordKind::Put, self.txn_id, capacity),
                count: 0,
                bytes: 0,
            };
        }
        let Kind::Put {
            record,
            count,
            bytes,
        } = &mut self.kind
        else {
            return Err(PutError::MixedTransaction);
        };
        let cap = shared.config().transaction_capacity;
        if *count >= cap {
            return Err(PutError::TransactionFull { capacity: cap });
        }
        let would_be = align_up(record.len() + len);
        if would_be > shared.record_bytes_max() {
            return Err(PutError::TransactionTooLarge {
                bytes: would_be,
                limit: shared.record_bytes_max(),
            });
        }
        reserve(shared, len)?;
        event::encode_into(event, &mut record.bytes);
        if !shared.encrypts() {
            record.fold_payload();
        }
        *count += 1;
        *bytes += len;
        Ok(())
    }

    /// The sequence numbers of the events taken so far, in the order they were taken (empty
    /// for a put transaction).
    ///
    /// The channel numbers every event it stores once and never reuses a number within one
    /// channel ([`crate::FileChannel::channel_id`]). An event delivered again — after a
    /// rollback, or after a crash that lost a take commit which was not yet durable — comes
    /// back with the same number, so a sink that records the numbers it wrote can recognise
    /// and count a duplicate.
    pub fn taken_seqs(&self) -> Vec<u64> {
        match &self.kind {
            Kind::Take { taken } => taken.iter().map(|t| t.seq).collect(),
            Kind::Fresh | Kind::Put { .. } => Vec::new(),
        }
    }

    /// Takes the next event without waiting; `None` if the channel has nothing visible.
    pub fn take(&mut self) -> Result<Option<Event>, TakeError> {
        self.take_timeout(Duration::ZERO)
    }

    /// Takes the next event, waiting up to `timeout` for one to become visible.
    pub fn take_timeout(&mut self, timeout: Duration) -> Result<Option<Event>, TakeError> {
        let running = self.running.clone();
        let shared = running.txn_view();
        shared
            .metrics()
            .event_take_attempt_count
            .fetch_add(1, Relaxed);
        if matches!(self.kind, Kind::Fresh) {
            self.kind = Kind::Take { taken: Vec::new() };
        }
        let Kind::Take { taken } = &mut self.kind else {
            return Err(TakeError::MixedTransaction);
        };
        let cap = shared.config().transaction_capacity;
        if taken.len() >= cap as usize {
            return Err(TakeError::TransactionFull { capacity: cap });
        }
        let deadline = Instant::now() + timeout;
        let ctx = shared.read_context();
        let mut st = shared.lock_queue();
        let result = loop {
            if let Some(p) = shared.poisoned() {
                break Err(p.into());
            }
            if shared.is_closed() {
                break Err(TakeError::Closed);
            }
            match st.pop_next(&ctx) {
                Ok(Some(t)) => {
                    let ev = t.event.clone();
                    taken.push(t);
                    break Ok(Some(ev));
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                break Ok(None);
            }
            st = shared.wait_not_empty(st, deadline - now);
        };
        let quarantine = st.take_quarantine_work();
        drop(st);
        if !quarantine.is_empty() {
            shared.quarantine(quarantine);
        }
        result
    }

    /// Commits. A put commit returns once its record is durable (per the sync policy); a take
    /// commit marks its events consumed and queues its record, which is made durable with the
    /// next put commit's sync or within `take_sync_interval_ms`.
    pub fn commit(self) -> Result<(), CommitError> {
        self.commit_submit()?.wait()
    }

    /// The first half of [`Transaction::commit`]: hands the commit to the writer and returns
    /// without waiting for its sync; [`PendingCommit::wait`] is the second half. A caller can
    /// build its next transaction meanwhile, and the writer's group commit lets one fsync
    /// cover both. Commits submitted one after another (from one thread, or ordered by the
    /// caller) reach the log, and become visible to takers, in the order they were submitted.
    /// A take commit (and an empty transaction) is complete when this returns.
    pub fn commit_submit(mut self) -> Result<PendingCommit, CommitError> {
        let kind = std::mem::replace(&mut self.kind, Kind::Fresh);
        let running = self.running.clone();
        let shared = running.txn_view();
        match kind {
            Kind::Fresh => Ok(PendingCommit::done()),
            Kind::Put {
                mut record,
                count,
                bytes,
            } => {
                if let Some(p) = shared.poisoned() {
                    return Err(put_failed(&running, count, bytes, p.into()));
                }
                record.event_count = count;
                shared.note_put_record_bytes(record.len());
                if !shared.encrypts() {
                    // Off the writer's critical path. An encrypted record's CRC covers its
                    // ciphertext, which only the writer makes.
                    record.seal_payload();
                }
                let done = Completion::new();
                let req = Request::Put {
                    record,
                    done: done.clone(),
                };
                shared.put_commit_queued();
                if running.send(req).is_err() {
                    shared.put_commit_unqueued();
                    let e = self.closed_error();
                    return Err(put_failed(&running, count, bytes, e));
                }
                Ok(PendingCommit {
                    put: Some(PendingPut {
                        running,
                        done,
                        count,
                        bytes,
                    }),
                })
            }
            Kind::Take { taken } => {
                if let Some(p) = shared.poisoned() {
                    self.give_back(taken);
                    return Err(p.into());
                }
                if taken.is_empty() {
                    return Ok(PendingCommit::done());
                }
                let mut seqs: Vec<u64> = taken.iter().map(|t| t.seq).collect();
                seqs.sort_unstable();
                let mut ranges: Vec<(u64, u64)> = Vec::new();
                for s in seqs {
                    match ranges.last_mut() {
                        Some((_, e)) if *e == s => *e += 1,
                        _ => ranges.push((s, s + 1)),
                    }
                }
                let n = taken.len() as u64;
                let bytes: u64 = taken.iter().map(|t| t.bytes).sum();
                let mut record = PendingRecord::new(RecordKind::Take, self.txn_id);
                record.first_seq = ranges[0].0;
                record.event_count = n as u32;
                TakePayload {
                    bytes,
                    ranges: ranges.clone(),
                }
                .encode_into(&mut record.bytes);
                record.seal_payload();
                shared
                    .lock_queue()
                    .consume(&ranges, n, bytes, shared.metrics());
                shared.notify_not_full();
                shared
                    .metrics()
                    .event_take_success_count
                    .fetch_add(n, Relaxed);
                // Nobody waits for the record: losing it in a crash only redelivers the events.
                // It waits in the inbox for the writer, which is poked only when needed.
                if shared.is_closed() {
                    return Err(self.closed_error());
                }
                let urgent = match shared.push_take(record) {
                    Poke::None => return Ok(PendingCommit::done()),
                    Poke::Linger => false,
                    Poke::Now => true,
                };
                if running.send(Request::TakesWaiting { urgent }).is_err() {
                    return Err(self.closed_error());
                }
                Ok(PendingCommit::done())
            }
        }
    }

    /// Rolls back: a put transaction's events are discarded, a take transaction's events
    /// return to the head of the queue and are taken again first.
    pub fn rollback(mut self) {
        self.rollback_in_place();
    }

    fn rollback_in_place(&mut self) {
        match std::mem::replace(&mut self.kind, Kind::Fresh) {
            Kind::Fresh => {}
            Kind::Put { count, bytes, .. } => {
                release(self.running.txn_view(), u64::from(count), bytes);
                self.running
                    .txn_view()
                    .metrics()
                    .put_rollback_count
                    .fetch_add(1, Relaxed);
            }
            Kind::Take { taken } => {
                if !taken.is_empty() {
                    self.running
                        .txn_view()
                        .metrics()
                        .take_rollback_count
                        .fetch_add(1, Relaxed);
                }
                self.give_back(taken);
            }
        }
    }

    fn give_back(&self, taken: Vec<Taken>) {
        if taken.is_empty() {
            return;
        }
        let shared = self.running.txn_view();
        shared.lock_queue().give_back(taken);
        shared.notify_not_empty();
    }

    fn closed_error(&self) -> CommitError {
        match self.running.txn_view().poisoned() {
            Some(p) => CommitError::Poisoned(p),
            None => CommitError::Closed,
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.rollback_in_place();
    }
}

/// A commit handed to the writer by [`Transaction::commit_submit`], not yet known durable.
/// [`PendingCommit::wait`] says how it ended; dropping it waits as well (and forgets the
/// answer), so a put's reserved room and its counters are settled either way.
#[derive(Debug)]
#[must_use = "a submitted commit is known durable only once waited for"]
pub struct PendingCommit {
    put: Option<PendingPut>,
}

#[derive(Debug)]
struct PendingPut {
    running: Arc<Running>,
    done: Arc<Completion>,
    count: u32,
    bytes: u64,
}

impl PendingCommit {
    fn done() -> Self {
        Self { put: None }
    }

    /// Waits until the commit is durable (per the sync policy): `Ok` exactly when
    /// [`Transaction::commit`] would have returned `Ok`.
    pub fn wait(mut self) -> Result<(), CommitError> {
        match self.put.take() {
            Some(put) => put.finish(),
            None => Ok(()),
        }
    }
}

impl Drop for PendingCommit {
    fn drop(&mut self) {
        if let Some(put) = self.put.take() {
            let _ = put.finish();
        }
    }
}

impl PendingPut {
    fn finish(self) -> Result<(), CommitError> {
        match self.done.wait() {
            Ok(()) => {
                self.running
                    .txn_view()
                    .metrics()
                    .event_put_success_count
                    .fetch_add(u64::from(self.count), Relaxed);
                Ok(())
            }
            Err(e) => Err(put_failed(&self.running, self.count, self.bytes, e)),
        }
    }
}

/// A put commit that failed: its reserved room is returned and it counts as rolled back.
fn put_failed(running: &Running, count: u32, bytes: u64, e: CommitError) -> CommitError {
    release(running.txn_view(), u64::from(count), bytes);
    running
        .txn_view()
        .metrics()
        .put_rollback_count
        .fetch_add(1, Relaxed);
    e
}

/// Reserves room for one event of `len` bytes, waiting up to keep-alive.
fn reserve(shared: TxnView<'_>, len: u64) -> Result<(), PutError> {
    let cfg = shared.config();
    let bytes_max = cfg.bytes_max.unwrap_or(u64::MAX);
    let mut st = shared.lock_queue();
    // Fast path: room is there (no clock read, no waiting).
    if st.try_reserve(len, cfg.capacity, bytes_max).is_ok() {
        return Ok(());
    }
    let started = Instant::now();
    let deadline = started + Duration::from_millis(cfg.keep_alive_ms);
    loop {
        let no_room = match st.try_reserve(len, cfg.capacity, bytes_max) {
            Ok(()) => return Ok(()),
            Err(no_room) => no_room,
        };
        if let Some(p) = shared.poisoned() {
            return Err(p.into());
        }
        if shared.is_closed() {
            return Err(PutError::Closed);
        }
        let now = Instant::now();
        if now >= deadline {
            shared.metrics().channel_full_count.fetch_add(1, Relaxed);
            let limit = match no_room {
                NoRoom::Bytes => FullLimit::Bytes(bytes_max),
                NoRoom::Events => FullLimit::Capacity(cfg.capacity),
            };
            tracing::debug!(%limit, "put refused: channel full");
            return Err(PutError::ChannelFull {
                limit,
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
        st = shared.wait_not_full(st, deadline - now);
    }
}

/// Returns reserved room (rolled-back or failed puts).
fn release(shared: TxnView<'_>, events: u64, bytes: u64) {
    if events == 0 {
        return;
    }
    shared.lock_queue().release(events, bytes);
    shared.notify_not_full();
}
