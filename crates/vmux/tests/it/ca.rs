//! The signer's CA as a person meets it: the certificate sheet answered in
//! a pseudo-terminal, the CA's own passphrase (or a SoftHSM2 token's PIN)
//! at every issue, a legacy unencrypted key protected in place, and
//! revocation through a KRL that a real sshd reads with `RevokedKeys`.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::softhsm;
use crate::support::sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use clients::{openssh, text};
use paired::{PASS, Paired, WAIT, wait_status_in};
use process::{Proc, VMUX};
use softhsm::SoftHsm;
use sshd::Sshd;

/// `vmux ARGS` in `home`, the secret (if any) in VMUX_PASSPHRASE.
fn vmux(home: &Path, args: &[&str], secret: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(VMUX);
    command
        .args(args)
        .env("VMUX_HOME", home)
        .env("VMUX_LOG", "warn")
        .env_remove("VMUX_PASSPHRASE")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    if let Some(secret) = secret {
        command.env("VMUX_PASSPHRASE", secret);
    }
    command.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The session certificate the agent in `home` lists, written to a file.
fn certificate_file(home: &Path, name: &str) -> PathBuf {
    let listed = text(
        &openssh("ssh-add", &home.join("agent.sock"), &["-L"], &[])
            .output()
            .unwrap(),
    );
    let line = listed
        .lines()
        .find(|l| l.contains("-cert-v01@openssh.com"))
        .unwrap_or_else(|| panic!("no certificate in:\n{listed}"));
    let path = home.join(name);
    std::fs::write(&path, format!("{line}\n")).unwrap();
    path
}

fn logs_in(server: &Sshd, home: &Path) -> Output {
    server.ssh(&home.join("agent.sock"), &[], "echo logged-in")
}

fn logged_in(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stdout).contains("logged-in")
}

/// `vmux cert request` for the agent in `home`, running.
fn cert_request(home: &Path) -> std::process::Child {
    Command::new(VMUX)
        .args(["cert", "request"])
        .env("VMUX_HOME", home)
        .env("SSH_AUTH_SOCK", home.join("agent.sock"))
        .env("VMUX_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A device's agent asking for its certificate on connecting.
fn agent(rig: &Paired, home: &Path) -> Proc {
    let agent = rig.spawn_agent_in(home);
    wait_status_in(home, &home.join("agent.sock"), "Connected to phone");
    agent
}

/// The sheet shows principals, validity (and the request it shortened) and
/// extensions; Approve, then the CA passphrase, issues a certificate that
/// a server trusting the CA takes for ten logins with no further sheet.
#[test]
fn the_sheet_shows_the_grant_and_the_ca_passphrase_issues_it() {
    let mut rig = Paired::setup().start();
    let me = sshd::whoami();
    ok(vmux(
        &rig.signer_home,
        &["ca", "policy", "--max-validity", "2h", "--principals", &me],
        None,
        &[],
    ));
    let home = rig.device_home.clone();
    let _agent = agent(&rig, &home);

    let signer = rig.signer();
    signer.expect("=== Session certificate request ===", WAIT);
    signer.expect("From Device  laptop", WAIT);
    signer.expect(&format!("Principals   {me}"), WAIT);
    let valid = signer.expect("Valid        ", WAIT);
    assert!(valid.contains(" local time (2h from now)"), "{valid}");
    signer.expect(
        "Extensions   permit-agent-forwarding, permit-port-forwarding, permit-pty",
        WAIT,
    );
    signer.expect("Critical     none", WAIT);
    signer.expect("Requested    8h, shortened to 2h by the CA policy", WAIT);
    signer.type_line("a");
    signer.expect("Passphrase for the CA key", WAIT);
    signer.type_line(PASS);
    signer.expect("Approved session certificate", WAIT);
    let status = rig.wait_status("Certificate valid until");
    assert!(!status.contains("No session certificate"), "{status}");

    // At rest the CA key is encrypted; OpenSSH opens it with the passphrase.
    let ca_line = ok(vmux(&rig.signer_home, &["ca", "show"], None, &[]));
    let key = rig.signer_home.join("ca.key");
    let parsed = ssh_key::PrivateKey::from_openssh(std::fs::read(&key).unwrap()).unwrap();
    assert!(parsed.is_encrypted());
    let opened = Command::new("ssh-keygen")
        .args(["-y", "-P", PASS, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(
        ok(opened).split_whitespace().nth(1),
        ca_line.split_whitespace().nth(1)
    );

    let server = Sshd::start(&rig.dir.path().join("sshd"), "", Some(&ca_line));
    for i in 0..10 {
        let out = logs_in(&server, &home);
        assert!(
            logged_in(&out),
            "login {i}: {}\n{}",
            text(&out),
            server.log()
        );
    }
    let again = rig.signer().wait_any(
        &["SSH Sign Request", "Session certificate"],
        Duration::from_millis(500),
    );
    assert!(again.is_none(), "{}", rig.signer().transcript);

    // On record: serial, key ID, device, principals, validity.
    let issued = ok(vmux(&rig.signer_home, &["ca", "issued"], None, &[]));
    assert_eq!(issued.lines().count(), 1, "{issued}");
    assert!(
        issued.contains(" laptop ")
            && issued.contains(&me)
            && issued.contains("key ID vmux:laptop:"),
        "{issued}"
    );
}

/// Three wrong CA passphrases: `verificationFailed`, and no certificate.
#[test]
fn three_wrong_ca_passphrases_issue_nothing() {
    let mut rig = Paired::setup().start();
    let home = rig.device_home.clone();
    let _agent = agent(&rig, &home);
    let signer = rig.signer();
    signer.expect("Session certificate for laptop", WAIT);
    signer.type_line("a");
    for attempt in 1..=3 {
        signer.expect("Passphrase for the CA key", WAIT);
        signer.type_line("not the passphrase");
        signer.expect(&format!("Wrong passphrase ({attempt} of 3)"), WAIT);
    }
    signer.expect("Verification failed; request refused", WAIT);
    let status = rig.wait_status("Last certificate request refused: verificationFailed");
    assert!(status.contains("No session certificate"), "{status}");
    let issued = ok(vmux(&rig.signer_home, &["ca", "issued"], None, &[]));
    assert!(issued.contains("No certificates issued yet."), "{issued}");
}

/// An unencrypted `ca.key` from an older vmux still issues, with a warning
/// at start; `vmux ca protect` encrypts it in place, and the next issue
/// asks its passphrase.
#[test]
fn a_legacy_ca_key_warns_then_protect_makes_issues_ask() {
    let legacy = |signer_home: &Path| {
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "vmux-ca", "-f"])
            .arg(signer_home.join("ca.key"))
            .status()
            .unwrap();
        assert!(made.success());
    };
    let mut rig = Paired::setup().without_ca().more_identities(legacy).start();
    // Said at start, before the pairing the setup answered.
    let said = &rig.signer().transcript;
    assert!(
        said.contains("is not encrypted: anyone who can read it can mint certificates; encrypt it with `vmux ca protect`"),
        "{said}"
    );
    let home = rig.device_home.clone();
    let _agent = agent(&rig, &home);
    rig.signer().expect("Session certificate for laptop", WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("Approved session certificate", WAIT);
    rig.wait_status("Certificate valid until");
    let before = ok(vmux(&rig.signer_home, &["ca", "show"], None, &[]));

    let protected = ok(vmux(&rig.signer_home, &["ca", "protect"], Some(PASS), &[]));
    assert!(protected.contains("now encrypted"), "{protected}");
    assert_eq!(
        ok(vmux(&rig.signer_home, &["ca", "show"], None, &[])),
        before
    );
    let opened = Command::new("ssh-keygen")
        .args(["-y", "-P", PASS, "-f"])
        .arg(rig.signer_home.join("ca.key"))
        .output()
        .unwrap();
    assert_eq!(
        ok(opened).split_whitespace().nth(1),
        before.split_whitespace().nth(1)
    );

    let sock = rig.sock();
    let request = std::thread::spawn(move || {
        Command::new(VMUX)
            .args(["cert", "request"])
            .env("VMUX_HOME", home)
            .env("SSH_AUTH_SOCK", sock)
            .env("VMUX_LOG", "warn")
            .output()
            .unwrap()
    });
    rig.approve_certificate();
    let out = request.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// A CA key on a SoftHSM2 token: its PIN approves the issue, and sshd
/// accepts the certificate.
#[test]
fn a_softhsm2_ca_key_issues_a_certificate_sshd_accepts() {
    let Some(hsm) = SoftHsm::find() else { return };
    let env = hsm.env();
    let module = hsm.module();
    let token = |signer_home: &Path| {
        hsm.init_token("vmux-ca-token", "1234");
        let made = ok(vmux(
            signer_home,
            &[
                "ca",
                "init",
                "--store",
                "pkcs11",
                "--module",
                module,
                "--token",
                "vmux-ca-token",
            ],
            Some("1234"),
            &env,
        ));
        assert!(made.starts_with("ecdsa-sha2-nistp256 "), "{made}");
    };
    let mut rig = Paired::setup()
        .without_ca()
        .more_identities(token)
        .signer_env("SOFTHSM2_CONF", hsm.conf())
        .start();
    let home = rig.device_home.clone();
    let _agent = agent(&rig, &home);
    let signer = rig.signer();
    signer.expect("Session certificate for laptop", WAIT);
    signer.type_line("a");
    signer.expect("PIN of the CA key's token", WAIT);
    signer.type_line("0000");
    signer.expect("Wrong PIN (1 of 3)", WAIT);
    signer.expect("PIN of the CA key's token", WAIT);
    signer.type_line("1234");
    signer.expect("Approved session certificate", WAIT);
    rig.wait_status("Certificate valid until");

    let ca_line = ok(vmux(&rig.signer_home, &["ca", "show"], None, &env));
    assert!(ca_line.starts_with("ecdsa-sha2-nistp256 "), "{ca_line}");
    let cert = certificate_file(&home, "token-cert.pub");
    let listed = ok(Command::new("ssh-keygen")
        .arg("-Lf")
        .arg(&cert)
        .output()
        .unwrap());
    assert!(listed.contains("Signing CA: ECDSA"), "{listed}");
    let server = Sshd::start(&rig.dir.path().join("sshd"), "", Some(&ca_line));
    let out = logs_in(&server, &home);
    assert!(logged_in(&out), "{}\n{}", text(&out), server.log());
}

/// `vmux ca revoke DEVICE`: the KRL says revoked, sshd with `RevokedKeys`
/// refuses the login that worked a moment before, and another device's
/// certificate still logs in. A device renamed since its certificate was
/// issued is found by its device id. `vmux peers remove` asks to revoke
/// too, and `--revoke` does without asking.
#[test]
fn revoking_a_device_stops_its_certificate_and_no_other() {
    let mut rig = Paired::setup().start();
    let laptop = rig.device_home.clone();
    let desktop = rig.dir.path().join("desktop");
    rig.pair(&desktop, "desktop");
    let _laptop_agent = agent(&rig, &laptop);
    rig.approve_certificate();
    wait_status_in(
        &laptop,
        &laptop.join("agent.sock"),
        "Certificate valid until",
    );
    let _desktop_agent = agent(&rig, &desktop);
    rig.signer().expect("From Device  desktop", WAIT);
    rig.approve_certificate();
    wait_status_in(
        &desktop,
        &desktop.join("agent.sock"),
        "Certificate valid until",
    );

    let signer_home = rig.signer_home.clone();
    let krl = ok(vmux(&signer_home, &["ca", "krl"], None, &[]));
    let krl = krl.trim();
    let ca_line = ok(vmux(&signer_home, &["ca", "show"], None, &[]));
    let server = Sshd::start_with(
        &rig.dir.path().join("sshd"),
        "",
        Some(&ca_line),
        &format!("RevokedKeys {krl}\n"),
    );
    for home in [&laptop, &desktop] {
        let out = logs_in(&server, home);
        assert!(logged_in(&out), "{}\n{}", text(&out), server.log());
    }

    // Copied now: once revoked, the agent lists it no more.
    let laptop_cert = certificate_file(&laptop, "laptop-cert.pub");
    let desktop_cert = certificate_file(&desktop, "desktop-cert.pub");
    // Its certificate's key ID still has the old name.
    ok(vmux(
        &signer_home,
        &["peers", "rename", "laptop", "work-laptop"],
        None,
        &[],
    ));
    let revoked = ok(vmux(
        &signer_home,
        &["ca", "revoke", "work-laptop"],
        None,
        &[],
    ));
    assert!(
        revoked.contains("Revoked 1 certificate(s) of \"work-laptop\""),
        "{revoked}"
    );
    assert!(revoked.contains("KRL, version 2"), "{revoked}");
    let query = |cert: &Path| {
        text(
            &Command::new("ssh-keygen")
                .args(["-Q", "-f", krl])
                .arg(cert)
                .output()
                .unwrap(),
        )
    };
    assert!(
        query(&laptop_cert).contains("REVOKED"),
        "{}",
        query(&laptop_cert)
    );
    assert!(
        query(&desktop_cert).contains(": ok"),
        "{}",
        query(&desktop_cert)
    );
    // The signer told the laptop's agent, which dropped it at once.
    wait_status_in(&laptop, &laptop.join("agent.sock"), "revoked on the signer");
    let out = logs_in(&server, &laptop);
    assert!(!logged_in(&out), "a revoked certificate logged in");
    let out = logs_in(&server, &desktop);
    assert!(logged_in(&out), "{}\n{}", text(&out), server.log());
    let issued = ok(vmux(&signer_home, &["ca", "issued"], None, &[]));
    assert_eq!(issued.matches("REVOKED").count(), 1, "{issued}");

    // Forgetting the desktop, a person is asked on the terminal, before
    // anything changes.
    let mut remove = Proc::spawn_in_pty(&signer_home, &["peers", "remove", "desktop"]);
    remove.expect(
        "The CA issued 1 certificate(s) to \"desktop\". Revoke them too? [y/N]",
        WAIT,
    );
    assert!(
        !remove.transcript.contains("Forgot"),
        "{}",
        remove.transcript
    );
    let listed = ok(vmux(&signer_home, &["peers", "list"], None, &[]));
    assert!(listed.contains("desktop"), "{listed}");
    remove.type_line("y");
    remove.expect("Forgot 1 device(s).", WAIT);
    remove.expect("Revoked 1 certificate(s) of \"desktop\"", WAIT);
    assert!(remove.wait_exit(WAIT).success());
    assert!(
        query(&desktop_cert).contains("REVOKED"),
        "{}",
        query(&desktop_cert)
    );
    assert!(!logged_in(&logs_in(&server, &desktop)));

    // --revoke does it without asking (nothing new for the laptop: the
    // KRL is written again all the same, one version up).
    let removed = ok(vmux(
        &signer_home,
        &["peers", "remove", "work-laptop", "--revoke"],
        None,
        &[],
    ));
    assert!(
        removed.contains("Revoked 1 certificate(s) of \"work-laptop\""),
        "{removed}"
    );
    assert!(removed.contains("KRL version 4"), "{removed}");
}

/// `--source-address` and `--extensions` reach the certificate: sshd on
/// 127.0.0.1 refuses one bound to 10.9.9.9/32, and ssh-keygen lists only
/// the extension asked for.
#[test]
fn source_address_and_extensions_are_in_the_certificate() {
    let mut rig = Paired::setup().start();
    ok(vmux(
        &rig.signer_home,
        &[
            "ca",
            "policy",
            "--source-address",
            "10.9.9.9/32",
            "--extensions",
            "permit-pty",
        ],
        None,
        &[],
    ));
    let home = rig.device_home.clone();
    let _agent = agent(&rig, &home);
    rig.signer().expect("Extensions   permit-pty", WAIT);
    rig.signer()
        .expect("Critical     source-address 10.9.9.9/32", WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("Passphrase for the CA key", WAIT);
    rig.signer().type_line(PASS);
    rig.wait_status("Certificate valid until");

    let cert = certificate_file(&home, "bound-cert.pub");
    let listed = ok(Command::new("ssh-keygen")
        .arg("-Lf")
        .arg(&cert)
        .output()
        .unwrap());
    let (critical, extensions) = listed.split_once("Extensions:").unwrap();
    assert!(critical.contains("source-address 10.9.9.9/32"), "{listed}");
    assert_eq!(
        extensions.split_whitespace().collect::<Vec<_>>(),
        ["permit-pty"],
        "{listed}"
    );
    let ca_line = ok(vmux(&rig.signer_home, &["ca", "show"], None, &[]));
    let server = Sshd::start(&rig.dir.path().join("sshd"), "", Some(&ca_line));
    let out = logs_in(&server, &home);
    assert!(
        !logged_in(&out),
        "a certificate for 10.9.9.9 logged in from 127.0.0.1"
    );
    assert!(
        server
            .log()
            .contains("not from a permitted source address (127.0.0.1)"),
        "{}",
        server.log()
    );
}

/// No CA yet: approving the first certificate makes one, with a passphrase
/// the person chooses on the signer's terminal (typed twice).
#[test]
fn the_first_certificate_makes_the_ca_with_a_chosen_passphrase() {
    let mut rig = Paired::setup().without_ca().start();
    assert!(!text(&vmux(&rig.signer_home, &["ca", "show"], None, &[])).contains("AAAA"));
    let home = rig.device_home.clone();
    let _agent = agent(&rig, &home);
    // No CA yet: no sheet at start; status says how to ask for the first.
    rig.wait_status("the signer has no CA yet; `vmux cert request` asks for the first");
    let unasked = rig
        .signer()
        .wait_any(&["Session certificate"], Duration::from_millis(500));
    assert!(unasked.is_none(), "{}", rig.signer().transcript);
    let mut request = cert_request(&home);
    let signer = rig.signer();
    signer.expect("CA           none yet: approving makes one", WAIT);
    signer.type_line("a");
    signer.expect("New passphrase for the CA key", WAIT);
    signer.type_line("first choice");
    signer.expect("Again, to confirm", WAIT);
    signer.type_line("typo");
    signer.expect("The two entries did not match (1 of 3)", WAIT);
    signer.expect("New passphrase for the CA key", WAIT);
    signer.type_line("chosen");
    signer.expect("Again, to confirm", WAIT);
    signer.type_line("chosen");
    signer.expect("Made the CA key", WAIT);
    signer.expect("Approved session certificate", WAIT);
    let (asked, err) = clients::wait_child(&mut request, WAIT);
    assert!(asked, "{err}");
    rig.wait_status("Certificate valid until");
    let opened = Command::new("ssh-keygen")
        .args(["-y", "-P", "chosen", "-f"])
        .arg(rig.signer_home.join("ca.key"))
        .output()
        .unwrap();
    assert!(opened.status.success(), "{}", text(&opened));
}

/// Two devices ask for their first certificates before there is a CA.
/// Approving the first makes the CA; the second, queued behind it, is asked
/// that CA's passphrase, not offered a second CA to make (which would fail,
/// or, unguarded, replace the key servers were just told to trust).
#[test]
fn a_certificate_queued_behind_the_one_that_made_the_ca_uses_that_ca() {
    let mut rig = Paired::setup().without_ca().start();
    let desktop = rig.dir.path().join("desktop");
    rig.pair(&desktop, "desktop");
    let laptop = rig.device_home.clone();
    let _laptop = agent(&rig, &laptop);
    let mut laptop_asks = cert_request(&laptop);
    rig.signer().expect("CA           none yet", WAIT);
    let _desktop = agent(&rig, &desktop);
    let mut desktop_asks = cert_request(&desktop);
    let signer = rig.signer();
    signer.expect("1 more waiting", WAIT);
    signer.type_line("a");
    signer.expect("New passphrase for the CA key", WAIT);
    signer.type_line("chosen");
    signer.expect("Again, to confirm", WAIT);
    signer.type_line("chosen");
    signer.expect("Made the CA key", WAIT);
    signer.expect("Approved session certificate", WAIT);

    signer.expect("=== Session certificate request ===", WAIT);
    signer.expect("[a] approve", WAIT);
    let t = &signer.transcript;
    let sheet = t[t.rfind("=== Session certificate request ===").unwrap()..].to_owned();
    assert!(sheet.contains("desktop"), "{sheet}");
    assert!(
        !sheet.contains("none yet"),
        "a second CA was offered:\n{sheet}"
    );
    signer.type_line("a");
    signer.expect("Passphrase for the CA key", WAIT);
    signer.type_line("chosen");
    signer.expect("Approved session certificate", WAIT);

    for asked in [&mut laptop_asks, &mut desktop_asks] {
        let (ok, err) = clients::wait_child(asked, WAIT);
        assert!(ok, "{err}");
    }
    for home in [&laptop, &desktop] {
        wait_status_in(home, &home.join("agent.sock"), "Certificate valid until");
    }
    // Both certificates are the one CA's.
    let ca_pub = rig.dir.path().join("ca.pub");
    std::fs::write(
        &ca_pub,
        ok(vmux(&rig.signer_home, &["ca", "show"], None, &[])),
    )
    .unwrap();
    let ca = text(
        &Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&ca_pub)
            .output()
            .unwrap(),
    );
    let ca = ca.split_whitespace().nth(1).unwrap().to_owned();
    for home in [&laptop, &desktop] {
        let cert = certificate_file(home, "cert.pub");
        let listed = text(
            &Command::new("ssh-keygen")
                .arg("-Lf")
                .arg(&cert)
                .output()
                .unwrap(),
        );
        assert!(
            listed.contains(&ca),
            "{listed}
not signed by {ca}"
        );
    }
}

/// `vmux ca revoke` while the device's certificate sheet is up: the
/// signer reads its revocations again after the Approve, inside the
/// approval turn, and issues nothing.
#[test]
fn a_revocation_while_the_sheet_is_up_refuses_the_certificate() {
    let mut rig = Paired::setup().start();
    let laptop = rig.device_home.clone();
    let _agent = agent(&rig, &laptop);
    rig.approve_certificate();
    wait_status_in(
        &laptop,
        &laptop.join("agent.sock"),
        "Certificate valid until",
    );
    let (home, sock) = (laptop.clone(), rig.sock());
    let request = std::thread::spawn(move || {
        Command::new(VMUX)
            .args(["cert", "request"])
            .env("VMUX_HOME", home)
            .env("SSH_AUTH_SOCK", sock)
            .env("VMUX_LOG", "warn")
            .output()
            .unwrap()
    });
    rig.signer().expect("Session certificate for", WAIT);
    rig.signer().expect("[a] approve", WAIT);
    let revoked = ok(vmux(
        &rig.signer_home,
        &["ca", "revoke", "laptop"],
        None,
        &[],
    ));
    assert!(revoked.contains("Revoked 1 certificate(s)"), "{revoked}");
    rig.signer().type_line("a");
    rig.signer()
        .expect("Refused the approved certificate", WAIT);
    let out = request.join().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let log = std::fs::read_to_string(rig.signer_home.join("signer-log.jsonl")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(
        last.contains("\"kind\":\"certificate\"")
            && last.contains("\"outcome\":\"policyDenied\"")
            && last.contains("revoked"),
        "{last}"
    );
    // Nothing was issued after the one before the revocation.
    let issued = std::fs::read_to_string(rig.signer_home.join("ca-issued.jsonl")).unwrap();
    assert_eq!(issued.lines().count(), 1, "{issued}");
}
