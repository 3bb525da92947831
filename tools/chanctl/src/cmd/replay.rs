//! `chanctl replay DIR [--json] [--mode M]`: a dry run of what opening the channel would do,
//! without writing: the checkpoint used (or full replay) and why, records replayed, pending
//! events, the torn tail that would be truncated, the damage that would be skipped, time taken.
//! Exit 1 if the open would meet corruption (skip it, or fail).
//!
//! `--data [--limit N]` also shows the pending events in the order a reader would take them,
//! with headers and bodies; an encrypted record's only with keys (`--keystore …` or
//! `--conf …`): without, each says it is encrypted and under which key, never its bytes.

use super::dump::{event_json, print_event};
use super::open_dir;
use super::verify::torn_json;
use crate::output::{self, bytes, print_json, Out};
use crate::progress::Bar;
use anyhow::bail;
use file_channel::inspect::dump::Payload;
use file_channel::inspect::kind_code;
use file_channel::inspect::pending::{pending_events, PendingOptions, PendingRecord};
use file_channel::inspect::stat::{replay_view, ReplayView};
use file_channel::replay::{RejectedCheckpoint, ReplayStart};
use file_channel::RecoveryMode;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs the command; `events`: also list the pending events (`--data`).
pub fn run(
    dir: &Path,
    data_dirs: &[PathBuf],
    as_json: bool,
    mode: &str,
    events: Option<PendingOptions>,
) -> anyhow::Result<u8> {
    let Some(mode) = RecoveryMode::from_name(mode) else {
        bail!("unknown recovery mode {mode:?}: use skip-damaged or strict");
    };
    let d = open_dir(dir, data_dirs)?;
    let bar = Bar::new("segments");
    let view = replay_view(&d, mode, bar.scan_callback());
    bar.finish();
    let view = view?;
    let mut out = output::stdout();
    if as_json {
        let mut v = view_json(&view);
        if let (Some(opts), Some(obj)) = (&events, v.as_object_mut()) {
            let mut listed = Vec::new();
            let s = pending_events(&d, view.pending_log(), opts, &mut |r| {
                listed.extend(record_events_json(&r));
                Ok(())
            })?;
            obj.insert("events".into(), Value::Array(listed));
            obj.insert("events_limited".into(), json!(s.limited));
        }
        print_json(&mut out, &v)?;
    } else {
        writeln!(
            out,
            "replay in {} mode, read-only: nothing was written",
            view.mode.name()
        )?;
        print_view(&mut out, &view)?;
        writeln!(out, "took: {}", output::duration(view.took))?;
        if let Some(opts) = &events {
            writeln!(out, "pending events, in the order a reader takes them:")?;
            let s = pending_events(&d, view.pending_log(), opts, &mut |r| {
                print_record_events(&mut out, &r)
            })?;
            writeln!(
                out,
                "-- {} event(s) in {} record(s){}",
                s.events,
                s.records,
                if s.limited { " (limit reached)" } else { "" }
            )?;
        }
        out.flush()?;
    }
    Ok(u8::from(view.is_corrupt()))
}

/// The pending events of one record as JSON objects.
fn record_events_json(r: &PendingRecord<'_>) -> Vec<Value> {
    let h = r.header;
    let mut v = Vec::new();
    for &(start, end) in r.pending {
        for seq in start..end {
            let mut e = json!({
                "seq": seq,
                "segment": h.segment_id,
                "offset": h.offset,
                "encrypted": h.is_encrypted(),
                "key_id": r.seal.and_then(|s| s.sealed_with.as_ref().ok()).map(|k| k.key_id.clone()),
            });
            let extra = match r.payload {
                Payload::Put { events, error } => match events.get((seq - h.first_seq) as usize) {
                    Some(ev) => event_json(ev),
                    None => json!({ "error": error.as_ref().map_or_else(
                            || "event missing from its record".to_owned(),
                            ToString::to_string) }),
                },
                Payload::Sealed(f) => json!({ "sealed": f.to_string() }),
                _ => json!({}),
            };
            if let (Some(obj), Value::Object(more)) = (e.as_object_mut(), extra) {
                obj.extend(more);
            }
            v.push(e);
        }
    }
    v
}

/// The pending events of one record, one line each (one line for a sealed record).
fn print_record_events(out: &mut Out, r: &PendingRecord<'_>) -> std::io::Result<()> {
    let h = r.header;
    match r.payload {
        Payload::Put { events, error } => {
            for &(start, end) in r.pending {
                for seq in start..end {
                    let label = format!(
                        "  seq {seq} (segment {} offset {}):",
                        h.segment_id, h.offset
                    );
                    match events.get((seq - h.first_seq) as usize) {
                        Some(e) => print_event(out, &label, e)?,
                        None => writeln!(
                            out,
                            "{label} does not decode: {}",
                            error.as_ref().map_or_else(
                                || "event missing from its record".to_owned(),
                                ToString::to_string
                            )
                        )?,
                    }
                }
            }
            Ok(())
        }
        Payload::Sealed(f) => {
            let ranges: Vec<String> = r.pending.iter().map(|(s, e)| format!("{s}..{e}")).collect();
            writeln!(
                out,
                "  seq {} (segment {} offset {}): not shown: {f}",
                ranges.join(", "),
                h.segment_id,
                h.offset,
            )
        }
        _ => Ok(()),
    }
}

/// The start as JSON.
fn start_json(s: &Option<ReplayStart>) -> Value {
    let rejected = |r: &Vec<RejectedCheckpoint>| {
        r.iter()
            .map(|c| json!({"file": c.path.display().to_string(), "reason": c.reason.to_string()}))
            .collect::<Vec<_>>()
    };
    match s {
        Some(ReplayStart::Checkpoint {
            path,
            generation,
            rejected: r,
        }) => json!({
            "kind": "checkpoint",
            "file": path.display().to_string(),
            "generation": generation,
            "rejected": rejected(r),
        }),
        Some(ReplayStart::Full { rejected: r }) => json!({
            "kind": "full",
            "rejected": rejected(r),
        }),
        None => Value::Null,
    }
}

/// What an open would do, as JSON (also used by `stat`).
pub fn view_json(v: &ReplayView) -> Value {
    json!({
        "mode": v.mode.name(),
        "start": start_json(&v.start),
        "oversized_checkpoints": v.oversized_checkpoints.iter()
            .map(|(p, n)| json!({"file": p.display().to_string(), "bytes": n})).collect::<Vec<_>>(),
        "would_fail": v.failure.as_ref().map(|f| f.to_string()),
        "segments": v.segments,
        "records": v.records,
        "record_bytes": v.record_bytes,
        "next_seq": v.next_seq,
        "low_water_mark": v.low_water_mark,
        "pending_events": v.pending_events,
        "pending_bytes": v.pending_bytes,
        "torn_tail": torn_json(&v.torn_tail),
        "damage_when_read": v.damage_when_read.iter().map(damage_json).collect::<Vec<_>>(),
        "events_lost_when_read": v.events_lost_when_read,
        "damage": v.damage.iter().map(damage_json).collect::<Vec<_>>(),
        "events_lost": v.events_lost_now(),
        "events_lost_total": v.events_lost_total,
        "orphans": v.orphans.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "repaired_gaps": v.repaired_gaps,
        "read_start": v.read_start.map(|(s, o)| json!([s, o])),
        "took_ms": v.took.as_secs_f64() * 1e3,
    })
}

/// What an open would do, in words (also used by `stat`).
pub fn print_view(out: &mut Out, v: &ReplayView) -> std::io::Result<()> {
    for (p, n) in &v.oversized_checkpoints {
        writeln!(
            out,
            "  checkpoint {} is {} — larger than any valid checkpoint; not read",
            p.display(),
            bytes(*n)
        )?;
    }
    match &v.start {
        Some(ReplayStart::Checkpoint {
            path,
            generation,
            rejected,
        }) => {
            writeln!(
                out,
                "start: checkpoint {} (generation {generation})",
                path.display()
            )?;
            for c in rejected {
                writeln!(out, "  refused newer {}: {}", c.path.display(), c.reason)?;
            }
        }
        Some(ReplayStart::Full { rejected }) if rejected.is_empty() => {
            writeln!(out, "start: full replay of the log (no checkpoint)")?;
        }
        Some(ReplayStart::Full { rejected }) => {
            writeln!(
                out,
                "start: full replay of the log (every checkpoint refused)"
            )?;
            for c in rejected {
                writeln!(out, "  refused {}: {}", c.path.display(), c.reason)?;
            }
        }
        None => {}
    }
    if let Some(f) = &v.failure {
        writeln!(out, "open would FAIL: {f}")?;
        return Ok(());
    }
    writeln!(
        out,
        "records replayed: {} ({}) in {} segment(s)",
        v.records,
        bytes(v.record_bytes),
        v.segments
    )?;
    writeln!(
        out,
        "pending: {} events ({}); sequence {}..{} (low-water mark {})",
        v.pending_events,
        bytes(v.pending_bytes),
        v.low_water_mark,
        v.next_seq,
        v.low_water_mark
    )?;
    match &v.torn_tail {
        Some(t) if t.removed_file => writeln!(
            out,
            "torn tail: would remove segment {} ({} bytes, no durable header)",
            t.segment, t.bytes
        )?,
        Some(t) => writeln!(
            out,
            "torn tail: would truncate {} bytes of segment {} at offset {}",
            t.bytes, t.segment, t.offset
        )?,
        None => writeln!(out, "torn tail: none")?,
    }
    if v.damage.is_empty() && v.damage_when_read.is_empty() && v.events_lost_when_read == 0 {
        writeln!(out, "damage: none")?;
    } else {
        writeln!(
            out,
            "damage: would skip {} range(s) at open and {} more while reading what the checkpoint covers, {} events lost:",
            v.damage.len(),
            v.damage_when_read.len(),
            v.events_lost_now()
        )?;
        for d in v.damage.iter().chain(&v.damage_when_read) {
            writeln!(
                out,
                "  {} segment {} offset {}: {} ({} bytes, {} events lost)",
                d.at.file.display(),
                d.at.segment,
                d.at.offset,
                d.at.kind,
                d.bytes,
                d.events_lost
            )?;
        }
    }
    for o in &v.orphans {
        writeln!(out, "orphan: would remove {}", o.display())?;
    }
    if v.repaired_gaps > 0 {
        writeln!(out, "gap records from earlier repairs: {}", v.repaired_gaps)?;
    }
    if v.events_lost_total > 0 {
        writeln!(
            out,
            "events lost over the channel's life: {}",
            v.events_lost_total
        )?;
    }
    Ok(())
}

/// One damaged range as JSON.
fn damage_json(d: &file_channel::replay::Damage) -> Value {
    json!({
        "file": d.at.file.display().to_string(),
        "segment": d.at.segment,
        "offset": d.at.offset,
        "kind": kind_code(&d.at.kind),
        "detail": d.at.kind.to_string(),
        "bytes": d.bytes,
        "events_lost": d.events_lost,
    })
}
