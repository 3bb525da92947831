//! The delivery ledger (`delivered` in the state directory): which of the channel's events the
//! sink has written, so that an event the channel delivers again is recognised and counted
//! as a duplicate (`EventDuplicateCount`).
//!
//! # Why the sink has to count them
//!
//! A file channel acknowledges a take commit before its record is fsynced (it is made durable
//! with the next put commit or within `take_sync_interval_ms`). A crash in between loses the
//! record, and the channel delivers those events again, although the sink had already written
//! them into a durable file. The channel cannot tell: it does not know that it had delivered
//! them. The sink can, because the channel numbers its events
//! ([`crate::channel::DeliveryNumbers`]) and a redelivered event keeps its number.
//!
//! # What is recorded, and when
//!
//! One line per batch and file: the file's id, the file's length once the batch is in it, the
//! time, and the sequence numbers of the batch's events in that file (as ranges). The line is
//! appended (without fsync) *before* the batch's bytes are written, so that at any instant of
//! a killed process every batch in a file has its line. A line may then claim a batch the file
//! does not hold: the process died between the two writes, or the batch failed and was cut
//! back. So when a file is cut — after a failed batch, or by recovery — the lines of that file
//! that end beyond the cut are forgotten ([`Ledger::forget_beyond`]). A file that was finished
//! holds every batch written to it. After a killed process (`kill -9`, the OOM killer) the
//! count is exact. After a power cut, lines the kernel had not yet written back are lost with
//! the page cache, and the duplicates of those batches go uncounted.
//!
//! # How much is remembered
//!
//! A redelivery comes from a take commit that was not yet durable, so only recent batches can
//! come again: the ledger keeps the lines of the last [`KEEP_MS`] (or of the channel's
//! `take_sync_interval_ms`, if longer, twice over), and at least the last [`KEEP_MIN_LINES`].
//! Older lines are dropped in bulk, and the file is rewritten with the lines kept (a new file
//! renamed over the old one) once it holds twice as many as are kept.

use rangemap::RangeSet;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Lines younger than this are kept.
pub const KEEP_MS: u64 = 10_000;
/// At least this many of the newest lines are kept, whatever their age.
pub const KEEP_MIN_LINES: usize = 256;
const HEADER: &str = "sluice-hdfs-delivered 1";

/// One batch's share in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Line {
    file_id: u64,
    end_len: u64,
    at_ms: i64,
    seqs: Vec<Range<u64>>,
}

impl Line {
    fn render(&self) -> String {
        let ranges: Vec<String> = self
            .seqs
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end))
            .collect();
        format!(
            "{} {} {} {}\n",
            self.file_id,
            self.end_len,
            self.at_ms,
            ranges.join(",")
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let file_id = parts.next()?.parse().ok()?;
        let end_len = parts.next()?.parse().ok()?;
        let at_ms = parts.next()?.parse().ok()?;
        let seqs = parts
            .next()?
            .split(',')
            .map(|r| {
                let (a, b) = r.split_once('-')?;
                let (a, b) = (a.parse().ok()?, b.parse().ok()?);
                (a < b).then_some(a..b)
            })
            .collect::<Option<Vec<_>>>()?;
        if parts.next().is_some() || seqs.is_empty() {
            return None;
        }
        Some(Self {
            file_id,
            end_len,
            at_ms,
            seqs,
        })
    }
}

/// Sorted, merged ranges of `seqs`.
fn ranges_of(seqs: &[u64]) -> Vec<Range<u64>> {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<Range<u64>> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some(r) if r.end == s => r.end = s + 1,
            _ => out.push(s..s + 1),
        }
    }
    out
}

/// What [`Ledger::load`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Lines read.
    pub lines: usize,
    /// Lines that did not parse (a torn last line after a crash; anything else is reported).
    pub unreadable: usize,
}

/// The ledger of one sink.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// The channel the numbers are from; `None` until a numbered batch (or a loaded file) says.
    channel_id: Option<u64>,
    lines: VecDeque<Line>,
    /// The union of every kept line's numbers.
    known: RangeSet<u64>,
    keep_ms: u64,
    /// Open for appending; `None` until the file is first (re)written by this run.
    out: Option<File>,
    /// Lines in the file (kept and dropped).
    lines_in_file: usize,
    /// The file must be rewritten before the next line is appended (compaction is due).
    stale: bool,
}

impl Ledger {
    /// Reads the ledger at `path` (none there is an empty ledger). `take_sync_interval_ms` is
    /// the channel's, if it has one: lines are kept at least twice that long.
    pub fn load(path: &Path, take_sync_interval_ms: Option<u64>) -> io::Result<(Self, Loaded)> {
        let keep_ms = KEEP_MS.max(take_sync_interval_ms.unwrap_or(0).saturating_mul(2));
        let mut ledger = Self {
            path: path.to_owned(),
            channel_id: None,
            lines: VecDeque::new(),
            known: RangeSet::new(),
            keep_ms,
            out: None,
            lines_in_file: 0,
            stale: false,
        };
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((ledger, Loaded::default()))
            }
            Err(e) => return Err(e),
        };
        let mut loaded = Loaded::default();
        let mut rows = text.split_terminator('\n');
        let channel = rows
            .next()
            .and_then(|h| h.strip_prefix(HEADER))
            .and_then(|rest| rest.trim().parse::<u64>().ok());
        let Some(channel) = channel else {
            // Not ours, or torn before its first line: nothing to recognise.
            loaded.unreadable = usize::from(!text.is_empty());
            return Ok((ledger, loaded));
        };
        ledger.channel_id = Some(channel);
        for row in rows {
            loaded.lines += 1;
            match Line::parse(row) {
                Some(line) => ledger.push(line),
                None => loaded.unreadable += 1,
            }
        }
        // A torn last line (a power cut; a killed process does not tear one small write) has
        // no newline: it fails to parse, or parses as a smaller claim (the numbers come last),
        // which the cut of its file removes if the batch is not whole. The first write of this
        // run rewrites the file, so nothing is appended to a torn line.
        ledger.lines_in_file = loaded.lines + 1;
        Ok((ledger, loaded))
    }

    /// Whether the ledger holds numbers from an earlier run or this one: duplicates are then
    /// counted by recognising them, not estimated.
    pub fn is_active(&self) -> bool {
        self.channel_id.is_some()
    }

    /// How many of `seqs` (numbers from channel `channel_id`) the sink already wrote.
    pub fn duplicates(&self, channel_id: u64, seqs: &[u64]) -> u64 {
        if self.channel_id != Some(channel_id) {
            return 0;
        }
        seqs.iter().filter(|s| self.known.contains(s)).count() as u64
    }

    /// Records, before the batch is written, that file `file_id` will hold `seqs` once it is
    /// `end_len` bytes long.
    pub fn record(
        &mut self,
        channel_id: u64,
        file_id: u64,
        end_len: u64,
        seqs: &[u64],
        now_ms: i64,
    ) -> io::Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        if self.channel_id != Some(channel_id) {
            // Another channel (or the first numbered batch): its numbers say nothing of ours.
            self.channel_id = Some(channel_id);
            self.lines.clear();
            self.known = RangeSet::new();
            self.stale = true;
        }
        let line = Line {
            file_id,
            end_len,
            at_ms: now_ms,
            seqs: ranges_of(seqs),
        };
        let text = line.render();
        self.push(line);
        self.prune(now_ms);
        match self.out.as_mut() {
            Some(f) if !self.stale => {
                f.write_all(text.as_bytes())?;
                self.lines_in_file += 1;
                Ok(())
            }
            _ => self.rewrite(),
        }
    }

    /// Forgets what file `file_id` was to hold beyond `len` bytes (it was cut there).
    pub fn forget_beyond(&mut self, file_id: u64, len: u64) -> io::Result<()> {
        let before = self.lines.len();
        self.lines
            .retain(|l| !(l.file_id == file_id && l.end_len > len));
        if self.lines.len() != before {
            self.rebuild_known();
            self.rewrite()?;
        }
        Ok(())
    }

    fn push(&mut self, line: Line) {
        for r in &line.seqs {
            self.known.insert(r.clone());
        }
        self.lines.push_back(line);
    }

    fn rebuild_known(&mut self) {
        self.known = RangeSet::new();
        for l in &self.lines {
            for r in &l.seqs {
                self.known.insert(r.clone());
            }
        }
    }

    /// Drops old lines in bulk (when there are twice the minimum), and marks the file for a
    /// rewrite when it holds twice what is kept.
    fn prune(&mut self, now_ms: i64) {
        if self.lines.len() < 2 * KEEP_MIN_LINES {
            return;
        }
        let old = |l: &Line| now_ms.saturating_sub(l.at_ms) > self.keep_ms as i64;
        let droppable = self
            .lines
            .iter()
            .take(self.lines.len() - KEEP_MIN_LINES)
            .take_while(|l| old(l))
            .count();
        if droppable < KEEP_MIN_LINES {
            return;
        }
        self.lines.drain(..droppable);
        self.rebuild_known();
        if self.lines_in_file > 2 * self.lines.len() {
            self.stale = true;
        }
    }

    /// Writes the kept lines to a new file and renames it over the ledger (no fsync: the
    /// ledger serves after a killed process, whose writes the page cache keeps).
    fn rewrite(&mut self) -> io::Result<()> {
        let Some(channel) = self.channel_id else {
            return Ok(());
        };
        let tmp = self.path.with_extension("new");
        let mut text = format!("{HEADER} {channel}\n");
        for l in &self.lines {
            text.push_str(&l.render());
        }
        std::fs::write(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &self.path)?;
        self.out = Some(OpenOptions::new().append(true).open(&self.path)?);
        self.lines_in_file = self.lines.len() + 1;
        self.stale = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_sorted_and_merged() {
        assert_eq!(ranges_of(&[5, 3, 4, 9, 10, 4]), [3..6, 9..11]);
        assert_eq!(ranges_of(&[]), Vec::<Range<u64>>::new());
    }

    #[test]
    fn recognises_what_it_recorded_across_a_reload_and_forgets_what_a_cut_removed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("delivered");
        let (mut l, loaded) = Ledger::load(&path, None).expect("load");
        assert_eq!(loaded, Loaded::default());
        assert!(!l.is_active());
        l.record(7, 1, 100, &[10, 11, 12], 1_000).expect("record");
        l.record(7, 2, 50, &[13, 20], 1_001).expect("record");
        l.record(7, 1, 180, &[14, 15], 1_002).expect("record");
        assert_eq!(l.duplicates(7, &[11, 12, 13, 14, 16, 20]), 5);
        assert_eq!(l.duplicates(8, &[11]), 0, "another channel's numbers");
        drop(l);

        // A killed process's torn last line is ignored.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"1 260 1003 16-1").expect("write");
        let (mut l, loaded) = Ledger::load(&path, Some(100)).expect("load");
        assert!(l.is_active());
        assert_eq!(loaded.lines, 4);
        assert_eq!(loaded.unreadable, 1, "16-1 is not a range");
        assert_eq!(l.duplicates(7, &[10, 13, 14, 15, 20]), 5);

        // Recovery cut file 1 back to 150 bytes: the batch ending at 180 (and the torn one)
        // is not in it.
        l.forget_beyond(1, 150).expect("forget");
        assert_eq!(l.duplicates(7, &[10, 11, 12, 14, 15, 16]), 3);
        drop(l);
        let (l, _) = Ledger::load(&path, None).expect("load");
        assert_eq!(
            l.duplicates(7, &[10, 11, 12, 13, 14, 15, 16, 20]),
            5,
            "the forgetting was written"
        );
    }

    #[test]
    fn another_channel_starts_a_new_ledger() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("delivered");
        let (mut l, _) = Ledger::load(&path, None).expect("load");
        l.record(7, 1, 10, &[1, 2], 0).expect("record");
        l.record(9, 1, 20, &[3], 0).expect("record");
        assert_eq!(l.duplicates(7, &[1, 2]), 0);
        assert_eq!(l.duplicates(9, &[1, 2, 3]), 1);
        let (l, _) = Ledger::load(&path, None).expect("load");
        assert_eq!(l.duplicates(9, &[1, 2, 3]), 1);
    }

    #[test]
    fn old_lines_are_dropped_in_bulk_but_the_newest_are_kept_and_the_file_shrinks() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("delivered");
        let (mut l, _) = Ledger::load(&path, None).expect("load");
        let n = 4 * KEEP_MIN_LINES as u64;
        for i in 0..n {
            // One batch a millisecond, then a pause longer than KEEP_MS.
            l.record(1, 1, i + 1, &[i], i as i64).expect("record");
        }
        let later = n as i64 + KEEP_MS as i64 + 1;
        l.record(1, 1, n + 1, &[n], later).expect("record");
        assert_eq!(l.duplicates(1, &[n]), 1);
        let kept = l.duplicates(1, &(0..n).collect::<Vec<_>>());
        assert_eq!(
            kept,
            KEEP_MIN_LINES as u64 - 1,
            "only the newest lines survive a long pause"
        );
        let rows = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .count();
        assert!(
            rows <= 2 * KEEP_MIN_LINES + 2,
            "the file was rewritten: {rows} lines"
        );
        let (l, _) = Ledger::load(&path, None).expect("load");
        assert_eq!(l.duplicates(1, &(0..=n).collect::<Vec<_>>()), kept + 1);
    }
}
