//! Replaying the segments: which part of each one is read and applied ([`ScanPlan`]), and the
//! walk through one segment's records — applied, verified only, or damage; in the newest
//! segment, a torn tail to cut.

use super::apply::RecordAt;
use super::{data_end, io_err, ReplayedSegment, SealedInto, State, TornTail};
use crate::config::RecoveryMode;
use crate::consumed::ConsumedSet;
use crate::error::OpenError;
use crate::format::checkpoint::Checkpoint;
use crate::format::record::{RecordBinding, RecordKind, SealPayload};
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::quarantine;
use crate::segment::scan::{ScanItem, Scanner};
use crate::segment::SegmentPath;
use crate::storage::DynFile;

/// Which part of a segment replay reads and which part it applies.
#[derive(Clone, Copy, Debug)]
pub(super) struct ScanPlan {
    /// Only the header is checked: the checkpoint covers the whole segment.
    pub skip_scan: bool,
    /// Records are read and checked from here.
    pub scan_from: u64,
    /// Records are also applied from here (below it the checkpoint reflects them).
    pub apply_from: u64,
}

impl ScanPlan {
    /// The plan for segment `id`. With a checkpoint, records below its position are already
    /// reflected in it. The default mode trusts it (fast open; damage there is met, skipped and
    /// counted when a reader gets there); strict mode verifies every pending record below it
    /// too.
    pub(super) fn for_segment(
        id: u64,
        checkpoint: Option<&Checkpoint>,
        mode: RecoveryMode,
    ) -> Self {
        let header_end = SEGMENT_HEADER_BYTES as u64;
        let plan = |skip_scan, scan_from, apply_from| Self {
            skip_scan,
            scan_from,
            apply_from,
        };
        let Some(cp) = checkpoint else {
            return plan(false, header_end, header_end);
        };
        let verify = mode == RecoveryMode::Strict && id >= cp.read_start.0;
        let verify_from = if id == cp.read_start.0 {
            cp.read_start.1
        } else {
            header_end
        };
        match id.cmp(&cp.position.0) {
            std::cmp::Ordering::Less if verify => plan(false, verify_from, u64::MAX),
            std::cmp::Ordering::Less => plan(true, header_end, header_end),
            std::cmp::Ordering::Equal if verify => plan(false, verify_from, cp.position.1),
            std::cmp::Ordering::Equal => plan(false, cp.position.1, cp.position.1),
            std::cmp::Ordering::Greater => plan(false, header_end, header_end),
        }
    }
}

impl State<'_> {
    /// Replays one segment as `plan` says; `last` says whether it is the newest one.
    pub(super) fn replay_segment(
        &mut self,
        seg: &SegmentPath,
        last: bool,
        plan: ScanPlan,
    ) -> Result<(), OpenError> {
        let path = &seg.path;
        let file = self
            .storage
            .open(path, self.opts.writable)
            .map_err(io_err("open segment", path))?;
        let file_len = file.len().map_err(io_err("read the length of", path))?;
        let Some(head) = self.read_header(seg, &file, file_len, last, plan)? else {
            return Ok(());
        };
        self.check_header(seg, &head.header, head.rebuilt)?;
        let header = head.header;
        if plan.skip_scan {
            // Covered by the checkpoint: only its header is checked.
            self.out.segments.push(ReplayedSegment {
                id: seg.id,
                path: path.clone(),
                file,
                first_seq: header.first_seq,
                end: 0,
                sealed: true,
                binding: header.binding(),
            });
            return Ok(());
        }
        self.start_sequence(seg, &header, file_len, plan)?;
        let (end, sealed) =
            self.scan_records(seg, &file, header.binding(), file_len, last, plan)?;
        if let (true, Some(next)) = (sealed, self.sealed_next.take()) {
            self.expect_next_segment = Some(SealedInto {
                next,
                sealed: path.clone(),
            });
        }
        self.out.segments.push(ReplayedSegment {
            id: seg.id,
            path: path.clone(),
            file,
            first_seq: header.first_seq,
            end,
            sealed,
            binding: header.binding(),
        });
        Ok(())
    }

    /// Starts the sequence at the first segment's header, or accounts for a jump to this
    /// segment's first sequence number; notes a checkpoint that covers bytes the file lost.
    fn start_sequence(
        &mut self,
        seg: &SegmentPath,
        header: &SegmentHeader,
        file_len: u64,
        plan: ScanPlan,
    ) -> Result<(), OpenError> {
        let path = &seg.path;
        let header_end = SEGMENT_HEADER_BYTES as u64;
        if !self.started {
            self.started = true;
            self.log_start = Some(header.first_seq);
            self.out.next_seq = header.first_seq;
            self.out.consumed = ConsumedSet::new(header.first_seq);
        } else if plan.apply_from == header_end {
            self.advance_to(
                header.first_seq,
                RecordAt {
                    path,
                    segment: seg.id,
                    offset: 0,
                },
            )?;
        }
        self.gap_owner = None;
        if plan.apply_from != u64::MAX && plan.apply_from > header_end && file_len < plan.apply_from
        {
            // The checkpoint covers bytes this file no longer has.
            let c = self.corrupt(
                path,
                seg.id,
                file_len,
                CorruptionKind::Truncated {
                    needed: plan.apply_from,
                    available: file_len,
                },
            );
            self.damage(c, None, 0)?;
        }
        Ok(())
    }

    /// Reads the segment's records from the plan's scan start to the end of its data: applies
    /// them (from the plan's apply start), skips or refuses damage, cuts a torn tail of the
    /// newest segment. Returns where its valid data ends and whether it is sealed.
    fn scan_records(
        &mut self,
        seg: &SegmentPath,
        file: &DynFile,
        binding: RecordBinding,
        file_len: u64,
        last: bool,
        plan: ScanPlan,
    ) -> Result<(u64, bool), OpenError> {
        let path = &seg.path;
        let mut scanner = Scanner::new(file.clone(), seg.id, binding, plan.scan_from, u64::MAX);
        let mut sealed = false;
        let end = loop {
            let item = scanner.next_item().map_err(io_err("read", path))?;
            let (offset, kind) = match item {
                ScanItem::Record {
                    header: rh,
                    payload,
                } => {
                    if sealed {
                        let c = self.corrupt(
                            path,
                            seg.id,
                            rh.offset,
                            CorruptionKind::BadPayload {
                                what: "record after the segment's seal",
                            },
                        );
                        return Err(OpenError::Corrupt(c));
                    }
                    if rh.offset < plan.apply_from {
                        // Verified only: the checkpoint already reflects it.
                        sealed = rh.kind == RecordKind::Seal;
                        if sealed {
                            self.sealed_next = Some(SealPayload::decode(payload).next_segment_id);
                        }
                        continue;
                    }
                    sealed = self.apply(path, &rh, payload)?;
                    continue;
                }
                ScanItem::End { offset } => (offset, None),
                ScanItem::Bad { offset, kind } => (offset, Some(kind)),
            };
            let later = scanner
                .find_next_valid(offset + 8)
                .map_err(io_err("read", path))?;
            if !last {
                if sealed && kind.is_none() && later.is_none() {
                    break offset;
                }
                // Damage inside a finished segment.
                let kind = kind.unwrap_or(CorruptionKind::BadPayload {
                    what: "segment ends without a seal record",
                });
                let to = match &later {
                    Some(h) => h.offset,
                    None => data_end(file, offset, file_len),
                };
                let c = self.corrupt(path, seg.id, offset, kind);
                self.damage(c, Some(file), to - offset)?;
                match later {
                    Some(h) => {
                        scanner.seek(h.offset);
                        continue;
                    }
                    None => break offset,
                }
            }
            // The last segment: is what follows a torn tail or damage to durable data?
            if let Some(h) = later.filter(|h| h.durable_mark > offset) {
                let kind = kind.unwrap_or(CorruptionKind::BadPayload {
                    what: "zeroed bytes before a later durable record",
                });
                let c = self.corrupt(path, seg.id, offset, kind);
                self.damage(c, Some(file), h.offset - offset)?;
                scanner.seek(h.offset);
                continue;
            }
            // Bytes a checkpoint knew were durable are never a torn tail: what is missing or
            // unreadable there is damage (the ledger counts its events).
            if let Some(durable_end) = self
                .durable_known_in(seg.id)
                .filter(|&p| p > offset && !sealed)
            {
                let kind = kind.unwrap_or(CorruptionKind::BadPayload {
                    what: "the log ends before bytes a checkpoint knew were durable",
                });
                tracing::error!(segment = seg.id, path = %path.display(), offset, durable_end,
                    "the log ends before what a checkpoint knew was durable: not a torn tail");
                let to = data_end(file, offset, file_len).max(offset);
                let c = self.corrupt(path, seg.id, offset, kind);
                self.damage(c, Some(file), to - offset)?;
                if let Some(h) = later {
                    scanner.seek(h.offset);
                    continue;
                }
                break offset;
            }
            // Non-zero bytes right after the end of data (no record, not zeros) are not the
            // engine's either: cut and kept like a torn tail, or the writer would write over
            // them with nothing kept. Looked for in one read, so an open stays cheap on a
            // preallocated segment.
            let bytes_after_end =
                kind.is_none() && later.is_none() && nonzero_after(file, offset, file_len);
            if kind.is_some() || later.is_some() || bytes_after_end {
                let bytes = file_len.saturating_sub(offset);
                tracing::warn!(segment = seg.id, path = %path.display(), offset, bytes,
                    "torn tail after the last valid record; truncating");
                if self.opts.writable {
                    // Non-zero bytes are kept in quarantine/ before the cut: a torn write of
                    // the engine's, or bytes it never wrote; nothing else keeps them.
                    let end = data_end(file, offset, file_len);
                    if end > offset {
                        let at = self.corrupt(
                            path,
                            seg.id,
                            offset,
                            kind.clone().unwrap_or(CorruptionKind::BadPayload {
                                what: "torn tail after the last valid record",
                            }),
                        );
                        quarantine::save_bytes(
                            self.storage,
                            &|d| self.storage.sync_dir(d),
                            &self.dir,
                            &at,
                            file,
                            end - offset,
                        )
                        .map_err(io_err("quarantine the torn tail of", path))?;
                    }
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
        Ok((end, sealed))
    }
}

/// How far past the end of data [`nonzero_after`] looks.
const AFTER_END_WINDOW_BYTES: u64 = 64 << 10;

/// Whether a non-zero byte lies within [`AFTER_END_WINDOW_BYTES`] after `offset`.
fn nonzero_after(file: &DynFile, offset: u64, file_len: u64) -> bool {
    let n = file_len.saturating_sub(offset).min(AFTER_END_WINDOW_BYTES) as usize;
    if n == 0 {
        return false;
    }
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, offset).is_ok() && buf.iter().any(|&b| b != 0)
}
