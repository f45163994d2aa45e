//! Noise_XX_25519_ChaChaPoly_BLAKE2s, as an I/O-free state machine.
//!
//! Hand-assembled from the RustCrypto primitives already in the tree rather
//! than taken from `snow`, which would pull a second generation of
//! digest/aead/dalek crates. Interop with `snow` is checked in the tests.
//!
//! Each handshake state is its own type, consumed by the step that leaves it,
//! so a message cannot be written twice or out of order. Every step takes the
//! bytes received and returns the bytes to send; nothing here touches a socket.

mod cipher;
#[cfg(feature = "test-vectors")]
pub mod fixed;
mod handshake;
mod symmetric;

pub use cipher::{CipherState, MAX_MESSAGE_LEN, TAG_LEN};
pub use handshake::{AwaitingMsg2, AwaitingMsg3, PeerPresented, Transport, initiate, respond};

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The full Noise protocol name; it is hashed into the handshake.
pub const PROTOCOL_NAME: &[u8] = b"Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// Bound into the handshake hash so a vmux handshake can't be confused with
/// any other protocol that happens to use the same Noise pattern.
pub const PROLOGUE: &[u8] = b"vmux link v1";
/// Length of an X25519 public key and of a BLAKE2s hash.
pub const KEY_LEN: usize = 32;

/// A long-term X25519 key pair identifying one device on the link.
pub struct StaticKeypair {
    secret: StaticSecret,
    public: PublicKey,
}

impl StaticKeypair {
    /// A fresh key pair from the OS random source.
    pub fn generate() -> Result<Self> {
        Ok(Self::from_secret_bytes(random_array()?))
    }

    /// Rebuilds a key pair from its 32 secret bytes.
    pub fn from_secret_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The secret bytes, for storing the key; zeroized when dropped.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public half, as sent in the handshake.
    pub fn public(&self) -> [u8; KEY_LEN] {
        self.public.to_bytes()
    }
}

impl core::fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &crate::Fingerprint::of(&self.public()))
            .finish_non_exhaustive()
    }
}

/// 32 bytes from the OS random source, wiped after use.
pub(crate) fn random_array() -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(bytes.as_mut()).map_err(|_| Error::Random)?;
    Ok(bytes)
}
