//! The second pass of `verify`: every segment walked with the engine's [`Scanner`], in the same
//! order and with the same rules as replay for where damage ends and what the newest segment's
//! tail is, collecting what replay does not return — per-segment figures, the first sequence
//! number a damaged header should have held, and the sequence state at the positions the
//! checkpoints name and at every damaged offset.
//!
//! The walk decides nothing: damage and torn tails are what [`crate::replay::replay`] says.
//! It only records state; the bound on its memory is one entry per segment plus one snapshot per
//! position asked for.

use crate::consumed::ConsumedSet;
use crate::format::record::{RecordBinding, RecordHeader, RecordKind, SealPayload, TakePayload};
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::segment::lost_header::binding_behind_lost_header;
use crate::segment::scan::{ScanItem, Scanner};
use crate::segment::SegmentPath;
use crate::storage::{DynFile, Storage};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// A valid put record the walk met, for a caller that looks at payloads (verify's check of
/// encrypted records).
pub(crate) struct PutSeen<'a> {
    /// The segment file.
    pub path: &'a Path,
    /// What its checksum is bound to.
    pub binding: RecordBinding,
    /// Its header.
    pub header: &'a RecordHeader,
    /// Its payload as stored.
    pub payload: &'a [u8],
}

/// Called with every valid put record the walk meets.
pub(crate) type PutVisitor<'v> = dyn FnMut(PutSeen<'_>) + 'v;

/// A stretch the walk skipped (damage, or zeros before a later record).
#[derive(Clone, Debug)]
pub(crate) struct BadRange {
    /// Where it starts.
    pub offset: u64,
    /// The next valid record the walk resumed at, if any.
    pub resumes_at: Option<u64>,
}

/// One segment as the walk saw it.
#[derive(Clone, Debug)]
pub(crate) struct WalkSegment {
    pub id: u64,
    pub path: PathBuf,
    pub file_len: u64,
    pub header: Result<SegmentHeader, CorruptionKind>,
    pub records: u64,
    pub put_events: u64,
    pub record_bytes: u64,
    /// Where the walk stopped: the end of valid data.
    pub valid_end: u64,
    /// The seal, if the last record read is one.
    pub seal: Option<SealPayload>,
    pub bad: Vec<BadRange>,
    /// The first sequence number the records tell (first put, gap or seal).
    pub first_seq_hint: Option<u64>,
    /// The newest segment without a valid header or record, which replay removes.
    pub torn_creation: bool,
    /// A torn-creation segment whose header is valid and whose other bytes are all zero: an
    /// empty newest segment (a rotation, or an open that wrote nothing), not a torn write.
    pub empty: bool,
    /// What its records' checksums are bound to: from its header, else the first binding that
    /// finds a record behind the lost header.
    pub binding: RecordBinding,
}

/// The sequence state at a position.
#[derive(Clone, Debug)]
pub(crate) struct PosState {
    /// The next sequence number there.
    pub next_seq: u64,
    /// What the log says is consumed there (only where asked for).
    pub consumed: Option<ConsumedSet>,
}

/// The outcome of a walk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Walk {
    pub segments: Vec<WalkSegment>,
    pub at: HashMap<(u64, u64), PosState>,
    /// The sequence the log starts at (the first valid header or record).
    pub first_seq: Option<u64>,
    /// The next sequence number at the end of the log.
    pub next_seq: u64,
}

impl Walk {
    pub(crate) fn segment(&self, id: u64) -> Option<&WalkSegment> {
        self.segments.iter().find(|s| s.id == id)
    }

    pub(crate) fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    pub(crate) fn put_events(&self) -> u64 {
        self.segments.iter().map(|s| s.put_events).sum()
    }

    pub(crate) fn record_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.record_bytes).sum()
    }
}

struct State {
    started: bool,
    next_seq: u64,
    consumed: ConsumedSet,
    first_seq: Option<u64>,
}

impl State {
    fn start(&mut self, seq: u64) {
        if !self.started {
            self.started = true;
            self.next_seq = seq;
            self.consumed = ConsumedSet::new(seq);
            self.first_seq = Some(seq);
        }
    }

    fn advance(&mut self, seq: u64) {
        self.start(seq);
        self.next_seq = self.next_seq.max(seq);
    }
}

/// What segment `seg` (`file`) is read with: its header's binding, else the first of
/// `lost_header` under which it holds a record.
fn binding_of(
    file: &DynFile,
    seg: &SegmentPath,
    header: &Result<SegmentHeader, CorruptionKind>,
    lost_header: &[RecordBinding],
) -> io::Result<RecordBinding> {
    match header {
        Ok(h) => Ok(h.binding()),
        Err(_) => binding_behind_lost_header(file, seg.id, lost_header),
    }
}

fn has_record(
    storage: &dyn Storage,
    seg: &SegmentPath,
    lost_header: &[RecordBinding],
) -> io::Result<bool> {
    let file = storage.open(&seg.path, false)?;
    let header = super::read_segment_header(storage, &seg.path)?;
    let binding = binding_of(&file, seg, &header, lost_header)?;
    let mut scanner = Scanner::from_start(file, seg.id, binding);
    Ok(scanner
        .find_next_valid(SEGMENT_HEADER_BYTES as u64)?
        .is_some())
}

/// Walks `segs` (sorted by id). `interest` names the positions whose state is wanted; `true`
/// asks for the consumed set as well. `lost_header` are the bindings to try behind a segment
/// header that is lost. `on_put` sees every valid put record.
pub(crate) fn walk(
    storage: &dyn Storage,
    segs: &[SegmentPath],
    lost_header: &[RecordBinding],
    interest: &HashMap<(u64, u64), bool>,
    progress: &dyn Fn(usize, usize),
    on_put: &mut PutVisitor<'_>,
) -> io::Result<Walk> {
    let mut out = Walk::default();
    let mut st = State {
        started: false,
        next_seq: 0,
        consumed: ConsumedSet::new(0),
        first_seq: None,
    };
    // Replay drops a newest segment without any valid record (an interrupted rotation) when
    // there are at least two; the one before it is then the last.
    let mut count = segs.len();
    let mut dropped_newest = false;
    if count >= 2 {
        if let Some(newest) = segs.last() {
            if !has_record(storage, newest, lost_header)? {
                count -= 1;
                dropped_newest = true;
            }
        }
    }
    for (i, seg) in segs.iter().enumerate() {
        if i >= count {
            let t = torn_segment(storage, seg, lost_header)?;
            // An empty newest segment with a valid header (a rotation or an open that wrote
            // nothing yet): a checkpoint may name its start.
            if let Ok(h) = &t.header {
                st.advance(h.first_seq);
                snapshot(
                    interest,
                    &mut out.at,
                    (seg.id, SEGMENT_HEADER_BYTES as u64),
                    &st,
                );
            }
            out.segments.push(t);
            continue;
        }
        let last = i + 1 == count;
        let s = walk_segment(
            storage,
            seg,
            lost_header,
            last,
            &mut st,
            &mut Observers { interest, on_put },
            &mut out.at,
        )?;
        out.segments.push(s);
        progress(i + 1, segs.len());
    }
    if dropped_newest {
        progress(segs.len(), segs.len());
    }
    out.first_seq = st.first_seq;
    out.next_seq = st.next_seq;
    Ok(out)
}

fn torn_segment(
    storage: &dyn Storage,
    seg: &SegmentPath,
    lost_header: &[RecordBinding],
) -> io::Result<WalkSegment> {
    let file = storage.open(&seg.path, false)?;
    let file_len = file.len()?;
    let header = super::read_segment_header(storage, &seg.path)?;
    let binding = binding_of(&file, seg, &header, lost_header)?;
    let empty = header.is_ok() && all_zero_after(&file, SEGMENT_HEADER_BYTES as u64, file_len)?;
    Ok(WalkSegment {
        empty,
        id: seg.id,
        path: seg.path.clone(),
        file_len,
        valid_end: if header.is_ok() {
            SEGMENT_HEADER_BYTES as u64
        } else {
            0
        },
        header,
        records: 0,
        put_events: 0,
        record_bytes: 0,
        seal: None,
        bad: Vec::new(),
        first_seq_hint: None,
        torn_creation: true,
        binding,
    })
}

fn all_zero_after(file: &crate::storage::DynFile, from: u64, len: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

fn snapshot(
    interest: &HashMap<(u64, u64), bool>,
    at: &mut HashMap<(u64, u64), PosState>,
    pos: (u64, u64),
    st: &State,
) {
    if let Some(&want_consumed) = interest.get(&pos) {
        at.entry(pos).or_insert_with(|| PosState {
            next_seq: st.next_seq,
            consumed: want_consumed.then(|| st.consumed.clone()),
        });
    }
}

/// What the caller wants from a segment's walk: the positions of interest, and every put record.
struct Observers<'a, 'v> {
    interest: &'a HashMap<(u64, u64), bool>,
    on_put: &'a mut PutVisitor<'v>,
}

fn walk_segment(
    storage: &dyn Storage,
    seg: &SegmentPath,
    lost_header: &[RecordBinding],
    last: bool,
    st: &mut State,
    observers: &mut Observers<'_, '_>,
    at: &mut HashMap<(u64, u64), PosState>,
) -> io::Result<WalkSegment> {
    let interest = observers.interest;
    let file = storage.open(&seg.path, false)?;
    let file_len = file.len()?;
    let header = super::read_segment_header(storage, &seg.path)?;
    let binding = binding_of(&file, seg, &header, lost_header)?;
    let mut out = WalkSegment {
        id: seg.id,
        path: seg.path.clone(),
        file_len,
        header: header.clone(),
        records: 0,
        put_events: 0,
        record_bytes: 0,
        valid_end: SEGMENT_HEADER_BYTES as u64,
        seal: None,
        bad: Vec::new(),
        first_seq_hint: None,
        torn_creation: false,
        empty: false,
        binding,
    };
    let mut scanner = Scanner::from_start(file.clone(), seg.id, binding);
    if let Err(_kind) = &header {
        if last
            && scanner
                .find_next_valid(SEGMENT_HEADER_BYTES as u64)?
                .is_none()
        {
            out.torn_creation = true;
            out.valid_end = 0;
            return Ok(out);
        }
        scanner.seek(SEGMENT_HEADER_BYTES as u64);
    }
    if let Ok(h) = &header {
        st.advance(h.first_seq);
    }
    snapshot(interest, at, (seg.id, SEGMENT_HEADER_BYTES as u64), st);
    let mut sealed = false;
    loop {
        let (offset, kind) = match scanner.next_item()? {
            ScanItem::Record {
                header: rh,
                payload,
            } => {
                snapshot(interest, at, (seg.id, rh.offset), st);
                out.records += 1;
                out.record_bytes += rh.aligned_len();
                let end = rh.first_seq.saturating_add(u64::from(rh.event_count));
                sealed = rh.kind == RecordKind::Seal;
                match rh.kind {
                    RecordKind::Put => {
                        (observers.on_put)(PutSeen {
                            path: &seg.path,
                            binding,
                            header: &rh,
                            payload,
                        });
                        out.first_seq_hint.get_or_insert(rh.first_seq);
                        out.put_events += u64::from(rh.event_count);
                        st.advance(rh.first_seq);
                        st.next_seq = st.next_seq.max(end);
                    }
                    RecordKind::Gap => {
                        out.first_seq_hint.get_or_insert(rh.first_seq);
                        st.advance(rh.first_seq);
                        st.consumed.insert(rh.first_seq, end);
                        st.next_seq = st.next_seq.max(end);
                    }
                    RecordKind::Seal => {
                        let seal = SealPayload::decode(payload);
                        out.first_seq_hint.get_or_insert(seal.next_seq);
                        st.advance(seal.next_seq);
                        out.seal = Some(seal);
                    }
                    RecordKind::Take => {
                        if let Ok(t) = TakePayload::decode(payload, rh.event_count) {
                            for (s, e) in t.ranges {
                                st.consumed.insert(s, e.min(st.next_seq));
                            }
                        }
                    }
                }
                if !sealed {
                    out.seal = None;
                }
                out.valid_end = scanner.position();
                continue;
            }
            ScanItem::End { offset } => (offset, None),
            ScanItem::Bad { offset, kind } => (offset, Some(kind)),
        };
        snapshot(interest, at, (seg.id, offset), st);
        let later = scanner.find_next_valid(offset + 8)?;
        if !last {
            if sealed && kind.is_none() && later.is_none() {
                out.valid_end = offset;
                break;
            }
            out.bad.push(BadRange {
                offset,
                resumes_at: later.map(|h| h.offset),
            });
            match later {
                Some(h) => {
                    scanner.seek(h.offset);
                    continue;
                }
                None => {
                    out.valid_end = offset;
                    break;
                }
            }
        }
        if let Some(h) = later.filter(|h| h.durable_mark > offset) {
            out.bad.push(BadRange {
                offset,
                resumes_at: Some(h.offset),
            });
            scanner.seek(h.offset);
            continue;
        }
        out.valid_end = offset;
        break;
    }
    Ok(out)
}
