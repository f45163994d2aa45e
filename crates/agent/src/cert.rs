//! The session certificate: an ephemeral P-256 key made in memory, signed
//! by the signer's CA for a few hours, so signatures with it are made here
//! without a round trip (docs/protocol.md §10).
//!
//! - [`ephemeral`]: the key itself (memory only, wiped on drop) and the
//!   check that a certificate is for it.
//! - [`state`]: when to offer it and when to ask, as a pure state machine.
//! - [`renew`]: asking the signer, the renewal timer, and local signing.

pub mod ephemeral;
pub mod renew;
pub mod state;

pub use ephemeral::Ephemeral;
pub use renew::{Certs, Issuer, Local, Reply};
pub use state::{Action, CertState};

/// The comment `ssh-add -L` shows for the certificate.
pub const COMMENT: &str = "vmux-session-cert";
/// Validity asked for by default: 8 hours.
pub const DEFAULT_VALIDITY_SECS: u64 = 28_800;

#[cfg(test)]
mod tests;
