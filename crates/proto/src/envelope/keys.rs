//! `keyListRequest` and `keyList`: the public keys the signer offers.

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use super::limits::MAX_KEYS;
use crate::Result;

/// Initiator → signer: send me your key list. Has no fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyListRequest {}

/// Signer → initiator: every enabled identity, and the CA public key if the
/// signer runs a CA.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    /// At most 256 records.
    pub keys: Vec<PublicKeyRecord>,
    /// The CA's OpenSSH public key blob, for `TrustedUserCAKeys`.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub ca_public_key: Option<Vec<u8>>,
}

/// One identity held by the signer. Public material only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyRecord {
    /// SSH key algorithm name, e.g. `ecdsa-sha2-nistp256`, `ssh-ed25519`, `ssh-rsa`.
    pub algorithm: String,
    /// The OpenSSH public key blob (RFC 4253 §6.6 wire form, no base64, no comment).
    #[serde(with = "serde_bytes")]
    pub public_key_blob: Vec<u8>,
    /// The key's comment, as set on the signer.
    pub comment: String,
    /// Where the private key lives.
    pub provider_kind: ProviderKind,
    /// A friendly name for UIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Where a private key lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProviderKind {
    /// A platform secure element (Secure Enclave, StrongBox). A TPM key is
    /// reached through PKCS#11, so it is a [`ProviderKind::HardwareToken`].
    SecureEnclave,
    /// A hardware token reached over PKCS#11 (YubiKey, SoftHSM...).
    HardwareToken,
    /// A software key, encrypted at rest.
    Software,
    /// Not known. Any other string decodes to this.
    #[default]
    #[serde(other)]
    Unknown,
}

impl Check for KeyListRequest {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

impl Check for KeyList {
    fn check(&self) -> Result<()> {
        check::count("keyList.keys", self.keys.len(), MAX_KEYS)?;
        self.keys.iter().try_for_each(Check::check)?;
        check::opt_blob("keyList.caPublicKey", self.ca_public_key.as_deref())
    }
}

impl Check for PublicKeyRecord {
    fn check(&self) -> Result<()> {
        check::text("keyList.keys.algorithm", &self.algorithm)?;
        check::blob("keyList.keys.publicKeyBlob", &self.public_key_blob)?;
        check::text("keyList.keys.comment", &self.comment)?;
        check::opt_text("keyList.keys.displayName", self.display_name.as_deref())
    }
}
