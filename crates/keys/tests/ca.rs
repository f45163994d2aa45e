//! The CA: its key at rest, certificates as ssh-keygen reads them, the
//! policy, and revocation through a KRL that ssh-keygen queries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ssh_key::{Algorithm, Certificate, EcdsaCurve, HashAlg, LineEnding, PrivateKey};
use vmux_keys::Error;
use vmux_keys::ca::revocation::{self, Revocations};
use vmux_keys::ca::{self, Ca, Grant, Policy, issued};
use vmux_state::Home;
use zeroize::Zeroizing;

const NOW: u64 = 1_800_000_000;
const PASS: &str = "ca passphrase";

fn pass() -> Zeroizing<String> {
    Zeroizing::new(PASS.to_owned())
}

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

fn home(dir: &Path) -> Home {
    Home::at(dir.join("home")).unwrap()
}

fn policy(f: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = Policy::default_for_this_user();
    p.principals = vec!["alice".into()];
    f(&mut p);
    p.validate().unwrap();
    p
}

fn grant(p: &Policy, validity: u64) -> Grant {
    p.grant("laptop", "dev-1", validity, NOW).unwrap()
}

fn keygen(args: &[&str], file: &Path) -> Output {
    Command::new("ssh-keygen")
        .args(args)
        .arg(file)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write_cert(dir: &Path, name: &str, cert: &Certificate) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, cert.to_openssh().unwrap()).unwrap();
    path
}

#[test]
fn the_ca_key_is_encrypted_at_rest_with_its_own_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    assert!(Ca::open(&home).unwrap().is_none(), "no CA before init");
    let ca = Ca::init(&home, &pass()).unwrap();
    assert_eq!(ca.public_key().algorithm(), Algorithm::Ed25519);
    assert_eq!(
        ca.verification(),
        Some(vmux_keys::store::Verification::Passphrase)
    );
    assert!(ca.unprotected_warning().is_none());

    let key_file = ca::KEY_FILE.path(&home);
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let parsed = PrivateKey::from_openssh(std::fs::read(&key_file).unwrap()).unwrap();
    assert!(parsed.is_encrypted(), "ca.key is not encrypted");
    // OpenSSH opens it only with the passphrase, and prints the CA line.
    let out = keygen(&["-y", "-P", PASS, "-f"], &key_file);
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    let expected = ca.public_key().to_openssh().unwrap();
    assert_eq!(
        line.split_whitespace().take(2).collect::<Vec<_>>(),
        expected.split_whitespace().take(2).collect::<Vec<_>>()
    );
    assert!(!keygen(&["-y", "-P", "", "-f"], &key_file).status.success());

    // Issuing needs it: a wrong passphrase is WrongSecret, nothing signed.
    let key = ephemeral();
    let g = grant(&policy(|_| {}), 3600);
    let wrong = ca.issue(key.public_key(), &g, &Zeroizing::new("nope".into()));
    assert!(matches!(wrong, Err(Error::WrongSecret)), "{wrong:?}");
    let cert = ca.issue(key.public_key(), &g, &pass()).unwrap();
    cert.validate_at(NOW, &[ca.public_key().fingerprint(HashAlg::Sha256)])
        .unwrap();

    // Reopened, it is the same CA; a second init is refused.
    let again = Ca::open(&home).unwrap().unwrap();
    assert_eq!(again.public_key().key_data(), ca.public_key().key_data());
    let err = Ca::init(&home, &pass()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(
        Ca::init(
            &Home::at(dir.path().join("other")).unwrap(),
            &Zeroizing::default()
        )
        .is_err(),
        "an empty CA passphrase was accepted"
    );
}

/// `vmux ca init` and a first-need issue can race to make the CA. Whatever
/// the interleaving, one wins, every other is told a CA exists, and the CA
/// on disk is the winner's: a servers-trusted key is never replaced.
#[test]
fn makers_racing_for_the_ca_leave_exactly_one() {
    for _round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let home = home(dir.path());
        let start = std::sync::Barrier::new(4);
        let results: Vec<_> = std::thread::scope(|s| {
            let makers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        Ca::init(&home, &pass())
                    })
                })
                .collect();
            makers.into_iter().map(|m| m.join().unwrap()).collect()
        });
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for loser in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(loser.to_string().contains("already exists"), "{loser}");
        }
        let on_disk = Ca::open(&home).unwrap().unwrap();
        assert_eq!(
            on_disk.public_key().key_data(),
            winners[0].public_key().key_data()
        );
        let leftovers: Vec<_> = std::fs::read_dir(home.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[test]
fn a_legacy_unencrypted_ca_key_issues_warns_and_is_protected_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let mut rng = ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng);
    let mut legacy = PrivateKey::random(&mut rng, Algorithm::Ed25519).unwrap();
    legacy.set_comment("vmux-ca");
    let pem = legacy.to_openssh(LineEnding::LF).unwrap();
    vmux_state::home::write_private(&ca::KEY_FILE.path(&home), pem.as_bytes()).unwrap();

    let ca = Ca::open(&home).unwrap().unwrap();
    assert_eq!(ca.verification(), None);
    let warning = ca.unprotected_warning().unwrap();
    assert!(warning.contains("vmux ca protect"), "{warning}");
    let key = ephemeral();
    let g = grant(&policy(|_| {}), 60);
    let cert = ca
        .issue(key.public_key(), &g, &Zeroizing::default())
        .unwrap();
    cert.validate_at(NOW, &[legacy.public_key().fingerprint(HashAlg::Sha256)])
        .unwrap();

    let protected = Ca::protect(&home, &pass()).unwrap();
    assert_eq!(
        protected.public_key().key_data(),
        legacy.public_key().key_data(),
        "protect changed the CA"
    );
    let reopened = Ca::open(&home).unwrap().unwrap();
    assert_eq!(
        reopened.verification(),
        Some(vmux_keys::store::Verification::Passphrase)
    );
    assert!(reopened.unprotected_warning().is_none());
    assert!(
        keygen(&["-y", "-P", PASS, "-f"], &ca::KEY_FILE.path(&home))
            .status
            .success()
    );
    assert!(matches!(
        reopened.issue(key.public_key(), &g, &Zeroizing::default()),
        Err(Error::WrongSecret)
    ));
    reopened.issue(key.public_key(), &g, &pass()).unwrap();
    // No temporary file left beside it; protecting twice is refused.
    let names: Vec<_> = std::fs::read_dir(home.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(ca::KEY_FILE.name())]);
    let err = Ca::protect(&home, &pass()).unwrap_err();
    assert!(err.to_string().contains("already protected"), "{err}");
}

#[test]
fn the_certificate_is_the_grant_as_ssh_keygen_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(&home(dir.path()), &pass()).unwrap();
    let key = ephemeral();

    // The defaults: an interactive login, no X11, no ~/.ssh/rc, no options.
    let p = policy(|p| p.principals = vec!["alice".into(), "deploy".into()]);
    let g = grant(&p, 3600);
    let cert = ca.issue(key.public_key(), &g, &pass()).unwrap();
    let listed = text(&keygen(
        &["-L", "-f"],
        &write_cert(dir.path(), "a-cert.pub", &cert),
    ));
    for expected in [
        "ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate",
        "Key ID: \"vmux:laptop:dev-1\"",
        "alice",
        "deploy",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-pty",
        "Critical Options: (none)",
        &ca.public_key().fingerprint(HashAlg::Sha256).to_string(),
    ] {
        assert!(
            listed.contains(expected),
            "missing {expected:?} in:\n{listed}"
        );
    }
    for absent in ["permit-X11-forwarding", "permit-user-rc"] {
        assert!(!listed.contains(absent), "{absent} in:\n{listed}");
    }
    assert_eq!(cert.valid_after(), NOW - ca::BACKDATE_SECS);
    assert_eq!(cert.valid_before(), NOW + 3600);
    assert_ne!(cert.serial(), 0);
    let other = ca.issue(key.public_key(), &g, &pass()).unwrap();
    assert_ne!(cert.serial(), other.serial());

    // Only what the person chose.
    let p = policy(|p| {
        p.extensions = vec!["permit-pty".into()];
        p.source_addresses = vec!["10.9.9.9/32".into(), "2001:db8::/32".into()];
    });
    let cert = ca.issue(key.public_key(), &grant(&p, 60), &pass()).unwrap();
    let listed = text(&keygen(
        &["-L", "-f"],
        &write_cert(dir.path(), "b-cert.pub", &cert),
    ));
    assert!(
        listed.contains("source-address 10.9.9.9/32,2001:db8::/32"),
        "{listed}"
    );
    let extensions = listed.split("Extensions:").nth(1).unwrap();
    assert_eq!(
        extensions.split_whitespace().collect::<Vec<_>>(),
        ["permit-pty"],
        "{listed}"
    );
}

#[test]
fn the_policy_bounds_every_grant() {
    let p = policy(|_| {});
    assert_eq!(p.max_validity_secs, ca::DEFAULT_MAX_VALIDITY);
    assert_eq!(grant(&p, 10 * 365 * 24 * 3600).valid_before, NOW + 28_800);
    let p = policy(|p| p.max_validity_secs = 1800);
    assert_eq!(grant(&p, u64::MAX).valid_before, NOW + 1800);
    assert!(grant(&p, u64::MAX).shortened());
    for refused in [
        policy(|p| p.auto_issue = false),
        policy(|p| p.principals.clear()),
    ] {
        assert!(matches!(
            refused.grant("laptop", "d", 60, NOW),
            Err(Error::PolicyDenied(_))
        ));
    }
    assert!(matches!(
        p.grant("laptop", "d", 0, NOW),
        Err(Error::PolicyDenied(m)) if m.contains("validity of 0")
    ));

    let base = policy(|_| {});
    for bad in [
        Policy {
            max_validity_secs: 10,
            ..base.clone()
        },
        Policy {
            max_validity_secs: 30 * 24 * 3600,
            ..base.clone()
        },
        Policy {
            principals: vec!["a b".into()],
            ..base.clone()
        },
        Policy {
            extensions: vec!["permit-everything".into()],
            ..base.clone()
        },
        Policy {
            source_addresses: vec!["10.0.0.1/8".into()],
            ..base.clone()
        },
        Policy {
            source_addresses: vec!["10.0.0.0/8".into(); ca::MAX_SOURCE_ADDRESSES + 1],
            ..base.clone()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn policy_persists_with_defaults_for_this_user() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let first = Policy::load(&home).unwrap();
    let me = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            let out = Command::new("id").arg("-un").output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        });
    assert_eq!(first.principals, vec![me]);
    assert!(first.auto_issue);
    assert_eq!(first.extensions, ca::DEFAULT_EXTENSIONS.map(str::to_owned));
    let changed = Policy {
        auto_issue: false,
        source_addresses: vec!["10.0.0.0/8".into()],
        ..first
    };
    changed.save(&home).unwrap();
    assert_eq!(Policy::load(&home).unwrap(), changed);
    let mode = std::fs::metadata(ca::POLICY_FILE.path(&home))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

/// Revoked by serial and by key ID, as `ssh-keygen -Q` reads the KRL; the
/// version grows with each write and the issue log keeps what was issued.
#[test]
fn the_krl_revokes_what_ssh_keygen_says_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let ca = Ca::init(&home, &pass()).unwrap();
    let p = policy(|_| {});
    let key = ephemeral();
    let issue = |device: &str, device_id: &str| {
        let g = p.grant(device, device_id, 600, NOW).unwrap();
        let cert = ca.issue(key.public_key(), &g, &pass()).unwrap();
        issued::append(
            &home,
            &issued::IssueRecord {
                time: NOW,
                serial: cert.serial(),
                key_id: g.key_id.clone(),
                device: g.device.clone(),
                principals: g.principals.clone(),
                valid_after: g.valid_after,
                valid_before: g.valid_before,
            },
        )
        .unwrap();
        cert
    };
    let laptop_a = issue("laptop", "dev-1");
    let laptop_b = issue("laptop", "dev-1");
    let phone = issue("phone", "dev-2");
    let by_serial = issue("tablet", "dev-3");
    let (log, unreadable) = issued::read(&home).unwrap();
    assert_eq!(unreadable, 0);
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].serial, laptop_a.serial());
    assert_eq!(log[2].device, "phone");

    // Before anything is revoked, the KRL exists and revokes nothing.
    let krl = revocation::ensure_krl(&home, NOW).unwrap();
    let query = |cert: &Certificate, name: &str| {
        let path = write_cert(dir.path(), name, cert);
        let out = Command::new("ssh-keygen")
            .arg("-Q")
            .arg("-f")
            .arg(&krl)
            .arg(&path)
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    let (ok, said) = query(&laptop_a, "la-cert.pub");
    assert!(ok && said.contains(": ok"), "{said}");

    // Laptop by its key ID (and one serial), the tablet by serial only.
    let key_ids = ["vmux:laptop:dev-1".to_owned()];
    let (added, revoked) = Revocations::update(&home, NOW, |r| {
        r.revoke(ca.public_key(), [laptop_a.serial()], key_ids)
    })
    .unwrap();
    assert_eq!(added, 2);
    assert_eq!(revoked.krl_version(), 2);
    let (again, revoked) = Revocations::update(&home, NOW + 1, |r| {
        r.revoke(ca.public_key(), [by_serial.serial()], [])?;
        r.revoke(ca.public_key(), [by_serial.serial()], [])
    })
    .unwrap();
    assert_eq!(again, 0);
    assert_eq!(revocation::krl_path(&home), krl);
    assert_eq!(Revocations::load(&home).unwrap().krl_version(), 3);
    assert!(revoked.key_id_revoked(ca.public_key(), "vmux:laptop:dev-1"));
    assert!(revoked.serial_revoked(ca.public_key(), by_serial.serial()));
    assert!(!revoked.serial_revoked(ca.public_key(), phone.serial()));

    for (cert, name) in [
        (&laptop_a, "la-cert.pub"),
        (&laptop_b, "lb-cert.pub"),
        (&by_serial, "t-cert.pub"),
    ] {
        let (ok, said) = query(cert, name);
        assert!(!ok && said.contains("REVOKED"), "{name}: {said}");
    }
    let (ok, said) = query(&phone, "p-cert.pub");
    assert!(ok && said.contains(": ok"), "phone: {said}");

    // ssh-keygen lists what we wrote, version 3 after three writes.
    let listed = text(&keygen(&["-Q", "-l", "-f"], &krl));
    assert!(listed.contains("# KRL version 3"), "{listed}");
    assert!(listed.contains("id: vmux:laptop:dev-1"), "{listed}");
    assert!(
        listed.contains(&format!("serial: {}", by_serial.serial())),
        "{listed}"
    );
    let mode = std::fs::metadata(&krl).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// Revocations made at once, as by two `vmux ca revoke` in two terminals,
/// are all kept: each one reads, changes and writes the record under its
/// lock.
#[test]
fn revocations_made_at_once_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let ca = ssh_key::PublicKey::from_openssh(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH",
    )
    .unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (home, ca) = (home.clone(), ca.clone());
            std::thread::spawn(move || {
                for i in 0..10u64 {
                    let serial = t * 100 + i + 1;
                    Revocations::update(&home, NOW, |r| r.revoke(&ca, [serial], [])).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let revoked = Revocations::load(&home).unwrap();
    assert_eq!(revoked.krl_version(), 40);
    for t in 0..4u64 {
        for i in 0..10u64 {
            assert!(revoked.serial_revoked(&ca, t * 100 + i + 1), "{t}/{i} lost");
        }
    }
}
