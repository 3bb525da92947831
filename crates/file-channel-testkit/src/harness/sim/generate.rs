//! Case generation: a [`SimOp`] list and its [`SimParams`] drawn from a seed, or decoded from
//! fuzz bytes so that every input is a valid, bounded case.

use super::{CrashFault, SimOp, SimParams, MAX_OPS, SLOTS};
use crate::harness::encrypt::Encryption;
use crate::harness::rng::Rng;

/// Draws a case of up to [`MAX_OPS`] operations (bit flips included).
pub fn gen_ops(rng: &mut Rng) -> (Vec<SimOp>, SimParams) {
    gen_ops_with(rng, true)
}

/// Replaces every [`CrashFault::FlipOld`] of a case by [`CrashFault::KeepPrefix`] with the
/// same seed: the case without media damage.
pub fn without_bit_flips(ops: &mut [SimOp]) {
    for op in ops {
        if let SimOp::Crash(CrashFault::FlipOld(seed)) = *op {
            *op = SimOp::Crash(CrashFault::KeepPrefix(seed));
        }
    }
}

/// Draws a case; `bit_flips = false` leaves out media damage (see [`without_bit_flips`]). The
/// case runs with encryption off; set [`SimParams::encryption`] to run it on (the operations
/// do not depend on it, so a case number is the same case in both modes).
pub fn gen_ops_with(rng: &mut Rng, bit_flips: bool) -> (Vec<SimOp>, SimParams) {
    let (mut ops, params) = gen_ops_inner(rng);
    if !bit_flips {
        without_bit_flips(&mut ops);
    }
    (ops, params)
}

fn gen_ops_inner(rng: &mut Rng) -> (Vec<SimOp>, SimParams) {
    let len = rng.range(1, MAX_OPS as u64) as usize;
    let params = SimParams {
        segment_bytes_max: if rng.chance(1, 2) { 4096 } else { 64 << 10 },
        prefill: rng.chance(1, 2),
        encryption: Encryption::Off,
    };
    let ops = (0..len).map(|_| gen_op(rng)).collect();
    (ops, params)
}

fn gen_fault(rng: &mut Rng) -> CrashFault {
    let seed = rng.next_u64();
    match rng.below(8) {
        0 => CrashFault::DropUnsynced,
        1 => CrashFault::KeepAll,
        2 => CrashFault::KeepPrefix(seed),
        3 => CrashFault::Torn512(seed),
        4 => CrashFault::Torn4k(seed),
        5 => CrashFault::GarbageTail(seed),
        6 => CrashFault::ZeroTail,
        _ => CrashFault::FlipOld(seed),
    }
}

fn gen_op(rng: &mut Rng) -> SimOp {
    let slot = rng.below(SLOTS as u64) as usize;
    let n = rng.range(1, 5) as u8;
    match rng.weighted(&[6, 5, 6, 2, 1, 2, 1, 1, 1]) {
        0 => SimOp::Put { slot, n },
        1 => SimOp::Take { slot, n },
        2 => SimOp::Commit { slot },
        3 => SimOp::Rollback { slot },
        4 => SimOp::Reopen,
        5 => SimOp::Crash(gen_fault(rng)),
        6 => SimOp::FailNextSync,
        7 => SimOp::DiskFull {
            slack: rng.below(6000) as u16,
            n,
        },
        _ => SimOp::OpensFail { n },
    }
}

/// Decodes fuzz bytes into a case: the first byte chooses the parameters (bit 0: 64 KiB
/// segments, bit 1: prefill, bit 3: encryption on), then every two bytes one operation (the
/// fuzzer's mutations map onto case mutations).
pub fn ops_from_bytes(data: &[u8]) -> (Vec<SimOp>, SimParams) {
    let first = data.first().copied().unwrap_or(0);
    let params = SimParams {
        segment_bytes_max: if first & 1 == 0 { 4096 } else { 64 << 10 },
        prefill: first & 2 != 0,
        // Bit 3, which no input kept from before encryption sets: they stay plain cases.
        encryption: if first & 8 != 0 {
            Encryption::On
        } else {
            Encryption::Off
        },
    };
    let ops = data
        .get(1..)
        .unwrap_or(&[])
        .chunks(2)
        .take(MAX_OPS)
        .map(|pair| {
            let a = pair[0];
            let b = pair.get(1).copied().unwrap_or(0);
            let slot = usize::from(a >> 7);
            let n = 1 + (b % 5);
            let seed = u64::from(b);
            match a & 0x0f {
                0..=3 => SimOp::Put { slot, n },
                4..=6 => SimOp::Take { slot, n },
                7..=9 => SimOp::Commit { slot },
                10 => SimOp::Rollback { slot },
                11 => SimOp::Reopen,
                12 => SimOp::FailNextSync,
                13 => SimOp::DiskFull {
                    slack: u16::from(b) * 24,
                    n: 1 + ((a >> 4) & 3),
                },
                _ => SimOp::Crash(match (a >> 4) & 7 {
                    0 => CrashFault::DropUnsynced,
                    1 => CrashFault::KeepAll,
                    2 => CrashFault::KeepPrefix(seed),
                    3 => CrashFault::Torn512(seed),
                    4 => CrashFault::Torn4k(seed),
                    5 => CrashFault::GarbageTail(seed),
                    6 => CrashFault::ZeroTail,
                    _ => CrashFault::FlipOld(seed),
                }),
            }
        })
        .collect();
    (ops, params)
}
