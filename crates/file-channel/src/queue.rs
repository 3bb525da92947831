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

use crate::consumed::ConsumedSet;
use crate::error::{Corruption, TakeError};
use crate::format::record::{RecordKind, SealPayload};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::format::{event, CorruptionKind};
use crate::segment::scan::{ScanItem, Scanner};
use crate::segment::SegmentSet;
use crate::Event;
use std::collections::{BTreeMap, VecDeque};

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
        }
    }

    /// Returns rolled-back events to the head of the queue.
    pub(crate) fn give_back(&mut self, taken: Vec<Taken>) {
        for (seq, ev, bytes) in taken {
            self.redeliver.insert(seq, (ev, bytes));
        }
    }

    /// The next event to hand out, if one is visible.
    pub(crate) fn pop_next(&mut self, segments: &SegmentSet) -> Result<Option<Taken>, TakeError> {
        if let Some((seq, (ev, bytes))) = self.redeliver.pop_first() {
            return Ok(Some((seq, ev, bytes)));
        }
        loop {
            while let Some(t) = self.front.pop_front() {
                if !self.consumed.contains(t.0) {
                    return Ok(Some(t));
                }
            }
            if !self.read_next_record(segments)? {
                return Ok(None);
            }
        }
    }

    /// Reads the next record at the cursor; false when the cursor is at the visible end.
    fn read_next_record(&mut self, segments: &SegmentSet) -> Result<bool, TakeError> {
        let Some(scanner) = self.cursor.as_mut() else {
            return Ok(false);
        };
        let here = (scanner.segment_id(), scanner.position());
        if here >= self.visible {
            return Ok(false);
        }
        let seg = scanner.segment_id();
        scanner.set_limit(if seg == self.visible.0 {
            self.visible.1
        } else {
            u64::MAX
        });
        let path = || segments.get(seg).map(|s| s.path).unwrap_or_default();
        let item = scanner.next_item().map_err(|source| TakeError::Io {
            path: path(),
            offset: here.1,
            source,
        })?;
        let corrupt = |offset, kind| {
            TakeError::Corrupt(Corruption {
                file: path(),
                segment: seg,
                offset,
                kind,
            })
        };
        match item {
            ScanItem::Record { header, payload } => match header.kind {
                RecordKind::Put => {
                    let mut at = 0usize;
                    for i in 0..u64::from(header.event_count) {
                        let (ev, used) = event::decode(&payload[at..])
                            .map_err(|kind| corrupt(header.offset, kind))?;
                        at += used;
                        let seq = header.first_seq + i;
                        if !self.consumed.contains(seq) {
                            self.front.push_back((seq, ev, used as u64));
                        }
                    }
                    if at != payload.len() {
                        return Err(corrupt(
                            header.offset,
                            CorruptionKind::BadPayload {
                                what: "put payload longer than its events",
                            },
                        ));
                    }
                    Ok(true)
                }
                RecordKind::Take => Ok(true),
                RecordKind::Seal => {
                    let next = SealPayload::decode(payload).next_segment_id;
                    let Some(open) = segments.get(next) else {
                        return Err(corrupt(
                            header.offset,
                            CorruptionKind::BadPayload {
                                what: "seal names a segment that is not open",
                            },
                        ));
                    };
                    self.cursor = Some(Scanner::new(
                        open.file,
                        next,
                        SEGMENT_HEADER_BYTES as u64,
                        u64::MAX,
                    ));
                    Ok(true)
                }
            },
            ScanItem::End { offset } => Err(corrupt(
                offset,
                CorruptionKind::Truncated {
                    needed: self.visible.1.saturating_sub(offset),
                    available: 0,
                },
            )),
            ScanItem::Bad { offset, kind } => Err(corrupt(offset, kind)),
        }
    }
}
