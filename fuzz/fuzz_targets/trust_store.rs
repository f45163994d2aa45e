//! Arbitrary bytes as a device's `trust.json`, the pinned peers every
//! handshake is checked against. A peer whose pinned key decodes must be
//! found by that key, and a store that loads must save and load back to
//! the same peers.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use base64ct::{Base64, Encoding};
use libfuzzer_sys::fuzz_target;
use vmux_link::noise::KEY_LEN;
use vmux_link::trust::TrustStore;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vmux-fuzz-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("trust.json")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write trust.json");
    let Ok(mut store) = TrustStore::load_from(path.clone()) else {
        return;
    };
    for peer in store.peers() {
        let _ = peer.key_fingerprint();
        let Ok(key) = Base64::decode_vec(&peer.public_key) else {
            continue;
        };
        let Ok(key) = <[u8; KEY_LEN]>::try_from(key) else {
            continue;
        };
        // The key a handshake presents finds the peer pinned with it.
        assert!(
            store.find(peer.role, &key).is_some(),
            "{peer:?} not found by its key"
        );
    }
    let _ = store.signers();
    let Some(last) = store.peers().last().cloned() else {
        return;
    };
    // Re-pinning the last peer saves the file; it must load back the same.
    let mut expected: Vec<_> = store
        .peers()
        .iter()
        .filter(|p| !(p.role == last.role && p.public_key == last.public_key))
        .cloned()
        .collect();
    expected.push(last.clone());
    store.pin(last).expect("save");
    assert_eq!(store.peers(), expected.as_slice());
    let again = TrustStore::load_from(path.clone()).expect("our own file loads");
    assert_eq!(again.peers(), expected.as_slice());
});
