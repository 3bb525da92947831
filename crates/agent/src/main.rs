//! `sluice`: the command line of the Sluice agent.
//!
//! - `sluice agent -n NAME -f FILE [-c DIR] [-D KEY=VALUE]… [--no-reload-conf]
//!   [--metrics-http ADDR] [--log-level LEVEL]` runs agent `NAME` of `FILE` until SIGTERM or
//!   SIGINT, then stops it cleanly (exit 0). SIGHUP, or a change of `FILE`, reloads it live
//!   (`agent::reload`; `--no-reload-conf` keeps only SIGHUP).
//! - `sluice validate -n NAME -f FILE [-D KEY=VALUE]…` only checks: exit 0 valid (warnings may
//!   be printed), 1 invalid (every problem printed as `file:line: key: message`), 2 usage or
//!   I/O error.
//! - `sluice avro-client -H HOST -p PORT [-F FILE] [-R HEADERFILE]` sends each line of `FILE`
//!   (standard input without `-F`) as an event to an avro source: exit 0 when every event was
//!   acknowledged, 1 when delivery failed, 2 usage or I/O error.
//!
//! The options are `flume-ng`'s: `-n/--name`, `-f/--conf-file`, `-c/--conf` (its `flume-env.sh`
//! and log4j files are named in the log as not used), `-D` (also glued, `-Dkey=value`; read by
//! [`agent::flume_properties`] and `${sys:…}`), `--no-reload-conf`; ZooKeeper (`-z`, `-p`) and
//! `--conf-uri` are refused. The log level comes from `--log-level`, else
//! `-Dflume.root.logger`, else `RUST_LOG`, else `info`; logs go to standard error.

use agent::agent::Agent;
use agent::avro_client;
use agent::config::{self, LoadError, LoadOptions};
use agent::error_chain::one_line;
use agent::flume_properties::{self, RootLogger};
use agent::reload::{ReloadOptions, Reloader};
use anyhow::Context as _;
use clap::{ArgAction, Args, Parser, Subcommand};
use std::collections::BTreeMap;
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
        /// Do not reload the configuration file when it changes (Flume's option).
        #[arg(long)]
        no_reload_conf: bool,
        /// Serve metrics over HTTP on this address (GET /metrics, GET /metrics/prometheus),
        /// e.g. 127.0.0.1:41414. Wins over -Dflume.monitoring.*.
        #[arg(long, value_name = "ADDR")]
        metrics_http: Option<SocketAddr>,
        /// Log filter, e.g. `info` or `agent=debug` (default: -Dflume.root.logger, else
        /// $RUST_LOG, else info).
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
    },
    /// Check a configuration without running it: exit 0 valid, 1 invalid, 2 usage or I/O error.
    Validate {
        #[command(flatten)]
        target: Target,
    },
    /// Send each line of a file (or standard input) as an event to an avro source, like
    /// `flume-ng avro-client`: exit 0 all acknowledged, 1 delivery failed, 2 usage or I/O error.
    AvroClient(AvroClientArgs),
}

#[derive(Debug, Args)]
struct Target {
    /// The agent's name in the file.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: String,
    /// The Flume properties file.
    #[arg(
        short = 'f',
        long = "conf-file",
        value_name = "FILE",
        required_unless_present_any = ["zk_conn", "zk_base", "conf_uri"]
    )]
    conf_file: Option<PathBuf>,
    /// Flume's configuration directory: its flume-env.sh and log4j files are not used (named in
    /// the log).
    #[arg(short = 'c', long = "conf", value_name = "DIR")]
    conf: Option<PathBuf>,
    /// A system property, as Flume takes it (`-D key=value` or `-Dkey=value`, repeatable):
    /// flume.monitoring.*, flume.root.logger, javax.net.ssl.*, and `${sys:key}` in the file.
    #[arg(short = 'D', value_name = "KEY=VALUE", action = ArgAction::Append, allow_hyphen_values = true)]
    defines: Vec<String>,
    /// Flume's ZooKeeper connection string: refused (ZooKeeper configuration is not supported).
    #[arg(short = 'z', long = "zkConnString", value_name = "STR", hide = true)]
    zk_conn: Option<String>,
    /// Flume's ZooKeeper base path: refused (ZooKeeper configuration is not supported).
    #[arg(short = 'p', long = "zkBasePath", value_name = "PATH", hide = true)]
    zk_base: Option<String>,
    /// Flume 1.10's configuration URI: refused (use -f).
    #[arg(long = "conf-uri", value_name = "URI", hide = true)]
    conf_uri: Option<String>,
}

#[derive(Debug, Args)]
struct AvroClientArgs {
    /// The avro source's host.
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    host: String,
    /// The avro source's port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: u16,
    /// The file whose lines are sent (default: standard input).
    #[arg(short = 'F', long = "filename", value_name = "FILE")]
    filename: Option<PathBuf>,
    /// A Java properties file of headers (`key=value` lines) every event carries.
    #[arg(short = 'R', long = "headerFile", value_name = "FILE")]
    header_file: Option<PathBuf>,
    /// Connect and request timeout in milliseconds (Flume's RPC client default).
    #[arg(long, value_name = "MS", default_value_t = 20_000)]
    timeout_ms: u64,
    /// Flume's configuration directory; not used.
    #[arg(short = 'c', long = "conf", value_name = "DIR", hide = true)]
    _conf: Option<PathBuf>,
    /// Flume's system properties; not used by the client.
    #[arg(short = 'D', action = ArgAction::Append, hide = true)]
    _defines: Vec<String>,
    /// Flume's RPC properties file: refused.
    #[arg(short = 'P', long = "rpcProps", value_name = "FILE", hide = true)]
    rpc_props: Option<PathBuf>,
    /// Flume's directory mode: refused.
    #[arg(long = "dirname", value_name = "DIR", hide = true)]
    dirname: Option<PathBuf>,
}

/// What the command line asks of a load, once checked.
struct Settings {
    file: PathBuf,
    options: LoadOptions,
    root_logger: Option<RootLogger>,
    monitoring: Option<SocketAddr>,
}

/// Checks the Flume options of `target`; a usage error names the option.
fn settings(target: &Target) -> anyhow::Result<Settings> {
    if target.zk_conn.is_some() || target.zk_base.is_some() {
        anyhow::bail!(
            "ZooKeeper configuration (-z/--zkConnString, -p/--zkBasePath) is not supported: keep the configuration in a file and pass it with -f"
        );
    }
    if let Some(uri) = &target.conf_uri {
        anyhow::bail!(
            "--conf-uri {uri}: configuration URIs are not supported: pass a file with -f"
        );
    }
    let file = target
        .conf_file
        .clone()
        .context("-f/--conf-file is required")?;
    let mut system_properties = BTreeMap::new();
    for d in &target.defines {
        let (k, v) = flume_properties::parse_define(d)?;
        system_properties.insert(k, v);
    }
    let root_logger = flume_properties::root_logger(&system_properties)?;
    let monitoring = flume_properties::monitoring_address(&system_properties)?;
    Ok(Settings {
        file,
        options: LoadOptions { system_properties },
        root_logger,
        monitoring,
    })
}

fn usage_error(e: &anyhow::Error) -> ExitCode {
    eprintln!("sluice: {}", one_line(e.as_ref()));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { target } => match settings(&target) {
            Ok(s) => validate(&s, &target.name),
            Err(e) => usage_error(&e),
        },
        Command::AvroClient(args) => avro_client_main(&args),
        Command::Agent {
            target,
            no_reload_conf,
            metrics_http,
            log_level,
        } => {
            let s = match settings(&target) {
                Ok(s) => s,
                Err(e) => return usage_error(&e),
            };
            if let Err(e) = init_logging(log_level.as_deref(), s.root_logger.as_ref()) {
                return usage_error(&e);
            }
            log_flume_leftovers(&target, &s, log_level.is_some());
            let metrics = match (metrics_http, s.monitoring) {
                (Some(flag), Some(prop)) => {
                    tracing::warn!(%flag, ignored = %prop, "--metrics-http wins over -Dflume.monitoring.*");
                    Some(flag)
                }
                (flag, prop) => flag.or(prop),
            };
            run(&target.name, &s, metrics, !no_reload_conf)
        }
    }
}

/// Logs, at start, what of Flume's start-up is given but not used here.
fn log_flume_leftovers(target: &Target, s: &Settings, log_level_given: bool) {
    if let Some(r) = &s.root_logger {
        if log_level_given {
            tracing::info!(
                flume_root_logger = r.level,
                "--log-level wins over -Dflume.root.logger"
            );
        }
        for a in &r.unused_appenders {
            tracing::info!(appender = %a, "-Dflume.root.logger names an appender that is not used: logs go to standard error");
        }
    }
    for (key, why) in flume_properties::unused_properties(&s.options.system_properties) {
        tracing::info!(property = %key, "-D{key} is not used: {why}");
    }
    if let Some(dir) = &target.conf {
        for f in flume_properties::unused_conf_files(dir) {
            tracing::info!(
                file = %f.display(),
                "not used: Sluice does not source flume-env.sh (set its variables in the service's environment; JAVA_OPTS such as -Xmx mean nothing here) nor read log4j files (-Dflume.root.logger or --log-level set the level)"
            );
        }
    }
}

fn init_logging(level: Option<&str>, root: Option<&RootLogger>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match (level, root) {
        (Some(l), _) => {
            EnvFilter::try_new(l).with_context(|| format!("invalid --log-level {l:?}"))?
        }
        (None, Some(r)) => EnvFilter::new(r.level),
        (None, None) => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
        }
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn validate(s: &Settings, name: &str) -> ExitCode {
    let file = &s.file;
    match config::load_with(file, name, &s.options) {
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
                name,
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

fn run(name: &str, s: &Settings, metrics: Option<SocketAddr>, reload: bool) -> ExitCode {
    let file = &s.file;
    let loaded = match config::load_with(file, name, &s.options) {
        Ok(l) => l,
        Err(LoadError::Invalid { file, diagnostics }) => {
            for e in &diagnostics.errors {
                eprintln!("{}", e.display(&file));
            }
            eprintln!(
                "sluice: agent {} not started: {} problem(s) in {} (run `sluice validate` to list warnings too)",
                name,
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
    // Live reload with the same loader (and -D system properties) the agent started with.
    let (name, path, options) = (name.to_owned(), file.clone(), s.options.clone());
    let load = move || config::load_with(&path, &name, &options);
    match runtime.block_on(serve(loaded.config, metrics, load, reload)) {
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

fn avro_client_main(args: &AvroClientArgs) -> ExitCode {
    if args.rpc_props.is_some() {
        return usage_error(&anyhow::anyhow!(
            "-P/--rpcProps is not supported: give the avro source with -H HOST -p PORT"
        ));
    }
    if args.dirname.is_some() {
        return usage_error(&anyhow::anyhow!(
            "--dirname is not supported: send each file with -F FILE"
        ));
    }
    let headers = match &args.header_file {
        Some(path) => match avro_client::read_headers(path) {
            Ok(h) => h,
            Err(e) => return usage_error(&e.into()),
        },
        None => Vec::new(),
    };
    let settings = avro_ipc::client::ClientSettings {
        hostname: args.host.clone(),
        port: args.port,
        connect_timeout_ms: args.timeout_ms,
        request_timeout_ms: args.timeout_ms,
        deflate_level: None,
    };
    let result = match &args.filename {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => avro_client::send_lines(
                &settings,
                std::io::BufReader::new(f),
                &path.display().to_string(),
                &headers,
            ),
            Err(e) => {
                return usage_error(
                    &anyhow::Error::new(e).context(format!("cannot open {}", path.display())),
                )
            }
        },
        None => avro_client::send_lines(
            &settings,
            std::io::stdin().lock(),
            "standard input",
            &headers,
        ),
    };
    match result {
        Ok(n) => {
            eprintln!(
                "sluice avro-client: {n} event(s) sent to {}:{}",
                args.host, args.port
            );
            ExitCode::SUCCESS
        }
        Err(e @ avro_client::AvroClientError::Input { .. }) => usage_error(&e.into()),
        Err(e) => {
            eprintln!("sluice avro-client: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}
