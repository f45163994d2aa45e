#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! PKCS#11 store against a real SoftHSM2.
//!
//! SoftHSM2 reads its config from `SOFTHSM2_CONF`, and setting env vars in
//! the (threaded) test process would need `unsafe`, which the workspace
//! forbids. So each test re-runs itself as a child process of this binary
//! with its own config and token directory.
//!
//! Missing SoftHSM2: SKIPPED, unless `VMUX_REQUIRE_SOFTHSM=1` (CI) fails it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ssh_key::encoding::base64::{Base64, Encoding};
use ssh_key::sha2::{Digest, Sha512};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey, SshSig};
use vmux_keys::Error;
use vmux_keys::pkcs11::{self, Curve, Pkcs11Key, TokenKey};
use vmux_keys::store::{RsaHash, SigningKey, Verification};
use zeroize::Zeroizing;

const CHILD_ENV: &str = "VMUX_PKCS11_TEST_CHILD";
const TOKEN: &str = "vmux-test-1";
const SO_PIN: &str = "5678";

fn pin() -> Zeroizing<String> {
    Zeroizing::new("1234".to_owned())
}

fn wrong_pin() -> Zeroizing<String> {
    Zeroizing::new("9999".to_owned())
}

fn required() -> bool {
    std::env::var("VMUX_REQUIRE_SOFTHSM").is_ok_and(|v| v == "1")
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs `body` with the module path in a child process that has a fresh
/// SoftHSM2 token labelled [`TOKEN`] (user PIN 1234).
fn in_softhsm(test_name: &str, body: fn(&Path)) {
    if std::env::var_os(CHILD_ENV).is_some() {
        let module = pkcs11::find_softhsm_module().unwrap();
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--pin",
                "1234",
                "--so-pin",
                SO_PIN,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        body(&module);
        return;
    }

    let module = pkcs11::find_softhsm_module();
    if module.is_none() || !have("softhsm2-util") {
        let what = "SoftHSM2 (softhsm2-util and libsofthsm2.so) is not installed";
        assert!(!required(), "{what}, and VMUX_REQUIRE_SOFTHSM=1");
        eprintln!("SKIPPED {test_name}: {what}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child test failed:\n{stdout}\n{stderr}"
    );
    eprint!("{stderr}");
    // A filter typo would run nothing and still succeed.
    assert!(
        stdout.contains("1 passed"),
        "child ran no test:\n{stdout}\n{stderr}"
    );
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

/// PROTOCOL.sshsig: what the key actually signs.
fn sshsig_signed_data(namespace: &str, message: &[u8]) -> Vec<u8> {
    let mut out = b"SSHSIG".to_vec();
    put_string(&mut out, namespace.as_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, b"sha512");
    put_string(&mut out, &Sha512::digest(message));
    out
}

/// PROTOCOL.sshsig: the armored signature file.
fn sshsig_armor(public: &PublicKey, namespace: &str, signature_blob: &[u8]) -> String {
    let mut blob = b"SSHSIG".to_vec();
    blob.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut blob, &public.to_bytes().unwrap());
    put_string(&mut blob, namespace.as_bytes());
    put_string(&mut blob, b"");
    put_string(&mut blob, b"sha512");
    put_string(&mut blob, signature_blob);
    let b64 = Base64::encode_string(&blob);
    let mut armored = "-----BEGIN SSH SIGNATURE-----\n".to_owned();
    for line in b64.as_bytes().chunks(70) {
        armored.push_str(std::str::from_utf8(line).unwrap());
        armored.push('\n');
    }
    armored.push_str("-----END SSH SIGNATURE-----\n");
    armored
}

/// `ssh-keygen -Y verify`; true when OpenSSH accepts the signature.
fn ssh_keygen_verifies(dir: &Path, public: &PublicKey, message: &[u8], armored: &str) -> bool {
    let allowed = dir.join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("id {}\n", public.to_openssh().unwrap().trim_end()),
    )
    .unwrap();
    let sig = dir.join("message.sig");
    std::fs::write(&sig, armored).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "id", "-n", "file", "-s"])
        .arg(&sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "ssh-keygen -Y verify: {} {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out.status.success()
}

fn message(err: Error) -> String {
    assert!(!matches!(err, Error::WrongSecret), "unexpected WrongSecret");
    eprintln!("error (expected): {err}");
    err.to_string()
}

#[test]
fn generate_sign_and_verify() {
    in_softhsm("generate_sign_and_verify", |module| {
        let (key, public) = pkcs11::generate(module, TOKEN, "ssh-1", &pin(), Curve::P256).unwrap();
        assert_eq!(
            key,
            TokenKey {
                module: module.to_path_buf(),
                token_label: TOKEN.into(),
                key_label: "ssh-1".into()
            }
        );
        assert_eq!(
            public.algorithm(),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }
        );
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json["tokenLabel"], TOKEN);
        assert_eq!(json["keyLabel"], "ssh-1");
        assert_eq!(serde_json::from_value::<TokenKey>(json).unwrap(), key);

        let signer = Pkcs11Key::new(key);
        assert_eq!(signer.verification(), Verification::Pin);
        let blob = signer.sign(&pin(), b"hello", RsaHash::default()).unwrap();
        let sig = ssh_key::Signature::try_from(blob.as_slice()).unwrap();
        assert_eq!(
            sig.algorithm(),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }
        );

        let ssh_keygen = have("ssh-keygen");
        assert!(
            ssh_keygen || !required(),
            "ssh-keygen is missing, and VMUX_REQUIRE_SOFTHSM=1"
        );
        if !ssh_keygen {
            eprintln!("SKIPPED the ssh-keygen part: ssh-keygen is not installed");
        }
        let dir = tempfile::tempdir().unwrap();
        // Several signatures, so r and s with the high bit set (mpint padding) occur.
        for i in 0..12 {
            let msg = format!("message {i}\n");
            let data = sshsig_signed_data("file", msg.as_bytes());
            assert_eq!(
                data,
                SshSig::signed_data("file", HashAlg::Sha512, msg.as_bytes()).unwrap()
            );
            let blob = signer.sign(&pin(), &data, RsaHash::default()).unwrap();
            let armored = sshsig_armor(&public, "file", &blob);

            // (a) ssh-key's verifier (p256 ECDSA over the signed data).
            let parsed = SshSig::from_pem(&armored).unwrap();
            public.verify("file", msg.as_bytes(), &parsed).unwrap();
            assert!(public.verify("file", b"tampered", &parsed).is_err());

            // (b) OpenSSH itself.
            if ssh_keygen && i < 4 {
                assert!(ssh_keygen_verifies(
                    dir.path(),
                    &public,
                    msg.as_bytes(),
                    &armored
                ));
                assert!(!ssh_keygen_verifies(
                    dir.path(),
                    &public,
                    b"tampered\n",
                    &armored
                ));
            }
        }
    });
}

/// The private key never leaves the token, and shares its CKA_ID with the public one.
fn check_private_key(module: &Path, label: &str) {
    let ctx = Pkcs11::new(module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = token_slot(&ctx);
    let session = ctx.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from("1234")))
        .unwrap();
    let find = |class| {
        let found = session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap();
        assert_eq!(found.len(), 1);
        found[0]
    };
    let private = find(ObjectClass::PRIVATE_KEY);
    let public = find(ObjectClass::PUBLIC_KEY);
    let attrs = session
        .get_attributes(
            private,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Token,
                AttributeType::Sign,
                AttributeType::Id,
            ],
        )
        .unwrap();
    let public_id = session
        .get_attributes(public, &[AttributeType::Id])
        .unwrap();
    assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Sign(true)), "{attrs:?}");
    match public_id.as_slice() {
        [id @ Attribute::Id(bytes)] => {
            assert_eq!(bytes.len(), 16);
            assert!(attrs.contains(id), "{attrs:?}");
        }
        other => panic!("public key ID: {other:?}"),
    }
    session.logout().unwrap();
    drop(session);
    ctx.finalize().unwrap();
}

fn token_slot(ctx: &Pkcs11) -> Slot {
    ctx.get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN)
        .unwrap()
}

#[test]
fn wrong_pin_is_wrong_secret() {
    in_softhsm("wrong_pin_is_wrong_secret", |module| {
        let err = pkcs11::generate(module, TOKEN, "k", &wrong_pin(), Curve::P256).unwrap_err();
        assert!(matches!(err, Error::WrongSecret), "{err}");
        let (key, _) = pkcs11::generate(module, TOKEN, "k", &pin(), Curve::P256).unwrap();
        let signer = Pkcs11Key::new(key);
        let err = signer
            .sign(&wrong_pin(), b"data", RsaHash::default())
            .unwrap_err();
        assert!(matches!(err, Error::WrongSecret), "{err}");
        signer.sign(&pin(), b"data", RsaHash::default()).unwrap();
    });
}

#[test]
fn find_by_label_and_lookup_errors() {
    in_softhsm("find_by_label_and_lookup_errors", |module| {
        let (key, public) = pkcs11::generate(module, TOKEN, "mine", &pin(), Curve::P256).unwrap();
        check_private_key(module, "mine");
        let (found_key, found) = pkcs11::find(module, TOKEN, "mine", None).unwrap();
        assert_eq!(found_key, key);
        assert_eq!(found, public);

        // SoftHSM2 wants a login: a key not seen without the PIN may be
        // hidden, so the PIN is asked for before saying it is not there.
        let err = pkcs11::find(module, TOKEN, "nope", None).unwrap_err();
        assert!(matches!(err, Error::PinNeeded), "{err}");
        let err = message(pkcs11::find(module, TOKEN, "nope", Some(&pin())).unwrap_err());
        assert!(err.contains("\"nope\""), "{err}");
        let err = message(pkcs11::find(module, "no-such-token", "mine", None).unwrap_err());
        assert!(
            err.contains("\"no-such-token\"") && err.contains(TOKEN),
            "{err}"
        );
        let err = message(
            pkcs11::generate(module, "no-such-token", "x", &pin(), Curve::P256).unwrap_err(),
        );
        assert!(err.contains("\"no-such-token\""), "{err}");
        let err = message(
            Pkcs11Key::new(TokenKey {
                key_label: "nope".into(),
                ..key.clone()
            })
            .sign(&pin(), b"data", RsaHash::default())
            .unwrap_err(),
        );
        assert!(err.contains("\"nope\""), "{err}");
        let err = message(
            pkcs11::find(Path::new("/nonexistent/libnothing.so"), TOKEN, "mine", None).unwrap_err(),
        );
        assert!(err.contains("cannot load"), "{err}");

        // A duplicate label is refused and the first key is left alone.
        let err =
            message(pkcs11::generate(module, TOKEN, "mine", &pin(), Curve::P256).unwrap_err());
        assert!(err.contains("already has"), "{err}");
        assert_eq!(pkcs11::find(module, TOKEN, "mine", None).unwrap().1, public);
    });
}

#[test]
fn other_curves_are_refused() {
    in_softhsm("other_curves_are_refused", |module| {
        // Put a P-384 key on the token behind the store's back.
        let ctx = Pkcs11::new(module).unwrap();
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slot = token_slot(&ctx);
        let session = ctx.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&AuthPin::from("1234")))
            .unwrap();
        let secp384r1 = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let label = b"p384".to_vec();
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::EcParams(secp384r1),
                    Attribute::Label(label.clone()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                    Attribute::Label(label),
                ],
            )
            .unwrap();
        session.logout().unwrap();
        drop(session);
        ctx.finalize().unwrap();

        let err = message(pkcs11::find(module, TOKEN, "p384", None).unwrap_err());
        assert!(err.contains("neither P-256 nor Ed25519"), "{err}");
        let key = TokenKey {
            module: module.to_path_buf(),
            token_label: TOKEN.into(),
            key_label: "p384".into(),
        };
        let err = message(
            Pkcs11Key::new(key)
                .sign(&pin(), b"data", RsaHash::default())
                .unwrap_err(),
        );
        assert!(err.contains("neither P-256 nor Ed25519"), "{err}");
    });
}

/// Ed25519 on a token that has it (SoftHSM2): made there, signing with
/// CKM_EDDSA what ssh-key and OpenSSH verify.
#[test]
fn ed25519_generate_sign_and_verify() {
    in_softhsm("ed25519_generate_sign_and_verify", |module| {
        let (key, public) = pkcs11::generate(module, TOKEN, "ed", &pin(), Curve::Ed25519).unwrap();
        assert_eq!(public.algorithm(), Algorithm::Ed25519);
        check_private_key(module, "ed");
        assert_eq!(pkcs11::find(module, TOKEN, "ed", None).unwrap().1, public);
        let signer = Pkcs11Key::new(key);
        let msg = b"ed25519 on a token\n";
        let data = sshsig_signed_data("file", msg);
        let blob = signer.sign(&pin(), &data, RsaHash::default()).unwrap();
        let armored = sshsig_armor(&public, "file", &blob);
        let parsed = SshSig::from_pem(&armored).unwrap();
        public.verify("file", msg, &parsed).unwrap();
        assert!(public.verify("file", b"tampered", &parsed).is_err());
        if have("ssh-keygen") {
            let dir = tempfile::tempdir().unwrap();
            assert!(ssh_keygen_verifies(dir.path(), &public, msg, &armored));
        }
    });
}

/// A token whose public key objects are private shows them only after
/// login: found without a PIN it asks for one ([`Error::PinNeeded`]), with
/// it the key is found; a wrong PIN is a wrong secret.
#[test]
fn public_keys_shown_only_after_login() {
    in_softhsm("public_keys_shown_only_after_login", |module| {
        let ctx = Pkcs11::new(module).unwrap();
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let session = ctx.open_rw_session(token_slot(&ctx)).unwrap();
        session
            .login(UserType::User, Some(&AuthPin::from("1234")))
            .unwrap();
        let label = b"hidden".to_vec();
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Verify(true),
                    Attribute::EcParams(vec![
                        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                    ]),
                    Attribute::Label(label.clone()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Sign(true),
                    Attribute::Label(label),
                ],
            )
            .unwrap();
        session.logout().unwrap();
        drop(session);
        ctx.finalize().unwrap();

        let err = pkcs11::find(module, TOKEN, "hidden", None).unwrap_err();
        assert!(matches!(err, Error::PinNeeded), "{err}");
        let err = pkcs11::find(module, TOKEN, "hidden", Some(&wrong_pin())).unwrap_err();
        assert!(matches!(err, Error::WrongSecret), "{err}");
        let (key, public) = pkcs11::find(module, TOKEN, "hidden", Some(&pin())).unwrap();
        let blob = Pkcs11Key::new(key)
            .sign(&pin(), b"data", RsaHash::default())
            .unwrap();
        let sig = ssh_key::Signature::try_from(blob.as_slice()).unwrap();
        assert_eq!(sig.algorithm(), public.algorithm());
        // Not found even after login: no PIN asked again, the label named.
        let err = message(pkcs11::find(module, TOKEN, "nope", Some(&pin())).unwrap_err());
        assert!(err.contains("\"nope\""), "{err}");
    });
}
