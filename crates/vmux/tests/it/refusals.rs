//! The device is told why (issue 25, item 1): a device removed on the
//! signer, and one whose certificates were revoked, read the reason and
//! the next step in their own `vmux status`; the removed one stops
//! knocking on the signer's door.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::clients::text;
use crate::support::paired::Paired;
use crate::support::process::VMUX;

/// `vmux ARGS` on the signer's home, with nobody at a terminal.
fn on_signer(rig: &Paired, args: &[&str]) -> Output {
    Command::new(VMUX)
        .args(args)
        .env("VMUX_HOME", &rig.signer_home)
        .env("VMUX_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Removed on the signer while connected: status names the reason, when,
/// and the pairing command with the signer's address; the agent does not
/// try again, so the signer's log gains no "refused unpaired device" line
/// over the next seconds, even while a signature is asked for.
#[test]
fn a_removed_device_is_told_why_and_stops_retrying() {
    let mut rig = Paired::setup().without_ca().start();
    let _agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();

    let removed = on_signer(&rig, &["peers", "remove", "laptop"]);
    assert!(removed.status.success(), "{}", text(&removed));
    let status = rig.wait_status("signer refused: device removed on the signer");
    assert!(status.contains("Disconnected"), "{status}");
    assert!(status.contains("Last refusal at 20"), "{status}");
    assert!(
        status.contains(&format!("pair again: `vmux pair --signer {}`", rig.addr)),
        "{status}"
    );
    assert!(status.contains("(pairingInvalid)"), "{status}");

    // A signature asked for now fails at once, with no new attempt.
    let (mut child, _) = rig.start_sign("after-removal", b"x\n");
    let (ok, _) = crate::support::clients::wait_child(&mut child, Duration::from_secs(5));
    assert!(!ok, "a removed device got a signature");
    // A bounded window: a retrying agent (backoff from 250 ms, nudged by
    // the request) would be refused several times in it.
    let signer = rig.signer();
    let _ = signer.wait_any(&["refused unpaired device"], Duration::from_secs(6));
    let knocks = signer.transcript.matches("refused unpaired device").count();
    assert!(knocks <= 1, "{knocks} retries:\n{}", signer.transcript);
    let _ = signer.wait_any(&["refused unpaired device"], Duration::from_secs(4));
    let later = signer.transcript.matches("refused unpaired device").count();
    assert_eq!(later, knocks, "{}", signer.transcript);
}

/// Revoked on the signer while the certificate is held: it leaves the
/// listing at once, status says so, and `vmux cert request` says it can
/// never work instead of advising to ask again; no sheet is shown for it.
#[test]
fn a_revoked_certificate_leaves_the_listing_and_is_not_asked_again() {
    let mut rig = Paired::setup().start();
    let home = rig.device_home.clone();
    let _agent = rig.spawn_agent_in(&home);
    rig.approve_certificate();
    let sock = home.join("agent.sock");
    crate::support::paired::wait_status_in(&home, &sock, "Certificate valid until");

    let revoked = on_signer(&rig, &["ca", "revoke", "laptop"]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let status = crate::support::paired::wait_status_in(
        &home,
        &sock,
        "certificate revoked: no more will be issued",
    );
    assert!(!status.contains("Certificate valid until"), "{status}");
    assert!(status.contains("Last refusal at 20"), "{status}");
    let listed = text(
        &crate::support::clients::openssh("ssh-add", &sock, &["-L"], &[])
            .output()
            .unwrap(),
    );
    assert!(!listed.contains("-cert-v01@openssh.com"), "{listed}");

    let asked = Command::new(VMUX)
        .args(["cert", "request"])
        .env("VMUX_HOME", &home)
        .env("SSH_AUTH_SOCK", &sock)
        .env("VMUX_LOG", "warn")
        .output()
        .unwrap();
    let said = text(&asked);
    assert!(!asked.status.success(), "{said}");
    assert!(
        said.contains("certificate revoked: no more will be issued"),
        "{said}"
    );
    assert!(!said.contains("ask again"), "{said}");
    let sheet = rig
        .signer()
        .wait_any(&["Session certificate for"], Duration::from_millis(500));
    assert!(sheet.is_none(), "{}", rig.signer().transcript);
}
