//! The identity registry: `identities.json` in the signer's state dir, and
//! the software keys' files under `keys/`.
//!
//! Each CLI command loads, changes and saves the whole file (written
//! atomically, 0600); it is small and changes rarely.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ssh_key::PublicKey;
use vmux_state::home::create_private_dir;
use vmux_state::{Home, StateFile};
use zeroize::Zeroizing;

use crate::pkcs11::{self, Curve, Device, Pkcs11Key};
use crate::software::{self, KeyType, SoftwareKey};
use crate::store::SigningKey;
use crate::tpm;
use crate::{Error, Result};

mod identity;

pub use identity::{Identity, Store, check_name};

/// The registry in the state dir: a few hundred bytes per identity.
pub const FILE: StateFile = StateFile::new("identities.json", 4 << 20);
/// The directory (0700) holding software key files.
pub const KEYS_DIR: &str = "keys";

const VERSION: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    version: u32,
    identities: Vec<Identity>,
}

/// The signer's identities.
#[derive(Debug)]
pub struct Keyring {
    root: PathBuf,
    identities: Vec<Identity>,
}

impl Keyring {
    /// Loads the registry from `home` (empty when there is none yet).
    pub fn load(home: &Home) -> Result<Self> {
        let root = home.root().to_owned();
        let path = root.join(FILE.name());
        let identities = match FILE.read_at(&path)? {
            None => Vec::new(),
            Some(bytes) => {
                let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::other(format!(
                        "{} is damaged ({e}); restore it from a backup or move it aside to start over",
                        path.display()
                    ))
                })?;
                if disk.version != VERSION {
                    return Err(Error::other(format!(
                        "{} has version {}, this vmux reads version {VERSION}; update vmux",
                        path.display(),
                        disk.version
                    )));
                }
                disk.identities
            }
        };
        Ok(Self { root, identities })
    }

    /// Every identity, in the order they were added.
    pub fn list(&self) -> &[Identity] {
        &self.identities
    }

    /// The identity called `name`.
    pub fn get(&self, name: &str) -> Result<&Identity> {
        self.identities
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| not_found(name))
    }

    /// The identity whose public-key blob is `blob`, enabled or not.
    pub fn find_by_blob(&self, blob: &[u8]) -> Option<&Identity> {
        self.identities
            .iter()
            .find(|i| i.key_blob().is_ok_and(|b| b == blob))
    }

    /// Creates a software key of `kind`, encrypted with `passphrase`.
    pub fn create_software(
        &mut self,
        name: &str,
        kind: KeyType,
        passphrase: &Zeroizing<String>,
    ) -> Result<&Identity> {
        self.check_new(name)?;
        software::check_new_passphrase(passphrase)?;
        let key = software::generate(kind, name)?;
        let pem = software::encrypt_to_pem(&key, passphrase)?;
        let public = key.public_key().clone();
        drop(key);
        self.add_software(name, &public, &pem)
    }

    /// Imports an OpenSSH private key. An encrypted file must open with
    /// `passphrase` (and is stored as is); an unencrypted one is encrypted
    /// with `passphrase` first, so no plaintext key is ever stored.
    pub fn import_software(
        &mut self,
        name: &str,
        pem: &[u8],
        passphrase: &Zeroizing<String>,
    ) -> Result<&Identity> {
        self.check_new(name)?;
        let parsed = software::parse_pem(pem)?;
        software::check_supported(parsed.public_key())?;
        let stored = if parsed.is_encrypted() {
            // Proves the passphrase (and that the file is whole) before storing.
            let plain = software::decrypt(&parsed, passphrase)?;
            drop(plain);
            parsed
                .to_openssh(ssh_key::LineEnding::LF)
                .map_err(|e| Error::other(format!("cannot encode the key: {e}")))?
        } else {
            software::encrypt_to_pem(&parsed, passphrase)?
        };
        let public = parsed.public_key().clone();
        drop(parsed);
        self.check_unique_key(&public)?;
        self.add_software(name, &public, &stored)
    }

    /// Generates a `curve` key pair on a PKCS#11 token and adds it.
    pub fn generate_on_token(
        &mut self,
        name: &str,
        module: &Path,
        token_label: &str,
        key_label: &str,
        pin: &Zeroizing<String>,
        curve: Curve,
    ) -> Result<&Identity> {
        self.check_new(name)?;
        let (token_key, public) = pkcs11::generate(module, token_label, key_label, pin, curve)?;
        self.add(name, &public, Store::Pkcs11(token_key))
    }

    /// Makes a P-256 key in the TPM, behind a token of its own whose PIN
    /// is `pin` (see [`crate::tpm`]), and adds it.
    pub fn create_in_tpm(
        &mut self,
        name: &str,
        module: &Path,
        pin: &Zeroizing<String>,
    ) -> Result<&Identity> {
        self.check_new(name)?;
        let (token_key, public) = tpm::create(module, name, pin)?;
        self.add(name, &public, Store::Tpm(token_key))
    }

    /// Adds a key pair that already exists on a PKCS#11 token. `pin` is for
    /// tokens that show their keys only after login ([`Error::PinNeeded`]).
    pub fn add_from_token(
        &mut self,
        name: &str,
        module: &Path,
        token_label: &str,
        key_label: &str,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<&Identity> {
        self.check_new(name)?;
        let (token_key, public) = pkcs11::find(module, token_label, key_label, pin)?;
        self.check_unique_key(&public)?;
        self.add(name, &public, Store::Pkcs11(token_key))
    }

    /// Enables or disables an identity.
    pub fn set_enabled(&mut self, name: &str, enabled: bool) -> Result<()> {
        let identity = self
            .identities
            .iter_mut()
            .find(|i| i.name == name)
            .ok_or_else(|| not_found(name))?;
        identity.enabled = enabled;
        self.save()
    }

    /// Removes an identity; a software key's file is deleted too. A token
    /// key stays on the token, a TPM key in tpm2-pkcs11's store.
    pub fn remove(&mut self, name: &str) -> Result<Identity> {
        let at = self
            .identities
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| not_found(name))?;
        let removed = self.identities.remove(at);
        self.save()?;
        if let Some(path) = self.key_path(&removed) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::other(format!(
                        "removed \"{name}\" from the registry but could not delete {}: {e}; delete it by hand",
                        path.display()
                    )));
                }
            }
        }
        Ok(removed)
    }

    /// Opens an identity for signing.
    pub fn open(&self, name: &str) -> Result<Box<dyn SigningKey>> {
        self.open_identity(self.get(name)?)
    }

    /// Opens `identity` for signing (refused while it is disabled): software
    /// keys read their file, token keys load their module when they sign.
    pub fn open_identity(&self, identity: &Identity) -> Result<Box<dyn SigningKey>> {
        if !identity.enabled {
            return Err(Error::other(format!(
                "identity \"{0}\" is disabled; enable it with `vmux key enable {0}`",
                identity.name
            )));
        }
        match &identity.store {
            Store::Software { file } => {
                Ok(Box::new(SoftwareKey::open(&self.keys_dir().join(file))?))
            }
            Store::Pkcs11(token_key) => Ok(Box::new(Pkcs11Key::new(token_key.clone()))),
            Store::Tpm(token_key) => Ok(Box::new(Pkcs11Key::on(token_key.clone(), Device::Tpm))),
        }
    }

    /// The directory of software key files.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join(KEYS_DIR)
    }

    /// The private-key file of a software identity.
    pub fn key_path(&self, identity: &Identity) -> Option<PathBuf> {
        match &identity.store {
            Store::Software { file } => Some(self.keys_dir().join(file)),
            Store::Pkcs11(_) | Store::Tpm(_) => None,
        }
    }

    fn check_new(&self, name: &str) -> Result<()> {
        check_name(name)?;
        if self.identities.iter().any(|i| i.name == name) {
            return Err(Error::other(format!(
                "an identity called \"{name}\" already exists; pick another name or `vmux key remove {name}` first"
            )));
        }
        Ok(())
    }

    fn check_unique_key(&self, public: &PublicKey) -> Result<()> {
        if let Some(i) = self
            .identities
            .iter()
            .find(|i| i.public().is_ok_and(|p| p.key_data() == public.key_data()))
        {
            return Err(Error::other(format!(
                "this key is already identity \"{}\"",
                i.name
            )));
        }
        Ok(())
    }

    fn add_software(&mut self, name: &str, public: &PublicKey, pem: &str) -> Result<&Identity> {
        let dir = self.keys_dir();
        create_private_dir(&dir)?;
        let file = format!("{name}.key");
        let path = dir.join(&file);
        vmux_state::home::write_private(&path, pem.as_bytes())?;
        let added = self.add(name, public, Store::Software { file });
        if added.is_err() {
            // Registry not written: leave no orphan key file behind.
            let _ = std::fs::remove_file(&path);
        }
        added
    }

    fn add(&mut self, name: &str, public: &PublicKey, store: Store) -> Result<&Identity> {
        let mut bare = public.clone();
        bare.set_comment("");
        let line = bare
            .to_openssh()
            .map_err(|e| Error::other(format!("cannot encode the public key: {e}")))?;
        let identity = Identity {
            name: name.to_owned(),
            algorithm: public.algorithm().to_string(),
            public_key: line.trim_end().to_owned(),
            fingerprint: software::fingerprint(public),
            store,
            enabled: true,
            created: unix_now(),
        };
        self.identities.push(identity);
        if let Err(e) = self.save() {
            self.identities.pop();
            return Err(e);
        }
        self.identities.last().ok_or_else(|| not_found(name))
    }

    fn save(&self) -> Result<()> {
        let disk = OnDisk {
            version: VERSION,
            identities: self.identities.clone(),
        };
        let json = serde_json::to_vec_pretty(&disk)
            .map_err(|e| Error::other(format!("cannot encode the registry: {e}")))?;
        FILE.write_at(&self.root.join(FILE.name()), &json)?;
        Ok(())
    }
}

/// Whether an OpenSSH private-key file is passphrase-encrypted (to know
/// which passphrase to ask for before importing it).
pub fn is_encrypted(pem: &[u8]) -> Result<bool> {
    Ok(software::parse_pem(pem)?.is_encrypted())
}

fn not_found(name: &str) -> Error {
    Error::other(format!(
        "no identity called \"{name}\"; see `vmux key list`"
    ))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
