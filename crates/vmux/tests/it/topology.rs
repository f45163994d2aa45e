//! The topologies of the seeds: two agents sharing one signer, and one
//! agent with two signers. Real signers in ptys, real agents, OpenSSH's
//! `ssh` to a real sshd on 127.0.0.1.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::sheet;
use crate::support::sshd;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use clients::wait_child;
use paired::{PASS, Paired, WAIT, agent_at, wait_status_in};
use process::Proc;
use sshd::Sshd;
use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use zeroize::Zeroizing;

/// `ssh … echo MARK` through the agent at `sock`, with `extra` options.
fn ssh(sock: &Path, sshd: &Sshd, extra: &[&str], mark: &str) -> Child {
    sshd.command(sock, extra, &format!("echo {mark}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn succeeds(child: &mut Child, mark: &str) {
    let (ok, err) = wait_child(child, WAIT);
    assert!(ok, "{mark}: {err}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out.trim(), mark);
}

/// `vmux agent` for the device at `home`, socket `home/agent.sock`, no
/// session certificate; returns once the socket answers.
fn agent(home: &Path) -> (Proc, PathBuf) {
    let sock = home.join("agent.sock");
    let agent = agent_at(&[], home, &sock, &["--cert-validity", "0"]);
    (agent, sock)
}

/// Pairs the device at `home` as `name` with the signer at `addr`,
/// accepted on `signer`.
fn pair(home: &Path, name: &str, addr: &str, signer: &mut Proc) {
    let mut pair = Proc::spawn(home, &["pair", "--signer", addr, "--name", name]);
    signer.expect("wants to pair", WAIT);
    signer.type_line("a");
    pair.expect("Paired with", WAIT);
    assert!(pair.wait_exit(WAIT).success());
}

/// Approves the next sign request on `signer`; returns its device line.
fn approve(signer: &mut Proc) -> String {
    let sheet = sheet::approve_next(signer, PASS);
    sheet::line(&sheet, "From Device").to_owned()
}

#[test]
fn two_agents_one_signer_are_served_in_order_each_sheet_naming_its_device() {
    let mut paired = Paired::setup().start();
    let desktop = paired.dir.path().join("desktop");
    let addr = paired.addr.clone();
    pair(&desktop, "desktop", &addr, paired.signer());
    let lines = std::fs::read_to_string(&paired.pubkey).unwrap();
    let sshd = Sshd::start(&paired.dir.path().join("sshd"), &lines, None);

    let _laptop = paired.spawn_agent(&[], &[]);
    let (_desktop, desktop_sock) = agent(&desktop);
    paired.wait_connected();
    wait_status_in(&desktop, &desktop_sock, "Connected to phone");

    // Both at once: the laptop's first, the desktop's queued behind it.
    let mut first = ssh(&paired.sock(), &sshd, &[], "from-laptop");
    let device = paired.signer().expect("From Device", WAIT);
    assert!(device.contains("laptop"), "{device}");
    let mut second = ssh(&desktop_sock, &sshd, &[], "from-desktop");
    paired.signer().expect("1 more waiting", WAIT);
    paired.signer().type_line("a");
    paired.signer().expect("Passphrase for", WAIT);
    paired.signer().type_line(PASS);
    succeeds(&mut first, "from-laptop");
    // Then the desktop's, naming its own device.
    let device = approve(paired.signer());
    assert!(device.contains("desktop"), "{device}");
    succeeds(&mut second, "from-desktop");
}

/// A second signer "tablet" holding one ed25519 identity "home": its
/// process, its address, and the identity's `authorized_keys` line.
fn tablet(dir: &Path) -> (Proc, String, String) {
    let home = dir.join("tablet");
    let mut keyring = Keyring::load(&Home::at(home.clone()).unwrap()).unwrap();
    let id = keyring
        .create_software("home", KeyType::Ed25519, &Zeroizing::new(PASS.to_owned()))
        .unwrap();
    let line = id.public().unwrap().to_openssh().unwrap();
    let mut signer = Proc::spawn_in_pty(
        &home,
        &[
            "signer",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "tablet",
            "--ui",
            "plain",
            "--pair",
        ],
    );
    let listening = signer.expect("listening on", WAIT);
    let port = listening.trim().rsplit(':').next().unwrap().to_owned();
    (signer, format!("127.0.0.1:{port}"), line)
}

#[test]
fn one_agent_two_signers_routes_each_key_and_moves_on_when_one_goes() {
    let mut paired = Paired::setup().start();
    let (mut tablet, tablet_addr, home_line) = tablet(paired.dir.path());
    let device_home = paired.device_home.clone();
    pair(&device_home, "laptop", &tablet_addr, &mut tablet);
    let work_line = std::fs::read_to_string(&paired.pubkey).unwrap();
    let sshd = Sshd::start(
        &paired.dir.path().join("sshd"),
        &format!("{work_line}{home_line}\n"),
        None,
    );
    let work_pub = paired.dir.path().join("work.pub");
    let home_pub = paired.dir.path().join("home.pub");
    std::fs::write(&work_pub, &work_line).unwrap();
    std::fs::write(&home_pub, format!("{home_line}\n")).unwrap();
    let only = |p: &Path| {
        vec![
            "-o".to_owned(),
            "IdentitiesOnly=yes".to_owned(),
            "-i".to_owned(),
            p.display().to_string(),
        ]
    };

    let _agent = paired.spawn_agent(&[], &[]);
    let status = paired.wait_status("(signer in use); also to ");
    // Each key listed, tagged with the signer holding it.
    let status = if status.contains("home  SHA256:") && status.contains("work  SHA256:") {
        status
    } else {
        paired.wait_status("home  SHA256:");
        paired.wait_status("work  SHA256:")
    };
    assert!(
        status.contains("[phone]") && status.contains("[tablet]"),
        "{status}"
    );

    // Each key's signature goes to the signer that holds it.
    let args = only(&work_pub);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut login = ssh(&paired.sock(), &sshd, &args, "with-work");
    assert!(approve(paired.signer()).contains("laptop"));
    succeeds(&mut login, "with-work");
    let args_home = only(&home_pub);
    let args_home: Vec<&str> = args_home.iter().map(String::as_str).collect();
    let mut login = ssh(&paired.sock(), &sshd, &args_home, "with-home");
    assert!(approve(&mut tablet).contains("laptop"));
    succeeds(&mut login, "with-home");

    // The signer in use goes away: the agent moves to the other one, whose
    // key still logs in.
    let in_use = if status.contains("Connected to phone (signer in use)") {
        "phone"
    } else {
        "tablet"
    };
    let (mut survivor, survivor_args, mark) = if in_use == "phone" {
        paired.kill_signer();
        (tablet, args_home, "still-home")
    } else {
        drop(tablet);
        (paired.signer.take().unwrap(), args, "still-work")
    };
    let other = if in_use == "phone" { "tablet" } else { "phone" };
    let status = paired.wait_status(&format!("Connected to {other}\n"));
    assert!(!status.contains("also to"), "{status}");
    let mut login = ssh(&paired.sock(), &sshd, &survivor_args, mark);
    approve(&mut survivor);
    succeeds(&mut login, mark);
}
