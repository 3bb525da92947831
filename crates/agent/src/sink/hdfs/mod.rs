//! `hdfs`: Flume's HDFS sink — rolled, time-bucketed files on a local disk (`file://`) or on
//! object storage (`s3://`, `s3a://`) — with a durability contract stronger than Flume's: a
//! take is committed only once its bytes are durable, and a crash never leaves an in-use file.
//!
//! The parts: [`config`] (the keys), [`path`] (escapes), [`format`] (file formats),
//! [`bucket`] (which file an event goes to, file names), [`writer`] (one in-use file),
//! [`recovery`] (the state directory and crash recovery), [`ledger`] (which channel events
//! were written, to count those delivered again), [`dest`] (where finished files go) and
//! [`metrics`].
//!
//! # A batch
//!
//! `deliver` splits the batch by bucket, and each bucket's share into runs that fit its open
//! file (`rollCount` and `rollSize` are checked before each event, as Flume does; a file that
//! is full is rolled and a new one opened). Each run is encoded as one self-contained unit and
//! appended; then every file touched is `fdatasync`ed, and only then does `deliver` return
//! `Ok`, so the drain loop commits the take. If anything fails, every file touched is cut back
//! to its length before the batch and the take rolls back: a retry writes no second copy.
//!
//! Files rolled during a batch are finished (renamed, or published and removed from staging)
//! only after the take committed ([`Deliver::committed`]), so a finished file never holds an
//! event whose take may still roll back; `rollInterval`, `idleTimeout` and publish retries are
//! handled before each take, so an idle sink still rolls.
//!
//! # Object storage
//!
//! A file bound for object storage is written to `staged/<id>` in the state directory; its
//! record names the object key. When it rolls it is published ([`dest::Destination`]); a failed
//! publish keeps the staged file and is retried every `retryInterval` (up to `closeTries`
//! attempts, 0: forever) while new batches go to new files: the events are durable in staging.

pub mod bucket;
pub mod config;
pub mod dest;
pub mod format;
pub mod ledger;
pub mod metrics;
pub mod path;
pub mod recovery;
pub mod writer;

pub use config::HdfsConfig;

use super::{Deliver, SinkContext, SinkError};
use crate::channel::DeliveryNumbers;
use bucket::{Bucket, Group};
use dest::local::{create_dirs, remove_durably, rename_durably, sync_dir};
use dest::{Destination, DestinationError, Published};
use file_channel::Event;
use ledger::Ledger;
use metrics::HdfsCounters;
use recovery::{complete_file, Record, StateDir, Target};
use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use writer::{Mark, OpenFile};

/// A file that is no longer written and is to be finished (renamed or published), now or on
/// a later retry.
#[derive(Debug)]
struct Closed {
    record: Record,
    /// Its tail is unknown (recovery, or a failed cut-back): cut it after its last whole batch
    /// before finishing, and count its uncommitted events as duplicates.
    needs_cut: bool,
    /// Events in it (known once cut).
    events: u64,
    /// The length it was cut to, until the delivery ledger forgets what lay beyond.
    cut_to: Option<u64>,
    /// Events whose take committed.
    committed: u64,
    attempts: u32,
    next_try: Instant,
    given_up: bool,
}

/// The `hdfs` sink.
pub struct HdfsSink {
    config: HdfsConfig,
    ctx: SinkContext,
    counters: Arc<HdfsCounters>,
    destination: Option<Arc<dyn Destination>>,
    destination_error: Option<String>,
    state: Option<StateDir>,
    /// Every open file by id: the current file of each bucket and those rolled but not yet
    /// finished.
    files: BTreeMap<u64, OpenFile>,
    /// The current file of each bucket.
    current: HashMap<String, u64>,
    /// Rolled files, finished after the take commits.
    rolled: Vec<u64>,
    /// Files whose finishing failed, retried.
    retry: Vec<Closed>,
    /// The last batch's events per file, until its take commits.
    uncommitted: Vec<(u64, u64)>,
    /// What the sink wrote, by the channel's numbers (opened with the state directory).
    ledger: Option<Ledger>,
    /// The numbers of the batch being delivered, if the channel numbers its events: duplicates
    /// are then recognised by the ledger instead of estimated.
    numbers: Option<DeliveryNumbers>,
    next_id: u64,
    last_counter: u64,
    buf: Vec<u8>,
}

impl std::fmt::Debug for HdfsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdfsSink")
            .field("name", &self.ctx.name)
            .field("path", &self.config.path.as_str())
            .field("open_files", &self.files.len())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    crate::metrics::now_epoch_ms() as i64
}

impl HdfsSink {
    /// An `hdfs` sink, connecting to its object storage if it has one. Nothing is touched on
    /// disk before the first call (which recovers what an earlier run left).
    pub fn new(config: HdfsConfig, ctx: SinkContext) -> Self {
        let (destination, error) = match dest::connect(&config.destination, &config.s3) {
            Ok(d) => (d, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut s = Self::with_destination(config, ctx, destination);
        s.destination_error = error;
        s
    }

    /// An `hdfs` sink publishing to `destination` (None: a local `file://` path).
    pub fn with_destination(
        config: HdfsConfig,
        ctx: SinkContext,
        destination: Option<Arc<dyn Destination>>,
    ) -> Self {
        let counters = Arc::new(HdfsCounters::default());
        let _ = ctx.counters.extra.set(counters.clone());
        ctx.counters.lifetime.started();
        Self {
            config,
            ctx,
            counters,
            destination,
            destination_error: None,
            state: None,
            files: BTreeMap::new(),
            current: HashMap::new(),
            rolled: Vec::new(),
            retry: Vec::new(),
            uncommitted: Vec::new(),
            ledger: None,
            numbers: None,
            next_id: 1,
            last_counter: 0,
            buf: Vec::new(),
        }
    }

    /// The sink's own counters.
    pub fn hdfs_counters(&self) -> &Arc<HdfsCounters> {
        &self.counters
    }

    fn io(&self, op: &'static str, path: &Path, source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink: self.ctx.name.to_string(),
            op,
            path: path.to_owned(),
            source,
        }
    }

    /// Opens and locks the state directory and completes what an earlier run left in use.
    fn start(&mut self) -> Result<(), SinkError> {
        if self.state.is_some() {
            return Ok(());
        }
        if let Some(e) = &self.destination_error {
            return Err(SinkError::Delivery {
                sink: self.ctx.name.to_string(),
                peer: self.config.path.as_str().to_owned(),
                reason: e.clone(),
            });
        }
        let dir = self.config.staging_dir.clone();
        let state =
            StateDir::open(&dir).map_err(|e| self.io("open the state directory", &dir, e))?;
        let (records, bad) = state
            .records()
            .map_err(|e| self.io("read the state directory", &dir, e))?;
        for b in bad {
            tracing::error!(sink = %self.ctx.name, record = %b.display(), "unreadable in-use record set aside; the file it named (if any) must be checked by hand");
            self.ctx
                .counters
                .connection_failed_count
                .fetch_add(1, Relaxed);
        }
        self.next_id = state.highest_id() + 1;
        let ledger_path = state.ledger_path();
        let (ledger, loaded) = Ledger::load(&ledger_path, self.ctx.channel.take_sync_interval_ms())
            .map_err(|e| self.io("read the delivery ledger", &ledger_path, e))?;
        if loaded.unreadable > 0 {
            tracing::warn!(sink = %self.ctx.name, ledger = %ledger_path.display(), lines = loaded.unreadable, "delivery ledger lines unreadable (a torn last line after a power cut); duplicates of those batches are not recognised");
        }
        self.ledger = Some(ledger);
        for record in records {
            let committed = state.read_hint(record.id).unwrap_or(0);
            tracing::info!(sink = %self.ctx.name, file = %record.file.display(), committed, "completing a file left in use");
            HdfsCounters::add(&self.counters.files_recovered, 1);
            self.retry.push(Closed {
                record,
                needs_cut: true,
                events: 0,
                cut_to: None,
                committed,
                attempts: 0,
                next_try: Instant::now(),
                given_up: false,
            });
        }
        self.state = Some(state);
        self.retry_due(true);
        Ok(())
    }

    fn state(&self) -> Result<&StateDir, SinkError> {
        self.state.as_ref().ok_or_else(|| {
            self.io(
                "use the state directory (not opened)",
                &self.config.staging_dir,
                std::io::ErrorKind::NotFound.into(),
            )
        })
    }

    /// The current file of `bucket`, opening one (and closing the least recently written
    /// bucket beyond `maxOpenFiles`) if it has none.
    fn file_for(&mut self, bucket: &Bucket) -> Result<u64, SinkError> {
        let key = bucket.key();
        if let Some(&id) = self.current.get(&key) {
            return Ok(id);
        }
        while self.current.len() >= self.config.max_open_files as usize {
            let lru = self
                .current
                .values()
                .filter_map(|id| self.files.get(id))
                .min_by_key(|f| f.last_write)
                .map(|f| f.id);
            match lru {
                Some(id) => self.roll(id),
                None => break,
            }
        }
        let id = self.open_file(bucket).inspect_err(|_| {
            self.ctx
                .counters
                .connection_failed_count
                .fetch_add(1, Relaxed);
        })?;
        self.current.insert(key, id);
        Ok(id)
    }

    fn open_file(&mut self, bucket: &Bucket) -> Result<u64, SinkError> {
        loop {
            let id = self.next_id;
            self.next_id += 1;
            let counter = (now_ms().max(0) as u64).max(self.last_counter + 1);
            self.last_counter = counter;
            let names = bucket::file_names(&self.config, bucket, counter);
            let (path, target) = if self.destination.is_some() {
                (
                    self.state()?.staged_path(id),
                    Target::Object(bucket::object_key(bucket, &names.final_name)),
                )
            } else {
                let in_use = bucket::local_path(bucket, &names.in_use_name);
                let final_path = bucket::local_path(bucket, &names.final_name);
                if in_use.symlink_metadata().is_ok() || final_path.symlink_metadata().is_ok() {
                    continue;
                }
                let dir = dest::local::parent_of(&in_use);
                create_dirs(&dir).map_err(|e| self.io("create directory", &dir, e))?;
                (in_use, Target::Local(final_path))
            };
            let record = Record {
                id,
                file: path.clone(),
                target,
            };
            let root = self.state()?.root().to_owned();
            self.state()?
                .write_record(&record)
                .map_err(|e| self.io("write the in-use record in", &root, e))?;
            let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => f,
                Err(e) => {
                    let _ = self.state()?.remove_record(id);
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        continue;
                    }
                    return Err(self.io("create", &path, e));
                }
            };
            let dir = dest::local::parent_of(&path);
            sync_dir(&dir).map_err(|e| self.io("fsync directory", &dir, e))?;
            let f = OpenFile::start(
                id,
                bucket.key(),
                path.clone(),
                record.target,
                file,
                self.config.format.encoder(),
            )
            .map_err(|e| self.io("write the header of", &path, e))?;
            self.ctx
                .counters
                .connection_created_count
                .fetch_add(1, Relaxed);
            HdfsCounters::add(&self.counters.files_opened, 1);
            tracing::debug!(sink = %self.ctx.name, file = %path.display(), "opened");
            self.files.insert(id, f);
            return Ok(id);
        }
    }

    /// Takes file `id` out of its bucket; it is finished after the next commit.
    fn roll(&mut self, id: u64) {
        if let Some(f) = self.files.get(&id) {
            if self.current.get(&f.bucket) == Some(&id) {
                self.current.remove(&f.bucket);
            }
            if !self.rolled.contains(&id) {
                self.rolled.push(id);
            }
        }
    }

    /// Rolls files whose `rollInterval` passed or that were idle for `idleTimeout`.
    fn roll_by_time(&mut self) {
        let interval = Duration::from_secs(self.config.roll_interval_s);
        let idle = Duration::from_secs(self.config.idle_timeout_s);
        let due: Vec<u64> = self
            .current
            .values()
            .filter_map(|id| self.files.get(id))
            .filter(|f| {
                (!interval.is_zero() && f.opened_at.elapsed() >= interval)
                    || (!idle.is_zero() && f.last_write.elapsed() >= idle)
            })
            .map(|f| f.id)
            .collect();
        for id in due {
            self.roll(id);
        }
    }

    /// Finishes every rolled file.
    fn finish_rolled(&mut self) {
        for id in std::mem::take(&mut self.rolled) {
            let Some(mut f) = self.files.remove(&id) else {
                continue;
            };
            let needs_cut = f.broken || f.finish_bytes().is_err();
            let closed = Closed {
                record: Record {
                    id,
                    file: f.path.clone(),
                    target: f.target.clone(),
                },
                needs_cut,
                events: f.written.events,
                cut_to: None,
                committed: f.committed_events,
                attempts: 0,
                next_try: Instant::now(),
                given_up: false,
            };
            drop(f);
            self.ctx
                .counters
                .connection_closed_count
                .fetch_add(1, Relaxed);
            self.finish_or_queue(closed);
        }
    }

    /// Retries the files whose retry time came (all of them with `now`).
    fn retry_due(&mut self, all: bool) {
        let now = Instant::now();
        let (due, wait): (Vec<Closed>, Vec<Closed>) = std::mem::take(&mut self.retry)
            .into_iter()
            .partition(|c| !c.given_up && (all || c.next_try <= now));
        self.retry = wait;
        for c in due {
            self.finish_or_queue(c);
        }
    }

    fn finish_or_queue(&mut self, mut c: Closed) {
        let finished = self.finish(&mut c);
        if let Some(len) = c.cut_to.take() {
            self.forget_beyond(c.record.id, len);
        }
        match finished {
            Ok(()) => {}
            Err(e) => {
                c.attempts += 1;
                let tries = self.config.close_tries;
                if tries > 0 && c.attempts >= tries {
                    c.given_up = true;
                    HdfsCounters::add(&self.counters.files_pending_publish, 1);
                    tracing::error!(sink = %self.ctx.name, file = %c.record.file.display(), attempts = c.attempts, error = %e, "giving up finishing the file until the next start (hdfs.closeTries); its events stay in it");
                } else {
                    c.next_try = Instant::now() + Duration::from_secs(self.config.retry_interval_s);
                    tracing::warn!(sink = %self.ctx.name, file = %c.record.file.display(), attempts = c.attempts, error = %e, retry_in_s = self.config.retry_interval_s, "cannot finish the file; will retry");
                }
                self.retry.push(c);
            }
        }
    }

    /// Cuts (if needed), then renames or publishes `c`, then drops its record.
    fn finish(&self, c: &mut Closed) -> Result<(), String> {
        let state = self.state().map_err(|e| e.to_string())?;
        let file = c.record.file.clone();
        let show = |e: std::io::Error, op: &str| format!("{op} {}: {e}", file.display());
        if c.needs_cut {
            match complete_file(&file, &self.config.format) {
                Ok((kept, cut)) => {
                    if cut > 0 {
                        HdfsCounters::add(&self.counters.torn_bytes_cut, cut);
                        tracing::warn!(sink = %self.ctx.name, file = %file.display(), cut_bytes = cut, "cut a torn batch (never committed) off the file");
                    }
                    c.cut_to = Some(kept.len);
                    // With a ledger, a kept event the channel delivers again is recognised
                    // (and counted) when it comes; without one, every kept event past the
                    // committed hint may come again.
                    let ledger_counts = self.ledger.as_ref().is_some_and(Ledger::is_active);
                    let dup = kept.events.saturating_sub(c.committed);
                    if dup > 0 && !ledger_counts {
                        HdfsCounters::add(&self.counters.event_duplicates, dup);
                        tracing::warn!(sink = %self.ctx.name, file = %file.display(), duplicates = dup, "events kept whose take may not have committed: they may be delivered again");
                    }
                    c.events = kept.events;
                    c.needs_cut = false;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Never created, or finished before its record was dropped.
                    return state
                        .remove_record(c.record.id)
                        .map_err(|e| show(e, "drop the record of"));
                }
                Err(e) => return Err(show(e, "complete")),
            }
        }
        if c.events == 0 {
            remove_durably(&file).map_err(|e| show(e, "remove empty"))?;
        } else {
            match &c.record.target {
                Target::Local(to) => {
                    rename_durably(&file, to).map_err(|e| show(e, "rename"))?;
                    tracing::debug!(sink = %self.ctx.name, file = %to.display(), events = c.events, "finished");
                }
                Target::Object(key) => {
                    let published = self
                        .publish(&file, key)
                        .inspect_err(|_| HdfsCounters::add(&self.counters.publish_failures, 1))
                        .map_err(|e| e.to_string())?;
                    let k = &self.counters;
                    HdfsCounters::add(&k.files_published, 1);
                    HdfsCounters::add(&k.bytes_published, published.bytes);
                    k.upload_last_ms.store(published.elapsed_ms, Relaxed);
                    HdfsCounters::add(&k.upload_total_ms, published.elapsed_ms);
                    remove_durably(&file).map_err(|e| show(e, "remove staged"))?;
                    tracing::debug!(sink = %self.ctx.name, key = %key, events = c.events, "published");
                }
            }
            HdfsCounters::add(&self.counters.files_closed, 1);
        }
        if c.given_up {
            self.counters.files_pending_publish.fetch_sub(1, Relaxed);
        }
        state
            .remove_record(c.record.id)
            .map_err(|e| show(e, "drop the record of"))
    }

    /// Publishes with `callTimeout` bounding the attempt.
    fn publish(&self, staged: &Path, key: &str) -> Result<Published, DestinationError> {
        let Some(dest) = self.destination.clone() else {
            return Err(DestinationError::Permanent {
                what: key.to_owned(),
                message: "no destination".into(),
            });
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (staged_owned, key_owned) = (staged.to_owned(), key.to_owned());
        let spawned = std::thread::Builder::new()
            .name("hdfs-publish".into())
            .spawn(move || {
                let _ = tx.send(dest.publish(&staged_owned, &key_owned));
            });
        if let Err(e) = spawned {
            return Err(DestinationError::Transient {
                what: key.to_owned(),
                message: format!("cannot start the upload: {e}"),
            });
        }
        match rx.recv_timeout(Duration::from_millis(self.config.call_timeout_ms)) {
            Ok(r) => r,
            Err(_) => Err(DestinationError::Transient {
                what: key.to_owned(),
                message: format!(
                    "no answer within hdfs.callTimeout ({} ms)",
                    self.config.call_timeout_ms
                ),
            }),
        }
    }

    /// Forgets, in the delivery ledger, what file `id` was to hold beyond `len` bytes.
    fn forget_beyond(&mut self, id: u64, len: u64) {
        if let Some(ledger) = self.ledger.as_mut() {
            if let Err(e) = ledger.forget_beyond(id, len) {
                tracing::error!(sink = %self.ctx.name, error = %e, "cannot rewrite the delivery ledger; duplicates may be miscounted");
            }
        }
    }

    /// Writes the groups; on error the caller cuts back what was touched.
    fn write_groups(
        &mut self,
        groups: Vec<Group>,
        now: i64,
        touched: &mut Vec<(u64, Mark)>,
    ) -> Result<u64, SinkError> {
        let (count, size) = (self.config.roll_count, self.config.roll_size_bytes);
        let channel_id = self.numbers.as_ref().map(|n| n.channel_id);
        let mut bytes = 0;
        for Group {
            bucket,
            events,
            seqs,
        } in groups
        {
            let mut rest = &events[..];
            let mut rest_seqs = &seqs[..];
            while !rest.is_empty() {
                let id = self.file_for(&bucket)?;
                let Some(f) = self.files.get_mut(&id) else {
                    // Cannot happen: a bucket's current file is open. Open another.
                    self.current.remove(&bucket.key());
                    continue;
                };
                let n = f.room(rest, count, size);
                if n == 0 {
                    self.roll(id);
                    continue;
                }
                if !touched.iter().any(|(t, _)| *t == id) {
                    touched.push((id, f.written));
                }
                let (run_seqs, later_seqs) = rest_seqs.split_at(n.min(rest_seqs.len()));
                let ledger = &mut self.ledger;
                let sink = &self.ctx.name;
                let appended = f.append_with(&rest[..n], now, &mut self.buf, |end_len| {
                    // The line goes before the bytes (see ledger.rs). Failing to write it only
                    // costs the count of this batch's duplicates, not the batch.
                    if let (Some(l), Some(channel)) = (ledger.as_mut(), channel_id) {
                        if let Err(e) = l.record(channel, id, end_len, run_seqs, now) {
                            tracing::error!(sink = %sink, error = %e, "cannot write the delivery ledger; duplicates of this batch will not be recognised");
                        }
                    }
                    Ok(())
                });
                let full = f.full(count, size);
                let path = f.path.clone();
                bytes += appended.map_err(|e| self.io("write", &path, e))?;
                rest = &rest[n..];
                rest_seqs = later_seqs;
                if full {
                    self.roll(id);
                }
            }
        }
        for (id, _) in touched.iter() {
            if let Some(f) = self.files.get(id) {
                f.sync().map_err(|e| self.io("fdatasync", &f.path, e))?;
            }
        }
        Ok(bytes)
    }
}

impl Deliver for HdfsSink {
    fn context(&self) -> &SinkContext {
        &self.ctx
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size as usize
    }

    fn before_take(&mut self) -> Result<(), SinkError> {
        self.start()?;
        let n: u64 = self.uncommitted.drain(..).map(|(_, n)| n).sum();
        if n > 0 && self.numbers.is_none() {
            // The last batch was written but its take did not commit: it comes again. (A
            // numbered batch is counted by the ledger when it does.)
            HdfsCounters::add(&self.counters.event_duplicates, n);
            tracing::warn!(sink = %self.ctx.name, duplicates = n, "a written batch's take did not commit; it will be written again");
        }
        self.roll_by_time();
        self.finish_rolled();
        self.retry_due(false);
        Ok(())
    }

    fn before_deliver(&mut self, tx: &crate::channel::Txn) {
        self.numbers = tx.delivery_numbers();
    }

    fn deliver(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        self.start()?;
        let now = now_ms();
        // Counted once the batch is written: a batch that fails is rolled back and counted
        // when it comes again.
        let (seqs, dup) = match (&self.numbers, &self.ledger) {
            (Some(n), Some(ledger)) => {
                (n.seqs.as_slice(), ledger.duplicates(n.channel_id, &n.seqs))
            }
            _ => (&[][..], 0),
        };
        let groups = bucket::group(&self.config, events, seqs, now).map_err(|reason| {
            self.ctx.counters.event_write_fail.fetch_add(1, Relaxed);
            tracing::error!(sink = %self.ctx.name, error = %reason, "cannot place an event; the batch is rolled back");
            SinkError::Delivery {
                sink: self.ctx.name.to_string(),
                peer: self.config.path.as_str().to_owned(),
                reason,
            }
        })?;
        let mut touched = Vec::new();
        match self.write_groups(groups, now, &mut touched) {
            Ok(bytes) => {
                HdfsCounters::add(&self.counters.bytes_staged, bytes);
                if dup > 0 {
                    HdfsCounters::add(&self.counters.event_duplicates, dup);
                    tracing::warn!(sink = %self.ctx.name, duplicates = dup, "the channel delivered again events this sink already wrote (a take commit lost in a crash, or rolled back); they are written again (at least once)");
                }
                self.uncommitted = touched
                    .iter()
                    .filter_map(|(id, mark)| {
                        let f = self.files.get(id)?;
                        Some((*id, f.written.events - mark.events))
                    })
                    .collect();
                Ok(())
            }
            Err(e) => {
                self.ctx.counters.event_write_fail.fetch_add(1, Relaxed);
                for (id, mark) in touched {
                    let Some(f) = self.files.get_mut(&id) else {
                        continue;
                    };
                    match f.cut_back(mark) {
                        Ok(()) => self.forget_beyond(id, mark.len),
                        Err(cut) => {
                            tracing::error!(sink = %self.ctx.name, file = %f.path.display(), error = %cut, "cannot cut a failed batch back off; the file is rolled and completed by recovery");
                            self.roll(id);
                        }
                    }
                }
                Err(e)
            }
        }
    }

    fn committed(&mut self) {
        for (id, n) in std::mem::take(&mut self.uncommitted) {
            if let Some(f) = self.files.get_mut(&id) {
                f.committed_events += n;
                if self.numbers.is_some() {
                    // The ledger counts duplicates; no estimate needs the hint.
                    continue;
                }
                let committed = f.committed_events;
                let written = self.state.as_ref().map(|st| st.write_hint(id, committed));
                if let Some(Err(e)) = written {
                    tracing::debug!(sink = %self.ctx.name, error = %e, "cannot write the committed-events hint");
                }
            }
        }
        self.finish_rolled();
    }

    fn on_stop(&mut self) {
        if self.state.is_some() {
            let ids: Vec<u64> = self.current.values().copied().collect();
            for id in ids {
                self.roll(id);
            }
            let n: u64 = self.uncommitted.drain(..).map(|(_, n)| n).sum();
            if self.numbers.is_none() {
                HdfsCounters::add(&self.counters.event_duplicates, n);
            }
            self.finish_rolled();
            self.retry_due(true);
            for c in &self.retry {
                tracing::warn!(sink = %self.ctx.name, file = %c.record.file.display(), "not finished at stop; completed at the next start");
            }
        }
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests;
