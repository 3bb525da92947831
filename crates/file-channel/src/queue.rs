//! [`QueueState`]: the channel's queue as a position in the log, in memory that does not grow
//! with the number of pending events.
//!
//! - `consumed`: a low-water mark plus out-of-order consumed ranges ([`ConsumedSet`]);
//! - `visible`: the end of the committed (and, by default, fsynced) log readers may read;
//! - a read cursor ([`Scanner`]) and the decoded events of the record under it (`front`);
//! - `redeliver`: events returned by rolled-back takes, handed out again first, lowest
//!   sequence first.
//!
//! Capacity is accounted here too: `used_*` counts pending events plus the events reserved by
//! open put transactions.
//!
//! At about 600 lines this file is one thing on purpose: the cursor, the consumed set, the
//! redelivery list and the counts change together under one lock, and the methods that change
//! them assert the invariants that tie them; the reader's damage path is its own function.
//!
//! For checkpoints the queue also remembers where the records between the low-water mark and
//! the cursor start (`index`): one entry per record that still has an unconsumed event behind
//! the cursor — in-flight records, not pending ones — so a checkpoint can say where a reader
//! must restart.
//!
//! Damage met while reading (possible only for bytes a checkpoint let open skip, or media
//! damage after open) is handled as open handles it: refused in strict mode; otherwise skipped,
//! quarantined, and the events lost counted from the sequence gap.

use crate::config::RecoveryMode;
use crate::consumed::ConsumedSet;
use crate::decrypt_ahead::{Ahead, AHEAD_RECORD_BYTES_MIN};
use crate::encryption::{OpenFailure, Opener};
use crate::error::{Corruption, TakeError};
use crate::format::record::{RecordHeader, RecordKind, SealPayload};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::format::{event, CorruptionKind};
use crate::metrics::ChannelMetrics;
use crate::segment::scan::{ScanItem, Scanner};
use crate::segment::SegmentSet;
use crate::storage::DynFile;
use crate::Event;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

/// Encrypted records from this size on make the reader of a channel with a decrypt-ahead thread
/// read only what each record needs (a header, or a whole record the thread did not open)
/// instead of chunks: it skips most of their payloads, and a chunk would copy them for nothing.
/// Below it, one read of a chunk is cheaper than a read per header.
const SPARSE_READ_RECORD_BYTES_MIN: usize = 32 << 10;

/// Quarantine I/O the reader decided on. It is done by the taker after it let go of the queue
/// lock ([`crate::shared::TxnView::quarantine`]): its directory fsyncs go through the sync
/// gate, and a failure there poisons the channel, which needs that lock.
#[derive(Debug)]
pub(crate) enum QuarantineWork {
    /// Copy `bytes` damaged bytes of `file` at the damage.
    Bytes {
        at: Corruption,
        file: DynFile,
        bytes: u64,
    },
    /// Write the damage's note.
    Note {
        at: Corruption,
        bytes: u64,
        events_lost: u64,
    },
}

/// A taken event.
#[derive(Debug)]
pub(crate) struct Taken {
    /// Its sequence number.
    pub seq: u64,
    pub event: Event,
    /// Its encoded size (the unit of the byte accounting).
    pub bytes: u64,
}

/// A position in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LogPos {
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

impl LogPos {
    pub(crate) fn new(segment: u64, offset: u64) -> Self {
        Self { segment, offset }
    }
}

/// What the reader needs besides the queue: the segment files to read, the counters to bump
/// and what to do with damage.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadContext<'a> {
    pub segments: &'a SegmentSet,
    pub metrics: &'a ChannelMetrics,
    pub mode: RecoveryMode,
}

/// Which limit a reservation did not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The event capacity.
    Events,
    /// The byte limit.
    Bytes,
}

/// Damage the reader skipped: where, and how many bytes.
#[derive(Debug)]
struct SkippedDamage {
    at: Corruption,
    bytes: u64,
}

/// A record read whose events are not all consumed yet, for [`QueueState::read_start`].
#[derive(Debug)]
struct ReadRecord {
    /// One past its last event's sequence number.
    end_seq: u64,
    /// Where it starts.
    at: LogPos,
}

/// The queue's state; guarded by the channel's queue mutex.
///
/// The counts are changed only through the accounting methods ([`QueueState::try_reserve`],
/// [`QueueState::release`], [`QueueState::publish`], [`QueueState::consume`] and the reader's
/// losses), which assert that no count goes below zero: that would be an accounting bug, and
/// it must show, not be saturated away.
#[derive(Debug)]
pub(crate) struct QueueState {
    /// Pending events plus events reserved by open put transactions.
    used_events: u64,
    /// Encoded bytes of the same.
    used_bytes: u64,
    /// Committed, not consumed events (taken-but-uncommitted included).
    pending_events: u64,
    /// Encoded bytes of the pending events.
    pending_bytes: u64,
    /// One past the last visible sequence number.
    next_seq: u64,
    /// Readers may read records below this position.
    visible: LogPos,
    /// Consumed sequence numbers.
    consumed: ConsumedSet,
    redeliver: BTreeMap<u64, Taken>,
    front: VecDeque<Taken>,
    cursor: Option<Scanner>,
    /// Records read with events not yet consumed.
    index: VecDeque<ReadRecord>,
    /// The sequence number the next put record under the cursor should start with.
    reader_next_seq: Option<u64>,
    /// Damage skipped by the reader whose note waits for the next record to reveal the gap.
    pending_damage: Option<SkippedDamage>,
    /// Quarantine I/O waiting for the queue lock to be released.
    quarantine_work: Vec<QuarantineWork>,
    /// Decrypts encrypted put records.
    opener: Opener,
    /// Decrypts them ahead of the reader on another thread, when the channel has keys.
    ahead: Option<Ahead>,
    /// The last encrypted record was one for the decrypt-ahead thread, and a large one: the
    /// reader reads no more than each record needs (most payloads wait on the thread).
    sparse_reads: bool,
}

impl QueueState {
    pub(crate) fn new(
        next_seq: u64,
        visible: LogPos,
        consumed: ConsumedSet,
        pending_bytes: u64,
        cursor: Option<Scanner>,
    ) -> Self {
        let pending_events = next_seq
            .saturating_sub(consumed.low_water_mark())
            .saturating_sub(consumed.consumed_above_lwm());
        Self {
            used_events: pending_events,
            used_bytes: pending_bytes,
            pending_events,
            pending_bytes,
            next_seq,
            visible,
            consumed,
            redeliver: BTreeMap::new(),
            front: VecDeque::new(),
            cursor,
            index: VecDeque::new(),
            reader_next_seq: None,
            pending_damage: None,
            quarantine_work: Vec::new(),
            opener: Opener::new(None, 0),
            ahead: None,
            sparse_reads: false,
        }
    }

    /// Gives the reader the channel's keys, and the decrypt-ahead thread if there is one.
    pub(crate) fn set_decryption(&mut self, opener: Opener, ahead: Option<Ahead>) {
        self.opener = opener;
        self.ahead = ahead;
    }

    /// Stops the decrypt-ahead thread (at close).
    pub(crate) fn stop_ahead(&mut self) {
        if let Some(a) = self.ahead.take() {
            a.stop();
        }
    }

    /// Committed, not consumed events (taken-but-uncommitted included).
    pub(crate) fn pending_events(&self) -> u64 {
        self.pending_events
    }

    /// Encoded bytes of the pending events.
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Consumed sequence numbers.
    pub(crate) fn consumed(&self) -> &ConsumedSet {
        &self.consumed
    }

    /// Reserves room for one event of `len` encoded bytes for an open put transaction, if it
    /// fits under `capacity` events and `bytes_max` bytes.
    pub(crate) fn try_reserve(
        &mut self,
        len: u64,
        capacity: u64,
        bytes_max: u64,
    ) -> Result<(), NoRoom> {
        if self.used_events >= capacity {
            return Err(NoRoom::Events);
        }
        if self.used_bytes.saturating_add(len) > bytes_max {
            return Err(NoRoom::Bytes);
        }
        self.used_events += 1;
        self.used_bytes += len;
        Ok(())
    }

    /// Takes `events` off the pending and used counts. They follow from sequence numbers and
    /// are exact while the channel runs; only records read from a damaged log (another
    /// channel's records behind a destroyed header, say) can make a take exceed them. Bytes
    /// from disk must not panic the process: the counts stop at zero and the mismatch is
    /// logged at error level.
    fn take_counts(&mut self, events: u64, what: &str) {
        if events > self.pending_events || events > self.used_events {
            tracing::error!(
                events,
                pending = self.pending_events,
                pending_or_reserved = self.used_events,
                "queue accounting: {what} more events than are pending (a damaged log delivered \
                 records it did not count); the counts stop at zero"
            );
        }
        self.pending_events = self.pending_events.saturating_sub(events);
        self.used_events = self.used_events.saturating_sub(events);
    }

    /// Returns the room reserved by a put transaction that did not commit.
    pub(crate) fn release(&mut self, events: u64, bytes: u64) {
        assert!(
            events <= self.used_events && bytes <= self.used_bytes,
            "queue accounting: releasing {events} events / {bytes} bytes, but only \
             {} events / {} bytes are reserved or pending",
            self.used_events,
            self.used_bytes
        );
        self.used_events -= events;
        self.used_bytes -= bytes;
    }

    /// Makes a synced batch of put commits visible: their reserved room becomes pending events,
    /// readable below `visible`.
    pub(crate) fn publish(
        &mut self,
        next_seq: u64,
        visible: LogPos,
        events: u64,
        bytes: u64,
        metrics: &ChannelMetrics,
    ) {
        self.next_seq = next_seq;
        self.visible = visible;
        if let Some(a) = &self.ahead {
            a.set_visible((visible.segment, visible.offset));
        }
        self.pending_events += events;
        self.pending_bytes += bytes;
        metrics.channel_size.store(self.pending_events, Relaxed);
        metrics.pending_bytes.store(self.pending_bytes, Relaxed);
    }

    /// Marks a committed take's events consumed: `ranges` of sequence numbers, `events` events
    /// of `bytes` encoded bytes in all.
    pub(crate) fn consume(
        &mut self,
        ranges: &[(u64, u64)],
        events: u64,
        bytes: u64,
        metrics: &ChannelMetrics,
    ) {
        for &(s, e) in ranges {
            self.consumed.insert(s, e);
        }
        self.take_counts(events, "a take commits");
        // Event counts are exact (they follow from sequence numbers), so they are asserted.
        // The pending *bytes* are exact while the channel runs, but after a replay they can be
        // an estimate: a take record applied only in part (some of its events were already
        // consumed in the checkpoint, or lost to damage) is credited its bytes in proportion to
        // its events. An estimate read from disk must not panic the process, so the bytes a
        // take releases are bounded by what is pending; `used_bytes` falls by the same amount
        // so that it stays pending plus reserved and `release` keeps its exact assert.
        let released = bytes.min(self.pending_bytes);
        if released < bytes {
            tracing::debug!(
                take_bytes = bytes,
                pending_bytes = self.pending_bytes,
                "pending bytes estimated at replay fell short of a take; counted as zero"
            );
        }
        self.pending_bytes -= released;
        self.used_bytes -= released;
        metrics.channel_size.store(self.pending_events, Relaxed);
        metrics.pending_bytes.store(self.pending_bytes, Relaxed);
    }

    /// Removes `events` consumed without delivery (lost to damage, or repaired away) from the
    /// pending and used counts.
    fn forget_pending(&mut self, events: u64) {
        self.take_counts(events, "events consumed without delivery");
    }

    /// Quarantine I/O the reader decided on, to be done once the queue lock is released.
    pub(crate) fn take_quarantine_work(&mut self) -> Vec<QuarantineWork> {
        std::mem::take(&mut self.quarantine_work)
    }

    /// A position at or before the record holding the low-water mark: where a reader restarts.
    pub(crate) fn read_start(&mut self) -> LogPos {
        let lwm = self.consumed.low_water_mark();
        while self.index.front().is_some_and(|r| r.end_seq <= lwm) {
            self.index.pop_front();
        }
        match (self.index.front(), &self.cursor) {
            (Some(r), _) => r.at,
            (None, Some(c)) => LogPos::new(c.segment_id(), c.position()),
            (None, None) => self.visible,
        }
    }

    /// Returns rolled-back events to the head of the queue.
    pub(crate) fn give_back(&mut self, taken: Vec<Taken>) {
        for t in taken {
            self.redeliver.insert(t.seq, t);
        }
    }

    /// The next event to hand out, if one is visible.
    pub(crate) fn pop_next(&mut self, ctx: &ReadContext<'_>) -> Result<Option<Taken>, TakeError> {
        if let Some((_, t)) = self.redeliver.pop_first() {
            return Ok(Some(t));
        }
        loop {
            while let Some(t) = self.front.pop_front() {
                if !self.consumed.contains(t.seq) {
                    return Ok(Some(t));
                }
            }
            if !self.read_next_record(ctx)? {
                return Ok(None);
            }
        }
    }

    /// The sequence resumes at `found` after the record the cursor expected `expected` from:
    /// events in between are lost; the note of the damage that caused it gets the count.
    fn resume_at(&mut self, ctx: &ReadContext<'_>, expected: Option<u64>, found: u64) {
        // Right after open the cursor has read no put record yet; if damage was skipped before
        // the first one, everything not consumed below `found` was in the damaged bytes (the
        // cursor started at or before the record holding the low-water mark).
        let expected = expected.or_else(|| {
            self.pending_damage
                .as_ref()
                .map(|_| self.consumed.low_water_mark())
        });
        let lost = match expected {
            Some(e) if found > e => self.lose(ctx, e, found),
            _ => 0,
        };
        if let Some(SkippedDamage { at, bytes }) = self.pending_damage.take() {
            self.quarantine_work.push(QuarantineWork::Note {
                at,
                bytes,
                events_lost: lost,
            });
        }
    }

    /// Marks `[from, to)` lost: consumed without delivery, counted once.
    fn lose(&mut self, ctx: &ReadContext<'_>, from: u64, to: u64) -> u64 {
        let lost = self.consumed.insert(from, to);
        if lost > 0 {
            self.forget_pending(lost);
            let m = ctx.metrics;
            m.events_lost.fetch_add(lost, Relaxed);
            m.channel_size.store(self.pending_events, Relaxed);
            tracing::error!(
                first_seq = from,
                end_seq = to,
                events = lost,
                "events lost to damaged log data"
            );
        }
        lost
    }

    /// Reads the next record at the cursor; false when the cursor is at the visible end.
    fn read_next_record(&mut self, ctx: &ReadContext<'_>) -> Result<bool, TakeError> {
        let Some(here) = self
            .cursor
            .as_ref()
            .map(|c| LogPos::new(c.segment_id(), c.position()))
        else {
            return Ok(false);
        };
        if here >= self.visible {
            if self.pending_damage.is_some() {
                // Damage was skipped and no record after it, up to the visible end, told the
                // gap (only take records followed): every committed event not read is lost.
                let next_seq = self.next_seq;
                self.resume_at(ctx, self.reader_next_seq, next_seq);
                self.reader_next_seq = Some(next_seq);
            }
            return Ok(false);
        }
        let Some(scanner) = self.cursor.as_mut() else {
            return Ok(false);
        };
        let seg = scanner.segment_id();
        let limit = if seg == self.visible.segment {
            self.visible.offset
        } else {
            u64::MAX
        };
        scanner.set_limit(limit);
        let path = ctx.segments.get(seg).map(|s| s.path).unwrap_or_default();
        let io = |offset| {
            let path = path.clone();
            move |source| TakeError::Io {
                path,
                offset,
                source,
            }
        };
        // An encrypted put record the decrypt-ahead thread has ready (it checked and opened
        // it) is taken from it without reading its payload here.
        let mut asked_ahead = false;
        if let Some(a) = &self.ahead {
            scanner.set_read_ahead(!self.sparse_reads);
            let peeked = scanner.peek_header().map_err(io(here.offset))?;
            if let Some(header) = peeked.filter(|h| {
                h.kind == RecordKind::Put
                    && h.is_encrypted()
                    && h.payload_len() >= AHEAD_RECORD_BYTES_MIN
            }) {
                asked_ahead = true;
                // Reading ahead costs a copy of every byte: worth it only for small records.
                self.sparse_reads = header.payload_len() >= SPARSE_READ_RECORD_BYTES_MIN;
                let next = (seg, header.offset + header.aligned_len());
                if let Some(plain) = a.take((seg, header.offset), &header.aad_bytes(), next) {
                    scanner.skip_record(&header);
                    let events = decode_put_events(&header, plain.bytes(), &path, seg)?;
                    a.recycle(plain);
                    self.accept_put(ctx, seg, &header, events);
                    return Ok(true);
                }
            }
        }
        let item = scanner.next_item().map_err(io(here.offset))?;
        let corruption = |offset, kind| Corruption {
            file: path.clone(),
            segment: seg,
            offset,
            kind,
        };
        let (offset, kind) = match item {
            ScanItem::Record { header, payload } => match header.kind {
                RecordKind::Put => {
                    let events = if header.is_encrypted() {
                        let aad = header.aad_bytes();
                        // Decrypted in place in the scanner's buffer: no copy, no allocation.
                        let stored = scanner.last_payload_mut().unwrap_or_default();
                        let opened = self
                            .opener
                            .open_owned(&aad, seg, header.offset, stored)
                            .map(|range| &stored[range])
                            .map_err(|failure| {
                            ctx.metrics.decrypt_error_count.fetch_add(1, Relaxed);
                            if matches!(failure, OpenFailure::Tampered { .. }) {
                                ctx.metrics.tampered_records.fetch_add(1, Relaxed);
                            }
                            tracing::error!(path = %path.display(), segment = seg,
                                offset = header.offset, error = %failure,
                                "cannot decrypt a committed record; takes fail until this is fixed");
                            TakeError::Encrypted {
                                path: path.clone(),
                                segment: seg,
                                offset: header.offset,
                                failure,
                            }
                        })?;
                        if let (Some(a), false) = (&self.ahead, asked_ahead) {
                            // A record the thread was not asked for (peeked otherwise): tell
                            // it where the reader is.
                            if header.payload_len() >= AHEAD_RECORD_BYTES_MIN {
                                let next = (seg, header.offset + header.aligned_len());
                                let _ = a.take((seg, header.offset), &aad, next);
                            }
                        }
                        decode_put_events(&header, opened, &path, seg)?
                    } else {
                        decode_put_events(&header, payload, &path, seg)?
                    };
                    self.accept_put(ctx, seg, &header, events);
                    return Ok(true);
                }
                RecordKind::Take => return Ok(true),
                RecordKind::Gap => {
                    // Repaired damage: the events were counted lost when it was found.
                    let end = header.first_seq + u64::from(header.event_count);
                    self.resume_at(ctx, self.reader_next_seq, header.first_seq);
                    let added = self.consumed.insert(header.first_seq, end);
                    self.forget_pending(added);
                    self.reader_next_seq = Some(end);
                    return Ok(true);
                }
                RecordKind::Seal => {
                    let seal = SealPayload::decode(payload);
                    self.resume_at(ctx, self.reader_next_seq, seal.next_seq);
                    self.reader_next_seq = Some(seal.next_seq);
                    return self.move_past_segment(
                        ctx,
                        seg,
                        seal.next_segment_id,
                        &path,
                        header.offset,
                    );
                }
            },
            ScanItem::End { offset } => (
                offset,
                CorruptionKind::Truncated {
                    needed: limit.saturating_sub(offset),
                    available: 0,
                },
            ),
            ScanItem::Bad { offset, kind } => (offset, kind),
        };
        // Damage below the visible end.
        self.skip_damage(ctx, corruption(offset, kind), limit, &path)
    }

    /// Queues the events of put record `header` of segment `seg` that are not consumed.
    fn accept_put(
        &mut self,
        ctx: &ReadContext<'_>,
        seg: u64,
        header: &RecordHeader,
        events: Vec<(Event, u64)>,
    ) {
        let first = header.first_seq;
        let end = first + u64::from(header.event_count);
        self.resume_at(ctx, self.reader_next_seq, first);
        self.reader_next_seq = Some(end);
        let mut any = false;
        for (i, (ev, used)) in events.into_iter().enumerate() {
            let seq = first + i as u64;
            if !self.consumed.contains(seq) {
                self.front.push_back(Taken {
                    seq,
                    event: ev,
                    bytes: used,
                });
                any = true;
            }
        }
        if any {
            self.index.push_back(ReadRecord {
                end_seq: end,
                at: LogPos::new(seg, header.offset),
            });
        }
    }

    /// Skips damage `at` met below the visible end (whose segment ends at `limit` for the
    /// reader): refused in strict mode; otherwise the cursor moves to the next valid record (or
    /// the next segment), the damaged bytes are queued for quarantine, and the events lost are
    /// counted now if nothing valid follows, else when the next record reveals the gap.
    fn skip_damage(
        &mut self,
        ctx: &ReadContext<'_>,
        at: Corruption,
        limit: u64,
        path: &Path,
    ) -> Result<bool, TakeError> {
        let (seg, offset) = (at.segment, at.offset);
        if ctx.mode == RecoveryMode::Strict {
            return Err(TakeError::Corrupt(at));
        }
        let Some(scanner) = self.cursor.as_mut() else {
            return Ok(false);
        };
        ctx.metrics.corrupt_record_count.fetch_add(1, Relaxed);
        let later = scanner
            .find_next_valid(offset + 8)
            .map_err(|source| TakeError::Io {
                path: path.to_path_buf(),
                offset,
                source,
            })?;
        let file = ctx.segments.get(seg).map(|s| s.file);
        let to = later
            .as_ref()
            .map_or(limit.min(offset + (1 << 20)), |h| h.offset);
        tracing::error!(file = %at.file.display(), segment = seg, offset, kind = %at.kind,
            "damaged record met while reading; skipping it");
        let mut lost = 0;
        let later_is_none = later.is_none();
        match later {
            Some(h) => {
                if let Some(c) = self.cursor.as_mut() {
                    c.seek(h.offset);
                }
            }
            None if seg == self.visible.segment => {
                // Nothing valid up to the visible end: everything committed up to there is lost.
                let visible_offset = self.visible.offset;
                if let Some(c) = self.cursor.as_mut() {
                    c.seek(visible_offset);
                }
                let expected = self
                    .reader_next_seq
                    .unwrap_or(self.consumed.low_water_mark());
                let next_seq = self.next_seq;
                lost = self.lose(ctx, expected, next_seq);
                self.reader_next_seq = Some(next_seq);
            }
            None => {
                let next = ctx
                    .segments
                    .ids()
                    .into_iter()
                    .find(|&id| id > seg)
                    .unwrap_or(seg + 1);
                self.move_past_segment(ctx, seg, next, path, offset)?;
            }
        }
        if let Some(file) = file {
            self.quarantine_work.push(QuarantineWork::Bytes {
                at: at.clone(),
                file,
                bytes: to - offset,
            });
        }
        if later_is_none && seg == self.visible.segment {
            // The loss is already known.
            self.quarantine_work.push(QuarantineWork::Note {
                at,
                bytes: to - offset,
                events_lost: lost,
            });
        } else {
            // The next record the cursor reads tells how many events were lost.
            self.pending_damage = Some(SkippedDamage {
                at,
                bytes: to - offset,
            });
        }
        Ok(true)
    }

    /// Moves the cursor to segment `next` (or the first one after it that exists).
    fn move_past_segment(
        &mut self,
        ctx: &ReadContext<'_>,
        seg: u64,
        next: u64,
        path: &Path,
        offset: u64,
    ) -> Result<bool, TakeError> {
        let target = ctx.segments.ids().into_iter().find(|&id| id >= next);
        let Some((id, open)) = target.and_then(|id| ctx.segments.get(id).map(|o| (id, o))) else {
            return Err(TakeError::Corrupt(Corruption {
                file: path.to_path_buf(),
                segment: seg,
                offset,
                kind: CorruptionKind::BadPayload {
                    what: "no segment follows this one",
                },
            }));
        };
        self.cursor = Some(Scanner::new(
            open.file,
            id,
            open.binding,
            SEGMENT_HEADER_BYTES as u64,
            u64::MAX,
        ));
        Ok(true)
    }
}

/// The events of put record `header` of segment `seg` (file `path`) from its plain payload,
/// each with its encoded length; the payload must hold exactly its events.
fn decode_put_events(
    header: &RecordHeader,
    payload: &[u8],
    path: &Path,
    seg: u64,
) -> Result<Vec<(Event, u64)>, TakeError> {
    let corruption = |kind| {
        TakeError::Corrupt(Corruption {
            file: path.to_owned(),
            segment: seg,
            offset: header.offset,
            kind,
        })
    };
    let mut events = Vec::with_capacity(header.event_count as usize);
    let mut at = 0usize;
    for _ in 0..header.event_count {
        let (ev, used) = event::decode(&payload[at..]).map_err(corruption)?;
        at += used;
        events.push((ev, used as u64));
    }
    if at != payload.len() {
        return Err(corruption(CorruptionKind::BadPayload {
            what: "put payload longer than its events",
        }));
    }
    Ok(events)
}
