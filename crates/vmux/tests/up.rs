//! `vmux up` as a newcomer runs it: in a terminal, a passphrase for the demo
//! key, the export line, and a signature approved on the same terminal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/process.rs"]
mod process;
#[path = "support/sshd.rs"]
mod sshd;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::Proc;

const WAIT: Duration = Duration::from_secs(20);
const PASS: &str = "demo passphrase";

#[test]
fn up_makes_a_demo_key_prints_the_export_line_and_signs_after_approval() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("vmux");
    let mut up = Proc::spawn_in_pty(&home, &["up", "--ui", "plain"]);
    up.expect("Passphrase for the demo key", WAIT);
    up.type_line(PASS);
    up.expect("Again, to confirm", WAIT);
    up.type_line(PASS);
    let line = up.expect(" vmux ssh user@host", WAIT);
    let client_home = line
        .trim()
        .trim_start_matches("VMUX_HOME=")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let line = up.expect("; export SSH_AUTH_SOCK;", WAIT);
    let sock = line
        .trim()
        .trim_start_matches("SSH_AUTH_SOCK=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(std::path::Path::new(&sock).exists(), "no socket at {sock}");

    // The agent's first request: a session certificate, approved here.
    up.expect("Session certificate for", WAIT);
    up.type_line("a");
    up.expect("Approved session certificate", WAIT);

    // The agent lists the demo key once it has reached the signer.
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let out = Command::new("ssh-add")
            .arg("-L")
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("ecdsa-sha2-nistp256 ") && text.contains("vmux-session-cert") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never listed the demo key"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let pubkey = dir.path().join("demo.pub");
    let key_line = listed
        .lines()
        .find(|l| l.starts_with("ecdsa-sha2-nistp256 "))
        .unwrap();
    assert!(
        listed.contains("ecdsa-sha2-nistp256-cert-v01@openssh.com"),
        "{listed}"
    );
    std::fs::write(&pubkey, key_line).unwrap();

    // A signature through the agent, approved on the same terminal.
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"hello").unwrap();
    let mut sign = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "file", "-f"])
        .arg(&pubkey)
        .arg(&msg)
        .env("SSH_AUTH_SOCK", &sock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    up.expect("SSH Sign Request", WAIT);
    up.type_line("a");
    up.expect("Passphrase for \"demo\"", WAIT);
    up.type_line(PASS);
    up.expect("Approved remote sign request", WAIT);
    assert!(sign.wait().unwrap().success());
    std::fs::write(dir.path().join("allowed"), format!("me {key_line}")).unwrap();
    let verified = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-I", "me", "-n", "file", "-f"])
        .arg(dir.path().join("allowed"))
        .arg("-s")
        .arg(msg.with_extension("sig"))
        .stdin(std::fs::File::open(&msg).unwrap())
        .output()
        .unwrap();
    assert!(verified.status.success());

    // Without the agent: `vmux ssh` with the state directory `up` printed.
    let server = sshd::Sshd::start(&dir.path().join("sshd"), &format!("{key_line}\n"), None);
    let ssh_home = dir.path().join("home");
    std::fs::create_dir_all(ssh_home.join(".ssh")).unwrap();
    std::fs::write(ssh_home.join(".ssh/known_hosts"), server.known_hosts_line()).unwrap();
    let dest = format!("{}@127.0.0.1:{}", sshd::whoami(), server.port);
    let mut ssh = Proc::spawn_in_pty_env(
        std::path::Path::new(&client_home),
        &["ssh", &dest, "--", "echo", "no-agent-$((6*7))"],
        &[("HOME", ssh_home.to_str().unwrap())],
    );
    up.expect("SSH Sign Request", WAIT);
    up.type_line("a");
    up.expect("Passphrase for \"demo\"", WAIT);
    up.type_line(PASS);
    ssh.expect("no-agent-42", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);

    // The passphrase was typed as soon as each prompt showed: never echoed.
    assert!(!up.transcript.contains(PASS), "{}", up.transcript);

    // Ctrl-C stops both and removes the socket.
    up.type_raw("\x03");
    up.expect("Stopped.", WAIT);
    let deadline = Instant::now() + WAIT;
    while std::path::Path::new(&sock).exists() {
        assert!(Instant::now() < deadline, "socket left behind");
        std::thread::sleep(Duration::from_millis(50));
    }
}
