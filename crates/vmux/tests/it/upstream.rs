//! `vmux agent --upstream`: OpenSSH's own `ssh-agent` holding an ed25519
//! key beside the signer's, through the one socket. Real ssh-agent,
//! ssh-add, ssh and sshd; the signer in a pty.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::sshd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clients::{openssh, text};
use paired::{Paired, WAIT};
use process::{Proc, VMUX};
use sshd::Sshd;

/// OpenSSH's `ssh-agent -D` on a socket of its own.
struct SshAgent {
    child: Child,
    sock: PathBuf,
}

impl SshAgent {
    fn start(dir: &Path) -> SshAgent {
        let sock = dir.join("upstream.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent never listened");
            std::thread::sleep(Duration::from_millis(10));
        }
        SshAgent { child, sock }
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key file `name` (no passphrase) in `dir`.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    path
}

fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key)
        .output()
        .unwrap();
    text(&out).split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn an_upstream_agent_lists_and_signs_beside_the_signer_without_a_sheet() {
    let mut paired = Paired::setup().start();
    let dir = paired.dir.path().to_owned();
    let upstream = SshAgent::start(&dir);
    let deploy = keygen(&dir, "deploy");
    assert!(
        openssh("ssh-add", &upstream.sock, &[deploy.to_str().unwrap()], &[])
            .output()
            .unwrap()
            .status
            .success()
    );
    let deploy_fp = fingerprint(&deploy);
    // This sshd takes only the upstream's key.
    let deploy_line = std::fs::read_to_string(deploy.with_extension("pub")).unwrap();
    let sshd = Sshd::start(&dir.join("sshd"), &deploy_line, None);

    let up = upstream.sock.to_str().unwrap().to_owned();
    let agent = paired.spawn_agent(&[], &["--upstream", &up]);
    let status = paired.wait_connected();
    // Listed after the signer's keys, each marked.
    let listed = text(&paired.ssh_add(&["-l"]));
    let work_at = listed.find(" work ").expect(&listed);
    let deploy_at = listed.find(&deploy_fp).expect(&listed);
    assert!(work_at < deploy_at, "{listed}");
    let status = if status.contains("[upstream]") {
        status
    } else {
        paired.wait_status("[upstream]")
    };
    assert!(
        status.contains("work  SHA256:") && status.contains("[phone]"),
        "{status}"
    );
    assert!(status.contains(&format!("deploy  {deploy_fp}")), "{status}");
    assert!(
        status.contains("Upstream agent: ") && status.contains("(read-only)"),
        "{status}"
    );

    // Logging in with it needs no sheet, and the signature is the upstream's.
    let out = sshd.ssh(&paired.sock(), &[], "echo through-upstream");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "through-upstream"
    );
    // Read the signer's screen up to now (a line answered by nothing), then
    // look: no sheet came.
    paired.signer().type_line("x");
    paired.signer().expect("Nothing to answer now", WAIT);
    assert!(
        !paired.signer().transcript.contains("SSH Sign Request"),
        "{}",
        paired.signer().transcript
    );
    let log = paired.request_log();
    assert!(
        log.contains("\"path\":\"upstream\"") && log.contains("\"outcome\":\"approved\""),
        "{log}"
    );

    // Through a forwarded agent (ssh -A), where nothing signs without a
    // person, the upstream's keys are neither listed nor used.
    let out = sshd.ssh(&paired.sock(), &["-A"], "ssh-add -l");
    let remote = text(&out);
    assert!(
        remote.contains(" work ") && !remote.contains(&deploy_fp),
        "{remote}"
    );

    // Read-only: adding through vmux is refused and reaches nobody.
    let extra = keygen(&dir, "extra");
    let added = paired.ssh_add(&[extra.to_str().unwrap()]);
    assert!(!added.status.success(), "{}", text(&added));
    let upstream_list = text(
        &openssh("ssh-add", &upstream.sock, &["-l"], &[])
            .output()
            .unwrap(),
    );
    assert!(
        !upstream_list.contains(&fingerprint(&extra)),
        "{upstream_list}"
    );

    // Writable: it lands in the upstream, never in vmux.
    drop(agent);
    let _agent = paired.spawn_agent(&[], &["--upstream", &up, "--upstream-writable"]);
    paired.wait_connected();
    let added = paired.ssh_add(&[extra.to_str().unwrap()]);
    assert!(added.status.success(), "{}", text(&added));
    let upstream_list = text(
        &openssh("ssh-add", &upstream.sock, &["-l"], &[])
            .output()
            .unwrap(),
    );
    assert!(
        upstream_list.contains(&fingerprint(&extra)),
        "{upstream_list}"
    );

    // The upstream goes away: its keys leave the list, the signer's stay.
    drop(upstream);
    let listed = text(&paired.ssh_add(&["-l"]));
    assert!(
        !listed.contains(&deploy_fp) && listed.contains(" work "),
        "{listed}"
    );
    paired.wait_status("not answering");
    paired.sign_approved("still-signs");
}

#[test]
fn an_upstream_that_leads_back_to_vmux_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("device");
    let sock = dir.path().join("vmux.sock");
    let sock_str = sock.to_str().unwrap();
    // Itself, named directly.
    let mut me = Proc::spawn(
        &home,
        &["agent", "--socket", sock_str, "--upstream", sock_str],
    );
    me.expect("leads back to this agent", WAIT);
    assert!(!me.wait_exit(WAIT).success());
    // Itself, through SSH_AUTH_SOCK.
    let mut command = Command::new(VMUX);
    command
        .args(["agent", "--socket", sock_str, "--upstream"])
        .env("SSH_AUTH_SOCK", &sock);
    let mut me = Proc::start(command, &home);
    me.expect("SSH_AUTH_SOCK is this agent's own socket", WAIT);
    assert!(!me.wait_exit(WAIT).success());
    // Through another vmux agent whose upstream is this one.
    let other = dir.path().join("other.sock");
    let other_str = other.to_str().unwrap();
    let mut first = Proc::spawn(
        &dir.path().join("other"),
        &["agent", "--socket", other_str, "--upstream", sock_str],
    );
    first.expect("export SSH_AUTH_SOCK", WAIT);
    let mut me = Proc::spawn(
        &home,
        &["agent", "--socket", sock_str, "--upstream", other_str],
    );
    me.expect("leads back to this agent", WAIT);
    assert!(!me.wait_exit(WAIT).success());
}
