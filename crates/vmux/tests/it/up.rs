//! `vmux up` as a newcomer runs it: in a terminal, a passphrase for the demo
//! key, the export line, and a signature approved on the same terminal.

use crate::support::process;
use crate::support::sshd;
use crate::support::tmux;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::{Proc, VMUX};
use tmux::Tmux;
use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(20);

/// `vmux cert request` to the agent at `sock`, running: with no CA yet the
/// agent asks for no certificate on its own (no sheet at start).
fn cert_request(sock: &std::path::Path) -> std::process::Child {
    // Once the agent is connected: asked before, it would be unreachable.
    let deadline = Instant::now() + WAIT;
    loop {
        let status = Command::new(VMUX)
            .arg("status")
            .env("SSH_AUTH_SOCK", sock)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&status.stdout).contains("Connected to") {
            break;
        }
        assert!(Instant::now() < deadline, "the agent never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new(VMUX)
        .args(["cert", "request"])
        .env("SSH_AUTH_SOCK", sock)
        .env("VMUX_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
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

    // No CA yet, so nothing is asked unasked; `vmux cert request` asks for
    // the first certificate, and approving makes the CA, with a passphrase
    // chosen here.
    let mut asked = cert_request(std::path::Path::new(&sock));
    up.expect("Session certificate for", WAIT);
    up.type_line("a");
    up.expect("New passphrase for the CA key", WAIT);
    up.type_line("ca passphrase");
    up.expect("Again, to confirm", WAIT);
    up.type_line("ca passphrase");
    up.expect("Approved session certificate", WAIT);
    assert!(asked.wait().unwrap().success());

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

/// The full-screen `vmux up` in a real terminal: its panel shows the demo
/// key's `authorized_keys` line, the CA's `TrustedUserCAKeys` line and the
/// `export` line (and they are in the file it names); once the session
/// certificate is issued, the agent's log line about it is in the log file
/// the screen names, and no line of the screen holds log text.
#[test]
fn up_full_screen_shows_next_steps_and_no_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("vmux");
    let mut keyring = Keyring::load(&Home::at(home.clone()).unwrap()).unwrap();
    let demo = keyring
        .create_software("demo", KeyType::Ecdsa, &Zeroizing::new(PASS.to_owned()))
        .unwrap()
        .authorized_keys_line();
    let up = Tmux::start(
        dir.path(),
        &[VMUX, "up", "--ui", "tui"],
        &[("VMUX_HOME", home.to_str().unwrap()), ("VMUX_LOG", "info")],
        (220, 50),
    );
    let log = home.join("vmux.log");
    let screen = up.wait_for("Next steps", WAIT);
    assert!(screen.contains(&demo), "{screen}");
    assert!(screen.contains("export SSH_AUTH_SOCK="), "{screen}");
    assert!(screen.contains(&log.display().to_string()), "{screen}");

    // No sheet at start; `vmux cert request` asks for the first
    // certificate, approved here once the sheet takes keys (its hint shows).
    let mut asked = cert_request(&home.join("agent.sock"));
    up.wait_for("Session certificate for", WAIT);
    up.wait_for("a approve", WAIT);
    up.type_raw("a");
    // No CA yet: approving makes one, with a passphrase chosen here; each
    // prompt takes keys once its hint shows.
    up.wait_for_all(&["New passphrase for the CA key", "Enter submit"], WAIT);
    up.type_line("ca passphrase");
    up.wait_for_all(&["Again, to confirm", "Enter submit"], WAIT);
    up.type_line("ca passphrase");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Certificate valid until")
    {
        assert!(
            Instant::now() < deadline,
            "the agent never logged its certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(asked.wait().unwrap().success());
    let ca = Command::new(VMUX)
        .args(["ca", "show"])
        .env("VMUX_HOME", &home)
        .output()
        .unwrap();
    let ca_line = String::from_utf8_lossy(&ca.stdout).trim().to_owned();
    assert!(ca_line.starts_with("ssh-ed25519 "), "{ca_line}");
    let screen = up.wait_for(&ca_line, WAIT);
    assert!(screen.contains("TrustedUserCAKeys"), "{screen}");
    assert!(screen.contains(&demo), "{screen}");
    for line in screen.lines() {
        assert!(
            !line.contains("INFO"),
            "log text on screen: {line:?}\n{screen}"
        );
    }
    assert!(std::fs::read_to_string(&log).unwrap().contains("INFO"));
    let copied = std::fs::read_to_string(home.join("next-steps.txt")).unwrap();
    for line in [demo.as_str(), ca_line.as_str(), "export SSH_AUTH_SOCK="] {
        assert!(copied.contains(line), "{line} not in\n{copied}");
    }
    up.ctrl_c();
}

/// A host name longer than the link carries: the agent's name (`NAME (vmux
/// up)`) is cut for the wire, and the two halves still connect; the sheet
/// names the device as pinned, with no claim of another name.
#[test]
fn up_connects_with_a_host_name_longer_than_the_wire_allows() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("vmux");
    let long = "build-runner-".repeat(6);
    assert!(long.len() > vmux_proto::envelope::limits::MAX_DEVICE_NAME_LEN);
    // As `vmux up` would have stored the host name on first run.
    let device =
        vmux_link::device::Device::load_or_create(&Home::at(home.clone()).unwrap(), Some(&long))
            .unwrap();
    assert_eq!(device.name, long);
    let mut keyring = Keyring::load(&Home::at(home.clone()).unwrap()).unwrap();
    keyring
        .create_software("demo", KeyType::Ecdsa, &Zeroizing::new(PASS.to_owned()))
        .unwrap();
    let mut up = Proc::spawn_in_pty(&home, &["up", "--ui", "plain"]);
    // The agent reached the signer: the first certificate, asked for, is
    // on the sheet.
    let mut asked = cert_request(&home.join("agent.sock"));
    up.expect("Session certificate for", WAIT);
    let from = up.transcript.clone();
    assert!(
        from.contains(&format!("From Device  {}", &long[..20])),
        "{from}"
    );
    assert!(!from.contains("Claims name"), "{from}");
    up.type_line("d");
    up.expect("Denied session certificate", WAIT);
    // Denied: the request says so and ends.
    assert!(!asked.wait().unwrap().success());
    up.type_raw("\x03");
    up.expect("Stopped.", WAIT);
}

/// A fresh `vmux up` on an 80×24 terminal (a CA made beforehand with `vmux
/// ca init`): the Next steps panel is on screen, and each line to copy
/// (the demo key's `authorized_keys` line, the CA line, the `export` line)
/// sits on rows of its own, outside any frame, wrapped by the terminal
/// alone: copied from the screen it is one whole line. A sheet shares the
/// screen with the panel's summary. After a signature, `vmux log` with
/// the same `VMUX_HOME` finds up's agent's log.
#[test]
fn up_on_80_by_24_keeps_each_line_to_copy_whole_and_vmux_log_finds_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("vmux");
    let ca = vmux_keys::ca::Ca::init(
        &Home::at(home.clone()).unwrap(),
        &Zeroizing::new("ca passphrase".to_owned()),
    )
    .unwrap();
    let ca_line = ca.public_key().to_openssh().unwrap();
    let home_env = home.to_str().unwrap();
    let up = Tmux::start(
        dir.path(),
        &[VMUX, "up", "--ui", "tui"],
        &[("VMUX_HOME", home_env), ("VMUX_LOG", "info")],
        (80, 24),
    );
    up.wait_for("Passphrase for the demo key", WAIT);
    up.type_line(PASS);
    up.wait_for("Again, to confirm", WAIT);
    up.type_line(PASS);
    up.wait_for("Next steps", WAIT);
    let demo = Keyring::load(&Home::at(home.clone()).unwrap())
        .unwrap()
        .list()[0]
        .authorized_keys_line();
    let export = format!("export SSH_AUTH_SOCK={}", home.join("agent.sock").display());
    let deadline = Instant::now() + WAIT;
    let joined = loop {
        deny_certificate_sheet(&up);
        let joined = up.screen_joined();
        if joined.lines().any(|l| l == ca_line) {
            break joined;
        }
        assert!(Instant::now() < deadline, "no whole CA line:\n{joined}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in [demo.as_str(), ca_line.as_str(), export.as_str()] {
        assert!(
            joined.lines().any(|l| l == line),
            "{line:?} is not one whole row of the screen:\n{joined}"
        );
    }
    assert!(joined.contains("/etc/ssh/vmux-ca.pub"), "{joined}");
    assert!(
        demo.len() > 80,
        "the key line is longer than the screen is wide"
    );

    // A signature through up's agent, approved here.
    wait_listed(&home.join("agent.sock"));
    let pubkey = dir.path().join("demo.pub");
    std::fs::write(&pubkey, &demo).unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"hello").unwrap();
    let mut sign = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "file", "-f"])
        .arg(&pubkey)
        .arg(&msg)
        .env("SSH_AUTH_SOCK", home.join("agent.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let screen = loop {
        deny_certificate_sheet(&up);
        let screen = up.screen();
        if screen.contains("SSH Sign Request") && screen.contains("a approve") {
            break screen;
        }
        assert!(Instant::now() < deadline, "no sign sheet:\n{screen}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(screen.contains("Expires in"), "{screen}");
    assert!(
        screen.contains("[ Deny ]") || screen.contains("Deny"),
        "{screen}"
    );
    up.type_raw("a");
    up.wait_for_all(&["Passphrase for \"demo\"", "Enter submit"], WAIT);
    up.type_line(PASS);
    assert!(sign.wait().unwrap().success());
    up.wait_for("Approved remote sign request from", WAIT);

    let log = Command::new(VMUX)
        .arg("log")
        .env("VMUX_HOME", &home)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout).into_owned();
    assert!(!log.contains("No sign requests logged yet"), "{log}");
    assert!(log.contains("file signature"), "{log}");
    // `vmux status` with the same VMUX_HOME reaches the same agent.
    let status = Command::new(VMUX)
        .arg("status")
        .env("VMUX_HOME", &home)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(said.contains("demo"), "{said}");
    up.ctrl_c();
}

/// A certificate sheet at start (while the agent still asks for one at
/// connect) shares the screen with the panel's summary; denied once it
/// takes keys.
fn deny_certificate_sheet(up: &Tmux) {
    let screen = up.screen();
    if screen.contains("Session certificate request") && screen.contains("a approve") {
        assert!(
            screen.contains("Next steps: back after this request"),
            "{screen}"
        );
        up.type_raw("d");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// No sheet is shown in part, through the real binary: `vmux up` on a
/// 40×12 terminal gets a signature request from real `ssh-keygen`; the
/// screen shows the too-small notice and none of the sheet, and `a`,
/// Enter and `y` approve nothing (the client is still waiting). Enlarged,
/// the whole sheet shows with its buttons and is approved.
#[test]
fn up_on_40_by_12_shows_no_sheet_in_part_and_a_approves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("vmux");
    let demo = Keyring::load(&Home::at(home.clone()).unwrap())
        .unwrap()
        .create_software("demo", KeyType::Ecdsa, &Zeroizing::new(PASS.to_owned()))
        .unwrap()
        .authorized_keys_line();
    let up = Tmux::start(
        dir.path(),
        &[VMUX, "up", "--ui", "tui"],
        &[("VMUX_HOME", home.to_str().unwrap())],
        (40, 12),
    );
    up.wait_for("vmux signer", WAIT);
    wait_listed(&home.join("agent.sock"));
    let pubkey = dir.path().join("demo.pub");
    std::fs::write(&pubkey, &demo).unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"hello").unwrap();
    let mut sign = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "file", "-f"])
        .arg(&pubkey)
        .arg(&msg)
        .env("SSH_AUTH_SOCK", home.join("agent.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let flat = |screen: &str| {
        screen
            .replace('│', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let deadline = Instant::now() + WAIT;
    while !flat(&up.screen())
        .contains("terminal too small for this request: enlarge it or use --ui plain")
    {
        assert!(Instant::now() < deadline, "no notice:\n{}", up.screen());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Well past the quiet wait, each key on its own.
    for key in ["a", "y", "A"] {
        std::thread::sleep(Duration::from_millis(400));
        up.type_raw(key);
    }
    std::thread::sleep(Duration::from_millis(400));
    up.type_line("a");
    std::thread::sleep(Duration::from_millis(400));
    let screen = up.screen();
    assert!(flat(&screen).contains("terminal too small"), "{screen}");
    for part in ["From Device", "Approve", "Passphrase"] {
        assert!(!screen.contains(part), "{part:?} on screen:\n{screen}");
    }
    let answered = sign.try_wait().unwrap();
    assert!(
        answered.is_none(),
        "the client got an answer ({answered:?}) from a sheet never shown whole"
    );

    // Enlarged: the whole sheet, then Approve and the passphrase. (A
    // certificate sheet first, while the agent asks one at start: denied.)
    let resized = Command::new("tmux")
        .arg("-S")
        .arg(dir.path().join("tmux.sock"))
        .args(["resize-window", "-x", "100", "-y", "40"])
        .output()
        .unwrap();
    assert!(resized.status.success(), "{resized:?}");
    let deadline = Instant::now() + WAIT;
    loop {
        let screen = up.screen();
        if screen.contains("a approve") && screen.contains("Session certificate request") {
            up.type_raw("d");
            std::thread::sleep(Duration::from_millis(200));
        } else if screen.contains("a approve") && screen.contains("SSH Sign Request") {
            for part in ["From Device", "Purpose", "Key", "Approve", "Deny"] {
                assert!(screen.contains(part), "{part:?} missing:\n{screen}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "no whole sheet:\n{screen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    up.type_raw("a");
    up.wait_for_all(&["Passphrase for \"demo\"", "Enter submit"], WAIT);
    up.type_line(PASS);
    assert!(sign.wait().unwrap().success());
    up.ctrl_c();
}

/// Waits until the agent at `sock` lists a key: it has reached the signer.
fn wait_listed(sock: &std::path::Path) {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = Command::new("ssh-add")
            .arg("-L")
            .env("SSH_AUTH_SOCK", sock)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("ecdsa-sha2-nistp256 ") {
            return;
        }
        assert!(Instant::now() < deadline, "the agent never listed the key");
        std::thread::sleep(Duration::from_millis(100));
    }
}
