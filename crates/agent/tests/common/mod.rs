//! Helpers for tests that run the real `sluice` binary: start it on a configuration, wait for
//! it to listen, talk netcat and HTTP to it, signal it, and read what file_roll wrote.
//! `python` runs the Python interop peers; `kafka` holds what the Kafka test files share;
//! `tls` makes keystores and truststores with openssl and keytool; `s3` runs moto's S3 server;
//! `broker` runs a real Kafka-compatible broker (tansu).

#![allow(dead_code)]

pub mod broker;
pub mod kafka;
pub mod python;
pub mod s3;
pub mod tansu;
pub mod tls;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

/// A port nobody listens on right now (bound to 127.0.0.1 and released), and one this test
/// process has not handed out before: tests run in parallel, and two of them given the same
/// port by the kernel would talk to each other's servers (a sink meant to find nobody listening
/// would find another test's source).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if GIVEN.lock().expect("lock").insert(port) {
            return port;
        }
    }
}

/// Polls `f` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running agent process; killed if dropped while still running.
pub struct AgentProcess {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
    pub metrics_port: Option<u16>,
}

impl AgentProcess {
    /// Starts `sluice agent -n NAME -f CONF` in `cwd`, with a metrics endpoint if asked.
    pub fn start(cwd: &Path, conf: &Path, name: &str, metrics: bool) -> Self {
        Self::start_with_env(cwd, conf, name, metrics, &[])
    }

    /// Like [`Self::start`], with these environment variables set for the agent.
    pub fn start_with_env(
        cwd: &Path,
        conf: &Path,
        name: &str,
        metrics: bool,
        env: &[(&str, &str)],
    ) -> Self {
        let metrics_port = metrics.then(free_port);
        let mut cmd = sluice();
        cmd.envs(env.iter().copied());
        cmd.current_dir(cwd)
            .args(["agent", "-n", name, "-f"])
            .arg(conf)
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(p) = metrics_port {
            cmd.args(["--metrics-http", &format!("127.0.0.1:{p}")]);
        }
        let mut child = cmd.spawn().expect("spawn sluice");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().expect("lock").push_str(&line);
                line.clear();
            }
        });
        Self {
            child,
            stderr,
            metrics_port,
        }
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits until the agent logged "agent started" (panics with the log otherwise).
    pub fn wait_started(&mut self) {
        let ok = wait_until(Duration::from_secs(20), || {
            self.log().contains("agent started") || self.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            ok && self.log().contains("agent started"),
            "agent did not start:\n{}",
            self.log()
        );
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(self) -> (ExitStatus, String) {
        self.signal("TERM")
    }

    /// Sends `SIG<name>` and waits for the exit.
    pub fn signal(mut self, name: &str) -> (ExitStatus, String) {
        let pid = self.child.id();
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {pid}"))
            .status()
            .expect("kill");
        assert!(st.success());
        let status = self.wait_exit(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
        (status, self.log())
    }

    /// SIGKILL, at once.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("agent did not exit in time:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path` on the metrics endpoint: (status code, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.metrics_port.expect("metrics enabled"), path)
    }

    /// `GET /metrics` parsed.
    pub fn metrics(&self) -> serde_json::Value {
        let (code, body) = self.http_get("/metrics");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// One counter from `/metrics` as a number (`"SINK.k1"`, `"EventDrainSuccessCount"`).
    pub fn counter(&self, component: &str, name: &str) -> u64 {
        let m = self.metrics();
        m[component][name]
            .as_str()
            .unwrap_or_else(|| panic!("no {component}.{name} in {m}"))
            .parse()
            .expect("number")
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let code = head
        .split_whitespace()
        .nth(1)
        .expect("status")
        .parse()
        .expect("code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (code, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// A netcat client: one connection, lines out, answers in.
pub struct Netcat {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Netcat {
    /// Connects, retrying for a few seconds while the agent starts.
    pub fn connect(port: u16) -> Self {
        let deadline = Instant::now() + Duration::from_secs(10);
        let s = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot connect to netcat source on {port}: {e}"),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Self {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
        }
    }

    /// Sends one line and returns the answer.
    pub fn send(&mut self, line: &str) -> String {
        writeln!(self.writer, "{line}").expect("send");
        self.answer()
    }

    /// Reads one answer line (without the newline); empty at end of stream.
    pub fn answer(&mut self) -> String {
        let mut a = String::new();
        self.reader.read_line(&mut a).expect("answer");
        a.trim_end_matches('\n').to_owned()
    }

    /// Like [`Netcat::answer`], but a broken connection is `None` instead of a panic.
    pub fn try_answer(&mut self) -> Option<String> {
        let mut a = String::new();
        match self.reader.read_line(&mut a) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(a.trim_end_matches('\n').to_owned()),
        }
    }
}

/// Every file in `dir`, sorted by name (Flume's names sort by creation), concatenated.
pub fn read_dir_text(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(r) => r.map(|e| e.expect("entry").path()).collect(),
        Err(_) => return String::new(),
    };
    names.sort_by_key(|p| sort_key(p));
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read output"))
        .collect()
}

/// `<millis>-<n>` names sort by (millis, n).
fn sort_key(p: &Path) -> (u64, u64, String) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = name.splitn(2, '-');
    let a = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let b = parts
        .next()
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (a, b, name)
}

/// The lines of every file in `dir`.
pub fn read_dir_lines(dir: &Path) -> Vec<String> {
    read_dir_text(dir).lines().map(str::to_owned).collect()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_conf(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write conf");
    p
}

/// How fast [`stream_lines`] sends: a pause of `pause` after every `every` lines.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Lines between two pauses.
    pub every: u64,
    /// The pause.
    pub pause: Duration,
}

/// Streams `line-<round>-<n>` (n over seven digits) on one netcat connection to `port` until it
/// breaks or `stop` is set; the thread returns how many lines were sent in full, and `acked`
/// counts the `OK` answers (they come in order; any other answer fails the test). Once the
/// connection breaks, the thread waits for the last answers; after a `stop` it does not (the
/// answers keep being counted until the agent closes the connection).
pub fn stream_lines(
    port: u16,
    round: u32,
    acked: Arc<std::sync::atomic::AtomicUsize>,
    pace: Pace,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> std::thread::JoinHandle<usize> {
    use std::sync::atomic::Ordering::SeqCst;
    let mut nc = Netcat::connect(port);
    let mut w = nc.writer.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        while let Some(a) = nc.try_answer() {
            assert_eq!(a, "OK", "unexpected answer");
            acked.fetch_add(1, SeqCst);
        }
    });
    std::thread::spawn(move || {
        let stopped = || stop.as_ref().is_some_and(|s| s.load(SeqCst));
        let mut sent = 0;
        for n in 0u64.. {
            if stopped()
                || w.write_all(format!("line-{round}-{n:07}\n").as_bytes())
                    .is_err()
            {
                break;
            }
            sent = n as usize + 1;
            if n % pace.every == pace.every - 1 {
                std::thread::sleep(pace.pause);
            }
        }
        drop(w);
        if !stopped() {
            reader.join().expect("every answer was OK");
        }
        sent
    })
}
