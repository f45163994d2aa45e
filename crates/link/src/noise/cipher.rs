//! Noise CipherState over ChaCha20-Poly1305.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use zeroize::Zeroizing;

use super::KEY_LEN;
use crate::{Error, Result};

/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Largest Noise message, and so the largest link frame body.
pub const MAX_MESSAGE_LEN: usize = 65535;

/// One direction of an encrypted channel: a key and its message counter.
///
/// The counter is the nonce and is never sent, so a replayed, dropped,
/// reordered or altered message fails to decrypt.
pub struct CipherState {
    // The key, not a keyed cipher: the cipher made for each message is
    // wiped when dropped, and known-answer tests can read the key.
    key: Option<Zeroizing<[u8; KEY_LEN]>>,
    n: u64,
}

impl CipherState {
    pub(crate) fn empty() -> Self {
        Self { key: None, n: 0 }
    }

    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            key: Some(Zeroizing::new(*key)),
            n: 0,
        }
    }

    pub(crate) fn has_key(&self) -> bool {
        self.key.is_some()
    }

    #[cfg(feature = "test-vectors")]
    pub(crate) fn key(&self) -> Option<&[u8; KEY_LEN]> {
        self.key.as_deref()
    }

    /// The cipher and nonce for message `n`. The counter moves on only once
    /// the message has been sealed or opened: a forged message must not
    /// cost the real one its nonce (Noise §5.1).
    fn for_next(&self) -> Result<Option<(ChaCha20Poly1305, Nonce)>> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        // 2^64-1 is reserved by the spec; a session never gets near it.
        if self.n == u64::MAX {
            return Err(Error::NonceExhausted);
        }
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.n.to_le_bytes());
        Ok(Some((ChaCha20Poly1305::new((&**key).into()), nonce.into())))
    }

    /// Encrypts `plaintext` with associated data `ad`; plaintext passes
    /// through unchanged before a key is set (the first handshake message).
    pub fn encrypt_with_ad(&mut self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() + TAG_LEN > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong(plaintext.len()));
        }
        let Some((cipher, nonce)) = self.for_next()? else {
            return Ok(plaintext.to_vec());
        };
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: ad,
                },
            )
            .map_err(|_| Error::MessageTooLong(plaintext.len()))?;
        self.n += 1;
        Ok(ciphertext)
    }

    /// Decrypts and authenticates; any failure ends the session, and leaves
    /// the counter where it was.
    pub fn decrypt_with_ad(&mut self, ad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        let Some((cipher, nonce)) = self.for_next()? else {
            return Ok(ciphertext.to_vec());
        };
        let plaintext = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: ad,
                },
            )
            .map_err(|_| Error::Decrypt)?;
        self.n += 1;
        Ok(plaintext)
    }

    /// Transport-phase encryption (no associated data).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.encrypt_with_ad(&[], plaintext)
    }

    /// Transport-phase decryption (no associated data).
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>> {
        self.decrypt_with_ad(&[], ciphertext)
    }
}

impl core::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CipherState")
            .field("keyed", &self.has_key())
            .field("n", &self.n)
            .finish()
    }
}
