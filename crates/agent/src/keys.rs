//! The identities the agent offers: the signer's public keys, live from the
//! last key list or else from the cache. Public material only.

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
        }
    }

    /// The algorithm name at the start of the blob (what `keyAlgorithm`
    /// must carry); falls back to the advertised one.
    pub fn blob_algorithm(&self) -> String {
        self.blob
            .get(..4)
            .and_then(|l| l.try_into().ok())
            .map(u32::from_be_bytes)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| self.blob.get(4..4usize.saturating_add(n)))
            .and_then(|name| std::str::from_utf8(name).ok())
            .map_or_else(|| self.algorithm.clone(), str::to_owned)
    }
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
