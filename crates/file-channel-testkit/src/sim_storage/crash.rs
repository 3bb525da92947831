//! Crash images: what a crash at this moment leaves on disk, per [`CrashMode`] — only synced
//! state, everything, a seeded-random prefix of the unsynced changes (per file and per
//! directory), a torn write with sector-sized holes, or garbage past the durable end of files.
//! The same seed and the same history always give the same image.

use super::state::{apply_data_op, apply_write, DataOp, Dir, Inode, State};
use super::SimStorage;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Domain separators so that files and directories draw from unrelated random streams.
const FILE_STREAM: u64 = 0x66_69_6c_65;
const DIR_STREAM: u64 = 0x64_69_72_21;
const GARBAGE_STREAM: u64 = 0x67_61_72_62;

/// What a crash keeps of the changes that were not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Only durable state survives: unsynced writes, truncations and directory entry changes
    /// are all lost.
    DropUnsynced,
    /// Everything in the live image survives, as after `kill -9` (the page cache survives).
    KeepAll,
    /// Per file, a seeded-random prefix (from none to all) of its unsynced writes and
    /// truncations persists, in order; per directory, a seeded-random prefix of its unsynced
    /// entry changes persists.
    KeepPrefix {
        /// Seed of the random choices.
        seed: u64,
    },
    /// Like [`CrashMode::KeepPrefix`], then the unsynced change right after the kept prefix, if
    /// it is a write, is torn: each `sector_bytes`-aligned sector it covers independently
    /// persists or not, so the file can have holes, not only a short tail.
    TornWrite {
        /// Seed of the random choices.
        seed: u64,
        /// Sector size of the simulated device (0 is treated as 1).
        sector_bytes: u64,
    },
    /// Like [`CrashMode::DropUnsynced`], but a file whose live image is longer than its durable
    /// image keeps the extra length, filled with seeded garbage bytes instead of being cut (as
    /// when the size was journaled but the data blocks were not written).
    GarbageTail {
        /// Seed of the garbage.
        seed: u64,
    },
}

/// splitmix64: tiny, fast and good enough to pick crash outcomes.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64, stream: u64, key: u64) -> Self {
        let mut mixer = SplitMix(seed ^ stream.rotate_left(32));
        let a = mixer.next_u64();
        SplitMix(a ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=n`.
    fn up_to(&mut self, n: usize) -> usize {
        (self.next_u64() % (n as u64).saturating_add(1)) as usize
    }
}

/// A stable key for a directory, independent of how its path was spelled.
fn dir_key(path: &Path) -> u64 {
    // FNV-1a over the components, so `a//b` and `a/b` agree as they do as map keys.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in path.components() {
        for &b in c.as_os_str().as_encoded_bytes().iter().chain(&[0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl State {
    /// The image a crash in `mode` leaves, as a fresh state.
    pub(super) fn crash_image(&self, mode: CrashMode) -> State {
        let mut next = State::new();
        next.capacity = self.capacity;
        next.next_ino = self.next_ino;

        let entry_seed = match mode {
            CrashMode::KeepPrefix { seed } | CrashMode::TornWrite { seed, .. } => Some(seed),
            _ => None,
        };
        for (path, d) in &self.dirs {
            let map = match mode {
                CrashMode::KeepAll => d.live.clone(),
                CrashMode::DropUnsynced | CrashMode::GarbageTail { .. } => d.durable.clone(),
                CrashMode::KeepPrefix { .. } | CrashMode::TornWrite { .. } => {
                    let seed = entry_seed.unwrap_or_default();
                    let kept =
                        SplitMix::new(seed, DIR_STREAM, dir_key(path)).up_to(d.pending.len());
                    let mut map = d.durable.clone();
                    for op in &d.pending[..kept] {
                        op.apply(&mut map);
                    }
                    map
                }
            };
            let map: BTreeMap<String, u64> = map
                .into_iter()
                .filter(|(_, ino)| self.inodes.contains_key(ino))
                .collect();
            next.dirs.insert(
                path.clone(),
                Dir {
                    live: map.clone(),
                    durable: map,
                    pending: Vec::new(),
                },
            );
        }

        let survivors: BTreeSet<u64> = next
            .dirs
            .values()
            .flat_map(|d| d.live.values().copied())
            .collect();
        for ino in survivors {
            let Some(inode) = self.inodes.get(&ino) else {
                continue;
            };
            let image = crash_contents(ino, inode, mode);
            next.inodes.insert(
                ino,
                Inode {
                    live: image.clone(),
                    durable: image,
                    pending: Vec::new(),
                    handles: 0,
                },
            );
        }
        next
    }
}

/// What a crash in `mode` leaves of the contents of inode `ino`.
fn crash_contents(ino: u64, inode: &Inode, mode: CrashMode) -> Vec<u8> {
    match mode {
        CrashMode::KeepAll => inode.live.clone(),
        CrashMode::DropUnsynced => inode.durable.clone(),
        CrashMode::GarbageTail { seed } => {
            let mut image = inode.durable.clone();
            if inode.live.len() > image.len() {
                let mut rng = SplitMix::new(seed, GARBAGE_STREAM, ino);
                let extra = inode.live.len() - image.len();
                image.reserve(extra);
                while image.len() < inode.live.len() {
                    let word = rng.next_u64().to_le_bytes();
                    let take = word.len().min(inode.live.len() - image.len());
                    image.extend_from_slice(&word[..take]);
                }
            }
            image
        }
        CrashMode::KeepPrefix { seed } => {
            let mut rng = SplitMix::new(seed, FILE_STREAM, ino);
            let kept = rng.up_to(inode.pending.len());
            let mut image = inode.durable.clone();
            for op in &inode.pending[..kept] {
                apply_data_op(&mut image, op);
            }
            image
        }
        CrashMode::TornWrite { seed, sector_bytes } => {
            let mut rng = SplitMix::new(seed, FILE_STREAM, ino);
            let kept = rng.up_to(inode.pending.len());
            let mut image = inode.durable.clone();
            for op in &inode.pending[..kept] {
                apply_data_op(&mut image, op);
            }
            if let Some(DataOp::Write { offset, data }) = inode.pending.get(kept) {
                let sector = sector_bytes.max(1);
                let end = offset.saturating_add(data.len() as u64);
                let mut pos = *offset;
                while pos < end {
                    let sector_end = (pos / sector).saturating_add(1).saturating_mul(sector);
                    let piece_end = sector_end.min(end);
                    if rng.next_u64() & 1 == 1 {
                        let from = (pos - offset) as usize;
                        let to = (piece_end - offset) as usize;
                        apply_write(&mut image, pos, &data[from..to]);
                    }
                    pos = piece_end;
                }
            }
            image
        }
    }
}

impl SimStorage {
    /// Returns a new, independent storage holding what a crash at this moment leaves on disk
    /// in `mode`: no locks held, no faults armed, the capacity limit carried over. This storage
    /// is dead afterwards (every operation fails), but can still be inspected and crashed again.
    pub fn crash(&self, mode: CrashMode) -> SimStorage {
        let mut st = self.state();
        let image = st.crash_image(mode);
        st.dead = true;
        st.crash_budget = None;
        SimStorage {
            shared: Arc::new(Mutex::new(image)),
        }
    }
}
