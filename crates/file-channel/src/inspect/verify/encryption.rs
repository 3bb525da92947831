//! Verify's check of encrypted put records, alongside the walk: which keys the log's records
//! were sealed with, and, with keys given, whether every one of them authenticates.
//!
//! Without keys an encrypted record is checked like any other (structure and checksum, by the
//! walk), and its envelope's prefix is read, so the key of every record is known and a
//! malformed envelope is found. With keys every record is decrypted: a record whose checksum is
//! good but whose authentication fails was altered by someone who recomputed the checksum —
//! tampering, reported per record and apart from media damage (which the checksum catches and
//! [`super::Problem`] reports). A key that is missing or is another key under the same id is
//! reported once per segment and key, with the records it leaves unread.
//!
//! None of this is damage: `repair` never acts on it (a record that does not open is kept
//! byte for byte), and [`super::VerifyReport::is_corrupt`] does not count it.

use crate::encryption::{EnvelopeError, Keyring, OpenFailure};
use crate::inspect::encrypted::{sealed_with, Unsealer};
use crate::inspect::walk::PutSeen;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The records sealed with one key id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealedKey {
    /// The key id.
    pub key_id: String,
    /// Check values of the keys its records name (hex; more than one: two keys were used
    /// under this id).
    pub key_checks: Vec<String>,
    /// Segments holding such records.
    pub segments: Vec<u64>,
    /// Records.
    pub records: u64,
    /// Events in them.
    pub events: u64,
    /// Records that authenticated with the keys given.
    pub authenticated: u64,
}

/// What is wrong with an encrypted record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptionFindingKind {
    /// Good checksum, right key, authentication fails: altered by someone who recomputed the
    /// checksum.
    Tampered,
    /// The envelope does not parse although the checksum is good (written that way, or forged).
    Malformed(EnvelopeError),
    /// The key the records name is not among the keys given.
    MissingKey,
    /// A key of that id was given, but it is not the key the records were sealed with.
    WrongKey,
}

impl EncryptionFindingKind {
    /// A short machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::Malformed(_) => "malformed_envelope",
            Self::MissingKey => "missing_key",
            Self::WrongKey => "wrong_key",
        }
    }
}

impl fmt::Display for EncryptionFindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tampered => write!(
                f,
                "fails authentication although its checksum is good: tampered with, not media damage"
            ),
            Self::Malformed(e) => write!(f, "{e} although its checksum is good"),
            Self::MissingKey => write!(f, "its key is not among the keys given"),
            Self::WrongKey => write!(
                f,
                "the key given under its id is another key (its check value differs)"
            ),
        }
    }
}

/// An encrypted record (or, for a missing or wrong key, all of a segment's records under one
/// key) that does not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionFinding {
    /// The segment file.
    pub file: PathBuf,
    /// The segment.
    pub segment: u64,
    /// The record's offset (the first one's, for a missing or wrong key).
    pub offset: u64,
    /// Records concerned.
    pub records: u64,
    /// Events in them.
    pub events: u64,
    /// The key id they name (unknown for a malformed envelope).
    pub key_id: Option<String>,
    /// What is wrong.
    pub kind: EncryptionFindingKind,
    /// Whether the channel's open checks this segment's key (it may hold pending events): a
    /// missing or wrong key there keeps the channel from opening with these keys.
    pub needed_at_open: bool,
}

impl EncryptionFinding {
    /// Whether this is a problem: tampering and malformed envelopes always; a missing or wrong
    /// key when the open needs it (elsewhere the records are consumed and only await deletion).
    pub fn is_problem(&self) -> bool {
        match self.kind {
            EncryptionFindingKind::Tampered | EncryptionFindingKind::Malformed(_) => true,
            EncryptionFindingKind::MissingKey | EncryptionFindingKind::WrongKey => {
                self.needed_at_open
            }
        }
    }
}

/// What verify found about encrypted records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionReport {
    /// Whether keys were given (without, records are not authenticated).
    pub keys_given: bool,
    /// Encrypted put records met.
    pub records: u64,
    /// Records that authenticated.
    pub authenticated: u64,
    /// Per key id, in id order.
    pub keys: Vec<SealedKey>,
    /// Records that do not open, in log order.
    pub findings: Vec<EncryptionFinding>,
}

impl EncryptionReport {
    /// Whether any finding is a problem.
    pub fn has_problems(&self) -> bool {
        self.findings.iter().any(EncryptionFinding::is_problem)
    }

    /// Records not authenticated, for whatever reason (no keys given, a key problem,
    /// tampering).
    pub fn unauthenticated(&self) -> u64 {
        self.records - self.authenticated
    }
}

/// One key's figures while the walk runs.
#[derive(Default)]
struct KeyAcc {
    checks: BTreeSet<String>,
    segments: BTreeSet<u64>,
    records: u64,
    events: u64,
    authenticated: u64,
}

/// Collects the report while the walk runs.
pub(super) struct Collector {
    unsealer: Unsealer,
    keys_given: bool,
    records: u64,
    authenticated: u64,
    keys: BTreeMap<String, KeyAcc>,
    findings: Vec<EncryptionFinding>,
}

impl Collector {
    pub(super) fn new(keyring: Option<Arc<Keyring>>) -> Self {
        let unsealer = Unsealer::new(keyring);
        Self {
            keys_given: unsealer.has_keys(),
            unsealer,
            records: 0,
            authenticated: 0,
            keys: BTreeMap::new(),
            findings: Vec::new(),
        }
    }

    /// Looks at one put record the walk met.
    pub(super) fn visit(&mut self, seen: PutSeen<'_>) {
        let h = seen.header;
        if !h.is_encrypted() {
            return;
        }
        self.records += 1;
        let events = u64::from(h.event_count);
        let finding = |kind, key_id| EncryptionFinding {
            file: seen.path.to_path_buf(),
            segment: h.segment_id,
            offset: h.offset,
            records: 1,
            events,
            key_id,
            kind,
            needed_at_open: false,
        };
        let sealed = match sealed_with(seen.payload) {
            Ok(s) => s,
            Err(e) => {
                self.findings
                    .push(finding(EncryptionFindingKind::Malformed(e), None));
                return;
            }
        };
        let entry = self.keys.entry(sealed.key_id.clone()).or_default();
        entry.checks.insert(sealed.key_check);
        entry.segments.insert(h.segment_id);
        entry.records += 1;
        entry.events += events;
        if !self.keys_given {
            return;
        }
        let kind = match self.unsealer.open(seen.binding, h, seen.payload) {
            Ok(_) => {
                entry.authenticated += 1;
                self.authenticated += 1;
                return;
            }
            Err(OpenFailure::Tampered { .. }) => EncryptionFindingKind::Tampered,
            Err(OpenFailure::Envelope(e)) => EncryptionFindingKind::Malformed(e),
            Err(OpenFailure::WrongKey { .. }) => EncryptionFindingKind::WrongKey,
            Err(_) => EncryptionFindingKind::MissingKey,
        };
        let per_segment = matches!(
            kind,
            EncryptionFindingKind::MissingKey | EncryptionFindingKind::WrongKey
        );
        if per_segment {
            if let Some(f) = self.findings.iter_mut().rev().find(|f| {
                f.segment == h.segment_id
                    && f.kind == kind
                    && f.key_id.as_deref() == Some(&sealed.key_id)
            }) {
                f.records += 1;
                f.events += events;
                return;
            }
        }
        self.findings.push(finding(kind, Some(sealed.key_id)));
    }

    /// The report; `needed_at_open` are the segments whose key an open checks.
    pub(super) fn finish(mut self, needed_at_open: &BTreeSet<u64>) -> EncryptionReport {
        for f in &mut self.findings {
            f.needed_at_open = needed_at_open.contains(&f.segment);
        }
        EncryptionReport {
            keys_given: self.keys_given,
            records: self.records,
            authenticated: self.authenticated,
            keys: self
                .keys
                .into_iter()
                .map(|(key_id, k)| SealedKey {
                    key_id,
                    key_checks: k.checks.into_iter().collect(),
                    segments: k.segments.into_iter().collect(),
                    records: k.records,
                    events: k.events,
                    authenticated: k.authenticated,
                })
                .collect(),
            findings: self.findings,
        }
    }
}
