//! `rss_probe DIR [--full]`: opens the channel at `DIR` with the replay benchmarks'
//! configuration, reads `VmRSS` (resident memory now) and `VmHWM` (peak resident memory) from
//! `/proc/self/status` right after open returns, closes the channel and prints one JSON line:
//!
//! ```text
//! {"events":10000000,"start":"checkpoint","vm_rss_before_kb":2104,"vm_hwm_before_kb":2104,
//!  "vm_rss_kb":2620,"vm_hwm_kb":2620,"open_ms":3.412,"replay_ms":2}
//! ```
//!
//! `--full` removes the checkpoint files first, so open replays the whole log (and then writes
//! a new checkpoint itself). A fresh process per measurement keeps the figures free of anything
//! an earlier open left behind; the `replay` bench group spawns it for each fixture.

use file_channel::replay::ReplayStart;
use file_channel::FileChannel;
use sluice_benches::{proc_status_kb, remove_checkpoints, replay_config};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut dir = None;
    let mut full = false;
    for arg in std::env::args_os().skip(1) {
        if arg == "--full" {
            full = true;
        } else if dir.is_none() {
            dir = Some(PathBuf::from(arg));
        } else {
            eprintln!("usage: rss_probe DIR [--full]");
            return ExitCode::from(2);
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: rss_probe DIR [--full]");
        return ExitCode::from(2);
    };
    if !dir.is_dir() {
        eprintln!("rss_probe: {} is not a directory", dir.display());
        return ExitCode::from(2);
    }
    if full {
        if let Err(e) = remove_checkpoints(&dir) {
            eprintln!(
                "rss_probe: cannot remove the checkpoints of {}: {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let kb = |key| proc_status_kb(key).unwrap_or(0);
    let (rss_before, hwm_before) = (kb("VmRSS"), kb("VmHWM"));
    let began = Instant::now();
    let channel = match FileChannel::open(replay_config(&dir)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rss_probe: cannot open {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let open_ms = began.elapsed().as_secs_f64() * 1e3;
    let (rss, hwm) = (kb("VmRSS"), kb("VmHWM"));
    let report = channel.open_report();
    let start = match report.start {
        ReplayStart::Checkpoint { .. } => "checkpoint",
        ReplayStart::Full { .. } => "full",
    };
    println!(
        "{{\"events\":{},\"start\":\"{start}\",\"vm_rss_before_kb\":{rss_before},\
         \"vm_hwm_before_kb\":{hwm_before},\"vm_rss_kb\":{rss},\"vm_hwm_kb\":{hwm},\
         \"open_ms\":{open_ms:.3},\"replay_ms\":{}}}",
        channel.len(),
        report.replay_ms
    );
    if let Err(e) = channel.close() {
        eprintln!("rss_probe: close failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
