//! The trust store: peers whose static keys were pinned by pairing.
//!
//! One JSON file (0600) per device, rewritten atomically. Identity checks
//! compare the full public key; the fingerprint is kept for people reading
//! the file.
//!
//! Several processes change the file (a running signer or agent, `vmux
//! pair`, `vmux peers remove`), so every change is a read-modify-write of
//! the file as it is on disk, under an exclusive `flock` on a lock file
//! beside it. A [`TrustStore`] in memory is only a snapshot for reading: it
//! is never written back whole, so it cannot resurrect a peer that was
//! removed meanwhile. The lock is held only for the file work, never across
//! network I/O.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

use crate::home::{Home, StateFile};
use crate::noise::KEY_LEN;
use crate::watch::stamp;
use crate::{Error, Fingerprint, Result};

/// `trust.json`, the pinned peers: a few hundred bytes each, so a store
/// of thousands stays under this cap.
pub const TRUST_FILE: StateFile = StateFile::new("trust.json", 1 << 20);
/// How often [`unpinned`] looks at the file.
const WATCH_INTERVAL: Duration = Duration::from_millis(400);

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

impl PinnedPeer {
    /// Whether `which` is this peer's name, device id or fingerprint.
    pub fn matches(&self, which: &str) -> bool {
        self.name == which || self.device_id == which || self.fingerprint == which
    }
}

#[derive(Default, Serialize, Deserialize)]
struct TrustFile {
    peers: Vec<PinnedPeer>,
}

/// Where the trust store of `home` lives.
pub fn path(home: &Home) -> PathBuf {
    TRUST_FILE.path(home)
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
        Self::load_from(path(home))
    }

    /// Loads the store at `path`.
    pub fn load_from(path: PathBuf) -> Result<Self> {
        let peers = match TRUST_FILE.read_at(&path)? {
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
        self.edit(|peers| {
            peers.retain(|p| !(p.role == peer.role && p.public_key == peer.public_key));
            peers.push(peer);
        })
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
        let stale = |p: &PinnedPeer| {
            let moved = address.is_some_and(|a| p.address.as_deref() != Some(a));
            moved || now_ms.saturating_sub(p.last_seen) >= PRECISION_MS
        };
        // Most reconnects change nothing worth a locked rewrite.
        if !self.find(role, key).is_some_and(stale) {
            return Ok(());
        }
        self.edit(|peers| {
            // Only a peer still on disk: one removed meanwhile stays removed.
            let found = peers
                .iter_mut()
                .find(|p| p.role == role && p.has_key(key) && stale(p));
            if let Some(p) = found {
                p.last_seen = now_ms;
                if let Some(address) = address {
                    p.address = Some(address.to_owned());
                }
            }
        })
    }

    /// Forgets every peer whose name, device id or fingerprint is `which`;
    /// returns how many were removed.
    pub fn remove(&mut self, which: &str) -> Result<usize> {
        self.edit(|peers| {
            let before = peers.len();
            peers.retain(|p| !p.matches(which));
            before - peers.len()
        })
    }

    /// Renames the one peer whose name, device id or fingerprint is
    /// `which` to `name` (a valid device name, [`crate::device::check_name`]).
    /// Returns how many peers matched: only when exactly one did is it
    /// renamed.
    pub fn rename(&mut self, which: &str, name: &str) -> Result<usize> {
        crate::device::check_name(name)?;
        if name.len() > vmux_proto::envelope::limits::MAX_DEVICE_NAME_LEN {
            return Err(Error::Name {
                name: name.to_owned(),
                why: format!(
                    "is {} bytes; a pinned name is at most {}",
                    name.len(),
                    vmux_proto::envelope::limits::MAX_DEVICE_NAME_LEN
                ),
            });
        }
        self.edit(|peers| {
            let mut matching: Vec<_> = peers.iter_mut().filter(|p| p.matches(which)).collect();
            if let [only] = matching.as_mut_slice() {
                name.clone_into(&mut only.name);
            }
            matching.len()
        })
    }

    /// Applies `change` to the store as it is on disk now, under the lock,
    /// saves it if it changed, and makes it this snapshot.
    fn edit<R>(&mut self, change: impl FnOnce(&mut Vec<PinnedPeer>) -> R) -> Result<R> {
        let _lock = vmux_state::home::lock(&self.path)?;
        let mut fresh = Self::load_from(self.path.clone())?;
        let before = fresh.peers.clone();
        let result = change(&mut fresh.peers);
        if fresh.peers != before {
            fresh.save()?;
        }
        self.peers = fresh.peers;
        Ok(result)
    }

    fn save(&self) -> Result<()> {
        let file = TrustFile {
            peers: self.peers.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(TRUST_FILE.write_at(&self.path, &json)?)
    }
}

/// Resolves once no peer in `role` is pinned with `key` in the store at
/// `path`: removed by `vmux peers remove`, in this process or another.
///
/// Polls the file's identity (inode, size, modification time) and reads it
/// again only when that changed. An unreadable or corrupt store counts as
/// removal: a session must not outlive the trust that admitted it.
pub async fn unpinned(path: PathBuf, role: PeerRole, key: [u8; KEY_LEN]) {
    // `None` until the first look; then the stamp of the file last read.
    let mut seen = None;
    loop {
        let now = Some(stamp(&path));
        if now != seen {
            match TrustStore::load_from(path.clone()) {
                Ok(store) if store.find(role, &key).is_none() => return,
                Ok(_) => seen = now,
                Err(e @ Error::Corrupt { .. }) => {
                    tracing::warn!("{e}; closing the session it admitted");
                    return;
                }
                // Transient (descriptors, a slow disk): look again.
                Err(e) => tracing::debug!("cannot read the trust store: {e}"),
            }
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
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

    fn pinned(name: &str, key: u8) -> PinnedPeer {
        PinnedPeer::new(
            format!("id-{name}"),
            name.into(),
            PeerRole::Requester,
            &[key; 32],
            0,
        )
    }

    #[test]
    fn a_stale_snapshot_never_writes_a_removed_peer_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        let mut running = TrustStore::load_from(path.clone()).unwrap();
        running.pin(pinned("ci", 1)).unwrap();
        running.pin(pinned("laptop", 2)).unwrap();
        // Another process (`vmux peers remove`) forgets "ci".
        let mut cli = TrustStore::load_from(path.clone()).unwrap();
        assert_eq!(cli.remove("ci").unwrap(), 1);
        // The running one, whose snapshot still has it, records sessions.
        running
            .touch(PeerRole::Requester, &[1; 32], 120_000, None)
            .unwrap();
        running
            .touch(PeerRole::Requester, &[2; 32], 120_000, None)
            .unwrap();
        running.pin(pinned("phone", 3)).unwrap();
        let names: Vec<String> = TrustStore::load_from(path)
            .unwrap()
            .peers()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(names, ["laptop", "phone"]);
        assert!(running.find(PeerRole::Requester, &[1; 32]).is_none());
    }

    #[test]
    fn concurrent_edits_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        std::thread::scope(|s| {
            for key in 0..8u8 {
                let path = path.clone();
                s.spawn(move || {
                    let mut store = TrustStore::load_from(path).unwrap();
                    store.pin(pinned(&format!("d{key}"), key)).unwrap();
                });
            }
        });
        assert_eq!(TrustStore::load_from(path).unwrap().peers().len(), 8);
    }

    #[test]
    fn rename_changes_one_pinned_name_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        let mut store = TrustStore::load_from(path.clone()).unwrap();
        store.pin(pinned("ci", 1)).unwrap();
        store.pin(pinned("twin", 2)).unwrap();
        store.pin(pinned("twin", 3)).unwrap();
        assert_eq!(store.rename("ci", "build box").unwrap(), 1);
        assert_eq!(
            store.rename("twin", "x").unwrap(),
            2,
            "ambiguous: nothing renamed"
        );
        assert_eq!(store.rename("nobody", "x").unwrap(), 0);
        let err = store
            .rename("build box", "evil\u{1b}[2J")
            .unwrap_err()
            .to_string();
        assert!(err.contains("U+001B") && !err.contains('\u{1b}'), "{err}");
        assert!(store.rename("build box", &"x".repeat(65)).is_err());
        let names: Vec<String> = TrustStore::load_from(path)
            .unwrap()
            .peers()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(names, ["build box", "twin", "twin"]);
    }

    #[tokio::test]
    async fn unpinned_resolves_soon_after_removal_by_another_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        let mut store = TrustStore::load_from(path.clone()).unwrap();
        store.pin(pinned("ci", 1)).unwrap();
        store.pin(pinned("laptop", 2)).unwrap();
        let watch = tokio::spawn(unpinned(path.clone(), PeerRole::Requester, [1; 32]));
        // Other changes don't end it.
        store
            .touch(PeerRole::Requester, &[2; 32], 600_000, None)
            .unwrap();
        tokio::time::sleep(WATCH_INTERVAL * 2).await;
        assert!(!watch.is_finished());
        TrustStore::load_from(path.clone())
            .unwrap()
            .remove("ci")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(2), watch)
            .await
            .expect("noticed within 2 s")
            .unwrap();
        // A peer never pinned is noticed at once.
        tokio::time::timeout(
            Duration::from_secs(1),
            unpinned(path, PeerRole::Signer, [1; 32]),
        )
        .await
        .unwrap();
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
