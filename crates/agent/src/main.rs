//! `sluice`: the command line of the Sluice agent.
//!
//! - `sluice agent -n NAME -f FILE [--metrics-http ADDR] [--log-level LEVEL]` runs agent `NAME`
//!   of `FILE` until SIGTERM or SIGINT, then stops it cleanly (exit 0). SIGHUP, or a change of
//!   `FILE`, reloads it live (`agent::reload`).
//! - `sluice validate -n NAME -f FILE` only checks: exit 0 valid (warnings may be printed), 1
//!   invalid (every problem printed as `file:line: key: message`), 2 usage or I/O error.
//!
//! The options are `flume-ng agent`'s (`-n/--name`, `-f/--conf-file`; `-c/--conf` is accepted
//! and ignored). The log level comes from `--log-level`, else `RUST_LOG`, else `info`; logs go
//! to standard error.

use agent::agent::Agent;
use agent::config::{self, LoadError};
use agent::error_chain::one_line;
use agent::reload::{ReloadOptions, Reloader};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Sluice: a durable, Flume-compatible event agent.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an agent until SIGTERM or SIGINT.
    Agent {
        #[command(flatten)]
        target: Target,
        /// Serve metrics over HTTP on this address (GET /metrics, GET /metrics/prometheus),
        /// e.g. 127.0.0.1:41414.
        #[arg(long, value_name = "ADDR")]
        metrics_http: Option<SocketAddr>,
        /// Log filter, e.g. `info` or `agent=debug` (default: $RUST_LOG, else info).
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
    },
    /// Check a configuration without running it: exit 0 valid, 1 invalid, 2 usage or I/O error.
    Validate {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Args)]
struct Target {
    /// The agent's name in the file.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: String,
    /// The Flume properties file.
    #[arg(short = 'f', long = "conf-file", value_name = "FILE")]
    conf_file: PathBuf,
    /// Flume's configuration directory option; accepted for compatibility and ignored.
    #[arg(short = 'c', long = "conf", value_name = "DIR", hide = true)]
    _conf: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { target } => validate(&target),
        Command::Agent {
            target,
            metrics_http,
            log_level,
        } => {
            if let Err(e) = init_logging(log_level.as_deref()) {
                eprintln!("sluice: {}", one_line(e.as_ref()));
                return ExitCode::from(2);
            }
            run(&target, metrics_http)
        }
    }
}

fn init_logging(level: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).with_context(|| format!("invalid --log-level {l:?}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn validate(target: &Target) -> ExitCode {
    let file = &target.conf_file;
    match config::load(file, &target.name) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("{}", warning(&w.display(file).to_string()));
            }
            let c = &loaded.config;
            println!(
                "{}: agent {} is valid: {} source(s), {} channel(s), {} sink(s), {} sink group(s)",
                file.display(),
                c.name,
                c.sources.len(),
                c.channels.len(),
                c.sinks.len(),
                c.groups.len()
            );
            ExitCode::SUCCESS
        }
        Err(LoadError::Invalid { file, diagnostics }) => {
            for e in &diagnostics.errors {
                println!("{}", e.display(&file));
            }
            for w in &diagnostics.warnings {
                println!("{}", warning(&w.display(&file).to_string()));
            }
            println!(
                "{}: agent {} is invalid: {} problem(s)",
                file.display(),
                target.name,
                diagnostics.errors.len()
            );
            ExitCode::from(1)
        }
        Err(e @ LoadError::Io { .. }) => {
            eprintln!("sluice: {e}");
            ExitCode::from(2)
        }
    }
}

/// `file:line: key: message` → `file:line: warning: key: message`.
fn warning(line: &str) -> String {
    match line.split_once(": ") {
        Some((loc, rest)) => format!("{loc}: warning: {rest}"),
        None => format!("warning: {line}"),
    }
}

fn run(target: &Target, metrics: Option<SocketAddr>) -> ExitCode {
    let file = &target.conf_file;
    let loaded = match config::load(file, &target.name) {
        Ok(l) => l,
        Err(LoadError::Invalid { file, diagnostics }) => {
            for e in &diagnostics.errors {
                eprintln!("{}", e.display(&file));
            }
            eprintln!(
                "sluice: agent {} not started: {} problem(s) in {} (run `sluice validate` to list warnings too)",
                target.name,
                diagnostics.errors.len(),
                file.display()
            );
            return ExitCode::from(1);
        }
        Err(e @ LoadError::Io { .. }) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{}", w.display(file));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Live reload with the same loader the agent started with. `--no-reload-conf` (issue 17
    // §1) passes `false` here.
    let (name, path) = (target.name.clone(), file.clone());
    let load = move || config::load(&path, &name);
    match runtime.block_on(serve(loaded.config, metrics, load, true)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = one_line(e.as_ref());
            tracing::error!("{line}");
            eprintln!("sluice: {line}");
            ExitCode::from(1)
        }
    }
}

async fn serve(
    config: config::AgentConfig,
    metrics: Option<SocketAddr>,
    load: impl Fn() -> Result<config::Loaded, LoadError>,
    reload: bool,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Install the handlers before starting, so a signal during start-up is not lost.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let options = ReloadOptions::new(reload, |k| std::env::var(k).ok())?;
    let reloader = Reloader::install(&config.file, options).context("cannot handle SIGHUP")?;
    let name = config.name.clone();
    let mut agent = Agent::start(config, metrics)
        .await
        .with_context(|| format!("agent {name} did not start"))?;
    let shutdown = async {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    let which = reloader.run(&mut agent, load, shutdown).await;
    tracing::info!("{which} received; stopping");
    agent
        .stop()
        .await
        .context("the agent stopped with problems")?;
    Ok(())
}
