//! Checks signature blobs with the real `ssh-keygen -Y verify`.
//!
//! Builds SSHSIG by hand from PROTOCOL.sshsig (not with ssh-key's SshSig),
//! so the blob under test reaches ssh-keygen byte for byte.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64ct::{Base64, Encoding};
use ssh_key::sha2::{Digest, Sha512};
use vmux_keys::store::{RsaHash, SigningKey};
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"SSHSIG";
const NAMESPACE: &str = "file";

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The bytes a signer signs for `message`: MAGIC, namespace, reserved,
/// hash algorithm, H(message).
pub fn signed_data(message: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    string(&mut out, NAMESPACE.as_bytes());
    string(&mut out, b"");
    string(&mut out, b"sha512");
    string(&mut out, &Sha512::digest(message));
    out
}

/// The armored signature file wrapping `signature` (an SSH signature blob).
pub fn armor(public_blob: &[u8], signature: &[u8]) -> String {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    string(&mut out, public_blob);
    string(&mut out, NAMESPACE.as_bytes());
    string(&mut out, b"");
    string(&mut out, b"sha512");
    string(&mut out, signature);
    let b64 = Base64::encode_string(&out);
    let mut text = String::from("-----BEGIN SSH SIGNATURE-----\n");
    for chunk in b64.as_bytes().chunks(70) {
        text.push_str(std::str::from_utf8(chunk).unwrap());
        text.push('\n');
    }
    text.push_str("-----END SSH SIGNATURE-----\n");
    text
}

/// The algorithm name at the start of a signature blob.
pub fn blob_algorithm(signature: &[u8]) -> String {
    let len = u32::from_be_bytes(signature[..4].try_into().unwrap()) as usize;
    String::from_utf8(signature[4..4 + len].to_vec()).unwrap()
}

/// Signs a message with `key` through SSHSIG and has ssh-keygen verify it.
/// Returns the signature blob's algorithm name.
pub fn sign_and_verify(
    dir: &Path,
    key: &dyn SigningKey,
    public_line: &str,
    public_blob: &[u8],
    passphrase: &str,
    rsa_hash: RsaHash,
) -> String {
    let message = b"vmux signs this for ssh-keygen\n";
    let signature = key
        .sign(
            &Zeroizing::new(passphrase.to_owned()),
            &signed_data(message),
            rsa_hash,
        )
        .unwrap();
    let sig_path = dir.join("message.sig");
    std::fs::write(&sig_path, armor(public_blob, &signature)).unwrap();
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, format!("tester@vmux {public_line}\n")).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "tester@vmux", "-n", NAMESPACE, "-s"])
        .arg(&sig_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh-keygen is installed (openssh-client)");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -Y verify rejected the signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    blob_algorithm(&signature)
}
