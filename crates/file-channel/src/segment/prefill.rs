//! [`Prefill`]: a background thread that writes (and fsyncs) zeros ahead of the writer in the
//! active segment.
//!
//! A commit's `fdatasync` is cheapest when it overwrites blocks that are already allocated and
//! written: the file size does not change, so the file system journals nothing (measured here:
//! overwriting = 1.44× appending, fallocated-but-unwritten = 0.85×). The writer *claims* the
//! range it is about to write before writing it; the prefiller only ever writes at or beyond
//! the claimed end, under the same mutex, so the two never write the same bytes.
//!
//! The benefit is per fsync and the cost is per byte (every byte reaches the disk twice, once
//! as a zero), so prefill pays only while commits are small. The writer reports the bytes each
//! of its fsyncs covered ([`Prefill::note_sync`]); while their running mean is at or above
//! [`PREFILL_BYTES_PER_SYNC_MAX`] the prefiller stops going ahead, and commits append. Measured
//! on this kind of disk (`chanctl bench`, engine / raw append): 26 KB per commit 1.30 with
//! prefill against 0.96 without; 100 KB 0.89 against 0.89; 256 KB 0.68–0.75 against
//! 0.83–0.88; 1 MB 0.73–0.80 against 0.88–0.89 (`docs/design.md`, "Preallocation").
//!
//! The prefiller's `fdatasync` runs on the same file as the writer's, and the kernel reports a
//! write-back error to only one of them: a failed prefill sync may have dropped the writer's
//! dirty pages too. So it is fatal exactly like the writer's own (`on_fatal` poisons the
//! channel). A failed zero write with ENOSPC only stops prefilling; any other error is fatal.

use crate::error::PoisonCause;
use crate::storage::DynFile;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Zeros written per write call.
const CHUNK_BYTES: u64 = 256 << 10;
/// Zeros written between fsyncs.
const SYNC_EVERY_BYTES: u64 = 4 << 20;
/// Mean bytes per writer fsync at or above which prefilling stops: around 100 KB per commit,
/// prefill and appending cost the same here, and above it the zeros cost more bandwidth than
/// the cheaper fsyncs save.
pub const PREFILL_BYTES_PER_SYNC_MAX: u64 = 128 << 10;
/// Weight of the newest fsync in the running mean, as a shift (1/8).
const MEAN_SHIFT: u32 = 3;

#[derive(Debug, Default)]
struct State {
    file: Option<DynFile>,
    /// Everything below this is written (by the writer or with zeros).
    filled_to: u64,
    /// Fill up to here.
    want_to: u64,
    /// Stop at the segment's end.
    limit: u64,
    /// A write failed (no space, most likely); stop for this segment.
    failed: bool,
    stop: bool,
    /// Start of the zero chunk being written outside the lock, if any (`filled_to` is its end
    /// once it is done); the writer waits only if its own write would reach into it.
    in_flight_from: Option<u64>,
    /// Bumped by every switch, so a chunk finishing for an older segment changes nothing.
    generation: u64,
    /// Running mean of the bytes the writer's fsyncs covered (`None` before the first).
    bytes_per_sync_mean: Option<u64>,
}

impl State {
    /// Whether commits are small enough for prefill to pay (see the module doc).
    fn worth_it(&self) -> bool {
        self.bytes_per_sync_mean
            .is_none_or(|mean| mean < PREFILL_BYTES_PER_SYNC_MAX)
    }
}

/// Called with a reason when the prefiller hits an error that makes the file's durability
/// unknown.
pub type OnFatal = Box<dyn Fn(PoisonCause) + Send + Sync>;

/// Held across every `fdatasync` of segment data *and* the poisoning that a failure causes, by
/// the writer and the prefiller alike: a sync that succeeds after another one failed is only
/// known to be worthless if the failure has been recorded before the success is looked at.
pub type SyncGate = Arc<Mutex<()>>;

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Signalled when an in-flight chunk completes.
    chunk_done: Condvar,
}

impl Shared {
    /// The state, whether or not a thread panicked holding it (it stays consistent: every
    /// update is a plain assignment).
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Handle to the prefill thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Prefill {
    shared: Arc<Shared>,
    ahead: u64,
    thread: Option<JoinHandle<()>>,
}

impl Prefill {
    /// Starts the thread; `ahead` bytes are kept filled beyond the writer's position.
    pub fn start(
        ahead: u64,
        gate: SyncGate,
        on_fatal: OnFatal,
        fsyncs: Arc<std::sync::atomic::AtomicU64>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sluice-prefill".into())
                .spawn(move || run(&shared, &gate, &on_fatal, &fsyncs))?
        };
        Ok(Self {
            shared,
            ahead,
            thread: Some(thread),
        })
    }

    /// Switches to a new active segment whose data ends at `end`, bounded by `limit`.
    pub fn switch(&self, file: DynFile, end: u64, file_len: u64, limit: u64) {
        let mut st = self.shared.state();
        st.file = Some(file);
        st.filled_to = end.max(file_len);
        st.want_to = if st.worth_it() {
            (end + self.ahead).min(limit)
        } else {
            end
        };
        st.limit = limit;
        st.failed = false;
        st.generation += 1;
        self.shared.wake.notify_one();
    }

    /// Declares that the writer is about to write below `end`; waits while the prefiller is in
    /// the middle of writing zeros there.
    pub fn claim(&self, end: u64) {
        let mut st = self.shared.state();
        while st.in_flight_from.is_some_and(|from| end > from) {
            st = self
                .shared
                .chunk_done
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        st.filled_to = st.filled_to.max(end);
        if !st.worth_it() {
            return;
        }
        // Hysteresis: refill only when less than half the lead is left, and then by the whole
        // lead, so the file grows (and the prefiller fsyncs) once per ahead/2 bytes written,
        // not once per commit.
        if st.want_to.saturating_sub(end) >= self.ahead / 2 {
            return;
        }
        let want = (end + self.ahead).min(st.limit);
        if want > st.want_to {
            st.want_to = want;
            self.shared.wake.notify_one();
        }
    }

    /// Records that one of the writer's fsyncs covered `bytes`: the running mean decides
    /// whether the prefiller keeps going ahead.
    pub fn note_sync(&self, bytes: u64) {
        let mut st = self.shared.state();
        let was = st.worth_it();
        st.bytes_per_sync_mean = Some(match st.bytes_per_sync_mean {
            None => bytes,
            Some(mean) => mean - (mean >> MEAN_SHIFT) + (bytes >> MEAN_SHIFT),
        });
        if was != st.worth_it() {
            tracing::debug!(
                bytes_per_sync_mean = st.bytes_per_sync_mean,
                prefill = st.worth_it(),
                "prefill {} (mean bytes per fsync against {PREFILL_BYTES_PER_SYNC_MAX})",
                if st.worth_it() { "resumes" } else { "pauses" }
            );
        }
    }

    /// Whether the prefiller currently goes ahead of the writer.
    pub fn is_active(&self) -> bool {
        self.shared.state().worth_it()
    }
}

impl Drop for Prefill {
    fn drop(&mut self) {
        {
            let mut st = self.shared.state();
            st.stop = true;
            self.shared.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    shared: &Shared,
    gate: &SyncGate,
    on_fatal: &OnFatal,
    fsyncs: &std::sync::atomic::AtomicU64,
) {
    let zeros = vec![0u8; CHUNK_BYTES as usize];
    let mut unsynced = 0u64;
    let sync = |file: &DynFile| -> bool {
        let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
        fsyncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match file.sync_data() {
            Ok(()) => true,
            Err(e) => {
                on_fatal(PoisonCause::PrefillSync { error: (&e).into() });
                false
            }
        }
    };
    let mut st = shared.state();
    loop {
        if st.stop {
            return;
        }
        let work = st
            .file
            .clone()
            .filter(|_| !st.failed && st.filled_to < st.want_to);
        let Some(file) = work else {
            if unsynced > 0 {
                if let Some(file) = st.file.clone() {
                    drop(st);
                    unsynced = 0;
                    if !sync(&file) {
                        return;
                    }
                    st = shared.state();
                    continue;
                }
            }
            st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let at = st.filled_to;
        let n = (st.want_to - at).min(CHUNK_BYTES);
        let generation = st.generation;
        // Written outside the lock; a writer whose write would reach into [at, at + n) waits
        // for it in `claim`, and nothing below `at` is ever written here.
        st.in_flight_from = Some(at);
        drop(st);
        let result = file.write_at(&zeros[..n as usize], at);
        st = shared.state();
        st.in_flight_from = None;
        shared.chunk_done.notify_all();
        match result {
            Ok(()) => {
                if st.generation == generation {
                    st.filled_to = st.filled_to.max(at + n);
                }
                unsynced += n;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                tracing::warn!(offset = at, error = %e, "prefill stopped: no space");
                st.failed = true;
            }
            Err(e) => {
                drop(st);
                on_fatal(PoisonCause::PrefillWrite {
                    offset: at,
                    error: (&e).into(),
                });
                return;
            }
        }
        if unsynced >= SYNC_EVERY_BYTES {
            drop(st);
            unsynced = 0;
            if !sync(&file) {
                return;
            }
            st = shared.state();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StdStorage, Storage};
    use std::time::{Duration, Instant};

    const AHEAD: u64 = 1 << 20;
    const LIMIT: u64 = 8 << 20;

    fn started() -> (tempfile::TempDir, DynFile, Prefill) {
        let dir = tempfile::tempdir().expect("tmp");
        let file = StdStorage::new()
            .create(&dir.path().join("seg"))
            .expect("create");
        let fsyncs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let on_fatal: OnFatal = Box::new(|cause| panic!("prefill failed: {cause:?}"));
        let p = Prefill::start(AHEAD, SyncGate::default(), on_fatal, fsyncs).expect("start");
        (dir, file, p)
    }

    fn want_to(p: &Prefill) -> u64 {
        p.shared.state().want_to
    }

    fn wait_for_len(file: &DynFile, len: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if file.len().expect("len") >= len {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn small_commits_are_prefilled_ahead() {
        let (_dir, file, p) = started();
        for _ in 0..20 {
            p.note_sync(26 << 10);
        }
        assert!(p.is_active());
        p.switch(file.clone(), 0, 0, LIMIT);
        assert_eq!(want_to(&p), AHEAD);
        assert!(wait_for_len(&file, AHEAD), "zeros written ahead");
        // Past half the lead, a claim moves the target a whole lead further.
        p.claim(AHEAD / 2 + 1);
        assert_eq!(want_to(&p), AHEAD / 2 + 1 + AHEAD);
        assert!(wait_for_len(&file, AHEAD / 2 + 1 + AHEAD));
    }

    #[test]
    fn large_commits_stop_the_prefill_and_small_ones_bring_it_back() {
        let (_dir, file, p) = started();
        for _ in 0..20 {
            p.note_sync(1 << 20);
        }
        assert!(!p.is_active(), "1 MiB per fsync is above the bound");
        p.switch(file.clone(), 0, 0, LIMIT);
        assert_eq!(want_to(&p), 0, "nothing wanted ahead of the writer");
        p.claim(3 << 20);
        assert_eq!(want_to(&p), 0, "claims do not move the target");
        assert_eq!(file.len().expect("len"), 0, "no zero was written");
        // Commits shrink: the mean falls below the bound within a few dozen fsyncs.
        let mut syncs = 0;
        while !p.is_active() {
            p.note_sync(8 << 10);
            syncs += 1;
            assert!(syncs < 100, "the mean never fell");
        }
        p.claim(3 << 20);
        assert_eq!(want_to(&p), (3 << 20) + AHEAD);
        assert!(wait_for_len(&file, (3 << 20) + AHEAD), "prefill resumed");
    }

    #[test]
    fn the_mean_crosses_the_bound_both_ways() {
        let (_dir, _file, p) = started();
        p.note_sync(PREFILL_BYTES_PER_SYNC_MAX - 1);
        assert!(p.is_active());
        p.note_sync(PREFILL_BYTES_PER_SYNC_MAX * 16);
        assert!(
            !p.is_active(),
            "one large fsync moves the mean by an eighth"
        );
    }
}
