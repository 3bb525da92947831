//! `chanctl verify DIR [--json] [keys]`: a read-only check of every segment and checkpoint.
//! Exit 0 = no corruption (a torn tail alone is not corruption), 1 = corruption found.
//!
//! Encrypted records are valid records: without keys their structure and checksums are checked
//! and the key each names is listed. With keys (`--keystore …` or `--conf …`, see
//! [`crate::keys`]) every one is authenticated too; exit 1 also on a tampered record (good
//! checksum, failed authentication), a malformed envelope, or a missing or wrong key for a
//! segment the channel's open needs.

use super::open_dir;
use crate::output::{self, bytes, channel_id, from_lib, print_json, Out};
use crate::progress::Bar;
use file_channel::encryption::Keyring;
use file_channel::inspect::repair::problem_json;
use file_channel::inspect::verify::{
    verify, CheckpointCheck, EncryptionFinding, EncryptionReport, VerifyOptions, VerifyReport,
};
use file_channel::inspect::{lock::LockState, MetaState};
use file_channel::replay::TornTail;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs the command.
pub fn run(
    dir: &Path,
    data_dirs: &[PathBuf],
    as_json: bool,
    keyring: Option<Arc<Keyring>>,
) -> anyhow::Result<u8> {
    let d = open_dir(dir, data_dirs)?;
    let bar = Bar::new("segments");
    let report = verify(
        &d,
        &VerifyOptions {
            progress: bar.scan_callback(),
            keyring,
        },
    );
    bar.finish();
    let report = report?;
    let mut out = output::stdout();
    if as_json {
        print_json(&mut out, &to_json(&report))?;
    } else {
        print_human(&mut out, &report)?;
    }
    Ok(u8::from(!report.is_clean()))
}

fn finding_json(f: &EncryptionFinding) -> Value {
    json!({
        "file": f.file.display().to_string(),
        "segment": f.segment,
        "offset": f.offset,
        "records": f.records,
        "events": f.events,
        "key_id": f.key_id,
        "kind": f.kind.code(),
        "detail": f.kind.to_string(),
        "needed_at_open": f.needed_at_open,
        "problem": f.is_problem(),
    })
}

/// The encryption part of the report as JSON.
fn encryption_json(e: &EncryptionReport) -> Value {
    json!({
        "keys_given": e.keys_given,
        "records": e.records,
        "authenticated": e.authenticated,
        "keys": e.keys.iter().map(|k| json!({
            "key_id": k.key_id,
            "key_checks": k.key_checks,
            "segments": k.segments,
            "records": k.records,
            "events": k.events,
            "authenticated": k.authenticated,
        })).collect::<Vec<_>>(),
        "findings": e.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

fn print_encryption(out: &mut Out, e: &EncryptionReport) -> std::io::Result<()> {
    if e.records == 0 {
        return Ok(());
    }
    let per_key: Vec<String> = e
        .keys
        .iter()
        .map(|k| {
            format!(
                "{} ({} records in segments {})",
                k.key_id,
                k.records,
                id_list(&k.segments)
            )
        })
        .collect();
    writeln!(
        out,
        "encrypted: {} records, keys: {}",
        e.records,
        if per_key.is_empty() {
            "none readable".to_owned()
        } else {
            per_key.join(", ")
        }
    )?;
    if e.keys_given {
        writeln!(
            out,
            "  authenticated: {} of {} with the keys given",
            e.authenticated, e.records
        )?;
    } else {
        writeln!(
            out,
            "  not authenticated: no keys given (structure and checksums checked; give --keystore or --conf to authenticate)"
        )?;
    }
    for f in &e.findings {
        write!(
            out,
            "  {}: {} segment {} offset {}",
            if f.is_problem() { "PROBLEM" } else { "note" },
            f.file.display(),
            f.segment,
            f.offset
        )?;
        if let Some(k) = &f.key_id {
            write!(out, " key {k:?}")?;
        }
        write!(
            out,
            ": {} record(s), {} event(s): {}",
            f.records, f.events, f.kind
        )?;
        if !f.is_problem() {
            write!(
                out,
                " (no pending event there: the open does not need this key)"
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `1, 2, 5` (at most 8 ids, then `…`).
pub fn id_list(ids: &[u64]) -> String {
    let mut s: Vec<String> = ids.iter().take(8).map(u64::to_string).collect();
    if ids.len() > 8 {
        s.push(format!("… ({} in all)", ids.len()));
    }
    s.join(", ")
}

/// The lock state as JSON: `null` or the holder's text.
pub fn lock_json(lock: &Option<LockState>) -> Value {
    match lock {
        Some(LockState::Held { holder }) => json!(holder),
        _ => Value::Null,
    }
}

/// `channel.meta`'s state in words.
pub fn meta_text(m: &MetaState) -> String {
    match m {
        MetaState::Valid(_) => "valid".into(),
        MetaState::Missing => "missing (rewritten from the segment headers at open)".into(),
        MetaState::Invalid(k) => format!("invalid: {k}"),
        MetaState::Unreadable(e) => format!("unreadable: {e}"),
    }
}

/// A torn tail as JSON.
pub fn torn_json(t: &Option<TornTail>) -> Value {
    t.as_ref().map_or(Value::Null, |t| {
        json!({
            "segment": t.segment,
            "file": t.path.display().to_string(),
            "offset": t.offset,
            "bytes": t.bytes,
            "removed_file": t.removed_file,
        })
    })
}

fn checkpoint_json(c: &CheckpointCheck) -> Value {
    let cp = c.checkpoint.as_ref();
    json!({
        "file": c.path.display().to_string(),
        "generation": c.generation,
        "bytes": c.bytes,
        "valid": !c.status.is_problem(),
        "status": c.status.code(),
        "detail": c.status.to_string(),
        "used_by_open": c.used_by_open,
        "position": cp.map(|cp| json!([cp.position.0, cp.position.1])),
        "next_seq": cp.map(|cp| cp.next_seq),
        "low_water_mark": cp.map(|cp| cp.low_water_mark),
        "created_unix_ms": cp.map(|cp| cp.created_unix_ms),
    })
}

fn to_json(r: &VerifyReport) -> Value {
    json!({
        "dir": r.dir.display().to_string(),
        "channel_id": channel_id(r.channel_id),
        "meta": meta_text(&r.meta),
        "locked": lock_json(&r.lock),
        "segments": r.segments.len(),
        "records": r.records,
        "events": r.events,
        "bytes": r.bytes,
        "file_bytes": r.file_bytes,
        "first_seq": r.first_seq,
        "next_seq": r.next_seq,
        "torn_tail": torn_json(&r.torn_tail),
        "corrupt": r.problems.iter().map(|p| from_lib(&problem_json(p))).collect::<Vec<_>>(),
        "events_lost": r.events_lost(),
        "checkpoints": r.checkpoints.iter().map(checkpoint_json).collect::<Vec<_>>(),
        "ignored": r.ignored.iter().map(|p| from_lib(&problem_json(p))).collect::<Vec<_>>(),
        "orphans": r.orphans.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "checkpoint_tmp": r.checkpoint_tmp,
        "other_files": r.other_files,
        "segment_files": r.segments.iter().map(|s| json!({
            "id": s.id,
            "file": s.path.display().to_string(),
            "bytes": s.file_bytes,
            "header_ok": s.header.is_ok(),
            "first_seq": s.header.as_ref().ok().map(|h| h.first_seq),
            "records": s.records,
            "events": s.events,
            "valid_end": s.valid_end,
            "sealed": s.sealed,
            "orphan": s.orphan,
        })).collect::<Vec<_>>(),
        "encryption": encryption_json(&r.encryption),
        "clean": r.is_clean(),
        "took_ms": r.took.as_millis() as u64,
    })
}

fn print_human(out: &mut Out, r: &VerifyReport) -> std::io::Result<()> {
    writeln!(
        out,
        "channel directory {} (channel {})",
        r.dir.display(),
        r.channel_id
            .map_or_else(|| "id unknown".to_owned(), |id| format!("{id:#018x}"))
    )?;
    if let Some(LockState::Held { holder }) = &r.lock {
        writeln!(
            out,
            "warning: locked by {holder}: a live process has the channel open, figures may be changing"
        )?;
    }
    let seq = match r.first_seq {
        Some(f) => format!("sequence {f}..{}", r.next_seq),
        None => "no sequence numbers".to_owned(),
    };
    writeln!(
        out,
        "segments: {} ({} on disk), records: {} ({}), events: {}, {seq}",
        r.segments.len(),
        bytes(r.file_bytes),
        r.records,
        bytes(r.bytes),
        r.events
    )?;
    match &r.torn_tail {
        Some(t) if t.removed_file => writeln!(
            out,
            "torn tail: segment {} ({}) has no durable header and no record ({} bytes): an interrupted creation, removed at open; not corruption",
            t.segment,
            t.path.display(),
            t.bytes
        )?,
        Some(t) => writeln!(
            out,
            "torn tail: segment {} ({}) at offset {}: {} bytes never acknowledged, truncated at open; not corruption",
            t.segment,
            t.path.display(),
            t.offset,
            t.bytes
        )?,
        None => {}
    }
    if r.problems.is_empty() {
        writeln!(out, "log: no corruption")?;
    } else {
        writeln!(
            out,
            "corruption: {} problem(s), {} events lost",
            r.problems.len(),
            r.events_lost()
        )?;
        for p in &r.problems {
            write!(out, "  {}", p.file.display())?;
            if let Some(s) = p.segment {
                write!(out, " segment {s}")?;
            }
            write!(out, " offset {}: {}", p.offset, p.kind)?;
            if p.bytes > 0 {
                write!(out, "; {} bytes", p.bytes)?;
            }
            match (p.events_lost, p.first_lost_seq) {
                (Some(0), _) => write!(out, "; no event lost")?,
                (Some(n), Some(f)) => write!(out, "; {n} events lost (sequence {f}..{})", f + n)?,
                (Some(n), None) => write!(out, "; {n} events lost")?,
                (None, _) => write!(out, "; events lost unknown")?,
            }
            writeln!(out)?;
        }
    }
    for p in &r.ignored {
        writeln!(
            out,
            "  ignored (orphan segment, removed at open): {} offset {}: {}",
            p.file.display(),
            p.offset,
            p.kind
        )?;
    }
    print_encryption(out, &r.encryption)?;
    if r.checkpoints.is_empty() {
        writeln!(out, "checkpoints: none (an open replays the whole log)")?;
    } else {
        writeln!(out, "checkpoints:")?;
        for c in &r.checkpoints {
            write!(
                out,
                "  {} (generation {}): {}",
                c.path.display(),
                c.generation,
                c.status
            )?;
            if let Some(cp) = &c.checkpoint {
                write!(
                    out,
                    "; position {}:{}, next sequence {}, low-water mark {}",
                    cp.position.0, cp.position.1, cp.next_seq, cp.low_water_mark
                )?;
            }
            if c.used_by_open {
                write!(out, "; used by open")?;
            }
            writeln!(out)?;
        }
    }
    if !matches!(r.meta, MetaState::Valid(_)) {
        writeln!(out, "channel.meta: {}", meta_text(&r.meta))?;
    }
    for o in &r.orphans {
        writeln!(
            out,
            "orphan: {} (freed by a checkpoint, removed at open)",
            o.display()
        )?;
    }
    if r.checkpoint_tmp {
        writeln!(
            out,
            "note: checkpoint.tmp is left from an interrupted checkpoint write (removed at open)"
        )?;
    }
    if !r.other_files.is_empty() {
        writeln!(
            out,
            "note: files the engine ignores: {}",
            r.other_files.join(", ")
        )?;
    }
    let verdict = if r.is_corrupt() {
        "CORRUPT"
    } else if !r.is_clean() {
        "ENCRYPTION PROBLEM"
    } else {
        "clean"
    };
    writeln!(out, "result: {verdict} ({})", output::duration(r.took))?;
    out.flush()
}
