//! `chanctl stat DIR [--json]`: pending events and bytes, segments and bytes on disk, sequence
//! range, low-water mark, newest checkpoint age, and whether a live process holds the
//! directory. Exit 1 if opening would meet corruption.

use super::open_dir;
use super::replay::{print_view, view_json};
use super::verify::{lock_json, meta_text};
use crate::output::{self, bytes, channel_id, print_json, Out};
use file_channel::inspect::lock::LockState;
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
                "open": view_json(v),
            }),
        )?;
    } else {
        print_human(&mut out, &r)?;
    }
    Ok(u8::from(r.view.is_corrupt()))
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
    writeln!(out, "an open would:")?;
    print_view(out, v)?;
    out.flush()
}
