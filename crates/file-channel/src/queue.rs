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
//! For checkpoints the queue also remembers where the records between the low-water mark and
//! the cursor start (`index`): one entry per record that still has an unconsumed event behind
//! the cursor — in-flight records, not pending ones — so a checkpoint can say where a reader
//! must restart.
//!
//! Damage met while reading (possible only for bytes a checkpoint let open skip, or media
//! damage after open) is handled as open handles it: refused in strict mode; otherwise skipped,
//! quarantined, and the events lost counted from the sequence gap.

use crate::channel::Shared;
use crate::config::RecoveryMode;
use crate::consumed::ConsumedSet;
use crate::error::{Corruption, TakeError};
use crate::format::record::{RecordKind, SealPayload};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::format::{event, CorruptionKind};
use crate::segment::scan::{ScanItem, Scanner};
use crate::storage::DynFile;
use crate::Event;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;

/// Quarantine I/O the reader decided on. It is done by the taker after it let go of the queue
/// lock ([`crate::channel::Shared::quarantine`]): its directory fsyncs go through the sync
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

/// A taken event: its sequence number, the event, and its encoded size.
pub(crate) type Taken = (u64, Event, u64);

/// A position in the log: segment id, byte offset.
pub(crate) type LogPos = (u64, u64);

/// The queue's state; guarded by the channel's state mutex.
#[derive(Debug)]
pub(crate) struct QueueState {
    /// Pending events plus events reserved by open put transactions.
    pub used_events: u64,
    /// Encoded bytes of the same.
    pub used_bytes: u64,
    /// Committed, not consumed events (taken-but-uncommitted included).
    pub pending_events: u64,
    /// Encoded bytes of the pending events.
    pub pending_bytes: u64,
    /// One past the last visible sequence number.
    pub next_seq: u64,
    /// Readers may read records below this position.
    pub visible: LogPos,
    /// Consumed sequence numbers.
    pub consumed: ConsumedSet,
    redeliver: BTreeMap<u64, (Event, u64)>,
    front: VecDeque<Taken>,
    cursor: Option<Scanner>,
    /// `(first_seq, end_seq, position)` of records read with events not yet consumed.
    index: VecDeque<(u64, u64, LogPos)>,
    /// The sequence number the next put record under the cursor should start with.
    reader_next_seq: Option<u64>,
    /// Damage skipped by the reader whose note waits for the next record to reveal the gap.
    pending_damage: Option<(Corruption, u64)>,
    /// Quarantine I/O waiting for the queue lock to be released.
    pub quarantine_work: Vec<QuarantineWork>,
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
        }
    }

    /// A position at or before the record holding the low-water mark: where a reader restarts.
    pub(crate) fn read_start(&mut self) -> LogPos {
        let lwm = self.consumed.low_water_mark();
        while self.index.front().is_some_and(|&(_, end, _)| end <= lwm) {
            self.index.pop_front();
        }
        match (self.index.front(), &self.cursor) {
            (Some(&(_, _, pos)), _) => pos,
            (None, Some(c)) => (c.segment_id(), c.position()),
            (None, None) => self.visible,
        }
    }

    /// Returns rolled-back events to the head of the queue.
    pub(crate) fn give_back(&mut self, taken: Vec<Taken>) {
        for (seq, ev, bytes) in taken {
            self.redeliver.insert(seq, (ev, bytes));
        }
    }

    /// The next event to hand out, if one is visible.
    pub(crate) fn pop_next(&mut self, shared: &Shared) -> Result<Option<Taken>, TakeError> {
        if let Some((seq, (ev, bytes))) = self.redeliver.pop_first() {
            return Ok(Some((seq, ev, bytes)));
        }
        loop {
            while let Some(t) = self.front.pop_front() {
                if !self.consumed.contains(t.0) {
                    return Ok(Some(t));
                }
            }
            if !self.read_next_record(shared)? {
                return Ok(None);
            }
        }
    }

    /// The sequence resumes at `found` after the record the cursor expected `expected` from:
    /// events in between are lost; the note of the damage that caused it gets the count.
    fn resume_at(&mut self, shared: &Shared, expected: Option<u64>, found: u64) {
        // Right after open the cursor has read no put record yet; if damage was skipped before
        // the first one, everything not consumed below `found` was in the damaged bytes (the
        // cursor started at or before the record holding the low-water mark).
        let expected = expected.or_else(|| {
            self.pending_damage
                .as_ref()
                .map(|_| self.consumed.low_water_mark())
        });
        let lost = match expected {
            Some(e) if found > e => self.lose(shared, e, found),
            _ => 0,
        };
        if let Some((at, bytes)) = self.pending_damage.take() {
            self.quarantine_work.push(QuarantineWork::Note {
                at,
                bytes,
                events_lost: lost,
            });
        }
    }

    /// Marks `[from, to)` lost: consumed without delivery, counted once.
    fn lose(&mut self, shared: &Shared, from: u64, to: u64) -> u64 {
        let lost = self.consumed.insert(from, to);
        if lost > 0 {
            self.pending_events -= lost.min(self.pending_events);
            self.used_events -= lost.min(self.used_events);
            let m = &shared.metrics;
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
    fn read_next_record(&mut self, shared: &Shared) -> Result<bool, TakeError> {
        let Some(scanner) = self.cursor.as_mut() else {
            return Ok(false);
        };
        let here = (scanner.segment_id(), scanner.position());
        if here >= self.visible {
            return Ok(false);
        }
        let seg = scanner.segment_id();
        let limit = if seg == self.visible.0 {
            self.visible.1
        } else {
            u64::MAX
        };
        scanner.set_limit(limit);
        let path = shared.segments.get(seg).map(|s| s.path).unwrap_or_default();
        let io = |offset| {
            let path = path.clone();
            move |source| TakeError::Io {
                path,
                offset,
                source,
            }
        };
        let item = scanner.next_item().map_err(io(here.1))?;
        let corruption = |offset, kind| Corruption {
            file: path.clone(),
            segment: seg,
            offset,
            kind,
        };
        let (offset, kind) = match item {
            ScanItem::Record { header, payload } => match header.kind {
                RecordKind::Put => {
                    let mut events = Vec::with_capacity(header.event_count as usize);
                    let mut at = 0usize;
                    for _ in 0..header.event_count {
                        let (ev, used) = event::decode(&payload[at..])
                            .map_err(|kind| TakeError::Corrupt(corruption(header.offset, kind)))?;
                        at += used;
                        events.push((ev, used as u64));
                    }
                    if at != payload.len() {
                        return Err(TakeError::Corrupt(corruption(
                            header.offset,
                            CorruptionKind::BadPayload {
                                what: "put payload longer than its events",
                            },
                        )));
                    }
                    let first = header.first_seq;
                    let end = first + u64::from(header.event_count);
                    self.resume_at(shared, self.reader_next_seq, first);
                    self.reader_next_seq = Some(end);
                    let mut any = false;
                    for (i, (ev, used)) in events.into_iter().enumerate() {
                        let seq = first + i as u64;
                        if !self.consumed.contains(seq) {
                            self.front.push_back((seq, ev, used));
                            any = true;
                        }
                    }
                    if any {
                        self.index.push_back((first, end, (seg, header.offset)));
                    }
                    return Ok(true);
                }
                RecordKind::Take => return Ok(true),
                RecordKind::Gap => {
                    // Repaired damage: the events were counted lost when it was found.
                    let end = header.first_seq + u64::from(header.event_count);
                    self.resume_at(shared, self.reader_next_seq, header.first_seq);
                    let added = self.consumed.insert(header.first_seq, end);
                    self.pending_events -= added.min(self.pending_events);
                    self.used_events -= added.min(self.used_events);
                    self.reader_next_seq = Some(end);
                    return Ok(true);
                }
                RecordKind::Seal => {
                    let seal = SealPayload::decode(payload);
                    self.resume_at(shared, self.reader_next_seq, seal.next_seq);
                    self.reader_next_seq = Some(seal.next_seq);
                    return self.move_past_segment(
                        shared,
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
        let at = corruption(offset, kind);
        if shared.config.recovery_mode == RecoveryMode::Strict {
            return Err(TakeError::Corrupt(at));
        }
        shared.metrics.corrupt_record_count.fetch_add(1, Relaxed);
        let later = scanner.find_next_valid(offset + 8).map_err(io(offset))?;
        let file = shared.segments.get(seg).map(|s| s.file);
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
            None if seg == self.visible.0 => {
                // Nothing valid up to the visible end: everything committed up to there is lost.
                let visible_offset = self.visible.1;
                if let Some(c) = self.cursor.as_mut() {
                    c.seek(visible_offset);
                }
                let expected = self
                    .reader_next_seq
                    .unwrap_or(self.consumed.low_water_mark());
                let next_seq = self.next_seq;
                lost = self.lose(shared, expected, next_seq);
                self.reader_next_seq = Some(next_seq);
            }
            None => {
                let next = shared
                    .segments
                    .ids()
                    .into_iter()
                    .find(|&id| id > seg)
                    .unwrap_or(seg + 1);
                self.move_past_segment(shared, seg, next, &path, offset)?;
            }
        }
        if let Some(file) = file {
            self.quarantine_work.push(QuarantineWork::Bytes {
                at: at.clone(),
                file,
                bytes: to - offset,
            });
        }
        if later_is_none && seg == self.visible.0 {
            // The loss is already known.
            self.quarantine_work.push(QuarantineWork::Note {
                at,
                bytes: to - offset,
                events_lost: lost,
            });
        } else {
            // The next record the cursor reads tells how many events were lost.
            self.pending_damage = Some((at, to - offset));
        }
        Ok(true)
    }

    /// Moves the cursor to segment `next` (or the first one after it that exists).
    fn move_past_segment(
        &mut self,
        shared: &Shared,
        seg: u64,
        next: u64,
        path: &std::path::Path,
        offset: u64,
    ) -> Result<bool, TakeError> {
        let target = shared.segments.ids().into_iter().find(|&id| id >= next);
        let Some((id, open)) = target.and_then(|id| shared.segments.get(id).map(|o| (id, o)))
        else {
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
            SEGMENT_HEADER_BYTES as u64,
            u64::MAX,
        ));
        Ok(true)
    }
}
