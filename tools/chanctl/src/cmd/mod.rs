//! One module per subcommand. Each `run` returns the exit code for a completed command (0 or 1)
//! or an error (exit 2, or 0 for a broken pipe).

pub mod bench;
pub mod dump;
pub mod repair;
pub mod replay;
pub mod stat;
pub mod verify;

use anyhow::Context;
use file_channel::inspect::ChannelDir;
use std::path::{Path, PathBuf};

/// Opens a channel directory for inspection (exit 2 if it is not one).
pub fn open_dir(dir: &Path, data_dirs: &[PathBuf]) -> anyhow::Result<ChannelDir> {
    ChannelDir::open(dir, data_dirs).with_context(|| format!("cannot inspect {}", dir.display()))
}
