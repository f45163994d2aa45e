//! What vmux's integration tests (`crates/vmux/tests/it`), its benches and
//! the vector generator share, as one library instead of files included
//! by path: the blocking agent client, the memory sampler, the latency
//! statistics and the known-answer vectors. Test code only
//! (`publish = false`): a failed `unwrap` here is a failed test or bench.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_debug_implementations
)]

pub mod agent_client;
pub mod memory;
pub mod stats;
pub mod vectors;
