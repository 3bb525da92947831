//! [`apply`]: the repair itself, under the directory lock — rounds of analyse, plan and
//! execute until nothing more can be done, then the checkpoint rebuilt by opening the channel
//! once through the engine, a final verify, and `quarantine/report.json`. Before the first
//! change every obstacle the repair could meet is checked ([`preflight`]), so a repair refused
//! for one changes nothing.

use super::action::Action;
use super::execute::{execute, identity_of, DurableDir};
use super::outcome::{Applied, Reopened, RepairOutcome};
use super::plan::build_plan;
use super::report::report_json;
use super::{RepairOptions, MAX_REPAIR_ROUNDS};
use crate::config::{ChannelConfig, RecoveryMode};
use crate::error::OpenError;
use crate::inspect::verify::{analyze, Problem, VerifyOptions};
use crate::inspect::view_storage::ViewStorage;
use crate::inspect::{
    check_obstacles, lock, not_a_directory, not_a_regular_file, now_unix_ms, ChannelDir,
    InspectError,
};
use crate::quarantine::QUARANTINE_DIR_NAME;
use crate::FileChannel;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

fn reopen(dir: &ChannelDir) -> Result<Reopened, String> {
    let storage = Arc::new(ViewStorage {
        inner: dir.storage.clone(),
        hidden: Vec::new(),
        lock_held: true,
    });
    let mut cfg = ChannelConfig::new(&dir.dir);
    if dir.segment_dirs != [dir.dir.clone()] {
        cfg.data_dirs = dir.segment_dirs.clone();
    }
    cfg.prefill_ahead_bytes = 0;
    cfg.minimum_required_space = 0;
    cfg.recovery_mode = RecoveryMode::Strict;
    let before: Vec<PathBuf> = dir.segments.iter().map(|s| s.path.clone()).collect();
    // Without a key: the reopen reads no payload (it takes and puts nothing), so a channel
    // holding encrypted events is repaired and checkpointed without its keys.
    let ch = FileChannel::open_for_repair(cfg, storage).map_err(|e| match e {
        OpenError::Corrupt(c) => format!("the engine still finds damage: {c}"),
        other => other.to_string(),
    })?;
    let pending_events = ch.len();
    let records = ch.open_report().records;
    ch.close().map_err(|e| e.to_string())?;
    let now = dir.reload().map_err(|e| e.to_string())?;
    let after: Vec<PathBuf> = now.segments.iter().map(|s| s.path.clone()).collect();
    Ok(Reopened {
        pending_events,
        records,
        created_segments: after
            .iter()
            .filter(|p| !before.contains(p))
            .cloned()
            .collect(),
        deleted_segments: before
            .iter()
            .filter(|p| !after.contains(p))
            .cloned()
            .collect(),
        checkpoints: now.checkpoints.iter().map(|(_, p)| p.clone()).collect(),
    })
}

/// Everything the first round's `actions` and the report will need, checked before the first
/// change, so that a repair refused for an obstacle changes nothing: no file the channel uses
/// is anything but a regular file; `quarantine/` is absent or a directory on the channel
/// directory's file system (files are moved into it with `rename`), and its report files are
/// regular files; a tombstone's file does not exist yet and the channel id it needs is known.
/// (Later rounds only act on files this round has checked or written.)
fn preflight(dir: &ChannelDir, actions: &[Action]) -> Result<(), InspectError> {
    preflight_files(dir)?;
    for action in actions {
        if let Action::CreateTombstone { path, .. } = action {
            if dir.storage.exists(path) {
                return Err(InspectError::Usage(format!(
                    "cannot create a tombstone segment at {}: something is already there; nothing was changed",
                    path.display()
                )));
            }
            if identity_of(dir.storage.as_ref(), &dir.dir).is_none() {
                return Err(InspectError::Usage(
                    "cannot create a tombstone segment: the channel id is unknown (channel.meta is missing or invalid); nothing was changed"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

/// The part of [`preflight`] that needs no plan: also run before the lock is taken, so that a
/// repair refused for an obstacle does not even write the lock file.
fn preflight_files(dir: &ChannelDir) -> Result<(), InspectError> {
    if dir.real_fs {
        let data_dirs = if dir.segment_dirs == [dir.dir.clone()] {
            Vec::new()
        } else {
            dir.segment_dirs.clone()
        };
        check_obstacles(&dir.dir, &data_dirs)?;
        let q = dir.dir.join(QUARANTINE_DIR_NAME);
        if let Some(kind) = not_a_directory(&q)? {
            return Err(InspectError::Obstacle {
                path: q,
                kind,
                role: "the quarantine directory",
            });
        }
        if let (Ok(qm), Ok(dm)) = (std::fs::metadata(&q), std::fs::metadata(&dir.dir)) {
            if qm.dev() != dm.dev() {
                return Err(InspectError::Obstacle {
                    path: q,
                    kind: "a directory on another file system".into(),
                    role: "the quarantine directory, on the channel directory's file system",
                });
            }
            for name in ["report.json", "report.tmp-chanctl"] {
                let path = q.join(name);
                if let Some(kind) = not_a_regular_file(&path)? {
                    return Err(InspectError::Obstacle {
                        path,
                        kind,
                        role: "the repair report",
                    });
                }
            }
        }
    }
    Ok(())
}

/// Applies a repair: takes the directory lock (refusing a directory a live process holds),
/// then plans and applies rounds until verify finds nothing more to do, rebuilds the
/// checkpoint through the engine, verifies again and writes `quarantine/report.json`.
pub fn apply(
    dir: &ChannelDir,
    opts: &RepairOptions,
    verify_opts: &VerifyOptions,
) -> Result<RepairOutcome, InspectError> {
    let started_ms = now_unix_ms();
    preflight_files(dir)?;
    let _lock = if dir.real_fs {
        Some(lock::lock_exclusive(&dir.dir, "chanctl repair")?)
    } else {
        None
    };
    let mut cur = dir.reload()?;
    let mut outcome: Option<RepairOutcome> = None;
    let mut applied: Vec<Applied> = Vec::new();
    let mut rebuild = false;
    let mut previous_problems: Option<Vec<Problem>> = None;
    let mut unrepairable = Vec::new();
    let mut rounds = 0;
    for round in 1..=MAX_REPAIR_ROUNDS {
        let a = analyze(&cur, verify_opts)?;
        let plan = build_plan(&cur, &a, opts.strict, round == 1);
        if round == 1 {
            let refused = plan.refused_strict.clone();
            outcome = Some(RepairOutcome {
                plan: plan.clone(),
                rounds: 0,
                applied: Vec::new(),
                unrepairable: Vec::new(),
                refused_strict: refused.clone(),
                reopened: None,
                reopen_error: None,
                after: None,
                report_path: None,
            });
            if !refused.is_empty() {
                // Strict: nothing is changed.
                return outcome.ok_or_else(|| InspectError::Usage("no plan".into()));
            }
            preflight(&cur, &plan.actions)?;
        }
        unrepairable = plan.unrepairable.clone();
        let work: Vec<&Action> = plan
            .actions
            .iter()
            .filter(|a| **a != Action::RebuildCheckpoint)
            .collect();
        if work.is_empty() {
            break;
        }
        if previous_problems.as_ref() == Some(&a.report.problems) && a.report.torn_tail.is_none() {
            // No progress: the same problems as before the last round.
            break;
        }
        previous_problems = Some(a.report.problems.clone());
        rounds = round;
        rebuild |= plan.actions.contains(&Action::RebuildCheckpoint);
        let ctx = DurableDir {
            storage: cur.storage.as_ref(),
            dir: &cur.dir,
        };
        for action in work {
            let quarantined = execute(&ctx, action)?;
            applied.push(Applied {
                action: action.clone(),
                quarantined,
            });
        }
        cur = cur.reload()?;
    }
    let mut outcome = outcome.ok_or_else(|| InspectError::Usage("no plan".into()))?;
    outcome.rounds = rounds;
    outcome.unrepairable = unrepairable;
    if applied.is_empty() && !rebuild {
        // Nothing to do: nothing written, no report.
        outcome.after = Some(analyze(&cur, verify_opts)?.report);
        return Ok(outcome);
    }
    let log_clean = analyze(&cur, verify_opts)?.report.problems.is_empty();
    if rebuild && log_clean {
        match reopen(&cur) {
            Ok(r) => {
                applied.push(Applied {
                    action: Action::RebuildCheckpoint,
                    quarantined: Vec::new(),
                });
                outcome.reopened = Some(r);
            }
            Err(e) => outcome.reopen_error = Some(e),
        }
        cur = cur.reload()?;
    }
    outcome.applied = applied;
    let after = analyze(&cur, verify_opts)?.report;
    outcome.after = Some(after);
    let ctx = DurableDir {
        storage: cur.storage.as_ref(),
        dir: &cur.dir,
    };
    let q = ctx.qdir()?;
    let report_path = q.join("report.json");
    if ctx.storage.exists(&report_path) {
        let old = ctx.free_name(&q, &format!("report-{}.json", now_unix_ms()));
        ctx.storage
            .rename(&report_path, &old)
            .map_err(ctx.io("rename", &report_path))?;
    }
    let text = report_json(&outcome, &cur.dir, opts.strict, started_ms).render();
    ctx.write_file(&report_path, format!("{text}\n").as_bytes())?;
    outcome.report_path = Some(report_path);
    Ok(outcome)
}
