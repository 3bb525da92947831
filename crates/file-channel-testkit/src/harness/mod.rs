//! The crash-recovery harness: the workloads, the model and the checks behind the `crashtest`
//! tool (`tools/crashtest`), the fuzz targets ([`crate::fuzzing`]) and the crash tests, so that
//! all of them check the same invariants in the same way.
//!
//! | module | job |
//! |---|---|
//! | [`check`] | the [`check::Ledger`] of what a workload was told and the recovery check: acknowledged ⊆ recovered ∪ consumed-and-acknowledged, no phantoms, bodies intact, commit order, duplicates by cause |
//! | [`damage`] | layer `damage`: real channel directories damaged on purpose (segments deleted, truncated, wiped, swapped in from another channel; checkpoints deleted or garbled; everything garbage), every view (open, drain, replay, verify, repair) held to the loss ledger `reported lost = committed − recovered` |
//! | [`encrypt`] | encryption at rest in every layer: [`encrypt::Encryption`] off or on, and the fixed test key the "on" channels seal their records with |
//! | [`rng`] | the seeded random source every choice is drawn from |
//! | [`sim`] | layer `sim`: random operation sequences against the model on the simulated storage, crashes and faults as operations, shrinking |
//! | [`workload`] | the fixed workload (rotation, checkpoints, deletion) of `sweep` and `states` |
//! | [`sweep`] | layer `sweep`: a crash or an EIO at every operation index of the fixed workload |
//! | [`states`] | layer `states`: the operation trace, the crash states a persistence model allows, materialised into real directories and opened with the real engine |
//!
//! The `kill` layer (a child process killed with SIGKILL) lives in the tool, since it needs a
//! process; it uses [`check`] for its verdicts. `docs/testing.md` describes the fault model and
//! what each layer can and cannot find.

pub mod check;
pub mod damage;
pub mod encrypt;
pub mod rng;
pub mod sim;
pub mod states;
pub mod sweep;
pub mod workload;
