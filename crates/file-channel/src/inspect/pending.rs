//! The pending part of the log as a reader meets it: from the open's read start every valid put
//! record in log order, with how many of its events are still pending (not in the replay's
//! consumed set). [`PendingLog`] is that part of a replay's outcome
//! ([`super::ReplayView::pending_log`]).
//!
//! Two users: `stat`, which lists the keys pending records were sealed with (so an operator
//! knows when an old key can go; [`key_references`]), and `replay --data`, which shows the
//! pending events themselves in the order a reader would take them ([`pending_events`]).
//! Segments a checkpoint let the replay skip are read to their seal; the newest to the end of
//! its valid data as the replay found it. Damage is stepped over to the next valid record, as
//! the reader does (the replay view reports it).

use super::dump::{decode_payload, open_sealed, Payload, RecordSeal};
use super::encrypted::{sealed_with, Unsealer};
use super::InspectError;
use crate::consumed::ConsumedSet;
use crate::encryption::Keyring;
use crate::format::record::{RecordBinding, RecordHeader, RecordKind};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::segment::scan::{ScanItem, Scanner};
use crate::storage::Storage;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A segment an open would keep, as the replay left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSegment {
    /// Id.
    pub id: u64,
    /// The file.
    pub path: PathBuf,
    /// End of its valid records; `None` for a segment a checkpoint let the replay skip (it
    /// ends with its seal).
    pub end: Option<u64>,
    /// What its records' checksums are bound to.
    pub binding: RecordBinding,
}

/// Where a reader of a replayed channel starts, what it finds consumed, and the segments it
/// reads.
#[derive(Clone, Copy, Debug)]
pub struct PendingLog<'a> {
    /// Where a reader starts (segment, offset).
    pub read_start: Option<(u64, u64)>,
    /// The segments the open keeps.
    pub segments: &'a [LiveSegment],
    /// What is consumed.
    pub consumed: &'a ConsumedSet,
}

/// A put record from the read start on.
pub(crate) struct PendingPut<'a> {
    pub binding: RecordBinding,
    pub header: &'a RecordHeader,
    pub payload: &'a [u8],
    /// Its events not consumed.
    pub pending_events: u64,
}

/// Visits every valid put record from the read start on, in log order, until `visit` says
/// stop (`false`).
pub(crate) fn walk_pending(
    storage: &dyn Storage,
    view: PendingLog<'_>,
    visit: &mut dyn FnMut(PendingPut<'_>) -> Result<bool, InspectError>,
) -> Result<(), InspectError> {
    let Some((start_id, start_offset)) = view.read_start else {
        return Ok(());
    };
    for seg in view.segments.iter().filter(|s| s.id >= start_id) {
        let file = storage
            .open(&seg.path, false)
            .map_err(InspectError::io("open", &seg.path))?;
        let from = if seg.id == start_id {
            start_offset.max(SEGMENT_HEADER_BYTES as u64)
        } else {
            SEGMENT_HEADER_BYTES as u64
        };
        let limit = seg.end.unwrap_or(u64::MAX);
        let mut scanner = Scanner::new(file, seg.id, seg.binding, from, limit);
        let read = InspectError::io("read", &seg.path);
        let found = loop {
            let item = match scanner.next_item() {
                Ok(item) => item,
                Err(e) => break Err(e),
            };
            let offset = match item {
                ScanItem::Record { header, payload } => {
                    match header.kind {
                        RecordKind::Put => {
                            let events = u64::from(header.event_count);
                            let end = header.first_seq.saturating_add(events);
                            let consumed = view.consumed.count_in(header.first_seq, end);
                            let go_on = visit(PendingPut {
                                binding: seg.binding,
                                header: &header,
                                payload,
                                pending_events: events.saturating_sub(consumed),
                            })?;
                            if !go_on {
                                return Ok(());
                            }
                        }
                        RecordKind::Seal if seg.end.is_none() => break Ok(()),
                        _ => {}
                    }
                    continue;
                }
                ScanItem::End { offset } | ScanItem::Bad { offset, .. } => offset,
            };
            if offset >= limit {
                break Ok(());
            }
            match scanner.find_next_valid(offset + 8) {
                Ok(Some(h)) if h.offset < limit => scanner.seek(h.offset),
                Ok(_) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        found.map_err(read)?;
    }
    Ok(())
}

/// The pending records sealed with one key id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyReference {
    /// The key id.
    pub key_id: String,
    /// Check values of the keys the records name (hex; two or more: different keys were used
    /// under this id).
    pub key_checks: Vec<String>,
    /// Segments from the read start holding records sealed with it: the open asks for the key
    /// while any of them exists.
    pub segments: Vec<u64>,
    /// Records from the read start sealed with it.
    pub records: u64,
    /// Of those, records holding a pending event.
    pub pending_records: u64,
    /// Pending events in them.
    pub pending_events: u64,
}

/// Which keys the pending part of the log needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyReferences {
    /// Per key id, in id order. A key not listed is not needed by this channel any more.
    pub keys: Vec<KeyReference>,
    /// Pending events in records that are not encrypted.
    pub plain_pending_events: u64,
    /// Records from the read start whose envelope does not parse (their key is unknown).
    pub unreadable_envelopes: u64,
}

/// The keys the records from the read start on were sealed with, exactly; no key needed.
/// Every segment the engine's key check at open asks a key for is listed too (that check reads
/// only each segment's first put record, from the newest readable checkpoint's read start), so
/// a key `stat` no longer lists is one the open no longer asks for.
pub(crate) fn key_references(
    storage: &dyn Storage,
    dir: &Path,
    segment_dirs: &[PathBuf],
    view: PendingLog<'_>,
) -> Result<KeyReferences, InspectError> {
    #[derive(Default)]
    struct Acc {
        checks: BTreeSet<String>,
        segments: BTreeSet<u64>,
        records: u64,
        pending_records: u64,
        pending_events: u64,
    }
    let mut by_key: BTreeMap<String, Acc> = BTreeMap::new();
    let mut out = KeyReferences::default();
    walk_pending(storage, view, &mut |put| {
        if !put.header.is_encrypted() {
            out.plain_pending_events += put.pending_events;
            return Ok(true);
        }
        let Ok(sealed) = sealed_with(put.payload) else {
            out.unreadable_envelopes += 1;
            return Ok(true);
        };
        let acc = by_key.entry(sealed.key_id).or_default();
        acc.checks.insert(sealed.key_check);
        acc.segments.insert(put.header.segment_id);
        acc.records += 1;
        if put.pending_events > 0 {
            acc.pending_records += 1;
            acc.pending_events += put.pending_events;
        }
        Ok(true)
    })?;
    for k in crate::keys_at_open::pending_segment_keys(storage, dir, segment_dirs) {
        let acc = by_key.entry(k.key_id).or_default();
        acc.checks.insert(crate::encryption::hex(&k.key_check));
        acc.segments.insert(k.segment);
    }
    out.keys = by_key
        .into_iter()
        .map(|(key_id, a)| KeyReference {
            key_id,
            key_checks: a.checks.into_iter().collect(),
            segments: a.segments.into_iter().collect(),
            records: a.records,
            pending_records: a.pending_records,
            pending_events: a.pending_events,
        })
        .collect();
    Ok(out)
}

/// Options of [`pending_events`].
#[derive(Clone, Debug, Default)]
pub struct PendingOptions {
    /// Keys to open encrypted records with (none: they are shown as sealed, with their key).
    pub keyring: Option<Arc<Keyring>>,
    /// Show at most this many pending events.
    pub limit: Option<u64>,
}

/// A put record holding pending events, as [`pending_events`] shows it.
#[derive(Debug)]
pub struct PendingRecord<'a> {
    /// Its header (its events are sequence numbers `first_seq ..`, in order).
    pub header: &'a RecordHeader,
    /// The pending stretches of its sequence numbers, ascending, `[start, end)`; cut at the
    /// limit.
    pub pending: &'a [(u64, u64)],
    /// Its events (all of them, decoded), or [`Payload::Sealed`] when it is encrypted and was
    /// not opened.
    pub payload: &'a Payload,
    /// For an encrypted record: its key, and whether it opened.
    pub seal: Option<&'a RecordSeal>,
}

/// Totals of [`pending_events`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingSummary {
    /// Records shown.
    pub records: u64,
    /// Pending events shown.
    pub events: u64,
    /// Whether the limit stopped the listing.
    pub limited: bool,
}

/// Streams the pending events of the channel `view` describes to `sink`, record by record, in
/// the order a reader would take them. A sink error stops it with [`InspectError::Output`].
pub fn pending_events(
    dir: &super::ChannelDir,
    view: PendingLog<'_>,
    opts: &PendingOptions,
    sink: &mut dyn FnMut(PendingRecord<'_>) -> io::Result<()>,
) -> Result<PendingSummary, InspectError> {
    let mut summary = PendingSummary::default();
    let mut unsealer = Unsealer::new(opts.keyring.clone());
    walk_pending(dir.storage.as_ref(), view, &mut |put| {
        if put.pending_events == 0 {
            return Ok(true);
        }
        let h = put.header;
        let room = opts
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(summary.events));
        if room == 0 {
            summary.limited = true;
            return Ok(false);
        }
        let mut pending = Vec::new();
        let mut shown = 0u64;
        for seq in h.first_seq..h.first_seq.saturating_add(u64::from(h.event_count)) {
            if shown == room {
                break;
            }
            if view.consumed.contains(seq) {
                continue;
            }
            shown += 1;
            match pending.last_mut() {
                Some((_, end)) if *end == seq => *end = seq + 1,
                _ => pending.push((seq, seq + 1)),
            }
        }
        let (seal, payload) = if h.is_encrypted() {
            let (seal, payload) = open_sealed(&mut unsealer, put.binding, h, put.payload, true);
            (Some(seal), payload)
        } else {
            (None, None)
        };
        // `open_sealed` decodes when asked to (`true`); a plain record is decoded here.
        let payload = payload.unwrap_or_else(|| decode_payload(h, put.payload));
        sink(PendingRecord {
            header: h,
            pending: &pending,
            payload: &payload,
            seal: seal.as_ref(),
        })
        .map_err(InspectError::Output)?;
        summary.records += 1;
        summary.events += shown;
        Ok(true)
    })?;
    Ok(summary)
}
