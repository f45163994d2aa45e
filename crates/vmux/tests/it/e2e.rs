//! vmux as a drop-in agent for everyday tools: `vmux up` in a terminal (its
//! sheets answered through a pseudo-terminal), a real sshd on 127.0.0.1, and
//! real ssh, scp, sftp, rsync, git and ssh-keygen talking to the agent.

use crate::support::process;
use crate::support::sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use process::Proc;
use sshd::Sshd;

const WAIT: Duration = Duration::from_secs(30);
const PASS: &str = "demo passphrase";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Approve,
    Deny,
}

/// `vmux up` in a pty, a demo key authorized on a test sshd.
struct Rig {
    dir: tempfile::TempDir,
    up: Proc,
    sock: PathBuf,
    key_line: String,
    server: Sshd,
    /// Sign requests approved so far.
    approvals: usize,
}

impl Rig {
    fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let mut up = Proc::spawn_in_pty(&dir.path().join("vmux"), &["up", "--ui", "plain"]);
        up.expect("Passphrase for the demo key", WAIT);
        up.type_line(PASS);
        up.expect("Again, to confirm", WAIT);
        up.type_line(PASS);
        let line = up.expect("; export SSH_AUTH_SOCK;", WAIT);
        let sock = PathBuf::from(
            line.trim()
                .trim_start_matches("SSH_AUTH_SOCK=")
                .split(';')
                .next()
                .unwrap(),
        );
        let deadline = Instant::now() + WAIT;
        let key_line = loop {
            let out = Command::new("ssh-add")
                .arg("-L")
                .env("SSH_AUTH_SOCK", &sock)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(l) = text.lines().find(|l| l.starts_with("ecdsa-sha2-nistp256 ")) {
                break l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the agent never listed the demo key"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let server = Sshd::start(&dir.path().join("sshd"), &format!("{key_line}\n"), None);
        Rig {
            dir,
            up,
            sock,
            key_line,
            server,
            approvals: 0,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The ssh command line (options included) that reaches the test sshd.
    fn ssh_command(&self) -> String {
        format!("ssh {}", self.server.client_options().join(" "))
    }

    fn target(&self) -> String {
        format!("{}@127.0.0.1", sshd::whoami())
    }

    /// Runs `command` against the agent, answering every sheet that shows
    /// up meanwhile with `answer`; returns its output.
    fn run(&mut self, mut command: Command, answer: Answer) -> Output {
        command
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(command.output().unwrap()));
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(out) = rx.try_recv() {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "command still running after {WAIT:?}"
            );
            let sheets = ["SSH Sign Request", "Session certificate for"];
            match self.up.wait_any(&sheets, Duration::from_millis(100)) {
                Some(0) if answer == Answer::Approve => {
                    self.up.type_line("a");
                    self.up.expect("Passphrase for \"demo\"", WAIT);
                    self.up.type_line(PASS);
                    self.up.expect("Approved remote sign request", WAIT);
                    self.approvals += 1;
                }
                Some(0) => self.up.type_line("d"),
                Some(_) => {
                    // The session certificate; the first one makes the CA.
                    self.up.type_line("a");
                    let prompts = ["New passphrase for the CA key", "Passphrase for the CA key"];
                    if self.up.wait_any(&prompts, WAIT) == Some(0) {
                        self.up.type_line(PASS);
                        self.up.expect("Again, to confirm", WAIT);
                    }
                    self.up.type_line(PASS);
                }
                None => {}
            }
        }
    }
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "failed: {text}");
    text
}

fn same_bytes(a: &Path, b: &Path) {
    assert_eq!(
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn ssh_login_approved_runs_a_command_and_denied_is_refused() {
    let mut rig = Rig::start();
    let mut ssh = Command::new("ssh");
    ssh.args(rig.server.client_options())
        .arg(rig.target())
        .arg("echo hello-from-sshd");
    let out = rig.run(ssh, Answer::Approve);
    assert!(ok(&out).contains("hello-from-sshd"));
    assert_eq!(rig.approvals, 1);

    let mut ssh = Command::new("ssh");
    ssh.args(rig.server.client_options())
        .arg(rig.target())
        .arg("echo should-not-run");
    let out = rig.run(ssh, Answer::Deny);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && !text.contains("should-not-run"),
        "{text}"
    );
    assert!(text.contains("agent refused operation"), "{text}");
}

#[test]
fn scp_sftp_and_rsync_move_files_byte_identical() {
    let mut rig = Rig::start();
    let original = rig.path("original.bin");
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&original, &bytes).unwrap();
    let (target, base) = (rig.target(), rig.dir.path().to_owned());
    let remote = |name: &str| format!("{target}:{}", base.join(name).display());

    let mut scp = Command::new("scp");
    scp.args(
        rig.server
            .client_options()
            .iter()
            .map(|o| if o == "-p" { "-P" } else { o.as_str() }),
    )
    .arg(&original)
    .arg(remote("via-scp.bin"));
    ok(&rig.run(scp, Answer::Approve));
    same_bytes(&original, &rig.path("via-scp.bin"));

    std::fs::write(
        rig.path("batch"),
        format!(
            "get {} {}\n",
            rig.path("via-scp.bin").display(),
            rig.path("via-sftp.bin").display()
        ),
    )
    .unwrap();
    let mut sftp = Command::new("sftp");
    sftp.args(
        rig.server
            .client_options()
            .iter()
            .map(|o| if o == "-p" { "-P" } else { o.as_str() }),
    )
    .arg("-b")
    .arg(rig.path("batch"))
    .arg(rig.target());
    ok(&rig.run(sftp, Answer::Approve));
    same_bytes(&original, &rig.path("via-sftp.bin"));

    let mut rsync = Command::new("rsync");
    rsync
        .arg("-e")
        .arg(rig.ssh_command())
        .arg(&original)
        .arg(remote("via-rsync.bin"));
    ok(&rig.run(rsync, Answer::Approve));
    same_bytes(&original, &rig.path("via-rsync.bin"));
    assert_eq!(rig.approvals, 3);
}

fn git(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "vmux test")
        .env("GIT_AUTHOR_EMAIL", "test@vmux.invalid")
        .env("GIT_COMMITTER_NAME", "vmux test")
        .env("GIT_COMMITTER_EMAIL", "test@vmux.invalid");
    c
}

#[test]
fn git_clone_push_and_ssh_signed_commits() {
    let mut rig = Rig::start();
    let bare = rig.path("repo.git");
    ok(&git(
        rig.dir.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    )
    .output()
    .unwrap());
    let url = format!(
        "ssh://{}:{}{}",
        rig.target(),
        rig.server.port,
        bare.display()
    );
    let work = rig.path("work");
    let ssh_command = rig.ssh_command();

    let mut clone = git(
        rig.dir.path(),
        &["clone", "-q", &url, work.to_str().unwrap()],
    );
    clone.env("GIT_SSH_COMMAND", &ssh_command);
    ok(&rig.run(clone, Answer::Approve));

    // A commit signed with the signer's key through the agent.
    let key_file = rig.path("demo.pub");
    std::fs::write(&key_file, format!("{}\n", rig.key_line)).unwrap();
    std::fs::write(
        rig.path("allowed_signers"),
        format!("test@vmux.invalid {}\n", rig.key_line),
    )
    .unwrap();
    for (k, v) in [
        ("gpg.format", "ssh"),
        ("user.signingkey", key_file.to_str().unwrap()),
        (
            "gpg.ssh.allowedSignersFile",
            rig.path("allowed_signers").to_str().unwrap(),
        ),
        ("commit.gpgsign", "true"),
    ] {
        ok(&git(&work, &["config", k, v]).output().unwrap());
    }
    std::fs::write(
        work.join("README"),
        "signed by a key that never left the signer\n",
    )
    .unwrap();
    ok(&git(&work, &["add", "README"]).output().unwrap());
    ok(&rig.run(
        git(&work, &["commit", "-q", "-m", "first"]),
        Answer::Approve,
    ));
    let verified = git(&work, &["verify-commit", "HEAD"]).output().unwrap();
    let text = ok(&verified);
    assert!(text.contains("Good \"git\" signature"), "{text}");

    let mut push = git(&work, &["push", "-q", "origin", "HEAD:main"]);
    push.env("GIT_SSH_COMMAND", &ssh_command);
    ok(&rig.run(push, Answer::Approve));
    let log = ok(&git(
        rig.dir.path(),
        &[
            "--git-dir",
            bare.to_str().unwrap(),
            "log",
            "--format=%s",
            "main",
        ],
    )
    .output()
    .unwrap());
    assert_eq!(log.trim(), "first");
    assert_eq!(rig.approvals, 3);
}

#[test]
fn ssh_keygen_signs_through_the_agent_and_verifies() {
    let mut rig = Rig::start();
    let key_file = rig.path("demo.pub");
    std::fs::write(&key_file, format!("{}\n", rig.key_line)).unwrap();
    let msg = rig.path("msg");
    std::fs::write(&msg, b"a message").unwrap();
    let mut sign = Command::new("ssh-keygen");
    sign.args(["-Y", "sign", "-n", "file", "-f"])
        .arg(&key_file)
        .arg(&msg);
    ok(&rig.run(sign, Answer::Approve));
    std::fs::write(rig.path("allowed"), format!("me {}\n", rig.key_line)).unwrap();
    let verify = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-I", "me", "-n", "file", "-f"])
        .arg(rig.path("allowed"))
        .arg("-s")
        .arg(msg.with_extension("sig"))
        .stdin(std::fs::File::open(&msg).unwrap())
        .output()
        .unwrap();
    assert!(ok(&verify).contains("Good \"file\" signature"));
}

#[test]
fn ssh_dash_a_then_a_second_hop_through_the_forwarded_agent() {
    let mut rig = Rig::start();
    let inner = format!("{} {} echo second-hop-ok", rig.ssh_command(), rig.target());
    let mut ssh = Command::new("ssh");
    ssh.args(rig.server.client_options())
        .arg("-A")
        .arg(rig.target())
        .arg(inner);
    let out = rig.run(ssh, Answer::Approve);
    assert!(ok(&out).contains("second-hop-ok"));
    assert_eq!(rig.approvals, 2, "one signature per hop");
}
