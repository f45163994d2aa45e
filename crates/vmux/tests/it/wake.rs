//! Reaching a signer that is away: the wake POST to its push endpoint (a
//! receiver on 127.0.0.1 stands for the push service), failing fast when
//! there is nobody to wake, and a request withdrawn when its client leaves.
//! Real `vmux signer` in a pty, real agent, real OpenSSH clients and sshd.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::push;
use crate::support::sshd;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use clients::wait_child;
use paired::{Paired, WAIT};
use push::Receiver;
use sshd::Sshd;

/// `ssh … echo MARK` to `sshd` through the agent at `paired`'s socket.
fn ssh(paired: &Paired, sshd: &Sshd, mark: &str) -> Child {
    sshd.command(&paired.sock(), &[], &format!("echo {mark}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sshd_for(paired: &Paired) -> Sshd {
    let lines = std::fs::read_to_string(&paired.pubkey).unwrap();
    Sshd::start(&paired.dir.path().join("sshd"), &lines, None)
}

#[test]
fn a_wake_brings_the_signer_back_and_the_same_ssh_completes() {
    let push = Receiver::start(200);
    let mut paired = Paired::setup()
        .fixed_port()
        .signer_args(&["--wake-url", &push.url])
        .start();
    let sshd = sshd_for(&paired);
    let _agent = paired.spawn_agent(&[], &[]);
    paired.wait_connected();
    // The endpoint the signer sent, kept per signer, owner-only; status
    // shows where it points but not the secret path.
    let status = paired.wait_status("Wake: ready, not used yet (phone via 127.0.0.1)");
    assert!(!status.contains("vmux-wake-secret"), "{status}");
    let wake = paired.device_home.join("wake.json");
    assert!(std::fs::read_to_string(&wake).unwrap().contains(&push.url));
    let mode = std::fs::metadata(&wake).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    paired.kill_signer();
    paired.wait_status("Disconnected");
    let mut login = ssh(&paired, &sshd, "woken-up");
    let post = push.next(WAIT);
    assert!(
        post.head.starts_with("POST /vmux-wake-secret HTTP/1.1\r\n"),
        "{}",
        post.head
    );
    assert!(
        post.head
            .to_ascii_lowercase()
            .contains("content-type: text/plain; charset=utf-8"),
        "{}",
        post.head
    );
    // Which device waits, and nothing about the host, user or key.
    assert_eq!(post.body, b"laptop is waiting for your signer");

    // The person taps the notification: the signer starts again, where it was.
    paired.start_signer();
    paired.approve();
    let (ok, err) = wait_child(&mut login, WAIT);
    assert!(ok, "{err}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut login.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out.trim(), "woken-up");
    assert_eq!(push.requests().len(), 1, "{:?}", push.requests());
    assert!(paired.request_log().contains("\"outcome\":\"approved\""));
}

#[test]
fn a_failed_wake_is_shown_and_the_sign_fails_at_the_bound() {
    let push = Receiver::start(404);
    let mut paired = Paired::setup()
        .signer_args(&["--wake-url", &push.url])
        .start();
    let _agent = paired.spawn_agent(&[], &["--sign-timeout", "6"]);
    paired.wait_connected();
    // The CA the signer advertised in its key list, as the menu showed it.
    let status = paired.wait_status("CA: SHA256:");
    assert!(status.contains(") on phone"), "{status}");
    paired.wait_status("Wake: ready");
    paired.kill_signer();
    paired.wait_status("Disconnected");

    let started = Instant::now();
    let (mut child, _) = paired.start_sign("msg", b"nobody is there\n");
    push.next(WAIT);
    let (ok, _) = wait_child(&mut child, WAIT);
    let took = started.elapsed();
    assert!(!ok);
    // The bound, not the approval window.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(12),
        "{took:?}"
    );
    let status = paired.wait_status("Wake: last attempt failed, HTTP 404 at");
    assert!(status.contains("(phone via 127.0.0.1)"), "{status}");
    assert!(paired.request_log().contains("\"outcome\":\"unreachable\""));
}

/// What an https wake test holds on to while it looks.
struct HttpsWake {
    push: Receiver,
    paired: Paired,
    _agent: process::Proc,
    signing: Child,
    _dir: tempfile::TempDir,
}

/// A receiver behind TLS as the signer's wake endpoint, an agent told to
/// trust its CA (`SSL_CERT_FILE`, as for a company CA) or told nothing, the
/// signer gone, and a signature started that must wake it.
fn https_wake(trusted: bool) -> HttpsWake {
    let dir = tempfile::tempdir().unwrap();
    let (push, ca) = Receiver::start_tls(200, dir.path());
    let mut paired = Paired::setup()
        .signer_args(&["--wake-url", &push.url])
        .start();
    let trust = format!("SSL_CERT_FILE={}", ca.display());
    let env: &[&str] = if trusted {
        &["env", "-u", "SSL_CERT_DIR", &trust]
    } else {
        &["env", "-u", "SSL_CERT_FILE", "-u", "SSL_CERT_DIR"]
    };
    let agent = paired.spawn_agent(env, &["--sign-timeout", "6"]);
    paired.wait_connected();
    paired.wait_status("Wake: ready, not used yet (phone via localhost)");
    paired.kill_signer();
    paired.wait_status("Disconnected");
    let (signing, _) = paired.start_sign("msg", b"wake me over tls\n");
    HttpsWake {
        push,
        paired,
        _agent: agent,
        signing,
        _dir: dir,
    }
}

/// Trusted: the POST arrives whole over TLS, and status says it was sent.
#[test]
fn an_https_wake_reaches_a_receiver_the_device_trusts() {
    let mut wake = https_wake(true);
    let post = wake.push.next(WAIT);
    assert!(
        post.head.starts_with("POST /vmux-wake-secret HTTP/1.1\r\n"),
        "{}",
        post.head
    );
    assert_eq!(post.body, b"laptop is waiting for your signer");
    let status = wake.paired.wait_status("HTTP 200 (phone via localhost)");
    assert!(status.contains("Wake: last sent at"), "{status}");
    let _ = wake.signing.kill();
}

/// Not trusted: nothing is sent (TLS stops before any byte of the wake),
/// and status says why.
#[test]
fn an_https_wake_to_an_untrusted_certificate_is_not_sent() {
    let mut wake = https_wake(false);
    let status = wake.paired.wait_status("Wake: last attempt failed");
    assert!(
        status.contains("invalid peer certificate: UnknownIssuer"),
        "{status}"
    );
    assert!(
        wake.push.requests().is_empty(),
        "{:?}",
        wake.push.requests()
    );
    let _ = wake.signing.kill();
}

#[test]
fn with_no_signer_and_no_endpoint_ssh_fails_within_10_s() {
    let mut paired = Paired::setup().start();
    let sshd = sshd_for(&paired);
    let _agent = paired.spawn_agent(&[], &[]);
    paired.wait_connected();
    paired.wait_status("Wake: no endpoint");
    paired.kill_signer();
    paired.wait_status("Disconnected");

    let started = Instant::now();
    let mut login = ssh(&paired, &sshd, "never");
    let (ok, err) = wait_child(&mut login, WAIT);
    let took = started.elapsed();
    assert!(!ok);
    assert!(err.contains("Permission denied"), "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(paired.request_log().contains("\"outcome\":\"unreachable\""));
}

#[test]
fn a_client_that_leaves_withdraws_its_sheet_and_no_passphrase_is_asked() {
    let mut paired = Paired::setup().start();
    let _agent = paired.spawn_agent(&[], &[]);
    paired.wait_connected();

    let (mut child, _) = paired.start_sign("left", b"nobody waits for this\n");
    paired.signer().expect("SSH Sign Request", WAIT);
    paired.signer().expect("[a] approve", WAIT);
    child.kill().unwrap();
    child.wait().unwrap();
    paired.signer().expect("Withdrawn", WAIT);
    paired.signer().expect(
        "can no longer be delivered (its client left); nothing was signed",
        WAIT,
    );
    // The person saw its sheet: the signer's log keeps a line for it.
    let logged = std::fs::read_to_string(paired.signer_home.join("signer-log.jsonl")).unwrap();
    assert!(logged.contains("\"outcome\":\"withdrawn\""), "{logged}");
    let withdrawn_at = paired.signer().transcript.len();
    // The next request gets its own sheet and the only passphrase prompt.
    paired.sign_approved("next");
    let after = &paired.signer().transcript[withdrawn_at..];
    assert_eq!(
        after.matches("Passphrase for").count(),
        1,
        "only the next request asks for the passphrase:\n{after}"
    );
    // Only the next request was signed (approve waited for its banner).
    paired
        .signer()
        .expect_seen("Approved remote sign request", WAIT);
    assert_eq!(
        paired
            .signer()
            .transcript
            .matches("Approved remote sign request")
            .count(),
        1
    );
}
