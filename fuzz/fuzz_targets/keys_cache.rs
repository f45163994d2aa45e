//! Arbitrary bytes as the agent's `keys-cache.json`, read at start-up. A
//! cache that loads must hold keys within the link's limits with their
//! fingerprints recomputed, and save and load back to the same keys; one
//! that does not load must say why.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmux_agent::cache::{CACHE_FILE, load, save};
use vmux_link::Fingerprint;
use vmux_proto::envelope::limits::{MAX_BLOB_LEN, MAX_KEYS};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vmux-fuzz-keys-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(CACHE_FILE)
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write the cache");
    let (keys, warning) = load(path);
    if let Some(warning) = warning {
        assert!(keys.is_empty());
        assert!(warning.contains("ignoring the key cache"));
        return;
    }
    // At most MAX_KEYS per signer (untagged keys count as one signer).
    let mut per_signer = std::collections::HashMap::new();
    for k in &keys {
        let n = per_signer
            .entry(k.signer.as_ref().map(|h| h.fingerprint.clone()))
            .or_insert(0usize);
        *n += 1;
        assert!(*n <= MAX_KEYS);
    }
    for k in &keys {
        assert!(!k.blob.is_empty() && k.blob.len() <= MAX_BLOB_LEN);
        assert_eq!(k.fingerprint, Fingerprint::of(&k.blob));
    }
    save(path, Some("fuzz"), &keys).expect("save");
    assert_eq!(load(path), (keys, None));
});
