//! [`ChannelProcessor`]: how a source puts events (Flume's class of the same name). It runs the
//! interceptor chain, asks the selector which channels each event goes to, and puts each
//! channel's share of the batch in one transaction per channel.
//!
//! Required channels are written in order on the caller's thread; the first failure rolls back
//! that channel's transaction and is returned, so the source can tell its client. As in Flume,
//! channels committed before the failure keep their events (a retry duplicates them there).
//! Optional channels are written by one background thread per source through a queue of
//! [`OPTIONAL_QUEUE_LEN`] batches; when it is full a batch is dropped and counted, as Flume's
//! `DiscardPolicy` does, so a slow optional channel never slows the source.
//!
//! A live reload re-binds a running source in place ([`ChannelProcessor::rebind`]): the
//! interceptors, selector and channels are swapped between two puts, so the source keeps its
//! sockets and its clients.
//!
//! An event the selector sends nowhere (a multiplexing selector without `selector.default`, an
//! unmatched header, no optional channel) is dropped as Flume drops it, and counted in the
//! source's `EventUnroutedCount` once [`ChannelProcessor::report_to`] gave it the counters.
//!
//! Every call blocks (a file-channel commit waits for its fsync); async sources call it from
//! `spawn_blocking`. [`ChannelProcessor::submit_batch`] splits a call in two, the puts and
//! the hand-over of each commit, then the wait for them, so that a source can put its next
//! batch while the last one's fsync runs (and one fsync covers both), its batches kept in
//! order.

use crate::channel::{Channel, ChannelError, Submitted};
use crate::interceptor::{intercept_all, Interceptor};
use crate::metrics::SourceCounters;
use crate::selector::Selector;
use file_channel::Event;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

/// Batches waiting for optional channels (Flume's `pendingTransactions` default).
pub const OPTIONAL_QUEUE_LEN: usize = 20;

/// A put on a required channel failed; nothing of this call was acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("unable to put batch on required channel {channel}: {source}")]
pub struct ProcessError {
    /// The channel that failed.
    pub channel: String,
    /// Why.
    #[source]
    pub source: ChannelError,
}

type OptionalBatch = (Channel, Vec<Event>);

/// Where a source's events go: its interceptors, selector and channels, with the thread that
/// writes its optional channels. A reload swaps it whole ([`ChannelProcessor::rebind`]).
#[derive(Debug)]
struct Binding {
    interceptors: Vec<Arc<dyn Interceptor>>,
    selector: Selector,
    channels: Vec<Channel>,
    optional_tx: Mutex<Option<SyncSender<OptionalBatch>>>,
    optional_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Binding {
    fn new(
        source: &str,
        interceptors: Vec<Arc<dyn Interceptor>>,
        selector: Selector,
        channels: Vec<Channel>,
    ) -> Self {
        let has_optional = match &selector {
            Selector::Replicating { optional, .. } => !optional.is_empty(),
            Selector::Multiplexing { optional, .. } => optional.values().any(|v| !v.is_empty()),
        };
        let (tx, thread) = if has_optional {
            let (tx, rx) = sync_channel::<OptionalBatch>(OPTIONAL_QUEUE_LEN);
            let name = source.to_owned();
            let thread = std::thread::Builder::new()
                .name(format!("optional-{source}"))
                .spawn(move || {
                    for (channel, batch) in rx {
                        if let Err(e) = put_batch(&channel, &batch) {
                            tracing::warn!(source = %name, channel = channel.name(), error = %e, "put on optional channel failed; ignored");
                        }
                    }
                })
                .ok();
            (Some(tx), thread)
        } else {
            (None, None)
        };
        Self {
            interceptors,
            selector,
            channels,
            optional_tx: Mutex::new(tx),
            optional_thread: Mutex::new(thread),
        }
    }

    /// Stops the optional-channel thread after it has written what is queued.
    fn close(&self) {
        self.optional_tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = self
            .optional_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
    }
}

/// Interceptors, selector and channels of one source.
#[derive(Debug)]
pub struct ChannelProcessor {
    source: String,
    /// Read-locked for the whole of every put, so [`Self::rebind`] returns only once no put
    /// is still writing through the old binding.
    binding: RwLock<Arc<Binding>>,
    /// Optional batches dropped because the queue was full.
    pub optional_dropped: AtomicU64,
    /// The source's counters, for `EventUnroutedCount`.
    counters: OnceLock<Arc<SourceCounters>>,
}

impl ChannelProcessor {
    /// A processor for source `source` over `channels` (indexed by the selector).
    pub fn new(
        source: &str,
        interceptors: Vec<Arc<dyn Interceptor>>,
        selector: Selector,
        channels: Vec<Channel>,
    ) -> Self {
        Self {
            source: source.to_owned(),
            binding: RwLock::new(Arc::new(Binding::new(
                source,
                interceptors,
                selector,
                channels,
            ))),
            optional_dropped: AtomicU64::new(0),
            counters: OnceLock::new(),
        }
    }

    /// Counts events the selector sends to no channel in `counters.event_unrouted_count`
    /// (the first call wins).
    pub fn report_to(&self, counters: Arc<SourceCounters>) {
        let _ = self.counters.set(counters);
    }

    /// Sends the source's events somewhere else from its next put on (a live reload that
    /// changed only its `channels`, selector or interceptors). Blocks until the puts in flight
    /// through the old binding have finished, then lets the old optional-channel thread write
    /// what it has queued; after it returns, nothing of this source touches the old channels.
    pub fn rebind(
        &self,
        interceptors: Vec<Arc<dyn Interceptor>>,
        selector: Selector,
        channels: Vec<Channel>,
    ) {
        let new = Arc::new(Binding::new(&self.source, interceptors, selector, channels));
        let old = std::mem::replace(
            &mut *self.binding.write().unwrap_or_else(PoisonError::into_inner),
            new,
        );
        old.close();
    }

    /// The names of the channels, in the source's order.
    pub fn channel_names(&self) -> Vec<String> {
        self.binding
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .channels
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    }

    /// Puts one event (Flume's `processEvent`).
    pub fn process_event(&self, event: Event) -> Result<(), ProcessError> {
        self.process_batch(vec![event])
    }

    /// Puts a batch: one transaction per required channel (Flume's `processEventBatch`).
    pub fn process_batch(&self, events: Vec<Event>) -> Result<(), ProcessError> {
        self.submit_batch(events)?.wait()
    }

    /// The first half of [`Self::process_batch`]: puts the batch on each required channel and
    /// hands each commit over ([`Txn::submit`]) without waiting for it; the
    /// [`SubmittedBatch`] waits. A caller that submits its next batch only after this returned
    /// keeps its batches in order in every channel, while one fsync can cover several of them.
    pub fn submit_batch(&self, events: Vec<Event>) -> Result<SubmittedBatch<'_>, ProcessError> {
        let binding = self.binding.read().unwrap_or_else(PoisonError::into_inner);
        let b: &Binding = &binding;
        let events = intercept_all(&b.interceptors, events);
        let mut pending = Vec::new();
        if events.is_empty() {
            return Ok(SubmittedBatch {
                _binding: binding,
                pending,
            });
        }
        let n = b.channels.len();
        let mut required: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut optional: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut unrouted = 0u64;
        for (i, e) in events.iter().enumerate() {
            let (req, opt) = (b.selector.required(e), b.selector.optional(e));
            if req.is_empty() && opt.is_empty() {
                unrouted += 1;
            }
            for &c in req {
                required[c].push(i);
            }
            for &c in opt {
                optional[c].push(i);
            }
        }
        if unrouted > 0 {
            if let Some(c) = self.counters.get() {
                SourceCounters::add(&c.event_unrouted_count, unrouted);
            }
            tracing::debug!(source = %self.source, events = unrouted, "events match no channel of the selector; dropped as Flume drops them");
        }
        for (c, idx) in required.iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let channel = &b.channels[c];
            let failed = |source| ProcessError {
                channel: channel.name().to_owned(),
                source,
            };
            // The events are borrowed: a channel copies what it keeps.
            let submitted = submit_put(channel, idx.iter().map(|&i| &events[i])).map_err(failed)?;
            pending.push((channel.name().to_owned(), submitted));
        }
        let tx = b
            .optional_tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(tx) = tx {
            for (c, idx) in optional.iter().enumerate() {
                if idx.is_empty() {
                    continue;
                }
                let batch = idx.iter().map(|&i| events[i].clone()).collect();
                if let Err(TrySendError::Full(_)) = tx.try_send((b.channels[c].clone(), batch)) {
                    self.optional_dropped.fetch_add(1, Relaxed);
                    tracing::warn!(source = %self.source, channel = b.channels[c].name(), "optional channel queue full; batch dropped");
                }
            }
        }
        Ok(SubmittedBatch {
            _binding: binding,
            pending,
        })
    }

    /// Stops the optional-channel thread after it has written what is queued.
    pub fn close(&self) {
        let binding = self
            .binding
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        binding.close();
    }
}

/// Puts `batch` in one transaction on `channel`.
pub fn put_batch(channel: &Channel, batch: &[Event]) -> Result<(), ChannelError> {
    submit_put(channel, batch)?.wait()
}

/// Puts `events` in one transaction on `channel` and submits its commit.
fn submit_put<'e>(
    channel: &Channel,
    events: impl IntoIterator<Item = &'e Event>,
) -> Result<Submitted, ChannelError> {
    let mut tx = channel.transaction();
    for e in events {
        tx.put(e)?;
    }
    tx.submit()
}

/// A batch whose commits [`ChannelProcessor::submit_batch`] handed to its required channels.
/// It holds the source's binding, so a reload ([`ChannelProcessor::rebind`]) still waits for
/// it; waiting (or dropping it) must happen on the thread that submitted it.
#[derive(Debug)]
#[must_use = "a submitted batch is acknowledged only once waited for"]
pub struct SubmittedBatch<'p> {
    _binding: RwLockReadGuard<'p, Arc<Binding>>,
    pending: Vec<(String, Submitted)>,
}

impl SubmittedBatch<'_> {
    /// Waits for every required channel's commit, in the source's channel order; the first
    /// failure is returned, naming its channel.
    pub fn wait(self) -> Result<(), ProcessError> {
        let mut first_failure = None;
        for (channel, submitted) in self.pending {
            if let Err(source) = submitted.wait() {
                first_failure.get_or_insert(ProcessError { channel, source });
            }
        }
        first_failure.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MemoryChannelConfig;
    use crate::interceptor::static_header::Static;

    fn mem(name: &str, capacity: u64) -> Channel {
        Channel::memory(
            name,
            MemoryChannelConfig {
                capacity,
                transaction_capacity: capacity as u32,
                keep_alive_ms: 10,
                ..MemoryChannelConfig::default()
            },
        )
    }

    fn drain(c: &Channel) -> Vec<Event> {
        let mut tx = c.transaction();
        let mut v = Vec::new();
        while tx.len() < c.transaction_capacity() as usize {
            let Some(e) = tx.take().expect("take") else {
                break;
            };
            v.push(e);
        }
        tx.commit().expect("commit");
        v
    }

    #[test]
    fn interceptors_then_selector_then_one_transaction_per_channel() {
        let (c1, c2) = (mem("c1", 10), mem("c2", 10));
        let stat: Arc<dyn Interceptor> = Arc::new(Static {
            preserve_existing: false,
            key: "k".into(),
            value: "v".into(),
        });
        let p = ChannelProcessor::new(
            "r1",
            vec![stat],
            Selector::Replicating {
                required: vec![0, 1],
                optional: vec![],
            },
            vec![c1.clone(), c2.clone()],
        );
        p.process_batch(vec![Event::new("a"), Event::new("b")])
            .expect("put");
        for c in [&c1, &c2] {
            let got = drain(c);
            assert_eq!(got.len(), 2);
            assert!(got.iter().all(|e| e.header("k") == Some("v")));
        }
    }

    #[test]
    fn a_full_required_channel_fails_the_call_and_an_optional_one_does_not() {
        let (req, opt) = (mem("req", 1), mem("opt", 1));
        let p = ChannelProcessor::new(
            "r1",
            vec![],
            Selector::Replicating {
                required: vec![0],
                optional: vec![1],
            },
            vec![req.clone(), opt.clone()],
        );
        p.process_event(Event::new("1")).expect("fits");
        p.process_event(Event::new("x"))
            .expect_err("required channel is full");
        // Wait for the optional thread to have written the first event.
        assert!(opt.wait_for_events(std::time::Duration::from_secs(5)));
        let err = p.process_event(Event::new("2")).expect_err("still full");
        assert_eq!(
            err.to_string(),
            "unable to put batch on required channel req: Space for commit to queue couldn't be acquired. Sinks are likely not keeping up with sources, or the buffer size is too tight"
        );
        drain(&req);
        p.process_event(Event::new("3"))
            .expect("room again; the optional channel's failure is ignored");
        p.close();
        assert_eq!(drain(&opt).len(), 1);
    }

    #[test]
    fn rebind_sends_the_next_put_to_the_new_channels_only() {
        let (c1, c2) = (mem("c1", 10), mem("c2", 10));
        let replicate = |n: usize| Selector::Replicating {
            required: (0..n).collect(),
            optional: vec![],
        };
        let p = ChannelProcessor::new("r1", vec![], replicate(1), vec![c1.clone()]);
        p.process_event(Event::new("before")).expect("put");
        p.rebind(vec![], replicate(2), vec![c1.clone(), c2.clone()]);
        assert_eq!(p.channel_names(), vec!["c1", "c2"]);
        p.process_event(Event::new("both")).expect("put");
        p.rebind(vec![], replicate(1), vec![c2.clone()]);
        p.process_event(Event::new("after")).expect("put");
        let bodies = |c: &Channel| -> Vec<String> {
            drain(c)
                .iter()
                .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                .collect()
        };
        assert_eq!(bodies(&c1), vec!["before", "both"]);
        assert_eq!(bodies(&c2), vec!["both", "after"]);
    }
}
