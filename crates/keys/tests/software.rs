//! The software store against the real ssh-keygen: keys go both ways and
//! every signature verifies with `ssh-keygen -Y verify`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/sshsig.rs"]
mod sshsig;

use std::path::Path;
use std::process::Command;

use vmux_keys::store::{RsaHash, Verification};
use vmux_keys::{Error, KeyType, Keyring};
use vmux_state::Home;
use zeroize::Zeroizing;

const PASS: &str = "correct horse";

fn secret(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

fn keyring(dir: &Path) -> Keyring {
    Keyring::load(&Home::at(dir.join("home")).unwrap()).unwrap()
}

fn ssh_keygen(args: &[&str]) -> std::process::Output {
    Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen is installed (openssh-client)")
}

/// Signs through `name` with every applicable hash and verifies each with
/// ssh-keygen; returns the blobs' algorithm names.
fn verify_all(dir: &Path, ring: &Keyring, name: &str, passphrase: &str) -> Vec<String> {
    let identity = ring.get(name).unwrap();
    let key = ring.open(name).unwrap();
    assert_eq!(key.verification(), Verification::Passphrase);
    let blob = identity.key_blob().unwrap();
    [RsaHash::Sha256, RsaHash::Sha512]
        .into_iter()
        .map(|hash| {
            sshsig::sign_and_verify(
                dir,
                key.as_ref(),
                &identity.public_key,
                &blob,
                passphrase,
                hash,
            )
        })
        .collect()
}

#[test]
fn vmux_keys_open_with_ssh_keygen_and_their_signatures_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = keyring(dir.path());
    for (name, kind, algorithms) in [
        (
            "ec",
            KeyType::Ecdsa,
            ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"],
        ),
        ("ed", KeyType::Ed25519, ["ssh-ed25519", "ssh-ed25519"]),
        ("rsa", KeyType::Rsa, ["rsa-sha2-256", "rsa-sha2-512"]),
    ] {
        let identity = ring
            .create_software(name, kind, &secret(PASS))
            .unwrap()
            .clone();
        assert_eq!(
            identity.algorithm,
            if name == "rsa" {
                "ssh-rsa"
            } else {
                algorithms[0]
            }
        );
        let path = ring.key_path(&identity).unwrap();

        let out = ssh_keygen(&["-y", "-P", PASS, "-f", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "ssh-keygen -y: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        let printed: Vec<&str> = printed.split_whitespace().take(2).collect();
        assert_eq!(printed.join(" "), identity.public_key, "{name}");

        // The fingerprint is the one ssh-keygen computes.
        let pub_path = dir.path().join(format!("{name}.pub"));
        std::fs::write(&pub_path, identity.authorized_keys_line()).unwrap();
        let out = ssh_keygen(&["-l", "-E", "sha256", "-f", pub_path.to_str().unwrap()]);
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .contains(&identity.fingerprint)
        );

        assert_eq!(
            verify_all(dir.path(), &ring, name, PASS),
            algorithms,
            "{name}"
        );
    }
}

#[test]
fn ssh_keygen_keys_import_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = keyring(dir.path());
    for (kind, bits) in [("ecdsa", "256"), ("ed25519", "256"), ("rsa", "3072")] {
        let file = dir.path().join(format!("id_{kind}"));
        let out = ssh_keygen(&[
            "-q",
            "-t",
            kind,
            "-b",
            bits,
            "-N",
            "their pass",
            "-C",
            "made by ssh-keygen",
            "-f",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read(&file).unwrap();
        assert!(vmux_keys::keyring::is_encrypted(&pem).unwrap());

        let wrong = ring.import_software(kind, &pem, &secret("not it"));
        assert!(
            matches!(wrong, Err(Error::WrongSecret)),
            "{kind}: {wrong:?}"
        );

        let identity = ring
            .import_software(kind, &pem, &secret("their pass"))
            .unwrap()
            .clone();
        let public = std::fs::read_to_string(file.with_extension("pub")).unwrap();
        assert!(public.starts_with(&identity.public_key), "{kind}");
        let algorithms = verify_all(dir.path(), &ring, kind, "their pass");
        if kind == "rsa" {
            assert_eq!(algorithms, ["rsa-sha2-256", "rsa-sha2-512"]);
        }
    }
}

#[test]
fn an_unencrypted_key_is_stored_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = keyring(dir.path());
    let file = dir.path().join("id_plain");
    let out = ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let pem = std::fs::read(&file).unwrap();
    assert!(!vmux_keys::keyring::is_encrypted(&pem).unwrap());

    let empty = ring.import_software("plain", &pem, &secret(""));
    assert!(
        matches!(&empty, Err(Error::Other(m)) if m.contains("empty passphrase")),
        "{empty:?}"
    );

    let identity = ring
        .import_software("plain", &pem, &secret("new pass"))
        .unwrap()
        .clone();
    let stored = ring.key_path(&identity).unwrap();
    assert!(vmux_keys::keyring::is_encrypted(&std::fs::read(&stored).unwrap()).unwrap());
    let no_pass = ssh_keygen(&["-y", "-P", "", "-f", stored.to_str().unwrap()]);
    assert!(
        !no_pass.status.success(),
        "the stored key opened without a passphrase"
    );
    let with_pass = ssh_keygen(&["-y", "-P", "new pass", "-f", stored.to_str().unwrap()]);
    assert!(with_pass.status.success());
    verify_all(dir.path(), &ring, "plain", "new pass");
}

#[test]
fn wrong_passphrase_is_wrong_secret_and_empty_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = keyring(dir.path());
    let empty = ring.create_software("k", KeyType::Ed25519, &secret(""));
    assert!(
        matches!(&empty, Err(Error::Other(m)) if m.contains("empty passphrase")),
        "{empty:?}"
    );
    assert!(ring.list().is_empty());

    ring.create_software("k", KeyType::Ecdsa, &secret(PASS))
        .unwrap();
    let key = ring.open("k").unwrap();
    let result = key.sign(&secret("wrong"), b"data", RsaHash::default());
    assert!(matches!(result, Err(Error::WrongSecret)), "{result:?}");
    assert!(key.sign(&secret(PASS), b"data", RsaHash::default()).is_ok());
}

#[test]
fn ecdsa_signature_is_two_mpints() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = keyring(dir.path());
    ring.create_software("ec", KeyType::Ecdsa, &secret(PASS))
        .unwrap();
    let blob = ring
        .open("ec")
        .unwrap()
        .sign(&secret(PASS), b"data", RsaHash::default())
        .unwrap();
    assert_eq!(sshsig::blob_algorithm(&blob), "ecdsa-sha2-nistp256");
    // string alg, then string { mpint r, mpint s } and nothing after.
    let mut rest = &blob[4 + 19..];
    let inner_len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
    rest = &rest[4..];
    assert_eq!(rest.len(), inner_len);
    for _ in 0..2 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!((1..=33).contains(&len), "mpint of {len} bytes");
        assert!(rest[4] & 0x80 == 0, "mpint must be positive");
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty());
}
