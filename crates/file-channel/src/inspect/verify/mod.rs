//! `verify`: a read-only check of every segment from its start and of every checkpoint.
//!
//! 1. A full replay of the log ([`crate::replay::replay`], read-only, `ignore_checkpoints`): it
//!    decides — exactly as an open would — where the torn tail of the newest segment starts,
//!    which ranges are damage, and how many events each damaged range cost (from the sequence
//!    gap).
//! 2. A walk of every segment with the same scanner (module `walk`), for per-segment figures
//!    and the sequence state at every position a checkpoint names and at every damaged offset.
//! 3. Every checkpoint is decoded and compared with the log: its position and read start must
//!    be record boundaries inside the valid data, its next sequence number must be the log's at
//!    its position, the record at its read start must not be past its low-water mark, and
//!    everything the log says was consumed below its position must be consumed in it. An older
//!    generation that names segments deleted since a newer valid checkpoint was written is
//!    *superseded*, which is normal.
//!
//! Beside step 2, every encrypted put record's envelope is read (module `encryption`): which
//! key sealed it needs no key; with keys (`VerifyOptions::keyring`) every one is also
//! authenticated, and tampering and missing or wrong keys are reported apart from damage.
//!
//! A torn tail alone is not corruption. Damage inside segments a checkpoint freed (orphans the
//! engine removes at open) is listed as ignored.
//!
//! The parts: `problem` (what a finding is, and how a replay damage entry becomes one),
//! `checkpoints` (step 3, and which checkpoint an open would use), `report` (the figures
//! returned); the replay and the walk are run here, in [`analyze`].

mod checkpoints;
mod encryption;
mod problem;
mod report;

pub use checkpoints::{CheckpointCheck, CheckpointStatus, Disagreement};
pub use encryption::{EncryptionFinding, EncryptionFindingKind, EncryptionReport, SealedKey};
pub use problem::{Problem, ProblemKind};
pub use report::{SegmentSummary, VerifyReport};

use super::walk::{walk, Walk};
use super::{lock, ChannelDir, CheckpointFile, InspectError, MetaState};
use crate::encryption::Keyring;
use crate::error::OpenError;
use crate::replay::{replay, ReplayOptions, ReplayProgress, Replayed};
use checkpoints::{check_checkpoints, engine_choice};
use problem::classify;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Progress of a long scan: a phase name and segments done out of a total.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// What is being done ("replay", "scan").
    pub phase: &'static str,
    /// Segments done.
    pub done: usize,
    /// Segments in all.
    pub total: usize,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Options of [`verify`].
#[derive(Clone, Default)]
pub struct VerifyOptions {
    /// Called as segments are done.
    pub progress: Option<ProgressFn>,
    /// Keys to authenticate encrypted records with (none: their structure and checksums are
    /// checked, and the key each names is read, but they are not decrypted).
    pub keyring: Option<Arc<Keyring>>,
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

/// Everything `verify` learnt, for `repair`.
#[derive(Debug)]
pub(crate) struct Analysis {
    pub report: VerifyReport,
    pub walk: Walk,
}

/// Verifies the channel directory `dir`. Never writes.
pub fn verify(dir: &ChannelDir, opts: &VerifyOptions) -> Result<VerifyReport, InspectError> {
    analyze(dir, opts).map(|a| a.report)
}

/// Runs the three steps of the module doc and gathers the report (and the walk, for repair).
pub(crate) fn analyze(dir: &ChannelDir, opts: &VerifyOptions) -> Result<Analysis, InspectError> {
    let started = Instant::now();
    let lock = if dir.real_fs {
        Some(lock::probe(&dir.dir)?)
    } else {
        None
    };
    if let MetaState::Unreadable(e) = &dir.meta {
        return Err(InspectError::Io {
            op: "read",
            path: dir.dir.join(crate::identity::META_FILE_NAME),
            source: std::io::Error::other(e.clone()),
        });
    }
    let cps = dir.read_checkpoints();
    let channel_id = dir.channel_id();
    let meta_id = dir.meta_id();

    // 1. Full replay.
    let progress = opts.progress.clone();
    let full = full_replay(dir, meta_id, progress.clone())?;

    // 2. Walk, with the positions of interest.
    let interest = positions_of_interest(&cps, &full);
    let walk_progress = |done: usize, total: usize| {
        if let Some(p) = &progress {
            p(Progress {
                phase: "scan",
                done,
                total,
            });
        }
    };
    let mut sealed = encryption::Collector::new(opts.keyring.clone());
    let walk = walk(
        dir.storage.as_ref(),
        &dir.segments,
        &dir.lost_header_bindings(),
        &interest,
        &walk_progress,
        &mut |seen| sealed.visit(seen),
    )
    .map_err(InspectError::io("read segments in", &dir.dir))?;
    // The segments whose key the engine's open checks: the open's own rule.
    let needed_at_open: BTreeSet<u64> = crate::keys_at_open::pending_segment_keys(
        dir.storage.as_ref(),
        &dir.dir,
        &dir.segment_dirs,
    )
    .into_iter()
    .map(|k| k.segment)
    .collect();
    let encryption = sealed.finish(&needed_at_open);

    // Which checkpoint an open would use (the engine's test), and the orphans it frees.
    let open_choice = engine_choice(dir, &cps, meta_id);
    let first_live = open_choice
        .and_then(|i| cps.get(i))
        .and_then(|c| c.decoded.as_ref().ok())
        .map_or(0, |cp| cp.first_live_segment);
    let orphans: Vec<PathBuf> = dir
        .segments
        .iter()
        .filter(|s| s.id < first_live)
        .map(|s| s.path.clone())
        .collect();

    // 3. Problems from the replay.
    let mut problems = Vec::new();
    let mut ignored = Vec::new();
    if let MetaState::Invalid(kind) = &dir.meta {
        problems.push(Problem {
            file: dir.dir.join(crate::identity::META_FILE_NAME),
            segment: None,
            offset: 0,
            bytes: 0,
            kind: ProblemKind::Identity(kind.clone()),
            events_lost: None,
            first_lost_seq: None,
        });
    }
    let torn_tail = match full {
        Ok(r) => {
            for d in &r.damage {
                let p = classify(d, &walk);
                if d.at.segment < first_live || orphans.contains(&d.at.file) {
                    ignored.push(p);
                } else {
                    problems.push(p);
                }
            }
            // An empty newest segment (valid header, zeros after it) is what every rotation
            // and every open that wrote nothing leaves; replay drops and recreates it.
            r.torn_tail
                .filter(|t| !(t.removed_file && walk.segment(t.segment).is_some_and(|s| s.empty)))
        }
        Err(p) => {
            problems.push(p);
            None
        }
    };

    // 4. Checkpoints.
    let checkpoints = check_checkpoints(dir, &cps, channel_id, &walk, open_choice);

    let segments = segment_summaries(&walk, first_live);
    let report = VerifyReport {
        dir: dir.dir.clone(),
        channel_id,
        meta: dir.meta.clone(),
        lock,
        file_bytes: segments.iter().map(|s| s.file_bytes).sum(),
        segments,
        records: walk.records(),
        events: walk.put_events(),
        bytes: walk.record_bytes(),
        first_seq: walk.first_seq,
        next_seq: walk.next_seq,
        torn_tail,
        problems,
        ignored,
        checkpoints,
        orphans,
        checkpoint_tmp: dir.checkpoint_tmp,
        other_files: dir.other_files.clone(),
        encryption,
        took: started.elapsed(),
    };
    Ok(Analysis { report, walk })
}

/// Step 1: the engine's replay of the whole log, read-only, checkpoints ignored, damage
/// skipped. Damage it refuses even so, and a foreign file, are a [`Problem`]; other errors are
/// operating errors.
pub(crate) fn full_replay(
    dir: &ChannelDir,
    meta_id: Option<u64>,
    progress: Option<ProgressFn>,
) -> Result<Result<Replayed, Problem>, InspectError> {
    let replay_progress = progress.map(|p| {
        Arc::new(move |r: ReplayProgress| {
            p(Progress {
                phase: "replay",
                done: r.segments_done,
                total: r.segments_total,
            })
        }) as crate::replay::ProgressFn
    });
    let full = replay(
        dir.storage.as_ref(),
        &dir.dir,
        &dir.segment_dirs,
        ReplayOptions {
            writable: false,
            channel_id: meta_id,
            channel_format_version: dir.meta_format_version(),
            mode: crate::config::RecoveryMode::SkipDamaged,
            ignore_checkpoints: true,
            progress: replay_progress,
        },
    );
    Ok(match full {
        Ok(r) => Ok(r),
        Err(OpenError::Corrupt(c)) => Err(Problem {
            file: c.file,
            segment: Some(c.segment),
            offset: c.offset,
            bytes: 0,
            kind: ProblemKind::Unrecoverable(c.kind),
            events_lost: None,
            first_lost_seq: None,
        }),
        Err(OpenError::Foreign { path, reason }) => {
            let segment = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(crate::format::segment_header::parse_segment_file_name);
            Err(Problem {
                file: path,
                segment,
                offset: 0,
                bytes: 0,
                kind: ProblemKind::Foreign(reason),
                events_lost: None,
                first_lost_seq: None,
            })
        }
        Err(e) => return Err(InspectError::from_open(e)),
    })
}

/// The log positions the walk records the sequence state at: every checkpoint's position
/// (`true`: its consumed set too) and read start, and every damaged offset the replay found.
fn positions_of_interest(
    cps: &[CheckpointFile],
    full: &Result<Replayed, Problem>,
) -> HashMap<(u64, u64), bool> {
    let mut interest: HashMap<(u64, u64), bool> = HashMap::new();
    for c in cps {
        if let Ok(cp) = &c.decoded {
            interest.insert(cp.position, true);
            interest.entry(cp.read_start).or_insert(false);
        }
    }
    if let Ok(r) = full {
        for d in &r.damage {
            interest.entry((d.at.segment, d.at.offset)).or_insert(false);
        }
    }
    interest
}

/// Each walked segment's figures; those below `first_live` are orphans.
fn segment_summaries(walk: &Walk, first_live: u64) -> Vec<SegmentSummary> {
    walk.segments
        .iter()
        .map(|s| SegmentSummary {
            id: s.id,
            path: s.path.clone(),
            file_bytes: s.file_len,
            header: s.header.clone(),
            records: s.records,
            events: s.put_events,
            record_bytes: s.record_bytes,
            valid_end: s.valid_end,
            sealed: s.seal.is_some(),
            orphan: s.id < first_live,
        })
        .collect()
}
