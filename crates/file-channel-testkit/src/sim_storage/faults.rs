//! Injected faults: every mutating operation is counted and can be chosen to fail with `EIO`
//! ([`SimStorage::fail_op_at`]); syncs can fail with Linux's semantics
//! ([`SimStorage::fail_next_syncs`]); a capacity limit turns writes into short writes with
//! `ENOSPC`; the process can die after a number of operations
//! ([`SimStorage::crash_after_ops`]); bits can flip on the medium ([`SimStorage::flip_bit`]);
//! and every open of a file or directory can fail with a chosen errno, as in a process out of
//! file descriptors ([`SimStorage::fail_opens_with`]).

use super::state::{invalid_input, State};
use super::SimStorage;
use std::io;
use std::path::Path;

/// Whether [`SimStorage::fail_op_at`] chose the operation being run to fail.
pub(super) type Injected = bool;

impl State {
    /// Runs a mutating operation: counts it, fails it if the process is dead, tells it whether
    /// it was chosen by [`SimStorage::fail_op_at`], and counts a success against the crash
    /// budget.
    pub(super) fn mutating<T>(
        &mut self,
        f: impl FnOnce(&mut State, Injected) -> io::Result<T>,
    ) -> io::Result<T> {
        self.check_alive()?;
        let index = self.ops;
        self.ops += 1;
        let injected = self.failing_ops.remove(&index);
        let result = f(self, injected);
        if result.is_ok() {
            if let Some(left) = self.crash_budget.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.crash_budget = None;
                    self.dead = true;
                }
            }
        }
        result
    }

    /// Fails with the errno armed by [`SimStorage::fail_opens_with`], if any: the open of a file
    /// or directory fails before anything is touched or counted.
    pub(super) fn check_open(&self) -> io::Result<()> {
        match self.open_errno {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }

    /// Whether this sync must fail because of [`SimStorage::fail_next_syncs`].
    pub(super) fn take_sync_failure(&mut self) -> bool {
        if self.failing_syncs > 0 {
            self.failing_syncs -= 1;
            true
        } else {
            false
        }
    }

    /// How long the file `ino` may grow to under the capacity limit, wanting `want` bytes.
    pub(super) fn allowed_len(&self, ino: u64, want: u64) -> io::Result<u64> {
        let current = self.inode(ino)?.live.len() as u64;
        let Some(cap) = self.capacity else {
            return Ok(want);
        };
        if want <= current {
            return Ok(want);
        }
        let free = cap.saturating_sub(self.used_bytes());
        Ok(want.min(current.saturating_add(free)))
    }
}

impl SimStorage {
    /// Limits the total live bytes of all files. A write or `set_len` that would exceed it
    /// applies what fits (a short write) and fails with `ENOSPC`. `None` removes the limit.
    pub fn set_capacity_bytes(&self, cap: Option<u64>) {
        self.state().capacity = cap;
    }

    /// Overrides what [`Storage::available_space`](file_channel::storage::Storage::available_space) reports; `None` derives it from the capacity
    /// again.
    pub fn set_available_space(&self, bytes: Option<u64>) {
        self.state().available_override = bytes;
    }

    /// Makes the next `n` calls of `sync_data` or `sync_dir` fail with `EIO`, with Linux
    /// semantics: the changes they should have made durable are lost for durability (they stay
    /// in the live image) and a later sync succeeds without persisting them.
    pub fn fail_next_syncs(&self, n: u64) {
        self.state().failing_syncs = n;
    }

    /// While `errno` is `Some`, every [`create`](file_channel::storage::Storage::create),
    /// [`open`](file_channel::storage::Storage::open), [`lock`](file_channel::storage::Storage::lock)
    /// and the directory open of [`sync_dir`](file_channel::storage::Storage::sync_dir) fails
    /// with it (e.g. `libc::EMFILE`, `ENFILE`, `EACCES`) before touching anything, and is not
    /// counted as an operation; handles already open keep working. `None` clears the fault.
    pub fn fail_opens_with(&self, errno: Option<i32>) {
        self.state().open_errno = errno;
    }

    /// Makes the mutating operation with global index `index` (see
    /// [`SimStorage::op_count`]) fail with `EIO` instead of running; a sync chosen this way
    /// fails like one armed by [`SimStorage::fail_next_syncs`]. May be called repeatedly.
    pub fn fail_op_at(&self, index: u64) {
        self.state().failing_ops.insert(index);
    }

    /// Kills the simulated process after `n` more mutating operations succeed: from then on
    /// every operation on this storage and its files, reads included, fails with an error of
    /// kind [`io::ErrorKind::Other`]. `0` kills it now.
    pub fn crash_after_ops(&self, n: u64) {
        let mut st = self.state();
        if n == 0 {
            st.dead = true;
            st.crash_budget = None;
        } else {
            st.crash_budget = Some(n);
        }
    }

    /// Flips bit `bit` (0–7) of the byte at `offset` of the file at `path`, in both its live
    /// and durable images wherever they are long enough: media corruption.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        if bit > 7 {
            return Err(invalid_input(format!("bit {bit} is not in 0..=7")));
        }
        let mut st = self.state();
        let ino = st.lookup(path)?;
        let inode = st.inode_mut(ino)?;
        let mask = 1u8 << bit;
        let mut flipped = false;
        for image in [&mut inode.live, &mut inode.durable] {
            if let Some(byte) = usize::try_from(offset).ok().and_then(|i| image.get_mut(i)) {
                *byte ^= mask;
                flipped = true;
            }
        }
        if flipped {
            Ok(())
        } else {
            Err(invalid_input(format!(
                "offset {offset} is past the end of {}",
                path.display()
            )))
        }
    }
}
