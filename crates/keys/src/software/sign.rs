//! Producing the SSH signature blob from a decrypted key.

use ssh_key::encoding::Encode;
use ssh_key::private::KeypairData;
use ssh_key::{HashAlg, PrivateKey, Signature};
// `signature` is the trait crate ssh-key's signers implement.
use signature::Signer;

use crate::store::RsaHash;
use crate::{Error, Result};

/// Signs `data` with `key` and returns the SSH signature blob (string
/// algorithm, string signature): what SSH_AGENT_SIGN_RESPONSE carries.
///
/// RSA signs with rsa-sha2-256 or rsa-sha2-512 as asked, never SHA-1;
/// ECDSA's signature is mpint r, mpint s (RFC 5656).
pub fn sign_blob(key: &PrivateKey, data: &[u8], rsa_hash: RsaHash) -> Result<Vec<u8>> {
    let signature: Signature = match key.key_data() {
        KeypairData::Rsa(pair) => {
            let hash = match rsa_hash {
                RsaHash::Sha256 => HashAlg::Sha256,
                RsaHash::Sha512 => HashAlg::Sha512,
            };
            (pair, Some(hash)).try_sign(data)
        }
        KeypairData::Ecdsa(_) | KeypairData::Ed25519(_) => key.key_data().try_sign(data),
        _ => {
            return Err(Error::other(format!(
                "cannot sign with a {} key; use ecdsa, ed25519 or rsa",
                key.algorithm()
            )));
        }
    }
    .map_err(|e| Error::other(format!("signing failed: {e}")))?;
    signature
        .encode_vec()
        .map_err(|e| Error::other(format!("cannot encode the signature: {e}")))
}
