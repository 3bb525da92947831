//! The damage actions of the `damage` layer, drawn from the case's seed and applied to a closed
//! channel directory on the real file system: delete, truncate or wipe a segment (the oldest,
//! the newest or one in the middle), swap in a segment of another channel, delete or garble
//! checkpoints, or turn every file into garbage.
//!
//! Each applied action says what it did (file names, offsets) for the failure report, whether
//! it touched the oldest or newest segment (what decides whether a loss can be known without
//! the checkpoint, see [`super`]), and which bytes it wrote that the engine never wrote
//! ([`ForeignBytes`]): those must never disappear without a copy in `quarantine/`.

use crate::harness::rng::Rng;
use file_channel::format::checkpoint::parse_checkpoint_file_name;
use file_channel::format::segment_header::{parse_segment_file_name, segment_file_name};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which segment an action hits, chosen among the segments present when it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The segment with the lowest id.
    Oldest,
    /// A segment strictly between the oldest and the newest (skipped if there is none).
    Middle,
    /// The segment with the highest id.
    Newest,
}

/// What a wipe writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Random bytes.
    Garbage,
    /// Zeros.
    Zeros,
}

/// Where another channel's segment goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapAs {
    /// It replaces the newest segment (same name).
    ReplaceNewest,
    /// It is added under the name of a segment after the newest.
    AfterNewest,
    /// It replaces a middle segment (skipped if there is none).
    ReplaceMiddle,
}

/// What happens to the checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointDamage {
    /// The newest checkpoint file is deleted.
    DeleteNewest,
    /// Every checkpoint file is deleted.
    DeleteAll,
    /// The newest checkpoint file gets garbage over a random range (or all of it).
    GarbleNewest,
    /// Every checkpoint file gets garbage over a random range (or all of it).
    GarbleAll,
}

/// One damage action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Delete a segment file.
    DeleteSegment(Which),
    /// Cut a segment file at a random offset below its length.
    TruncateSegment(Which),
    /// Overwrite a segment: all of it (`whole`) or a random range of up to 2 KiB.
    WipeSegment {
        /// The segment.
        which: Which,
        /// All of the file, or a random range.
        whole: bool,
        /// What is written.
        fill: Fill,
    },
    /// Put a segment of another channel (built the same way) in place.
    SwapForeign(SwapAs),
    /// Delete or garble checkpoints.
    Checkpoints(CheckpointDamage),
    /// Overwrite every file of the directory (segments, checkpoints, `channel.meta`) with
    /// random bytes of the same length.
    AllGarbage,
}

impl Action {
    /// Whether the action needs the foreign channel.
    pub fn needs_foreign(&self) -> bool {
        matches!(self, Action::SwapForeign(_))
    }
}

/// Draws 1–3 actions (or, one case in 25, [`Action::AllGarbage`] alone).
pub fn gen_actions(rng: &mut Rng) -> Vec<Action> {
    if rng.chance(1, 25) {
        return vec![Action::AllGarbage];
    }
    let n = rng.weighted(&[0, 6, 3, 1]);
    (0..n).map(|_| gen_action(rng)).collect()
}

fn gen_which(rng: &mut Rng) -> Which {
    [Which::Oldest, Which::Middle, Which::Newest][rng.weighted(&[1, 2, 2])]
}

fn gen_action(rng: &mut Rng) -> Action {
    match rng.weighted(&[3, 3, 4, 2, 3]) {
        0 => Action::DeleteSegment(gen_which(rng)),
        1 => Action::TruncateSegment(gen_which(rng)),
        2 => Action::WipeSegment {
            which: gen_which(rng),
            whole: rng.chance(1, 2),
            fill: if rng.chance(2, 3) {
                Fill::Garbage
            } else {
                Fill::Zeros
            },
        },
        3 => Action::SwapForeign(
            [
                SwapAs::ReplaceNewest,
                SwapAs::AfterNewest,
                SwapAs::ReplaceMiddle,
            ][rng.below(3) as usize],
        ),
        _ => Action::Checkpoints(
            [
                CheckpointDamage::DeleteNewest,
                CheckpointDamage::DeleteAll,
                CheckpointDamage::GarbleNewest,
                CheckpointDamage::GarbleAll,
            ][rng.below(4) as usize],
        ),
    }
}

/// Byte ranges the harness wrote into files, by file: bytes the engine never wrote.
#[derive(Clone, Debug, Default)]
pub struct ForeignBytes {
    /// Half-open ranges by file.
    pub ranges: BTreeMap<PathBuf, Vec<(u64, u64)>>,
}

impl ForeignBytes {
    fn add(&mut self, path: &Path, start: u64, end: u64) {
        if end > start {
            self.ranges
                .entry(path.to_path_buf())
                .or_default()
                .push((start, end));
        }
    }

    fn forget(&mut self, path: &Path) {
        self.ranges.remove(path);
    }

    fn clip(&mut self, path: &Path, len: u64) {
        if let Some(r) = self.ranges.get_mut(path) {
            r.retain(|&(s, _)| s < len);
            for (_, e) in r.iter_mut() {
                *e = (*e).min(len);
            }
        }
    }
}

/// What applying one action did.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The action.
    pub action: Action,
    /// What it did, with file names and offsets (or why it was skipped).
    pub text: String,
    /// Whether it changed the oldest or the newest segment present when it was applied.
    pub hit_end_segment: bool,
    /// Whether it changed nothing (no such segment or checkpoint).
    pub skipped: bool,
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Segment files of `dir`, by id.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, String> {
    let mut v = Vec::new();
    for (name, path) in files(dir)? {
        if let Some(id) = parse_segment_file_name(&name) {
            v.push((id, path));
        }
    }
    v.sort();
    Ok(v)
}

/// Checkpoint files of `dir`, newest generation first.
pub fn checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>, String> {
    let mut v = Vec::new();
    for (name, path) in files(dir)? {
        if let Some(generation) = parse_checkpoint_file_name(&name) {
            v.push((generation, path));
        }
    }
    v.sort_by(|a, b| b.cmp(a));
    Ok(v)
}

/// Regular files directly in `dir`, by name.
fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut v = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("list {}: {e}", dir.display()))?;
        let path = entry.path();
        if path.is_file() {
            v.push((entry.file_name().to_string_lossy().into_owned(), path));
        }
    }
    v.sort();
    Ok(v)
}

fn name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn file_len(p: &Path) -> Result<u64, String> {
    std::fs::metadata(p)
        .map(|m| m.len())
        .map_err(|e| format!("stat {}: {e}", p.display()))
}

fn garbage(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}

fn overwrite(p: &Path, at: u64, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .map_err(|e| format!("open {} to damage it: {e}", p.display()))?;
    f.write_all_at(bytes, at)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("write {} to damage it: {e}", p.display()))
}

/// Picks the segment `which` names among `segs`; `None` if there is none (no segment, or no
/// middle one). The flag says whether it is the oldest or the newest.
fn pick(segs: &[(u64, PathBuf)], which: Which, rng: &mut Rng) -> Option<(u64, PathBuf, bool)> {
    let n = segs.len();
    let i = match which {
        _ if n == 0 => return None,
        Which::Oldest => 0,
        Which::Newest => n - 1,
        Which::Middle if n < 3 => return None,
        Which::Middle => 1 + rng.below(n as u64 - 2) as usize,
    };
    let (id, path) = segs[i].clone();
    Some((id, path, i == 0 || i == n - 1))
}

fn which_name(w: Which) -> &'static str {
    match w {
        Which::Oldest => "oldest",
        Which::Middle => "middle",
        Which::Newest => "newest",
    }
}

/// Applies `action` to the channel directory `dir`. `foreign_dir` is the other channel (needed
/// by [`Action::SwapForeign`]). Bytes the harness writes are added to `foreign`.
pub fn apply(
    action: Action,
    dir: &Path,
    foreign_dir: Option<&Path>,
    rng: &mut Rng,
    foreign: &mut ForeignBytes,
) -> Result<Applied, String> {
    let segs = segments(dir)?;
    let mut out = Applied {
        action,
        text: String::new(),
        hit_end_segment: false,
        skipped: false,
    };
    let skip = |mut out: Applied, why: String| {
        out.skipped = true;
        out.text = why;
        Ok(out)
    };
    match action {
        Action::DeleteSegment(which) => {
            let Some((id, path, end)) = pick(&segs, which, rng) else {
                return skip(
                    out,
                    format!("delete {} segment: none, skipped", which_name(which)),
                );
            };
            std::fs::remove_file(&path).map_err(|e| format!("delete {}: {e}", path.display()))?;
            foreign.forget(&path);
            out.hit_end_segment = end;
            out.text = format!(
                "delete {} segment {} (id {id})",
                which_name(which),
                name(&path)
            );
        }
        Action::TruncateSegment(which) => {
            let Some((id, path, end)) = pick(&segs, which, rng) else {
                return skip(
                    out,
                    format!("truncate {} segment: none, skipped", which_name(which)),
                );
            };
            let len = file_len(&path)?;
            let at = rng.below(len);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(at))
                .map_err(|e| format!("truncate {}: {e}", path.display()))?;
            foreign.clip(&path, at);
            out.hit_end_segment = end;
            out.text = format!(
                "truncate {} segment {} (id {id}) from {len} to {at} bytes",
                which_name(which),
                name(&path)
            );
        }
        Action::WipeSegment { which, whole, fill } => {
            let Some((id, path, end)) = pick(&segs, which, rng) else {
                return skip(
                    out,
                    format!("wipe {} segment: none, skipped", which_name(which)),
                );
            };
            let len = file_len(&path)?;
            let (start, n) = if whole || len == 0 {
                (0, len)
            } else {
                let start = rng.below(len);
                (start, rng.range(1, (len - start).min(2048)))
            };
            let bytes = match fill {
                Fill::Garbage => garbage(rng, n as usize),
                Fill::Zeros => vec![0; n as usize],
            };
            overwrite(&path, start, &bytes)?;
            if fill == Fill::Garbage {
                foreign.add(&path, start, start + n);
            }
            out.hit_end_segment = end;
            out.text = format!(
                "wipe {} segment {} (id {id}) bytes {start}..{} with {}",
                which_name(which),
                name(&path),
                start + n,
                if fill == Fill::Garbage {
                    "garbage"
                } else {
                    "zeros"
                }
            );
        }
        Action::SwapForeign(swap) => {
            let Some(fdir) = foreign_dir else {
                return Err("a foreign segment swap needs the foreign channel".into());
            };
            let fsegs = segments(fdir)?;
            if fsegs.is_empty() {
                return skip(
                    out,
                    "swap in a foreign segment: the foreign channel has none, skipped".into(),
                );
            }
            let (target, end, how) = match swap {
                SwapAs::ReplaceNewest => match pick(&segs, Which::Newest, rng) {
                    Some((_, p, _)) => (p, true, "in place of the newest segment"),
                    None => {
                        return skip(
                            out,
                            "swap in place of the newest segment: none, skipped".into(),
                        )
                    }
                },
                SwapAs::ReplaceMiddle => match pick(&segs, Which::Middle, rng) {
                    Some((_, p, end)) => (p, end, "in place of a middle segment"),
                    None => {
                        return skip(
                            out,
                            "swap in place of a middle segment: none, skipped".into(),
                        )
                    }
                },
                SwapAs::AfterNewest => {
                    let next = segs.last().map_or(1, |(id, _)| id + 1);
                    (
                        dir.join(segment_file_name(next)),
                        false,
                        "as a new newest segment",
                    )
                }
            };
            // The foreign segment of the same id if there is one (its header then agrees with
            // the file name, and only the channel id tells it apart), else any.
            let target_id = target
                .file_name()
                .and_then(|n| parse_segment_file_name(&n.to_string_lossy()));
            let (fid, fpath) = match fsegs.iter().find(|(id, _)| Some(*id) == target_id) {
                Some(same) => same.clone(),
                None => fsegs[rng.below(fsegs.len() as u64) as usize].clone(),
            };
            let bytes =
                std::fs::read(&fpath).map_err(|e| format!("read {}: {e}", fpath.display()))?;
            std::fs::write(&target, &bytes)
                .and_then(|()| std::fs::File::open(&target)?.sync_all())
                .map_err(|e| format!("write {}: {e}", target.display()))?;
            foreign.forget(&target);
            foreign.add(&target, 0, bytes.len() as u64);
            out.hit_end_segment = end;
            out.text = format!(
                "swap in foreign segment {} (id {fid}, {} bytes) {how}: {}",
                name(&fpath),
                bytes.len(),
                name(&target)
            );
        }
        Action::Checkpoints(what) => {
            let cps = checkpoints(dir)?;
            if cps.is_empty() {
                return skip(out, format!("{what:?}: no checkpoint, skipped"));
            }
            let targets: Vec<PathBuf> = match what {
                CheckpointDamage::DeleteNewest | CheckpointDamage::GarbleNewest => {
                    vec![cps[0].1.clone()]
                }
                _ => cps.into_iter().map(|(_, p)| p).collect(),
            };
            let mut done = Vec::new();
            for p in &targets {
                match what {
                    CheckpointDamage::DeleteNewest | CheckpointDamage::DeleteAll => {
                        std::fs::remove_file(p)
                            .map_err(|e| format!("delete {}: {e}", p.display()))?;
                        foreign.forget(p);
                        done.push(format!("delete {}", name(p)));
                    }
                    CheckpointDamage::GarbleNewest | CheckpointDamage::GarbleAll => {
                        let len = file_len(p)?;
                        let (start, n) = if len == 0 || rng.chance(1, 3) {
                            (0, len)
                        } else {
                            let start = rng.below(len);
                            (start, rng.range(1, len - start))
                        };
                        overwrite(p, start, &garbage(rng, n as usize))?;
                        foreign.add(p, start, start + n);
                        done.push(format!("garble {} bytes {start}..{}", name(p), start + n));
                    }
                }
            }
            out.text = done.join(", ");
        }
        Action::AllGarbage => {
            let mut n_files = 0;
            for (fname, p) in files(dir)? {
                if fname == "in_use.lock" {
                    continue;
                }
                let len = file_len(&p)?;
                overwrite(&p, 0, &garbage(rng, len as usize))?;
                foreign.forget(&p);
                foreign.add(&p, 0, len);
                n_files += 1;
            }
            out.hit_end_segment = !segs.is_empty();
            out.text = format!("every file ({n_files}) overwritten with garbage");
        }
    }
    Ok(out)
}
