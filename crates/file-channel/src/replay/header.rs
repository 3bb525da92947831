//! Segment headers during replay: decoding each one, removing a newest segment whose header
//! never became durable (a torn creation), rebuilding a damaged header from the segment's
//! records, and checking that the header belongs to this file and this channel.

use super::segments::ScanPlan;
use super::{data_end, io_err, SealedInto, State, TornTail};
use crate::error::{Corruption, OpenError};
use crate::format::record::{RecordBinding, RecordKind};
use crate::format::segment_header::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::format::CorruptionKind;
use crate::quarantine;
use crate::segment::lost_header::{bindings_behind_lost_header, first_binding_with_records};
use crate::segment::scan::Scanner;
use crate::segment::SegmentPath;
use crate::storage::{parent_dir, DynFile, Storage};
use std::io;
use std::path::Path;

/// A segment's header as replay read it.
#[derive(Debug)]
pub(super) struct SegmentHead {
    pub header: SegmentHeader,
    /// Whether it was rebuilt from the records (it then names no channel until one is known).
    pub rebuilt: bool,
}

impl State<'_> {
    /// Reads segment `seg`'s header (`file` is `file_len` bytes long, `last` says whether it is
    /// the newest segment); `None` when the segment was removed (a torn creation) or left out
    /// (a damaged header that its records cannot rebuild: it then holds no events).
    pub(super) fn read_header(
        &mut self,
        seg: &SegmentPath,
        file: &DynFile,
        file_len: u64,
        last: bool,
        plan: ScanPlan,
    ) -> Result<Option<SegmentHead>, OpenError> {
        match crate::segment::read_header(file, file_len)
            .map_err(io_err("read segment header of", &seg.path))?
        {
            Ok(header) => Ok(Some(SegmentHead {
                header,
                rebuilt: false,
            })),
            Err(kind) => Ok(self
                .recover_header(seg, file, file_len, last, plan, kind)?
                .map(|header| SegmentHead {
                    header,
                    rebuilt: true,
                })),
        }
    }

    /// A header that does not decode (`kind` says why): the newest segment's torn creation is
    /// removed; otherwise the header is rebuilt from the records (and rewritten when writable),
    /// or the segment is left out when they cannot tell its first sequence number.
    fn recover_header(
        &mut self,
        seg: &SegmentPath,
        file: &DynFile,
        file_len: u64,
        last: bool,
        plan: ScanPlan,
        kind: CorruptionKind,
    ) -> Result<Option<SegmentHeader>, OpenError> {
        let path = &seg.path;
        // A header that never became durable can only belong to the newest segment,
        // and then no record was ever written after it.
        // Records of another channel fail a format-2 checksum: the header's loss does not make
        // another channel's segment of this id ours.
        let binding = first_binding_with_records(file, seg.id, &self.lost_header_bindings())
            .map_err(io_err("read", path))?;
        let any_record = binding.is_some();
        // A checkpoint that knew the segment proves its header was durable: then this is
        // damage, and the ledger counts the events it held.
        // Nor is it one when bytes other than zeros follow the header: the engine never wrote
        // those without a record.
        let header_end = SEGMENT_HEADER_BYTES as u64;
        let only_zeros_after =
            file_len <= header_end || data_end(file, header_end, file_len) == header_end;
        if last
            && !plan.skip_scan
            && !any_record
            && only_zeros_after
            && !self.header_known_durable(seg.id)
        {
            tracing::warn!(segment = seg.id, path = %path.display(), bytes = file_len,
                %kind, "newest segment has no durable header; removing it (torn creation)");
            if self.opts.writable {
                let at = self.corrupt(path, seg.id, 0, kind.clone());
                self.remove_newest(&at, file, file_len)?;
            }
            self.out.torn_tail = Some(TornTail {
                segment: seg.id,
                path: path.clone(),
                offset: 0,
                bytes: file_len,
                removed_file: true,
            });
            return Ok(None);
        }
        // A damaged header of a segment that holds records. The records name their
        // segment inside their own checksums, so the header is rebuilt from them and
        // nothing is lost; only when they cannot tell the first sequence (no put and no
        // seal record) is the segment left out — it then holds no events.
        // The first sequence: where the replay so far says this segment starts (the
        // previous segment's end, or the checkpoint's next sequence when the segment
        // is applied from its start); else from the records (only from an unbroken run
        // of them after the header, or the first sequence could skip damaged events
        // uncounted).
        let first_seq = if plan.skip_scan || plan.apply_from != SEGMENT_HEADER_BYTES as u64 {
            // Only places the reader: an over-estimate just starts it earlier.
            FirstSeq::FirstPutOrSeal {
                fallback: self.out.next_seq,
            }
        } else if self.started {
            FirstSeq::Known(self.out.next_seq)
        } else if self.has_evidence() {
            // A checkpoint tells which events were committed: the ledger counts those below
            // the first intact put, wherever it is.
            FirstSeq::FirstPutOrSeal {
                fallback: self.out.next_seq,
            }
        } else {
            FirstSeq::UnbrokenRun
        };
        let rebuilt = match binding {
            Some(binding) => rebuild_header(file, seg.id, self.channel_id, binding, first_seq)
                .map_err(io_err("read", path))?
                .filter(|h| self.continues_into_next(seg, file, file_len, h.binding())),
            None => None,
        };
        let Some(header) = rebuilt else {
            let c = self.corrupt(path, seg.id, 0, kind);
            self.damage(c.clone(), Some(file), file_len)?;
            self.expect_next_segment = None;
            if last && self.opts.writable {
                // Its bytes are in quarantine/ now; the file must not stand where the next
                // segment will be created.
                self.remove_newest(&c, file, 0)?;
            } else {
                self.out.left_out.push(seg.id);
            }
            return Ok(None);
        };
        tracing::warn!(segment = seg.id, path = %path.display(),
            first_seq = header.first_seq, %kind,
            "segment header damaged; rebuilt from the segment's records");
        let c = self.corrupt(path, seg.id, 0, kind);
        self.damage(c, Some(file), SEGMENT_HEADER_BYTES as u64)?;
        self.gap_owner = None;
        if self.opts.writable && self.channel_id.is_some() {
            file.write_at(&header.encode(), 0)
                .map_err(io_err("rewrite the damaged header of", path))?;
            file.sync_data().map_err(io_err("fsync", path))?;
        }
        Ok(Some(header))
    }

    /// Removes the newest segment file `at` names (writable replays only), keeping a copy of
    /// its bytes first ([`remove_segment_file`]).
    pub(super) fn remove_newest(
        &mut self,
        at: &Corruption,
        file: &DynFile,
        file_len: u64,
    ) -> Result<(), OpenError> {
        remove_segment_file(self.storage, &self.dir, at, file, file_len)
    }

    /// The bindings records behind a lost segment header may carry, in the order tried: bound
    /// to this channel (format 2) when its id is known (from `channel.meta`, a header before,
    /// or a checkpoint); unbound (format 1) only while the channel may still hold format-1
    /// segments — created in format 1 and no format-2 segment met yet.
    pub(super) fn lost_header_bindings(&self) -> Vec<RecordBinding> {
        let channel_id = self
            .channel_id
            .or_else(|| self.evidence.first().map(|cp| cp.channel_id));
        bindings_behind_lost_header(
            channel_id,
            self.opts.channel_format_version < 2 && !self.bound_segment_seen,
        )
    }

    /// Whether segment `seg`'s records (its header is gone) can be this channel's: format-1
    /// records carry no channel id, so another channel's format-1 segment of the same id would
    /// rebuild as well. When its seal and the next segment's header can both be read, the seal must name that
    /// segment at the sequence its header starts at; otherwise nothing contradicts it.
    fn continues_into_next(
        &self,
        seg: &SegmentPath,
        file: &DynFile,
        file_len: u64,
        binding: RecordBinding,
    ) -> bool {
        let Some(seal) = super::sweep::seal_of(file, seg.id, file_len, &[binding]) else {
            return true;
        };
        let Some(next) = self.found.iter().find(|s| s.id == seg.id + 1) else {
            return true;
        };
        let next_header = self
            .storage
            .open(&next.path, false)
            .and_then(|f| f.len().and_then(|len| crate::segment::read_header(&f, len)))
            .ok()
            .and_then(Result::ok)
            .filter(|h| self.channel_id.is_none_or(|id| id == h.channel_id));
        let Some(next_header) = next_header else {
            return true;
        };
        let fits = seal.next_segment_id == next.id && seal.next_seq == next_header.first_seq;
        if !fits {
            tracing::warn!(segment = seg.id, path = %seg.path.display(),
                seal_next_seq = seal.next_seq, next_first_seq = next_header.first_seq,
                "records behind a damaged header do not lead into the next segment: not this channel's; left out");
        }
        fits
    }

    /// Checks that the header names this file's segment and this channel (learning the
    /// channel's id from the first header when nothing named it yet), and that the segment a
    /// seal record named is this one.
    pub(super) fn check_header(
        &mut self,
        seg: &SegmentPath,
        header: &SegmentHeader,
        header_rebuilt: bool,
    ) -> Result<(), OpenError> {
        let path = &seg.path;
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
            // A header rebuilt before any file named the channel carries no channel id.
            None if header_rebuilt => {}
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
        if header.format_version >= 2 {
            self.bound_segment_seen = true;
        }
        if let Some(SealedInto {
            next: expected,
            sealed: prev,
        }) = self.expect_next_segment.take()
        {
            if expected != seg.id {
                let c = self.corrupt(
                    &prev,
                    expected.saturating_sub(1),
                    0,
                    CorruptionKind::BadPayload {
                        what: "a segment named by a seal record is missing",
                    },
                );
                self.damage(c, None, 0)?;
            }
        }
        Ok(())
    }
}

/// Where a rebuilt segment header's first sequence number comes from.
#[derive(Clone, Copy, Debug)]
enum FirstSeq {
    /// Known from the replay so far (the previous segment's end).
    Known(u64),
    /// The first intact put or seal record, wherever it is; `fallback` without one.
    FirstPutOrSeal {
        /// Used when the segment has no intact put or seal record.
        fallback: u64,
    },
    /// A put or seal record reached through intact records only, right from the header: one
    /// found after damaged bytes could follow damaged events whose loss would go uncounted.
    UnbrokenRun,
}

/// A segment header rebuilt from the segment's records, for a header that is damaged: the id
/// from the file name (which every record repeats inside its checksum), the channel id from the
/// other files, the first sequence as `first_seq` says — a put record's first event, or a seal
/// record's next sequence (in a segment without puts, unchanged since creation). `None` when
/// the segment holds no intact record or the first sequence cannot be told.
fn rebuild_header(
    file: &DynFile,
    segment_id: u64,
    channel_id: Option<u64>,
    binding: RecordBinding,
    first_seq: FirstSeq,
) -> io::Result<Option<SegmentHeader>> {
    let channel_id = match binding {
        RecordBinding::Channel(id) => id,
        RecordBinding::Unbound => channel_id.unwrap_or(0),
    };
    let header = |first_seq| SegmentHeader {
        format_version: binding.format_version(),
        segment_id,
        channel_id,
        first_seq,
        created_unix_ms: 0,
    };
    let mut scanner = Scanner::from_start(file.clone(), segment_id, binding);
    let mut at = SEGMENT_HEADER_BYTES as u64;
    while let Some(h) = scanner.find_next_valid(at)? {
        match first_seq {
            FirstSeq::Known(seq) => return Ok(Some(header(seq))),
            FirstSeq::UnbrokenRun if h.offset != at => return Ok(None),
            _ => {}
        }
        if matches!(h.kind, RecordKind::Put | RecordKind::Seal) {
            return Ok(Some(header(h.first_seq)));
        }
        at = h.offset + h.aligned_len();
    }
    match first_seq {
        FirstSeq::FirstPutOrSeal { fallback } if at > SEGMENT_HEADER_BYTES as u64 => {
            Ok(Some(header(fallback)))
        }
        _ => Ok(None),
    }
}

/// Removes segment file `at.file` (`file`, `file_len` bytes long; 0 when its bytes are in
/// quarantine already). A file holding any non-zero byte other than its own valid header is
/// first copied to `quarantine/` of `channel_dir`: a torn header of the engine's costs a few
/// bytes there, bytes of someone else's (garbage, another channel's) are kept.
pub(super) fn remove_segment_file(
    storage: &dyn Storage,
    channel_dir: &Path,
    at: &Corruption,
    file: &DynFile,
    file_len: u64,
) -> Result<(), OpenError> {
    let path = &at.file;
    let header_end = SEGMENT_HEADER_BYTES as u64;
    let own_header_only = crate::segment::read_header(file, file_len)
        .is_ok_and(|h| h.is_ok_and(|h| h.segment_id == at.segment))
        && data_end(file, header_end, file_len) == header_end;
    if file_len > 0 && !own_header_only && data_end(file, 0, file_len) > 0 {
        let copy = quarantine::save_bytes(
            storage,
            &|d| storage.sync_dir(d),
            channel_dir,
            at,
            file,
            file_len,
        )
        .map_err(io_err("quarantine", path))?;
        tracing::warn!(path = %path.display(), copy = %copy.display(),
            "bytes the engine did not write kept in quarantine/ before removing the file");
    }
    storage.remove(path).map_err(io_err("remove", path))?;
    let dir = parent_dir(path);
    storage
        .sync_dir(dir)
        .map_err(io_err("fsync directory", dir))
}
