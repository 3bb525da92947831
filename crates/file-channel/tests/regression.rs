//! Regression cases for the engine bugs the harness found, named after what they were. Each is
//! the shrunk case the `sim` layer printed; all three are fixed (Scanner::fill past the end of
//! its buffer, the reader's loss count right after a checkpoint-based open, non-zero reserved
//! record bytes). They replay through the testkit's `sim` layer and fuzz bodies, as
//! `crashtest sim` and the fuzzers found them.
#![allow(clippy::unwrap_used, clippy::panic)]

use file_channel_testkit::harness::encrypt::Encryption;
use file_channel_testkit::harness::sim::{run_case, CrashFault, SimOp, SimParams};

#[test]

fn scanner_fill_panics_replaying_a_segment_cut_back_after_enospc() {
    // crashtest sim --seed 1 --case 424
    let ops = vec![
        SimOp::Put { slot: 0, n: 3 },
        SimOp::Put { slot: 0, n: 5 },
        SimOp::FailNextSync,
        SimOp::Crash(CrashFault::DropUnsynced),
        SimOp::Put { slot: 0, n: 2 },
        SimOp::DiskFull { slack: 166, n: 3 },
        SimOp::Crash(CrashFault::KeepPrefix(7659414120930855269)),
    ];
    // The case as found (plain), and again with every put record encrypted.
    for encryption in Encryption::BOTH {
        let params = SimParams {
            segment_bytes_max: 65536,
            prefill: false,
            encryption,
        };
        if let Err(e) = run_case(&ops, params) {
            panic!("encryption {encryption}: {e}");
        }
    }
}

#[test]

fn damaged_first_record_after_checkpoint_open_is_not_counted_lost() {
    // crashtest sim --seed 1 --case 486
    let mut ops: Vec<SimOp> = [
        (1, 4),
        (0, 4),
        (1, 5),
        (0, 3),
        (1, 1),
        (0, 5),
        (1, 3),
        (0, 5),
        (1, 4),
    ]
    .into_iter()
    .map(|(slot, n)| SimOp::Put { slot, n })
    .collect();
    ops.extend([
        SimOp::Commit { slot: 1 },
        SimOp::Commit { slot: 0 },
        SimOp::Reopen,
        SimOp::Crash(CrashFault::FlipOld(5662739138316929793)),
    ]);
    // The case as found (plain), and again with every put record encrypted.
    for encryption in Encryption::BOTH {
        let params = SimParams {
            segment_bytes_max: 4096,
            prefill: false,
            encryption,
        };
        if let Err(e) = run_case(&ops, params) {
            panic!("encryption {encryption}: {e}");
        }
    }
}

#[test]

fn scanner_fill_panics_on_a_record_whose_padding_is_cut_by_the_end_of_file() {
    // Found by the segment_scan fuzz target: a valid 91-byte put record at offset 64 of a
    // 159-byte segment (its padding to 96 bytes is missing).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/known-crashes/segment_scan/scanner-fill-copy-within-out-of-range"
    );
    let data = std::fs::read(path).unwrap();
    file_channel_testkit::fuzzing::segment_scan(&data);
}
