//! [`TakeInbox`]: take records on their way to the writer.
//!
//! Nobody waits for a take record (losing one in a crash only redelivers its events), so a take
//! commit need not wake the writer. Waking a sleeping thread costs a few microseconds on these
//! machines — more than the rest of a small take commit — and a consumer that commits one
//! event at a time would pay it on nearly every commit, since the writer drains its queue and
//! sleeps again between two of them. Take commits therefore leave their records here: the first
//! one after the writer last drained the inbox pokes it ([`Poke::Linger`]), and the writer picks
//! up everything waiting after [`TAKE_LINGER_US`], or at once with the next batch it writes for
//! any other reason (a put commit, a sync, shutdown). So the log still orders each take record
//! before any put record committed after it: a put commit that is acknowledged durable makes
//! every earlier take commit durable too, as before. An inbox past [`TAKE_INBOX_BYTES_MAX`]
//! pokes the writer to drain it now ([`Poke::Now`]).

use crate::format::record::PendingRecord;
use std::sync::{Mutex, PoisonError};

/// How long the writer lets take records gather after the first one pokes it.
pub(crate) const TAKE_LINGER_US: u64 = 1_000;

/// Bytes of take records waiting past which the writer is asked to drain them at once.
pub(crate) const TAKE_INBOX_BYTES_MAX: usize = 1 << 20;

/// What a take commit must tell the writer after leaving its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Poke {
    /// Nothing: the writer was told already.
    None,
    /// The inbox was empty: drain it after the linger.
    Linger,
    /// The inbox is full: drain it now.
    Now,
}

#[derive(Debug, Default)]
struct Waiting {
    records: Vec<PendingRecord>,
    bytes: usize,
    /// The writer was poked since it last drained the inbox (and with `Now`, `urgent`).
    poked: bool,
    urgent: bool,
}

/// Take records waiting for the writer.
#[derive(Debug, Default)]
pub(crate) struct TakeInbox {
    waiting: Mutex<Waiting>,
}

impl TakeInbox {
    /// Leaves `record` for the writer; says whether and how to poke it.
    pub(crate) fn push(&self, record: PendingRecord) -> Poke {
        let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        w.bytes += record.bytes.len();
        w.records.push(record);
        if !w.poked {
            w.poked = true;
            Poke::Linger
        } else if w.bytes >= TAKE_INBOX_BYTES_MAX && !w.urgent {
            w.urgent = true;
            Poke::Now
        } else {
            Poke::None
        }
    }

    /// Moves every waiting record to the end of `out`, in commit order; the next push pokes
    /// the writer again.
    pub(crate) fn drain_into(&self, out: &mut Vec<PendingRecord>) {
        let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        out.append(&mut w.records);
        w.bytes = 0;
        w.poked = false;
        w.urgent = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::RecordKind;

    fn record(payload_bytes: usize) -> PendingRecord {
        let mut r = PendingRecord::new(RecordKind::Take, 1);
        r.bytes.resize(r.bytes.len() + payload_bytes, 0);
        r
    }

    #[test]
    fn the_first_record_pokes_once_a_full_inbox_pokes_now_and_a_drain_starts_over() {
        let inbox = TakeInbox::default();
        assert_eq!(inbox.push(record(10)), Poke::Linger);
        assert_eq!(inbox.push(record(10)), Poke::None);
        assert_eq!(inbox.push(record(TAKE_INBOX_BYTES_MAX)), Poke::Now);
        assert_eq!(inbox.push(record(10)), Poke::None);
        let mut out = Vec::new();
        inbox.drain_into(&mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(
            out[2].bytes.len(),
            out[0].bytes.len() + TAKE_INBOX_BYTES_MAX - 10
        );
        assert_eq!(inbox.push(record(10)), Poke::Linger);
        inbox.drain_into(&mut out);
        assert_eq!(out.len(), 5);
    }
}
