//! vmux wire formats.
//!
//! Two protocols live here, both pure encode/decode with every length capped
//! before allocation, so they can be fuzzed on their own:
//! - [`agent`]: the ssh-agent protocol spoken on the agent's Unix socket.
//! - [`envelope`]: the CBOR envelopes carried inside the Noise link.

pub mod agent;
pub mod envelope;
mod error;

pub use error::{Error, Result};
