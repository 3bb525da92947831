//! A real S3-compatible server for the tests: moto's server mode (from PyPI, installed like the
//! other Python peers into `<target>/python-deps`), on 127.0.0.1 with a free port, behind a
//! [`Gate`] that can refuse connections for a while (an outage the agent sees as a stopped
//! server, while moto, which keeps its objects only in memory, keeps them); and boto3
//! (`interop/s3_tool.py`) as the independent client that makes buckets and reads objects back.
//!
//! Without python3 and pip a test prints `SKIPPED` and passes, unless `SLUICE_REQUIRE_INTEROP`
//! is set (`.ci/run` sets it): then it fails.

use super::python::python_path;
use super::{free_port, wait_until};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The pinned peers (`.ci/run` installs the same set ahead of the tests).
pub const MOTO_PACKAGES: &[&str] = &["moto[server]==5.2.1", "boto3==1.43.11"];

/// Credentials moto accepts (any would do); set for boto3 and handed to the agent.
pub const ACCESS_KEY_ID: &str = "sluice-test-key";
/// The secret going with [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "sluice-test-secret";

/// Whether python3 with pip is here; prints `SKIPPED` (or fails under
/// `SLUICE_REQUIRE_INTEROP`) when not.
pub fn moto_available() -> bool {
    let ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    assert!(
        std::env::var_os("SLUICE_REQUIRE_INTEROP").is_none(),
        "SLUICE_REQUIRE_INTEROP is set but python3 with pip is missing (apt-get install python3-pip)"
    );
    eprintln!(
        "SKIPPED: this S3 test needs python3 with pip (for moto's server and boto3); \
         set SLUICE_REQUIRE_INTEROP=1 to make that a failure"
    );
    false
}

fn tool_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/s3_tool.py")
}

/// A moto server and the gate in front of it; both stopped when dropped.
pub struct Moto {
    child: Child,
    moto_port: u16,
    gate: Gate,
    python_path: PathBuf,
    /// What boto3 signs with.
    credentials: (String, String),
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts moto checking signatures against its IAM users; makes `bucket` and a user allowed
    /// to use it, and returns the server and that user's (key id, secret).
    pub fn start_with_auth(bucket: &str) -> (Self, String, String) {
        let mut moto = Self::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")]);
        let out = moto.tool(&["make-user", bucket]);
        let mut words = out.split_whitespace().map(str::to_owned);
        let (Some(id), Some(secret)) = (words.next(), words.next()) else {
            panic!("make-user printed {out:?}");
        };
        moto.credentials = (id.clone(), secret.clone());
        (moto, id, secret)
    }

    fn start_with(env: &[(&str, &str)]) -> Self {
        let python_path = python_path(MOTO_PACKAGES);
        let moto_port = free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(moto_port.to_string())
            .env("PYTHONPATH", &python_path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m moto.server");
        let mut moto = Self {
            child,
            moto_port,
            gate: Gate::open(moto_port),
            python_path,
            credentials: (ACCESS_KEY_ID.to_owned(), SECRET_ACCESS_KEY.to_owned()),
        };
        let answered = wait_until(Duration::from_secs(60), || {
            moto.http_status("/moto-api/").is_some() || moto.exited()
        });
        assert!(
            answered && !moto.exited(),
            "moto's server did not answer on 127.0.0.1:{moto_port}"
        );
        moto
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    fn http_status(&self, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.moto_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }

    /// The endpoint clients use (through the gate).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.gate.port)
    }

    /// The gate's port.
    pub fn port(&self) -> u16 {
        self.gate.port
    }

    /// Refuses connections (and cuts those open) until [`Moto::resume`].
    pub fn suspend(&self) {
        self.gate.close();
    }

    /// Accepts connections again, on the same port.
    pub fn resume(&self) {
        self.gate.reopen();
    }

    /// Runs `s3_tool.py ENDPOINT args…` (boto3), failing the test if it fails; its stdout.
    pub fn tool(&self, args: &[&str]) -> String {
        let out = Command::new("python3")
            .arg(tool_script())
            .arg(format!("http://127.0.0.1:{}", self.moto_port))
            .args(args)
            .env("PYTHONPATH", &self.python_path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("AWS_ACCESS_KEY_ID", &self.credentials.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.credentials.1)
            .output()
            .expect("run python3 s3_tool.py");
        assert!(
            out.status.success(),
            "s3_tool.py {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        self.tool(&["create-bucket", bucket]);
    }

    /// Every object under `prefix`: (key, size, etag), sorted by key.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64, String)> {
        let out = self.tool(&["list", bucket, prefix]);
        let mut objects: Vec<(String, u64, String)> = out
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("json line");
                (
                    v["key"].as_str().expect("key").to_owned(),
                    v["size"].as_u64().expect("size"),
                    v["etag"].as_str().expect("etag").to_owned(),
                )
            })
            .collect();
        objects.sort();
        objects
    }

    /// The bytes of object `key`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("object");
        self.tool(&["get", bucket, key, out.to_str().expect("utf-8 path")]);
        std::fs::read(out).expect("read downloaded object")
    }

    /// Every object under `prefix` with its bytes, sorted by key (one boto3 process).
    pub fn dump(&self, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let dir = tempfile::tempdir().expect("tmp");
        let out = self.tool(&[
            "dump",
            bucket,
            prefix,
            dir.path().to_str().expect("utf-8 path"),
        ]);
        let mut objects: Vec<(String, Vec<u8>)> = out
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("json line");
                let key = v["key"].as_str().expect("key").to_owned();
                let bytes = std::fs::read(dir.path().join(&key)).expect("read dumped object");
                assert_eq!(
                    bytes.len() as u64,
                    v["size"].as_u64().expect("size"),
                    "{key}"
                );
                (key, bytes)
            })
            .collect();
        objects.sort();
        objects
    }

    /// Unfinished multipart uploads in `bucket`.
    pub fn open_uploads(&self, bucket: &str) -> usize {
        self.tool(&["uploads", bucket])
            .trim()
            .parse()
            .expect("a count")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.gate.close();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay from its own port to moto's; closing it refuses new connections and cuts the
/// open ones, as a stopped server would.
pub struct Gate {
    port: u16,
    target: u16,
    state: Arc<GateState>,
}

#[derive(Default)]
struct GateState {
    closed: AtomicBool,
    open_streams: Mutex<Vec<TcpStream>>,
    generation: Mutex<u64>,
}

impl Gate {
    fn open(target: u16) -> Self {
        let gate = Self {
            port: free_port(),
            target,
            state: Arc::default(),
        };
        gate.listen();
        gate
    }

    fn listen(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the gate");
        listener.set_nonblocking(true).expect("nonblocking");
        let state = self.state.clone();
        let target = self.target;
        let generation = *state.generation.lock().expect("lock");
        std::thread::spawn(move || loop {
            if state.closed.load(Ordering::SeqCst)
                || *state.generation.lock().expect("lock") != generation
            {
                return; // dropping the listener: connections are refused from now on
            }
            match listener.accept() {
                Ok((client, _)) => relay(client, target, &state),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        });
    }

    fn close(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        *self.state.generation.lock().expect("lock") += 1;
        for s in self.state.open_streams.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wait until the port refuses (the accept thread has dropped its listener).
        wait_until(Duration::from_secs(5), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
    }

    fn reopen(&self) {
        self.state.closed.store(false, Ordering::SeqCst);
        self.listen();
    }
}

fn relay(client: TcpStream, target: u16, state: &Arc<GateState>) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let mut streams = state.open_streams.lock().expect("lock");
    for s in [&client, &server] {
        if let Ok(c) = s.try_clone() {
            streams.push(c);
        }
    }
    drop(streams);
    for (mut from, mut to) in [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ]
    .into_iter()
    .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
    {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}
