//! `exec`: runs a command and turns each line of its standard output into an event (Flume's
//! `ExecSource`).
//!
//! Keys and Flume's defaults: `command` (required), `shell` (unset: the command is split at
//! whitespace and run directly; set, e.g. `/bin/sh -c`, the shell's words plus the command as
//! one argument), `restart` (false), `restartThrottle` (10000 ms), `logStdErr` (false),
//! `batchSize` (20), `batchTimeout` (3000 ms), `charset` (UTF-8 only).
//!
//! Lines end at `\n` (a `\r` before it is removed, as Java's `readLine` does; a last line
//! without newline is an event); bytes are kept as they are. Lines are committed in one
//! transaction when `batchSize` of them are collected, or `batchTimeout` ms after the last
//! commit, and when the command exits. When the command exits it is started again after
//! `restartThrottle` ms if `restart` is true; the exit status is logged. With `logStdErr` its
//! standard error is logged (at INFO), never turned into events. Standard input is empty.
//!
//! **Delivery.** Flume documents that the exec source gives no delivery guarantee: when the
//! channel is full its batch fails and those lines are lost. Here a batch that cannot be
//! committed is retried every second until it is, and no further line is read meanwhile: the
//! pipe fills and the command blocks on its writes (back-pressure, nothing dropped). Lines are
//! still lost if the agent stops or dies before their batch was committed (the command cannot
//! re-send them), so use a spooling or tailing source for data that must not be lost.
//!
//! Shutdown: the command (its whole process group) receives SIGTERM and, if it has not exited
//! within a second, SIGKILL; the lines read so far are committed.

use super::commit::{put, received, Call};
use super::{BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::config::context::Ctx;
use crate::stop::Stop;
use file_channel::Event;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a failed batch waits before it is tried again.
const RETRY_MS: u64 = 1000;
/// How long the command gets between SIGTERM and SIGKILL at shutdown.
const TERM_GRACE_MS: u64 = 1000;

/// Configuration of an exec source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// The command. `command`.
    pub command: String,
    /// The shell, split at whitespace. `shell`. Default: unset.
    pub shell: Option<String>,
    /// Run the command again when it exits. `restart`. Default: false.
    pub restart: bool,
    /// Wait before a restart, in ms. `restartThrottle`. Default: 10000.
    pub restart_throttle_ms: u64,
    /// Log the command's standard error. `logStdErr`. Default: false.
    pub log_stderr: bool,
    /// Most lines per transaction. `batchSize`. Default: 20.
    pub batch_size: u32,
    /// Longest wait before collected lines are committed, in ms. `batchTimeout`. Default: 3000.
    pub batch_timeout_ms: u64,
}

impl ExecConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let command = ctx.required("command").unwrap_or_default();
        if ctx.has("command") && command.trim().is_empty() {
            ctx.error("command", "the command is empty");
        }
        if let Some(cs) = ctx.string("charset") {
            if !cs.eq_ignore_ascii_case("UTF-8") {
                ctx.error("charset", format!("only UTF-8 is supported, not {cs:?}"));
            }
        }
        Self {
            command,
            shell: ctx.string("shell").filter(|s| !s.trim().is_empty()),
            restart: ctx.bool("restart", false),
            restart_throttle_ms: ctx.u64_in("restartThrottle", 10_000, 0..=86_400_000),
            log_stderr: ctx.bool("logStdErr", false),
            batch_size: ctx.u32_in(
                "batchSize",
                20,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
            batch_timeout_ms: ctx.u64_in("batchTimeout", 3000, 1..=86_400_000),
        }
    }

    /// The program and its arguments.
    pub fn argv(&self) -> Vec<String> {
        match &self.shell {
            Some(shell) => shell
                .split_whitespace()
                .map(str::to_owned)
                .chain(std::iter::once(self.command.clone()))
                .collect(),
            None => self.command.split_whitespace().map(str::to_owned).collect(),
        }
    }
}

/// The exec source.
#[derive(Debug)]
pub struct ExecSource {
    config: ExecConfig,
    ctx: SourceContext,
}

impl ExecSource {
    /// An exec source; the command starts with the source.
    pub fn new(config: ExecConfig, ctx: SourceContext) -> Self {
        Self { config, ctx }
    }
}

impl EventDrivenSource for ExecSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            self.ctx.counters.lifetime.started();
            let serve: BoxFuture<()> = Box::pin(run(self.config, self.ctx, stop));
            Ok(serve)
        })
    }
}

async fn run(config: ExecConfig, ctx: SourceContext, stop: Stop) {
    let argv = config.argv();
    loop {
        match run_once(&argv, &config, &ctx, &stop).await {
            Ok(Some(status)) => {
                tracing::info!(source = %ctx.name, command = %config.command, %status, "command exited")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(source = %ctx.name, command = %config.command, error = %e, "cannot run command")
            }
        }
        if !config.restart || stop.is_triggered() {
            break;
        }
        tokio::select! {
            () = stop.wait() => break,
            () = tokio::time::sleep(Duration::from_millis(config.restart_throttle_ms)) => {}
        }
        tracing::info!(source = %ctx.name, command = %config.command, "restarting command");
    }
    ctx.counters.lifetime.stopped();
    tracing::info!(source = %ctx.name, "exec source stopped");
}

/// Runs the command once; its exit status, or `None` if it was stopped.
async fn run_once(
    argv: &[String],
    config: &ExecConfig,
    ctx: &SourceContext,
    stop: &Stop,
) -> std::io::Result<Option<ExitStatus>> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if config.log_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    tracing::info!(source = %ctx.name, command = %config.command, pid = child.id(), "command started");
    if let Some(err) = child.stderr.take() {
        tokio::spawn(log_stderr(err, ctx.name.to_string()));
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the command's standard output is not piped"))?;
    let mut lines = BufReader::new(stdout);
    let timeout = Duration::from_millis(config.batch_timeout_ms);
    let mut batch: Vec<Event> = Vec::new();
    let mut last_flush = Instant::now();
    let mut line = Vec::new();
    let stopped = loop {
        tokio::select! {
            () = stop.wait() => break true,
            () = tokio::time::sleep_until(last_flush + timeout) => {
                flush(&mut batch, ctx, stop).await;
                last_flush = Instant::now();
            }
            read = lines.read_until(b'\n', &mut line) => {
                match read {
                    Ok(0) => break false,
                    Ok(_) => {
                        batch.push(Event::new(line_body(&mut line)));
                        if batch.len() >= config.batch_size as usize {
                            flush(&mut batch, ctx, stop).await;
                            last_flush = Instant::now();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(source = %ctx.name, error = %e, "cannot read the command's output");
                        break false;
                    }
                }
            }
        }
    };
    if stopped {
        terminate(&mut child).await;
        flush(&mut batch, ctx, stop).await;
        return Ok(None);
    }
    flush(&mut batch, ctx, stop).await;
    child.wait().await.map(Some)
}

/// The body of a line read with its `\n`: without the `\n` and a `\r` before it.
fn line_body(line: &mut Vec<u8>) -> Vec<u8> {
    let mut body = std::mem::take(line);
    if body.last() == Some(&b'\n') {
        body.pop();
        if body.last() == Some(&b'\r') {
            body.pop();
        }
    }
    body
}

/// Commits the batch, retrying until it is committed (back-pressure) or the agent stops.
async fn flush(batch: &mut Vec<Event>, ctx: &SourceContext, stop: &Stop) {
    if batch.is_empty() {
        return;
    }
    let events = std::mem::take(batch);
    received(ctx, events.len(), Call::Batch);
    loop {
        match put(ctx, events.clone(), Call::Batch).await {
            Ok(()) => return,
            Err(e) if stop.is_triggered() => {
                tracing::error!(source = %ctx.name, error = %e, lost = events.len(), "cannot commit the last lines at shutdown; they are lost");
                return;
            }
            Err(e) => {
                tracing::warn!(source = %ctx.name, error = %e, lines = events.len(), "cannot commit lines; retrying in {RETRY_MS} ms, not reading meanwhile");
                tokio::select! {
                    () = stop.wait() => {}
                    () = tokio::time::sleep(Duration::from_millis(RETRY_MS)) => {}
                }
            }
        }
    }
}

/// SIGTERM to the command's process group, SIGKILL after [`TERM_GRACE_MS`].
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        // The `kill` utility reaches the whole group (the workspace allows no `unsafe` for
        // `kill(2)`); if it is missing, the SIGKILL below still ends the command itself.
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let grace = Duration::from_millis(TERM_GRACE_MS);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

async fn log_stderr(err: impl AsyncRead + Unpin, source: String) {
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        tracing::info!(source = %source, "StdErr: {l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_with_and_without_shell() {
        let mut c = ExecConfig {
            command: "tail  -F /var/log/x".into(),
            shell: None,
            restart: false,
            restart_throttle_ms: 10_000,
            log_stderr: false,
            batch_size: 20,
            batch_timeout_ms: 3000,
        };
        assert_eq!(c.argv(), ["tail", "-F", "/var/log/x"]);
        c.shell = Some("/bin/bash -c".into());
        assert_eq!(c.argv(), ["/bin/bash", "-c", "tail  -F /var/log/x"]);
    }

    #[test]
    fn line_bodies_drop_newline_and_one_cr() {
        assert_eq!(line_body(&mut b"a\r\n".to_vec()), b"a");
        assert_eq!(line_body(&mut b"a\r\r\n".to_vec()), b"a\r");
        assert_eq!(line_body(&mut b"last".to_vec()), b"last");
        assert_eq!(line_body(&mut b"\n".to_vec()), b"");
    }
}
