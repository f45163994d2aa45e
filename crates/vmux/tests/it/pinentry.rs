//! `vmux signer --ui pinentry` through a real console pinentry
//! (pinentry-tty) drawing on the signer's pseudo-terminal, as a person
//! would answer it: approve and the passphrase log in to sshd; deny
//! refuses; a request that expires closes its dialog; two requests are
//! asked one after the other, in order; the desktop notification goes out
//! before the dialog.
//!
//! Missing pinentry-tty: SKIPPED, unless `VMUX_REQUIRE_PINENTRY=1` (CI)
//! fails the test.

use crate::support::clients;
use crate::support::faketime;
use crate::support::paired;
use crate::support::sshd;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clients::{openssh, text, wait_child};
use paired::{PASS, Paired, WAIT};
use vmux_keys::KeyType;

const PINENTRY: &str = "/usr/bin/pinentry-tty";
/// pinentry-tty's question for a two-button dialog (Approve, Deny).
const ASK: &str = "[ad]? ";

/// Processes under `root` (any depth) whose command name is `name`.
fn descendants_named(root: u32, name: &str) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let ppid: u32 = stat[close + 2..]
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        parents.push((pid, ppid, comm));
    }
    let under = |mut pid: u32| {
        while pid > 1 {
            if pid == root {
                return true;
            }
            pid = match parents.iter().find(|(p, _, _)| *p == pid) {
                Some((_, ppid, _)) => *ppid,
                None => return false,
            };
        }
        false
    };
    parents
        .iter()
        .filter(|(pid, _, comm)| comm == name && under(*pid))
        .map(|(pid, _, _)| *pid)
        .collect()
}

/// `ssh-keygen -Y sign` of a small file with the key in `pubkey`.
fn start_sign(rig: &Paired, pubkey: &Path, name: &str) -> Child {
    let file = rig.dir.path().join(name);
    std::fs::write(&file, name).unwrap();
    openssh(
        "ssh-keygen",
        &rig.sock(),
        &["-Y", "sign", "-n", "file", "-f"],
        &[],
    )
    .arg(pubkey)
    .arg(&file)
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

#[test]
fn pinentry_dialogs_approve_deny_expire_and_queue() {
    if !Path::new(PINENTRY).exists() {
        let required = std::env::var("VMUX_REQUIRE_PINENTRY").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "pinentry-tty is missing, and VMUX_REQUIRE_PINENTRY=1"
        );
        eprintln!("SKIPPED: pinentry-tty not installed");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    // A notifier that writes down what it was asked, and when.
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let notified = scratch.path().join("notified");
    let notify = bin.join("notify-send");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", notified.display()),
    )
    .unwrap();
    std::fs::set_permissions(&notify, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let mut rig = Paired::setup()
        .identities(&[("first", KeyType::Ecdsa), ("second", KeyType::Ed25519)])
        .ui("pinentry")
        .signer_env("PINENTRY_PROGRAM", PINENTRY)
        .signer_env("PATH", &path)
        .signer_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .start();
    let mut agent = rig.spawn_agent(&[], &[]);
    rig.wait_status("second  SHA256:");
    let lines = std::fs::read_to_string(&rig.pubkey).unwrap();
    let pubkeys: Vec<PathBuf> = ["first", "second"]
        .iter()
        .zip(lines.lines())
        .map(|(name, line)| {
            let file = rig.dir.path().join(format!("{name}.pub"));
            std::fs::write(&file, format!("{line}\n")).unwrap();
            file
        })
        .collect();
    let signer_pid = rig.signer().pid();

    // Approve, then the passphrase: a login to sshd.
    let first_line = format!("{}\n", lines.lines().next().unwrap());
    let server = Arc::new(sshd::Sshd::start(
        &rig.dir.path().join("sshd"),
        &first_line,
        None,
    ));
    let (srv, sock) = (Arc::clone(&server), rig.sock());
    let login = std::thread::spawn(move || srv.ssh(&sock, &[], "echo logged-in"));
    rig.signer().expect("From Device: laptop", WAIT);
    // The notification goes out with the dialog (its process is not
    // waited for): it arrives within the deadline.
    let deadline = Instant::now() + WAIT;
    loop {
        let said = std::fs::read_to_string(&notified).unwrap_or_default();
        if said.contains("SSH Sign Request") {
            break;
        }
        assert!(Instant::now() < deadline, "no notification: {said:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    rig.signer().expect("Key: first", WAIT);
    rig.signer().expect(ASK, WAIT);
    rig.signer().type_raw("a");
    rig.signer().expect("Passphrase for \"first\"", WAIT);
    rig.signer().type_line(PASS);
    let out = login.join().unwrap();
    assert!(
        text(&out).contains("logged-in"),
        "{}\n{}",
        text(&out),
        server.log()
    );

    // Deny: the client hears "agent refused operation".
    let mut sign = start_sign(&rig, &pubkeys[0], "denied");
    rig.signer().expect("Key: first", WAIT);
    rig.signer().expect(ASK, WAIT);
    rig.signer().type_raw("d");
    let (ok, err) = wait_child(&mut sign, WAIT);
    assert!(!ok);
    assert!(err.contains("agent refused operation"), "{err}");

    // Two requests: the second waits until the first is answered, then
    // gets its own dialog.
    let mut one = start_sign(&rig, &pubkeys[0], "one");
    rig.signer().expect("Key: first", WAIT);
    rig.signer().expect(ASK, WAIT);
    let mut two = start_sign(&rig, &pubkeys[1], "two");
    // The second has reached the signer once it is announced (the fourth
    // notification), and waits: still one dialog.
    let deadline = Instant::now() + WAIT;
    while std::fs::read_to_string(&notified)
        .unwrap_or_default()
        .lines()
        .count()
        < 4
    {
        assert!(
            Instant::now() < deadline,
            "the second request never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(descendants_named(signer_pid, "pinentry-tty").len(), 1);
    rig.signer().type_raw("a");
    rig.signer().expect("Passphrase for \"first\"", WAIT);
    rig.signer().type_line(PASS);
    rig.signer().expect("Key: second", WAIT);
    rig.signer().expect(ASK, WAIT);
    rig.signer().type_raw("a");
    rig.signer().expect("Passphrase for \"second\"", WAIT);
    rig.signer().type_line(PASS);
    for (child, name) in [(&mut one, "one"), (&mut two, "two")] {
        let (ok, err) = wait_child(child, WAIT);
        assert!(ok, "{name}: {err}");
    }

    // A request that expires while its dialog is up: the dialog closes
    // (its pinentry ends) and the signer says so. Requests live 60 s; an
    // agent whose clock is 55 s behind makes one with 5 s left.
    let Some(lib) = faketime::libfaketime() else {
        panic!("libfaketime is not installed: apt-get install faketime (.ci/run installs it)");
    };
    drop(agent);
    let wrapper = faketime::wrapper(&lib, -55);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    agent = rig.spawn_agent(&wrapper, &[]);
    rig.wait_status("second  SHA256:");
    let mut late = start_sign(&rig, &pubkeys[0], "late");
    rig.signer().expect(ASK, WAIT);
    assert_eq!(descendants_named(signer_pid, "pinentry-tty").len(), 1);
    // One line for the expiry (the pipeline's), not a second from the UI.
    rig.signer().expect("expired before it was answered", WAIT);
    let deadline = Instant::now() + WAIT;
    while !descendants_named(signer_pid, "pinentry-tty").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the expired dialog is still open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, _) = wait_child(&mut late, WAIT);
    assert!(!ok);
    drop(agent);
}
