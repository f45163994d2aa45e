//! The CA: certificates as ssh-keygen reads them, and the policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PrivateKey};
use vmux_keys::Error;
use vmux_keys::ca::{self, Ca, CertRequest, Policy};
use vmux_link::home::Home;

const NOW: u64 = 1_800_000_000;

fn ephemeral() -> PrivateKey {
    let mut rng = ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng);
    PrivateKey::random(
        &mut rng,
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
    )
    .unwrap()
}

fn request(key: &PrivateKey, validity_secs: u64) -> CertRequest<'_> {
    CertRequest {
        public_key: key.public_key(),
        device: "laptop",
        identity: Some("main"),
        validity_secs,
        now: NOW,
    }
}

fn open(dir: &std::path::Path) -> Ca {
    Ca::open(&Home::at(dir.join("home")).unwrap()).unwrap()
}

fn set(ca: &mut Ca, f: impl FnOnce(&mut Policy)) {
    let mut p = ca.policy().clone();
    f(&mut p);
    ca.set_policy(p).unwrap();
}

#[test]
fn certificate_reads_back_with_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = open(dir.path());
    set(&mut ca, |p| {
        p.principals = vec!["alice".into(), "deploy".into()]
    });
    let key = ephemeral();
    let cert = ca.issue(&request(&key, 3600)).unwrap();
    cert.validate_at(NOW, &[ca.public_key().fingerprint(HashAlg::Sha256)])
        .unwrap();

    let path = dir.path().join("id-cert.pub");
    std::fs::write(&path, cert.to_openssh().unwrap()).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate",
        "Key ID: \"vmux:laptop:main\"",
        "alice",
        "deploy",
        "permit-X11-forwarding",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-pty",
        "permit-user-rc",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("Critical Options: (none)"), "{text}");
    assert_eq!(cert.valid_after(), NOW - ca::BACKDATE_SECS);
    assert_eq!(cert.valid_before(), NOW + 3600);
    assert_eq!(cert.key_id(), "vmux:laptop:main");
    let signing_ca = ca.public_key().to_openssh().unwrap();
    assert!(
        text.contains(&ca.public_key().fingerprint(HashAlg::Sha256).to_string()),
        "{signing_ca}\n{text}"
    );
}

#[test]
fn validity_is_clamped_and_zero_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = open(dir.path());
    assert_eq!(ca.policy().max_validity_secs, ca::DEFAULT_MAX_VALIDITY);
    let key = ephemeral();
    let cert = ca.issue(&request(&key, 10 * 365 * 24 * 3600)).unwrap();
    assert_eq!(cert.valid_before(), NOW + 28_800);
    set(&mut ca, |p| p.max_validity_secs = 1800);
    assert_eq!(
        ca.issue(&request(&key, u64::MAX)).unwrap().valid_before(),
        NOW + 1800
    );
    let err = ca.issue(&request(&key, 0)).unwrap_err();
    assert!(err.to_string().contains("validity of 0"), "{err}");
}

#[test]
fn auto_issue_off_is_policy_denied() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = open(dir.path());
    set(&mut ca, |p| p.auto_issue = false);
    let key = ephemeral();
    let err = ca.issue(&request(&key, 60)).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyDenied(m) if m.contains("--auto-issue on")),
        "{err:?}"
    );
    // The setting persists.
    assert!(!open(dir.path()).policy().auto_issue);
}

#[test]
fn serials_differ_and_ca_persists() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path());
    let key = ephemeral();
    let a = ca.issue(&request(&key, 60)).unwrap();
    let b = ca.issue(&request(&key, 60)).unwrap();
    assert_ne!(a.serial(), b.serial());

    let again = open(dir.path());
    assert_eq!(again.public_key().key_data(), ca.public_key().key_data());
    assert_eq!(again.public_key().algorithm(), Algorithm::Ed25519);
    let home = dir.path().join("home");
    for file in [ca::KEY_FILE, ca::POLICY_FILE] {
        let mode = std::fs::metadata(home.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
}

#[test]
fn default_principal_is_the_login_name_and_bad_policies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = open(dir.path());
    let me = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            let out = Command::new("id").arg("-un").output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        });
    assert_eq!(ca.policy().principals, vec![me]);
    assert!(ca.policy().auto_issue);

    for bad in [
        Policy {
            max_validity_secs: 10,
            ..ca.policy().clone()
        },
        Policy {
            max_validity_secs: 30 * 24 * 3600,
            ..ca.policy().clone()
        },
        Policy {
            principals: vec!["a b".into()],
            ..ca.policy().clone()
        },
    ] {
        assert!(ca.set_policy(bad).is_err());
    }
    set(&mut ca, |p| p.principals.clear());
    let key = ephemeral();
    assert!(matches!(
        ca.issue(&request(&key, 60)),
        Err(Error::PolicyDenied(_))
    ));
}
