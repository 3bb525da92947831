//! The fixed workload of the `sweep` and `states` layers, and the recovery check they share.
//!
//! [`fixed_workload`] puts 3 events per round for [`ROUNDS`] rounds, rolls back a put every
//! fifth round (those ids must never appear), and takes 2–5 events in two of every three rounds.
//! With [`sweep_config`] (4 KiB segments, a checkpoint every 1500 bytes of log) it rotates
//! segments, writes checkpoints and deletes consumed segments many times. It records every
//! answer in a [`Ledger`], tagged with a position supplied by the caller (the storage operation
//! count), so the `states` layer can ask what was acknowledged at any prefix of the trace.

use super::check::{event, id_of, peek_all, Cause, Check, Ledger};
use super::encrypt::Encryption;
use file_channel::storage::DynStorage;
use file_channel::{ChannelConfig, FileChannel};

/// Rounds of the fixed workload.
pub const ROUNDS: u64 = 40;

/// Events put per round.
pub const PUTS_PER_ROUND: u64 = 3;

/// The channel configuration of the fixed workload: small segments, frequent checkpoints, no
/// prefill (so the operation trace is the engine's own I/O only), encryption off or on.
pub fn sweep_config(dir: &str, encryption: Encryption) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.segment_bytes_max = 4096;
    c.checkpoint_bytes = 1500;
    c.prefill_ahead_bytes = 0;
    c.minimum_required_space = 0;
    c.transaction_capacity = 1000;
    c.keep_alive_ms = 0;
    encryption.apply(c)
}

/// One answer the workload got, with the positions (operation counts) before the call and after
/// the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A put commit of these ids was acknowledged.
    PutAcked(Vec<u64>),
    /// A put commit of these ids failed.
    PutFailed(Vec<u64>),
    /// A take commit of these ids was acknowledged.
    TakeAcked(Vec<u64>),
    /// A take commit of these ids failed.
    TakeFailed(Vec<u64>),
}

/// An answer with the operation positions around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// Operation count when the call began.
    pub begin: u64,
    /// Operation count when the answer came.
    pub end: u64,
    /// The answer.
    pub answer: Answer,
}

/// Everything the workload was told.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Answers in the order they came.
    pub log: Vec<Logged>,
    /// Whether all rounds ran without an error.
    pub finished: bool,
}

impl Outcome {
    /// The ledger after every answer (a crash after the workload stopped).
    pub fn ledger(&self) -> Ledger {
        self.ledger_at(u64::MAX)
    }

    /// The ledger as of operation position `k`: answers that came by then count; calls begun
    /// by then but not answered are in doubt; later calls do not exist yet.
    pub fn ledger_at(&self, k: u64) -> Ledger {
        let mut l = Ledger::new();
        for e in &self.log {
            if e.begin > k {
                break;
            }
            let answered = e.end <= k;
            match (&e.answer, answered) {
                (Answer::PutAcked(ids), true) => l.put_acked(ids),
                (Answer::PutAcked(ids), false) => l.put_in_doubt(ids, Cause::PutInFlight),
                (Answer::PutFailed(ids), _) => l.put_in_doubt(ids, Cause::PutFsyncFailed),
                (Answer::TakeAcked(ids), true) => l.take_acked(ids),
                (Answer::TakeAcked(ids) | Answer::TakeFailed(ids), _) => l.take_in_flight(ids),
            }
        }
        l
    }

    /// Puts acknowledged.
    pub fn acked_puts(&self) -> usize {
        self.log
            .iter()
            .map(|e| match &e.answer {
                Answer::PutAcked(ids) => ids.len(),
                _ => 0,
            })
            .sum()
    }
}

/// Runs the fixed workload until it finishes or an operation fails. `position` reports the
/// storage's operation count. `variant` 0 is the sweep's workload; other variants shift the ids
/// (so body sizes and record layouts differ) and put 1–4 events per round.
pub fn fixed_workload(ch: &FileChannel, position: &dyn Fn() -> u64, variant: u64) -> Outcome {
    let mut out = Outcome::default();
    let mut next = 1 + variant * 7919;
    let per_round = if variant == 0 {
        PUTS_PER_ROUND
    } else {
        1 + variant % 4
    };
    for round in 0..ROUNDS {
        let ids: Vec<u64> = (next..next + per_round).collect();
        next += per_round;
        if round % 5 == 4 {
            // Rolled back: these ids are never committed.
            let mut tx = ch.transaction();
            for &id in &ids {
                let _ = tx.put(&event(id));
            }
            tx.rollback();
            continue;
        }
        let mut tx = ch.transaction();
        for &id in &ids {
            if tx.put(&event(id)).is_err() {
                return out;
            }
        }
        let begin = position();
        let r = tx.commit();
        let end = position();
        match r {
            Ok(()) => out.log.push(Logged {
                begin,
                end,
                answer: Answer::PutAcked(ids),
            }),
            Err(_) => {
                out.log.push(Logged {
                    begin,
                    end,
                    answer: Answer::PutFailed(ids),
                });
                return out;
            }
        }
        if round % 3 != 0 {
            let mut tx = ch.transaction();
            let mut got = Vec::new();
            for _ in 0..(2 + round % 4) {
                match tx.take() {
                    Ok(Some(e)) => got.push(id_of(&e).unwrap_or(u64::MAX)),
                    Ok(None) => break,
                    Err(_) => return out,
                }
            }
            let begin = position();
            let r = tx.commit();
            let end = position();
            let ok = r.is_ok();
            out.log.push(Logged {
                begin,
                end,
                answer: if ok {
                    Answer::TakeAcked(got)
                } else {
                    Answer::TakeFailed(got)
                },
            });
            if !ok {
                return out;
            }
        }
    }
    out.finished = true;
    out
}

/// Opens `cfg` on `storage`, reads every pending event back (rolling the take back), closes,
/// and checks the result against `ledger` (no record may fail to decrypt). `Err` if the
/// channel does not open or read.
pub fn recover_and_check(
    cfg: &ChannelConfig,
    storage: DynStorage,
    ledger: &Ledger,
) -> Result<Check, String> {
    let ch = FileChannel::open_with(cfg.clone(), storage)
        .map_err(|e| format!("invariant violation: reopen failed: {e}"))?;
    let (ids, damaged) = peek_all(&ch).map_err(|e| format!("take after recovery failed: {e}"))?;
    let lost = ch
        .metrics()
        .events_lost
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut check = ledger.check(&ids, damaged, lost);
    check.count_decrypt_failures(&ch);
    ch.close()
        .map_err(|e| format!("close after recovery failed: {e}"))?;
    Ok(check)
}
