//! Replay: rebuilds the queue state of a channel from its segment files alone.
//!
//! Segments are read in id order; put records advance the sequence, take records mark ranges
//! consumed, seal records close a segment and name the next one. The end of data is found by
//! length and checksum only. In the *last* segment, bytes after the last valid record are a
//! torn tail (the crash hit an unsynced write) unless a later valid record's durable mark proves
//! they had already been fsynced, in which case they are corruption. Damage anywhere else is
//! corruption. A writable replay truncates a torn tail and fsyncs; a read-only one (for the
//! tools) only reports it.

use crate::consumed::ConsumedSet;
use crate::error::{Corruption, OpenError};
use crate::format::record::{RecordHeader, RecordKind, SealPayload, TakePayload};
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::limits::MAX_SEGMENTS;
use crate::segment::scan::{ScanItem, Scanner};
use crate::segment::{list_segments, SegmentPath};
use crate::storage::{parent_dir, DynFile, Storage};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A segment as replay left it.
#[derive(Clone, Debug)]
pub struct ReplayedSegment {
    /// Segment id.
    pub id: u64,
    /// The file.
    pub path: PathBuf,
    /// Open handle (writable when the replay was).
    pub file: DynFile,
    /// The channel's next sequence number when the segment was created (from its header).
    pub first_seq: u64,
    /// End of its valid records.
    pub end: u64,
    /// Whether it ends with a seal record.
    pub sealed: bool,
}

/// Bytes after the last valid record of the last segment, cut off by a writable replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub segment: u64,
    /// The file.
    pub path: PathBuf,
    /// Where valid data ends.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
    /// Whether the whole file was removed (its header was never made durable).
    pub removed_file: bool,
}

/// The state the logs describe.
#[derive(Debug)]
pub struct Replayed {
    /// Segments in id order.
    pub segments: Vec<ReplayedSegment>,
    /// The next sequence number to assign.
    pub next_seq: u64,
    /// Consumed sequence numbers.
    pub consumed: ConsumedSet,
    /// Encoded event bytes put (over all replayed segments).
    pub put_bytes: u64,
    /// Encoded event bytes consumed.
    pub take_bytes: u64,
    /// Records read.
    pub records: u64,
    /// Bytes of records read.
    pub record_bytes: u64,
    /// One more than the highest transaction id seen.
    pub next_txn_id: u64,
    /// The torn tail found, if any.
    pub torn_tail: Option<TornTail>,
    /// How long it took.
    pub took: Duration,
}

impl Replayed {
    /// Events committed and not consumed.
    pub fn pending_events(&self) -> u64 {
        self.next_seq
            .saturating_sub(self.consumed.low_water_mark())
            .saturating_sub(self.consumed.consumed_above_lwm())
    }

    /// Encoded bytes of the pending events.
    pub fn pending_bytes(&self) -> u64 {
        self.put_bytes.saturating_sub(self.take_bytes)
    }

    /// Where a reader starts: the segment holding the low-water mark, from its first record.
    pub fn read_start(&self) -> Option<(u64, u64)> {
        let lwm = self.consumed.low_water_mark();
        self.segments
            .iter()
            .rev()
            .find(|s| s.first_seq <= lwm)
            .or(self.segments.first())
            .map(|s| (s.id, SEGMENT_HEADER_BYTES as u64))
    }
}

/// Options of a replay.
#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    /// Truncate a torn tail (and fsync) instead of only reporting it.
    pub writable: bool,
    /// The channel id every segment header must carry; `None` accepts the first one seen.
    pub channel_id: Option<u64>,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OpenError {
    let path = path.to_path_buf();
    move |source| OpenError::Io { op, path, source }
}

fn corrupt(path: &Path, segment: u64, offset: u64, kind: CorruptionKind) -> OpenError {
    OpenError::Corrupt(Corruption {
        file: path.to_path_buf(),
        segment,
        offset,
        kind,
    })
}

/// Replays the segments found in `dirs`.
pub fn replay(
    storage: &dyn Storage,
    dirs: &[PathBuf],
    opts: ReplayOptions,
) -> Result<Replayed, OpenError> {
    let started = Instant::now();
    let mut paths = Vec::new();
    for dir in dirs {
        if storage.exists(dir) {
            paths.push(dir.clone());
        }
    }
    let found = list_segments(storage, &paths).map_err(|source| OpenError::Io {
        op: "list segments in",
        path: dirs.first().cloned().unwrap_or_default(),
        source,
    })?;
    if found.len() > MAX_SEGMENTS {
        return Err(OpenError::TooManySegments {
            dir: dirs.first().cloned().unwrap_or_default(),
            count: found.len(),
            limit: MAX_SEGMENTS,
        });
    }
    let mut st = State {
        out: Replayed {
            segments: Vec::with_capacity(found.len()),
            next_seq: 0,
            consumed: ConsumedSet::new(0),
            put_bytes: 0,
            take_bytes: 0,
            records: 0,
            record_bytes: 0,
            next_txn_id: 1,
            torn_tail: None,
            took: Duration::ZERO,
        },
        channel_id: opts.channel_id,
        expect_next_segment: None,
        sealed_next: None,
    };
    let count = found.len();
    for (i, seg) in found.into_iter().enumerate() {
        let last = i + 1 == count;
        st.replay_segment(storage, &seg, last, opts.writable)?;
    }
    st.out.took = started.elapsed();
    tracing::info!(
        segments = st.out.segments.len(),
        records = st.out.records,
        next_seq = st.out.next_seq,
        pending = st.out.pending_events(),
        took_ms = st.out.took.as_millis() as u64,
        "replayed channel log"
    );
    Ok(st.out)
}

struct State {
    out: Replayed,
    channel_id: Option<u64>,
    expect_next_segment: Option<(u64, PathBuf)>,
    sealed_next: Option<u64>,
}

impl State {
    fn replay_segment(
        &mut self,
        storage: &dyn Storage,
        seg: &SegmentPath,
        last: bool,
        writable: bool,
    ) -> Result<(), OpenError> {
        let path = &seg.path;
        let file = storage
            .open(path, writable)
            .map_err(io_err("open segment", path))?;
        let file_len = file.len().map_err(io_err("read the length of", path))?;
        let mut head = [0u8; SEGMENT_HEADER_BYTES];
        let head_len = (file_len as usize).min(SEGMENT_HEADER_BYTES);
        file.read_exact_at(&mut head[..head_len], 0)
            .map_err(io_err("read segment header of", path))?;
        let header = match SegmentHeader::decode(&head[..head_len]) {
            Ok(h) => h,
            Err(kind) => {
                // A header that never became durable can only belong to the newest segment,
                // and then no record was ever written after it.
                let mut scanner = Scanner::from_start(file.clone(), seg.id);
                let any_record = scanner
                    .find_next_valid(SEGMENT_HEADER_BYTES as u64)
                    .map_err(io_err("read", path))?;
                if last && any_record.is_none() {
                    tracing::warn!(segment = seg.id, path = %path.display(), bytes = file_len,
                        %kind, "newest segment has no durable header; removing it (torn creation)");
                    if writable {
                        storage.remove(path).map_err(io_err("remove", path))?;
                        let dir = parent_dir(path);
                        storage
                            .sync_dir(dir)
                            .map_err(io_err("fsync directory", dir))?;
                    }
                    self.out.torn_tail = Some(TornTail {
                        segment: seg.id,
                        path: path.clone(),
                        offset: 0,
                        bytes: file_len,
                        removed_file: true,
                    });
                    return Ok(());
                }
                return Err(corrupt(path, seg.id, 0, kind));
            }
        };
        if header.segment_id != seg.id {
            return Err(OpenError::Foreign {
                path: path.clone(),
                reason: format!(
                    "file name says segment {} but its header says {}",
                    seg.id, header.segment_id
                ),
            });
        }
        match self.channel_id {
            Some(id) if id != header.channel_id => {
                return Err(OpenError::Foreign {
                    path: path.clone(),
                    reason: format!(
                        "segment belongs to channel {:#018x}, this channel is {id:#018x}",
                        header.channel_id
                    ),
                })
            }
            _ => self.channel_id = Some(header.channel_id),
        }
        if let Some((expected, prev)) = self.expect_next_segment.take() {
            if expected != seg.id {
                return Err(corrupt(
                    &prev,
                    expected.saturating_sub(1),
                    0,
                    CorruptionKind::BadPayload {
                        what: "a segment named by a seal record is missing",
                    },
                ));
            }
        }
        if self.out.segments.is_empty() {
            self.out.next_seq = header.first_seq;
            self.out.consumed = ConsumedSet::new(header.first_seq);
        } else if header.first_seq != self.out.next_seq {
            return Err(corrupt(
                path,
                seg.id,
                0,
                CorruptionKind::SequenceGap {
                    expected: self.out.next_seq,
                    found: header.first_seq,
                },
            ));
        }

        let mut scanner = Scanner::from_start(file.clone(), seg.id);
        let mut sealed = false;
        let end = loop {
            let item = scanner.next_item().map_err(io_err("read", path))?;
            let (offset, kind) = match item {
                ScanItem::Record {
                    header: rh,
                    payload,
                } => {
                    if sealed {
                        return Err(corrupt(
                            path,
                            seg.id,
                            rh.offset,
                            CorruptionKind::BadPayload {
                                what: "record after the segment's seal",
                            },
                        ));
                    }
                    sealed = self.apply(path, &rh, payload)?;
                    continue;
                }
                ScanItem::End { offset } => (offset, None),
                ScanItem::Bad { offset, kind } => (offset, Some(kind)),
            };
            if !last {
                if sealed && kind.is_none() {
                    break offset;
                }
                let kind = kind.unwrap_or(CorruptionKind::BadPayload {
                    what: "segment ends without a seal record",
                });
                return Err(corrupt(path, seg.id, offset, kind));
            }
            // The last segment: is what follows a torn tail or damage to durable data?
            let later = scanner
                .find_next_valid(offset + 8)
                .map_err(io_err("read", path))?;
            if let Some(later) = later {
                if later.durable_mark > offset {
                    let kind = kind.unwrap_or(CorruptionKind::BadPayload {
                        what: "zeroed bytes before a later durable record",
                    });
                    return Err(corrupt(path, seg.id, offset, kind));
                }
            }
            if kind.is_some() || later.is_some() {
                let bytes = file_len.saturating_sub(offset);
                tracing::warn!(segment = seg.id, path = %path.display(), offset, bytes,
                    "torn tail after the last valid record; truncating");
                if writable {
                    file.set_len(offset).map_err(io_err("truncate", path))?;
                    file.sync_data().map_err(io_err("fsync", path))?;
                }
                self.out.torn_tail = Some(TornTail {
                    segment: seg.id,
                    path: path.clone(),
                    offset,
                    bytes,
                    removed_file: false,
                });
            }
            break offset;
        };
        if let (true, Some(next)) = (sealed, self.sealed_next.take()) {
            self.expect_next_segment = Some((next, path.clone()));
        }
        self.out.segments.push(ReplayedSegment {
            id: seg.id,
            path: path.clone(),
            file,
            first_seq: header.first_seq,
            end,
            sealed,
        });
        Ok(())
    }

    /// Applies one record; returns whether it was a seal.
    fn apply(&mut self, path: &Path, h: &RecordHeader, payload: &[u8]) -> Result<bool, OpenError> {
        self.out.records += 1;
        self.out.record_bytes += h.aligned_len();
        self.out.next_txn_id = self.out.next_txn_id.max(h.txn_id.saturating_add(1));
        match h.kind {
            RecordKind::Put => {
                if h.first_seq != self.out.next_seq {
                    return Err(corrupt(
                        path,
                        h.segment_id,
                        h.offset,
                        CorruptionKind::SequenceGap {
                            expected: self.out.next_seq,
                            found: h.first_seq,
                        },
                    ));
                }
                self.out.next_seq += u64::from(h.event_count);
                self.out.put_bytes += payload.len() as u64;
                Ok(false)
            }
            RecordKind::Take => {
                let take = TakePayload::decode(payload, h.event_count)
                    .map_err(|kind| corrupt(path, h.segment_id, h.offset, kind))?;
                for (s, e) in take.ranges {
                    self.out.consumed.insert(s, e.min(self.out.next_seq));
                }
                self.out.take_bytes += take.bytes;
                Ok(false)
            }
            RecordKind::Seal => {
                let seal = SealPayload::decode(payload);
                if seal.next_seq != self.out.next_seq || seal.next_segment_id <= h.segment_id {
                    return Err(corrupt(
                        path,
                        h.segment_id,
                        h.offset,
                        CorruptionKind::BadPayload {
                            what: "seal record disagrees with the log",
                        },
                    ));
                }
                self.sealed_next = Some(seal.next_segment_id);
                Ok(true)
            }
        }
    }
}
