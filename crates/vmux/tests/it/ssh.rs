//! `vmux ssh` against a real sshd on 127.0.0.1, its signatures approved on a
//! real `vmux signer` through a pseudo-terminal, and `vmux ssh` itself run
//! in a pseudo-terminal where a person would answer it.

use crate::support::netns;
use crate::support::paired;
use crate::support::process;
use crate::support::push;
use crate::support::sheet;
use crate::support::sshd;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use paired::{PASS, Paired, Setup, WAIT};
use process::{Proc, VMUX};
use sshd::{Sshd, whoami};
use vmux_keys::KeyType;
use vmux_link::home::Home;
use vmux_link::trust::TrustStore;

/// sshd taking the identities in [`Paired::pubkey`], and a signer in a pty
/// paired with a client home as "headset".
struct Rig {
    sshd: Sshd,
    paired: Paired,
}

impl Rig {
    /// One identity, "work", authorized.
    fn start() -> Rig {
        Rig::with(Paired::setup())
    }

    fn with(setup: Setup) -> Rig {
        let paired = setup.device("headset").start();
        let lines = std::fs::read_to_string(&paired.pubkey).unwrap();
        let sshd = Sshd::start(&paired.dir.path().join("sshd"), &lines, None);
        std::fs::create_dir_all(paired.dir.path().join("home/.ssh")).unwrap();
        Rig { sshd, paired }
    }

    fn known_hosts(&self) -> PathBuf {
        self.paired.dir.path().join("home/.ssh/known_hosts")
    }

    /// Trusts the server's key as OpenSSH would have recorded it.
    fn trust_host(&self) {
        std::fs::write(self.known_hosts(), self.sshd.known_hosts_line()).unwrap();
    }

    fn destination(&self) -> String {
        format!("{}@127.0.0.1:{}", whoami(), self.sshd.port)
    }

    /// `vmux ssh ARGS` in a pty, `HOME` pointing at the test's.
    fn ssh(&self, args: &[&str]) -> Proc {
        let home = self.paired.dir.path().join("home");
        let home = home.to_str().unwrap();
        let mut all = vec!["ssh"];
        all.extend_from_slice(args);
        Proc::spawn_in_pty_env(&self.paired.device_home, &all, &[("HOME", home)])
    }

    /// Approves the next sign request; returns its destination line.
    fn approve(&mut self) -> String {
        let sheet = sheet::approve_next(self.paired.signer(), PASS);
        sheet::line(&sheet, "Destination").to_owned()
    }
}

#[test]
fn commands_print_their_output_and_exit_with_their_status() {
    let mut rig = Rig::start();
    rig.trust_host();
    let dest = rig.destination();

    let mut ssh = rig.ssh(&[&dest, "--", "echo", "hi"]);
    ssh.expect("Waiting for signer… approve on \"phone\"", WAIT);
    let sheet = rig.approve();
    // The sheet names the host, verified by the client; the user has a
    // line of its own.
    let expected = format!("127.0.0.1:{} (verified by the requester)", rig.sshd.port);
    assert!(
        sheet.contains(&expected),
        "sheet: {sheet}\nwanted {expected}"
    );
    ssh.expect("hi", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);

    // Once the signer knows the server's key by name, it names the host
    // key the client checked from its own list; the connection itself is
    // still only "verified by the requester".
    let key = rig.sshd.dir.join("host_ed25519.pub");
    let out = Command::new(VMUX)
        .args(["hostkeys", "add", "prod-db", key.to_str().unwrap()])
        .env("VMUX_HOME", &rig.paired.signer_home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut ssh = rig.ssh(&[&dest, "--", "exit", "3"]);
    let signer = rig.paired.signer();
    signer.expect("SSH Sign Request", WAIT);
    signer.expect("Destination  prod-db (verified by the requester)", WAIT);
    signer.expect("on this signer's list as \"prod-db\" (added", WAIT);
    signer.expect("[a] approve", WAIT);
    signer.type_line("a");
    signer.expect("Passphrase for", WAIT);
    signer.type_line(PASS);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(3), "{}", ssh.transcript);
}

#[test]
fn saved_hosts_and_the_identity_that_worked_is_offered_first() {
    // "old" comes first on the signer but the server only takes "work".
    let mut rig = Rig::with(
        Paired::setup()
            .identities(&[("old", KeyType::Ecdsa), ("work", KeyType::Ecdsa)])
            .authorized(&["work"]),
    );
    rig.trust_host();
    let client_home = rig.paired.device_home.clone();
    let vmux = |args: &[&str]| {
        let out = Command::new(VMUX)
            .args(args)
            .env("VMUX_HOME", &client_home)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = vmux(&["hosts", "add", "box", &rig.destination()]);
    assert!(ok, "{out}");
    let (ok, out) = vmux(&["hosts", "list"]);
    assert!(
        ok && out.contains("box") && out.contains(&rig.destination()),
        "{out}"
    );

    let mut ssh = rig.ssh(&["box", "--", "echo", "saved-$((40+2))"]);
    let sheet = rig.approve();
    assert!(sheet.contains("127.0.0.1"), "{sheet}");
    ssh.expect("saved-42", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);
    let probes_before = offered(&rig.sshd.log());
    assert_eq!(
        probes_before,
        2,
        "both identities offered the first time:\n{}",
        rig.sshd.log()
    );

    // Next time the identity that worked goes first: one offer only.
    let mut ssh = rig.ssh(&["box", "--", "true"]);
    rig.approve();
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);
    assert_eq!(
        offered(&rig.sshd.log()) - probes_before,
        1,
        "{}",
        rig.sshd.log()
    );

    let (ok, _) = vmux(&["hosts", "remove", "box"]);
    assert!(ok);
    let (ok, out) = vmux(&["hosts", "remove", "box"]);
    assert!(!ok && out.contains("no saved host"), "{out}");
}

/// How many public keys the client offered, from sshd's log: each offer is
/// refused ("Failed publickey") or accepted pending a signature
/// ("Postponed publickey").
fn offered(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("Failed publickey") || l.contains("Postponed publickey"))
        .count()
}

#[test]
fn an_unknown_host_is_asked_about_and_a_changed_key_refused() {
    let mut rig = Rig::start();
    let dest = rig.destination();
    let name = format!("[127.0.0.1]:{}", rig.sshd.port);

    // Declined: nothing recorded, nothing signed.
    let mut ssh = rig.ssh(&[&dest, "--", "true"]);
    ssh.expect(
        &format!("The authenticity of host '{name}' can't be established."),
        WAIT,
    );
    ssh.expect("ED25519 key fingerprint is SHA256:", WAIT);
    ssh.expect("(yes/no/[fingerprint])?", WAIT);
    ssh.type_line("no");
    ssh.expect("Host key verification failed.", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(255));
    assert!(
        !rig.known_hosts().exists()
            || std::fs::read_to_string(rig.known_hosts())
                .unwrap()
                .is_empty()
    );

    // Accepted: recorded, hashed, and OpenSSH finds it.
    let mut ssh = rig.ssh(&[&dest, "--", "echo", "in"]);
    ssh.expect("(yes/no/[fingerprint])?", WAIT);
    ssh.type_line("yes");
    ssh.expect(&format!("Permanently added '{name}' (ED25519)"), WAIT);
    rig.approve();
    ssh.expect("in", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);
    let recorded = std::fs::read_to_string(rig.known_hosts()).unwrap();
    assert!(
        recorded.starts_with("|1|") && !recorded.contains("127.0.0.1"),
        "{recorded}"
    );
    let found = Command::new("ssh-keygen")
        .args(["-F", &name, "-f"])
        .arg(rig.known_hosts())
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "ssh-keygen -F does not find it: {recorded}"
    );

    // Known from now on: no question.
    let mut ssh = rig.ssh(&[&dest, "--", "true"]);
    rig.approve();
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);
    assert!(
        !ssh.transcript.contains("authenticity"),
        "{}",
        ssh.transcript
    );

    // Changed: OpenSSH's warning, refused before any signature.
    let other = rig.paired.dir.path().join("other_host_key");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    std::fs::write(
        rig.known_hosts(),
        format!("{name} {}\n", other_key.join(" ")),
    )
    .unwrap();
    let mut ssh = rig.ssh(&[&dest, "--", "true"]);
    ssh.expect("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!", WAIT);
    ssh.expect(
        &format!("Offending ED25519 key in {}:1", rig.known_hosts().display()),
        WAIT,
    );
    ssh.expect("Host key verification failed.", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(255));
    // vmux ssh has exited, so no request can still be on its way.
    assert!(
        rig.paired
            .signer()
            .wait_any(&["SSH Sign Request"], Duration::from_millis(300))
            .is_none(),
        "{}",
        rig.paired.signer().transcript
    );
}

#[test]
fn no_signer_running_is_said_at_once_and_a_denial_fails_authentication() {
    let mut rig = Rig::start();
    rig.trust_host();
    let dest = rig.destination();

    let mut ssh = rig.ssh(&[&dest, "--", "true"]);
    rig.paired.signer().expect("SSH Sign Request", WAIT);
    rig.paired.signer().expect("[a] approve", WAIT);
    rig.paired.signer().type_line("d");
    ssh.expect(
        "Authentication failed: the request was denied on the signer (userDenied",
        WAIT,
    );
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(255), "{}", ssh.transcript);

    // The signer goes away; its pinned address refuses connections, and
    // with no wake endpoint there is nothing to wait for: said at once.
    rig.paired.kill_signer();
    let started = Instant::now();
    let mut ssh = rig.ssh(&[&dest, "--", "true"]);
    ssh.expect("No signer found: no paired signer is running", WAIT);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "gave up after {waited:?}");
    ssh.expect("vmux pair", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(255), "{}", ssh.transcript);
}

#[test]
fn a_signer_away_with_a_wake_endpoint_is_woken_and_the_login_completes() {
    let push = push::Receiver::start(200);
    let mut rig = Rig::with(
        Paired::setup()
            .fixed_port()
            .signer_args(&["--wake-url", &push.url]),
    );
    rig.trust_host();
    let dest = rig.destination();
    // A first login: the signer's endpoint is kept.
    let mut ssh = rig.ssh(&[&dest, "--", "true"]);
    rig.approve();
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);

    rig.paired.kill_signer();
    let mut ssh = rig.ssh(&[&dest, "--", "echo", "woken"]);
    ssh.expect("Waking the signer \"phone\"", WAIT);
    let post = push.next(WAIT);
    assert_eq!(post.body, b"headset is waiting for your signer");
    rig.paired.start_signer();
    rig.approve();
    ssh.expect("woken", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);
    assert_eq!(push.requests().len(), 1);
}

#[test]
fn an_interactive_session_runs_on_a_pty_and_gives_the_terminal_back() {
    let mut rig = Rig::start();
    rig.trust_host();
    let home = rig.paired.dir.path().join("home");
    // A shell in the pty runs vmux ssh twice, showing the terminal's mode
    // after each.
    let script = format!(
        "stty cols 120 rows 40; echo \"local=$(tty)\"; \
         '{VMUX}' ssh '{dest}'; echo \"status=$?\"; stty -a; \
         '{VMUX}' ssh '{dest}'; echo \"status2=$?\"; stty -a",
        dest = rig.destination()
    );
    let mut command = Command::new("script");
    command
        .args(["-qfec", &script, "/dev/null"])
        .env("HOME", &home);
    let mut ssh = Proc::start(command, &rig.paired.device_home);
    let local = ssh.expect("local=/dev/", WAIT);
    let local = local.trim().trim_start_matches("local=").to_owned();
    rig.approve();
    // The remote shell is on a pty of the same size.
    ssh.type_line("echo remote-$((6*7)) $(tty) $(stty size)");
    ssh.expect("remote-42 /dev/pts/", WAIT);
    ssh.expect("40 120", WAIT);

    // Resizing the local terminal resizes the remote one.
    let resized = Command::new("stty")
        .args(["-F", &local, "rows", "30", "cols", "100"])
        .status()
        .unwrap();
    assert!(resized.success());
    let deadline = Instant::now() + WAIT;
    loop {
        ssh.type_line("echo size=$(stty size)");
        if ssh
            .wait_any(&["size=30 100"], Duration::from_millis(500))
            .is_some()
        {
            break;
        }
        assert!(Instant::now() < deadline, "{}", ssh.transcript);
    }
    ssh.type_line("exit");
    ssh.expect("status=0", WAIT);
    assert_cooked(&mut ssh, "status=0");

    // The connection dies under the session: no exit status (255), and the
    // terminal is still given back.
    rig.approve();
    ssh.type_line("echo second-$((6*7))");
    ssh.expect("second-42", WAIT);
    ssh.type_line("kill -9 $PPID");
    ssh.expect("status2=255", WAIT);
    assert_cooked(&mut ssh, "status2=255");
    assert!(ssh.wait_exit(WAIT).success());
}

/// Checks that the `stty -a` printed after `marker` shows a cooked terminal.
fn assert_cooked(ssh: &mut Proc, marker: &str) {
    let modes = ssh.expect("icanon", WAIT);
    let after = &ssh.transcript[ssh.transcript.rfind(marker).unwrap()..];
    assert!(
        after.contains(" icanon") && after.contains(" echo ") && !after.contains("-icanon"),
        "terminal left in raw mode: {modes}\n{after}"
    );
}

/// The pinned address is stale (the signer moved): `vmux ssh` finds the
/// pinned signer by DNS-SD, inside a private network namespace, so no mDNS leaves the machine.
#[test]
fn a_signer_that_moved_is_found_on_the_local_network() {
    if !netns::enter("ssh::a_signer_that_moved_is_found_on_the_local_network") {
        return;
    }
    // On every interface: a signer on loopback only is not advertised.
    let mut rig = Rig::with(Paired::setup().listen("0.0.0.0:0"));
    rig.trust_host();
    let home = Home::at(rig.paired.device_home.clone()).unwrap();
    let mut trust = TrustStore::load(&home).unwrap();
    let mut signer = trust.signers()[0].clone();
    let reached_at = signer.address.clone().unwrap();
    // Unroutable here: the namespace has nothing but lo.
    signer.address = Some("10.255.255.1:7777".to_owned());
    trust.pin(signer).unwrap();

    let mut ssh = rig.ssh(&[&rig.destination(), "--", "echo", "found-it"]);
    rig.approve();
    ssh.expect("found-it", WAIT);
    assert_eq!(ssh.wait_exit(WAIT).code(), Some(0), "{}", ssh.transcript);
    // The address it was found at replaces the stale one.
    let trust = TrustStore::load(&home).unwrap();
    let now = trust.signers()[0].address.clone().unwrap();
    assert!(
        now.ends_with(reached_at.rsplit(':').next().unwrap()),
        "{now}"
    );
}
