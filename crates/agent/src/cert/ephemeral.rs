//! The ephemeral key: made fresh for each certificate request, held only
//! in memory. ssh-key's `EcdsaPrivateKey` and p256's `SigningKey` both wipe
//! their bytes on drop, so dropping an [`Ephemeral`] leaves no copy of the
//! scalar behind.

use core::fmt;

use signature::Signer;
use ssh_key::encoding::Encode;
use ssh_key::getrandom::SysRng;
use ssh_key::rand_core::UnwrapErr;
use ssh_key::{Algorithm, Certificate, EcdsaCurve, PrivateKey, Signature};

/// An `ecdsa-sha2-nistp256` key pair that never leaves this process.
pub struct Ephemeral {
    key: PrivateKey,
    /// Built once: ssh-key's own signer rebuilds the key (and recomputes its
    /// public point) on every signature, which doubled the cost.
    signer: p256::ecdsa::SigningKey,
    public_blob: Vec<u8>,
    /// Its `SHA256:` fingerprint, for the log of every signature: hashed
    /// once here rather than per signature.
    fingerprint: String,
}

impl fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ephemeral").finish_non_exhaustive()
    }
}

impl Ephemeral {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, String> {
        let key = PrivateKey::random(
            &mut UnwrapErr(SysRng),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
        )
        .map_err(|e| format!("cannot make an ephemeral key: {e}"))?;
        let public_blob = key
            .public_key()
            .to_bytes()
            .map_err(|e| format!("cannot encode the ephemeral key: {e}"))?;
        let scalar = key
            .key_data()
            .ecdsa()
            .ok_or("the ephemeral key is not ECDSA")?
            .private_key_bytes();
        let signer = p256::ecdsa::SigningKey::from_slice(scalar)
            .map_err(|e| format!("cannot load the ephemeral key: {e}"))?;
        let fingerprint = vmux_link::Fingerprint::of(&public_blob).to_string();
        Ok(Self {
            key,
            signer,
            public_blob,
            fingerprint,
        })
    }

    /// The OpenSSH public key blob.
    pub fn public_blob(&self) -> &[u8] {
        &self.public_blob
    }

    /// The `SHA256:` fingerprint of [`Self::public_blob`].
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The SSH signature blob over `data`, as SSH_AGENT_SIGN_RESPONSE
    /// carries it; `None` if signing failed.
    pub fn sign(&self, data: &[u8]) -> Option<Vec<u8>> {
        let signature: p256::ecdsa::Signature = self.signer.try_sign(data).ok()?;
        Signature::try_from(signature).ok()?.encode_vec().ok()
    }

    /// Checks that `certificate_blob` is a user certificate for this key
    /// and returns its `(valid_after, valid_before)` in seconds.
    pub fn certifies(&self, certificate_blob: &[u8]) -> Result<(u64, u64), String> {
        let cert = Certificate::from_bytes(certificate_blob)
            .map_err(|e| format!("the certificate does not parse: {e}"))?;
        if cert.public_key() != self.key.public_key().key_data() {
            return Err("the certificate is for another key than ours".into());
        }
        if !cert.cert_type().is_user() {
            return Err("the certificate is not a user certificate".into());
        }
        Ok((cert.valid_after(), cert.valid_before()))
    }
}
