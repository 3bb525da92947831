//! `chanctl`: the operator tool for Sluice channel directories.
//!
//! A thin front over [`file_channel::inspect`]: argument parsing, human and JSON rendering,
//! progress bars and exit codes live here; every finding and every change to a directory is
//! the library's.
//! The one exception is `bench`'s load generator ([`load_generator`]), which lives here because
//! only this tool uses it.
//!
//! Exit codes: 0 = clean (or a repair that left the directory clean), 1 = a problem found
//! (corruption, or something a repair could not fix), 2 = usage or I/O error (also a directory
//! that is not a channel, or one a live process holds when `repair` needs it). A broken pipe
//! on stdout (`chanctl dump DIR | head`) ends quietly with 0. Nothing is written to a channel
//! directory except by `repair --yes` (and `bench`, into its own new directory).

mod cmd;
mod keys;
mod load_generator;
mod output;
mod progress;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect, verify and repair Sluice channel directories, and benchmark the engine.
#[derive(Debug, Parser)]
#[command(name = "chanctl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a channel lives.
#[derive(Debug, Args)]
struct DirArgs {
    /// The channel directory (the directory the channel was opened on).
    dir: PathBuf,
    /// A data directory holding segment files, when the channel uses `data_dirs` (repeat for
    /// each, in the channel's order).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dirs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read-only check of every segment and checkpoint; exit 1 if corruption is found. With
    /// keys, every encrypted record is also authenticated (exit 1 on tampering, or on a missing
    /// or wrong key the channel needs).
    Verify {
        #[command(flatten)]
        dir: DirArgs,
        #[command(flatten)]
        keys: keys::KeyArgs,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Records in log order, and the checkpoints, decoded. An encrypted record shows its key;
    /// its events only with keys.
    Dump {
        #[command(flatten)]
        dir: DirArgs,
        #[command(flatten)]
        keys: keys::KeyArgs,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// Decode payloads: event headers and bodies (escaped text; base64 in JSON), take
        /// ranges, seal contents.
        #[arg(long)]
        data: bool,
        /// Only this segment.
        #[arg(long, value_name = "ID")]
        segment: Option<u64>,
        /// Only records holding or consuming sequence numbers at or above N.
        #[arg(long, value_name = "N")]
        from_seq: Option<u64>,
        /// At most N records.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Pending events and bytes, segments, sequence range, checkpoint age, lock holder, and the
    /// keys pending events were encrypted with (no key needed).
    Stat {
        #[command(flatten)]
        dir: DirArgs,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What opening the channel would do, without writing.
    Replay {
        #[command(flatten)]
        dir: DirArgs,
        #[command(flatten)]
        keys: keys::KeyArgs,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The recovery mode to simulate: skip-damaged (default) or strict.
        #[arg(long, default_value = "skip-damaged", value_name = "MODE")]
        mode: String,
        /// Also show the pending events, in the order a reader would take them (headers and
        /// bodies; an encrypted one's only with keys).
        #[arg(long)]
        data: bool,
        /// With `--data`: at most N events.
        #[arg(long, value_name = "N", requires = "data")]
        limit: Option<u64>,
    },
    /// Plan (default) or apply a repair: truncate torn tails, replace damaged ranges with gap
    /// records (their bytes kept in DIR/quarantine/), rebuild checkpoints.
    Repair {
        #[command(flatten)]
        dir: DirArgs,
        /// Print the plan and change nothing (the default).
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
        /// Apply the plan.
        #[arg(long)]
        yes: bool,
        /// Refuse to repair damage in the log: only torn tails, checkpoints and the identity
        /// file are repaired, and nothing is changed if the log holds damage.
        #[arg(long)]
        strict: bool,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Drive the engine with producers and consumers and measure it.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify { dir, keys, json } => keys
            .load()
            .and_then(|k| cmd::verify::run(&dir.dir, &dir.data_dirs, json, k)),
        Command::Dump {
            dir,
            keys,
            json,
            data,
            segment,
            from_seq,
            limit,
        } => keys.load().and_then(|keyring| {
            cmd::dump::run(
                &dir.dir,
                &dir.data_dirs,
                json,
                file_channel::inspect::dump::DumpOptions {
                    segment,
                    from_seq,
                    limit,
                    data,
                    checkpoints: segment.is_none() && from_seq.is_none(),
                    keyring,
                },
            )
        }),
        Command::Stat { dir, json } => cmd::stat::run(&dir.dir, &dir.data_dirs, json),
        Command::Replay {
            dir,
            keys,
            json,
            mode,
            data,
            limit,
        } => keys.load().and_then(|keyring| {
            let events =
                data.then_some(file_channel::inspect::pending::PendingOptions { keyring, limit });
            cmd::replay::run(&dir.dir, &dir.data_dirs, json, &mode, events)
        }),
        Command::Repair {
            dir,
            dry_run: _,
            yes,
            strict,
            json,
        } => cmd::repair::run(&dir.dir, &dir.data_dirs, yes, strict, json),
        Command::Bench(args) => cmd::bench::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chanctl: error: {}", output::one_line(&e));
            ExitCode::from(2)
        }
    }
}
