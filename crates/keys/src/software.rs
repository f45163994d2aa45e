//! The software store: an OpenSSH private-key file, always passphrase-encrypted.
//!
//! The file is read and decrypted for each signature and the decrypted key is
//! dropped (ssh-key zeroizes its private halves on drop) before `sign`
//! returns, so the plaintext key lives only as long as one signature.

use std::path::{Path, PathBuf};

use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::store::{RsaHash, SigningKey, Verification};
use crate::{Error, Result};

mod sign;

pub use sign::sign_blob;

/// RSA keys made here have this many bits (ssh-keygen's default).
pub const RSA_BITS: usize = 3072;
/// The most a software key file (an OpenSSH PEM key, about 3.5 KiB for
/// RSA-4096) may hold.
pub const MAX_KEY_FILE_LEN: u64 = 64 << 10;
/// Imported RSA keys must have at least this many bits.
const RSA_MIN_BITS: u32 = 2048;

/// Which kind of key to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyType {
    /// `ecdsa-sha2-nistp256`: the default, and what tokens and enclaves hold.
    #[default]
    Ecdsa,
    /// `ssh-ed25519`.
    Ed25519,
    /// RSA, 3072 bits, signing with rsa-sha2-256/512 only.
    Rsa,
}

impl core::str::FromStr for KeyType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa" | "ecdsa-sha2-nistp256" | "p256" => Ok(KeyType::Ecdsa),
            "ed25519" | "ssh-ed25519" => Ok(KeyType::Ed25519),
            "rsa" => Ok(KeyType::Rsa),
            _ => Err(Error::other(format!(
                "unknown key type \"{s}\"; use ecdsa, ed25519 or rsa"
            ))),
        }
    }
}

/// Refuses an empty passphrase: it is the user verification before each
/// signature, so a key without one would sign for anyone at the signer.
pub fn check_new_passphrase(passphrase: &Zeroizing<String>) -> Result<()> {
    if passphrase.is_empty() {
        return Err(Error::other(
            "an empty passphrase is not allowed: it is what you type to approve each signature; choose one",
        ));
    }
    Ok(())
}

/// Makes a fresh key pair of `kind`, unencrypted (encrypt before storing).
pub(crate) fn generate(kind: KeyType, comment: &str) -> Result<PrivateKey> {
    let mut rng = crate::random::rng();
    let mut key = match kind {
        KeyType::Ecdsa => PrivateKey::random(
            &mut rng,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
        ),
        KeyType::Ed25519 => PrivateKey::random(&mut rng, Algorithm::Ed25519),
        KeyType::Rsa => RsaKeypair::random(&mut rng, RSA_BITS)
            .and_then(|pair| PrivateKey::new(KeypairData::from(pair), comment)),
    }
    .map_err(|e| Error::other(format!("cannot generate the key: {e}")))?;
    key.set_comment(comment);
    Ok(key)
}

/// Encrypts `key` with `passphrase` (bcrypt-pbkdf + aes256-ctr, as
/// ssh-keygen does) and returns the OpenSSH PEM text.
pub(crate) fn encrypt_to_pem(
    key: &PrivateKey,
    passphrase: &Zeroizing<String>,
) -> Result<Zeroizing<String>> {
    check_new_passphrase(passphrase)?;
    let encrypted = key
        .encrypt(&mut ssh_key::getrandom::SysRng, passphrase.as_bytes())
        .map_err(|e| Error::other(format!("cannot encrypt the key: {e}")))?;
    encrypted
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::other(format!("cannot encode the key: {e}")))
}

/// Parses an OpenSSH private-key file.
pub(crate) fn parse_pem(pem: &[u8]) -> Result<PrivateKey> {
    PrivateKey::from_openssh(pem).map_err(|e| {
        Error::other(format!(
            "not an OpenSSH private key ({e}); convert it with `ssh-keygen -p -f FILE`, which rewrites it in OpenSSH format"
        ))
    })
}

/// Decrypts `key`; a passphrase that does not open it is [`Error::WrongSecret`].
pub(crate) fn decrypt(key: &PrivateKey, passphrase: &Zeroizing<String>) -> Result<PrivateKey> {
    if !key.is_encrypted() {
        return Ok(key.clone());
    }
    key.decrypt(passphrase.as_bytes()).map_err(|e| match e {
        ssh_key::Error::Crypto | ssh_key::Error::Encoding(_) => Error::WrongSecret,
        other => Error::other(format!("cannot decrypt the key: {other}")),
    })
}

/// Refuses key types the signer cannot sign with (or should not).
pub(crate) fn check_supported(public: &PublicKey) -> Result<()> {
    match public.key_data() {
        ssh_key::public::KeyData::Ed25519(_) => Ok(()),
        ssh_key::public::KeyData::Ecdsa(k) if k.curve() == EcdsaCurve::NistP256 => Ok(()),
        ssh_key::public::KeyData::Rsa(k) => {
            let bits = k.key_size();
            if bits < RSA_MIN_BITS {
                return Err(Error::other(format!(
                    "this RSA key has {bits} bits; at least {RSA_MIN_BITS} are needed, make a new key with `vmux key new NAME --type rsa`"
                )));
            }
            Ok(())
        }
        _ => Err(Error::other(format!(
            "{} keys are not supported; use an ecdsa-sha2-nistp256, ssh-ed25519 or RSA key",
            public.algorithm()
        ))),
    }
}

/// A key in an encrypted OpenSSH file, ready to sign after the passphrase.
#[derive(Debug)]
pub struct SoftwareKey {
    path: PathBuf,
    public: PublicKey,
}

impl SoftwareKey {
    /// Opens the key file at `path` (read again for every signature). Refuses
    /// a file that is not encrypted.
    pub fn open(path: &Path) -> Result<Self> {
        let key = read_encrypted(path)?;
        Ok(Self {
            path: path.to_owned(),
            public: key.public_key().clone(),
        })
    }

    /// The key's public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
}

impl SigningKey for SoftwareKey {
    fn verification(&self) -> Verification {
        Verification::Passphrase
    }

    fn sign(&self, secret: &Zeroizing<String>, data: &[u8], rsa_hash: RsaHash) -> Result<Vec<u8>> {
        let sealed = read_encrypted(&self.path)?;
        // The file was replaced under us: sign with nothing rather than the
        // wrong key.
        if sealed.public_key().key_data() != self.public.key_data() {
            return Err(Error::other(format!(
                "the key file {} changed since it was opened; restart the signer",
                self.path.display()
            )));
        }
        let key = decrypt(&sealed, secret)?;
        let blob = sign_blob(&key, data, rsa_hash);
        drop(key);
        blob
    }
}

fn read_encrypted(path: &Path) -> Result<PrivateKey> {
    let gone = |e: &dyn std::fmt::Display| {
        Error::other(format!(
            "cannot read the key file {e}; check it exists, or remove the identity with `vmux key remove NAME`"
        ))
    };
    let pem = match vmux_state::read_capped(path, MAX_KEY_FILE_LEN) {
        Ok(Some(pem)) => Zeroizing::new(pem),
        Ok(None) => return Err(gone(&format!("{}: not found", path.display()))),
        Err(e) => return Err(gone(&e)),
    };
    let key = parse_pem(&pem)?;
    if !key.is_encrypted() {
        return Err(Error::other(format!(
            "the key file {} is not encrypted; vmux never signs with a plaintext key: import it again with `vmux key import`",
            path.display()
        )));
    }
    Ok(key)
}

/// Fingerprint in the `SHA256:` form ssh-keygen prints.
pub fn fingerprint(public: &PublicKey) -> String {
    public.fingerprint(HashAlg::Sha256).to_string()
}
