//! The identities the agent offers: the signers' public keys, each tagged
//! with the signer holding it, live from the last key lists or else from
//! the cache. Public material only.

use vmux_link::Fingerprint;
use vmux_proto::agent::Identity;
use vmux_proto::envelope::{ProviderKind, PublicKeyRecord};

/// One signer-held key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// SSH algorithm name, e.g. `ecdsa-sha2-nistp256`.
    pub algorithm: String,
    /// OpenSSH public key blob.
    pub blob: Vec<u8>,
    /// Comment as set on the signer.
    pub comment: String,
    /// Where the private half lives.
    pub provider_kind: ProviderKind,
    /// Friendly name, when the signer gave one.
    pub display_name: Option<String>,
    /// `SHA256:` fingerprint of `blob`, as `ssh-keygen -l` prints it.
    pub fingerprint: Fingerprint,
    /// The signer that listed it; `None` in a cache from before signers
    /// were told apart.
    pub signer: Option<Holder>,
}

/// A signer, as a key remembers where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its link key's fingerprint: what identifies it.
    pub fingerprint: Fingerprint,
    /// Its name, from its hello: for people.
    pub name: String,
}

impl Key {
    /// A key from a `keyList` record; the fingerprint is computed here,
    /// never taken from anyone.
    pub fn from_record(r: &PublicKeyRecord) -> Self {
        Self {
            algorithm: r.algorithm.clone(),
            blob: r.public_key_blob.clone(),
            comment: r.comment.clone(),
            provider_kind: r.provider_kind,
            display_name: r.display_name.clone(),
            fingerprint: Fingerprint::of(&r.public_key_blob),
            signer: None,
        }
    }

    /// The algorithm name at the start of the blob (what `keyAlgorithm`
    /// must carry); falls back to the advertised one.
    pub fn blob_algorithm(&self) -> String {
        algorithm_of(&self.blob).unwrap_or_else(|| self.algorithm.clone())
    }
}

/// The algorithm name at the start of an SSH public key blob.
pub fn algorithm_of(blob: &[u8]) -> Option<String> {
    blob.get(..4)
        .and_then(|l| l.try_into().ok())
        .map(u32::from_be_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| blob.get(4..4usize.saturating_add(n)))
        .and_then(|name| std::str::from_utf8(name).ok())
        .map(str::to_owned)
}

/// Where the current list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Nothing known yet.
    #[default]
    None,
    /// Loaded from the cache file.
    Cache,
    /// From the signer in this run.
    Live,
}

/// The current key list.
#[derive(Debug, Default)]
pub struct Keys {
    keys: Vec<Key>,
    source: Source,
}

impl Keys {
    /// Replaces the list.
    pub fn set(&mut self, keys: Vec<Key>, source: Source) {
        self.keys = keys;
        self.source = source;
    }

    /// Replaces the keys of `signer` with its live list, where its keys
    /// were (else at the end); the other signers' keys stay. Untagged keys
    /// from an old cache go: they were from whichever signer lists now.
    pub fn set_signer(&mut self, signer: &Holder, keys: Vec<Key>) {
        let at = self.keys.iter().position(|k| {
            k.signer
                .as_ref()
                .is_none_or(|h| h.fingerprint == signer.fingerprint)
        });
        self.keys.retain(|k| {
            k.signer
                .as_ref()
                .is_some_and(|h| h.fingerprint != signer.fingerprint)
        });
        let at = at.unwrap_or(self.keys.len()).min(self.keys.len());
        let tagged = keys.into_iter().map(|mut k| {
            k.signer = Some(signer.clone());
            k
        });
        self.keys.splice(at..at, tagged);
        self.source = Source::Live;
    }

    /// Forgets the keys of signers not in `pinned` (unpaired here); keys
    /// of no known signer stay. True if any went.
    pub fn retain_pinned(&mut self, pinned: &[Fingerprint]) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| {
            k.signer
                .as_ref()
                .is_none_or(|h| pinned.contains(&h.fingerprint))
        });
        self.keys.len() != before
    }

    /// The keys, in the signer's order.
    pub fn list(&self) -> &[Key] {
        &self.keys
    }

    /// Where the list came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The key with this blob, if we offer it.
    pub fn find(&self, blob: &[u8]) -> Option<&Key> {
        self.keys.iter().find(|k| k.blob == blob)
    }

    /// The identities answer.
    pub fn identities(&self) -> Vec<Identity> {
        self.keys
            .iter()
            .map(|k| Identity {
                key_blob: k.blob.clone(),
                comment: k.comment.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(comment: &str, blob: &[u8]) -> Key {
        Key::from_record(&PublicKeyRecord {
            algorithm: "ssh-ed25519".into(),
            public_key_blob: blob.to_vec(),
            comment: comment.into(),
            provider_kind: ProviderKind::Software,
            display_name: None,
        })
    }

    fn holder(name: &str) -> Holder {
        Holder {
            fingerprint: Fingerprint::from_string(format!("SHA256:{name}")),
            name: name.into(),
        }
    }

    #[test]
    fn each_signer_replaces_only_its_own_keys_in_place() {
        let mut keys = Keys::default();
        // An old cache: untagged keys, gone with the first live list.
        keys.set(vec![key("old", b"o")], Source::Cache);
        keys.set_signer(&holder("phone"), vec![key("work", b"w")]);
        keys.set_signer(&holder("tablet"), vec![key("home", b"h")]);
        keys.set_signer(&holder("phone"), vec![key("work", b"w"), key("git", b"g")]);
        let listed: Vec<&str> = keys.list().iter().map(|k| k.comment.as_str()).collect();
        assert_eq!(listed, ["work", "git", "home"]);
        assert_eq!(keys.source(), Source::Live);
        assert_eq!(keys.find(b"h").unwrap().signer, Some(holder("tablet")));
        assert_eq!(keys.find(b"g").unwrap().signer, Some(holder("phone")));
        assert!(keys.find(b"nothing").is_none());
    }

    #[test]
    fn unpinned_signers_keys_go_and_untagged_ones_stay() {
        let held_by = |comment: &str, blob: &[u8], signer: &str| Key {
            signer: Some(holder(signer)),
            ..key(comment, blob)
        };
        let mut keys = Keys::default();
        // A cache: one key from before signers were told apart.
        keys.set(
            vec![
                key("old", b"o"),
                held_by("work", b"w", "phone"),
                held_by("home", b"h", "tablet"),
            ],
            Source::Cache,
        );
        assert!(!keys.retain_pinned(&[holder("phone").fingerprint, holder("tablet").fingerprint]));
        assert!(keys.retain_pinned(&[holder("tablet").fingerprint]));
        let listed: Vec<&str> = keys.list().iter().map(|k| k.comment.as_str()).collect();
        assert_eq!(listed, ["old", "home"]);
        assert!(keys.retain_pinned(&[]));
        let listed: Vec<&str> = keys.list().iter().map(|k| k.comment.as_str()).collect();
        assert_eq!(listed, ["old"]);
    }
}
