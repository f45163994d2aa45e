//! Broken pipes end quietly (issue 21.7): a command whose reader has gone
//! (`vmux key show NAME | head -0`) exits with status 141, as a command
//! killed by SIGPIPE would, and says nothing; never a panic (status 101).
//! The pipe's read end is closed before the command starts, so every write
//! fails, not only those after `head` happened to exit.

use std::path::Path;
use std::process::{Command, Stdio};

use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use zeroize::Zeroizing;

use crate::support::paired::{PASS, Paired, WAIT};
use crate::support::process::VMUX;
use crate::support::sheet;
use crate::support::sshd::{Sshd, whoami};

/// `vmux ARGS` in `home` with its stdout (and, if `stderr_too`, its
/// stderr) a pipe nobody reads; its status code and stderr.
fn into_closed_pipe(home: &Path, args: &[&str], stderr_too: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let stderr = if stderr_too {
        Stdio::from(writer.try_clone().unwrap())
    } else {
        Stdio::piped()
    };
    let out = Command::new(VMUX)
        .args(args)
        .env("VMUX_HOME", home)
        .env("VMUX_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly_with_141() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("signer");
    Keyring::load(&Home::at(home.clone()).unwrap())
        .unwrap()
        .create_software("work", KeyType::Ed25519, &Zeroizing::new(PASS.to_owned()))
        .unwrap();
    for args in [
        &["key", "show", "work"][..],
        &["key", "list"],
        &["peers", "list"],
        &["hostkeys", "list"],
        &["log"],
        &["signer", "log"],
    ] {
        let (code, stderr) = into_closed_pipe(&home, args, false);
        assert_eq!(code, Some(141), "vmux {args:?}: {stderr}");
        assert!(stderr.is_empty(), "vmux {args:?} said: {stderr}");
    }
    // An error with stderr gone too: status 1, not a panic's 101.
    let (code, _) = into_closed_pipe(&home, &["key", "show", "nope"], true);
    assert_eq!(code, Some(1));
    let (code, _) = into_closed_pipe(&home, &["key", "show", "work"], true);
    assert_eq!(code, Some(141));
}

/// `vmux ssh HOST -- echo hi` whose stdout is gone: the remote output cannot
/// be written, and it ends with 141, not a panic nor OpenSSH's 255.
#[test]
fn vmux_ssh_into_a_closed_pipe_ends_quietly_with_141() {
    let mut paired = Paired::setup().device("headset").start();
    let lines = std::fs::read_to_string(&paired.pubkey).unwrap();
    let sshd = Sshd::start(&paired.dir.path().join("sshd"), &lines, None);
    let home = paired.dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/known_hosts"), sshd.known_hosts_line()).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let dest = format!("{}@127.0.0.1:{}", whoami(), sshd.port);
    let mut ssh = Command::new(VMUX)
        .args(["ssh", &dest, "--", "echo", "hi"])
        .env("VMUX_HOME", &paired.device_home)
        .env("HOME", &home)
        .env("VMUX_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sheet::approve_next(paired.signer(), PASS);
    let (ok, stderr) = crate::support::clients::wait_child(&mut ssh, WAIT);
    let code = ssh.wait().unwrap().code();
    assert!(!ok);
    assert_eq!(code, Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
