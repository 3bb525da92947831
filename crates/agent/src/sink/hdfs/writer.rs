//! One in-use file being written: appends whole encoded batches, makes them durable with
//! `fdatasync`, and can cut a batch back off when the delivery it belongs to failed, so a
//! retried batch is not written twice.

use super::format::FileEncoder;
use super::recovery::Target;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Instant;

/// What an open file held before the current batch, to go back to if the batch fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Mark {
    /// Bytes.
    pub len: u64,
    /// Events.
    pub events: u64,
    /// Bytes of event bodies (Flume's measure for `rollSize`).
    pub body_bytes: u64,
}

/// An in-use file.
pub struct OpenFile {
    /// Its record's id (see [`super::recovery`]).
    pub id: u64,
    /// The bucket it belongs to.
    pub bucket: String,
    /// Where the bytes are written.
    pub path: PathBuf,
    /// Where it goes when finished.
    pub target: Target,
    file: File,
    encoder: Box<dyn FileEncoder>,
    /// Bytes, events and body bytes written so far (durable once synced).
    pub written: Mark,
    /// Events whose take committed.
    pub committed_events: u64,
    /// When it was opened (for `rollInterval`).
    pub opened_at: Instant,
    /// When it was last written (for `idleTimeout`, and least recently used first for
    /// `maxOpenFiles`).
    pub last_write: Instant,
    /// A failed write could not be cut back: the tail is unknown, so the file is finished by
    /// recovery (cut after its last whole batch) instead of by appending its end.
    pub broken: bool,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl OpenFile {
    /// Wraps a freshly created, empty file and writes the encoder's header (not yet synced).
    pub fn start(
        id: u64,
        bucket: String,
        path: PathBuf,
        target: Target,
        mut file: File,
        mut encoder: Box<dyn FileEncoder>,
    ) -> io::Result<Self> {
        let mut header = Vec::new();
        encoder
            .begin(&mut header)
            .map_err(|e| io::Error::other(e.to_string()))?;
        file.write_all(&header)?;
        let now = Instant::now();
        Ok(Self {
            id,
            bucket,
            path,
            target,
            file,
            encoder,
            written: Mark {
                len: header.len() as u64,
                ..Mark::default()
            },
            committed_events: 0,
            opened_at: now,
            last_write: now,
            broken: false,
        })
    }

    /// Encodes `events` as one batch and appends it (not yet synced); the bytes appended.
    pub fn append(
        &mut self,
        events: &[file_channel::Event],
        now_ms: i64,
        buf: &mut Vec<u8>,
    ) -> io::Result<u64> {
        self.append_with(events, now_ms, buf, |_| Ok(()))
    }

    /// Like [`OpenFile::append`], calling `before_write` with the file's length once the batch
    /// is in it, after encoding and before writing (the delivery ledger's line goes first).
    pub fn append_with(
        &mut self,
        events: &[file_channel::Event],
        now_ms: i64,
        buf: &mut Vec<u8>,
        before_write: impl FnOnce(u64) -> io::Result<()>,
    ) -> io::Result<u64> {
        buf.clear();
        self.encoder
            .encode_batch(events, now_ms, buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        before_write(self.written.len + buf.len() as u64)?;
        self.file.write_all(buf)?;
        self.written.len += buf.len() as u64;
        self.written.events += events.len() as u64;
        self.written.body_bytes += events.iter().map(|e| e.body.len() as u64).sum::<u64>();
        self.last_write = Instant::now();
        Ok(buf.len() as u64)
    }

    /// `fdatasync`: everything appended is durable.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Goes back to `mark` (the batch failed): cuts the file to its length and syncs. On
    /// failure the file is marked broken.
    pub fn cut_back(&mut self, mark: Mark) -> io::Result<()> {
        let r = self
            .file
            .set_len(mark.len)
            .and_then(|()| self.file.sync_data());
        // Appends go to the end of the file (the cursor is moved back with it).
        let r = r.and_then(|()| {
            use std::io::Seek;
            self.file.seek(io::SeekFrom::Start(mark.len)).map(|_| ())
        });
        match r {
            Ok(()) => self.written = mark,
            Err(_) => self.broken = true,
        }
        r
    }

    /// Appends the encoder's end of file and syncs everything (a clean close).
    pub fn finish_bytes(&mut self) -> io::Result<()> {
        let mut tail = Vec::new();
        self.encoder
            .end(&mut tail)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if !tail.is_empty() {
            self.file.write_all(&tail)?;
            self.written.len += tail.len() as u64;
        }
        self.file.sync_all()
    }

    /// Whether `rollCount` or `rollSize` is reached (checked before each event, as Flume does).
    pub fn full(&self, roll_count: u64, roll_size_bytes: u64) -> bool {
        (roll_count > 0 && self.written.events >= roll_count)
            || (roll_size_bytes > 0 && self.written.body_bytes >= roll_size_bytes)
    }

    /// How many of `events` fit before the file is full (at least the number that would keep
    /// it under both limits, Flume's per-event check).
    pub fn room(
        &self,
        events: &[file_channel::Event],
        roll_count: u64,
        roll_size_bytes: u64,
    ) -> usize {
        let mut bytes = self.written.body_bytes;
        for (n, (i, e)) in (self.written.events..).zip(events.iter().enumerate()) {
            if (roll_count > 0 && n >= roll_count)
                || (roll_size_bytes > 0 && bytes >= roll_size_bytes)
            {
                return i;
            }
            bytes += e.body.len() as u64;
        }
        events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::hdfs::format::FormatConfig;
    use file_channel::Event;

    #[test]
    fn appends_counts_and_cuts_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("f.tmp");
        let file = File::create(&p).expect("create");
        let mut f = OpenFile::start(
            1,
            "b".into(),
            p.clone(),
            Target::Local(tmp.path().join("f")),
            file,
            FormatConfig {
                file_type: crate::sink::hdfs::format::FileType::DataStream,
                ..FormatConfig::default()
            }
            .encoder(),
        )
        .expect("start");
        let mut buf = Vec::new();
        let evs = [Event::new("ab"), Event::new("cde")];
        assert_eq!(f.room(&evs, 3, 0), 2);
        f.append(&evs, 0, &mut buf).expect("append");
        f.sync().expect("sync");
        let mark = f.written;
        assert_eq!(mark.events, 2);
        assert_eq!(mark.body_bytes, 5);
        assert_eq!(f.room(&evs, 3, 0), 1, "one more event fits rollCount 3");
        assert_eq!(f.room(&evs, 0, 5), 0, "rollSize 5 reached");
        assert!(f.full(0, 5) && !f.full(3, 0));
        f.append(&[Event::new("lost")], 0, &mut buf)
            .expect("append");
        f.cut_back(mark).expect("cut");
        f.append(&[Event::new("z")], 0, &mut buf).expect("append");
        f.finish_bytes().expect("finish");
        assert_eq!(std::fs::read(&p).expect("read"), b"ab\ncde\nz\n");
    }
}
