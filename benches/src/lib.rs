//! Shared helpers for the Sluice benchmarks live in the bench targets themselves.
