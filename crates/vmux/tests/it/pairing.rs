//! `vmux signer` and `vmux pair` as a person runs them: separate processes,
//! separate `VMUX_HOME`s, answers typed into the signer's plain UI.

use std::process::Command;
use std::time::Duration;

use crate::support::netns;
use crate::support::process;

use process::{Proc, VMUX, start_signer};

const WAIT: Duration = Duration::from_secs(20);

/// What `vmux pair` says, word for word, when the signer has no pairing
/// window open.
const CLOSED: &str = "vmux: The signer is not accepting new devices: on the signer press p, or start it with --pair.\n";

fn code_in(line: &str) -> String {
    let digits: String = line.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len() - 6..].to_owned()
}

fn peers(home: &std::path::Path) -> String {
    let out = Command::new(VMUX)
        .args(["peers", "list"])
        .env("VMUX_HOME", home)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pairing_accepted_on_the_signer_pins_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (signer_home, agent_home) = (dir.path().join("signer"), dir.path().join("agent"));
    let (mut signer, addr) = start_signer(&signer_home, &["--pair"]);

    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "laptop"],
    );
    let shown_by_pair = pair.expect("Pairing code: ", WAIT);
    let shown_by_signer = signer.expect("wants to pair, code", WAIT);
    assert!(shown_by_signer.contains("\"laptop\""), "{shown_by_signer}");
    assert_eq!(
        code_in(&shown_by_pair),
        code_in(&shown_by_signer),
        "the two codes differ"
    );
    signer.type_line("a");
    pair.expect("Paired with phone", WAIT);
    assert!(pair.wait_exit(WAIT).success());

    assert!(peers(&signer_home).contains("laptop"));
    assert!(peers(&agent_home).contains("phone"));

    // Pairing again needs no code: the pinned keys are enough.
    let mut again = Proc::spawn(&agent_home, &["pair", "--signer", &addr]);
    again.expect("Already paired with phone", WAIT);
    assert!(again.wait_exit(WAIT).success());
    assert!(!again.transcript.contains("Pairing code"));

    // Lost our record of the signer: refused with what to do, no silent pin.
    std::fs::remove_file(agent_home.join("trust.json")).unwrap();
    let mut lost = Proc::spawn(&agent_home, &["pair", "--signer", &addr]);
    assert!(!lost.wait_exit(WAIT).success());
    lost.expect("vmux peers remove", WAIT);
    assert!(peers(&agent_home).contains("No paired devices"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(signer_home.join("trust.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Without `--pair` (or `p`), nobody on the network can raise a sheet:
/// `vmux pair` fails at once and says what to do.
#[test]
fn pairing_without_a_window_fails_fast_and_raises_no_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let (signer_home, agent_home) = (dir.path().join("signer"), dir.path().join("agent"));
    let (mut signer, addr) = start_signer(&signer_home, &[]);
    let started = std::time::Instant::now();
    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "laptop"],
    );
    assert!(!pair.wait_exit(WAIT).success());
    let took = started.elapsed();
    pair.expect(CLOSED, WAIT);
    assert!(
        !pair.transcript.contains("Pairing code"),
        "{}",
        pair.transcript
    );
    signer.expect("Refused a pairing request from 127.0.0.1", WAIT);
    assert!(
        !signer.transcript.contains("wants to pair"),
        "{}",
        signer.transcript
    );
    assert!(peers(&signer_home).contains("No paired devices"));
    assert!(peers(&agent_home).contains("No paired devices"));
    // Fast: one handshake, no waiting on anyone (the bound is for load).
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("measured: vmux pair refused by a closed window in {took:?}");

    // A window opened from the plain UI lets it pair.
    signer.type_line("p");
    signer.expect("Accepting new devices", WAIT);
    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "laptop"],
    );
    signer.expect("wants to pair", WAIT);
    signer.type_line("a");
    pair.expect("Paired with phone", WAIT);
    assert!(pair.wait_exit(WAIT).success());
}

#[test]
fn pairing_rejected_on_the_signer_fails_and_pins_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (signer_home, agent_home) = (dir.path().join("signer"), dir.path().join("agent"));
    let (mut signer, addr) = start_signer(&signer_home, &["--pair"]);

    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "laptop"],
    );
    signer.expect("wants to pair", WAIT);
    signer.type_line("x"); // not an answer: asked again
    signer.expect("Type a to accept or d to reject", WAIT);
    signer.type_line("d");
    pair.expect("rejected", WAIT);
    assert!(!pair.wait_exit(WAIT).success());
    assert!(peers(&signer_home).contains("No paired devices"));
    assert!(peers(&agent_home).contains("No paired devices"));
}

#[test]
fn unanswered_pairing_times_out_and_pins_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (signer_home, agent_home) = (dir.path().join("signer"), dir.path().join("agent"));
    let (mut signer, addr) = start_signer(&signer_home, &["--pair", "--pairing-timeout", "1"]);

    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "laptop"],
    );
    signer.expect("wants to pair", WAIT);
    pair.expect("timed out", WAIT);
    assert!(!pair.wait_exit(WAIT).success());
    signer.expect("Pairing request from \"laptop\" timed out", WAIT);
    assert!(peers(&signer_home).contains("No paired devices"));
    assert!(peers(&agent_home).contains("No paired devices"));
}

#[test]
fn pairing_with_nothing_listening_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // Bind then drop to find a port with nothing on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut pair = Proc::spawn(dir.path(), &["pair", "--signer", &addr]);
    assert!(!pair.wait_exit(WAIT).success());
    let line = pair.expect("is the address right?", WAIT);
    assert!(
        line.starts_with(&format!("vmux: cannot reach the signer at {addr}")),
        "{line}"
    );
    assert!(line.contains("is `vmux signer` running there"), "{line}");
}

/// `vmux pair` with no `--signer` finds the signer by DNS-SD. mDNS runs only
/// inside a network namespace this test makes (no test traffic may leave
/// the machine), holding nothing
/// but `lo`: the test re-executes itself there under `unshare --net`.
#[test]
fn pair_finds_the_signer_by_discovery_inside_a_private_network_namespace() {
    if !netns::enter(
        "pairing::pair_finds_the_signer_by_discovery_inside_a_private_network_namespace",
    ) {
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let (signer_home, agent_home) = (dir.path().join("signer"), dir.path().join("agent"));
    let mut signer = Proc::spawn(
        &signer_home,
        &[
            "signer",
            "--listen",
            "0.0.0.0:0",
            "--name",
            "phone",
            "--ui",
            "plain",
        ],
    );
    signer.expect("listening on", WAIT);
    // The plain UI's line command opens the window.
    signer.type_line("p");
    signer.expect("Accepting new devices", WAIT);
    let mut pair = Proc::spawn(&agent_home, &["pair", "--name", "laptop"]);
    pair.expect("Found signer \"phone\"", WAIT);
    let shown_by_pair = pair.expect("Pairing code: ", WAIT);
    let shown_by_signer = signer.expect("wants to pair, code", WAIT);
    assert_eq!(code_in(&shown_by_pair), code_in(&shown_by_signer));
    signer.type_line("a");
    pair.expect("Paired with phone", WAIT);
    assert!(pair.wait_exit(WAIT).success());
}

/// On a terminal the signer defaults to the full-screen sheet; pairing
/// through it works like the plain one.
#[test]
fn the_full_screen_sheet_is_the_default_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (signer_home, agent_home) = (dir.path().join("signer"), dir.path().join("agent"));
    let mut signer = Proc::spawn_in_pty(
        &signer_home,
        &["signer", "--listen", "127.0.0.1:0", "--name", "phone"],
    );
    let line = signer.expect("listening on", WAIT);
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    signer.expect("Waiting for requests", WAIT);

    // No window yet: refused, with no sheet.
    let mut refused = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "laptop"],
    );
    assert!(!refused.wait_exit(WAIT).success());
    refused.expect(CLOSED, WAIT);
    signer.expect("Refused a pairing request from", WAIT);
    assert!(!signer.transcript.contains("Pairing request"));

    // `p` opens one.
    signer.type_raw("p");
    signer.expect("Accepting new devices", WAIT);
    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "laptop"],
    );
    let shown_by_pair = pair.expect("Pairing code: ", WAIT);
    signer.expect("Pairing request", WAIT);
    // Keys count only once the sheet says they do.
    signer.expect("a accept", WAIT);
    assert!(
        signer.transcript.contains(&code_in(&shown_by_pair)[..3]),
        "code not on the sheet"
    );
    signer.type_raw("a");
    pair.expect("Paired with phone", WAIT);
    assert!(pair.wait_exit(WAIT).success());
}

/// A stranger at one address (127.0.0.2 here) who opens connections and
/// never says a word: the signer holds 8 handshakes from it; a 9th is taken
/// and the oldest closed at once; each is closed within the 3 s silent
/// limit, not setup's 10 s; meanwhile a device at another address pairs as
/// usual, so one host cannot lock the signer's devices out.
#[test]
fn one_address_holding_handshakes_open_cannot_crowd_out_a_device() {
    const PER_ADDRESS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let (signer_home, agent_home) = (dir.path().join("signer"), dir.path().join("agent"));
    let (mut signer, addr) = start_signer(&signer_home, &["--pair"]);
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let from_stranger = || {
        rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            socket.connect(addr).await.unwrap().into_std().unwrap()
        })
    };
    let closed = |s: &mut std::net::TcpStream| {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        match std::io::Read::read(s, &mut [0u8; 1]) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    };
    let mut held: Vec<_> = (0..PER_ADDRESS).map(|_| from_stranger()).collect();
    let started = std::time::Instant::now();
    let mut one_more = from_stranger();
    assert!(closed(&mut held[0]), "the oldest handshake was kept");
    // At once, not at the silent limit (3 s).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    one_more.set_nonblocking(true).unwrap();
    let waiting = std::io::Read::read(&mut one_more, &mut [0u8; 1]);
    assert!(
        matches!(&waiting, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the 9th handshake was not taken on: {waiting:?}"
    );
    // Each remaining one is watched for its close from now on.
    let watched: Vec<_> = held
        .drain(1..)
        .chain([one_more])
        .map(|mut s| std::thread::spawn(move || closed(&mut s).then(|| started.elapsed())))
        .collect();

    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr.to_string(), "--name", "laptop"],
    );
    signer.expect("wants to pair", WAIT);
    signer.type_line("a");
    pair.expect("Paired with phone", WAIT);
    assert!(pair.wait_exit(WAIT).success());
    // Silent, each was closed at the 3 s limit, not setup's 10 s.
    for watch in watched {
        let after = watch.join().unwrap().expect("a silent handshake was kept");
        assert!(
            after < Duration::from_secs(8),
            "a silent handshake held {after:?}"
        );
    }
}
