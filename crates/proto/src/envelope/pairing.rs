//! The four pairing envelopes exchanged on first contact.
//!
//! The signer commits to its nonce before it sees the initiator's, so neither
//! side can choose its randomness after seeing the other's and grind the
//! 6-digit code (docs/protocol.md, "Pairing").

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use super::limits::PAIRING_VALUE_LEN;
use crate::Result;

/// Signer → initiator: `BLAKE2s-256("vmux pairing commit v1" || h || nR)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairCommit {
    /// The 32-byte commitment to the signer's nonce `nR`.
    #[serde(with = "serde_bytes")]
    pub commitment: Vec<u8>,
}

/// Initiator → signer: the initiator's 32-byte random nonce `nI`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairNonce {
    /// `nI`, 32 bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
}

/// Signer → initiator: the signer's 32-byte nonce `nR`, opening the commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairReveal {
    /// `nR`, 32 bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
}

/// Signer → initiator: its person accepted the code. A rejection or timeout
/// is sent as an `error` envelope with `pairingInvalid` instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairResult {
    /// Whether the signer pinned the initiator.
    pub accepted: bool,
}

impl Check for PairCommit {
    fn check(&self) -> Result<()> {
        let n = PAIRING_VALUE_LEN;
        check::bytes("pairCommit.commitment", &self.commitment, n, n)
    }
}

impl Check for PairNonce {
    fn check(&self) -> Result<()> {
        let n = PAIRING_VALUE_LEN;
        check::bytes("pairNonce.nonce", &self.nonce, n, n)
    }
}

impl Check for PairReveal {
    fn check(&self) -> Result<()> {
        let n = PAIRING_VALUE_LEN;
        check::bytes("pairReveal.nonce", &self.nonce, n, n)
    }
}

impl Check for PairResult {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}
