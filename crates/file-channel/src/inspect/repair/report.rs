//! How a repair is shown: each [`Action`] as a sentence for a human ([`fmt::Display`]) and as a
//! JSON object, problems as JSON, and the whole outcome as `quarantine/report.json`.

use super::action::Action;
use super::outcome::RepairOutcome;
use crate::inspect::json::Json;
use crate::inspect::verify::Problem;
use crate::inspect::{kind_code, now_unix_ms};
use std::fmt;
use std::path::Path;

impl Action {
    /// The action as a JSON object (for `report.json` and the tool).
    pub fn to_json(&self) -> Json {
        let j = Json::obj().with("action", self.code());
        match self {
            Self::RemoveOrphan { segment, path } => {
                j.with("segment", *segment).with("file", path.as_path())
            }
            Self::QuarantineCheckpoint { path, reason } => j
                .with("file", path.as_path())
                .with("reason", reason.as_str()),
            Self::RemoveCheckpoint { path } | Self::RemoveCheckpointTmp { path } => {
                j.with("file", path.as_path())
            }
            Self::RewriteIdentity {
                path,
                channel_id,
                format_version,
            } => j
                .with("file", path.as_path())
                .with("channel_id", format!("{channel_id:#018x}"))
                .with("format_version", u64::from(*format_version)),
            Self::RebuildSegmentHeader {
                segment,
                path,
                channel_id,
                format_version,
                first_seq,
                source,
                kind,
            } => j
                .with("segment", *segment)
                .with("kind", kind_code(kind))
                .with("detail", kind.to_string())
                .with("file", path.as_path())
                .with("channel_id", format!("{channel_id:#018x}"))
                .with("format_version", u64::from(*format_version))
                .with("first_seq", *first_seq)
                .with("first_seq_from", *source),
            Self::FillWithGap {
                segment,
                path,
                offset,
                damaged_bytes,
                fill_bytes,
                first_seq,
                events,
                kind,
                seal,
                ..
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("offset", *offset)
                .with("bytes", *damaged_bytes)
                .with("gap_bytes", *fill_bytes)
                .with("kind", kind_code(kind))
                .with("detail", kind.to_string())
                .with("events_lost", *events)
                .with(
                    "lost_seqs",
                    Json::Arr(vec![(*first_seq).into(), (first_seq + events).into()]),
                )
                .with(
                    "seal",
                    seal.map(|s| {
                        Json::obj()
                            .with("offset", s.offset)
                            .with("next_segment", s.next_segment)
                            .with("next_seq", s.next_seq)
                    }),
                ),
            Self::CreateTombstone {
                segment,
                path,
                first_seq,
                events,
                next_seq,
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("events_lost", *events)
                .with(
                    "lost_seqs",
                    Json::Arr(vec![(*first_seq).into(), (first_seq + events).into()]),
                )
                .with("next_seq", *next_seq),
            Self::TruncateTornTail {
                segment,
                path,
                offset,
                bytes,
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("offset", *offset)
                .with("bytes", *bytes),
            Self::RemoveTornSegment {
                segment,
                path,
                bytes,
            } => j
                .with("segment", *segment)
                .with("file", path.as_path())
                .with("bytes", *bytes),
            Self::RebuildCheckpoint => j,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemoveOrphan { segment, path } => write!(
                f,
                "remove orphan segment {segment} ({}): a valid checkpoint freed it; open would remove it too",
                path.display()
            ),
            Self::QuarantineCheckpoint { path, reason } => write!(
                f,
                "move checkpoint {} to quarantine/ ({reason})",
                path.display()
            ),
            Self::RemoveCheckpoint { path } => write!(
                f,
                "delete checkpoint {} (rebuilt at the end)",
                path.display()
            ),
            Self::RemoveCheckpointTmp { path } => write!(
                f,
                "remove {} (an interrupted checkpoint write)",
                path.display()
            ),
            Self::RewriteIdentity {
                path, channel_id, ..
            } => write!(
                f,
                "move {} to quarantine/ and write a new one for channel {channel_id:#018x} (from the segment headers)",
                path.display()
            ),
            Self::RebuildSegmentHeader {
                segment,
                path,
                first_seq,
                source,
                kind,
                ..
            } => write!(
                f,
                "rebuild the header of segment {segment} ({}; {kind}) with first sequence {first_seq} (from {source}); its old 64 bytes go to quarantine/; no event is lost",
                path.display()
            ),
            Self::FillWithGap {
                segment,
                path,
                offset,
                damaged_bytes,
                fill_bytes,
                first_seq,
                events,
                kind,
                seal,
                ..
            } => {
                write!(
                    f,
                    "segment {segment} ({}) offset {offset}: copy {damaged_bytes} damaged bytes to quarantine/ ({kind}) and overwrite {fill_bytes} bytes with gap records: {events} events lost",
                    path.display()
                )?;
                if *events > 0 {
                    write!(f, " (sequence {first_seq}..{})", first_seq + events)?;
                }
                if let Some(s) = seal {
                    write!(
                        f,
                        "; then write a seal at offset {} naming segment {} (next sequence {})",
                        s.offset, s.next_segment, s.next_seq
                    )?;
                }
                Ok(())
            }
            Self::CreateTombstone {
                segment,
                path,
                first_seq,
                events,
                next_seq,
            } => write!(
                f,
                "create tombstone segment {segment} ({}): header, a gap record for {events} lost events (sequence {first_seq}..{}), a seal naming segment {} at sequence {next_seq}",
                path.display(),
                first_seq + events,
                segment + 1
            ),
            Self::TruncateTornTail {
                segment,
                path,
                offset,
                bytes,
            } => write!(
                f,
                "truncate the torn tail of segment {segment} ({}) at offset {offset}: {bytes} bytes never acknowledged (non-zero ones copied to quarantine/)",
                path.display()
            ),
            Self::RemoveTornSegment {
                segment,
                path,
                bytes,
            } => write!(
                f,
                "remove segment {segment} ({}, {bytes} bytes): its header never became durable and it holds no record (non-zero bytes copied to quarantine/)",
                path.display()
            ),
            Self::RebuildCheckpoint => write!(
                f,
                "open the channel once (strict, full replay) so the engine writes a fresh checkpoint, then close it"
            ),
        }
    }
}

/// A problem as JSON.
pub fn problem_json(p: &Problem) -> Json {
    Json::obj()
        .with("file", p.file.as_path())
        .with("segment", p.segment)
        .with("offset", p.offset)
        .with("bytes", p.bytes)
        .with("kind", p.kind.code())
        .with("detail", p.kind.to_string())
        .with("events_lost", p.events_lost)
        .with("first_lost_seq", p.first_lost_seq)
}

pub(super) fn report_json(o: &RepairOutcome, dir: &Path, strict: bool, started_ms: u64) -> Json {
    let lost_ranges: Vec<Json> = o
        .applied
        .iter()
        .filter_map(|a| match &a.action {
            Action::FillWithGap {
                first_seq, events, ..
            }
            | Action::CreateTombstone {
                first_seq, events, ..
            } if *events > 0 => Some(Json::Arr(vec![
                (*first_seq).into(),
                (first_seq + events).into(),
            ])),
            _ => None,
        })
        .collect();
    let actions: Vec<Json> = o
        .applied
        .iter()
        .map(|a| {
            a.action.to_json().with(
                "quarantined",
                Json::Arr(a.quarantined.iter().map(|p| p.as_path().into()).collect()),
            )
        })
        .collect();
    let before = &o.plan.before;
    Json::obj()
        .with("tool", "chanctl repair")
        .with("dir", dir)
        .with("strict", strict)
        .with("started_unix_ms", started_ms)
        .with("finished_unix_ms", now_unix_ms())
        .with("rounds", o.rounds as u64)
        .with(
            "found",
            Json::obj()
                .with(
                    "corrupt",
                    Json::Arr(before.problems.iter().map(problem_json).collect()),
                )
                .with(
                    "torn_tail",
                    before.torn_tail.as_ref().map(|t| {
                        Json::obj()
                            .with("segment", t.segment)
                            .with("offset", t.offset)
                            .with("bytes", t.bytes)
                    }),
                )
                .with(
                    "checkpoints",
                    Json::Arr(
                        before
                            .checkpoints
                            .iter()
                            .map(|c| {
                                Json::obj()
                                    .with("file", c.path.as_path())
                                    .with("status", c.status.code())
                                    .with("detail", c.status.to_string())
                            })
                            .collect(),
                    ),
                ),
        )
        .with("actions", Json::Arr(actions))
        .with("events_lost", o.events_lost())
        .with("lost_seq_ranges", Json::Arr(lost_ranges))
        .with("bytes_lost", o.bytes_lost())
        .with("torn_tail_bytes", o.torn_bytes())
        .with(
            "unrepaired",
            Json::Arr(
                o.unrepairable
                    .iter()
                    .map(|u| problem_json(&u.problem).with("reason", u.reason.as_str()))
                    .collect(),
            ),
        )
        .with(
            "reopen",
            match (&o.reopened, &o.reopen_error) {
                (Some(r), _) => Json::obj()
                    .with("ok", true)
                    .with("pending_events", r.pending_events)
                    .with("records", r.records)
                    .with(
                        "created_segments",
                        Json::Arr(
                            r.created_segments
                                .iter()
                                .map(|p| p.as_path().into())
                                .collect(),
                        ),
                    )
                    .with(
                        "deleted_segments",
                        Json::Arr(
                            r.deleted_segments
                                .iter()
                                .map(|p| p.as_path().into())
                                .collect(),
                        ),
                    ),
                (None, Some(e)) => Json::obj().with("ok", false).with("error", e.as_str()),
                (None, None) => Json::Null,
            },
        )
        .with(
            "verify_after",
            o.after.as_ref().map(|a| {
                Json::obj().with("clean", !a.is_corrupt()).with(
                    "corrupt",
                    Json::Arr(a.problems.iter().map(problem_json).collect()),
                )
            }),
        )
}
