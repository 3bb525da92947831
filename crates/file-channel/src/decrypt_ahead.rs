//! [`Ahead`]: a thread that decrypts encrypted put records ahead of the reader, so that on a
//! machine with a spare core a consumer of an encrypted channel does not pay for AES-GCM on
//! its own thread.
//!
//! It is only an accelerator: the reader peeks at the header of its next record and asks the
//! thread for that record's plain payload ([`Ahead::take`]); on a hit it moves past the record
//! without reading its payload, on a miss it reads and decrypts the record itself and the
//! thread goes on from the next record. The thread reads the log with its own file handle, only
//! below the visible end (committed bytes, which never change while the channel is open), keeps
//! at most [`AHEAD_BYTES_MAX`] of plaintext, and gives up (parks until the reader restarts it)
//! at anything unusual: damage, a missing segment, a record it cannot open. It makes the
//! reader's checks for it — the record decodes at its place with a good CRC under the segment's
//! binding ([`record::decode`]), then authenticates — and a hit is matched on the record's place
//! and whole header (without the CRC), so only records the reader would have accepted, and only
//! authenticated plaintext, are handed over. Moving the CRC and the read of the stored bytes to
//! this thread is what makes a hit cheaper for the reader than a plain record.

use crate::encryption::Opener;
use crate::format::record::{
    self, Decoded, RecordBinding, RecordKind, SealPayload, AAD_HEADER_BYTES, RECORD_HEADER_BYTES,
    SEAL_PAYLOAD_BYTES,
};
use crate::format::segment_header::SEGMENT_HEADER_BYTES;
use crate::storage::DynFile;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Plaintext kept ahead of the reader, at most.
pub(crate) const AHEAD_BYTES_MAX: usize = 8 << 20;

/// Records smaller than this are left to the reader: for them the hand-over (a lock, a wake-up,
/// two reads) costs more than the AES-GCM it saves.
pub(crate) const AHEAD_RECORD_BYTES_MIN: usize = 1 << 10;

/// Buffers kept for reuse, at most.
const SPARE_BUFFERS_MAX: usize = 4;

/// Finds a segment's file, and what its records' checksums are bound to, by id.
pub(crate) type SegmentLookup = Box<dyn Fn(u64) -> Option<(DynFile, RecordBinding)> + Send>;

/// A position in the log: segment id, offset.
type Pos = (u64, u64);

/// A record decrypted ahead.
struct Ready {
    at: Pos,
    aad: [u8; AAD_HEADER_BYTES],
    /// The stored record, its payload decrypted in place: the plain bytes are `plain[range]`.
    plain: Vec<u8>,
    range: Range<usize>,
}

/// A plain payload handed to the reader: `buf[range]`.
pub(crate) struct Plain {
    buf: Vec<u8>,
    range: Range<usize>,
}

impl Plain {
    /// The plain bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

#[derive(Default)]
struct State {
    /// Where the thread is to (re)start reading, set by the reader.
    restart: Option<Pos>,
    /// Bumped at each restart: a result of an older one is dropped.
    generation: u64,
    /// The reader may read below this.
    visible: Pos,
    ready: VecDeque<Ready>,
    ready_bytes: usize,
    /// Buffers the reader is done with, for the thread to read into again (fresh ones would
    /// cost page faults on every record).
    spare: Vec<Vec<u8>>,
    /// The record the thread is decrypting now (of the current generation).
    working: Option<Pos>,
    /// The reader is past every record before this: the thread need not decrypt them.
    reader_at: Pos,
    /// The thread has no scanner (it gave up, or never started): only a restart moves it.
    parked: bool,
    stop: bool,
    /// Records the reader found decrypted, and records it had to decrypt itself.
    hits: u64,
    misses: u64,
    /// Hits the reader waited for (the thread was on that very record).
    waits: u64,
    /// A record the reader will read and open itself, which the thread skips: claimed when
    /// the reader finds the thread still on the record it wants (the thread is then the
    /// bottleneck, and the reader has time to spare), so the two share the work.
    claimed: Option<Pos>,
    /// Records the reader opened itself by claim.
    claims: u64,
    /// The thread waits on `wake` (nobody else needs waking: a notify is a system call).
    thread_sleeping: bool,
    /// The reader waits on `done`.
    reader_waiting: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the thread.
    wake: Condvar,
    /// Wakes a reader waiting for the record the thread is decrypting.
    done: Condvar,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The reader's handle on the decrypt-ahead thread.
pub(crate) struct Ahead {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Ahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ahead")
    }
}

impl Ahead {
    /// Starts the thread; it waits for the reader's first miss to know where to begin.
    pub(crate) fn start(
        opener: Opener,
        lookup: SegmentLookup,
        visible: Pos,
    ) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                visible,
                parked: true,
                ..State::default()
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = Worker {
            inner: inner.clone(),
            opener,
            lookup,
            cursor: None,
            generation: 0,
            spare: None,
        };
        let thread = std::thread::Builder::new()
            .name("sluice-decrypt-ahead".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            inner,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The writer published up to `visible`.
    pub(crate) fn set_visible(&self, visible: Pos) {
        let mut s = self.inner.lock();
        s.visible = visible;
        // A parked thread waits for a restart, not for data: waking it on every commit batch
        // would cost a context switch per put commit.
        let waiting_for_data = s.thread_sleeping && !s.parked && s.ready_bytes < AHEAD_BYTES_MAX;
        drop(s);
        if waiting_for_data {
            self.inner.wake.notify_one();
        }
    }

    /// The plain payload of the encrypted put record at `at` whose header is `aad`, if the
    /// thread has it (it checked the record's CRC and authenticated it: the reader need not
    /// read it); on a miss the thread restarts at `next`, the record after it. None also for
    /// a record the reader claimed: the thread skipped it, and goes on after it.
    pub(crate) fn take(&self, at: Pos, aad: &[u8; AAD_HEADER_BYTES], next: Pos) -> Option<Plain> {
        let mut s = self.inner.lock();
        if s.claimed == Some(at) {
            s.claimed = None;
            s.claims += 1;
            s.reader_at = next;
            return None;
        }
        // The thread is on this very record: waiting is cheaper than doing it twice, and the
        // reader does the next one itself meanwhile.
        if s.working == Some(at) {
            s.waits += 1;
            s.claimed = Some(next);
        }
        while s.working == Some(at) && !s.ready.iter().any(|r| r.at == at) {
            s.reader_waiting = true;
            s = self
                .inner
                .done
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
        s.reader_waiting = false;
        while let Some(front) = s.ready.front() {
            if front.at < at {
                let stale = s.ready.pop_front().map_or(0, |r| r.range.len());
                s.ready_bytes -= stale;
                continue;
            }
            if front.at == at && &front.aad == aad {
                let hit = s.ready.pop_front()?;
                s.ready_bytes -= hit.range.len();
                s.hits += 1;
                let sleeping = s.thread_sleeping;
                drop(s);
                if sleeping {
                    self.inner.wake.notify_one(); // there is room again
                }
                return Some(Plain {
                    buf: hit.plain,
                    range: hit.range,
                });
            }
            break;
        }
        s.misses += 1;
        s.reader_at = next;
        if !s.ready.is_empty() || s.parked {
            // Out of step (the thread is ahead of the reader elsewhere) or stopped: start over
            // after this record.
            s.ready.clear();
            s.ready_bytes = 0;
            s.restart = Some(next);
            s.generation += 1;
            s.claimed = None;
        }
        // Otherwise the thread is behind: it skips what the reader has read and catches up.
        let sleeping = s.thread_sleeping;
        drop(s);
        if sleeping {
            self.inner.wake.notify_one();
        }
        None
    }

    /// Gives a payload's buffer back for reuse.
    pub(crate) fn recycle(&self, plain: Plain) {
        let mut s = self.inner.lock();
        if s.spare.len() < SPARE_BUFFERS_MAX {
            s.spare.push(plain.buf);
        }
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&self) {
        {
            let mut s = self.inner.lock();
            if !s.stop {
                tracing::debug!(
                    hits = s.hits,
                    misses = s.misses,
                    waits = s.waits,
                    claims = s.claims,
                    "decrypt-ahead thread stops"
                );
            }
            s.stop = true;
            s.working = None;
        }
        self.inner.wake.notify_all();
        self.inner.done.notify_all();
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            // The thread itself may drop the last handle on the channel (a segment lookup
            // holds one for a moment): it ends on its own then, it cannot wait for itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    inner: Arc<Inner>,
    opener: Opener,
    lookup: SegmentLookup,
    cursor: Option<Cursor>,
    generation: u64,
    /// A buffer to read the next payload into.
    spare: Option<Vec<u8>>,
}

/// Where the thread reads: a segment's file and the next record's offset in it.
struct Cursor {
    file: DynFile,
    binding: RecordBinding,
    segment: u64,
    offset: u64,
}

impl Worker {
    fn cursor_at(&self, (segment, offset): Pos) -> Option<Cursor> {
        (self.lookup)(segment).map(|(file, binding)| Cursor {
            file,
            binding,
            segment,
            offset,
        })
    }

    fn run(mut self) {
        loop {
            let visible = {
                let mut s = self.inner.lock();
                loop {
                    if s.stop {
                        return;
                    }
                    if let Some(pos) = s.restart.take() {
                        self.generation = s.generation;
                        self.cursor = self.cursor_at(pos);
                    }
                    s.parked = self.cursor.is_none();
                    let runnable = self.cursor.as_ref().is_some_and(|c| {
                        (c.segment, c.offset) < s.visible && s.ready_bytes < AHEAD_BYTES_MAX
                    });
                    if runnable {
                        break s.visible;
                    }
                    s.thread_sleeping = true;
                    s = self
                        .inner
                        .wake
                        .wait(s)
                        .unwrap_or_else(PoisonError::into_inner);
                    s.thread_sleeping = false;
                }
            };
            if self.step(visible).is_none() {
                // Anything unusual (damage, the end of data, an I/O error, a record it cannot
                // open): the reader meets it itself, and restarts the thread after it.
                self.cursor = None;
            }
        }
    }

    /// Reads the record at the cursor (below `visible`); if it is an encrypted put, checks it
    /// as the reader would (place, length, CRC under the segment's binding) and decrypts it.
    fn step(&mut self, visible: Pos) -> Option<()> {
        let c = self.cursor.as_mut()?;
        let mut head = [0u8; RECORD_HEADER_BYTES];
        c.file.read_exact_at(&mut head, c.offset).ok()?;
        let header = record::peek_header(&head)?;
        if header.segment_id != c.segment || header.offset != c.offset {
            return None;
        }
        let end = c.offset + header.aligned_len();
        if c.segment == visible.0 && end > visible.1 {
            return None;
        }
        let at = (c.segment, c.offset);
        match header.kind {
            RecordKind::Put
                if header.is_encrypted() && header.payload_len() >= AHEAD_RECORD_BYTES_MIN =>
            {
                c.offset = end;
                {
                    let mut s = self.inner.lock();
                    if s.generation != self.generation || s.restart.is_some() {
                        return Some(()); // the reader moved on: start where it says
                    }
                    if at < s.reader_at {
                        return Some(()); // the reader has read it already
                    }
                    if s.claimed == Some(at) {
                        return Some(()); // the reader reads this one itself
                    }
                    s.working = Some(at);
                    self.spare = s.spare.pop();
                }
                // A reused buffer only grows: zeroing it per record would cost as much as a
                // fifth of this thread's time.
                let mut stored = self.spare.take().unwrap_or_default();
                let len = header.len as usize;
                if stored.len() < len {
                    stored.resize(len, 0);
                }
                let binding = c.binding;
                let opened = c
                    .file
                    .read_exact_at(&mut stored[..len], at.1)
                    .ok()
                    .filter(|()| {
                        matches!(
                            record::decode(&stored[..len], binding, at.0, at.1),
                            Ok(Decoded::Record(h, _)) if h == header
                        )
                    })
                    .and_then(|()| {
                        self.opener
                            .open_owned(
                                &header.aad_bytes(),
                                at.0,
                                at.1,
                                &mut stored[RECORD_HEADER_BYTES..len],
                            )
                            .ok()
                    });
                let mut s = self.inner.lock();
                s.working = None;
                let reader_waiting = s.reader_waiting;
                let ok = opened.is_some();
                if let Some(range) = opened {
                    if s.generation == self.generation {
                        s.ready_bytes += range.len();
                        s.ready.push_back(Ready {
                            at,
                            aad: header.aad_bytes(),
                            plain: stored,
                            range: range.start + RECORD_HEADER_BYTES
                                ..range.end + RECORD_HEADER_BYTES,
                        });
                    }
                }
                drop(s);
                if reader_waiting {
                    self.inner.done.notify_all();
                }
                ok.then_some(())
            }
            RecordKind::Seal => {
                let mut seal = [0u8; SEAL_PAYLOAD_BYTES];
                c.file
                    .read_exact_at(&mut seal, at.1 + RECORD_HEADER_BYTES as u64)
                    .ok()?;
                let next = SealPayload::decode(&seal).next_segment_id;
                self.cursor = self.cursor_at((next, SEGMENT_HEADER_BYTES as u64));
                self.cursor.as_ref().map(|_| ())
            }
            _ => {
                c.offset = end;
                Some(())
            }
        }
    }
}
