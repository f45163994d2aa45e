//! The first-contact pairing code.
//!
//! A six-digit code is only 20 bits. Derived from the handshake hash alone it
//! could be ground: a relay in the middle picks its keys after seeing one
//! side's, trying a million until both people see the same code. So, as in
//! Bluetooth numeric comparison, the signer first commits to a random nonce,
//! the initiator sends its own, and only then does the signer reveal its
//! nonce. Neither side's final randomness can be chosen after seeing the
//! other's, and each attempt a relay makes matches with probability 10^-6.

use blake2::{Blake2s256, Digest};
use core::fmt;
use subtle::ConstantTimeEq;

use crate::noise::KEY_LEN;
use crate::{Error, Result};

const COMMIT_LABEL: &[u8] = b"vmux pairing commit v1";
const CODE_LABEL: &[u8] = b"vmux pairing code v1";

/// A 32-byte pairing nonce.
pub type Nonce = [u8; KEY_LEN];

/// A fresh random nonce.
pub fn nonce() -> Result<Nonce> {
    Ok(*crate::noise::random_array()?)
}

/// The signer's commitment to its nonce, bound to this session's handshake.
pub fn commitment(handshake_hash: &[u8; KEY_LEN], signer_nonce: &Nonce) -> [u8; KEY_LEN] {
    let mut h = Blake2s256::new();
    h.update(COMMIT_LABEL);
    h.update(handshake_hash);
    h.update(signer_nonce);
    h.finalize().into()
}

/// Checks the revealed nonce against the earlier commitment.
pub fn verify_commitment(
    handshake_hash: &[u8; KEY_LEN],
    signer_nonce: &Nonce,
    commitment_received: &[u8; KEY_LEN],
) -> Result<()> {
    let expected = commitment(handshake_hash, signer_nonce);
    if bool::from(expected.ct_eq(commitment_received)) {
        Ok(())
    } else {
        Err(Error::CommitmentMismatch)
    }
}

/// The code both people compare.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PairingCode(u32);

impl PairingCode {
    /// Derives the code from the handshake hash and both nonces.
    pub fn derive(
        handshake_hash: &[u8; KEY_LEN],
        initiator_nonce: &Nonce,
        signer_nonce: &Nonce,
    ) -> Self {
        let mut h = Blake2s256::new();
        h.update(CODE_LABEL);
        h.update(handshake_hash);
        h.update(initiator_nonce);
        h.update(signer_nonce);
        let digest: [u8; KEY_LEN] = h.finalize().into();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // 2^64 mod 10^6 is tiny next to 2^64: the bias is below 2^-44.
        Self((u64::from_be_bytes(first) % 1_000_000) as u32)
    }

    /// The code as a number below one million.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PairingCode {
    /// Two groups of three digits, zero-padded: `012 345`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_zero_padded_in_two_groups() {
        assert_eq!(PairingCode(1_234).to_string(), "001 234");
        assert_eq!(PairingCode(999_999).to_string(), "999 999");
        assert_eq!(PairingCode(0).to_string(), "000 000");
    }

    #[test]
    fn code_depends_on_every_input() {
        let h = [1u8; 32];
        let (ni, nr) = ([2u8; 32], [3u8; 32]);
        let code = PairingCode::derive(&h, &ni, &nr);
        assert_ne!(code, PairingCode::derive(&[9u8; 32], &ni, &nr));
        assert_ne!(code, PairingCode::derive(&h, &[9u8; 32], &nr));
        assert_ne!(code, PairingCode::derive(&h, &ni, &[9u8; 32]));
        assert!(code.value() < 1_000_000);
    }

    #[test]
    fn commitment_binds_nonce_and_session() {
        let h = [1u8; 32];
        let nr = [3u8; 32];
        let c = commitment(&h, &nr);
        assert!(verify_commitment(&h, &nr, &c).is_ok());
        assert!(verify_commitment(&h, &[4u8; 32], &c).is_err());
        assert!(verify_commitment(&[5u8; 32], &nr, &c).is_err());
    }
}
