//! Arbitrary bytes as the signer's `identities.json`, followed to what the
//! signer sends: the key list. Every identity must survive a JSON round
//! trip, be found by its own key blob, and the key list built from the file
//! must encode as a `keyList` envelope that decodes back equal whenever its
//! fields are within the link's limits.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmux_keys::Identity;
use vmux_keys::keyring::FILE;
use vmux_link::home::Home;
use vmux_proto::envelope::limits::{MAX_BLOB_LEN, MAX_KEYS, MAX_TEXT_LEN};
use vmux_proto::envelope::{Envelope, KeyList};
use vmux_signer::identities::{Identities, blob_algorithm};

fn home() -> &'static Home {
    static HOME: OnceLock<Home> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vmux-fuzz-identities-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Home::at(dir).expect("temp home")
    })
}

fuzz_target!(|data: &[u8]| {
    let home = home();
    std::fs::write(FILE.path(home), data).expect("write identities.json");
    let Ok(ids) = Identities::load(home) else {
        return;
    };
    let records = ids.records();
    for record in &records {
        let identity = ids
            .find(&record.public_key_blob)
            .expect("found by its own blob");
        assert_eq!(
            identity.key_blob().ok().as_ref(),
            Some(&record.public_key_blob)
        );
        assert!(blob_algorithm(&record.public_key_blob).is_some());
        let json = serde_json::to_vec(&identity).expect("encode");
        assert_eq!(
            serde_json::from_slice::<Identity>(&json).expect("decode"),
            identity
        );
    }
    let list = KeyList {
        keys: records,
        ca_public_key: ids.ca_public_key_blob(),
    };
    let fits = list.keys.len() <= MAX_KEYS
        && list.keys.iter().all(|k| {
            k.algorithm.len() <= MAX_TEXT_LEN
                && k.comment.len() <= MAX_TEXT_LEN
                && k.display_name
                    .as_ref()
                    .is_none_or(|d| d.len() <= MAX_TEXT_LEN)
                && k.public_key_blob.len() <= MAX_BLOB_LEN
        });
    let envelope = Envelope::KeyList(list);
    match envelope.encode() {
        Ok(bytes) => assert_eq!(Envelope::decode(&bytes).expect("decodes"), envelope),
        // Refused by the codec, never sent cut: a field over its limit, or
        // the whole list over one envelope.
        Err(e @ vmux_proto::Error::FieldSize { .. }) => assert!(!fits, "{e}"),
        Err(vmux_proto::Error::TooLong { .. }) => {}
        Err(e) => panic!("key list does not encode: {e}"),
    }
});
