//! The tansu broker as a process: where its binary is, the command line that starts it on
//! 127.0.0.1 with in-memory storage, and topic creation through Kafka's admin API.
//!
//! Standalone (nothing from the rest of `tests/common`), so that the test harness
//! (`broker.rs`, which adds skipping, waiting and logs) and `examples/kafka_bench.rs` (which
//! includes this file with `#[path]`) start the broker the same way.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The pinned broker (`.ci/run` installs this version).
pub const TANSU_VERSION: &str = "0.6.0";

/// Where the `tansu` binary is, if anywhere: `SLUICE_TANSU`, then `PATH`, then
/// `~/.cargo/bin`.
pub fn tansu_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_TANSU") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tansu"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = PathBuf::from(home).join(".cargo/bin/tansu");
        p.is_file().then_some(p)
    })
}

/// Starts `bin` as a broker listening on `127.0.0.1:port` and advertising
/// `127.0.0.1:advertised_port` in its metadata, with in-memory storage, working in `dir`, its
/// output appended to `log`.
pub fn spawn(
    bin: &Path,
    dir: &Path,
    log: &Path,
    port: u16,
    advertised_port: u16,
) -> std::io::Result<Child> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised_port}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
}

/// Creates `topic` with `partitions` partitions (replication 1) on the broker at `servers`.
pub fn create_topic(servers: &str, topic: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &opts,
        ))
        .map_err(|e| format!("create topic {topic}: {e}"))?;
    for r in results {
        if let Err((name, code)) = r {
            return Err(format!("create topic {name}: {code:?}"));
        }
    }
    Ok(())
}
