//! The signing side of a key store.

use zeroize::Zeroizing;

use crate::Result;

/// Where a private key lives; maps to the envelope's `providerKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// An OpenSSH private-key file, passphrase-encrypted.
    Software,
    /// A PKCS#11 token.
    HardwareToken,
}

/// What the person must supply before a key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The key file's passphrase.
    Passphrase,
    /// The token's user PIN.
    Pin,
}

/// Which hash an RSA signature uses, from the ssh-agent flags. Ignored for
/// other key types. SHA-1 (`ssh-rsa`) is never produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RsaHash {
    /// `rsa-sha2-256`.
    Sha256,
    /// `rsa-sha2-512`, also the answer to a request with no RSA flag.
    #[default]
    Sha512,
}

/// One private key, able to sign once the person has verified.
pub trait SigningKey: Send + Sync + core::fmt::Debug {
    /// What to ask the person for.
    fn verification(&self) -> Verification;

    /// Signs `data` and returns the SSH signature blob (string algorithm,
    /// string signature). `secret` is the passphrase or PIN; a wrong one is
    /// [`crate::Error::WrongSecret`]. Blocking: call off the async runtime.
    /// Decrypted key material is zeroized before this returns.
    fn sign(&self, secret: &Zeroizing<String>, data: &[u8], rsa_hash: RsaHash) -> Result<Vec<u8>>;
}
