//! Noise SymmetricState: the chaining key, the handshake hash and HKDF.

use blake2::{Blake2s256, Digest};
use hmac::digest::FixedOutput;
use hmac::{KeyInit, Mac, SimpleHmac};
use zeroize::Zeroizing;

use super::cipher::CipherState;
use super::{KEY_LEN, PROTOCOL_NAME};
use crate::Result;

type HmacBlake2s = SimpleHmac<Blake2s256>;

pub(crate) struct SymmetricState {
    ck: Zeroizing<[u8; KEY_LEN]>,
    h: [u8; KEY_LEN],
    cipher: CipherState,
}

impl SymmetricState {
    /// InitializeSymmetric(protocol_name) followed by MixHash(prologue).
    pub(crate) fn new(prologue: &[u8]) -> Self {
        // The name is longer than HASHLEN, so h = HASH(name).
        let h: [u8; KEY_LEN] = Blake2s256::digest(PROTOCOL_NAME).into();
        let mut state = Self {
            ck: Zeroizing::new(h),
            h,
            cipher: CipherState::empty(),
        };
        state.mix_hash(prologue);
        state
    }

    pub(crate) fn handshake_hash(&self) -> [u8; KEY_LEN] {
        self.h
    }

    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Blake2s256::new();
        hasher.update(self.h);
        hasher.update(data);
        self.h = hasher.finalize().into();
    }

    pub(crate) fn mix_key(&mut self, input_key_material: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, input_key_material);
        self.ck = ck;
        self.cipher = CipherState::new(&k);
    }

    pub(crate) fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let ciphertext = self.cipher.encrypt_with_ad(&self.h, plaintext)?;
        self.mix_hash(&ciphertext);
        Ok(ciphertext)
    }

    pub(crate) fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let plaintext = self.cipher.decrypt_with_ad(&self.h, ciphertext)?;
        self.mix_hash(ciphertext);
        Ok(plaintext)
    }

    /// Split(): the initiator→responder and responder→initiator ciphers.
    pub(crate) fn split(&self) -> (CipherState, CipherState) {
        let (k1, k2) = hkdf2(&self.ck, &[]);
        (CipherState::new(&k1), CipherState::new(&k2))
    }
}

/// Noise's HKDF with two outputs, over HMAC-BLAKE2s.
fn hkdf2(
    chaining_key: &[u8; KEY_LEN],
    input_key_material: &[u8],
) -> (Zeroizing<[u8; KEY_LEN]>, Zeroizing<[u8; KEY_LEN]>) {
    let temp_key = hmac(chaining_key, &[input_key_material]);
    let out1 = hmac(&temp_key, &[&[1u8]]);
    let out2 = hmac(&temp_key, &[out1.as_slice(), &[2u8]]);
    (out1, out2)
}

/// HMAC-BLAKE2s, written straight into wiped memory. The BLAKE2s states
/// inside are wiped on drop (the crates' `zeroize` features); the outer pad
/// `SimpleHmac` keeps is not, which its crate offers no way to change.
fn hmac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    // HMAC zero-pads its key to the 64-byte block, so padding it here gives
    // the same MAC through the infallible fixed-size constructor.
    let mut block = Zeroizing::new([0u8; 64]);
    block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    let mut mac = <HmacBlake2s as KeyInit>::new((&*block).into());
    for part in parts {
        mac.update(part);
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    mac.finalize_into((&mut *out).into());
    out
}
