//! The `memory` channel: Flume's `MemoryChannel`, with its transactions, limits and messages.
//!
//! Semantics, as in Flume:
//! - A put transaction buffers up to `transactionCapacity` events; room in the queue
//!   (`capacity`) and in the byte budget is reserved only at commit, each waiting up to
//!   `keep-alive` seconds, and a commit that cannot get room fails and puts nothing.
//! - A take transaction removes events from the head of the queue; they still count against
//!   `capacity` until the take commits. A rollback returns them to the head, in order.
//! - The byte budget counts event bodies in 100-byte slots (a body of 0–100 bytes is one slot):
//!   `byteCapacity × (1 − byteCapacityBufferPercentage/100) / 100` slots, unlimited if that is
//!   below one slot. Headers are not counted.
//! - Everything is lost when the process exits; use the `file` channel for durability.
//!
//! Differences from Flume: a take on an empty channel returns at once instead of waiting up to
//! `keep-alive` for an event (the sink runner waits for events instead, see
//! [`crate::runner`]), which takes away Flume's keep-alive delay on every partly filled sink
//! batch; a transaction may not mix puts and takes (Flume's memory channel allows it, no Flume
//! component does it, and our file channel refuses it); the default `byteCapacity` is 80 % of
//! the machine's memory (Flume: 80 % of the JVM heap).

use crate::config::context::Ctx;
use crate::metrics::{ChannelCounters, Metric, Value};
use file_channel::Event;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Bytes of body one byte-capacity slot stands for (Flume's `byteCapacitySlotSize`).
pub const BYTE_SLOT_BYTES: u64 = 100;

/// Configuration of a memory channel (Flume keys in the field docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryChannelConfig {
    /// Most events held. `capacity`. Default: 100.
    pub capacity: u64,
    /// Most events in one transaction. `transactionCapacity`. Default: 100.
    pub transaction_capacity: u32,
    /// Byte budget for bodies. `byteCapacity`. Default: 80 % of the machine's memory.
    pub byte_capacity: u64,
    /// Percentage of `byte_capacity` kept as a margin for headers and overhead.
    /// `byteCapacityBufferPercentage`. Default: 20.
    pub byte_capacity_buffer_percentage: u64,
    /// How long a commit waits for room. `keep-alive` (seconds there). Default: 3 s.
    pub keep_alive_ms: u64,
}

impl MemoryChannelConfig {
    /// Reads Flume's keys from `ctx`, recording problems there.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let capacity = ctx.u64_in("capacity", 100, 1..=u64::from(u32::MAX));
        let transaction_capacity = ctx.u32_in("transactionCapacity", 100, 1..=u32::MAX);
        if u64::from(transaction_capacity) > capacity {
            ctx.error(
                "transactionCapacity",
                format!(
                    "{transaction_capacity} is larger than capacity {capacity}: a full transaction could never fit"
                ),
            );
        }
        let byte_capacity = ctx.u64_in("byteCapacity", default_byte_capacity(), 0..=u64::MAX);
        let byte_capacity_buffer_percentage =
            ctx.u64_in("byteCapacityBufferPercentage", 20, 0..=100);
        let keep_alive_s = ctx.u64_in("keep-alive", 3, 0..=86_400);
        Self {
            capacity,
            transaction_capacity,
            byte_capacity,
            byte_capacity_buffer_percentage,
            keep_alive_ms: keep_alive_s * 1000,
        }
    }

    /// The byte budget in slots, as Flume computes it (`u64::MAX` for unlimited).
    pub fn byte_slots(&self) -> u64 {
        let usable =
            self.byte_capacity as f64 * (1.0 - self.byte_capacity_buffer_percentage as f64 * 0.01);
        let slots = (usable / BYTE_SLOT_BYTES as f64) as u64;
        if slots < 1 {
            u64::MAX
        } else {
            slots
        }
    }
}

impl Default for MemoryChannelConfig {
    fn default() -> Self {
        Self {
            capacity: 100,
            transaction_capacity: 100,
            byte_capacity: default_byte_capacity(),
            byte_capacity_buffer_percentage: 20,
            keep_alive_ms: 3000,
        }
    }
}

/// 80 % of `MemTotal` from `/proc/meminfo`; unlimited if that cannot be read.
fn default_byte_capacity() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024 / 10 * 8)
}

/// Slots an event occupies: its body in 100-byte units, at least one.
pub fn event_slots(event: &Event) -> u64 {
    (event.body.len().max(1) as u64).div_ceil(BYTE_SLOT_BYTES)
}

/// Why a memory-channel operation failed. Messages are Flume's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The transaction already holds `transactionCapacity` puts.
    #[error("Put queue for MemoryTransaction of capacity {0} full, consider committing more frequently, increasing capacity or increasing thread count")]
    PutListFull(u32),
    /// The transaction already holds `transactionCapacity` takes.
    #[error("Take list for MemoryTransaction, capacity {0} full, consider committing more frequently, increasing capacity, or increasing thread count")]
    TakeListFull(u32),
    /// No byte budget appeared within keep-alive.
    #[error("Cannot commit transaction. Byte capacity allocated to store event body {0} reached. Please increase heap space/byte capacity allocated to the channel as the sinks may not be keeping up with the sources")]
    ByteCapacityFull(u64),
    /// No room in the queue appeared within keep-alive.
    #[error("Space for commit to queue couldn't be acquired. Sinks are likely not keeping up with sources, or the buffer size is too tight")]
    ChannelFull,
    /// Puts and takes in one transaction.
    #[error("cannot mix puts and takes in one transaction")]
    MixedTransaction,
    /// The channel was closed.
    #[error("channel is closed")]
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Event>,
    /// capacity − queued − taken-but-uncommitted.
    queue_remaining: u64,
    bytes_remaining: u64,
}

#[derive(Debug)]
struct Shared {
    config: MemoryChannelConfig,
    byte_slots: u64,
    state: Mutex<State>,
    /// Signalled when room or byte budget appears.
    space: Condvar,
    /// Signalled when events are queued.
    stored: Condvar,
    counters: ChannelCounters,
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A memory channel. Cloning shares it.
#[derive(Clone, Debug)]
pub struct MemoryChannel {
    shared: Arc<Shared>,
}

impl MemoryChannel {
    /// A new, empty channel.
    pub fn new(config: MemoryChannelConfig) -> Self {
        let byte_slots = config.byte_slots();
        let counters = ChannelCounters::default();
        counters.channel_capacity.store(config.capacity, Relaxed);
        counters.lifetime.started();
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    queue_remaining: config.capacity,
                    bytes_remaining: byte_slots,
                }),
                byte_slots,
                config,
                space: Condvar::new(),
                stored: Condvar::new(),
                counters,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Starts a transaction.
    pub fn transaction(&self) -> MemoryTransaction {
        MemoryTransaction {
            shared: self.shared.clone(),
            puts: Vec::new(),
            put_slots: 0,
            takes: Vec::new(),
            take_slots: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MemoryChannelConfig {
        &self.shared.config
    }

    /// Events queued.
    pub fn len(&self) -> u64 {
        self.shared.lock().queue.len() as u64
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits up to `timeout` for an event to be queued; returns whether one is.
    pub fn wait_for_events(&self, timeout: Duration) -> bool {
        let s = &*self.shared;
        wait_for(s, &s.stored, s.lock(), timeout, |st| !st.queue.is_empty()).is_ok()
    }

    /// Flume's channel counters, plus `ChannelFillPercentage`.
    pub fn metrics(&self) -> Vec<Metric> {
        let c = &self.shared.counters;
        let mut v = c.snapshot();
        let size = c.channel_size.load(Relaxed) as f64;
        v.push(Metric {
            name: "ChannelFillPercentage",
            value: Value::Ratio(size * 100.0 / self.shared.config.capacity as f64),
        });
        v
    }

    /// Refuses further work and wakes every waiter; returns the events that are lost.
    pub fn close(&self) -> u64 {
        self.shared.closed.store(true, SeqCst);
        let st = self.shared.lock();
        self.shared.space.notify_all();
        self.shared.stored.notify_all();
        self.shared.counters.lifetime.stopped();
        st.queue.len() as u64
    }
}

/// A transaction on a [`MemoryChannel`]; dropping it unfinished rolls it back.
#[derive(Debug)]
pub struct MemoryTransaction {
    shared: Arc<Shared>,
    puts: Vec<Event>,
    put_slots: u64,
    takes: Vec<Event>,
    take_slots: u64,
}

impl MemoryTransaction {
    /// Adds an event to the transaction (room is reserved at commit).
    pub fn put(&mut self, event: &Event) -> Result<(), MemoryError> {
        let s = &self.shared;
        s.counters.event_put_attempt_count.fetch_add(1, Relaxed);
        if s.closed.load(SeqCst) {
            return Err(MemoryError::Closed);
        }
        if !self.takes.is_empty() {
            return Err(MemoryError::MixedTransaction);
        }
        let cap = s.config.transaction_capacity;
        if self.puts.len() >= cap as usize {
            return Err(MemoryError::PutListFull(cap));
        }
        self.put_slots += event_slots(event);
        self.puts.push(event.clone());
        Ok(())
    }

    /// Takes the head of the queue, or `None` if it is empty.
    pub fn take(&mut self) -> Result<Option<Event>, MemoryError> {
        self.take_timeout(Duration::ZERO)
    }

    /// Takes the head of the queue, waiting up to `wait` for an event to be stored; `None` if
    /// none came.
    pub fn take_timeout(&mut self, wait: Duration) -> Result<Option<Event>, MemoryError> {
        let s = &self.shared;
        s.counters.event_take_attempt_count.fetch_add(1, Relaxed);
        if s.closed.load(SeqCst) {
            return Err(MemoryError::Closed);
        }
        if !self.puts.is_empty() {
            return Err(MemoryError::MixedTransaction);
        }
        let cap = s.config.transaction_capacity;
        if self.takes.len() >= cap as usize {
            return Err(MemoryError::TakeListFull(cap));
        }
        let mut st = match wait_for(s, &s.stored, s.lock(), wait, |st| !st.queue.is_empty()) {
            Ok(st) => st,
            Err(None) => return Ok(None),
            Err(Some(e)) => return Err(e),
        };
        let Some(event) = st.queue.pop_front() else {
            return Ok(None);
        };
        drop(st);
        self.take_slots += event_slots(&event);
        self.takes.push(event.clone());
        Ok(Some(event))
    }

    /// Events put or taken so far.
    pub fn len(&self) -> usize {
        self.puts.len() + self.takes.len()
    }

    /// Whether nothing was put or taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Commits: puts wait up to keep-alive for byte budget, then up to keep-alive for room.
    pub fn commit(mut self) -> Result<(), MemoryError> {
        let shared = self.shared.clone();
        let s = &*shared;
        let puts = std::mem::take(&mut self.puts);
        let takes = std::mem::take(&mut self.takes);
        let keep_alive = Duration::from_millis(s.config.keep_alive_ms);
        if !puts.is_empty() {
            let n = puts.len() as u64;
            let slots = self.put_slots;
            let mut st = s.lock();
            st = match wait_for(s, &s.space, st, keep_alive, |st| {
                st.bytes_remaining >= slots
            }) {
                Ok(st) => st,
                Err(e) => {
                    return Err(e.unwrap_or(MemoryError::ByteCapacityFull(
                        s.byte_slots.saturating_mul(BYTE_SLOT_BYTES),
                    )))
                }
            };
            st.bytes_remaining -= slots;
            st = match wait_for(s, &s.space, st, keep_alive, |st| st.queue_remaining >= n) {
                Ok(st) => st,
                Err(e) => {
                    let mut st = s.lock();
                    st.bytes_remaining += slots;
                    drop(st);
                    s.space.notify_all();
                    return Err(e.unwrap_or(MemoryError::ChannelFull));
                }
            };
            st.queue_remaining -= n;
            st.queue.extend(puts);
            s.counters
                .channel_size
                .store(st.queue.len() as u64, Relaxed);
            drop(st);
            s.stored.notify_all();
            s.counters.event_put_success_count.fetch_add(n, Relaxed);
        }
        if !takes.is_empty() {
            let n = takes.len() as u64;
            let mut st = s.lock();
            st.queue_remaining += n;
            st.bytes_remaining = st.bytes_remaining.saturating_add(self.take_slots);
            s.counters
                .channel_size
                .store(st.queue.len() as u64, Relaxed);
            drop(st);
            s.space.notify_all();
            s.counters.event_take_success_count.fetch_add(n, Relaxed);
        }
        Ok(())
    }

    /// Rolls back: puts are discarded, takes return to the head of the queue in order.
    pub fn rollback(mut self) {
        self.rollback_in_place();
    }

    fn rollback_in_place(&mut self) {
        self.puts.clear();
        self.put_slots = 0;
        if self.takes.is_empty() {
            return;
        }
        let mut st = self.shared.lock();
        for e in self.takes.drain(..).rev() {
            st.queue.push_front(e);
        }
        self.take_slots = 0;
        drop(st);
        self.shared.stored.notify_all();
    }
}

impl Drop for MemoryTransaction {
    fn drop(&mut self) {
        self.rollback_in_place();
    }
}

/// Waits on `cond` (`space` for room, `stored` for events) until `ok` holds; `Err(None)` on
/// timeout, `Err(Some(Closed))` if closed.
fn wait_for<'a>(
    s: &'a Shared,
    cond: &Condvar,
    mut st: MutexGuard<'a, State>,
    timeout: Duration,
    ok: impl Fn(&State) -> bool,
) -> Result<MutexGuard<'a, State>, Option<MemoryError>> {
    let deadline = Instant::now() + timeout;
    loop {
        if ok(&st) {
            return Ok(st);
        }
        if s.closed.load(SeqCst) {
            return Err(Some(MemoryError::Closed));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(None);
        }
        st = cond
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests;
