//! `chanctl repair DIR [--dry-run | --yes] [--strict] [--json]`.
//!
//! `--dry-run` (the default) prints the plan and changes nothing: exit 0 if the directory is
//! clean, 1 if it holds corruption. `--yes` applies it under the directory lock (exit 2 if a
//! live process holds it): exit 0 if `verify` is clean afterwards, 1 if something could not be
//! repaired (each such problem is listed with the reason) or `--strict` refused.

use super::open_dir;
use crate::output::{self, bytes, from_lib, print_json, Out};
use crate::progress::Bar;
use file_channel::inspect::lock::{self, LockState};
use file_channel::inspect::repair::{self, problem_json, RepairOptions, RepairOutcome, RepairPlan};
use file_channel::inspect::verify::VerifyOptions;
use file_channel::inspect::InspectError;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs the command.
pub fn run(
    dir: &Path,
    data_dirs: &[PathBuf],
    apply: bool,
    strict: bool,
    as_json: bool,
) -> anyhow::Result<u8> {
    let d = open_dir(dir, data_dirs)?;
    if let LockState::Held { holder } = lock::probe(dir)? {
        return Err(InspectError::Locked {
            dir: dir.to_path_buf(),
            holder,
        }
        .into());
    }
    let opts = RepairOptions { strict };
    let bar = Bar::new("segments");
    let vopts = VerifyOptions {
        progress: bar.scan_callback(),
        keyring: None,
    };
    let mut out = output::stdout();
    if !apply {
        let plan = repair::plan(&d, &opts, &vopts);
        bar.finish();
        let plan = plan?;
        if as_json {
            print_json(&mut out, &plan_json(&plan))?;
        } else {
            print_plan(&mut out, &plan)?;
            writeln!(
                out,
                "dry run: nothing was changed{}",
                if plan.is_empty() || !plan.refused_strict.is_empty() {
                    ""
                } else {
                    "; run again with --yes to apply"
                }
            )?;
            out.flush()?;
        }
        let problem = plan.before.is_corrupt() || !plan.unrepairable.is_empty();
        return Ok(u8::from(problem));
    }
    let outcome = repair::apply(&d, &opts, &vopts);
    bar.finish();
    let outcome = outcome?;
    if as_json {
        print_json(&mut out, &outcome_json(&outcome))?;
    } else {
        print_outcome(&mut out, &outcome)?;
    }
    Ok(u8::from(!outcome.is_clean()))
}

fn plan_json(p: &RepairPlan) -> Value {
    json!({
        "dry_run": true,
        "corrupt": p.before.problems.iter().map(|x| from_lib(&problem_json(x))).collect::<Vec<_>>(),
        "actions": p.actions.iter().map(|a| from_lib(&a.to_json())).collect::<Vec<_>>(),
        "events_lost": p.events_lost(),
        "unrepairable": p.unrepairable.iter()
            .map(|u| { let mut v = from_lib(&problem_json(&u.problem)); v["reason"] = json!(u.reason); v })
            .collect::<Vec<_>>(),
        "refused_strict": p.refused_strict.iter().map(|x| from_lib(&problem_json(x))).collect::<Vec<_>>(),
        "notes": p.notes,
    })
}

fn outcome_json(o: &RepairOutcome) -> Value {
    json!({
        "dry_run": false,
        "rounds": o.rounds,
        "actions": o.applied.iter().map(|a| {
            let mut v = from_lib(&a.action.to_json());
            v["quarantined"] = json!(a.quarantined.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
            v
        }).collect::<Vec<_>>(),
        "events_lost": o.events_lost(),
        "bytes_lost": o.bytes_lost(),
        "torn_tail_bytes": o.torn_bytes(),
        "unrepairable": o.unrepairable.iter()
            .map(|u| { let mut v = from_lib(&problem_json(&u.problem)); v["reason"] = json!(u.reason); v })
            .collect::<Vec<_>>(),
        "refused_strict": o.refused_strict.iter().map(|x| from_lib(&problem_json(x))).collect::<Vec<_>>(),
        "reopen_error": o.reopen_error,
        "pending_events": o.reopened.as_ref().map(|r| r.pending_events),
        "report": o.report_path.as_ref().map(|p| p.display().to_string()),
        "clean": o.is_clean(),
    })
}

fn print_plan(out: &mut Out, p: &RepairPlan) -> std::io::Result<()> {
    let r = &p.before;
    writeln!(
        out,
        "found: {} problem(s) in the log{}, {} checkpoint problem(s), torn tail: {}",
        r.problems.len(),
        if r.problems.is_empty() {
            String::new()
        } else {
            format!(" ({} events lost)", r.events_lost())
        },
        r.checkpoints
            .iter()
            .filter(|c| c.status.is_problem())
            .count(),
        r.torn_tail
            .as_ref()
            .map_or_else(|| "none".to_owned(), |t| bytes(t.bytes))
    )?;
    for x in &r.problems {
        writeln!(
            out,
            "  {} offset {}: {}",
            x.file.display(),
            x.offset,
            x.kind
        )?;
    }
    if !p.refused_strict.is_empty() {
        writeln!(
            out,
            "strict: refusing to repair: the log holds {} damaged range(s) (see above); without --strict they would be replaced by gap records",
            p.refused_strict.len()
        )?;
        return Ok(());
    }
    if p.actions.is_empty() {
        writeln!(out, "plan: nothing to repair")?;
    } else {
        writeln!(out, "plan ({} events lost in all):", p.events_lost())?;
        for (i, a) in p.actions.iter().enumerate() {
            writeln!(out, "  {}. {a}", i + 1)?;
        }
    }
    for n in &p.notes {
        writeln!(out, "note: {n}")?;
    }
    for u in &p.unrepairable {
        writeln!(
            out,
            "cannot repair: {} offset {}: {}: {}",
            u.problem.file.display(),
            u.problem.offset,
            u.problem.kind,
            u.reason
        )?;
    }
    Ok(())
}

fn print_outcome(out: &mut Out, o: &RepairOutcome) -> std::io::Result<()> {
    if !o.refused_strict.is_empty() {
        print_plan(out, &o.plan)?;
        writeln!(out, "nothing was changed")?;
        return out.flush();
    }
    if o.applied.is_empty() {
        writeln!(out, "nothing to repair; nothing was changed")?;
    } else {
        writeln!(out, "done ({} round(s)):", o.rounds)?;
        for (i, a) in o.applied.iter().enumerate() {
            writeln!(out, "  {}. {}", i + 1, a.action)?;
            for q in &a.quarantined {
                writeln!(out, "       kept: {}", q.display())?;
            }
        }
        writeln!(
            out,
            "lost: {} events, {} damaged bytes; torn tail cut: {} (never acknowledged)",
            o.events_lost(),
            o.bytes_lost(),
            bytes(o.torn_bytes())
        )?;
    }
    if let Some(r) = &o.reopened {
        writeln!(
            out,
            "checkpoint rebuilt by the engine: {} events pending, {} record(s) replayed{}",
            r.pending_events,
            r.records,
            if r.deleted_segments.is_empty() {
                String::new()
            } else {
                format!(
                    "; it deleted {} fully consumed segment(s)",
                    r.deleted_segments.len()
                )
            }
        )?;
    }
    if let Some(e) = &o.reopen_error {
        writeln!(out, "could not rebuild the checkpoint: {e}")?;
    }
    for u in &o.unrepairable {
        writeln!(
            out,
            "NOT repaired: {} offset {}: {}: {}",
            u.problem.file.display(),
            u.problem.offset,
            u.problem.kind,
            u.reason
        )?;
    }
    if let Some(p) = &o.report_path {
        writeln!(out, "report: {}", p.display())?;
    }
    match &o.after {
        Some(a) if !a.is_corrupt() => writeln!(out, "verify after repair: clean")?,
        Some(a) => writeln!(
            out,
            "verify after repair: still CORRUPT ({} problem(s))",
            a.problems.len()
                + a.checkpoints
                    .iter()
                    .filter(|c| c.status.is_problem())
                    .count()
        )?,
        None => {}
    }
    out.flush()
}
