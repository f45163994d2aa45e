//! vmux wire formats.
//!
//! Two protocols live here, both pure encode/decode with every length capped
//! before allocation, so they can be fuzzed on their own:
//! - [`agent`]: the ssh-agent protocol spoken on the agent's Unix socket.
//! - [`envelope`]: the CBOR envelopes carried inside the Noise link.
//! - [`text`]: what text from a peer may hold, and how stored text is printed.

pub mod agent;
pub mod envelope;
mod error;
pub mod text;

pub use error::{Error, Result};
