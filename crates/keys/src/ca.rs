//! The certificate authority: short-lived user certificates for a device's
//! ephemeral key, so it can sign locally for a while.
//!
//! An 8-hour certificate is worth hundreds of signatures, so the CA key is
//! kept like an identity's: an OpenSSH file encrypted with the CA's own
//! passphrase (`ca.key`, 0600), or a P-256 key that never leaves a PKCS#11
//! token (`ca-token.json` says where). Every issue needs the passphrase or
//! PIN; the decrypted key lives only for that one signature. A `ca.key`
//! left unencrypted by an older vmux still issues (the signer warns at
//! start) until `vmux ca protect` encrypts it.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use ssh_key::certificate::{Builder, CertType};
use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg, PrivateKey, PublicKey, Signature};
use vmux_state::{Home, StateFile};
use zeroize::Zeroizing;

use crate::pkcs11::{self, Curve, Pkcs11Key, TokenKey};
use crate::software::{self, KeyType, SoftwareKey};
use crate::store::{RsaHash, SigningKey, Verification};
use crate::{Error, Result};

pub mod issued;
mod policy;
pub mod revocation;

pub use policy::{
    BACKDATE_SECS, DEFAULT_EXTENSIONS, DEFAULT_MAX_VALIDITY, Grant, KNOWN_EXTENSIONS,
    MAX_SOURCE_ADDRESSES, MAX_VALIDITY_CEILING, POLICY_FILE, Policy, canonical_cidr, key_id,
    key_id_is_of,
};

/// The CA private key's file in the state dir (software store): one
/// OpenSSH PEM key.
pub const KEY_FILE: StateFile = StateFile::new("ca.key", software::MAX_KEY_FILE_LEN);
/// Where a token-held CA key is, and its public key (token store).
pub const TOKEN_FILE: StateFile = StateFile::new("ca-token.json", 64 << 10);
/// The comment of the CA key and its public line.
pub const COMMENT: &str = "vmux-ca";

/// A token CA: the key's place and its public half, so that listing the
/// CA key does not load the token's module.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenFile {
    #[serde(flatten)]
    key: TokenKey,
    public_key: String,
}

/// Where the CA private key is.
#[derive(Debug)]
enum CaKey {
    /// `ca.key`, passphrase-encrypted.
    Encrypted(PathBuf),
    /// `ca.key` as an older vmux left it: unencrypted.
    Plain(PathBuf),
    /// On a PKCS#11 token.
    Token(TokenKey),
}

/// The signer's CA.
#[derive(Debug)]
pub struct Ca {
    public: PublicKey,
    key: CaKey,
}

impl Ca {
    /// The CA in `home`, if one was made.
    pub fn open(home: &Home) -> Result<Option<Self>> {
        let key_path = KEY_FILE.path(home);
        let token_path = TOKEN_FILE.path(home);
        let pem = KEY_FILE.read(home)?.map(Zeroizing::new);
        let token = TOKEN_FILE.read(home)?;
        match (pem, token) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(Error::other(format!(
                "both {} and {} exist; move aside the one that is not your CA",
                key_path.display(),
                token_path.display()
            ))),
            (Some(pem), None) => {
                let key = PrivateKey::from_openssh(&*pem).map_err(|e| {
                    Error::other(format!(
                        "the CA key {} is damaged ({e}); restore it from a backup, or move it aside and make a new CA with `vmux ca init` (servers must then trust the new `vmux ca show` line)",
                        key_path.display()
                    ))
                })?;
                // An encrypted file keeps the comment in its sealed part.
                let mut public = key.public_key().clone();
                public.set_comment(COMMENT);
                let key = if key.is_encrypted() {
                    CaKey::Encrypted(key_path)
                } else {
                    CaKey::Plain(key_path)
                };
                Ok(Some(Self { public, key }))
            }
            (None, Some(json)) => {
                let damaged = |e: &dyn std::fmt::Display| {
                    Error::other(format!(
                        "{} is damaged ({e}); move it aside, then make it again with `vmux ca init --store pkcs11 --existing …`",
                        token_path.display()
                    ))
                };
                let file: TokenFile = serde_json::from_slice(&json).map_err(|e| damaged(&e))?;
                let public = PublicKey::from_openssh(&file.public_key).map_err(|e| damaged(&e))?;
                Ok(Some(Self {
                    public,
                    key: CaKey::Token(file.key),
                }))
            }
        }
    }

    /// What [`Ca::init`] and [`Ca::init_on_token`] would refuse for a CA
    /// already made: checked before a new passphrase or PIN is asked.
    pub fn check_can_init(home: &Home) -> Result<()> {
        refuse_second(home)
    }

    /// Makes a CA key (ed25519) encrypted with `passphrase`, in `ca.key`.
    pub fn init(home: &Home, passphrase: &Zeroizing<String>) -> Result<Self> {
        refuse_second(home)?;
        software::check_new_passphrase(passphrase)?;
        let key = software::generate(KeyType::Ed25519, COMMENT)?;
        let pem = software::encrypt_to_pem(&key, passphrase)?;
        let public = key.public_key().clone();
        drop(key);
        let path = KEY_FILE.path(home);
        place_once(KEY_FILE, home, pem.as_bytes())?;
        Ok(Self {
            public,
            key: CaKey::Encrypted(path),
        })
    }

    /// Makes the CA a P-256 key on a PKCS#11 token: generated there when
    /// `pin` is given, else the key pair already labelled `key_label`.
    pub fn init_on_token(
        home: &Home,
        module: &Path,
        token_label: &str,
        key_label: &str,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<Self> {
        refuse_second(home)?;
        let (key, mut public) = match pin {
            Some(pin) => pkcs11::generate(module, token_label, key_label, pin, Curve::P256)?,
            None => pkcs11::find(module, token_label, key_label, None)?,
        };
        public.set_comment(COMMENT);
        let file = TokenFile {
            key: key.clone(),
            public_key: public
                .to_openssh()
                .map_err(|e| Error::other(format!("cannot encode the CA key: {e}")))?,
        };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::other(format!("cannot encode {}: {e}", TOKEN_FILE.name())))?;
        place_once(TOKEN_FILE, home, &json)?;
        Ok(Self {
            public,
            key: CaKey::Token(key),
        })
    }

    /// What [`Ca::protect`] would refuse (no CA, or one already protected):
    /// checked before a new passphrase is asked.
    pub fn check_can_protect(home: &Home) -> Result<()> {
        Self::unprotected(home).map(drop)
    }

    /// Encrypts an unencrypted `ca.key` in place with `passphrase`: the new
    /// file replaces the old one by rename, so a crash leaves one or the other.
    pub fn protect(home: &Home, passphrase: &Zeroizing<String>) -> Result<Self> {
        let (public, path) = Self::unprotected(home)?;
        let pem = Zeroizing::new(
            KEY_FILE
                .read_at(&path)?
                .ok_or_else(|| Error::other(format!("{} is gone", path.display())))?,
        );
        let key = software::parse_pem(&pem)?;
        let sealed = software::encrypt_to_pem(&key, passphrase)?;
        drop(key);
        KEY_FILE.write_at(&path, sealed.as_bytes())?;
        Ok(Self {
            public,
            key: CaKey::Encrypted(path),
        })
    }

    /// The public key and file of an unencrypted `ca.key`, or why there is
    /// none to protect.
    fn unprotected(home: &Home) -> Result<(PublicKey, PathBuf)> {
        let Some(ca) = Self::open(home)? else {
            return Err(Error::other(
                "there is no CA yet; make one with `vmux ca init`",
            ));
        };
        match ca.key {
            CaKey::Plain(path) => Ok((ca.public, path)),
            CaKey::Encrypted(_) | CaKey::Token(_) => Err(Error::other(
                "the CA key is already protected (by its passphrase or its token); nothing to do",
            )),
        }
    }

    /// The CA's public key; its `to_openssh()` line goes into `TrustedUserCAKeys`.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// What the person must supply to issue; `None` for an unencrypted
    /// `ca.key` (see [`Ca::unprotected_warning`]).
    pub fn verification(&self) -> Option<Verification> {
        match self.key {
            CaKey::Encrypted(_) => Some(Verification::Passphrase),
            CaKey::Token(_) => Some(Verification::Pin),
            CaKey::Plain(_) => None,
        }
    }

    /// Where the key is, in words.
    pub fn store(&self) -> String {
        match &self.key {
            CaKey::Encrypted(path) => format!("{} (passphrase-encrypted)", path.display()),
            CaKey::Plain(path) => format!("{} (UNENCRYPTED)", path.display()),
            CaKey::Token(t) => format!(
                "PKCS#11 token \"{}\", key \"{}\" ({})",
                t.token_label,
                t.key_label,
                t.module.display()
            ),
        }
    }

    /// The warning the signer gives at start for an unencrypted `ca.key`.
    pub fn unprotected_warning(&self) -> Option<String> {
        match &self.key {
            CaKey::Plain(path) => Some(format!(
                "the CA key {} is not encrypted: anyone who can read it can mint certificates; encrypt it with `vmux ca protect`",
                path.display()
            )),
            _ => None,
        }
    }

    /// Signs a user certificate for `key` exactly as `grant` says, with a
    /// fresh random serial. `secret` is the CA's passphrase or PIN (unused
    /// for an unencrypted `ca.key`); a wrong one is [`Error::WrongSecret`].
    /// Blocking: call off the async runtime. The decrypted CA key is
    /// dropped before this returns.
    pub fn issue(
        &self,
        key: &PublicKey,
        grant: &Grant,
        secret: &Zeroizing<String>,
    ) -> Result<Certificate> {
        let bad = |e: ssh_key::Error| Error::other(format!("cannot build the certificate: {e}"));
        let mut nonce = [0u8; Builder::RECOMMENDED_NONCE_SIZE];
        getrandom::fill(&mut nonce).map_err(|e| {
            Error::other(format!("the operating system's random source failed: {e}"))
        })?;
        let mut builder = Builder::new(
            nonce,
            key.key_data().clone(),
            grant.valid_after,
            grant.valid_before,
        )
        .map_err(bad)?;
        builder
            .serial(serial()?)
            .and_then(|b| b.cert_type(CertType::User))
            .and_then(|b| b.key_id(grant.key_id.clone()))
            .map_err(bad)?;
        for principal in &grant.principals {
            builder.valid_principal(principal.clone()).map_err(bad)?;
        }
        for extension in &grant.extensions {
            builder.extension(extension.clone(), "").map_err(bad)?;
        }
        for (name, value) in grant.critical_options() {
            builder.critical_option(name, value).map_err(bad)?;
        }
        let cert = match &self.key {
            CaKey::Plain(path) => {
                let pem = Zeroizing::new(KEY_FILE.read_at(path)?.ok_or_else(|| {
                    Error::other(format!("the CA key {} is gone", path.display()))
                })?);
                let ca = software::parse_pem(&pem)?;
                let cert = builder.sign(&ca).map_err(bad);
                drop(ca);
                cert?
            }
            CaKey::Encrypted(path) => {
                sign(builder, &SoftwareKey::open(path)?, secret, &self.public)?
            }
            CaKey::Token(t) => sign(builder, &Pkcs11Key::new(t.clone()), secret, &self.public)?,
        };
        // The key that signed is the CA servers trust, not a file or token
        // object swapped in since the CA was opened.
        cert.validate_at(
            grant.valid_after,
            [&self.public.fingerprint(HashAlg::Sha256)],
        )
        .map_err(|_| {
            Error::other(format!(
                "the CA key in {} no longer matches the CA public key; restore it, or run `vmux ca init` again",
                self.store()
            ))
        })?;
        Ok(cert)
    }
}

/// Signs through a key store, so that the store's own verification
/// (decrypt with the passphrase, log in with the PIN) runs for this one
/// signature.
fn sign(
    builder: Builder,
    key: &dyn SigningKey,
    secret: &Zeroizing<String>,
    public: &PublicKey,
) -> Result<Certificate> {
    let signer = Verified {
        key,
        secret,
        public: public.key_data().clone(),
        failure: Cell::new(None),
    };
    builder.sign(&signer).map_err(|e| {
        signer
            .failure
            .take()
            .unwrap_or_else(|| Error::other(format!("cannot sign the certificate: {e}")))
    })
}

/// A key store as ssh-key's certificate signer. ssh-key's signature error
/// carries no cause, so the store's own error (a wrong passphrase above
/// all) is kept aside.
struct Verified<'a> {
    key: &'a dyn SigningKey,
    secret: &'a Zeroizing<String>,
    public: KeyData,
    failure: Cell<Option<Error>>,
}

impl signature::Signer<Signature> for Verified<'_> {
    fn try_sign(&self, msg: &[u8]) -> core::result::Result<Signature, signature::Error> {
        let blob = self
            .key
            .sign(self.secret, msg, RsaHash::Sha512)
            .map_err(|e| {
                self.failure.set(Some(e));
                signature::Error::new()
            })?;
        Signature::try_from(blob.as_slice()).map_err(|_| signature::Error::new())
    }
}

impl From<&Verified<'_>> for KeyData {
    fn from(signer: &Verified<'_>) -> KeyData {
        signer.public.clone()
    }
}

/// A random serial, never 0 (OpenSSH's "no serial", which a KRL cannot list).
fn serial() -> Result<u64> {
    loop {
        let serial = crate::random::u64()?;
        if serial != 0 {
            return Ok(serial);
        }
    }
}

/// Refuses early, before a key is made, when a CA exists.
fn refuse_second(home: &Home) -> Result<()> {
    for file in [KEY_FILE, TOKEN_FILE] {
        let path = file.path(home);
        if path.exists() {
            return Err(already_exists(&path));
        }
    }
    Ok(())
}

/// Writes a new CA file, never over an existing one: of two makers racing
/// (`vmux ca init` and a first-need issue), the second is refused.
fn place_once(file: StateFile, home: &Home, bytes: &[u8]) -> Result<()> {
    match file.create(home, bytes)? {
        true => Ok(()),
        false => Err(already_exists(&file.path(home))),
    }
}

fn already_exists(path: &Path) -> Error {
    Error::other(format!(
        "a CA already exists ({}); servers trust its key, so vmux will not replace it. Move it aside first to make a new one",
        path.display()
    ))
}
