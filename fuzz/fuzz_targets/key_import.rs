//! Arbitrary bytes as the OpenSSH private-key file `vmux key import` reads
//! (before asking for its passphrase). Must answer or refuse, never panic;
//! a file that parses must agree with ssh-key about being encrypted, and a
//! plain one must re-encode to a file that parses to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssh_key::{LineEnding, PrivateKey};

fuzz_target!(|data: &[u8]| {
    let answer = vmux_keys::keyring::is_encrypted(data);
    let parsed = PrivateKey::from_openssh(data);
    assert_eq!(answer.is_ok(), parsed.is_ok());
    let Ok(key) = parsed else { return };
    assert_eq!(answer.ok(), Some(key.is_encrypted()));
    let pem = key.to_openssh(LineEnding::LF).expect("re-encode");
    let again = PrivateKey::from_openssh(pem.as_bytes()).expect("our own file parses");
    assert_eq!(again.public_key().key_data(), key.public_key().key_data());
    assert_eq!(again.is_encrypted(), key.is_encrypted());
});
