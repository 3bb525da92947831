//! # file_channel_testkit — the machinery that tests Sluice's file channel
//!
//! Everything here exists to test the engine ([`file_channel`]) and is kept out of it, so that a
//! user of the engine sees the channel, not its crash harness, and the engine's normal
//! dependencies hold nothing only tests need:
//!
//! | module | job |
//! |---|---|
//! | [`sim_storage`] | [`SimStorage`]: an in-memory [`Storage`](file_channel::storage::Storage) with a live and a durable image of everything, crash images ([`CrashMode`]) and injected faults |
//! | [`harness`] | the crash-recovery harness behind `tools/crashtest`, the crash tests and the fuzz targets: workloads, the model, the recovery check |
//! | [`fuzzing`] | the fuzz target bodies, shared by `fuzz/` (cargo-fuzz) and the stable corpus replay |
//!
//! It only uses the engine's public API (`storage`, `format`, `segment`, `replay`, …), like any
//! other user of the engine. `docs/testing.md` describes the fault model and the layers.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod fuzzing;
pub mod harness;
pub mod sim_storage;

pub use sim_storage::{CrashMode, SimStorage};
