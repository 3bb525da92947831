//! Measures the AEAD crates considered for encryption at rest — `ring`, `aws-lc-rs` and
//! RustCrypto `aes-gcm` — on exactly what the engine does:
//!
//! - per put record: AES-256-GCM seal in place with a separate tag, and open in place, of a
//!   payload of 256 B, 4 KiB, 64 KiB or 1 MiB, authenticating the record header (52 bytes, as
//!   `RecordHeader::aad_bytes`), the nonce being the record's offset;
//! - per segment: deriving the record key by HKDF-SHA256 from (data key, salt, channel id,
//!   segment id) and building its key schedule (`derive::record_key` in the engine).
//!
//! It lives outside the main workspace so that the workspace build and CI never compile
//! `aws-lc-sys`. Run it with
//! `cargo run --release --manifest-path benches/aead-candidates/Cargo.toml` (optional
//! argument: the number of rounds, default 7). Every round measures every candidate once per
//! case, in a rotating order, so that drift of the (shared) machine spreads evenly; the table
//! shows medians over rounds, and each ratio to ring is the median of the per-round ratios.
//!
//! Before measuring, it checks that the three agree byte for byte (derived key, ciphertext,
//! tag) and that each rejects a flipped bit, so that all three are doing the same work. The
//! measuring loops check themselves too: records are sealed forward as a chain (each
//! ciphertext is the next plaintext) and opened backward with the recorded tags, so every open
//! must authenticate and the buffer must come back to where it started.

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

type AnyError = Box<dyn Error>;

/// Bytes of the record header the engine authenticates (the 56-byte header without its CRC).
const AAD_BYTES: usize = 52;
/// Payload sizes measured.
const PAYLOAD_SIZES: [usize; 4] = [256, 4 << 10, 64 << 10, 1 << 20];
/// Bytes sealed (and opened) per candidate, size and round.
const BYTES_PER_MEASUREMENT: usize = 64 << 20;
/// Record keys derived per candidate and round.
const KEYS_PER_MEASUREMENT: u64 = 50_000;
/// Rounds when none is given.
const DEFAULT_ROUNDS: usize = 7;

const TAG_BYTES: usize = 16;
const RECORD_KEY_LABEL: &[u8] = b"sluice record key v1";

/// What the engine needs from an AEAD crate.
trait Candidate {
    /// A record key with its key schedule.
    type Key;
    /// Its name in the table.
    const NAME: &'static str;
    /// HKDF-SHA256: the 32 record-key bytes for this segment (as `derive::record_key`).
    fn derive(data_key: &[u8; 32], salt: &[u8; 16], channel: u64, segment: u64) -> [u8; 32];
    /// The AES-256-GCM key schedule of `bytes`.
    fn schedule(bytes: &[u8; 32]) -> Self::Key;
    /// Encrypts `data` in place as the record at `offset`; returns the tag.
    fn seal(key: &Self::Key, offset: u64, aad: &[u8], data: &mut [u8]) -> [u8; TAG_BYTES];
    /// Decrypts `sealed` (ciphertext, then the tag) in place as the record at `offset`; false
    /// when it does not authenticate.
    fn open(key: &Self::Key, offset: u64, aad: &[u8], sealed: &mut [u8]) -> bool;
}

/// The nonce of the record at `offset`, as the engine builds it.
fn nonce_bytes(offset: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&offset.to_le_bytes());
    n
}

fn info_parts(channel: u64, segment: u64) -> ([u8; 8], [u8; 8]) {
    (channel.to_le_bytes(), segment.to_le_bytes())
}

struct Ring;

impl Candidate for Ring {
    type Key = ring::aead::LessSafeKey;
    const NAME: &'static str = "ring";

    fn derive(data_key: &[u8; 32], salt: &[u8; 16], channel: u64, segment: u64) -> [u8; 32] {
        use ring::hkdf::{Salt, HKDF_SHA256};
        let (ch, seg) = info_parts(channel, segment);
        let info = [RECORD_KEY_LABEL, &ch[..], &seg[..]];
        let mut out = [0u8; 32];
        Salt::new(HKDF_SHA256, salt)
            .extract(data_key)
            .expand(&info, &ring::aead::AES_256_GCM)
            .and_then(|okm| okm.fill(&mut out))
            .expect("HKDF-SHA256 gives 32 bytes");
        out
    }

    fn schedule(bytes: &[u8; 32]) -> Self::Key {
        use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte key"))
    }

    fn seal(key: &Self::Key, offset: u64, aad: &[u8], data: &mut [u8]) -> [u8; TAG_BYTES] {
        use ring::aead::{Aad, Nonce};
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes(offset)),
                Aad::from(aad),
                data,
            )
            .expect("payload within GCM's limit");
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn open(key: &Self::Key, offset: u64, aad: &[u8], sealed: &mut [u8]) -> bool {
        use ring::aead::{Aad, Nonce};
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce_bytes(offset)),
            Aad::from(aad),
            sealed,
        )
        .is_ok()
    }
}

struct AwsLc;

impl Candidate for AwsLc {
    type Key = aws_lc_rs::aead::LessSafeKey;
    const NAME: &'static str = "aws-lc-rs";

    fn derive(data_key: &[u8; 32], salt: &[u8; 16], channel: u64, segment: u64) -> [u8; 32] {
        use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
        let (ch, seg) = info_parts(channel, segment);
        let info = [RECORD_KEY_LABEL, &ch[..], &seg[..]];
        let mut out = [0u8; 32];
        Salt::new(HKDF_SHA256, salt)
            .extract(data_key)
            .expand(&info, &aws_lc_rs::aead::AES_256_GCM)
            .and_then(|okm| okm.fill(&mut out))
            .expect("HKDF-SHA256 gives 32 bytes");
        out
    }

    fn schedule(bytes: &[u8; 32]) -> Self::Key {
        use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte key"))
    }

    fn seal(key: &Self::Key, offset: u64, aad: &[u8], data: &mut [u8]) -> [u8; TAG_BYTES] {
        use aws_lc_rs::aead::{Aad, Nonce};
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes(offset)),
                Aad::from(aad),
                data,
            )
            .expect("payload within GCM's limit");
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn open(key: &Self::Key, offset: u64, aad: &[u8], sealed: &mut [u8]) -> bool {
        use aws_lc_rs::aead::{Aad, Nonce};
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce_bytes(offset)),
            Aad::from(aad),
            sealed,
        )
        .is_ok()
    }
}

struct RustCrypto;

impl Candidate for RustCrypto {
    type Key = aes_gcm::Aes256Gcm;
    const NAME: &'static str = "aes-gcm";

    fn derive(data_key: &[u8; 32], salt: &[u8; 16], channel: u64, segment: u64) -> [u8; 32] {
        let (ch, seg) = info_parts(channel, segment);
        let mut out = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), data_key)
            .expand_multi_info(&[RECORD_KEY_LABEL, &ch[..], &seg[..]], &mut out)
            .expect("HKDF-SHA256 gives 32 bytes");
        out
    }

    fn schedule(bytes: &[u8; 32]) -> Self::Key {
        use aes_gcm::KeyInit;
        aes_gcm::Aes256Gcm::new(&(*bytes).into())
    }

    fn seal(key: &Self::Key, offset: u64, aad: &[u8], data: &mut [u8]) -> [u8; TAG_BYTES] {
        use aes_gcm::AeadInOut;
        key.encrypt_inout_detached(&nonce_bytes(offset).into(), aad, data.into())
            .expect("payload within GCM's limit")
            .into()
    }

    fn open(key: &Self::Key, offset: u64, aad: &[u8], sealed: &mut [u8]) -> bool {
        use aes_gcm::AeadInOut;
        let Some(split) = sealed.len().checked_sub(TAG_BYTES) else {
            return false;
        };
        let (data, tag) = sealed.split_at_mut(split);
        let Ok(tag) = <[u8; TAG_BYTES]>::try_from(&*tag) else {
            return false;
        };
        key.decrypt_inout_detached(&nonce_bytes(offset).into(), aad, data.into(), &tag.into())
            .is_ok()
    }
}

/// Deterministic filler bytes (xorshift), so that runs are comparable.
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const DATA_KEY: [u8; 32] = [0x5a; 32];
const SALT: [u8; 16] = [0xa5; 16];
const CHANNEL: u64 = 0x1234_5678;

/// What one candidate produced on the reference inputs, for comparing the three.
#[derive(PartialEq, Eq, Debug)]
struct Reference {
    key: [u8; 32],
    sealed: Vec<Vec<u8>>,
}

/// Seals the reference payloads; checks that each opens back, and fails when a bit is flipped
/// in the ciphertext, the tag or the associated data.
fn reference<C: Candidate>(aad: &[u8]) -> Result<Reference, AnyError> {
    let bytes = C::derive(&DATA_KEY, &SALT, CHANNEL, 7);
    let key = C::schedule(&bytes);
    let mut sealed = Vec::new();
    for (i, &size) in PAYLOAD_SIZES.iter().enumerate() {
        let plain = filler(size, i as u64 + 1);
        let offset = 4096 * (i as u64 + 1);
        let mut buf = plain.clone();
        let tag = C::seal(&key, offset, aad, &mut buf);
        buf.extend_from_slice(&tag);
        for flip in [0, size - 1, size, size + TAG_BYTES - 1] {
            let mut bad = buf.clone();
            bad[flip] ^= 1;
            if C::open(&key, offset, aad, &mut bad) {
                return Err(format!("{}: opened with byte {flip} flipped", C::NAME).into());
            }
        }
        let mut bad_aad = aad.to_vec();
        bad_aad[0] ^= 1;
        if C::open(&key, offset, &bad_aad, &mut buf.clone()) {
            return Err(format!("{}: opened with other associated data", C::NAME).into());
        }
        let mut round_trip = buf.clone();
        if !C::open(&key, offset, aad, &mut round_trip) || round_trip[..size] != plain[..] {
            return Err(format!("{}: {size} B did not open back", C::NAME).into());
        }
        sealed.push(buf);
    }
    Ok(Reference { key: bytes, sealed })
}

/// Seconds to seal, then to open, `BYTES_PER_MEASUREMENT` in records of `size` bytes.
///
/// The seals form a chain (each output is the next input, the nonce advancing like a record
/// offset); the opens walk it back with the recorded tags, so each must authenticate and the
/// buffer must end as it began.
fn time_records<C: Candidate>(
    size: usize,
    aad: &[u8],
    tags: &mut Vec<[u8; TAG_BYTES]>,
) -> Result<(f64, f64), AnyError> {
    let key = C::schedule(&C::derive(&DATA_KEY, &SALT, CHANNEL, 1));
    let records = (BYTES_PER_MEASUREMENT / size).max(1);
    let start = filler(size, size as u64);
    let mut buf = start.clone();
    buf.resize(size + TAG_BYTES, 0);
    tags.clear();
    tags.reserve(records);
    let stride = size as u64 + 128;

    let t = Instant::now();
    for i in 0..records {
        let tag = C::seal(&key, i as u64 * stride, aad, &mut buf[..size]);
        tags.push(tag);
    }
    let seal_s = t.elapsed().as_secs_f64();
    black_box(&buf);

    let t = Instant::now();
    for i in (0..records).rev() {
        buf[size..].copy_from_slice(&tags[i]);
        if !C::open(&key, i as u64 * stride, aad, black_box(&mut buf[..])) {
            return Err(format!("{}: record {i} of {size} B did not open", C::NAME).into());
        }
    }
    let open_s = t.elapsed().as_secs_f64();
    if buf[..size] != start[..] {
        return Err(format!("{}: the chain of {size} B did not come back", C::NAME).into());
    }
    Ok((seal_s, open_s))
}

/// Nanoseconds per record key: HKDF derive plus key schedule, and key schedule alone.
fn time_setup<C: Candidate>() -> (f64, f64) {
    let t = Instant::now();
    for segment in 0..KEYS_PER_MEASUREMENT {
        let bytes = C::derive(&DATA_KEY, &SALT, CHANNEL, black_box(segment));
        black_box(C::schedule(&bytes));
    }
    let derive_ns = t.elapsed().as_nanos() as f64 / KEYS_PER_MEASUREMENT as f64;

    let mut bytes = [0u8; 32];
    let t = Instant::now();
    for segment in 0..KEYS_PER_MEASUREMENT {
        bytes[..8].copy_from_slice(&segment.to_le_bytes());
        black_box(C::schedule(black_box(&bytes)));
    }
    let schedule_ns = t.elapsed().as_nanos() as f64 / KEYS_PER_MEASUREMENT as f64;
    (derive_ns, schedule_ns)
}

/// Samples of one candidate, over rounds.
#[derive(Default)]
struct Samples {
    seal_gbps: Vec<Vec<f64>>,
    open_gbps: Vec<Vec<f64>>,
    setup_ns: Vec<f64>,
    schedule_ns: Vec<f64>,
}

impl Samples {
    fn new() -> Self {
        Self {
            seal_gbps: vec![Vec::new(); PAYLOAD_SIZES.len()],
            open_gbps: vec![Vec::new(); PAYLOAD_SIZES.len()],
            ..Self::default()
        }
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn measure_records<C: Candidate>(
    samples: &mut Samples,
    size_index: usize,
    aad: &[u8],
    tags: &mut Vec<[u8; TAG_BYTES]>,
) -> Result<(), AnyError> {
    let size = PAYLOAD_SIZES[size_index];
    let records = (BYTES_PER_MEASUREMENT / size).max(1);
    let (seal_s, open_s) = time_records::<C>(size, aad, tags)?;
    let bytes = (records * size) as f64;
    samples.seal_gbps[size_index].push(bytes / seal_s / 1e9);
    samples.open_gbps[size_index].push(bytes / open_s / 1e9);
    Ok(())
}

fn measure_setup<C: Candidate>(samples: &mut Samples) {
    let (setup, schedule) = time_setup::<C>();
    samples.setup_ns.push(setup);
    samples.schedule_ns.push(schedule);
}

/// CPU model and the flags that decide which AES-GCM code path runs.
fn cpu_summary() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).split(' ').collect())
        .unwrap_or_default();
    let wanted = [
        "aes",
        "pclmulqdq",
        "avx",
        "avx2",
        "vaes",
        "vpclmulqdq",
        "avx512f",
        "sha_ni",
    ];
    let present: Vec<String> = wanted
        .iter()
        .map(|w| format!("{w}{}", if flags.contains(w) { "+" } else { "-" }))
        .collect();
    format!("{model}; {}", present.join(" "))
}

/// Versions of the measured crates, from the committed lock file.
fn crate_versions() -> String {
    let lock = include_str!("../Cargo.lock");
    let wanted = [
        "ring",
        "aws-lc-rs",
        "aws-lc-sys",
        "aes-gcm",
        "aes",
        "ghash",
        "hkdf",
        "sha2",
    ];
    let mut found = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let (Some(n), Some(v)) = (name, line.strip_prefix("version = ")) {
            if wanted.contains(&n) {
                found.push(format!("{n} {}", v.trim_matches('"')));
            }
            name = None;
        }
    }
    found.join(", ")
}

fn human(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn main() -> Result<(), AnyError> {
    let rounds = match std::env::args().nth(1) {
        Some(a) => a
            .parse::<usize>()
            .map_err(|e| format!("rounds {a:?}: {e}"))?,
        None => DEFAULT_ROUNDS,
    }
    .max(1);
    println!("cpu: {}", cpu_summary());
    println!("crates: {}", crate_versions());

    let aad = filler(AAD_BYTES, 99);
    let r = reference::<Ring>(&aad)?;
    let a = reference::<AwsLc>(&aad)?;
    let c = reference::<RustCrypto>(&aad)?;
    if r != a || r != c {
        return Err("the candidates disagree on derived keys, ciphertexts or tags".into());
    }
    println!("check: the three derive the same key and seal to the same bytes; each rejects a flipped bit");

    const NAMES: [&str; 3] = [Ring::NAME, AwsLc::NAME, RustCrypto::NAME];
    let mut samples: Vec<Samples> = (0..3).map(|_| Samples::new()).collect();
    let mut tags = Vec::new();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        for k in 0..3 {
            let which = (k + round) % 3;
            let s = &mut samples[which];
            match which {
                0 => measure_setup::<Ring>(s),
                1 => measure_setup::<AwsLc>(s),
                _ => measure_setup::<RustCrypto>(s),
            }
        }
        for size_index in 0..PAYLOAD_SIZES.len() {
            for k in 0..3 {
                let which = (k + round) % 3;
                let s = &mut samples[which];
                match which {
                    0 => measure_records::<Ring>(s, size_index, &aad, &mut tags)?,
                    1 => measure_records::<AwsLc>(s, size_index, &aad, &mut tags)?,
                    _ => measure_records::<RustCrypto>(s, size_index, &aad, &mut tags)?,
                }
            }
        }
    }

    println!();
    println!(
        "medians of {rounds} interleaved rounds; {} MiB per case and round; AAD {AAD_BYTES} B; \
         x ring = median over rounds of the candidate's figure over ring's in that round (throughput: >1 is faster; setup: <1 is faster)",
        BYTES_PER_MEASUREMENT >> 20
    );
    println!();
    let mut header = String::from("| case |");
    let mut rule = String::from("| --- |");
    for (i, name) in NAMES.iter().enumerate() {
        header.push_str(&format!(" {name} |"));
        rule.push_str(" ---: |");
        if i > 0 {
            header.push_str(" x ring |");
            rule.push_str(" ---: |");
        }
    }
    println!("{header}\n{rule}");
    // A ratio is the median of the per-round ratios: each compares two measurements taken
    // moments apart, which cancels most of the drift of a shared machine.
    let row = |label: String, per_round: [&[f64]; 3], unit: &str, digits: usize| {
        let mut line = format!("| {label} |");
        for (i, v) in per_round.iter().enumerate() {
            line.push_str(&format!(" {:.digits$} {unit} |", median(v)));
            if i > 0 {
                let ratios: Vec<f64> = v.iter().zip(per_round[0]).map(|(c, r)| c / r).collect();
                line.push_str(&format!(" {:.2} |", median(&ratios)));
            }
        }
        println!("{line}");
    };
    for (i, &size) in PAYLOAD_SIZES.iter().enumerate() {
        let seal = [0, 1, 2].map(|w| &samples[w].seal_gbps[i][..]);
        row(format!("seal {}", human(size)), seal, "GB/s", 2);
    }
    for (i, &size) in PAYLOAD_SIZES.iter().enumerate() {
        let open = [0, 1, 2].map(|w| &samples[w].open_gbps[i][..]);
        row(format!("open {}", human(size)), open, "GB/s", 2);
    }
    let setup = [0, 1, 2].map(|w| &samples[w].setup_ns[..]);
    row("record key: HKDF + schedule".into(), setup, "ns", 0);
    let schedule = [0, 1, 2].map(|w| &samples[w].schedule_ns[..]);
    row("key schedule alone".into(), schedule, "ns", 0);
    Ok(())
}
