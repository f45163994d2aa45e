//! The public-key cache: the last key list, so `ssh-add -l` works while the
//! signer is away and after a restart. Public material only.

use std::collections::HashMap;
use std::path::Path;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use vmux_link::home::StateFile;
use vmux_proto::envelope::ProviderKind;
use vmux_proto::envelope::limits::{MAX_BLOB_LEN, MAX_KEYS, MAX_TEXT_LEN};

use crate::keys::{Holder, Key};

/// File name in the state directory.
pub const CACHE_FILE: &str = "keys-cache.json";
/// A cache larger than this is not ours: room for 16 signers' lists, each
/// of which came in one envelope (under 64 KiB), well under 1 MiB as JSON
/// even with every character escaped.
const MAX_CACHE_LEN: u64 = 16 * 1024 * 1024;
/// The cache in the state directory, at most [`MAX_CACHE_LEN`].
pub const CACHE: StateFile = StateFile::new(CACHE_FILE, MAX_CACHE_LEN);
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
    keys: Vec<CachedKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedKey {
    algorithm: String,
    /// Base64 of the OpenSSH public key blob.
    public_key_blob: String,
    comment: String,
    provider_kind: ProviderKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    /// For people reading the file; recomputed on load.
    fingerprint: String,
    /// The link-key fingerprint of the signer that listed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signer_fingerprint: Option<String>,
    /// That signer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signer_name: Option<String>,
}

/// Writes `keys` atomically, 0600.
pub fn save(path: &Path, signer: Option<&str>, keys: &[Key]) -> Result<(), vmux_link::Error> {
    let file = CacheFile {
        version: VERSION,
        signer: signer.map(str::to_owned),
        keys: keys
            .iter()
            .map(|k| CachedKey {
                algorithm: k.algorithm.clone(),
                public_key_blob: Base64::encode_string(&k.blob),
                comment: k.comment.clone(),
                provider_kind: k.provider_kind,
                display_name: k.display_name.clone(),
                fingerprint: k.fingerprint.to_string(),
                signer_fingerprint: k.signer.as_ref().map(|h| h.fingerprint.to_string()),
                signer_name: k.signer.as_ref().map(|h| h.name.clone()),
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| vmux_link::Error::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(CACHE.write_at(path, &json)?)
}

/// Reads the cache. A missing file is an empty list; an unreadable or
/// corrupt one is an empty list and a message saying why.
pub fn load(path: &Path) -> (Vec<Key>, Option<String>) {
    match read(path) {
        Ok(keys) => (keys, None),
        Err(why) => (
            Vec::new(),
            Some(format!(
                "ignoring the key cache {} ({why}); the key list is empty until the signer connects, which rewrites it",
                path.display()
            )),
        ),
    }
}

fn read(path: &Path) -> Result<Vec<Key>, String> {
    let bytes = match CACHE.read_at(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(e.reason()),
    };
    let file: CacheFile = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if file.version != VERSION {
        return Err(format!("unknown version {}", file.version));
    }
    // Each signer lists up to MAX_KEYS, so the cap is per signer; untagged
    // keys (an older cache) came from one.
    let mut per_signer: HashMap<Option<&str>, usize> = HashMap::new();
    for k in &file.keys {
        let count = per_signer
            .entry(k.signer_fingerprint.as_deref())
            .or_default();
        *count = count.saturating_add(1);
        if *count > MAX_KEYS {
            return Err(format!("one signer has more than {MAX_KEYS} keys"));
        }
    }
    file.keys
        .into_iter()
        .map(|k| {
            let blob = Base64::decode_vec(&k.public_key_blob)
                .map_err(|_| format!("key {:?} has a bad blob", k.comment))?;
            if blob.is_empty()
                || blob.len() > MAX_BLOB_LEN
                || k.comment.len() > MAX_TEXT_LEN
                || k.algorithm.len() > MAX_TEXT_LEN
                || k.signer_fingerprint
                    .as_ref()
                    .is_some_and(|f| f.len() > MAX_TEXT_LEN)
                || k.signer_name
                    .as_ref()
                    .is_some_and(|n| n.len() > MAX_TEXT_LEN)
            {
                return Err(format!("key {:?} is out of bounds", k.comment));
            }
            Ok(Key {
                algorithm: k.algorithm,
                fingerprint: vmux_link::Fingerprint::of(&blob),
                blob,
                comment: k.comment,
                provider_kind: k.provider_kind,
                display_name: k.display_name,
                signer: k.signer_fingerprint.map(|f| Holder {
                    fingerprint: vmux_link::Fingerprint::from_string(f),
                    name: k.signer_name.unwrap_or_default(),
                }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vmux_proto::envelope::PublicKeyRecord;

    #[test]
    fn round_trips_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE);
        assert_eq!(load(&path), (Vec::new(), None));
        let key = Key::from_record(&PublicKeyRecord {
            algorithm: "ssh-ed25519".into(),
            public_key_blob: b"\0\0\0\x0bssh-ed25519\0\0\0\x01x".to_vec(),
            comment: "work".into(),
            provider_kind: ProviderKind::Software,
            display_name: None,
        });
        assert_eq!(key.blob_algorithm(), "ssh-ed25519");
        let mut key = key;
        key.signer = Some(Holder {
            fingerprint: vmux_link::Fingerprint::from_string("SHA256:phone".into()),
            name: "phone".into(),
        });
        save(&path, Some("phone"), std::slice::from_ref(&key)).unwrap();
        assert_eq!(load(&path), (vec![key], None));
        std::fs::write(&path, b"{not json").unwrap();
        let (keys, warning) = load(&path);
        assert!(keys.is_empty());
        assert!(warning.unwrap().contains("ignoring the key cache"));
    }

    #[test]
    fn each_signer_may_have_a_full_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE);
        let keys_of = |signer: &str, n: usize| -> Vec<Key> {
            (0..n)
                .map(|i| {
                    let mut key = Key::from_record(&PublicKeyRecord {
                        algorithm: "ssh-ed25519".into(),
                        public_key_blob: format!("{signer}{i}").into_bytes(),
                        comment: format!("{signer} {i}"),
                        provider_kind: ProviderKind::Software,
                        display_name: None,
                    });
                    key.signer = Some(Holder {
                        fingerprint: vmux_link::Fingerprint::from_string(format!(
                            "SHA256:{signer}"
                        )),
                        name: signer.into(),
                    });
                    key
                })
                .collect()
        };
        let mut both = keys_of("phone", MAX_KEYS);
        both.extend(keys_of("tablet", MAX_KEYS));
        save(&path, Some("phone"), &both).unwrap();
        assert_eq!(load(&path), (both, None));

        save(&path, Some("phone"), &keys_of("phone", MAX_KEYS + 1)).unwrap();
        let (keys, warning) = load(&path);
        assert!(keys.is_empty());
        assert!(warning.unwrap().contains("more than 256 keys"));
    }
}
