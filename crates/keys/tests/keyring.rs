//! The identity registry: names, state changes, persistence, file modes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vmux_keys::keyring::{FILE, Store};
use vmux_keys::store::{Provider, RsaHash};
use vmux_keys::{KeyType, Keyring};
use vmux_state::Home;
use zeroize::Zeroizing;

fn secret(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

fn home(dir: &Path) -> Home {
    Home::at(dir.join("home")).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn names_are_validated_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = Keyring::load(&home(dir.path())).unwrap();
    for bad in [
        "",
        "a/b",
        "..",
        ".hidden",
        "a b",
        "a\\b",
        "x".repeat(65).as_str(),
        "ünï",
    ] {
        let err = ring
            .create_software(bad, KeyType::Ed25519, &secret("p"))
            .unwrap_err();
        assert!(
            err.to_string().contains("not a valid identity name"),
            "{bad:?}: {err}"
        );
    }
    ring.create_software("work-laptop_1@home.lan", KeyType::Ed25519, &secret("p"))
        .unwrap();
    let err = ring
        .create_software("work-laptop_1@home.lan", KeyType::Ed25519, &secret("p"))
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(ring.list().len(), 1);
}

#[test]
fn registry_survives_reload_with_private_modes() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let mut ring = Keyring::load(&home).unwrap();
    let made = ring
        .create_software("main", KeyType::Ecdsa, &secret("p"))
        .unwrap()
        .clone();
    assert_eq!(made.algorithm, "ecdsa-sha2-nistp256");
    assert!(made.fingerprint.starts_with("SHA256:"));
    assert!(made.enabled);
    assert_eq!(made.provider(), Provider::Software);
    assert_eq!(
        made.store,
        Store::Software {
            file: "main.key".into()
        }
    );
    assert_eq!(
        made.authorized_keys_line(),
        format!("{} main", made.public_key)
    );

    let again = Keyring::load(&home).unwrap();
    assert_eq!(again.list(), std::slice::from_ref(&made));
    let blob = made.key_blob().unwrap();
    assert_eq!(again.find_by_blob(&blob).unwrap().name, "main");
    assert!(again.find_by_blob(b"other").is_none());

    assert_eq!(mode(&FILE.path(&home)), 0o600);
    assert_eq!(mode(&again.keys_dir()), 0o700);
    assert_eq!(mode(&again.key_path(&made).unwrap()), 0o600);
}

#[test]
fn disable_enable_remove() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let mut ring = Keyring::load(&home).unwrap();
    ring.create_software("a", KeyType::Ed25519, &secret("p"))
        .unwrap();
    ring.create_software("b", KeyType::Ed25519, &secret("p"))
        .unwrap();

    ring.set_enabled("a", false).unwrap();
    assert!(!Keyring::load(&home).unwrap().get("a").unwrap().enabled);
    let err = ring.open("a").unwrap_err();
    assert!(err.to_string().contains("vmux key enable a"), "{err}");
    ring.set_enabled("a", true).unwrap();
    ring.open("a")
        .unwrap()
        .sign(&secret("p"), b"x", RsaHash::default())
        .unwrap();

    let file = ring.key_path(ring.get("a").unwrap()).unwrap();
    let removed = ring.remove("a").unwrap();
    assert_eq!(removed.name, "a");
    assert!(!file.exists(), "the key file is deleted");
    let reloaded = Keyring::load(&home).unwrap();
    assert_eq!(reloaded.list().len(), 1);
    assert_eq!(reloaded.list()[0].name, "b");

    for err in [
        ring.remove("a").unwrap_err(),
        ring.set_enabled("zz", true).unwrap_err(),
    ] {
        assert!(err.to_string().contains("vmux key list"), "{err}");
    }
}

#[test]
fn the_same_key_is_not_imported_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = Keyring::load(&home(dir.path())).unwrap();
    let made = ring
        .create_software("one", KeyType::Ed25519, &secret("p"))
        .unwrap()
        .clone();
    let pem = std::fs::read(ring.key_path(&made).unwrap()).unwrap();
    let err = ring.import_software("two", &pem, &secret("p")).unwrap_err();
    assert!(
        err.to_string().contains("already identity \"one\""),
        "{err}"
    );
}

#[test]
fn garbage_is_not_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = Keyring::load(&home(dir.path())).unwrap();
    let err = ring
        .import_software("x", b"hello", &secret("p"))
        .unwrap_err();
    assert!(
        err.to_string().contains("not an OpenSSH private key"),
        "{err}"
    );
}
