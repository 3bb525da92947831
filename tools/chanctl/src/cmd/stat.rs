//! `chanctl stat DIR [--json]`: pending events and bytes, segments and bytes on disk, sequence
//! range, low-water mark, newest checkpoint age, and whether a live process holds the
//! directory. Exit 1 if opening would meet corruption.
//!
//! It also lists, per key id, the segments and pending events still using it (read from the
//! records' envelopes: no key needed), so an operator knows when an old key can go: a key not
//! listed is one the channel's open no longer asks for.

use super::open_dir;
use super::replay::{print_view, view_json};
use super::verify::{id_list, lock_json, meta_text};
use crate::output::{self, bytes, channel_id, print_json, Out};
use file_channel::inspect::lock::LockState;
use file_channel::inspect::pending::KeyReferences;
use file_channel::inspect::{stat, StatReport};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs the command.
pub fn run(dir: &Path, data_dirs: &[PathBuf], as_json: bool) -> anyhow::Result<u8> {
    let d = open_dir(dir, data_dirs)?;
    let r = stat(&d)?;
    let mut out = output::stdout();
    if as_json {
        let v = &r.view;
        print_json(
            &mut out,
            &json!({
                "dir": r.dir.display().to_string(),
                "channel_id": channel_id(r.channel_id),
                "meta": meta_text(&r.meta),
                "locked": lock_json(&r.lock),
                "pending_events": v.pending_events,
                "pending_bytes": v.pending_bytes,
                "segments": r.segment_files,
                "segment_ids": r.segment_ids.map(|(a, b)| json!([a, b])),
                "bytes_on_disk": r.segment_bytes,
                "sequence_range": [v.low_water_mark, v.next_seq],
                "low_water_mark": v.low_water_mark,
                "next_seq": v.next_seq,
                "checkpoints": r.checkpoint_files,
                "newest_checkpoint": r.newest_checkpoint.as_ref().map(|c| json!({
                    "file": c.path.display().to_string(),
                    "generation": c.generation,
                    "created_unix_ms": c.created_unix_ms,
                    "age_secs": c.age.as_secs_f64(),
                })),
                "events_lost_total": v.events_lost_total,
                "quarantine_files": r.quarantine.0,
                "quarantine_bytes": r.quarantine.1,
                "keys": keys_json(&r.keys),
                "open": view_json(v),
            }),
        )?;
    } else {
        print_human(&mut out, &r)?;
    }
    Ok(u8::from(r.view.is_corrupt()))
}

fn keys_json(k: &KeyReferences) -> serde_json::Value {
    json!({
        "referenced": k.keys.iter().map(|k| json!({
            "key_id": k.key_id,
            "key_checks": k.key_checks,
            "segments": k.segments,
            "records": k.records,
            "pending_records": k.pending_records,
            "pending_events": k.pending_events,
        })).collect::<Vec<_>>(),
        "plain_pending_events": k.plain_pending_events,
        "unreadable_envelopes": k.unreadable_envelopes,
    })
}

fn print_keys(out: &mut Out, k: &KeyReferences) -> std::io::Result<()> {
    if k.keys.is_empty() {
        writeln!(
            out,
            "keys: none referenced (no encrypted record from the read start on): every key may go"
        )?;
    } else {
        writeln!(
            out,
            "keys still referenced (a key not listed is no longer needed by this channel):"
        )?;
        for key in &k.keys {
            write!(
                out,
                "  {:?}: {} pending event(s) in {} record(s); segment(s) {}",
                key.key_id,
                key.pending_events,
                key.pending_records,
                id_list(&key.segments)
            )?;
            if key.pending_events == 0 {
                write!(
                    out,
                    " (no pending event left; the open asks for it until a checkpoint moves the read start past these segments)"
                )?;
            }
            if key.key_checks.len() > 1 {
                write!(
                    out,
                    "; {} different keys were used under this id",
                    key.key_checks.len()
                )?;
            }
            writeln!(out)?;
        }
    }
    if k.plain_pending_events > 0 && !k.keys.is_empty() {
        writeln!(
            out,
            "  not encrypted: {} pending event(s)",
            k.plain_pending_events
        )?;
    }
    if k.unreadable_envelopes > 0 {
        writeln!(
            out,
            "  {} encrypted record(s) name no readable key (malformed envelope; see verify)",
            k.unreadable_envelopes
        )?;
    }
    Ok(())
}

fn print_human(out: &mut Out, r: &StatReport) -> std::io::Result<()> {
    let v = &r.view;
    writeln!(out, "channel directory: {}", r.dir.display())?;
    writeln!(
        out,
        "channel id: {}",
        r.channel_id
            .map_or_else(|| "unknown".to_owned(), |id| format!("{id:#018x}"))
    )?;
    writeln!(out, "channel.meta: {}", meta_text(&r.meta))?;
    match &r.lock {
        Some(LockState::Held { holder }) => writeln!(
            out,
            "lock: HELD by {holder} (a live process has the channel open)"
        )?,
        Some(LockState::Free) => writeln!(out, "lock: free (no live process has it open)")?,
        None => {}
    }
    writeln!(
        out,
        "pending: {} events, {}",
        v.pending_events,
        bytes(v.pending_bytes)
    )?;
    writeln!(
        out,
        "sequence: {}..{} (low-water mark {})",
        v.low_water_mark, v.next_seq, v.low_water_mark
    )?;
    match r.segment_ids {
        Some((a, b)) => writeln!(
            out,
            "segments: {} file(s), ids {a}..={b}, {} on disk",
            r.segment_files,
            bytes(r.segment_bytes)
        )?,
        None => writeln!(out, "segments: none")?,
    }
    match &r.newest_checkpoint {
        Some(c) => writeln!(
            out,
            "checkpoints: {} file(s); newest that decodes: generation {}, written {} ago",
            r.checkpoint_files,
            c.generation,
            output::duration(c.age)
        )?,
        None => writeln!(
            out,
            "checkpoints: {} file(s), none decodes (an open replays the whole log)",
            r.checkpoint_files
        )?,
    }
    writeln!(
        out,
        "events lost over the channel's life: {}",
        v.events_lost_total
    )?;
    writeln!(
        out,
        "quarantine: {} file(s), {}",
        r.quarantine.0,
        bytes(r.quarantine.1)
    )?;
    print_keys(out, &r.keys)?;
    writeln!(out, "an open would:")?;
    print_view(out, v)?;
    out.flush()
}
