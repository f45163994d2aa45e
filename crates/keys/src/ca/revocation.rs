//! Revoked certificates: `ca-revoked.json` is the record, `ca.krl` the
//! OpenSSH KRL made from it for sshd's `RevokedKeys`. Both are written
//! atomically, and changed only under a lock; the KRL's version grows with
//! every write.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ssh_key::PublicKey;
use vmux_state::{Home, StateFile};

use super::policy::key_id_is_of;
use crate::krl::{Krl, RevokedCertificates};
use crate::{Error, Result};

/// The record of revocations in the state dir (a serial is 8 bytes, a
/// key ID a few dozen: hundreds of thousands fit).
pub const REVOKED_FILE: StateFile = StateFile::new("ca-revoked.json", 16 << 20);
/// The KRL in the state dir: what `vmux ca krl` prints; smaller than the
/// record it is made from.
pub const KRL_FILE: StateFile = StateFile::new("ca.krl", 16 << 20);

/// Every revocation this signer made.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocations {
    /// The version of the last KRL written.
    krl_version: u64,
    /// Per CA key (a CA made again later keeps the old one's revocations).
    certificates: Vec<Revoked>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Revoked {
    /// The CA's public key, OpenSSH line.
    ca: String,
    serials: BTreeSet<u64>,
    key_ids: BTreeSet<String>,
}

impl Revoked {
    /// Nothing revoked yet of `ca`.
    fn new(ca: &PublicKey) -> Result<Self> {
        let mut line = ca.clone();
        line.set_comment("");
        Ok(Self {
            ca: line
                .to_openssh()
                .map_err(|e| Error::other(format!("cannot encode the CA key: {e}")))?,
            serials: BTreeSet::new(),
            key_ids: BTreeSet::new(),
        })
    }

    fn is_for(&self, ca: &PublicKey) -> bool {
        PublicKey::from_openssh(&self.ca).is_ok_and(|k| k.key_data() == ca.key_data())
    }
}

impl Revocations {
    /// Reads the record in `home` (empty when nothing was revoked yet).
    pub fn load(home: &Home) -> Result<Self> {
        let path = REVOKED_FILE.path(home);
        match REVOKED_FILE.read(home)? {
            None => Ok(Self::default()),
            Some(json) => serde_json::from_slice(&json).map_err(|e| {
                Error::other(format!(
                    "{} is damaged ({e}); restore it from a backup: it lists the certificates you revoked",
                    path.display()
                ))
            }),
        }
    }

    /// Whether `key_id` of `ca` is revoked.
    pub fn key_id_revoked(&self, ca: &PublicKey, key_id: &str) -> bool {
        self.certificates
            .iter()
            .any(|r| r.key_ids.contains(key_id) && r.is_for(ca))
    }

    /// Whether a key ID of the device `device_id` is revoked for `ca`,
    /// under whatever name the device had then.
    pub fn device_revoked(&self, ca: &PublicKey, device_id: &str) -> bool {
        self.certificates
            .iter()
            .any(|r| r.key_ids.iter().any(|k| key_id_is_of(k, device_id)) && r.is_for(ca))
    }

    /// Whether `serial` of `ca` is revoked.
    pub fn serial_revoked(&self, ca: &PublicKey, serial: u64) -> bool {
        self.certificates
            .iter()
            .any(|r| r.serials.contains(&serial) && r.is_for(ca))
    }

    /// Loads the record, applies `change`, then saves it and writes the KRL
    /// one version up, all under the record's lock: two revocations at once
    /// (two terminals, or `vmux peers remove --revoke`) keep both. Returns
    /// what `change` returned and the record as saved.
    pub fn update<R>(
        home: &Home,
        now: u64,
        change: impl FnOnce(&mut Self) -> Result<R>,
    ) -> Result<(R, Self)> {
        let _lock = vmux_state::home::lock(&REVOKED_FILE.path(home))?;
        let mut revocations = Self::load(home)?;
        let changed = change(&mut revocations)?;
        revocations.save(home, now)?;
        Ok((changed, revocations))
    }

    /// Adds revocations of `ca`'s certificates; returns how many were new.
    pub fn revoke(
        &mut self,
        ca: &PublicKey,
        serials: impl IntoIterator<Item = u64>,
        key_ids: impl IntoIterator<Item = String>,
    ) -> Result<usize> {
        // A CA's first revocation gets an entry of its own, added once filled.
        let mut first = None;
        let entry = match self.certificates.iter_mut().find(|r| r.is_for(ca)) {
            Some(entry) => entry,
            None => first.insert(Revoked::new(ca)?),
        };
        let mut added = 0;
        for serial in serials {
            if serial == 0 {
                return Err(Error::other(
                    "serial 0 means \"no serial\" to OpenSSH and cannot be revoked; vmux never issues it",
                ));
            }
            added += usize::from(entry.serials.insert(serial));
        }
        for key_id in key_ids {
            added += usize::from(entry.key_ids.insert(key_id));
        }
        self.certificates.extend(first);
        Ok(added)
    }

    /// The version of the KRL last written (0: none yet).
    pub fn krl_version(&self) -> u64 {
        self.krl_version
    }

    /// Saves the record, then writes the KRL one version up. Only under
    /// the lock: see [`Revocations::update`].
    fn save(&mut self, home: &Home, now: u64) -> Result<()> {
        self.krl_version = self.krl_version.saturating_add(1);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::other(format!("cannot encode the revocations: {e}")))?;
        REVOKED_FILE.write(home, &json)?;
        let krl = self.krl(now)?.encode()?;
        KRL_FILE.write(home, &krl)?;
        Ok(())
    }

    /// The KRL of everything revoked.
    pub fn krl(&self, now: u64) -> Result<Krl> {
        let certificates = self
            .certificates
            .iter()
            .map(|r| {
                let ca = PublicKey::from_openssh(&r.ca).map_err(|e| {
                    Error::other(format!(
                        "a CA key in {} is damaged ({e}); restore the file from a backup",
                        REVOKED_FILE.name()
                    ))
                })?;
                Ok(RevokedCertificates {
                    ca_key: ca
                        .to_bytes()
                        .map_err(|e| Error::other(format!("cannot encode the CA key: {e}")))?,
                    serials: r.serials.clone(),
                    key_ids: r.key_ids.clone(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Krl {
            version: self.krl_version,
            generated: now,
            comment: "vmux CA revocations".into(),
            certificates,
        })
    }
}

/// Where the KRL is, for `RevokedKeys`.
pub fn krl_path(home: &Home) -> PathBuf {
    KRL_FILE.path(home)
}

/// Writes an empty KRL when there is none, so `RevokedKeys` can name it
/// before anything is revoked (sshd refuses every key when the file is
/// missing). Returns its path.
pub fn ensure_krl(home: &Home, now: u64) -> Result<PathBuf> {
    let path = krl_path(home);
    if path.exists() {
        return Ok(path);
    }
    // Through the lock, so a revocation made meanwhile is not written over.
    Revocations::update(home, now, |_| Ok(()))?;
    Ok(path)
}
