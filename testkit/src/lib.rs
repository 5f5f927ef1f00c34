//! Simulated rate-limited upstreams for ratewise's tests, examples and benchmarks.
//!
//! The simulator (virtual-time transport, loopback server, server-side limit algorithms, fault
//! plans and a side-effect ledger) lands with the pipeline; this crate re-exports the core's
//! manual clock so tests can already drive time by hand.

pub use ratewise_core::clock::ManualClock;
