//! The `damage` layer: media and operator damage to a cleanly closed channel directory, and the
//! loss ledger checked in every view.
//!
//! Each case, drawn from the seed and the case number alone:
//!
//! 1. builds a real channel in a temporary directory ([`build::build_channel`]: 4 KiB
//!    segments, a checkpoint every 6 KiB of log, puts and takes interleaved, a clean close);
//! 2. applies 1–3 damage actions ([`actions`]: delete, truncate or wipe the oldest, a middle or
//!    the newest segment; swap in a segment of a second channel built the same way, as the
//!    newest, after the newest or in the middle; delete or garble checkpoints; or, one case in
//!    25, every file turned to garbage);
//! 3. runs every view ([`views`]) — first the read-only ones (`replay`, `verify`,
//!    `repair_plan`), then a repair of a copy (`repair_apply`), then the open (`open_report`)
//!    and a complete drain by take commits (`open`: the `EventsLost` metric afterwards) — and
//!    checks the ledger: with `committed` the events acknowledged by put commits and not taken
//!    at close and `recovered` those of them delivered by the drain,
//!    **reported lost = committed − recovered**, exactly, in every view that gives a count
//!    (`open_report` only at most that: damage below the checkpoint is found by readers later);
//!    `replay`, `verify` and `repair_plan` must say "problem" whenever that difference is not 0,
//!    and so must every view that refuses (gives no count). The drain is also checked by the
//!    harness's [`Ledger::check`](crate::harness::check::Ledger::check): no phantoms (nothing delivered that was not put — a
//!    foreign channel's events have ids from [`build::FOREIGN_FIRST_ID`] — or that was taken
//!    before the close, unless a damaged take record is to blame), nothing twice, commit order;
//! 4. checks that every byte the harness wrote (garbage, a foreign segment) that is gone after
//!    the open and the drain, or after the repair, has a copy under `quarantine/` ([`copies`];
//!    bytes below the read start of the intact close checkpoint are spared: consumed before
//!    the damage, they are rightly never read).
//!
//! **Which losses cannot be known.** The checkpoint written at close names the end of the log
//! (its next sequence number), the low-water mark and the consumed ranges above it, so while it
//! still decodes every acknowledged event is known and the check is exact. Without it the
//! engine knows only what the surviving records and segment headers say, which costs it two
//! things:
//!
//! * a segment gone or damaged at either end of the log takes the knowledge of its events
//!   with it (deleting the newest segment leaves a shorter log that is valid in every byte).
//!   So a case is *unknowable* exactly when the checkpoint file the close wrote was deleted
//!   or changed **and** an action deleted, truncated, wiped or replaced the oldest or the
//!   newest segment present when it was applied (every case of
//!   [`actions::Action::AllGarbage`] is one). Its check is `reported lost <= committed −
//!   recovered` (plus the allowance below), with no "problem" required;
//! * a take record destroyed with the put records of the events it consumed leaves those
//!   events looking committed: counting them lost is honest. So whenever that checkpoint is
//!   not intact a view may report up to `taken` more, `taken` being the events consumed before
//!   the close and not delivered again.
//!
//! Every other case is checked exactly. When every file is garbage the damage is still plain
//! to see (no file verifies), so there `replay`, `verify` and `repair_plan` must say "problem"
//! whenever events are missing.
//!
//! **Encryption.** A case runs with encryption off or on ([`run_case`]); on, both channels
//! seal their put records with the test key. The checks are the same, and one more: no view's
//! drain may meet a record it cannot decrypt. Damage breaks a record's checksum, so it must be
//! counted as damage (and lost events as lost), never reported as tampering.

pub mod actions;
pub mod build;
pub mod copies;
pub mod views;

use crate::harness::check::Check;
use crate::harness::encrypt::Encryption;
use crate::harness::rng::Rng;
use actions::{Action, Applied, ForeignBytes};
use build::{build_channel, FOREIGN_FIRST_ID};
use file_channel::format::checkpoint::Checkpoint;
use std::collections::BTreeSet;
use std::path::Path;
use views::{Drained, ViewSaid};

/// A view whose count differs from the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The view.
    pub view: &'static str,
    /// The nearest figure the ledger allows: `committed − recovered` when the check is exact,
    /// else the bound the view broke (see the module doc).
    pub expected: u64,
    /// What the view reported.
    pub reported: u64,
}

/// Everything one case found.
#[derive(Clone, Debug, Default)]
pub struct CaseReport {
    /// Whether the channels of the case encrypt their records.
    pub encryption: Encryption,
    /// The actions as applied.
    pub actions: Vec<String>,
    /// Events committed and not taken at close.
    pub committed: u64,
    /// Of them, delivered by the drain after the open.
    pub recovered: u64,
    /// Whether every loss could be known (see the module doc).
    pub knowable: bool,
    /// Whether the checkpoint the close wrote is still there, unchanged.
    pub checkpoint_intact: bool,
    /// Whether the open refused the directory (corruption or a foreign file).
    pub open_refused: bool,
    /// Whether every file was turned to garbage (visible damage, even when unknowable).
    pub all_garbage: bool,
    /// What each view said.
    pub views: Vec<ViewSaid>,
    /// The drain's check and, if the repair ran, the repaired channel's.
    pub checks: Vec<Check>,
    /// Views whose count differs from the ledger (beyond an allowed lower bound).
    pub mismatches: Vec<Mismatch>,
    /// Views that reported no problem although acknowledged events are missing.
    pub clean_with_loss: Vec<&'static str>,
    /// Events missing beyond what was reported in a case whose loss cannot be known (nothing
    /// durable said they were committed), from the open's drain and the repaired drain.
    pub missing_unknowable: u64,
    /// Bytes the engine did not write, gone without a copy in `quarantine/`.
    pub deleted_without_copy: Vec<String>,
    /// Panics in any view.
    pub panics: u64,
    /// Every failure, described (empty when the case passed).
    pub failures: Vec<String>,
}

impl CaseReport {
    /// Whether the case passed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The actions of case `case` of `seed`, before they are applied (what `--case` reruns).
pub fn case_actions(seed: u64, case: u64) -> Vec<Action> {
    actions::gen_actions(&mut Rng::fork(seed, case))
}

/// Runs case `case` of `seed` in `scratch` (created; removed afterwards).
pub fn run_case(seed: u64, case: u64, encryption: Encryption, scratch: &Path) -> CaseReport {
    run_actions(seed, case, encryption, &case_actions(seed, case), scratch)
}

/// Runs case `case` of `seed` with the damage `actions` instead of the drawn ones (the
/// channels built and every other random choice stay those of the case), in `scratch`
/// (created; removed afterwards unless `CRASHTEST_KEEP` is set, which also keeps a copy of the
/// damaged directory as `damaged/`). With encryption on, both channels seal their put records
/// with the test key (one agent's keys serve all its channels).
pub fn run_actions(
    seed: u64,
    case: u64,
    encryption: Encryption,
    actions: &[Action],
    scratch: &Path,
) -> CaseReport {
    let mut r = CaseReport {
        encryption,
        ..CaseReport::default()
    };
    if let Err(e) = run_case_in(seed, case, actions, scratch, &mut r) {
        r.failures.push(format!("harness error: {e}"));
    }
    if std::env::var_os("CRASHTEST_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(scratch);
    }
    r
}

fn run_case_in(
    seed: u64,
    case: u64,
    plan: &[Action],
    scratch: &Path,
    r: &mut CaseReport,
) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(scratch);
    let chan = scratch.join("channel");
    let other = scratch.join("foreign");
    let copy = scratch.join("repaired");
    std::fs::create_dir_all(scratch).map_err(|e| format!("create {}: {e}", scratch.display()))?;
    // The actions come from their own stream ([`case_actions`]), so replacing them changes
    // nothing else.
    let mut rng = Rng::fork(seed ^ 0xDA3A_6E00, case);
    let encryption = r.encryption;
    let built = build_channel(&chan, &mut rng, 1, encryption)?;
    if plan.iter().any(Action::needs_foreign) {
        build_channel(&other, &mut rng, FOREIGN_FIRST_ID, encryption)?;
    }
    let close_checkpoint = actions::checkpoints(&chan)?
        .first()
        .map(|(_, p)| (p.clone(), std::fs::read(p).unwrap_or_default()));
    let mut foreign = ForeignBytes::default();
    let mut applied: Vec<Applied> = Vec::new();
    for &a in plan {
        applied.push(actions::apply(
            a,
            &chan,
            Some(&other),
            &mut rng,
            &mut foreign,
        )?);
    }
    r.actions = applied.iter().map(ToString::to_string).collect();
    let checkpoint_intact = close_checkpoint
        .as_ref()
        .is_some_and(|(p, bytes)| std::fs::read(p).ok().as_ref() == Some(bytes));
    r.checkpoint_intact = checkpoint_intact;
    // The read start of the newest checkpoint that still decodes: what an open starts its
    // reader from when the close checkpoint is gone.
    let surviving_read_start = actions::checkpoints(&chan)?
        .iter()
        .filter_map(|(_, p)| std::fs::read(p).ok())
        .filter_map(|b| Checkpoint::decode(&b).ok())
        .max_by_key(|cp| cp.generation)
        .map(|cp| cp.read_start);
    r.knowable = checkpoint_intact || !applied.iter().any(|a| a.hit_end_segment);
    r.all_garbage = plan.contains(&Action::AllGarbage);
    let before = copies::snapshot(&foreign);
    copy_dir(&chan, &copy)?;
    if std::env::var_os("CRASHTEST_KEEP").is_some() {
        // The damaged directory as every view first saw it, to look at a failing case again.
        copy_dir(&chan, &scratch.join("damaged"))?;
    }

    // Read-only views first: the open changes the directory.
    r.views = views::inspect_views(&chan);
    let (repair_view, repaired) = views::repair_and_drain(&copy, encryption);
    let (open_views, drained) = views::open_and_drain(&chan, encryption);
    r.open_refused = drained.is_none();
    r.views.extend(open_views);
    r.views.push(repair_view);
    r.panics = r.views.iter().filter(|v| v.panicked).count() as u64;

    let ledger = built.ledger.with_damaged_take_records();
    let committed: BTreeSet<u64> = built.ledger.queue().iter().copied().collect();
    r.committed = committed.len() as u64;
    let lost_by = |d: &Drained| {
        let got: BTreeSet<u64> = d.ids.iter().copied().collect();
        let taken_not_back = built
            .taken_ids
            .iter()
            .filter(|id| !got.contains(id))
            .count();
        Expected {
            lost: committed.difference(&got).count() as u64,
            taken_not_back: taken_not_back as u64,
        }
    };
    // The loss every view but `repair_apply` is held to: from the open's drain (none if the
    // open refused; then the read-only views must say "problem" too).
    let expected = drained.as_ref().map(lost_by);
    r.recovered = expected.map_or(0, |e| r.committed - e.lost);
    for (d, name) in [(&drained, "open"), (&repaired, "repair_apply")] {
        if let Some(d) = d {
            let reported = r
                .views
                .iter()
                .find(|v| v.view == name)
                .and_then(|v| v.lost)
                .or(d.counted_lost)
                .unwrap_or(0);
            let mut c = ledger.check(&d.ids, d.damaged, reported);
            if !r.knowable {
                // Nothing durable says these were committed (see the module doc): they are
                // tallied apart, and `lost` stays the count of losses a view should have seen.
                r.missing_unknowable += c.lost;
                c.lost = 0;
            }
            for v in &c.violations {
                if !v.contains("acknowledged events lost") {
                    r.failures.push(format!("{name}: {v}"));
                }
            }
            if let Some(e) = &d.error {
                r.failures.push(format!("{name}: {e}"));
            }
            c.decrypt_failures = d.decrypt_failures;
            if d.decrypt_failures > 0 {
                r.failures.push(format!(
                    "{name}: {} encrypted records could not be opened: damage must be counted as damage, never as tampering",
                    d.decrypt_failures
                ));
            }
            r.checks.push(c);
        }
    }
    let repair_expected = repaired.as_ref().map(lost_by);
    for v in &r.views.clone() {
        let expected = if v.view == "repair_apply" {
            repair_expected
        } else {
            expected
        };
        judge(v, expected, r);
    }
    // Bytes below the close checkpoint's read start were consumed before the damage; while
    // that checkpoint is intact nothing needs to read them. Without it, below the read start
    // of the newest checkpoint that decodes (it says those events were consumed, and an open
    // reads from there): such bytes go with the normal deletion of consumed segments.
    let consumed_below = close_checkpoint
        .as_ref()
        .filter(|_| checkpoint_intact)
        .and_then(|(_, bytes)| Checkpoint::decode(bytes).ok())
        .map(|cp| cp.read_start)
        .or(surviving_read_start);
    r.deleted_without_copy = copies::check_copies(&chan, &foreign, &before, consumed_below);
    // The copy holds the same foreign bytes under the same names.
    let in_copy = rebase(&foreign, &chan, &copy);
    r.deleted_without_copy.extend(
        copies::check_copies(
            &copy,
            &in_copy,
            &rebase_map(&before, &chan, &copy),
            consumed_below,
        )
        .into_iter()
        .map(|p| format!("after repair: {p}")),
    );
    for p in &r.deleted_without_copy {
        r.failures.push(format!("deleted without a copy: {p}"));
    }
    Ok(())
}

/// The loss one view is held to.
#[derive(Clone, Copy, Debug)]
struct Expected {
    /// `committed − recovered`.
    lost: u64,
    /// Events consumed before the close and not delivered again (the allowance of the module
    /// doc).
    taken_not_back: u64,
}

/// Holds one view to the ledger and records what is wrong.
fn judge(v: &ViewSaid, expected: Option<Expected>, r: &mut CaseReport) {
    if v.panicked {
        r.failures.push(format!("view {}: {}", v.view, v.note));
        return;
    }
    let exit_matters = matches!(v.view, "replay" | "verify" | "repair_plan");
    let Some(reported) = v.lost else {
        if !v.problem {
            r.failures
                .push(format!("view {}: failed outright: {}", v.view, v.note));
        }
        return;
    };
    let Some(e) = expected else {
        if r.open_refused && exit_matters && !v.problem {
            r.clean_with_loss.push(v.view);
            r.failures.push(format!(
                "view {}: exit status says clean although the open refuses the directory",
                v.view
            ));
        }
        return;
    };
    let low = if v.at_most || !r.knowable { 0 } else { e.lost };
    let high = if r.checkpoint_intact {
        e.lost
    } else {
        e.lost + e.taken_not_back
    };
    if reported < low || reported > high {
        r.mismatches.push(Mismatch {
            view: v.view,
            expected: if reported < low { low } else { high },
            reported,
        });
        let allowed = if low == high {
            String::new()
        } else {
            format!(" [allowed {low}..={high}]")
        };
        r.failures.push(format!(
            "view {}: reported {reported} lost, ledger says {} (committed {} − recovered {}){allowed}{}",
            v.view,
            e.lost,
            r.committed,
            r.committed - e.lost.min(r.committed),
            if v.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.note)
            }
        ));
    }
    if exit_matters && (r.knowable || r.all_garbage) && e.lost > 0 && !v.problem {
        r.clean_with_loss.push(v.view);
        r.failures.push(format!(
            "view {}: exit status says clean although {} acknowledged events are missing",
            v.view, e.lost
        ));
    }
}

fn rebase_path(p: &Path, from: &Path, to: &Path) -> std::path::PathBuf {
    p.strip_prefix(from)
        .map_or_else(|_| p.to_path_buf(), |rel| to.join(rel))
}

fn rebase(f: &ForeignBytes, from: &Path, to: &Path) -> ForeignBytes {
    ForeignBytes {
        ranges: f
            .ranges
            .iter()
            .map(|(p, r)| (rebase_path(p, from, to), r.clone()))
            .collect(),
    }
}

fn rebase_map(
    m: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    from: &Path,
    to: &Path,
) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    m.iter()
        .map(|(p, b)| (rebase_path(p, from, to), b.clone()))
        .collect()
}

/// Copies the regular files of `from` (one level, as a channel directory is) into `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("create {}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("list {}: {e}", from.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_file() {
            std::fs::copy(&p, to.join(e.file_name()))
                .map_err(|err| format!("copy {}: {err}", p.display()))?;
        }
    }
    Ok(())
}
