//! Every view of a damaged directory, run and reduced to what it says: how many acknowledged
//! events it reports lost, and whether its command would exit with "problem".
//!
//! | view | what it is | lost | "problem" (exit 1) as the `chanctl` command decides it |
//! |---|---|---|---|
//! | `replay` | [`replay_view`] in skip-damaged mode (`chanctl replay`) | `events_lost_now()` (the channels are new: no loss before this one) | `is_corrupt()` |
//! | `verify` | [`verify()`] (`chanctl verify`) | `events_lost()` | `is_corrupt()` |
//! | `repair_plan` | [`repair::plan`] (`chanctl repair`, dry run) | `events_lost()` | `before.is_corrupt()` or anything unrepairable |
//! | `open_report` | `FileChannel::open` in skip-damaged mode: `OpenReport::events_lost` | at most the loss (damage below the checkpoint is found later, by readers) | — |
//! | `open` | the same channel drained completely by take commits: the `EventsLost` metric | exactly the loss | — |
//! | `repair_apply` | [`repair::apply`] on a copy of the damaged directory, which is then opened and drained | `events_lost()` of the outcome | not `is_clean()` |
//!
//! A view that refuses (the open fails with corruption or a foreign file, the replay view has a
//! `failure`, the plan lists something unrepairable, a repair is not clean, or the inspection
//! itself fails) claims no count: [`ViewSaid::lost`] is `None`, and it must then say "problem".

use super::build::damage_config;
use crate::harness::check::id_of;
use crate::harness::encrypt::Encryption;
use crate::harness::sim::panic_message;
use file_channel::inspect::repair::{self, RepairOptions};
use file_channel::inspect::verify::{verify, VerifyOptions};
use file_channel::inspect::{replay_view, ChannelDir};
use file_channel::{FileChannel, OpenError, RecoveryMode, TakeError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

/// What one view said about the damaged directory.
#[derive(Clone, Debug)]
pub struct ViewSaid {
    /// The view's name (table above).
    pub view: &'static str,
    /// Events it reports lost; `None` if it refused (see the module doc).
    pub lost: Option<u64>,
    /// Whether its command would exit 1 ("problem").
    pub problem: bool,
    /// Whether its figure is only a lower bound of the loss (`open_report`).
    pub at_most: bool,
    /// Why it refused, or a remark.
    pub note: String,
    /// Whether it panicked (then `lost` is `None`).
    pub panicked: bool,
}

impl ViewSaid {
    fn refused(view: &'static str, note: String) -> Self {
        ViewSaid {
            view,
            lost: None,
            problem: true,
            at_most: false,
            note,
            panicked: false,
        }
    }
}

/// Runs `f`, turning a panic into a refusing view that records it.
fn guarded(view: &'static str, f: impl FnOnce() -> ViewSaid) -> ViewSaid {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            let mut v = ViewSaid::refused(view, format!("panic: {}", panic_message(&*p)));
            v.panicked = true;
            v
        }
    }
}

/// The read-only views (`replay`, `verify`, `repair_plan`) of `dir`. Run them before anything
/// opens the directory: an open changes it.
pub fn inspect_views(dir: &Path) -> Vec<ViewSaid> {
    let cd = match catch_unwind(|| ChannelDir::open(dir, &[])) {
        Ok(Ok(cd)) => cd,
        Ok(Err(e)) => {
            let note = format!("inspection refused the directory: {e}");
            return ["replay", "verify", "repair_plan"]
                .into_iter()
                .map(|v| ViewSaid::refused(v, note.clone()))
                .collect();
        }
        Err(p) => {
            let note = format!("panic: {}", panic_message(&*p));
            return ["replay", "verify", "repair_plan"]
                .into_iter()
                .map(|v| {
                    let mut s = ViewSaid::refused(v, note.clone());
                    s.panicked = true;
                    s
                })
                .collect();
        }
    };
    let replay = guarded("replay", || {
        match replay_view(&cd, RecoveryMode::SkipDamaged, None) {
            Ok(v) => match &v.failure {
                Some(f) => ViewSaid {
                    problem: v.is_corrupt(),
                    ..ViewSaid::refused("replay", format!("the open would fail: {f}"))
                },
                None => ViewSaid {
                    view: "replay",
                    lost: Some(v.events_lost_now()),
                    problem: v.is_corrupt(),
                    at_most: false,
                    note: format!(
                        "{} pending, {} damaged ranges",
                        v.pending_events,
                        v.damage.len()
                    ),
                    panicked: false,
                },
            },
            Err(e) => ViewSaid::refused("replay", format!("error: {e}")),
        }
    });
    let verified = guarded("verify", || match verify(&cd, &VerifyOptions::default()) {
        Ok(r) => ViewSaid {
            view: "verify",
            lost: Some(r.events_lost()),
            problem: r.is_corrupt(),
            at_most: false,
            note: format!("{} problems", r.problems.len()),
            panicked: false,
        },
        Err(e) => ViewSaid::refused("verify", format!("error: {e}")),
    });
    let plan = guarded("repair_plan", || {
        match repair::plan(&cd, &RepairOptions::default(), &VerifyOptions::default()) {
            Ok(p) => {
                let problem = p.before.is_corrupt() || !p.unrepairable.is_empty();
                if p.unrepairable.is_empty() {
                    ViewSaid {
                        view: "repair_plan",
                        lost: Some(p.events_lost()),
                        problem,
                        at_most: false,
                        note: format!("{} actions", p.actions.len()),
                        panicked: false,
                    }
                } else {
                    ViewSaid {
                        problem,
                        ..ViewSaid::refused(
                            "repair_plan",
                            format!(
                                "unrepairable: {}",
                                p.unrepairable
                                    .iter()
                                    .map(|u| u.reason.clone())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            ),
                        )
                    }
                }
            }
            Err(e) => ViewSaid::refused("repair_plan", format!("error: {e}")),
        }
    });
    vec![replay, verified, plan]
}

/// What opening and draining a channel gave.
#[derive(Clone, Debug, Default)]
pub struct Drained {
    /// Ids delivered, in order.
    pub ids: Vec<u64>,
    /// Events delivered whose body or headers were damaged.
    pub damaged: u64,
    /// Why the drain stopped early, if it did.
    pub error: Option<String>,
    /// Events the tools and the engine said were lost on the way to this drain, when a view
    /// that claims no count of its own still said so (a repair that left something
    /// unrepairable reports what it gave up, and the reopened channel counts the rest).
    pub counted_lost: Option<u64>,
    /// Encrypted records the drain could not open (the channel's `DecryptErrorCount`, at least
    /// its `TamperedRecordCount`): damage taken for tampering, or a key refused. Must be 0.
    pub decrypt_failures: u64,
}

/// What `ch`'s readers failed to decrypt so far: `DecryptErrorCount`, or
/// `TamperedRecordCount` if that is more.
fn decrypt_failures(ch: &FileChannel) -> u64 {
    let m = ch.metrics();
    m.decrypt_error_count
        .load(Relaxed)
        .max(m.tampered_records.load(Relaxed))
}

/// Most events a drain takes before it gives up (a channel that never runs dry).
const MAX_DRAINED_EVENTS: usize = 10_000_000;

/// Takes everything from `ch` in take transactions of up to 1000 events, each committed.
pub fn drain(ch: &FileChannel) -> Drained {
    let mut d = Drained::default();
    loop {
        let mut tx = ch.transaction();
        let mut got = 0;
        while got < 1000 {
            match tx.take() {
                Ok(Some(e)) => {
                    got += 1;
                    match id_of(&e) {
                        Ok(id) => d.ids.push(id),
                        Err(_) => d.damaged += 1,
                    }
                }
                Ok(None) => break,
                Err(TakeError::TransactionFull { .. }) => break,
                Err(e) => {
                    d.error = Some(format!("take failed after {} events: {e}", d.ids.len()));
                    tx.rollback();
                    return d;
                }
            }
        }
        if let Err(e) = tx.commit() {
            d.error = Some(format!(
                "take commit failed after {} events: {e}",
                d.ids.len()
            ));
            return d;
        }
        if got == 0 {
            return d;
        }
        if d.ids.len() > MAX_DRAINED_EVENTS {
            d.error = Some(format!("more than {MAX_DRAINED_EVENTS} events delivered"));
            return d;
        }
    }
}

/// Opens `dir` in skip-damaged mode (with the keys of `encryption`) and drains it: the
/// `open_report` and `open` views and what was delivered (`None` if the open refused or
/// panicked).
pub fn open_and_drain(dir: &Path, encryption: Encryption) -> (Vec<ViewSaid>, Option<Drained>) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let ch = match FileChannel::open(damage_config(dir, encryption)) {
            Ok(ch) => ch,
            Err(e @ (OpenError::Corrupt(_) | OpenError::Foreign { .. })) => {
                return Err(ViewSaid::refused("open", format!("open refused: {e}")));
            }
            Err(e) => {
                let mut v = ViewSaid::refused("open", format!("open failed: {e}"));
                v.problem = false;
                return Err(v);
            }
        };
        let at_open = ch.open_report().events_lost;
        let mut drained = drain(&ch);
        drained.decrypt_failures = decrypt_failures(&ch);
        let metric = ch.metrics().events_lost.load(Relaxed);
        if let Err(e) = ch.close() {
            drained
                .error
                .get_or_insert(format!("close after draining: {e}"));
        }
        let report = ViewSaid {
            view: "open_report",
            lost: Some(at_open),
            problem: at_open > 0,
            at_most: true,
            note: String::new(),
            panicked: false,
        };
        let open = ViewSaid {
            view: "open",
            lost: Some(metric),
            problem: metric > 0,
            at_most: false,
            note: format!("{} delivered", drained.ids.len()),
            panicked: false,
        };
        Ok((vec![report, open], drained))
    }));
    match r {
        Ok(Ok((views, drained))) => (views, Some(drained)),
        Ok(Err(v)) => (vec![v], None),
        Err(p) => {
            let mut v = ViewSaid::refused("open", format!("panic: {}", panic_message(&*p)));
            v.panicked = true;
            (vec![v], None)
        }
    }
}

/// Repairs `dir` (a copy of the damaged directory) with `repair::apply`, then opens and drains
/// it (with the keys of `encryption`): the `repair_apply` view and what was delivered (`None`
/// if the repair failed or the repaired channel did not open).
pub fn repair_and_drain(dir: &Path, encryption: Encryption) -> (ViewSaid, Option<Drained>) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let cd = ChannelDir::open(dir, &[])
            .map_err(|e| format!("inspection refused the directory: {e}"))?;
        let outcome = repair::apply(&cd, &RepairOptions::default(), &VerifyOptions::default())
            .map_err(|e| format!("repair failed: {e}"))?;
        let ch = FileChannel::open(damage_config(dir, encryption))
            .map_err(|e| format!("open after repair failed: {e}"))?;
        let mut drained = drain(&ch);
        drained.decrypt_failures = decrypt_failures(&ch);
        let later = ch.metrics().events_lost.load(Relaxed);
        let _ = ch.close();
        drained.counted_lost = Some(outcome.events_lost() + later);
        let view = if outcome.is_clean() {
            ViewSaid {
                view: "repair_apply",
                lost: Some(outcome.events_lost()),
                problem: false,
                at_most: false,
                note: format!(
                    "{} actions applied; the repaired channel then counted {later} lost",
                    outcome.applied.len()
                ),
                panicked: false,
            }
        } else {
            ViewSaid::refused(
                "repair_apply",
                format!(
                    "repair not clean: {} unrepairable{}",
                    outcome.unrepairable.len(),
                    outcome
                        .reopen_error
                        .as_ref()
                        .map_or(String::new(), |e| format!(", reopen: {e}"))
                ),
            )
        };
        Ok::<_, String>((view, drained))
    }));
    match r {
        Ok(Ok((v, d))) => (v, Some(d)),
        Ok(Err(why)) => (ViewSaid::refused("repair_apply", why), None),
        Err(p) => {
            let mut v = ViewSaid::refused("repair_apply", format!("panic: {}", panic_message(&*p)));
            v.panicked = true;
            (v, None)
        }
    }
}
