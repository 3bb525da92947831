//! Applying records during replay, and accounting for what does not add up: a record changes
//! the queue by its header (puts advance the sequence, takes mark ranges consumed
//! idempotently, gap records stand for repaired damage, seals close a segment); damage is
//! refused in strict mode or skipped, quarantined and made the owner of the next sequence gap,
//! whose events are counted lost.

use super::{io_err, Damage, State};
use crate::config::RecoveryMode;
use crate::encryption::envelope;
use crate::error::{Corruption, OpenError};
use crate::format::record::{RecordHeader, RecordKind, SealPayload, TakePayload};
use crate::format::CorruptionKind;
use crate::quarantine;
use crate::storage::DynFile;
use std::path::Path;

/// Where a record (or a segment header, offset 0) is, for damage found there.
#[derive(Clone, Copy, Debug)]
pub(super) struct RecordAt<'a> {
    pub path: &'a Path,
    pub segment: u64,
    pub offset: u64,
}

impl State<'_> {
    pub(super) fn corrupt(
        &self,
        path: &Path,
        segment: u64,
        offset: u64,
        kind: CorruptionKind,
    ) -> Corruption {
        Corruption {
            file: path.to_path_buf(),
            segment,
            offset,
            kind,
        }
    }

    /// Records damage: refuses in strict mode; in skip mode quarantines `[offset, offset+bytes)`
    /// of `file` (if writable) and remembers it as the owner of the next sequence gap.
    pub(super) fn damage(
        &mut self,
        at: Corruption,
        file: Option<&DynFile>,
        bytes: u64,
    ) -> Result<(), OpenError> {
        tracing::error!(file = %at.file.display(), segment = at.segment, offset = at.offset,
            kind = %at.kind, bytes, "damaged log data");
        if self.opts.mode == RecoveryMode::Strict {
            return Err(OpenError::Corrupt(at));
        }
        let mut quarantined = None;
        if self.opts.writable {
            if let Some(f) = file {
                quarantined = Some(
                    quarantine::save_bytes(
                        self.storage,
                        &|d| self.storage.sync_dir(d),
                        &self.dir,
                        &at,
                        f,
                        bytes,
                    )
                    .map_err(io_err("quarantine damaged bytes of", &at.file))?,
                );
            }
        }
        self.out.damage.push(Damage {
            at,
            bytes,
            events_lost: 0,
            quarantined,
        });
        self.gap_owner = Some(self.out.damage.len() - 1);
        Ok(())
    }

    /// Accounts for a jump of the sequence to `found` (from a put record, a seal, or a segment
    /// header). Events in between are lost: they are marked consumed and counted.
    pub(super) fn advance_to(&mut self, found: u64, at: RecordAt<'_>) -> Result<(), OpenError> {
        let expected = self.out.next_seq;
        if found == expected {
            return Ok(());
        }
        if found < expected {
            let c = self.corrupt(
                at.path,
                at.segment,
                at.offset,
                CorruptionKind::SequenceGap { expected, found },
            );
            return Err(OpenError::Corrupt(c));
        }
        // Events a checkpoint lists as consumed were delivered before they went missing.
        let lost = self.unconsumed_in(expected, found);
        if self.gap_owner.is_none() {
            let c = self.corrupt(
                at.path,
                at.segment,
                at.offset,
                CorruptionKind::SequenceGap { expected, found },
            );
            self.damage(c, None, 0)?;
        }
        if let Some(i) = self.gap_owner {
            self.out.damage[i].events_lost += lost;
        }
        self.out.consumed.insert(expected, found);
        self.out.next_seq = found;
        Ok(())
    }

    /// Applies one record; returns whether it was a seal.
    pub(super) fn apply(
        &mut self,
        path: &Path,
        h: &RecordHeader,
        payload: &[u8],
    ) -> Result<bool, OpenError> {
        self.out.records += 1;
        self.out.record_bytes += h.aligned_len();
        self.out.next_txn_id = self.out.next_txn_id.max(h.txn_id.saturating_add(1));
        match h.kind {
            RecordKind::Put => {
                self.advance_to(
                    h.first_seq,
                    RecordAt {
                        path,
                        segment: h.segment_id,
                        offset: h.offset,
                    },
                )?;
                self.gap_owner = None;
                self.out.next_seq += u64::from(h.event_count);
                self.out.put_bytes += if h.is_encrypted() {
                    // The channel's byte accounting counts plain event bytes. A malformed
                    // envelope is found by the reader, which fails on it; it is not damage.
                    envelope::parse(payload).map_or(0, |e| e.plain_len) as u64
                } else {
                    payload.len() as u64
                };
                Ok(false)
            }
            RecordKind::Take => {
                let take = match TakePayload::decode(payload, h.event_count) {
                    Ok(t) => t,
                    Err(kind) => {
                        // A checksummed record whose payload is inconsistent: written wrong.
                        let c = self.corrupt(path, h.segment_id, h.offset, kind);
                        self.damage(c, None, h.aligned_len())?;
                        self.gap_owner = None;
                        return Ok(false);
                    }
                };
                let mut added = 0u64;
                if let Some(start) = self.log_start {
                    // Takes of events older than the first surviving segment: the ledger's
                    // evidence that they were delivered, not lost with a deleted segment.
                    for &(s, e) in take.ranges.iter().filter(|r| r.0 < start) {
                        self.taken_below_start.insert(s, e.min(start));
                    }
                }
                for (s, e) in take.ranges {
                    added += self.out.consumed.insert(s, e.min(self.out.next_seq));
                }
                // Idempotent: a take already reflected in the checkpoint changes nothing.
                if h.event_count > 0 {
                    self.out.take_bytes += (u128::from(take.bytes) * u128::from(added)
                        / u128::from(h.event_count))
                        as u64;
                }
                Ok(false)
            }
            RecordKind::Gap => {
                // Damage a repair already accounted for: the events are gone, and were counted
                // when the damage was found.
                self.advance_to(
                    h.first_seq,
                    RecordAt {
                        path,
                        segment: h.segment_id,
                        offset: h.offset,
                    },
                )?;
                self.gap_owner = None;
                let end = h.first_seq + u64::from(h.event_count);
                self.out.consumed.insert(h.first_seq, end);
                self.out.next_seq = end;
                self.out.repaired_gaps += 1;
                Ok(false)
            }
            RecordKind::Seal => {
                let seal = SealPayload::decode(payload);
                self.advance_to(
                    seal.next_seq,
                    RecordAt {
                        path,
                        segment: h.segment_id,
                        offset: h.offset,
                    },
                )?;
                if seal.next_segment_id <= h.segment_id {
                    let c = self.corrupt(
                        path,
                        h.segment_id,
                        h.offset,
                        CorruptionKind::BadPayload {
                            what: "seal names an earlier segment",
                        },
                    );
                    return Err(OpenError::Corrupt(c));
                }
                self.sealed_next = Some(seal.next_segment_id);
                Ok(true)
            }
        }
    }
}
