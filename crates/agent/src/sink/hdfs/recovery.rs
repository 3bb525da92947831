//! The sink's state directory (`hdfs.stagingDir`) and crash recovery.
//!
//! Layout:
//! - `lock`: an exclusive `flock` held while the sink runs, so two sinks (or two agents)
//!   never share a state directory.
//! - `open/<id>.json`: one record per in-use file, written whole (temporary file, fsync,
//!   rename, directory fsync) *before* the file is created, and removed (directory fsynced)
//!   only after the file is finished. Names the file the bytes are in (the in-use file in the
//!   target directory, or `staged/<id>`) and where it goes (its final path, or its object
//!   key: the "sidecar" of a staged file).
//! - `open/<id>.committed`: a hint, the events of that file whose take committed, rewritten
//!   after every commit without fsync (it survives a killed process, not always a power cut;
//!   a stale hint only makes the duplicate count larger, never loses an event).
//! - `staged/<id>`: the bytes of a file bound for object storage, until it is published.
//! - `delivered`: the delivery ledger (`super::ledger`): which channel events the sink wrote,
//!   to count those the channel delivers again. With it, the hint above is not written.
//!
//! Recovery at start ([`StateDir::records`] and [`complete_file`]): every record names a file
//! that was in use when the agent stopped. Its torn tail — the bytes after the last whole
//! batch — is cut ([`super::format::complete_prefix`]), and the file is then finished like any
//! other (renamed or published), so no in-use file is left behind.
//!
//! # What a torn tail is, and why cutting it is right
//!
//! A batch is appended with one `write` and then `fdatasync`ed; the take commits only after
//! the `fdatasync` returned. A kill -9 between the two leaves the whole batch in the page
//! cache, so the file holds it whole. A power cut or kernel crash before the `fdatasync`
//! completed can leave any part of it: on ext4 with the default `data=ordered`, the size is
//! only journalled after the data blocks it covers are written, so the file ends somewhere
//! inside the batch (often at a 4 KiB block boundary, mid-record); with `data=writeback` (or
//! on XFS) the size may run ahead of the data and the tail read back as zeros. What cannot
//! happen is damage to bytes before the last length that was `fdatasync`ed. So the file is:
//! every acknowledged batch, intact, then possibly whole unacknowledged batches, then possibly
//! a partial batch, zeros or garbage. The longest prefix made of whole self-contained batches
//! keeps every acknowledged event and cuts only bytes no take was committed for: those events
//! are still in the channel and are delivered again. Whole batches past the committed ones
//! are kept (they are valid); the channel delivers them again, and the ledger counts them
//! as duplicates when it does (without a ledger, the hint tells how many events were
//! committed, and the rest are counted here).

use super::dest::local::{create_dirs, remove_durably, sync_dir, write_atomically};
use super::format::{complete_prefix, FormatConfig, Recovered};
use fs2::FileExt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Where a finished file goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A local file: renamed to this path.
    Local(PathBuf),
    /// An object: published under this key.
    Object(String),
}

/// One in-use file, as its record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Unique within the state directory.
    pub id: u64,
    /// Where its bytes are (the in-use file, or the staged file).
    pub file: PathBuf,
    /// Where it goes.
    pub target: Target,
}

impl Record {
    fn to_json(&self) -> String {
        let (kind, to) = match &self.target {
            Target::Local(p) => ("local", p.to_string_lossy().into_owned()),
            Target::Object(k) => ("object", k.clone()),
        };
        serde_json::json!({
            "id": self.id,
            "file": self.file.to_string_lossy(),
            "kind": kind,
            "to": to,
        })
        .to_string()
    }

    fn from_json(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let to = v.get("to")?.as_str()?.to_owned();
        let target = match v.get("kind")?.as_str()? {
            "local" => Target::Local(PathBuf::from(to)),
            "object" => Target::Object(to),
            _ => return None,
        };
        Some(Self {
            id: v.get("id")?.as_u64()?,
            file: PathBuf::from(v.get("file")?.as_str()?),
            target,
        })
    }
}

/// The sink's state directory, locked.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Creates (durably) and locks `root`. Fails if another sink holds it.
    pub fn open(root: &Path) -> io::Result<Self> {
        create_dirs(&root.join("open"))?;
        create_dirs(&root.join("staged"))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))?;
        lock.try_lock_exclusive().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is locked by another sink or agent (each sink needs its own hdfs.stagingDir)",
                    root.display()
                ),
            )
        })?;
        Ok(Self {
            root: root.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn record_path(&self, id: u64) -> PathBuf {
        self.root.join("open").join(format!("{id}.json"))
    }

    fn hint_path(&self, id: u64) -> PathBuf {
        self.root.join("open").join(format!("{id}.committed"))
    }

    /// The delivery ledger (`ledger.rs`).
    pub fn ledger_path(&self) -> PathBuf {
        self.root.join("delivered")
    }

    /// Where the staged bytes of file `id` go.
    pub fn staged_path(&self, id: u64) -> PathBuf {
        self.root.join("staged").join(id.to_string())
    }

    /// Writes `record` durably (before its file is created).
    pub fn write_record(&self, record: &Record) -> io::Result<()> {
        write_atomically(&self.record_path(record.id), record.to_json().as_bytes())
    }

    /// Removes the record of file `id` and its hint (after the file is finished).
    pub fn remove_record(&self, id: u64) -> io::Result<()> {
        let _ = std::fs::remove_file(self.hint_path(id));
        remove_durably(&self.record_path(id))
    }

    /// Records, without fsync, that `committed` events of file `id` are committed. Rewritten
    /// in place at a fixed width, never truncated: ext4 flushes a file's data when it is closed
    /// after a truncate (`auto_da_alloc`), which on every commit cost as much as the batch's
    /// own fdatasync.
    pub fn write_hint(&self, id: u64, committed: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.hint_path(id))?;
        f.write_all_at(format!("{committed:020}\n").as_bytes(), 0)
    }

    /// The committed-events hint of file `id`, if one was written.
    pub fn read_hint(&self, id: u64) -> Option<u64> {
        std::fs::read_to_string(self.hint_path(id))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Every record left by an earlier run, by id, and the ids of unreadable ones (moved aside
    /// to `open/<name>.bad` so they are reported once and never block a start).
    pub fn records(&self) -> io::Result<(Vec<Record>, Vec<PathBuf>)> {
        let mut records = Vec::new();
        let mut bad = Vec::new();
        for entry in std::fs::read_dir(self.root.join("open"))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let mut text = String::new();
            File::open(&path)?.read_to_string(&mut text)?;
            match Record::from_json(&text) {
                Some(r) => records.push(r),
                None => {
                    let aside = path.with_extension("bad");
                    std::fs::rename(&path, &aside)?;
                    sync_dir(&self.root.join("open"))?;
                    bad.push(aside);
                }
            }
        }
        records.sort_by_key(|r| r.id);
        Ok((records, bad))
    }

    /// The highest id in use (records and staged files), for numbering new files after it.
    pub fn highest_id(&self) -> u64 {
        let ids = |dir: &str, strip: bool| -> u64 {
            std::fs::read_dir(self.root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let stem = if strip {
                        name.split('.').next().unwrap_or_default().to_owned()
                    } else {
                        name
                    };
                    stem.parse::<u64>().ok()
                })
                .max()
                .unwrap_or(0)
        };
        ids("open", true).max(ids("staged", false))
    }
}

/// Cuts file `path`, written with `format`, after its last whole batch and fsyncs it; the
/// kept prefix, and how many bytes were cut. A missing file is `NotFound`.
pub fn complete_file(path: &Path, format: &FormatConfig) -> io::Result<(Recovered, u64)> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let kept = complete_prefix(format, &bytes);
    let cut = (bytes.len() as u64).saturating_sub(kept.len);
    if cut > 0 {
        file.set_len(kept.len)?;
    }
    file.sync_all()?;
    Ok((kept, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_set_aside() {
        let tmp = tempfile::tempdir().expect("tmp");
        let st = StateDir::open(tmp.path()).expect("open");
        assert!(
            StateDir::open(tmp.path()).is_err(),
            "a second sink is refused"
        );
        let a = Record {
            id: 7,
            file: PathBuf::from("/d/x.tmp"),
            target: Target::Local(PathBuf::from("/d/x")),
        };
        let b = Record {
            id: 9,
            file: st.staged_path(9),
            target: Target::Object("p/x.1".into()),
        };
        st.write_record(&b).expect("write");
        st.write_record(&a).expect("write");
        std::fs::write(tmp.path().join("open/3.json"), "{torn").expect("write");
        let (records, bad) = st.records().expect("records");
        assert_eq!(records, [a, b]);
        assert_eq!(bad, [tmp.path().join("open/3.bad")]);
        assert_eq!(st.read_hint(7), None);
        st.write_hint(7, 42).expect("hint");
        assert_eq!(st.read_hint(7), Some(42));
        assert_eq!(st.highest_id(), 9);
        st.remove_record(7).expect("rm");
        assert_eq!(st.read_hint(7), None);
        assert_eq!(st.records().expect("records").0.len(), 1);
    }

    #[test]
    fn complete_file_cuts_a_torn_batch() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("f");
        std::fs::write(&p, "a\nb\nhalf a li").expect("write");
        let (kept, cut) = complete_file(
            &p,
            &FormatConfig {
                file_type: crate::sink::hdfs::format::FileType::DataStream,
                ..FormatConfig::default()
            },
        )
        .expect("complete");
        assert_eq!((kept.len, kept.events, cut), (4, 2, 9));
        assert_eq!(std::fs::read(&p).expect("read"), b"a\nb\n");
    }
}
