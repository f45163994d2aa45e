//! PKCS#11 token store (placeholder API; implementation in progress).

use std::path::{Path, PathBuf};

use ssh_key::PublicKey;
use zeroize::Zeroizing;

use crate::store::{RsaHash, SigningKey, Verification};
use crate::{Error, Result};

/// Where a token key lives.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenKey {
    /// The PKCS#11 module (shared library) path.
    pub module: PathBuf,
    /// The token's label (slots renumber; labels don't).
    pub token_label: String,
    /// The key objects' CKA_LABEL.
    pub key_label: String,
}

/// Generates a P-256 key pair on the token; returns its public key.
pub fn generate(_module: &Path, _token_label: &str, _key_label: &str, _pin: &Zeroizing<String>) -> Result<(TokenKey, PublicKey)> {
    Err(Error::Other("PKCS#11 support is not built yet".into()))
}

/// Finds an existing key pair on the token by label; returns its public key.
pub fn find(_module: &Path, _token_label: &str, _key_label: &str) -> Result<(TokenKey, PublicKey)> {
    Err(Error::Other("PKCS#11 support is not built yet".into()))
}

/// A token key, ready to sign after the PIN.
#[derive(Debug)]
pub struct Pkcs11Key {
    key: TokenKey,
}

impl Pkcs11Key {
    /// Opens the key described by `key` (the module is loaded per signature).
    pub fn new(key: TokenKey) -> Self {
        Self { key }
    }
}

impl SigningKey for Pkcs11Key {
    fn verification(&self) -> Verification {
        Verification::Pin
    }

    fn sign(&self, _pin: &Zeroizing<String>, _data: &[u8], _rsa_hash: RsaHash) -> Result<Vec<u8>> {
        Err(Error::Other(format!("PKCS#11 support is not built yet ({})", self.key.key_label)))
    }
}
