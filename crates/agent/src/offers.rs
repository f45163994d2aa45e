//! Which identity to offer first on a bound connection.
//!
//! ssh binds its agent connection to the server's host key before it asks
//! for the identity list, then offers identities in our order; every wrong
//! offer counts against the server's `MaxAuthTries`. So we remember, per
//! host key, the identity that last signed a login there, and list it
//! first among the signer's keys (the session certificate, which needs no
//! approval, stays ahead of them). Memory only, and bounded: a hint, never
//! a record.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use vmux_proto::agent::Identity;

/// Host keys remembered; past this the oldest is forgotten.
pub const MAX_HOSTS: usize = 1024;

/// Host key blob → the key blob that last logged in there.
#[derive(Debug, Default)]
pub struct Offers {
    last: Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
}

impl Offers {
    /// `key` just signed a login to the host with `host_key`.
    pub fn signed(&self, host_key: &[u8], key: &[u8]) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.retain(|(h, _)| h != host_key);
        if last.len() >= MAX_HOSTS {
            last.pop_front();
        }
        last.push_back((host_key.to_vec(), key.to_vec()));
    }

    /// `identities` with the one that last logged in to `host_key` first;
    /// the rest keep their order.
    pub fn order(&self, host_key: Option<&[u8]>, mut identities: Vec<Identity>) -> Vec<Identity> {
        let Some(host_key) = host_key else {
            return identities;
        };
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, key)) = last.iter().find(|(h, _)| h == host_key) {
            identities.sort_by_key(|i| i.key_blob != *key);
        }
        identities
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(blobs: &[&[u8]]) -> Vec<Identity> {
        blobs
            .iter()
            .map(|b| Identity {
                key_blob: b.to_vec(),
                comment: String::new(),
            })
            .collect()
    }

    fn blobs(ids: &[Identity]) -> Vec<&[u8]> {
        ids.iter().map(|i| i.key_blob.as_slice()).collect()
    }

    #[test]
    fn the_last_key_for_a_host_goes_first_and_others_keep_their_order() {
        let offers = Offers::default();
        let list = ids(&[b"k1", b"k2", b"k3"]);
        assert_eq!(
            blobs(&offers.order(Some(b"host"), list.clone())),
            [b"k1", b"k2", b"k3"]
        );
        offers.signed(b"host", b"k3");
        assert_eq!(
            blobs(&offers.order(Some(b"host"), list.clone())),
            [b"k3", b"k1", b"k2"]
        );
        assert_eq!(
            blobs(&offers.order(Some(b"other"), list.clone())),
            [b"k1", b"k2", b"k3"]
        );
        assert_eq!(
            blobs(&offers.order(None, list.clone())),
            [b"k1", b"k2", b"k3"]
        );
        offers.signed(b"host", b"k2");
        assert_eq!(
            blobs(&offers.order(Some(b"host"), list)),
            [b"k2", b"k1", b"k3"]
        );
    }

    #[test]
    fn memory_is_bounded() {
        let offers = Offers::default();
        for i in 0..(MAX_HOSTS + 10) {
            offers.signed(&i.to_le_bytes(), b"k");
        }
        assert_eq!(
            offers
                .last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            MAX_HOSTS
        );
        let list = ids(&[b"x", b"k"]);
        assert_eq!(
            blobs(&offers.order(Some(&0usize.to_le_bytes()), list)),
            [b"x", b"k"]
        );
    }
}
