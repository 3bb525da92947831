//! Buckets: which file an event goes to. As in Flume's `HDFSEventSink`, an event's bucket is
//! its expanded `hdfs.path` plus its expanded `hdfs.filePrefix`; each bucket has at most one
//! open file. File names are Flume's `BucketWriter`'s: `<filePrefix>.<counter>` followed by
//! `hdfs.fileSuffix` if set, else by the codec's extension; the in-use name wraps that in
//! `hdfs.inUsePrefix` and `hdfs.inUseSuffix`.

use super::config::HdfsConfig;
use super::dest::DestinationUri;
use file_channel::Event;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// An event's bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// The expanded path after the scheme (a local directory, or an object key prefix),
    /// without a trailing '/'.
    pub dir: String,
    /// The expanded file prefix.
    pub name: String,
}

impl Bucket {
    /// Flume's bucket key: path and prefix.
    pub fn key(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }
}

/// Where a new file of a bucket is written and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNames {
    /// Final file name (after the directory): `<prefix>.<counter><suffix or extension>`.
    pub final_name: String,
    /// In-use name.
    pub in_use_name: String,
}

/// The bucket of `event`: an error names the key whose escape failed.
pub fn bucket_of(cfg: &HdfsConfig, event: &Event, now_ms: i64) -> Result<Bucket, String> {
    let path = cfg
        .path
        .expand(event, &cfg.time, now_ms)
        .map_err(|e| format!("hdfs.path: {e}"))?;
    let name = cfg
        .file_prefix
        .expand(event, &cfg.time, now_ms)
        .map_err(|e| format!("hdfs.filePrefix: {e}"))?;
    let fixed = DestinationUri::fixed_prefix(cfg.path.as_str());
    let rest = path
        .trim_start()
        .get(fixed.len()..)
        .unwrap_or_default()
        .trim_end_matches('/');
    let dir = match cfg.destination {
        DestinationUri::Local { .. } => {
            if !rest.starts_with('/') {
                return Err(format!(
                    "hdfs.path expands to \"{path}\", not an absolute file:// path"
                ));
            }
            rest.to_owned()
        }
        DestinationUri::S3 { .. } => rest.trim_start_matches('/').to_owned(),
    };
    for (key, text) in [("hdfs.path", dir.as_str()), ("hdfs.filePrefix", &name)] {
        if text.contains('\0')
            || Path::new(text)
                .components()
                .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(format!(
                "{key} expands to \"{text}\", which climbs out of its directory (\"..\") or holds a NUL"
            ));
        }
    }
    if name.is_empty() || name.ends_with('/') {
        return Err(format!(
            "hdfs.filePrefix expands to \"{name}\", which names no file"
        ));
    }
    Ok(Bucket { dir, name })
}

/// The names of file number `counter` of `bucket`.
pub fn file_names(cfg: &HdfsConfig, bucket: &Bucket, counter: u64) -> FileNames {
    let mut final_name = format!("{}.{counter}", bucket.name);
    if !cfg.file_suffix.is_empty() {
        final_name.push_str(&cfg.file_suffix);
    } else {
        final_name.push_str(cfg.format.extension());
    }
    // A prefix with '/' puts files in a subdirectory; the in-use marks wrap the last part.
    let (sub, last) = match final_name.rsplit_once('/') {
        Some((s, l)) => (format!("{s}/"), l.to_owned()),
        None => (String::new(), final_name.clone()),
    };
    let in_use_name = format!("{sub}{}{last}{}", cfg.in_use_prefix, cfg.in_use_suffix);
    FileNames {
        final_name,
        in_use_name,
    }
}

/// A local file of `bucket` named `name`.
pub fn local_path(bucket: &Bucket, name: &str) -> PathBuf {
    Path::new(&bucket.dir).join(name)
}

/// The object key of `bucket`'s file named `name`.
pub fn object_key(bucket: &Bucket, name: &str) -> String {
    if bucket.dir.is_empty() {
        name.to_owned()
    } else {
        format!("{}/{name}", bucket.dir)
    }
}

/// One bucket's share of a batch: its events in order and, when the channel numbers its
/// events, their numbers (empty otherwise).
#[derive(Debug)]
pub struct Group {
    /// Where they go.
    pub bucket: Bucket,
    /// The events.
    pub events: Vec<Event>,
    /// Their channel sequence numbers, one per event, or empty.
    pub seqs: Vec<u64>,
}

/// Splits `events` (numbered by `seqs`, one per event, or not numbered: empty) by bucket,
/// keeping their order within each bucket and the buckets in the order they first appear.
pub fn group(
    cfg: &HdfsConfig,
    events: Vec<Event>,
    seqs: &[u64],
    now_ms: i64,
) -> Result<Vec<Group>, String> {
    let numbered = seqs.len() == events.len();
    let mut index: HashMap<Bucket, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, e) in events.into_iter().enumerate() {
        let b = bucket_of(cfg, &e, now_ms)?;
        let g = match index.get(&b) {
            Some(&g) => g,
            None => {
                index.insert(b.clone(), groups.len());
                groups.push(Group {
                    bucket: b,
                    events: Vec::new(),
                    seqs: Vec::new(),
                });
                groups.len() - 1
            }
        };
        groups[g].events.push(e);
        if numbered {
            groups[g].seqs.push(seqs[i]);
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_support::{ctx, entries};

    fn cfg(pairs: &[(&str, &str)]) -> HdfsConfig {
        let mut all = vec![("hdfs.stagingDir", "/tmp/st")];
        all.extend_from_slice(pairs);
        let list = entries(&all);
        HdfsConfig::parse(&ctx(&list))
    }

    #[test]
    fn names_as_flume_bucket_writer() {
        let c = cfg(&[("hdfs.path", "file:///data/x/")]);
        let b = bucket_of(&c, &Event::new("a"), 0).expect("bucket");
        assert_eq!(
            b,
            Bucket {
                dir: "/data/x".into(),
                name: "FlumeData".into()
            }
        );
        assert_eq!(b.key(), "/data/x/FlumeData");
        let n = file_names(&c, &b, 1700000000123);
        assert_eq!(n.final_name, "FlumeData.1700000000123");
        assert_eq!(n.in_use_name, "FlumeData.1700000000123.tmp");
        let c = cfg(&[
            ("hdfs.path", "s3://bk/logs"),
            ("hdfs.filePrefix", "d/ev"),
            ("hdfs.fileSuffix", ".log"),
            ("hdfs.inUsePrefix", "_"),
        ]);
        let b = bucket_of(&c, &Event::new("a"), 0).expect("bucket");
        assert_eq!(b.dir, "logs");
        let n = file_names(&c, &b, 5);
        assert_eq!(n.final_name, "d/ev.5.log");
        assert_eq!(n.in_use_name, "d/_ev.5.log.tmp");
        assert_eq!(object_key(&b, &n.final_name), "logs/d/ev.5.log");
    }

    #[test]
    fn groups_keep_order_and_numbers_follow_their_events() {
        let c = cfg(&[("hdfs.path", "file:///d/%{k}")]);
        let ev = |body: &str, k: &str| Event::new(body).with_header("k", k);
        let events = vec![ev("1", "a"), ev("2", "b"), ev("3", "a")];
        let g = group(&c, events.clone(), &[], 0).expect("group");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].bucket.dir, "/d/a");
        let bodies =
            |g: &Group| -> Vec<Vec<u8>> { g.events.iter().map(|e| e.body.clone()).collect() };
        assert_eq!(bodies(&g[0]), [b"1".to_vec(), b"3".to_vec()]);
        assert_eq!(bodies(&g[1]), [b"2".to_vec()]);
        assert!(g[0].seqs.is_empty(), "not numbered");
        let g = group(&c, events, &[40, 41, 42], 0).expect("group");
        assert_eq!(g[0].seqs, [40, 42]);
        assert_eq!(g[1].seqs, [41]);
    }
}
