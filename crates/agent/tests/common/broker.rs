//! A real Kafka-compatible broker for the tests: `tansu` (crates.io, Apache-2.0; `.ci/run`
//! installs it with `cargo install --locked tansu@0.6.0 --features dynostore`), started on
//! 127.0.0.1 with a free port and in-memory storage, and stopped when dropped.
//!
//! The binary is looked up in `SLUICE_TANSU`, then on `PATH`, then in `~/.cargo/bin`. Without
//! it a test prints `SKIPPED` and passes, unless `SLUICE_REQUIRE_INTEROP` is set (`.ci/run`
//! sets it): then it fails. librdkafka's mock cluster stays for fault injection; this broker is
//! what the sink, the source and the channel meet in production form: a separate process
//! speaking the Kafka protocol over TCP.
//!
//! Two things tansu 0.6.0 does differently from Kafka, which the tests work around:
//! - it answers a Fetch only from the first offset of a record batch, so a consumer that
//!   resumes inside a batch (a committed offset, a seek back) gets nothing: producers in the
//!   tests send one record per batch (`batch.num.messages = 1`);
//! - a killed group member keeps its partitions until its session times out: consumers use a
//!   short `session.timeout.ms`.

pub use super::tansu::{tansu_binary, TANSU_VERSION};
use super::{free_port, tansu, wait_until};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

/// A running broker.
pub struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker, or returns `None` (after printing `SKIPPED`) when `tansu` is not
    /// installed; under `SLUICE_REQUIRE_INTEROP` a missing broker is a failure.
    pub fn start() -> Option<Self> {
        Self::start_advertising(None)
    }

    /// Like [`Broker::start`], but telling clients (in its metadata) to connect to
    /// `127.0.0.1:advertised_port` instead of the broker's own port: a TLS-terminating proxy
    /// there puts every connection through TLS (tests/kafka_secure.rs). [`Broker::create_topic`]
    /// then needs a client that can reach that port.
    pub fn start_advertising(advertised_port: Option<u16>) -> Option<Self> {
        let Some(bin) = tansu_binary() else {
            assert!(
                std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
                "SLUICE_REQUIRE_INTEROP is set but the tansu broker is missing \
                 (cargo install --locked tansu@{TANSU_VERSION} --features dynostore)"
            );
            eprintln!(
                "SKIPPED: this test needs the tansu broker (cargo install --locked \
                 tansu@{TANSU_VERSION} --features dynostore); set SLUICE_REQUIRE_INTEROP=1 to \
                 make that a failure"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("tansu.log");
        let port = free_port();
        let child = tansu::spawn(
            &bin,
            dir.path(),
            &log,
            port,
            advertised_port.unwrap_or(port),
        )
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let broker = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let up = wait_until(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "tansu did not listen on {port}:\n{}", broker.log());
        Some(broker)
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the broker printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Creates `topic` with `partitions` partitions (replication 1).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        if let Err(e) = tansu::create_topic(&self.bootstrap(), topic, partitions) {
            panic!("{e}\n{}", self.log());
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
