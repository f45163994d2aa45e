//! The trust store: peers whose static keys were pinned by pairing.
//!
//! One JSON file (0600) per device, rewritten atomically. Identity checks
//! compare the full public key; the fingerprint is kept for people reading
//! the file.

use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

use crate::home::{Home, read_optional, write_private};
use crate::noise::KEY_LEN;
use crate::{Error, Fingerprint, Result};

const TRUST_FILE: &str = "trust.json";

/// What a pinned peer is to us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PeerRole {
    /// A signer we send requests to.
    Signer,
    /// An agent or client that sends requests to us.
    Requester,
}

/// One pinned peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinnedPeer {
    /// The peer's `deviceID`.
    #[serde(rename = "deviceID")]
    pub device_id: String,
    /// The peer's name as it introduced itself when paired.
    pub name: String,
    /// What the peer is to us.
    pub role: PeerRole,
    /// `SHA256:` fingerprint of the static key, for people.
    pub fingerprint: String,
    /// The static public key, base64.
    pub public_key: String,
    /// Last address we reached a signer at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// When pairing was accepted, ms since the epoch.
    pub first_paired: u64,
    /// When a session last came up, ms since the epoch.
    pub last_seen: u64,
}

impl PinnedPeer {
    /// A record for a peer just paired.
    pub fn new(
        device_id: String,
        name: String,
        role: PeerRole,
        key: &[u8; KEY_LEN],
        now_ms: u64,
    ) -> Self {
        Self {
            device_id,
            name,
            role,
            fingerprint: Fingerprint::of(key).to_string(),
            public_key: Base64::encode_string(key),
            address: None,
            first_paired: now_ms,
            last_seen: now_ms,
        }
    }

    /// Whether `key` is this peer's pinned static key.
    pub fn has_key(&self, key: &[u8; KEY_LEN]) -> bool {
        self.public_key == Base64::encode_string(key)
    }

    /// The pinned key's fingerprint, recomputed from the key itself.
    pub fn key_fingerprint(&self) -> Fingerprint {
        match Base64::decode_vec(&self.public_key) {
            Ok(key) => Fingerprint::of(&key),
            Err(_) => Fingerprint::from_string(self.fingerprint.clone()),
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct TrustFile {
    peers: Vec<PinnedPeer>,
}

/// The set of pinned peers, backed by `trust.json`.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
    peers: Vec<PinnedPeer>,
}

impl TrustStore {
    /// Loads the store of `home`; a missing file is an empty store.
    pub fn load(home: &Home) -> Result<Self> {
        Self::load_from(home.file(TRUST_FILE))
    }

    /// Loads the store at `path`.
    pub fn load_from(path: PathBuf) -> Result<Self> {
        let peers = match read_optional(&path)? {
            Some(bytes) => {
                serde_json::from_slice::<TrustFile>(&bytes)
                    .map_err(|e| Error::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                    .peers
            }
            None => Vec::new(),
        };
        Ok(Self { path, peers })
    }

    /// The file behind this store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every pinned peer.
    pub fn peers(&self) -> &[PinnedPeer] {
        &self.peers
    }

    /// The peer pinned with `key` in `role`, if any.
    pub fn find(&self, role: PeerRole, key: &[u8; KEY_LEN]) -> Option<&PinnedPeer> {
        self.peers.iter().find(|p| p.role == role && p.has_key(key))
    }

    /// The signer last reached at `address`, if any.
    pub fn signer_at(&self, address: &str) -> Option<&PinnedPeer> {
        self.peers
            .iter()
            .filter(|p| p.role == PeerRole::Signer && p.address.as_deref() == Some(address))
            .max_by_key(|p| p.last_seen)
    }

    /// Pinned signers, most recently seen first.
    pub fn signers(&self) -> Vec<&PinnedPeer> {
        let mut signers: Vec<_> = self
            .peers
            .iter()
            .filter(|p| p.role == PeerRole::Signer)
            .collect();
        signers.sort_by_key(|p| std::cmp::Reverse(p.last_seen));
        signers
    }

    /// Pins `peer`, replacing any record with the same key and role, and saves.
    pub fn pin(&mut self, peer: PinnedPeer) -> Result<()> {
        self.peers
            .retain(|p| !(p.role == peer.role && p.public_key == peer.public_key));
        self.peers.push(peer);
        self.save()
    }

    /// Records a session with a pinned peer, and saves.
    ///
    /// `lastSeen` is kept to the minute: rewriting and syncing the file on
    /// every reconnect would cost more than the handshake itself.
    pub fn touch(
        &mut self,
        role: PeerRole,
        key: &[u8; KEY_LEN],
        now_ms: u64,
        address: Option<&str>,
    ) -> Result<()> {
        const PRECISION_MS: u64 = 60_000;
        let Some(peer) = self
            .peers
            .iter_mut()
            .find(|p| p.role == role && p.has_key(key))
        else {
            return Ok(());
        };
        let moved = address.is_some_and(|a| peer.address.as_deref() != Some(a));
        if !moved && now_ms.saturating_sub(peer.last_seen) < PRECISION_MS {
            return Ok(());
        }
        peer.last_seen = now_ms;
        if let Some(address) = address {
            peer.address = Some(address.to_owned());
        }
        self.save()
    }

    /// Forgets every peer whose name, device id or fingerprint is `which`;
    /// returns how many were removed.
    pub fn remove(&mut self, which: &str) -> Result<usize> {
        let before = self.peers.len();
        self.peers
            .retain(|p| p.name != which && p.device_id != which && p.fingerprint != which);
        let removed = before - self.peers.len();
        if removed > 0 {
            self.save()?;
        }
        Ok(removed)
    }

    fn save(&self) -> Result<()> {
        let file = TrustFile {
            peers: self.peers.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_private(&self.path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_persists_and_reloads_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        let mut store = TrustStore::load_from(path.clone()).unwrap();
        assert!(store.peers().is_empty());
        let key = [7u8; 32];
        store
            .pin(PinnedPeer::new(
                "id".into(),
                "laptop".into(),
                PeerRole::Requester,
                &key,
                5,
            ))
            .unwrap();
        let reloaded = TrustStore::load_from(path.clone()).unwrap();
        assert_eq!(
            reloaded.find(PeerRole::Requester, &key).unwrap().name,
            "laptop"
        );
        assert!(reloaded.find(PeerRole::Signer, &key).is_none());
        assert!(reloaded.find(PeerRole::Requester, &[8u8; 32]).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn touch_records_moves_at_once_and_last_seen_to_the_minute() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        let key = [7u8; 32];
        let mut store = TrustStore::load_from(path.clone()).unwrap();
        store
            .pin(PinnedPeer::new(
                "id".into(),
                "phone".into(),
                PeerRole::Signer,
                &key,
                0,
            ))
            .unwrap();
        store
            .touch(PeerRole::Signer, &key, 1_000, Some("127.0.0.1:1"))
            .unwrap();
        store
            .touch(PeerRole::Signer, &key, 2_000, Some("127.0.0.1:1"))
            .unwrap();
        let saved = TrustStore::load_from(path.clone()).unwrap();
        assert_eq!(saved.peers()[0].address.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(saved.peers()[0].last_seen, 1_000);
        store
            .touch(PeerRole::Signer, &key, 90_000, Some("127.0.0.1:1"))
            .unwrap();
        assert_eq!(
            TrustStore::load_from(path).unwrap().peers()[0].last_seen,
            90_000
        );
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = TrustStore::load_from(path).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
