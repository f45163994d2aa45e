//! Noise CipherState over ChaCha20-Poly1305.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

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
    cipher: Option<ChaCha20Poly1305>,
    n: u64,
}

impl CipherState {
    pub(crate) fn empty() -> Self {
        Self { cipher: None, n: 0 }
    }

    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Some(ChaCha20Poly1305::new(key.into())),
            n: 0,
        }
    }

    pub(crate) fn has_key(&self) -> bool {
        self.cipher.is_some()
    }

    fn next_nonce(&mut self) -> Result<Nonce> {
        // 2^64-1 is reserved by the spec; a session never gets near it.
        if self.n == u64::MAX {
            return Err(Error::NonceExhausted);
        }
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.n.to_le_bytes());
        self.n += 1;
        Ok(nonce.into())
    }

    /// Encrypts `plaintext` with associated data `ad`; plaintext passes
    /// through unchanged before a key is set (the first handshake message).
    pub fn encrypt_with_ad(&mut self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() + TAG_LEN > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong(plaintext.len()));
        }
        let nonce = match self.cipher {
            Some(_) => self.next_nonce()?,
            None => return Ok(plaintext.to_vec()),
        };
        let cipher = self.cipher.as_ref().ok_or(Error::Decrypt)?;
        cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: ad,
                },
            )
            .map_err(|_| Error::MessageTooLong(plaintext.len()))
    }

    /// Decrypts and authenticates; any failure ends the session.
    pub fn decrypt_with_ad(&mut self, ad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        let nonce = match self.cipher {
            Some(_) => self.next_nonce()?,
            None => return Ok(ciphertext.to_vec()),
        };
        let cipher = self.cipher.as_ref().ok_or(Error::Decrypt)?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: ad,
                },
            )
            .map_err(|_| Error::Decrypt)
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
