//! Appending to the active segment: framing records at their place, writing them, the
//! `fdatasync` that makes them durable, rotation to a new segment, the roll back of a batch
//! that ran out of space, and segment creation.
//!
//! A failed fsync, or a failed write other than "no space", poisons the channel (a failed
//! fsync is never retried: the kernel may have dropped the dirty pages already). A write that
//! fails for lack of space (ENOSPC) is rolled back instead: the segment is cut back to where
//! the batch began and the channel keeps serving. So is a rotation whose next segment cannot be
//! created, or whose directory cannot be opened for its fsync (EMFILE, ENFILE, EACCES): no
//! record reached the new segment (a half-made one is removed), and the next batch tries the
//! rotation again.

use super::group_commit::BatchStart;
use super::unflushed::OWN_BUFFER_BYTES_MIN;
use super::{is_no_space, Fail, Writer};
use crate::encryption::envelope::{EnvelopeError, Sealer};
use crate::error::{CommitError, PoisonCause, Poisoned};
use crate::format::record::{
    align_up, PendingRecord, RecordBinding, RecordKind, RecordPlace, SealPayload, SEAL_RECORD_BYTES,
};
use crate::format::segment_header::{segment_file_name, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::segment::{dir_for_segment, OpenSegment};
use crate::shared::WriterView;
use crate::storage::{failed_before_any_io, DynFile};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub id: u64,
    pub path: PathBuf,
    pub file: DynFile,
    /// Where the next record goes.
    pub offset: u64,
    /// Everything below this is fsynced.
    pub durable: u64,
    /// What its records' checksums are bound to: today's format for a new segment; a format-1
    /// segment resumed after an upgrade keeps format-1 records.
    pub binding: RecordBinding,
    /// Seals put records when the channel encrypts: a fresh salt each time writing starts (or
    /// restarts) at an offset, so no nonce is used twice under one record key.
    pub sealer: Option<Sealer>,
    /// Rotate to a new segment before the first record: an encrypting writer never appends to
    /// a segment an earlier process wrote, so every segment's encrypted records share one key.
    pub rotate_first: bool,
}

/// A sealer for writing into segment `segment_id`, if the channel has an active key.
pub(crate) fn sealer_for(
    shared: &WriterView,
    channel_id: u64,
    segment_id: u64,
) -> Result<Option<Sealer>, EnvelopeError> {
    let Some(keyring) = &shared.config().keyring else {
        return Ok(None);
    };
    let Some((id, key)) = keyring.active() else {
        return Ok(None);
    };
    Sealer::new(id, key, channel_id, segment_id).map(Some)
}

/// Why a segment could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} segment {path}: {source}")]
pub(crate) struct CreateError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// The step of [`create_segment`] that creates the file.
const CREATE_OP: &str = "create";
/// The step of [`create_segment`] that fsyncs the segment's directory (opening it first).
const DIR_SYNC_OP: &str = "fsync the directory of";

impl CreateError {
    /// Whether the failure left nothing in doubt: the file could not be created at all, or its
    /// directory could not be opened for the fsync (too many open files, no permission).
    /// Anything else (a failed write or fsync) may have lost data and poisons the channel.
    fn touched_no_data(&self) -> bool {
        self.op == CREATE_OP || (self.op == DIR_SYNC_OP && failed_before_any_io(&self.source))
    }
}

/// Creates segment `id`: header written and fsynced, directory fsynced, registered.
pub(crate) fn create_segment(
    shared: &WriterView,
    dirs: &[PathBuf],
    id: u64,
    channel_id: u64,
    first_seq: u64,
) -> Result<Active, CreateError> {
    let dir = dir_for_segment(dirs, id);
    let path = dir.join(segment_file_name(id));
    let err = |op: &'static str, path: &PathBuf| {
        let path = path.clone();
        move |source| CreateError { op, path, source }
    };
    let storage = shared.storage();
    let sealer = sealer_for(shared, channel_id, id).map_err(|e| CreateError {
        op: CREATE_OP,
        path: path.clone(),
        source: io::Error::other(e),
    })?;
    let file = storage.create(&path).map_err(err(CREATE_OP, &path))?;
    let created_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let header = SegmentHeader::new(id, channel_id, first_seq, created_unix_ms);
    file.write_at(&header.encode(), 0)
        .map_err(err("write the header of", &path))?;
    let started = Instant::now();
    file.sync_data().map_err(err("fsync", &path))?;
    shared.metrics().record_fsync(started.elapsed());
    shared
        .sync_dir_gated(dir)
        .map_err(err(DIR_SYNC_OP, &path))?;
    shared.segments().insert(
        id,
        OpenSegment {
            path: path.clone(),
            file: file.clone(),
            binding: header.binding(),
        },
    );
    let m = shared.metrics();
    m.segments_created.fetch_add(1, Relaxed);
    m.segment_count
        .store(shared.segments().len() as u64, Relaxed);
    Ok(Active {
        id,
        path,
        file,
        offset: SEGMENT_HEADER_BYTES as u64,
        durable: SEGMENT_HEADER_BYTES as u64,
        binding: header.binding(),
        sealer,
        rotate_first: false,
    })
}

impl Writer {
    /// Undoes a batch that ran out of space: cuts the segment back to where the batch began.
    /// Possible only while the batch stayed in one segment; otherwise the channel is poisoned.
    pub(super) fn roll_back(
        &mut self,
        start: BatchStart,
        path: PathBuf,
        source: io::Error,
    ) -> Result<(), CommitError> {
        let m = self.shared.metrics();
        m.write_error_count.fetch_add(1, Relaxed);
        self.shared.note_no_space();
        if self.active.id != start.segment {
            self.unflushed.clear();
            return Err(CommitError::Poisoned(self.shared.poison(
                PoisonCause::NoSpaceAcrossSegments {
                    path,
                    error: (&source).into(),
                },
            )));
        }
        self.cut_back(start)?;
        tracing::error!(path = %path.display(), offset = start.offset, error = %source,
            "write failed for lack of space; the batch's commits failed, the channel keeps serving");
        Err(CommitError::Write {
            path,
            source: Arc::new(source),
        })
    }

    /// Undoes a batch whose rotation could not create the next segment (too many open files,
    /// no permission): cuts the active segment back to where the batch began, so the next batch
    /// finds the log as it was and tries the rotation again. Possible only while the batch
    /// stayed in one segment; otherwise the channel is poisoned.
    pub(super) fn give_up_rotation(
        &mut self,
        start: BatchStart,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    ) -> Result<(), CommitError> {
        if self.active.id != start.segment {
            self.unflushed.clear();
            return Err(CommitError::Poisoned(self.shared.poison(
                PoisonCause::SegmentCreate {
                    op,
                    path,
                    error: (&source).into(),
                },
            )));
        }
        self.cut_back(start)?;
        tracing::error!(path = %path.display(), op, errno = source.raw_os_error(),
            error = %source, segment = self.active.id + 1,
            "cannot create the next segment; the batch's commits failed, the channel keeps serving and the next commit tries again");
        Err(CommitError::SegmentUnavailable {
            op,
            path,
            source: Arc::new(source),
        })
    }

    /// Cuts the active segment back to where the batch `start` began (same segment) and resets
    /// the write position and sequence numbers to it.
    fn cut_back(&mut self, start: BatchStart) -> Result<(), CommitError> {
        self.unflushed.clear();
        // The offsets from `start` on may be written again: under a new salt, so no record key
        // meets a nonce twice (part of the failed write may be on disk).
        if self.active.sealer.is_some() {
            match sealer_for(&self.shared, self.channel_id, self.active.id) {
                Ok(s) => self.active.sealer = s,
                Err(e) => {
                    return Err(CommitError::Poisoned(self.shared.poison(
                        PoisonCause::Encrypt {
                            segment: self.active.id,
                            error: e.to_string(),
                        },
                    )))
                }
            }
        }
        if let Err(e) = self.active.file.set_len(start.offset) {
            return Err(CommitError::Poisoned(self.shared.poison(
                PoisonCause::CutBackFailed {
                    path: self.active.path.clone(),
                    offset: start.offset,
                    error: (&e).into(),
                },
            )));
        }
        // Part of the failed batch may be durable already: the prefill thread's fsync of this
        // file covers whatever the writer had written when it ran, not only its zeros. Make the
        // cut durable too, so a commit that failed never comes back after a crash.
        self.sync_active_file().map_err(CommitError::Poisoned)?;
        if let Some(p) = &self.prefill {
            p.switch(
                self.active.file.clone(),
                start.offset,
                start.offset,
                self.shared.config().segment_bytes_max,
            );
        }
        self.active.offset = start.offset;
        self.next_seq = start.next_seq;
        Ok(())
    }

    /// Frames `record` at its place, rotating first if it does not fit: a large plain put
    /// record in its own buffer, anything else copied into the shared one
    /// ([`super::unflushed`]). Gives the record back unless it went into the log in its own
    /// buffer (the batch keeps its take records, even when framing failed).
    pub(super) fn place(
        &mut self,
        record: PendingRecord,
    ) -> (Option<PendingRecord>, Result<(), Fail>) {
        let len = align_up(record.framed_len(self.active.sealer.as_ref()));
        let max = self.shared.config().segment_bytes_max;
        let at = self.active.offset + self.unflushed.len();
        if self.active.rotate_first || at + len + SEAL_RECORD_BYTES > max {
            if let Err(f) = self.flush().and_then(|()| self.rotate()) {
                return (Some(record), Err(f));
            }
        }
        let place = RecordPlace {
            segment_id: self.active.id,
            offset: self.active.offset + self.unflushed.len(),
            durable_mark: self.active.durable,
            binding: self.active.binding,
        };
        let first_seq = match record.kind {
            RecordKind::Put => {
                let s = self.next_seq;
                self.next_seq += u64::from(record.event_count);
                s
            }
            RecordKind::Take | RecordKind::Seal | RecordKind::Gap => record.first_seq,
        };
        let own_buffer = record.kind == RecordKind::Put
            && self.active.sealer.is_none()
            && len >= OWN_BUFFER_BYTES_MIN;
        let (kept, framed) = if own_buffer {
            self.unflushed
                .push_own(record.into_framed(place, first_seq));
            (None, Ok(()))
        } else {
            let framed = match &self.active.sealer {
                None => {
                    self.unflushed
                        .copy_in(|buf| record.frame_into(place, first_seq, buf));
                    Ok(())
                }
                Some(sealer) => self
                    .unflushed
                    .copy_in(|buf| record.frame_sealed_into(place, first_seq, sealer, buf)),
            };
            (Some(record), framed)
        };
        if let Err(e) = framed {
            let poisoned = self.shared.poison(PoisonCause::Encrypt {
                segment: self.active.id,
                error: e.to_string(),
            });
            return (kept, Err(Fail::Poison(poisoned)));
        }
        self.shared.metrics().records_written.fetch_add(1, Relaxed);
        (kept, Ok(()))
    }

    /// Writes the framed records at the write position.
    pub(super) fn flush(&mut self) -> Result<(), Fail> {
        if self.unflushed.is_empty() {
            return Ok(());
        }
        let n = self.unflushed.len();
        let end = self.active.offset + n;
        if let Some(p) = &self.prefill {
            p.claim(end);
        }
        let written = self
            .active
            .file
            .write_all_vectored_at(&self.unflushed.slices(), self.active.offset);
        if let Err(e) = written {
            if is_no_space(&e) {
                return Err(Fail::NoSpace {
                    path: self.active.path.clone(),
                    source: e,
                });
            }
            self.shared
                .metrics()
                .write_error_count
                .fetch_add(1, Relaxed);
            return Err(Fail::Poison(self.shared.poison(
                PoisonCause::SegmentWrite {
                    path: self.active.path.clone(),
                    offset: self.active.offset,
                    bytes: n,
                    error: (&e).into(),
                },
            )));
        }
        self.shared.metrics().bytes_written.fetch_add(n, Relaxed);
        self.unsynced_bytes += n;
        self.bytes_since_checkpoint += n;
        self.bytes_since_space_check += n;
        self.unsynced_since.get_or_insert_with(Instant::now);
        self.active.offset = end;
        self.unflushed.clear();
        Ok(())
    }

    /// Tells the prefiller how many bytes each fsync since the last report covered, so it can
    /// pause while commits are large (`segment::prefill`).
    pub(super) fn report_syncs_to_prefill(&mut self) {
        if let Some(p) = &self.prefill {
            for bytes in self.synced_bytes_unreported.drain(..) {
                p.note_sync(bytes);
            }
        }
    }

    /// fdatasyncs the active segment if anything is unsynced.
    pub(super) fn sync(&mut self) -> Result<(), Poisoned> {
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        let took = self.sync_active_file()?;
        self.gather.note_fsync(took);
        if self.prefill.is_some() {
            self.synced_bytes_unreported.push(self.unsynced_bytes);
        }
        self.active.durable = self.active.offset;
        self.unsynced_since = None;
        self.unsynced_bytes = 0;
        self.unsynced_puts = false;
        Ok(())
    }

    /// fdatasyncs the active segment under the sync gate and counts it; returns how long it
    /// took. A failure poisons the channel, and so does a success that proves nothing.
    fn sync_active_file(&self) -> Result<Duration, Poisoned> {
        let started = Instant::now();
        let _gate = self.shared.hold_sync_gate();
        if let Err(e) = self.active.file.sync_data() {
            self.shared
                .metrics()
                .fsync_error_count
                .fetch_add(1, Relaxed);
            return Err(self.shared.poison(PoisonCause::SegmentSync {
                path: self.active.path.clone(),
                error: (&e).into(),
            }));
        }
        let took = started.elapsed();
        self.shared.metrics().record_fsync(took);
        // Another thread's fsync of this file (the prefiller's) may have received the error
        // that belongs to our pages; then this success proves nothing. The gate guarantees
        // such a failure is already recorded.
        if let Some(p) = self.shared.poisoned() {
            return Err(p);
        }
        Ok(took)
    }

    /// Creates the next segment, then seals the active one and syncs it, then switches.
    /// Creating first means running out of space here fails the batch cleanly instead of
    /// leaving a sealed segment with nowhere to go.
    pub(super) fn rotate(&mut self) -> Result<(), Fail> {
        let next_id = self.active.id + 1;
        let next = match create_segment(
            &self.shared,
            &self.dirs,
            next_id,
            self.channel_id,
            self.next_seq,
        ) {
            Ok(a) => a,
            Err(e) if is_no_space(&e.source) => {
                let _ = self.shared.storage().remove(&e.path);
                self.shared.segments().remove(next_id);
                return Err(Fail::NoSpace {
                    path: e.path,
                    source: e.source,
                });
            }
            Err(e) if e.touched_no_data() => {
                self.shared
                    .metrics()
                    .file_open_error_count
                    .fetch_add(1, Relaxed);
                if e.op != CREATE_OP {
                    // This rotation created the file; the next one creates it again.
                    let _ = self.shared.storage().remove(&e.path);
                }
                return Err(Fail::SegmentUnavailable {
                    op: e.op,
                    path: e.path,
                    source: e.source,
                });
            }
            Err(e) => {
                return Err(Fail::Poison(self.shared.poison(
                    PoisonCause::SegmentCreate {
                        op: e.op,
                        path: e.path,
                        error: (&e.source).into(),
                    },
                )))
            }
        };
        let mut seal = PendingRecord::new(RecordKind::Seal, 0);
        seal.first_seq = self.next_seq;
        SealPayload {
            next_segment_id: next_id,
            next_seq: self.next_seq,
        }
        .encode_into(&mut seal.bytes);
        seal.seal_payload();
        let place = RecordPlace {
            segment_id: self.active.id,
            offset: self.active.offset,
            durable_mark: self.active.durable,
            binding: self.active.binding,
        };
        let next_seq = self.next_seq;
        self.unflushed
            .copy_in(|buf| seal.frame_into(place, next_seq, buf));
        if let Err(Fail::NoSpace { path, source }) = self.flush() {
            return Err(Fail::Poison(self.shared.poison(PoisonCause::SealWrite {
                path,
                error: (&source).into(),
            })));
        }
        // The old segment must be durable (sealed) before the new one takes records.
        self.unsynced_since.get_or_insert_with(Instant::now);
        self.sync()?;
        tracing::info!(segment = next_id, path = %next.path.display(), seq = self.next_seq, "rotated to a new segment");
        if let Some(p) = &self.prefill {
            p.switch(
                next.file.clone(),
                next.offset,
                next.offset,
                self.shared.config().segment_bytes_max,
            );
        }
        self.active = next;
        Ok(())
    }
}
