//! The migration guard: a channel or data directory that holds Apache Flume FileChannel files is
//! refused before anything in it is created or changed.
//!
//! Sluice cannot read Flume's file-channel format. Without this guard a Flume deployment moved
//! to Sluice with the same `checkpointDir` and `dataDirs` would start an empty channel beside
//! Flume's pending events, and those events would never be delivered. The names looked for are
//! Flume 1.x's: in a data directory `log-N` and `log-N.meta` (N decimal, no suffix: Sluice's
//! segments are `log-<20 digits>.seg`); in the checkpoint directory and the backup checkpoint
//! directory `checkpoint`, `checkpoint.meta`, `inflighttakes`, `inflightputs`, `queueset` (a
//! directory) and `backupComplete`. Flume's `in_use.lock` is not one of them: Sluice's lock file
//! has the same name and says nothing about pending events.
//!
//! Looking is read-only: names are listed, nothing is opened.

use crate::storage::{EntryKind, Storage};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Files of Flume's checkpoint directory (and of its backup checkpoint directory).
const CHECKPOINT_FILE_NAMES: &[&str] = &[
    "checkpoint",
    "checkpoint.meta",
    "inflighttakes",
    "inflightputs",
    "backupComplete",
];

/// The directory Flume's event queue keeps its set of queued pointers in.
const QUEUE_SET_DIR_NAME: &str = "queueset";

/// At most this many names are quoted in the message (the count says how many there are).
const NAMES_SHOWN_MAX: usize = 4;

/// Flume FileChannel files found in one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlumeFilesFound {
    /// The directory.
    pub dir: PathBuf,
    /// The Flume file names found there, sorted.
    pub names: Vec<String>,
}

impl fmt::Display for FlumeFilesFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<&str> = self
            .names
            .iter()
            .take(NAMES_SHOWN_MAX)
            .map(String::as_str)
            .collect();
        let more = self.names.len().saturating_sub(NAMES_SHOWN_MAX);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        write!(
            f,
            "{} holds Apache Flume FileChannel files ({}{more}); Sluice cannot read Flume's \
             file-channel format and will not start an empty channel beside Flume's pending \
             events. Drain them first: run the old Flume agent with the same checkpointDir and \
             dataDirs until the channel is empty (its ChannelSize metric is 0), stop it, then \
             move Flume's files out of the directory; or point Sluice at a new directory. \
             Nothing in the directory was changed",
            self.dir.display(),
            shown.join(", "),
        )
    }
}

/// Whether `name` is one of Flume's data files: `log-N` or `log-N.meta`.
fn is_flume_data_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("log-") else {
        return false;
    };
    let digits = rest.strip_suffix(".meta").unwrap_or(rest);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `name` is a file Flume's file channel writes.
pub fn is_flume_file_name(name: &str) -> bool {
    CHECKPOINT_FILE_NAMES.contains(&name) || is_flume_data_file(name)
}

/// The Flume files in `dir`, if it exists; `None` when there are none.
pub fn find_in(storage: &dyn Storage, dir: &Path) -> io::Result<Option<FlumeFilesFound>> {
    if storage.entry_kind(dir)? != EntryKind::Directory {
        return Ok(None);
    }
    let mut names: Vec<String> = storage
        .list(dir)?
        .into_iter()
        .filter(|n| is_flume_file_name(n))
        .collect();
    if storage.entry_kind(&dir.join(QUEUE_SET_DIR_NAME))? != EntryKind::Missing {
        names.push(QUEUE_SET_DIR_NAME.to_owned());
    }
    names.sort();
    Ok((!names.is_empty()).then(|| FlumeFilesFound {
        dir: dir.to_path_buf(),
        names,
    }))
}

/// The first of `dirs` that holds Flume files, with them; `Err` names the directory that
/// could not be listed.
pub fn find_in_any<'a>(
    storage: &dyn Storage,
    dirs: impl IntoIterator<Item = &'a Path>,
) -> Result<Option<FlumeFilesFound>, (PathBuf, io::Error)> {
    for d in dirs {
        if let Some(found) = find_in(storage, d).map_err(|e| (d.to_path_buf(), e))? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flume_names_and_not_sluice_names() {
        for n in [
            "log-1",
            "log-12",
            "log-3.meta",
            "checkpoint",
            "checkpoint.meta",
            "inflighttakes",
            "inflightputs",
            "backupComplete",
        ] {
            assert!(is_flume_file_name(n), "{n}");
        }
        for n in [
            "log-00000000000000000001.seg",
            "log-",
            "log-.meta",
            "log-1.tmp",
            "checkpoint.tmp",
            "checkpoint-00000000000000000003.ckpt",
            "channel.meta",
            "in_use.lock",
        ] {
            assert!(!is_flume_file_name(n), "{n}");
        }
    }

    #[test]
    fn the_message_names_a_few_files_and_says_how_to_drain() {
        let found = FlumeFilesFound {
            dir: PathBuf::from("/var/flume/data"),
            names: [
                "log-1",
                "log-1.meta",
                "log-2",
                "log-2.meta",
                "log-3",
                "log-3.meta",
            ]
            .map(str::to_owned)
            .to_vec(),
        };
        let m = found.to_string();
        assert!(m.starts_with("/var/flume/data holds Apache Flume FileChannel files (log-1, log-1.meta, log-2, log-2.meta and 2 more); Sluice cannot read Flume's file-channel format"), "{m}");
        assert!(m.contains("ChannelSize metric is 0"), "{m}");
        assert!(m.contains("point Sluice at a new directory"), "{m}");
    }
}
