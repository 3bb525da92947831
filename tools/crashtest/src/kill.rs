//! The `kill` layer: a child process (`crashtest kill-child`) runs a real channel on a real
//! directory and reports every answer it gets on its stdout, one line each, flushed at once;
//! the parent SIGKILLs it after a random delay — sometimes within the first milliseconds, while
//! the channel is still replaying, and otherwise while puts, takes, rotations and checkpoints
//! (every 50 ms and every 32 KiB of log) are under way — and the next child, after replay,
//! reports what it recovered, which the parent checks against its ledger.
//!
//! Child lines: `recovered <events_lost> <damaged> <id>…` (after open, before any work),
//! `B <first> <n>` (a put commit of ids `first..first+n` begins), `P <first> <n>` (it was
//! acknowledged), `F <first> <n>` (it failed), `t <id>…` (a take commit begins), `T <id>…`
//! (acknowledged). A kill between `B` and `P` leaves the put in doubt; between `t` and `T`, the
//! take. Rolled-back puts print nothing, so their ids must never appear.
//!
//! Now and then the child commits from several producer threads at once (see
//! [`concurrent_puts`]); their `B`/`P` lines interleave, and every put that began and was
//! not answered is in doubt at the kill ([`Ledger::unanswered_puts_in_doubt`]).
//!
//! With encryption, the child seals every put record with the harness's test key (`--encrypt`).
//! With both modes the run is two phases on one directory, plain and then encrypted (see
//! [`parent`]).

use crate::layers::ModeRun;
use crate::Budget;
use anyhow::Context as _;
use file_channel::{ChannelConfig, FileChannel};
use file_channel_testkit::harness::check::{event, id_of, peek_all, Cause, Ledger, Tally};
use file_channel_testkit::harness::encrypt::Encryption;
use file_channel_testkit::harness::rng::Rng;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Ids each child may use: child `r` uses `r * IDS_PER_CHILD ..`.
const IDS_PER_CHILD: u64 = 100_000_000;

/// A child stops by itself after this long, should the parent fail to kill it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// Flags of the child.
#[derive(clap::Args, Debug)]
pub struct ChildArgs {
    /// Channel directory.
    #[arg(long)]
    dir: PathBuf,
    /// Seed of the child's workload.
    #[arg(long)]
    seed: u64,
    /// First event id the child may use.
    #[arg(long)]
    first_id: u64,
    /// Encrypt every put record (the harness's test key).
    #[arg(long)]
    encrypt: bool,
}

/// The channel configuration of the kill layer: small segments and frequent checkpoints, so
/// kills land in rotations, checkpoints and segment deletions; encryption off or on.
pub fn kill_config(dir: &Path, encryption: Encryption) -> ChannelConfig {
    let mut c = ChannelConfig::new(dir);
    c.segment_bytes_max = 64 << 10;
    c.checkpoint_bytes = 32 << 10;
    c.checkpoint_interval_ms = 50;
    c.prefill_ahead_bytes = 16 << 10;
    c.minimum_required_space = 0;
    c.transaction_capacity = 100_000;
    c.keep_alive_ms = 0;
    encryption.apply(c)
}

/// Writes one line to stdout with a single write under stdout's lock, so lines of concurrent
/// producers never mix (atomic on a pipe below 4 KiB; the reader drops a last line without its
/// newline, which a kill can cut).
fn line(s: &str) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(s.len() + 1);
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}

/// One put transaction of 1–8 new events, rolled back one time in ten, else committed between
/// a `B` and a `P` (or `F`) line.
fn put_transaction(ch: &FileChannel, next_id: &AtomicU64, rng: &mut Rng) -> anyhow::Result<()> {
    let n = rng.range(1, 8);
    let first = next_id.fetch_add(n, Relaxed);
    let mut tx = ch.transaction();
    for id in first..first + n {
        tx.put(&event(id)).context("put")?;
    }
    if rng.chance(1, 10) {
        tx.rollback();
        return Ok(());
    }
    line(&format!("B {first} {n}"))?;
    match tx.commit() {
        Ok(()) => line(&format!("P {first} {n}")),
        Err(e) => {
            line(&format!("F {first} {n}"))?;
            anyhow::bail!("put commit failed: {e}");
        }
    }
}

/// 2–4 producer threads committing 1–5 put transactions each at the same time, so kills land
/// inside group-commit batches (the writer waiting for committers, writing while it waits).
/// Nothing is taken meanwhile: every put commit begun here starts after every take commit
/// answered before, which is what the ledger's take-durability rule assumes.
fn concurrent_puts(ch: &FileChannel, next_id: &AtomicU64, rng: &mut Rng) -> anyhow::Result<()> {
    let seeds: Vec<u64> = (0..rng.range(2, 4)).map(|_| rng.next_u64()).collect();
    std::thread::scope(|scope| {
        let producers: Vec<_> = seeds
            .into_iter()
            .map(|seed| {
                scope.spawn(move || {
                    let mut rng = Rng::new(seed);
                    for _ in 0..rng.range(1, 5) {
                        put_transaction(ch, next_id, &mut rng)?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for p in producers {
            p.join()
                .map_err(|_| anyhow::anyhow!("a producer thread panicked"))??;
        }
        Ok(())
    })
}

fn join(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

/// The child: open, report what was recovered, then work until killed.
pub fn child(a: &ChildArgs) -> anyhow::Result<()> {
    let encryption = if a.encrypt {
        Encryption::On
    } else {
        Encryption::Off
    };
    let ch = FileChannel::open(kill_config(&a.dir, encryption)).context("open")?;
    let (ids, damaged) = peek_all(&ch).context("take after recovery")?;
    let lost = ch.open_report().events_lost;
    line(&format!("recovered {lost} {damaged} {}", join(&ids)))?;

    let mut rng = Rng::new(a.seed);
    let next_id = AtomicU64::new(a.first_id);
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        match rng.weighted(&[40, 45, 2, 8]) {
            0 => put_transaction(&ch, &next_id, &mut rng)?,
            3 => concurrent_puts(&ch, &next_id, &mut rng)?,
            1 => {
                // 1–30, 15.5 on average: more than the puts and bursts bring in per step
                // (about 4.8 events), so the queue stays short instead of growing over a run.
                let n = rng.range(1, 30);
                let mut tx = ch.transaction();
                let mut got = Vec::new();
                for _ in 0..n {
                    match tx.take().context("take")? {
                        Some(e) => got.push(id_of(&e).map_err(anyhow::Error::msg)?),
                        None => break,
                    }
                }
                if rng.chance(1, 10) {
                    tx.rollback();
                    continue;
                }
                line(&format!("t {}", join(&got)))?;
                tx.commit().context("take commit")?;
                line(&format!("T {}", join(&got)))?;
            }
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Ok(())
}

fn ids_of(words: &[&str]) -> anyhow::Result<Vec<u64>> {
    words
        .iter()
        .map(|w| w.parse::<u64>().context("bad id"))
        .collect()
}

fn range_of(words: &[&str]) -> anyhow::Result<Vec<u64>> {
    let first: u64 = words.first().context("missing first id")?.parse()?;
    let n: u64 = words.get(1).context("missing count")?.parse()?;
    Ok((first..first + n).collect())
}

/// What the parent learnt from one child.
#[derive(Default)]
struct Round {
    recovered_seen: bool,
}

/// Applies one child line to the ledger; a `recovered` line is checked.
fn apply_line(
    l: &str,
    ledger: &mut Ledger,
    pending_take: &mut Option<Vec<u64>>,
    tally: &mut Tally,
    round: &mut Round,
    round_no: u64,
) -> anyhow::Result<()> {
    let words: Vec<&str> = l.split_whitespace().collect();
    match words.first().copied() {
        Some("recovered") => {
            let lost: u64 = words.get(1).context("lost")?.parse()?;
            let damaged: u64 = words.get(2).context("damaged")?.parse()?;
            let ids = ids_of(&words[3.min(words.len())..])?;
            let c = ledger.check(&ids, damaged, lost);
            tally.add_check(&c);
            let failure =
                (!c.ok()).then(|| format!("after kill {round_no}: {}", c.violations.join("; ")));
            if let Some(f) = &failure {
                eprintln!("kill: {f}");
            }
            tally.finish_case(failure);
            ledger.reset_to(&ids);
            round.recovered_seen = true;
        }
        Some("B") => ledger.put_begun(&range_of(&words[1..])?),
        Some("P") => ledger.put_acked(&range_of(&words[1..])?),
        Some("F") => ledger.put_in_doubt(&range_of(&words[1..])?, Cause::PutFsyncFailed),
        Some("t") => *pending_take = Some(ids_of(&words[1..])?),
        Some("T") => {
            ledger.take_acked(&ids_of(&words[1..])?);
            *pending_take = None;
        }
        _ => anyhow::bail!("unexpected line from the child: {l:?}"),
    }
    Ok(())
}

/// The parent: spawn, kill, check, until the budget ends; then one last in-process recovery.
/// With several modes the budget is split into equal consecutive phases on the same directory,
/// one per mode in the order given: with both, the channel runs plain first and then turns
/// encryption on, so the encrypted phase also recovers plain events written before it.
pub fn parent(
    budget: &Budget,
    dir: Option<&Path>,
    modes: &[Encryption],
) -> anyhow::Result<Vec<ModeRun>> {
    let tmp;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("crashtest-kill-")
                .tempdir()?;
            tmp.path().join("chan")
        }
    };
    let exe = std::env::current_exe().context("cannot find the crashtest executable")?;
    let mut rng = Rng::new(budget.seed);
    let mut ledger = Ledger::new();
    let mut round_no = 0u64;
    let mut runs = Vec::new();
    let mut done = 0u64;
    for (phase, &mode) in modes.iter().enumerate() {
        let budget = budget.part(done, (modes.len() - phase) as u64);
        let mut tally = Tally::default();
        let mut kills = 0u64;
        let mut kills_before_recovery = 0u64;
        let mut kills_mid_checkpoint = 0u64;
        let mut lines_total = 0u64;
        while budget.more(tally.cases) {
            round_no += 1;
            let mut child = Command::new(&exe);
            child
                .arg("kill-child")
                .arg("--dir")
                .arg(&dir)
                .arg("--seed")
                .arg(rng.next_u64().to_string())
                .arg("--first-id")
                .arg((round_no * IDS_PER_CHILD).to_string());
            if mode == Encryption::On {
                child.arg("--encrypt");
            }
            let mut child = child
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("spawn the child")?;
            let stdout = child.stdout.take().context("child stdout")?;
            let (send, recv) = mpsc::channel::<String>();
            let reader = std::thread::spawn(move || {
                let mut r = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        // A line without its newline was cut by the kill: ignore it.
                        Ok(_) if buf.last() == Some(&b'\n') => {
                            let l = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                            if send.send(l).is_err() {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
            });
            // A third of the kills land in the first milliseconds: process start and replay.
            let delay_ms = if rng.chance(1, 3) {
                rng.below(25)
            } else {
                rng.range(25, 600)
            };
            std::thread::sleep(Duration::from_millis(delay_ms));
            child.kill().context("SIGKILL the child")?;
            let status = child.wait()?;
            kills += 1;
            // A checkpoint was being written at the kill.
            if dir.join("checkpoint.tmp").exists() {
                kills_mid_checkpoint += 1;
            }
            let _ = reader.join();
            let mut pending_take = None;
            let mut round = Round::default();
            for l in recv.try_iter() {
                lines_total += 1;
                apply_line(
                    &l,
                    &mut ledger,
                    &mut pending_take,
                    &mut tally,
                    &mut round,
                    round_no,
                )?;
            }
            ledger.unanswered_puts_in_doubt(Cause::PutInFlight);
            if let Some(ids) = pending_take {
                ledger.take_in_flight(&ids);
            }
            if !round.recovered_seen {
                kills_before_recovery += 1;
                if status.code().is_some() {
                    // It exited by itself before reporting: open failed.
                    tally.finish_case(Some(format!(
                        "kill {round_no} (encryption {mode}): the child exited with {status} before recovering"
                    )));
                }
            }
        }
        if phase + 1 == modes.len() {
            // Final recovery in this process, with the last phase's keys.
            let ch = FileChannel::open(kill_config(&dir, mode)).context("final open")?;
            let (ids, damaged) = peek_all(&ch).context("final take")?;
            let mut c = ledger.check(&ids, damaged, ch.open_report().events_lost);
            c.count_decrypt_failures(&ch);
            ch.close().context("final close")?;
            tally.add_check(&c);
            tally.finish_case(
                (!c.ok()).then(|| format!("final recovery: {}", c.violations.join("; "))),
            );
        }
        done += tally.cases;
        runs.push(ModeRun {
            encryption: mode,
            tally,
            extra: vec![
                ("kills", kills.to_string()),
                (
                    "kills_before_recovery_reported",
                    kills_before_recovery.to_string(),
                ),
                ("kills_mid_checkpoint", kills_mid_checkpoint.to_string()),
                ("child_lines", lines_total.to_string()),
            ],
        });
    }
    Ok(runs)
}
