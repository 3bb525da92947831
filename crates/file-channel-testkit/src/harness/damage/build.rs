//! Builds the channel directories the `damage` layer damages: a real channel on the real file
//! system, filled through the public API with puts (some in transactions of several events) and
//! takes interleaved, so take records and consumed segments exist, and closed cleanly (which
//! writes a checkpoint and makes every take commit durable). The [`Ledger`] records what the
//! workload was told: its queue is exactly the events committed and not taken at close.

use crate::harness::check::{body, event, id_of, Ledger};
use crate::harness::encrypt::Encryption;
use crate::harness::rng::Rng;
use file_channel::{ChannelConfig, FileChannel};
use std::path::Path;

/// Ids of the events of the foreign channel (another channel whose segments are swapped in)
/// start here; the damaged channel's ids stay far below, so a foreign event delivered by the
/// damaged channel is a phantom.
pub const FOREIGN_FIRST_ID: u64 = 1_000_000_000;

/// The channel configuration of the `damage` layer: the smallest segments (4 KiB), so a few
/// hundred events fill several of them, and a checkpoint every 6 KiB of log, so checkpoints
/// and deletions of consumed segments happen while it is filled; encryption off or on.
pub fn damage_config(dir: &Path, encryption: Encryption) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.segment_bytes_max = file_channel::limits::MIN_SEGMENT_BYTES;
    c.checkpoint_bytes = 6 << 10;
    c.prefill_ahead_bytes = 0;
    c.minimum_required_space = 0;
    c.transaction_capacity = 10_000;
    c.keep_alive_ms = 0;
    encryption.apply(c)
}

/// Most body bytes in one put transaction: its record must fit in a 4 KiB segment (an event
/// of the harness carries at most about 2.5 KiB; one such event is always alone).
const TRANSACTION_BODY_BYTES_MAX: usize = 3 << 10;

/// What building a channel left behind.
#[derive(Clone, Debug)]
pub struct Built {
    /// What the workload was told; its queue is what is committed and not taken.
    pub ledger: Ledger,
    /// Events acknowledged by put commits.
    pub put: u64,
    /// Events consumed by acknowledged take commits.
    pub taken: u64,
    /// Their ids.
    pub taken_ids: Vec<u64>,
}

/// Builds a channel in `dir` (which must not hold one) with events `first_id..`: 60–300 events
/// in put transactions of 1–8 events (fewer if their bodies pass 3 KiB), one time in four followed by a take transaction of 1–6
/// events from the head (about a fifth of the events in all), then closes it cleanly. With
/// encryption on, every put record is sealed with the test key
/// ([`crate::harness::encrypt::test_keyring`]), or, for the foreign channel
/// (`first_id == FOREIGN_FIRST_ID`), with another key under the same id
/// ([`crate::harness::encrypt::foreign_keyring`]).
pub fn build_channel(
    dir: &Path,
    rng: &mut Rng,
    first_id: u64,
    encryption: Encryption,
) -> Result<Built, String> {
    let mut config = damage_config(dir, encryption);
    if first_id == FOREIGN_FIRST_ID && config.keyring.is_some() {
        config.keyring = Some(crate::harness::encrypt::foreign_keyring());
    }
    let ch = FileChannel::open(config)
        .map_err(|e| format!("open {} to build it: {e}", dir.display()))?;
    let mut ledger = Ledger::new();
    let target = rng.range(60, 300);
    let (mut put, mut taken) = (0u64, 0u64);
    let mut taken_ids = Vec::new();
    let mut next = first_id;
    while put < target {
        let mut ids: Vec<u64> = Vec::new();
        let mut bytes = 0;
        for _ in 0..rng.range(1, 8) {
            bytes += body(next).len();
            if !ids.is_empty() && bytes > TRANSACTION_BODY_BYTES_MAX {
                break;
            }
            ids.push(next);
            next += 1;
        }
        let n = ids.len() as u64;
        let mut tx = ch.transaction();
        for &id in &ids {
            tx.put(&event(id))
                .map_err(|e| format!("put of event {id} while building: {e}"))?;
        }
        tx.commit()
            .map_err(|e| format!("put commit of {ids:?} while building: {e}"))?;
        ledger.put_acked(&ids);
        put += n;
        if rng.chance(1, 4) {
            let mut tx = ch.transaction();
            let mut got = Vec::new();
            for _ in 0..rng.range(1, 6) {
                match tx.take() {
                    Ok(Some(e)) => {
                        got.push(id_of(&e).map_err(|why| format!("take while building: {why}"))?)
                    }
                    Ok(None) => break,
                    Err(e) => return Err(format!("take while building: {e}")),
                }
            }
            tx.commit()
                .map_err(|e| format!("take commit of {got:?} while building: {e}"))?;
            taken += got.len() as u64;
            taken_ids.extend_from_slice(&got);
            ledger.take_acked(&got);
        }
    }
    ch.close()
        .map_err(|e| format!("close of {} after building: {e}", dir.display()))?;
    ledger.takes_durable();
    Ok(Built {
        ledger,
        put,
        taken,
        taken_ids,
    })
}
