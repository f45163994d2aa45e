//! One entry of the identity registry.

use ssh_key::PublicKey;

use crate::pkcs11::TokenKey;
use crate::store::Provider;
use crate::{Error, Result};

/// Where an identity's private key lives.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Store {
    /// An encrypted OpenSSH file under the state dir's `keys/`.
    Software {
        /// File name inside `keys/`.
        file: String,
    },
    /// A key pair on a PKCS#11 token.
    Pkcs11(TokenKey),
    /// A P-256 key made by the TPM, on a tpm2-pkcs11 token of its own.
    Tpm(TokenKey),
}

/// A signing identity the signer offers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Unique name, also the comment on its public key.
    pub name: String,
    /// SSH algorithm name, e.g. `ecdsa-sha2-nistp256`.
    pub algorithm: String,
    /// OpenSSH public-key line (`algorithm base64`, no comment).
    pub public_key: String,
    /// `SHA256:` fingerprint, as ssh-keygen prints it.
    pub fingerprint: String,
    /// Where the private key lives.
    pub store: Store,
    /// Disabled identities are neither listed to devices nor used.
    pub enabled: bool,
    /// When it was added, Unix seconds.
    pub created: u64,
}

impl Identity {
    /// The parsed public key.
    pub fn public(&self) -> Result<PublicKey> {
        PublicKey::from_openssh(&self.public_key).map_err(|e| {
            Error::other(format!(
                "identity \"{}\" has a damaged public key in identities.json ({e}); remove it with `vmux key remove {}`",
                self.name, self.name
            ))
        })
    }

    /// The raw public-key blob (what agents and the wire carry).
    pub fn key_blob(&self) -> Result<Vec<u8>> {
        self.public()?
            .to_bytes()
            .map_err(|e| Error::other(format!("cannot encode the public key: {e}")))
    }

    /// The line for `authorized_keys`, with the name as comment.
    pub fn authorized_keys_line(&self) -> String {
        format!("{} {}", self.public_key, self.name)
    }

    /// Where the private key lives, as the envelope's `providerKind`.
    pub fn provider(&self) -> Provider {
        match self.store {
            Store::Software { .. } => Provider::Software,
            Store::Pkcs11(_) | Store::Tpm(_) => Provider::HardwareToken,
        }
    }

    /// A short word for the store (`software`, `pkcs11`, `tpm`).
    pub fn store_kind(&self) -> &'static str {
        match self.store {
            Store::Software { .. } => "software",
            Store::Pkcs11(_) => "pkcs11",
            Store::Tpm(_) => "tpm",
        }
    }
}

/// Checks a new identity name: it names a file too, so no separators.
pub fn check_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if name.is_empty() || name.len() > 64 || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(Error::other(format!(
            // Debug quoting: the name was typed, but a terminal still must
            // not act on an escape sequence in it.
            "{name:?} is not a valid identity name: use 1 to 64 letters, digits, '-', '_', '.' or '@', not starting with '.'"
        )));
    }
    Ok(())
}
