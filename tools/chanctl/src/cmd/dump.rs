//! `chanctl dump DIR [--json] [--data] [--segment ID] [--from-seq N] [--limit N]`: records in
//! log order (offset, type, transaction, sequence range, length, crc-ok), checkpoints decoded.
//! `--json` prints one JSON object per line; `--data` adds event headers and bodies (escaped
//! text, base64 in JSON). A viewer: it exits 0 whatever it shows (`verify` judges).
//!
//! An encrypted put record shows the key it was sealed with (read without a key). With keys
//! (`--keystore …` or `--conf …`) each one is opened: it says `authenticated`, and `--data`
//! shows its events; otherwise, or when it does not open, it says why, never its bytes.

use super::open_dir;
use crate::output::{self, print_json, Out};
use base64::Engine as _;
use file_channel::format::record::RecordKind;
use file_channel::inspect::dump::{dump, DumpItem, DumpOptions, Payload, RecordSeal};
use file_channel::inspect::kind_code;
use file_channel::Event;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

fn kind_name(k: RecordKind) -> &'static str {
    match k {
        RecordKind::Put => "put",
        RecordKind::Take => "take",
        RecordKind::Seal => "seal",
        RecordKind::Gap => "gap",
    }
}

/// Runs the command.
pub fn run(
    dir: &Path,
    data_dirs: &[PathBuf],
    as_json: bool,
    opts: DumpOptions,
) -> anyhow::Result<u8> {
    let d = open_dir(dir, data_dirs)?;
    let mut out = output::stdout();
    let summary = dump(&d, &opts, &mut |item| {
        if as_json {
            print_json(&mut out, &item_json(&item))
        } else {
            print_item(&mut out, &item)
        }
    })?;
    if !as_json {
        writeln!(
            out,
            "-- {} segment(s), {} record(s), {} damaged stretch(es){}",
            summary.segments,
            summary.records,
            summary.bad,
            if summary.limited {
                " (limit reached)"
            } else {
                ""
            }
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// An event as JSON (headers, base64 body, length).
pub fn event_json(e: &Event) -> Value {
    json!({
        "headers": e.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body_base64": base64::engine::general_purpose::STANDARD.encode(&e.body),
        "body_bytes": e.body.len(),
    })
}

fn payload_json(p: &Payload) -> Value {
    match p {
        Payload::Put { events, error } => json!({
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
            "error": error.as_ref().map(|k| k.to_string()),
        }),
        Payload::Take(Ok(t)) => json!({
            "bytes": t.bytes,
            "ranges": t.ranges.iter().map(|&(s, e)| json!([s, e])).collect::<Vec<_>>(),
        }),
        Payload::Take(Err(k)) => json!({ "error": k.to_string() }),
        Payload::Seal(s) => json!({ "next_segment": s.next_segment_id, "next_seq": s.next_seq }),
        Payload::Gap => json!({}),
        Payload::Sealed(f) => json!({ "sealed": f.to_string() }),
    }
}

/// An encrypted record's key and whether it opened, as JSON.
fn seal_json(s: &RecordSeal) -> Value {
    let (key_id, key_check, envelope_error) = match &s.sealed_with {
        Ok(k) => (Some(k.key_id.clone()), Some(k.key_check.clone()), None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    json!({
        "key_id": key_id,
        "key_check": key_check,
        "envelope_error": envelope_error,
        "authenticated": s.opened.as_ref().map(Result::is_ok),
        "open_error": s.opened.as_ref().and_then(|r| r.as_ref().err()).map(ToString::to_string),
    })
}

/// An encrypted record's key and whether it opened, appended to its line.
fn seal_text(s: &RecordSeal) -> String {
    let key = match &s.sealed_with {
        Ok(k) => format!("  encrypted, key {:?}", k.key_id),
        Err(e) => format!("  encrypted, envelope unreadable: {e}"),
    };
    match &s.opened {
        None => key,
        Some(Ok(())) => format!("{key}, authenticated"),
        Some(Err(f)) => format!("{key}, NOT OPENED: {f}"),
    }
}

fn item_json(item: &DumpItem<'_>) -> Value {
    match item {
        DumpItem::Checkpoint {
            path,
            generation,
            bytes,
            decoded,
        } => match decoded {
            Ok(cp) => json!({
                "type": "checkpoint",
                "file": path.display().to_string(),
                "generation": generation,
                "bytes": bytes,
                "valid": true,
                "channel_id": format!("{:#018x}", cp.channel_id),
                "created_unix_ms": cp.created_unix_ms,
                "position": [cp.position.0, cp.position.1],
                "next_seq": cp.next_seq,
                "low_water_mark": cp.low_water_mark,
                "read_start": [cp.read_start.0, cp.read_start.1],
                "pending_bytes": cp.pending_bytes,
                "next_txn_id": cp.next_txn_id,
                "first_live_segment": cp.first_live_segment,
                "events_lost": cp.events_lost,
                "ranges": cp.ranges.iter().map(|&(s, e)| json!([s, e])).collect::<Vec<_>>(),
            }),
            Err(e) => json!({
                "type": "checkpoint",
                "file": path.display().to_string(),
                "generation": generation,
                "bytes": bytes,
                "valid": false,
                "error": e.to_string(),
            }),
        },
        DumpItem::Segment {
            id,
            path,
            file_bytes,
            header,
        } => match header {
            Ok(h) => json!({
                "type": "segment",
                "id": id,
                "file": path.display().to_string(),
                "bytes": file_bytes,
                "header_ok": true,
                "format_version": h.format_version,
                "channel_id": format!("{:#018x}", h.channel_id),
                "first_seq": h.first_seq,
                "created_unix_ms": h.created_unix_ms,
            }),
            Err(k) => json!({
                "type": "segment",
                "id": id,
                "file": path.display().to_string(),
                "bytes": file_bytes,
                "header_ok": false,
                "header_error": k.to_string(),
            }),
        },
        DumpItem::Record {
            header: h,
            payload,
            seal,
        } => {
            let mut v = json!({
                "type": "record",
                "segment": h.segment_id,
                "offset": h.offset,
                "kind": kind_name(h.kind),
                "txn": h.txn_id,
                "first_seq": h.first_seq,
                "end_seq": h.first_seq.saturating_add(u64::from(h.event_count)),
                "events": h.event_count,
                "len": h.len,
                "durable_mark": h.durable_mark,
                "crc_ok": true,
            });
            if let Some(obj) = v.as_object_mut() {
                if let Some(p) = payload {
                    obj.insert("data".into(), payload_json(p));
                }
                obj.insert("encrypted".into(), json!(seal.is_some()));
                if let Some(s) = seal {
                    obj.insert("seal".into(), seal_json(s));
                }
            }
            v
        }
        DumpItem::Bad {
            segment,
            offset,
            kind,
            raw,
            resumes_at,
        } => json!({
            "type": "bad",
            "segment": segment,
            "offset": offset,
            "crc_ok": false,
            "kind": kind_code(kind),
            "detail": kind.to_string(),
            "raw": raw.map(|r| json!({
                "len": r.len, "crc": r.crc, "type": r.kind, "events": r.event_count,
                "segment": r.segment_id, "offset": r.offset, "first_seq": r.first_seq, "txn": r.txn_id,
            })),
            "resumes_at": resumes_at,
        }),
        DumpItem::End {
            segment,
            offset,
            file_bytes,
        } => json!({
            "type": "end",
            "segment": segment,
            "offset": offset,
            "file_bytes": file_bytes,
        }),
    }
}

/// An event on one line: `label headers {k=v} body (n bytes) "…"` (escaped).
pub fn print_event(out: &mut Out, label: &str, e: &Event) -> std::io::Result<()> {
    write!(out, "{label}")?;
    if !e.headers.is_empty() {
        write!(out, " headers {{")?;
        for (j, (k, v)) in e.headers.iter().enumerate() {
            if j > 0 {
                write!(out, ", ")?;
            }
            write!(out, "{}={}", k.escape_debug(), v.escape_debug())?;
        }
        write!(out, "}}")?;
    }
    writeln!(
        out,
        " body ({} bytes) \"{}\"",
        e.body.len(),
        e.body.escape_ascii()
    )
}

fn print_item(out: &mut Out, item: &DumpItem<'_>) -> std::io::Result<()> {
    match item {
        DumpItem::Checkpoint {
            path,
            generation,
            bytes,
            decoded,
        } => match decoded {
            Ok(cp) => writeln!(
                out,
                "checkpoint {} (generation {generation}, {bytes} bytes): position {}:{}, next sequence {}, low-water mark {}, read start {}:{}, pending {} bytes, next txn {}, first live segment {}, events lost {}, {} consumed range(s), written at {} ms",
                path.display(),
                cp.position.0,
                cp.position.1,
                cp.next_seq,
                cp.low_water_mark,
                cp.read_start.0,
                cp.read_start.1,
                cp.pending_bytes,
                cp.next_txn_id,
                cp.first_live_segment,
                cp.events_lost,
                cp.ranges.len(),
                cp.created_unix_ms
            ),
            Err(e) => writeln!(
                out,
                "checkpoint {} (generation {generation}, {bytes} bytes): INVALID: {e}",
                path.display()
            ),
        },
        DumpItem::Segment {
            id,
            path,
            file_bytes,
            header,
        } => match header {
            Ok(h) => writeln!(
                out,
                "segment {id} {} ({file_bytes} bytes): format {}, channel {:#018x}, first sequence {}, created at {} ms",
                path.display(),
                h.format_version,
                h.channel_id,
                h.first_seq,
                h.created_unix_ms
            ),
            Err(k) => writeln!(
                out,
                "segment {id} {} ({file_bytes} bytes): HEADER DAMAGED: {k}",
                path.display()
            ),
        },
        DumpItem::Record {
            header: h,
            payload,
            seal,
        } => {
            let end = h.first_seq.saturating_add(u64::from(h.event_count));
            let seqs = match h.kind {
                RecordKind::Seal => format!("next seq {}", h.first_seq),
                _ => format!("seq {}..{end}", h.first_seq),
            };
            writeln!(
                out,
                "  {:>10}  {:<4}  txn {:<8} {:<22} len {:<8} crc ok{}",
                h.offset,
                kind_name(h.kind),
                h.txn_id,
                seqs,
                h.len,
                seal.map_or_else(String::new, seal_text)
            )?;
            match payload {
                Some(Payload::Put { events, error }) => {
                    for (i, e) in events.iter().enumerate() {
                        print_event(out, &format!("      [{i}]"), e)?;
                    }
                    if let Some(k) = error {
                        writeln!(out, "      payload does not decode further: {k}")?;
                    }
                }
                Some(Payload::Take(Ok(t))) => {
                    let ranges: Vec<String> =
                        t.ranges.iter().map(|(s, e)| format!("{s}..{e}")).collect();
                    writeln!(
                        out,
                        "      consumed {} ({} bytes)",
                        ranges.join(", "),
                        t.bytes
                    )?;
                }
                Some(Payload::Take(Err(k))) => writeln!(out, "      take payload invalid: {k}")?,
                Some(Payload::Seal(s)) => writeln!(
                    out,
                    "      next segment {}, next sequence {}",
                    s.next_segment_id, s.next_seq
                )?,
                Some(Payload::Sealed(f)) => {
                    writeln!(out, "      {} event(s) not shown: {f}", h.event_count)?
                }
                Some(Payload::Gap) | None => {}
            }
            Ok(())
        }
        DumpItem::Bad {
            offset,
            kind,
            raw,
            resumes_at,
            ..
        } => {
            write!(out, "  {offset:>10}  BAD   {kind}")?;
            if let Some(r) = raw {
                write!(
                    out,
                    " (raw: len {} type {} events {} segment {} offset {} seq {} txn {})",
                    r.len, r.kind, r.event_count, r.segment_id, r.offset, r.first_seq, r.txn_id
                )?;
            }
            match resumes_at {
                Some(at) => writeln!(out, "; next valid record at {at}"),
                None => writeln!(out, "; no valid record follows"),
            }
        }
        DumpItem::End {
            offset,
            file_bytes,
            ..
        } => writeln!(
            out,
            "  {offset:>10}  end of data ({} bytes to the end of the file)",
            file_bytes.saturating_sub(*offset)
        ),
    }
}
