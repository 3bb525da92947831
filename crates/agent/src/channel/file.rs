//! The `file` channel: Flume's file-channel keys mapped onto the engine's
//! [`file_channel::ChannelConfig`], with Flume's defaults, which are the engine's own
//! (`file_channel::config::DEFAULT_…`) except `maxFileSize`.
//!
//! | Flume key | engine field | default |
//! |---|---|---|
//! | `checkpointDir` | `dir` | `~/.flume/file-channel/checkpoint` |
//! | `dataDirs` (comma separated) | `data_dirs` | `~/.flume/file-channel/data` |
//! | `capacity` | `capacity` | 1000000 |
//! | `transactionCapacity` | `transaction_capacity` | 10000 |
//! | `keep-alive` (seconds) | `keep_alive_ms` | 3 |
//! | `maxFileSize` (bytes) | `segment_bytes_max` | 2146435071 |
//! | `syncPolicy` (ours): `always` or `interval-ms:N[,bytes:M]` | `sync` | `always` |
//! | `checkpointInterval` (ms) | `checkpoint_interval_ms` | 30000 |
//! | `minimumRequiredSpace` (bytes) | `minimum_required_space` | 524288000 |
//! | `recoveryMode` (ours): `strict` or `skip-damaged` | `recovery_mode` ([`RecoveryMode`]) | `skip-damaged` |
//! | `useDualCheckpoints`, `backupCheckpointDir` | accepted and checked; what they protect against is built in (below); `backupCheckpointDir` is not written | false, none |
//!
//! | `encryption.*` (issue 16; see [`channel_keys`] and docs/agent.md) | `keyring` | none: events stored unencrypted |
//!
//! Dual checkpoints: Flume copies each checkpoint to `backupCheckpointDir` so that an open whose
//! checkpoint is bad restores the backup instead of replaying every data file. The engine always
//! keeps the two newest checkpoint generations in `checkpointDir` (each written to a temporary
//! file, fsynced, renamed, directory fsynced), and an open whose newest checkpoint does not
//! decode or does not agree with the segments uses the older one, else replays the segments
//! (which hold every committed put and take, so a checkpoint is never needed for correctness).
//! `useDualCheckpoints = true` still needs `backupCheckpointDir` set and different from
//! `checkpointDir`, as in Flume, and the agent logs at start that the directory is not written.
//!
//! Flume's `encryption.*` keys (encryption at rest: `encryption.activeKey`,
//! `encryption.cipherProvider`, `encryption.keyProvider`, `encryption.keyProvider.*`) are all
//! read here and handed to [`channel_keys::keyring_from_properties`], which reads the
//! keystore or key files now, so a wrong password, a missing alias or a key file others can
//! read is a configuration error on its key (`sluice validate` exits 1, the agent does not
//! start), never a channel silently storing events in the clear. Keys whose first segment is
//! `encryption` in another case are read too, and refused by name.

use crate::config::context::Ctx;
use file_channel::config::{
    DEFAULT_CAPACITY, DEFAULT_CHECKPOINT_INTERVAL_MS, DEFAULT_KEEP_ALIVE_MS,
    DEFAULT_MINIMUM_REQUIRED_SPACE_BYTES, DEFAULT_TRANSACTION_CAPACITY,
};
use file_channel::{ChannelConfig, RecoveryMode, SyncPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Flume's default `maxFileSize` (the engine's own default is smaller, see
/// [`file_channel::config::DEFAULT_SEGMENT_BYTES_MAX`]).
pub const FLUME_MAX_FILE_SIZE_BYTES: u64 = 2_146_435_071;

/// Flume's dual-checkpoint options, validated and accepted with no further effect: the engine
/// always keeps two checkpoint generations in `checkpointDir`. Every other key goes straight
/// into the engine's [`ChannelConfig`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DualCheckpointOptions {
    /// `useDualCheckpoints`: keep a backup checkpoint. Default: false.
    pub use_dual_checkpoints: bool,
    /// `backupCheckpointDir`: where the backup checkpoint goes (required with dual
    /// checkpoints, must differ from `checkpointDir`).
    pub backup_checkpoint_dir: Option<PathBuf>,
}

/// A file channel's configuration: what the engine takes, and Flume's options it accepts
/// without effect.
#[derive(Clone, Debug)]
pub struct FileChannelSettings {
    /// The engine configuration.
    pub config: ChannelConfig,
    /// `useDualCheckpoints` and `backupCheckpointDir`.
    pub dual_checkpoints: DualCheckpointOptions,
}

impl FileChannelSettings {
    /// Reads Flume's keys from `ctx`; `home` is `$HOME` for the default directories.
    pub fn parse(ctx: &Ctx<'_>, home: Option<&str>) -> Self {
        let default_dir = |sub: &str| -> PathBuf {
            match home {
                Some(h) => PathBuf::from(h).join(".flume/file-channel").join(sub),
                None => PathBuf::from(format!("~/.flume/file-channel/{sub}")),
            }
        };
        let dir = match ctx.string("checkpointDir") {
            Some(d) if d.trim().is_empty() => {
                ctx.error("checkpointDir", "must not be empty");
                default_dir("checkpoint")
            }
            Some(d) => PathBuf::from(d.trim()),
            None => {
                if home.is_none() {
                    ctx.error_at(
                        ctx.anchor_line(),
                        "checkpointDir",
                        "not set, and HOME is not set for Flume's default ~/.flume/file-channel/checkpoint",
                    );
                }
                default_dir("checkpoint")
            }
        };
        let data_dirs = match ctx.string("dataDirs") {
            Some(v) => {
                let dirs: Vec<PathBuf> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect();
                if dirs.is_empty() {
                    ctx.error("dataDirs", "must name at least one directory");
                }
                dirs
            }
            None => {
                if home.is_none() {
                    ctx.error_at(
                        ctx.anchor_line(),
                        "dataDirs",
                        "not set, and HOME is not set for Flume's default ~/.flume/file-channel/data",
                    );
                }
                vec![default_dir("data")]
            }
        };
        let mut config = ChannelConfig::new(dir.clone());
        config.data_dirs = data_dirs;
        config.capacity = ctx.u64_in("capacity", DEFAULT_CAPACITY, 1..=u64::MAX);
        config.transaction_capacity = ctx.u32_in(
            "transactionCapacity",
            DEFAULT_TRANSACTION_CAPACITY,
            1..=file_channel::limits::MAX_EVENTS_PER_TXN,
        );
        config.keep_alive_ms =
            ctx.u64_in("keep-alive", DEFAULT_KEEP_ALIVE_MS / 1000, 0..=86_400) * 1000;
        config.segment_bytes_max = ctx.u64_in(
            "maxFileSize",
            FLUME_MAX_FILE_SIZE_BYTES,
            file_channel::limits::MIN_SEGMENT_BYTES..=file_channel::limits::MAX_SEGMENT_BYTES,
        );
        if let Some(p) = ctx.string("syncPolicy") {
            match parse_sync_policy(&p) {
                Ok(s) => config.sync = s,
                Err(m) => ctx.error("syncPolicy", m),
            }
        }
        config.checkpoint_interval_ms = ctx.u64_in(
            "checkpointInterval",
            DEFAULT_CHECKPOINT_INTERVAL_MS,
            1..=u64::MAX,
        );
        config.minimum_required_space = ctx.u64_in(
            "minimumRequiredSpace",
            DEFAULT_MINIMUM_REQUIRED_SPACE_BYTES,
            0..=u64::MAX,
        );
        let dual_checkpoints = DualCheckpointOptions {
            use_dual_checkpoints: ctx.bool("useDualCheckpoints", false),
            backup_checkpoint_dir: ctx
                .string("backupCheckpointDir")
                .map(|s| PathBuf::from(s.trim())),
        };
        if let Some(m) = ctx.string("recoveryMode") {
            match m.parse::<RecoveryMode>() {
                Ok(mode) => config.recovery_mode = mode,
                Err(e) => ctx.error("recoveryMode", e.to_string()),
            }
        }
        config.keyring = encryption_keys(ctx);
        if dual_checkpoints.use_dual_checkpoints {
            match &dual_checkpoints.backup_checkpoint_dir {
                None => ctx.error(
                    "useDualCheckpoints",
                    "is true but backupCheckpointDir is not set",
                ),
                Some(b) if *b == dir => {
                    ctx.error("backupCheckpointDir", "must differ from checkpointDir")
                }
                Some(_) => {}
            }
        }
        refuse_flume_files(ctx, &config);
        if !ctx.has_errors() {
            if let Err(e) = config.validate() {
                let key = match e.key {
                    "capacity" => "capacity",
                    "transaction_capacity" => "transactionCapacity",
                    "segment_bytes_max" => "maxFileSize",
                    "data_dirs" => "dataDirs",
                    "sync" => "syncPolicy",
                    "dir" => "checkpointDir",
                    "checkpoint_interval_ms" => "checkpointInterval",
                    _ => "type",
                };
                ctx.error(key, e.reason);
            }
        }
        Self {
            config,
            dual_checkpoints,
        }
    }

    /// One line per option that is accepted but acted on differently from Flume: Sluice always
    /// keeps two checkpoint generations in `checkpointDir`, so Flume's dual checkpoints are
    /// built in and `backupCheckpointDir` is not written.
    pub fn no_effect_warnings(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.dual_checkpoints.use_dual_checkpoints {
            let backup = self
                .dual_checkpoints
                .backup_checkpoint_dir
                .as_ref()
                .map_or_else(String::new, |b| format!(" {}", b.display()));
            v.push(format!(
                "useDualCheckpoints = true: built in, not written to backupCheckpointDir{backup}: the two newest checkpoints are always kept in checkpointDir, and an open whose newest checkpoint is bad uses the older one, else replays dataDirs"
            ));
        }
        v
    }

    /// Every directory the channel uses.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut v = vec![self.config.dir.clone()];
        v.extend(self.config.segment_dirs());
        if let Some(b) = &self.dual_checkpoints.backup_checkpoint_dir {
            v.push(b.clone());
        }
        v
    }
}

/// The migration guard at validation: `checkpointDir` or a `dataDirs` entry holding Apache
/// Flume FileChannel files is an error on that key (the engine's open refuses them too; this
/// lets `sluice validate` say so before anything runs). Only names are listed.
fn refuse_flume_files(ctx: &Ctx<'_>, config: &ChannelConfig) {
    let storage = file_channel::storage::StdStorage::new();
    let look = |key: &str, dir: &std::path::Path| {
        if let Ok(Some(found)) = file_channel::flume_files::find_in(&storage, dir) {
            ctx.error(key, found.to_string());
        }
    };
    look("checkpointDir", &config.dir);
    for d in &config.data_dirs {
        look("dataDirs", d);
    }
}

/// The keyring the channel's `encryption*` keys describe (`None` without them), or `None`
/// with the problem recorded on its key.
fn encryption_keys(ctx: &Ctx<'_>) -> Option<std::sync::Arc<file_channel::encryption::Keyring>> {
    let props: BTreeMap<String, String> = ctx
        .keys_where(channel_keys::is_encryption_property)
        .into_iter()
        .map(|(k, e)| (k.to_owned(), e.value.clone()))
        .collect();
    match channel_keys::keyring_from_properties(&props) {
        Ok(keyring) => keyring.map(file_channel::encryption::Keyring::shared),
        Err(e) => {
            let key = e.property.as_deref().unwrap_or(channel_keys::KEY_PROVIDER);
            ctx.error(key, e.problem.to_string());
            None
        }
    }
}

/// `always` or `interval-ms:N` or `interval-ms:N,bytes:M`.
pub fn parse_sync_policy(value: &str) -> Result<SyncPolicy, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("always") {
        return Ok(SyncPolicy::EveryCommit);
    }
    let bad =
        || format!("expected always, interval-ms:N or interval-ms:N,bytes:M, got \"{value}\"");
    let mut interval_ms = None;
    let mut bytes = u64::MAX;
    for part in v.split(',') {
        let (k, n) = part.split_once(':').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(format!("{} must be at least 1 in \"{value}\"", k.trim()));
        }
        match k.trim() {
            "interval-ms" if interval_ms.is_none() => interval_ms = Some(n),
            "bytes" if interval_ms.is_some() && bytes == u64::MAX => bytes = n,
            _ => return Err(bad()),
        }
    }
    let interval_ms = interval_ms.ok_or_else(bad)?;
    Ok(SyncPolicy::Interval { interval_ms, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::context::test_support::{ctx_under, entries_under};

    fn settings(pairs: &[(&str, &str)], home: Option<&str>) -> (FileChannelSettings, Vec<String>) {
        let list = entries_under("a1.channels.c1.", pairs);
        let ctx = ctx_under("a1.channels.c1.", &list);
        let s = FileChannelSettings::parse(&ctx, home);
        let d = ctx.finish("file channel c1");
        let errs = d
            .errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect();
        (s, errs)
    }

    #[test]
    fn encryption_keys_are_read_and_a_bad_one_is_an_error_on_its_line() {
        let (s, errs) = settings(
            &[
                ("checkpointDir", "/d/cp"),
                ("dataDirs", "/d/data"),
                ("encryption.activeKey", "key-0"),
                ("encryption.cipherProvider", "AESCTRNOPADDING"),
                ("encryption.keyProvider", "PKCS12FILE"),
            ],
            None,
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("f:5: a1.channels.c1.encryption.cipherProvider: AESCTRNOPADDING is refused: AES-CTR without padding is unauthenticated"),
            "{errs:?}"
        );
        assert!(s.config.keyring.is_none());
        let (_, errs) = settings(
            &[
                ("checkpointDir", "/d/cp"),
                ("dataDirs", "/d/data"),
                ("encryption.activeKey", "key-0"),
                ("encryption.keyProvider", "JCEKSFILE"),
                ("Encryption.keyProvider.keys", "key-0"),
            ],
            None,
        );
        assert_eq!(
            errs,
            vec!["f:6: a1.channels.c1.Encryption.keyProvider.keys: not an encryption key Sluice knows (property names are case-sensitive; the keys are encryption.activeKey, encryption.cipherProvider, encryption.keyProvider, encryption.keyProvider.keyStoreFile, encryption.keyProvider.keyStorePasswordFile, encryption.keyProvider.keys, encryption.keyProvider.keys.<alias>.passwordFile and encryption.keyProvider.keys.<alias>.keyFile); an encryption key is honoured or refused, never ignored"]
        );
        let (_, errs) = settings(
            &[
                ("checkpointDir", "/d/cp"),
                ("dataDirs", "/d/data"),
                ("encryption.activeKey", "key-0"),
            ],
            None,
        );
        assert_eq!(
            errs,
            vec!["f:1: a1.channels.c1.encryption.keyProvider: required when any encryption key is set: PKCS12FILE (a keytool PKCS12 keystore) or KEYFILE (raw 32-byte key files)"]
        );
    }

    #[test]
    fn without_encryption_keys_the_channel_stores_events_unencrypted() {
        let (s, errs) = settings(&[("checkpointDir", "/d/cp"), ("dataDirs", "/d/a")], None);
        assert!(errs.is_empty(), "{errs:?}");
        assert!(s.config.keyring.is_none());
    }

    #[test]
    fn flume_defaults_under_home() {
        let (s, errs) = settings(&[], Some("/home/u"));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            s.config.dir,
            PathBuf::from("/home/u/.flume/file-channel/checkpoint")
        );
        assert_eq!(
            s.config.data_dirs,
            vec![PathBuf::from("/home/u/.flume/file-channel/data")]
        );
        assert_eq!(s.config.capacity, 1_000_000);
        assert_eq!(s.config.transaction_capacity, 10_000);
        assert_eq!(s.config.keep_alive_ms, 3000);
        assert_eq!(s.config.segment_bytes_max, FLUME_MAX_FILE_SIZE_BYTES);
        assert_eq!(s.config.sync, SyncPolicy::EveryCommit);
        assert_eq!(s.config.checkpoint_interval_ms, 30_000);
        assert_eq!(s.config.minimum_required_space, 524_288_000);
        assert_eq!(s.config.recovery_mode, RecoveryMode::SkipDamaged);
        assert_eq!(s.dual_checkpoints, DualCheckpointOptions::default());
    }

    #[test]
    fn keys_map_onto_the_engine() {
        let (s, errs) = settings(
            &[
                ("checkpointDir", "/d/cp"),
                ("dataDirs", "/d/a, /d/b"),
                ("capacity", "500"),
                ("transactionCapacity", "50"),
                ("keep-alive", "7"),
                ("maxFileSize", "1048576"),
                ("syncPolicy", "interval-ms:200,bytes:4096"),
                ("checkpointInterval", "1000"),
                ("minimumRequiredSpace", "0"),
                ("useDualCheckpoints", "true"),
                ("backupCheckpointDir", "/d/backup"),
                ("recoveryMode", "strict"),
            ],
            None,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(s.config.dir, PathBuf::from("/d/cp"));
        assert_eq!(
            s.config.data_dirs,
            vec![PathBuf::from("/d/a"), PathBuf::from("/d/b")]
        );
        assert_eq!(s.config.capacity, 500);
        assert_eq!(s.config.transaction_capacity, 50);
        assert_eq!(s.config.keep_alive_ms, 7000);
        assert_eq!(s.config.segment_bytes_max, 1_048_576);
        assert_eq!(
            s.config.sync,
            SyncPolicy::Interval {
                interval_ms: 200,
                bytes: 4096
            }
        );
        assert!(s.dual_checkpoints.use_dual_checkpoints);
        assert_eq!(
            s.dual_checkpoints.backup_checkpoint_dir,
            Some(PathBuf::from("/d/backup"))
        );
        assert_eq!(s.config.checkpoint_interval_ms, 1000);
        assert_eq!(s.config.minimum_required_space, 0);
        assert_eq!(s.config.recovery_mode, RecoveryMode::Strict);
        assert_eq!(
            s.no_effect_warnings().len(),
            1,
            "{:?}",
            s.no_effect_warnings()
        );
    }

    #[test]
    fn invalid_values_are_reported_with_flume_keys() {
        let (_, errs) = settings(
            &[
                ("checkpointDir", "/d/cp"),
                ("dataDirs", "/d/a"),
                ("capacity", "10"),
                ("transactionCapacity", "100"),
            ],
            None,
        );
        assert_eq!(
            errs,
            vec!["f:5: a1.channels.c1.transactionCapacity: 100 is larger than capacity 10: a full transaction could never fit"]
        );
        let (_, errs) = settings(
            &[("checkpointDir", "/d/cp"), ("dataDirs", "/d/a,/d/a")],
            None,
        );
        assert_eq!(
            errs,
            vec!["f:3: a1.channels.c1.dataDirs: lists the same directory twice"]
        );
        let (_, errs) = settings(
            &[
                ("checkpointDir", "/d/cp"),
                ("dataDirs", "/d/a"),
                ("syncPolicy", "sometimes"),
                ("useDualCheckpoints", "true"),
                ("recoveryMode", "lenient"),
            ],
            None,
        );
        assert_eq!(
            errs,
            vec![
                "f:4: a1.channels.c1.syncPolicy: expected always, interval-ms:N or interval-ms:N,bytes:M, got \"sometimes\"",
                "f:5: a1.channels.c1.useDualCheckpoints: is true but backupCheckpointDir is not set",
                "f:6: a1.channels.c1.recoveryMode: expected strict or skip-damaged, got \"lenient\"",
            ]
        );
    }

    #[test]
    fn missing_home_without_dirs_is_an_error() {
        let (_, errs) = settings(&[], None);
        assert_eq!(
            errs,
            vec![
                "f:1: a1.channels.c1.checkpointDir: not set, and HOME is not set for Flume's default ~/.flume/file-channel/checkpoint",
                "f:1: a1.channels.c1.dataDirs: not set, and HOME is not set for Flume's default ~/.flume/file-channel/data",
            ]
        );
    }

    #[test]
    fn flume_files_in_a_channel_directory_are_an_error_on_its_key() {
        let t = tempfile::tempdir().expect("tempdir");
        let cp = t.path().join("cp");
        let data = t.path().join("data");
        std::fs::create_dir_all(&cp).expect("mkdir");
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::write(data.join("log-3"), b"x").expect("write");
        std::fs::write(data.join("log-3.meta"), b"x").expect("write");
        let (_, errs) = settings(
            &[
                ("checkpointDir", &cp.display().to_string()),
                ("dataDirs", &data.display().to_string()),
            ],
            None,
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(&format!(
                "f:3: a1.channels.c1.dataDirs: {} holds Apache Flume FileChannel files (log-3, log-3.meta)",
                data.display()
            )),
            "{errs:?}"
        );
    }

    #[test]
    fn sync_policies() {
        assert_eq!(parse_sync_policy("ALWAYS"), Ok(SyncPolicy::EveryCommit));
        assert_eq!(
            parse_sync_policy("interval-ms:100"),
            Ok(SyncPolicy::Interval {
                interval_ms: 100,
                bytes: u64::MAX
            })
        );
        assert!(parse_sync_policy("interval-ms:0").is_err());
        assert!(parse_sync_policy("bytes:10").is_err());
        assert!(parse_sync_policy("interval-ms:1,interval-ms:2").is_err());
    }
}
