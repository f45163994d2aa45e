//! The proof in `session-bind@openssh.com` (OpenSSH `PROTOCOL.agent`): the
//! server's host key signed the session identifier during key exchange.
//!
//! The session identifier is the exchange hash of that key exchange, which
//! neither side can choose; a userauth request signed for it is good for
//! that session only. So a host key that verifies over the identifier a
//! userauth request carries is the host that signature will log in to,
//! whoever relayed the proof.

use signature::Verifier;
use ssh_key::{PublicKey, Signature};

/// Longest host key or signature blob considered (RSA 16384-bit keys and
/// their signatures fit); anything longer is refused before parsing.
pub const MAX_BLOB_LEN: usize = 16 * 1024;

/// Why a binding's proof was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadBinding {
    /// The host key blob does not parse (or is over [`MAX_BLOB_LEN`]).
    HostKey,
    /// The signature blob does not parse (or is over [`MAX_BLOB_LEN`]).
    Signature,
    /// It parses, but the host key did not sign this session identifier.
    DoesNotVerify,
}

impl std::fmt::Display for BadBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadBinding::HostKey => "its host key does not parse",
            BadBinding::Signature => "its host signature does not parse",
            BadBinding::DoesNotVerify => {
                "its host signature does not verify over its session identifier"
            }
        })
    }
}

/// Checks that `host_key` signed `session_id` with `signature` (an SSH
/// signature blob, as ssh received it in key exchange).
pub fn verify(host_key: &[u8], session_id: &[u8], signature: &[u8]) -> Result<(), BadBinding> {
    if host_key.len() > MAX_BLOB_LEN {
        return Err(BadBinding::HostKey);
    }
    if signature.len() > MAX_BLOB_LEN {
        return Err(BadBinding::Signature);
    }
    let key = PublicKey::from_bytes(host_key).map_err(|_| BadBinding::HostKey)?;
    let signature = Signature::try_from(signature).map_err(|_| BadBinding::Signature)?;
    key.key_data()
        .verify(session_id, &signature)
        .map_err(|_| BadBinding::DoesNotVerify)
}

/// Whether two host key blobs are the same key (comments and encoding
/// details aside); blobs that do not parse are compared as bytes.
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    match (PublicKey::from_bytes(a), PublicKey::from_bytes(b)) {
        (Ok(a), Ok(b)) => a.key_data() == b.key_data(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use signature::Signer;
    use ssh_key::{Algorithm, PrivateKey};

    fn host(alg: Algorithm) -> PrivateKey {
        PrivateKey::random(
            &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
            alg,
        )
        .unwrap()
    }

    #[test]
    fn a_host_signature_verifies_only_over_its_own_session() {
        for alg in [
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP256,
            },
        ] {
            let key = host(alg);
            let blob = key.public_key().to_bytes().unwrap();
            let sig: Signature = key.try_sign(b"session one").unwrap();
            let sig = Vec::<u8>::try_from(sig).unwrap();
            assert_eq!(verify(&blob, b"session one", &sig), Ok(()));
            assert_eq!(
                verify(&blob, b"session two", &sig),
                Err(BadBinding::DoesNotVerify)
            );
            let other = host(Algorithm::Ed25519).public_key().to_bytes().unwrap();
            assert_eq!(
                verify(&other, b"session one", &sig),
                Err(BadBinding::DoesNotVerify)
            );
            let mut corrupt = sig.clone();
            *corrupt.last_mut().unwrap() ^= 1;
            assert!(verify(&blob, b"session one", &corrupt).is_err());
            assert_eq!(
                verify(b"junk", b"session one", &sig),
                Err(BadBinding::HostKey)
            );
            assert_eq!(
                verify(&blob, b"session one", b"junk"),
                Err(BadBinding::Signature)
            );
            assert_eq!(
                verify(&vec![0; MAX_BLOB_LEN + 1], b"s", &sig),
                Err(BadBinding::HostKey)
            );
        }
    }

    #[test]
    fn same_key_ignores_comments() {
        let key = host(Algorithm::Ed25519);
        let mut commented = key.public_key().clone();
        commented.set_comment("laptop");
        assert!(same_key(
            &key.public_key().to_bytes().unwrap(),
            &commented.to_bytes().unwrap()
        ));
        assert!(!same_key(
            &key.public_key().to_bytes().unwrap(),
            &host(Algorithm::Ed25519).public_key().to_bytes().unwrap()
        ));
    }
}
