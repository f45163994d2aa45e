//! `vmux agent` driven by OpenSSH's own clients (`ssh-add`, `ssh-keygen -Y`),
//! forwarding to a real `vmux signer` whose person approves through a
//! pseudo-terminal.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::softhsm;
use crate::support::sshd;

use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clients::{openssh, text, wait_child};
use paired::{PASS, Paired, Setup, WAIT};
use process::{Proc, VMUX};
use softhsm::SoftHsm;
use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use vmux_proto::agent::{
    Extension, ExtensionResponse, Request, Response, SessionBind, SignRequest,
};
use zeroize::Zeroizing;

/// A signer paired with an agent home, and the agent running there.
struct Rig {
    // First, so that it is stopped before the signer and the homes go.
    agent: Option<Proc>,
    paired: Paired,
}

// The tests call the paired signer's helpers on the rig itself.
impl Deref for Rig {
    type Target = Paired;
    fn deref(&self) -> &Paired {
        &self.paired
    }
}

impl DerefMut for Rig {
    fn deref_mut(&mut self) -> &mut Paired {
        &mut self.paired
    }
}

impl Rig {
    /// One software identity, "work" (ecdsa), passphrase PASS. The session
    /// certificate the agent asks for on connecting is denied.
    fn start() -> Rig {
        Rig::with(Paired::setup(), false)
    }

    /// [`Rig::start`], the session certificate approved.
    fn start_with_certificate() -> Rig {
        Rig::with(Paired::setup(), true)
    }

    /// `setup` started, and an agent connected to its signer, the session
    /// certificate it asks for approved or denied.
    fn with(setup: Setup, approve_cert: bool) -> Rig {
        let mut rig = Rig {
            agent: None,
            paired: setup.start(),
        };
        rig.start_agent(&[]);
        rig.wait_status("Connected to phone");
        rig.wait_status("  SHA256:");
        // On connecting, the agent asks for a session certificate.
        if approve_cert {
            rig.approve_certificate();
            rig.wait_status("Certificate valid until");
        } else {
            rig.signer().expect("Session certificate for laptop", WAIT);
            rig.signer().type_line("d");
            rig.wait_status("Last certificate request refused: userDenied");
        }
        rig
    }

    /// True if the signer shows a new sheet within `within`.
    fn new_sheet(&mut self, within: Duration) -> bool {
        self.signer()
            .wait_any(&["SSH Sign Request", "Session certificate for"], within)
            .is_some()
    }

    /// `vmux agent` on its default socket, [`Paired::sock`].
    fn start_agent(&mut self, extra: &[&str]) -> &mut Proc {
        let mut args = vec!["agent", "--sign-timeout", "4"];
        args.extend_from_slice(extra);
        let mut agent = Proc::spawn(&self.device_home, &args);
        agent.expect("export SSH_AUTH_SOCK;", WAIT);
        self.agent.insert(agent)
    }
}

fn askpass(dir: &Path, name: &str, pass: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\necho '{pass}'\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn openssh_clients_list_sign_lock_and_are_refused_keys() {
    let mut rig = Rig::start();

    // ssh-add -l / -L show the signer's key, fingerprint as ssh-keygen computes it.
    let listed = text(&rig.ssh_add(&["-l"]));
    let expected = text(
        &Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&rig.pubkey)
            .output()
            .unwrap(),
    );
    let fp = expected.split_whitespace().nth(1).unwrap();
    assert!(
        listed.contains(fp) && listed.contains("work"),
        "{listed} vs {expected}"
    );
    let line = std::fs::read_to_string(&rig.pubkey).unwrap();
    let blob = line.split_whitespace().nth(1).unwrap();
    assert!(text(&rig.ssh_add(&["-L"])).contains(blob));

    // No private key ever goes in.
    let throwaway = rig.dir.path().join("throwaway");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&throwaway)
            .status()
            .unwrap()
            .success()
    );
    let out = rig.ssh_add(&[throwaway.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("agent refused operation"),
        "{}",
        text(&out)
    );
    assert!(!rig.ssh_add(&["-D"]).status.success());

    // A signature, approved in the signer's pty, that ssh-keygen verifies.
    let (mut child, file) = rig.start_sign("msg", b"signed through the agent\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    // A pending approval on one connection holds up no other.
    assert!(text(&rig.ssh_add(&["-l"])).contains(fp));
    rig.signer().type_line("a");
    rig.signer().expect("Passphrase for", WAIT);
    rig.signer().type_line(PASS);
    let (ok, err) = wait_child(&mut child, WAIT);
    assert!(ok, "{err}");
    assert!(rig.verifies(&file));
    let screen = rig.signer.as_ref().unwrap().transcript.clone();
    assert!(screen.contains("laptop"), "{screen}");

    // Denied: ssh-keygen fails.
    let (mut child, _) = rig.start_sign("msg", b"deny me\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("d");
    let (ok, _) = wait_child(&mut child, WAIT);
    assert!(!ok);
    let log = rig.request_log();
    // The forwarded requests only, not the certificate denied at start.
    let forwarded: String = log
        .lines()
        .filter(|l| l.contains("\"path\":\"forwarded\""))
        .collect();
    assert!(
        forwarded.contains("\"outcome\":\"approved\"")
            && forwarded.contains("\"outcome\":\"userDenied\""),
        "{log}"
    );
    assert!(
        log.contains("\"namespace\":\"file\"") && log.contains("\"path\":\"forwarded\""),
        "{log}"
    );
    let shown = text(&rig.vmux(&["log"]));
    assert!(
        shown.contains("approved")
            && shown.contains("userDenied")
            && shown.contains("file signature (namespace \"file\")"),
        "{shown}"
    );
    assert!(text(&rig.vmux(&["log", "--json"])).contains("\"requestID\""));

    // Status and refresh over the agent's own socket.
    let status = rig.wait_status("Connected to phone");
    assert!(
        status.contains("No session certificate") && status.contains(fp),
        "{status}"
    );
    let out = rig.vmux(&["refresh"]);
    assert!(
        out.status.success() && text(&out).contains("Refreshed: 1 key(s)"),
        "{}",
        text(&out)
    );

    // Lock and unlock as with OpenSSH's agent; a wrong passphrase fails.
    let good = askpass(rig.dir.path(), "good", "lockpass");
    let bad = askpass(rig.dir.path(), "bad", "nope");
    let with = |script: &Path, args: &[&str]| {
        let script = script.to_str().unwrap().to_owned();
        openssh(
            "ssh-add",
            &rig.sock(),
            args,
            &[
                ("SSH_ASKPASS", &script),
                ("SSH_ASKPASS_REQUIRE", "force"),
                ("DISPLAY", "x"),
            ],
        )
        .output()
        .unwrap()
    };
    assert!(with(&good, &["-x"]).status.success());
    assert!(text(&rig.ssh_add(&["-l"])).contains("The agent has no identities"));
    assert!(!with(&bad, &["-X"]).status.success());
    assert!(text(&rig.ssh_add(&["-l"])).contains("The agent has no identities"));
    assert!(with(&good, &["-X"]).status.success());
    assert!(text(&rig.ssh_add(&["-l"])).contains(fp));
}

#[test]
fn another_user_is_refused_and_we_are_still_served() {
    if !rustix_is_root() {
        eprintln!("skipped: needs root to run ssh-add as nobody");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent");
    let mut agent = Proc::spawn(&home, &["agent"]);
    agent.expect("export SSH_AUTH_SOCK;", WAIT);
    let sock = home.join("agent.sock");
    // Open the path up so that only the uid check stands in the way.
    for p in [dir.path(), home.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "ssh-add",
            "-l",
        ])
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        !said.contains("no identities") && !said.contains("Permission denied"),
        "{said}"
    );
    agent.expect("refused an agent connection from uid", WAIT);
    let ours = openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap();
    assert!(
        text(&ours).contains("The agent has no identities"),
        "{}",
        text(&ours)
    );
}

fn rustix_is_root() -> bool {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        == "0"
}

#[test]
fn offline_signer_cache_restart_and_corrupt_cache() {
    let mut rig = Rig::start();
    let fp = rig.wait_status("work  SHA256:");
    let fp = fp
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap()
        .to_owned();
    drop(rig.signer.take());
    rig.wait_status("Disconnected");
    assert!(text(&rig.ssh_add(&["-l"])).contains(&fp));

    // Signing fails within the bound (4 s) instead of hanging.
    let started = Instant::now();
    let (mut child, _) = rig.start_sign("msg", b"nobody will approve\n");
    let (ok, _) = wait_child(&mut child, WAIT);
    assert!(!ok);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        rig.request_log().contains("\"outcome\":\"unreachable\""),
        "{}",
        rig.request_log()
    );
    assert!(!rig.vmux(&["refresh"]).status.success());

    // Restarted with the signer still away: the cache lists the key.
    drop(rig.agent.take());
    rig.start_agent(&[]);
    assert!(text(&rig.ssh_add(&["-l"])).contains(&fp));
    assert!(rig.wait_status("Disconnected").contains("Keys (cached)"));

    // A corrupt cache is a warning and an empty list, not a crash.
    drop(rig.agent.take());
    std::fs::write(
        rig.device_home.join("keys-cache.json"),
        b"{\"version\": 1, \"keys\": [tru",
    )
    .unwrap();
    // The warning comes before the export line, on another stream.
    let mut agent = Proc::spawn(&rig.device_home, &["agent"]);
    agent.expect("ignoring the key cache", WAIT);
    rig.agent = Some(agent);
    assert!(text(&rig.ssh_add(&["-l"])).contains("The agent has no identities"));
}

/// One request/response exchange on a raw connection.
fn exchange(stream: &mut UnixStream, frame: &[u8]) -> Vec<u8> {
    stream.write_all(frame).unwrap();
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn ssh_string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

const FAILURE: &[u8] = &[5];
const NO_IDENTITIES: &[u8] = &[12, 0, 0, 0, 0];

#[test]
fn malformed_input_is_refused_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent");
    let mut agent = Proc::spawn(&home, &["agent"]);
    agent.expect("export SSH_AUTH_SOCK;", WAIT);
    let sock = home.join("agent.sock");
    let connect = || {
        let s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s
    };

    // A connection stuck mid-frame holds up nobody.
    let mut stuck = connect();
    stuck.write_all(&[0, 0]).unwrap();

    // 4 GiB announced: the connection is closed, nothing allocated.
    let mut huge = connect();
    huge.write_all(&[0xff, 0xff, 0xff, 0xff, 11]).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(huge.read(&mut buf).unwrap_or(0), 0);
    // Just over 256 KiB: closed too.
    let mut big = connect();
    big.write_all(&((256 * 1024 + 1) as u32).to_be_bytes())
        .unwrap();
    assert_eq!(big.read(&mut buf).unwrap_or(0), 0);

    let mut c = connect();
    // Unknown type: FAILURE, and the connection still works.
    assert_eq!(exchange(&mut c, &frame(&[200])), FAILURE);
    assert_eq!(exchange(&mut c, &frame(&[11])), NO_IDENTITIES);
    // Truncated string in a sign request.
    assert_eq!(exchange(&mut c, &frame(&[13, 0, 0, 0, 100, 1, 2])), FAILURE);
    // Sign request for a key we do not offer.
    let mut sign = vec![13];
    sign.extend(ssh_string(b"not a key"));
    sign.extend(ssh_string(b"data"));
    sign.extend([0, 0, 0, 0]);
    assert_eq!(exchange(&mut c, &frame(&sign)), FAILURE);
    // Extension bodies: unknown name (plain failure), then on a connection
    // of their own (each leaves it signing nothing): broken session-bind,
    // unverifiable session-bind, both SSH_AGENT_EXTENSION_FAILURE.
    for bind in [
        [0, 0, 0, 9, 1].to_vec(),
        [
            ssh_string(b"host key"),
            ssh_string(b"session id"),
            ssh_string(b"signature"),
            vec![0],
        ]
        .concat(),
    ] {
        let mut b = connect();
        let mut ext = vec![27];
        ext.extend(ssh_string(b"session-bind@openssh.com"));
        ext.extend(bind);
        assert_eq!(exchange(&mut b, &frame(&ext)), [28]);
        assert_eq!(exchange(&mut b, &frame(&[11])), NO_IDENTITIES);
    }
    let mut ext = vec![27];
    ext.extend(ssh_string(b"frobnicate@example.com"));
    assert_eq!(exchange(&mut c, &frame(&ext)), FAILURE);
    assert_eq!(exchange(&mut c, &frame(&[27, 0, 0, 0])), FAILURE);
    // Lock with an empty passphrase is refused, as in OpenSSH.
    let mut lock = vec![22];
    lock.extend(ssh_string(b""));
    assert_eq!(exchange(&mut c, &frame(&lock)), FAILURE);
    // query, in OpenSSH's format.
    let mut query = vec![27];
    query.extend(ssh_string(b"query"));
    let reply = exchange(&mut c, &frame(&query));
    assert_eq!(reply[0], 29);
    assert!(reply.windows(24).any(|w| w == b"session-bind@openssh.com"));
    assert_eq!(exchange(&mut c, &frame(&[11])), NO_IDENTITIES);

    // And other clients are still served, the stuck one included after it finishes.
    assert!(
        text(&openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap()).contains("no identities")
    );
    stuck.write_all(&[0, 1, 11]).unwrap();
    stuck.set_read_timeout(Some(WAIT)).unwrap();
    let mut reply = [0u8; 9];
    stuck.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[4..], NO_IDENTITIES);
}

#[test]
fn socket_is_private_never_clobbered_and_removed_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent");
    let sock = dir.path().join("run/sub/vmux.sock");
    let sock_arg = sock.to_str().unwrap();
    let mut agent = Proc::spawn(&home, &["agent", "--socket", sock_arg]);
    let line = agent.expect("echo Agent pid", WAIT);
    let pid: u32 = line
        .trim()
        .trim_end_matches(';')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        agent
            .transcript
            .contains(&format!("SSH_AUTH_SOCK={sock_arg}; export SSH_AUTH_SOCK;"))
    );
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(sock.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // A second agent on a live socket refuses and leaves it alone.
    let mut second = Proc::spawn(&home, &["agent", "--socket", sock_arg]);
    assert!(!second.wait_exit(WAIT).success());
    second.expect("already listening", WAIT);
    assert!(
        text(&openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap()).contains("no identities")
    );

    // SIGTERM removes the socket.
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(agent.wait_exit(WAIT).success());
    assert!(!sock.exists());

    // A stale socket (its agent gone) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let mut third = Proc::spawn(&home, &["agent", "--socket", sock_arg]);
    third.expect("export SSH_AUTH_SOCK;", WAIT);
    assert!(
        text(&openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap()).contains("no identities")
    );

    // A directory others can write to is refused.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut fourth = Proc::spawn(
        &home,
        &["agent", "--socket", open.join("s").to_str().unwrap()],
    );
    assert!(!fourth.wait_exit(WAIT).success());
    fourth.expect("other users can write to it", WAIT);
}

#[test]
fn ssh_login_is_forwarded_with_the_verified_session_binding() {
    let mut rig = Rig::start();
    let line = std::fs::read_to_string(&rig.pubkey).unwrap();
    let server = sshd::Sshd::start(&rig.dir.path().join("sshd"), &line, None);
    let host_fp = text(
        &Command::new("ssh-keygen")
            .arg("-lf")
            .arg(server.dir.join("host_ed25519.pub"))
            .output()
            .unwrap(),
    );
    let host_fp = host_fp.split_whitespace().nth(1).unwrap().to_owned();
    let port = server.port;
    let sock = rig.sock();
    let login = std::thread::spawn(move || server.ssh(&sock, &[], "echo logged-in"));
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("Passphrase for", WAIT);
    rig.signer().type_line(PASS);
    let out = login.join().unwrap();
    assert!(text(&out).contains("logged-in"), "{}", text(&out));
    // ssh bound the connection to the server's host key, which we verified;
    // the login's user and host (the name ssh was given, as no plain
    // known_hosts line names it) reached the signer as claims.
    let log = rig.request_log();
    assert!(log.contains("\"purpose\":\"sshUserauth\""), "{log}");
    assert!(
        log.contains(&format!("\"user\":\"{}\"", sshd::whoami())),
        "{log}"
    );
    assert!(
        log.contains(&format!("\"host\":\"[127.0.0.1]:{port}\"")),
        "{log}"
    );
    assert!(log.contains("\"contextQuality\":\"claimed\""), "{log}");
    assert!(
        rig.signer
            .as_ref()
            .unwrap()
            .transcript
            .contains(&host_fp[..20])
    );
}

/// Every kind of identity the signer holds logs in to a real sshd through
/// the agent: ecdsa-p256, ed25519, RSA with rsa-sha2-256 and rsa-sha2-512,
/// and a P-256 key on a SoftHSM2 token.
#[test]
fn every_key_type_logs_in_to_sshd() {
    let softhsm = SoftHsm::find();

    // And a P-256 key on a new SoftHSM2 token, where there is SoftHSM2.
    let token = |signer_home: &Path| {
        let Some(hsm) = &softhsm else { return };
        hsm.init_token("vmux-login", "1234");
        let made = Command::new(VMUX)
            .args([
                "key",
                "new",
                "tok",
                "--store",
                "pkcs11",
                "--token",
                "vmux-login",
                "--module",
                hsm.module(),
            ])
            .env("VMUX_HOME", signer_home)
            .env("VMUX_PASSPHRASE", "1234")
            .envs(hsm.env())
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", text(&made));
    };
    let mut setup = Paired::setup().identities(&[
        ("ec", KeyType::Ecdsa),
        ("ed", KeyType::Ed25519),
        ("rsa", KeyType::Rsa),
    ]);
    if let Some(hsm) = &softhsm {
        setup = setup.signer_env("SOFTHSM2_CONF", hsm.conf());
    }
    let setup = setup.more_identities(token);
    let mut rig = Rig::with(setup, false);
    let lines = std::fs::read_to_string(&rig.pubkey).unwrap();
    let line_of = |i: usize| format!("{}\n", lines.lines().nth(i).unwrap());
    let server = std::sync::Arc::new(sshd::Sshd::start(&rig.dir.path().join("sshd"), "", None));

    let mut cases = vec![
        ("ec", 0, PASS, None),
        ("ed", 1, PASS, None),
        ("rsa", 2, PASS, Some("rsa-sha2-256")),
        ("rsa", 2, PASS, Some("rsa-sha2-512")),
    ];
    if softhsm.is_some() {
        cases.push(("tok", 3, "1234", None));
    }
    for (name, index, secret, algorithm) in cases {
        // Only the key under test is authorized; sshd rereads the file.
        std::fs::write(server.dir.join("authorized_keys"), line_of(index)).unwrap();
        let sock = rig.sock();
        let srv = std::sync::Arc::clone(&server);
        let option = algorithm.map(|a| format!("PubkeyAcceptedAlgorithms={a}"));
        let login = std::thread::spawn(move || {
            let extra: Vec<&str> = option.iter().flat_map(|o| ["-o", o.as_str()]).collect();
            srv.ssh(&sock, &extra, "echo logged-in")
        });
        rig.signer().expect("SSH Sign Request", WAIT);
        rig.signer().type_line("a");
        rig.signer().expect(&format!("for \"{name}\": "), WAIT);
        rig.signer().type_line(secret);
        let out = login.join().unwrap();
        assert!(
            text(&out).contains("logged-in"),
            "{name} {algorithm:?}: {}\n{}",
            text(&out),
            server.log()
        );
    }
}

/// The session certificate: listed by `ssh-add -L`, shown by `vmux status`,
/// and good for ten logins to a server that trusts the signer's CA (and has
/// no `authorized_keys` entry) with no sheet on the signer; `vmux cert
/// request` renews it after a new approval.
#[test]
fn session_certificate_logs_in_without_sheets_and_renews_on_request() {
    let mut rig = Rig::start_with_certificate();
    let listed = text(&rig.ssh_add(&["-L"]));
    let cert_line = listed
        .lines()
        .find(|l| l.contains("-cert-v01@openssh.com"))
        .unwrap_or_else(|| panic!("no certificate in:\n{listed}"));
    assert!(
        cert_line.starts_with("ecdsa-sha2-nistp256-cert-v01@openssh.com ")
            && cert_line.ends_with(" vmux-session-cert"),
        "{cert_line}"
    );
    let key_line = std::fs::read_to_string(&rig.pubkey).unwrap();
    assert!(listed.contains(key_line.split_whitespace().nth(1).unwrap()));
    let status = rig.wait_status("Certificate valid until");
    let valid_until = status
        .lines()
        .find(|l| l.starts_with("Certificate valid until "))
        .unwrap()
        .to_owned();
    assert!(valid_until.ends_with(" UTC"), "{valid_until}");

    let ca = Command::new(VMUX)
        .args(["ca", "show"])
        .env("VMUX_HOME", &rig.signer_home)
        .output()
        .unwrap();
    assert!(ca.status.success(), "{}", text(&ca));
    let ca_line = String::from_utf8(ca.stdout).unwrap();
    let server = sshd::Sshd::start(&rig.dir.path().join("sshd"), "", Some(&ca_line));
    for i in 0..10 {
        let out = server.ssh(&rig.sock(), &[], "echo logged-in");
        assert!(
            text(&out).contains("logged-in"),
            "login {i}: {}\n{}",
            text(&out),
            server.log()
        );
    }
    assert!(
        !rig.new_sheet(Duration::from_millis(500)),
        "{}",
        rig.signer.as_ref().unwrap().transcript
    );
    let log = rig.request_log();
    assert!(
        log.matches("\"path\":\"session-cert\"").count() >= 10
            && !log.contains("\"path\":\"forwarded\""),
        "{log}"
    );

    // Renew now: a new sheet, and once approved a later validity.
    std::thread::sleep(Duration::from_millis(1100));
    let sock = rig.sock();
    let home = rig.device_home.clone();
    let request = std::thread::spawn(move || {
        Command::new(VMUX)
            .args(["cert", "request"])
            .env("VMUX_HOME", home)
            .env("SSH_AUTH_SOCK", sock)
            .env("VMUX_LOG", "warn")
            .output()
            .unwrap()
    });
    rig.approve_certificate();
    let out = request.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let renewed = String::from_utf8(out.stdout).unwrap();
    let renewed = renewed
        .lines()
        .find(|l| l.starts_with("Certificate valid until "))
        .unwrap_or_else(|| panic!("{renewed}"));
    assert_ne!(renewed, valid_until);
    assert!(rig.wait_status(renewed).contains(renewed));
    let out = server.ssh(&rig.sock(), &[], "echo logged-in");
    assert!(text(&out).contains("logged-in"), "{}", text(&out));
}

/// A denied certificate: status says so, only the signer's key is listed,
/// and the agent does not ask again on its own.
#[test]
fn denied_certificate_is_not_offered_nor_asked_again() {
    let mut rig = Rig::start();
    let status = rig.wait_status("Connected to phone");
    assert!(status.contains("No session certificate"), "{status}");
    let listed = text(&rig.ssh_add(&["-L"]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(!listed.contains("cert-v01"), "{listed}");
    assert!(!rig.new_sheet(Duration::from_secs(2)));
    assert!(
        rig.request_log().contains("\"path\":\"certificate\"")
            && rig.request_log().contains("\"outcome\":\"userDenied\""),
        "{}",
        rig.request_log()
    );

    // Asked by hand, and denied again: the command says so.
    let sock = rig.sock();
    let home = rig.device_home.clone();
    let request = std::thread::spawn(move || {
        Command::new(VMUX)
            .args(["cert", "request"])
            .env("VMUX_HOME", home)
            .env("SSH_AUTH_SOCK", sock)
            .output()
            .unwrap()
    });
    rig.signer().expect("Session certificate for laptop", WAIT);
    rig.signer().type_line("d");
    let out = request.join().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("userDenied"), "{}", text(&out));
    assert!(
        rig.wait_status("Connected to phone")
            .contains("No session certificate")
    );
}

#[test]
fn a_signer_killed_mid_request_fails_that_client_and_others_are_served() {
    let mut rig = Rig::start();
    let (mut child, _) = rig.start_sign("msg", b"pending when the signer dies\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    // Another connection is served while the sign waits on the person.
    assert!(text(&rig.ssh_add(&["-l"])).contains("SHA256:"));
    let killed = Instant::now();
    drop(rig.signer.take());
    let (ok, err) = wait_child(&mut child, WAIT);
    assert!(!ok, "the sign succeeded without a signer");
    // At once, not at the 4 s sign timeout: the session ending fails its waiters.
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "FAILURE took {:?}: {err}",
        killed.elapsed()
    );
    assert!(
        text(&rig.ssh_add(&["-l"])).contains("SHA256:"),
        "the agent stopped serving"
    );
    assert!(
        rig.request_log().contains("\"path\":\"forwarded\""),
        "{}",
        rig.request_log()
    );
}

#[test]
fn refresh_replaces_the_key_list_and_the_cache() {
    let rig = Rig::start();
    assert_eq!(text(&rig.ssh_add(&["-l"])).matches("SHA256:").count(), 1);
    // A second identity appears on the signer, and the first is disabled.
    let mut keyring = Keyring::load(&Home::at(rig.dir.path().join("signer")).unwrap()).unwrap();
    let added = keyring
        .create_software("second", KeyType::Ed25519, &Zeroizing::new(PASS.to_owned()))
        .unwrap()
        .fingerprint
        .clone();
    keyring.set_enabled("work", false).unwrap();
    assert!(rig.vmux(&["refresh"]).status.success());
    let listed = text(&rig.ssh_add(&["-l"]));
    assert!(
        listed.contains(&added) && listed.matches("SHA256:").count() == 1,
        "{listed}"
    );
    let cache = std::fs::read_to_string(rig.device_home.join("keys-cache.json")).unwrap();
    assert!(
        cache.contains("second") && !cache.contains("\"work\""),
        "{cache}"
    );
}

/// The CA line `vmux ca show` prints on the signer.
fn ca_line(rig: &Rig) -> String {
    let ca = Command::new(VMUX)
        .args(["ca", "show"])
        .env("VMUX_HOME", &rig.signer_home)
        .output()
        .unwrap();
    assert!(ca.status.success(), "{}", text(&ca));
    String::from_utf8(ca.stdout).unwrap()
}

/// `ssh -A` to a server that takes the session certificate, running
/// `remote` there; started now, its output when joined.
fn ssh_a(server: &sshd::Sshd, sock: &Path, remote: &str) -> std::thread::JoinHandle<String> {
    let mut ssh = server.command(sock, &["-A"], remote);
    std::thread::spawn(move || text(&ssh.output().unwrap()))
}

/// Over real `ssh -A` (OpenSSH binds each forwarded connection with
/// `session-bind@openssh.com`, is_forwarding set): the remote host lists
/// the signer's key but not the session certificate, which logged the first
/// hop in; `vmux status` and `vmux cert request` there are refused; the
/// second hop raises a sheet whose path goes through the forwarding host,
/// and fails when denied.
#[test]
fn forwarded_agent_gets_no_certificate_no_control_and_each_hop_a_sheet() {
    let mut rig = Rig::start_with_certificate();
    let key_line = std::fs::read_to_string(&rig.pubkey).unwrap();
    let server = sshd::Sshd::start(
        &rig.dir.path().join("sshd"),
        &key_line,
        Some(&ca_line(&rig)),
    );
    let local = text(&rig.ssh_add(&["-L"]));
    assert!(local.contains("-cert-v01@openssh.com"), "{local}");

    // On the remote host: what it lists, and what control it gets.
    let remote = format!(
        "ssh-add -L; echo '== status'; {VMUX} status; echo '== cert'; {VMUX} cert request; echo '== end'"
    );
    let out = ssh_a(&server, &rig.sock(), &remote).join().unwrap();
    let (listed, rest) = out
        .split_once("== status")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        listed.contains(key_line.split_whitespace().nth(1).unwrap())
            && !listed.contains("cert-v01"),
        "the forwarded agent listed:\n{listed}"
    );
    assert!(
        rest.matches("reached through `ssh -A`").count() == 2 && rest.contains("== end"),
        "{out}"
    );
    // The first hop logged in with the certificate: no sheet, and no
    // certificate sheet for the refused `vmux cert request`.
    assert!(!rig.new_sheet(Duration::from_millis(500)));

    // The second hop, approved: the sheet says how the request came.
    let hop = format!(
        "ssh {} {}@127.0.0.1 echo second-hop-ok",
        server.client_options().join(" "),
        sshd::whoami()
    );
    let login = ssh_a(&server, &rig.sock(), &hop);
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().expect("Purpose      SSH login", WAIT);
    // The path through the forwarding host, whose binding the signer
    // checked, named as ssh -A was told to reach it: a claim.
    let through = format!(
        "(forwarded; \"[127.0.0.1]:{}\" claimed by laptop) → SHA256:",
        server.port
    );
    rig.signer().expect(&through, WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("Passphrase for", WAIT);
    rig.signer().type_line(PASS);
    let out = login.join().unwrap();
    assert!(out.contains("second-hop-ok"), "{out}\n{}", server.log());

    // Denied: that hop fails.
    let login = ssh_a(&server, &rig.sock(), &hop);
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().expect(&through, WAIT);
    rig.signer().type_line("d");
    let out = login.join().unwrap();
    assert!(
        !out.contains("second-hop-ok") && out.contains("Permission denied"),
        "{out}"
    );

    let log = rig.request_log();
    let forwarded: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"path\":\"forwarded\""))
        .collect();
    assert_eq!(forwarded.len(), 2, "{log}");
    assert!(
        forwarded.iter().all(|l| l.contains("\"forwarded\":true"))
            && forwarded[0].contains("\"outcome\":\"approved\"")
            && forwarded[1].contains("\"outcome\":\"userDenied\""),
        "{log}"
    );
    // Every hop to the server by the certificate was a local connection.
    assert!(
        log.lines()
            .filter(|l| l.contains("\"path\":\"session-cert\""))
            .all(|l| !l.contains("\"forwarded\":true")),
        "{log}"
    );
    drop(server);
}

fn request_frame(request: Request) -> Vec<u8> {
    request.to_frame().unwrap()
}

/// The binding games a remote host's root can play on the raw socket: a
/// forwarded bind it cannot prove (not its own host key, say) still marks
/// the connection forwarded, and then neither the certificate, asked for by
/// its blob, nor control, lock or unlock is had there. Local connections
/// are untouched meanwhile.
#[test]
fn a_forwarded_connection_is_refused_certificate_control_and_lock() {
    let mut rig = Rig::start_with_certificate();
    let mut c = UnixStream::connect(rig.sock()).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let Response::IdentitiesAnswer(ids) =
        Response::decode(&exchange(&mut c, &frame(&[11]))).unwrap()
    else {
        panic!("no list");
    };
    let cert_blob = ids
        .iter()
        .find(|i| i.comment == "vmux-session-cert")
        .map(|i| i.key_blob.clone())
        .unwrap_or_else(|| panic!("{ids:?}"));

    let mut c = UnixStream::connect(rig.sock()).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let call = |c: &mut UnixStream, request: Request| {
        Response::decode(&exchange(c, &request_frame(request))).unwrap()
    };
    // A real forwarding bind, as ssh -A sends it: a bind that failed would
    // leave the connection signing nothing at all.
    let host = ssh_key::PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
        ssh_key::Algorithm::Ed25519,
    )
    .unwrap();
    let host_bind = |sid: &[u8], is_forwarding: bool| {
        let sig: ssh_key::Signature = signature::Signer::try_sign(&host, sid).unwrap();
        Request::Extension(Extension::SessionBind(SessionBind {
            host_key: host.public_key().to_bytes().unwrap(),
            session_id: sid.to_vec(),
            signature: Vec::<u8>::try_from(sig).unwrap(),
            is_forwarding,
        }))
    };
    assert_eq!(
        call(&mut c, host_bind(b"any session", true)),
        Response::Success
    );
    let Response::IdentitiesAnswer(ids) = call(&mut c, Request::RequestIdentities) else {
        panic!("no list");
    };
    assert!(
        ids.len() == 1 && ids[0].comment == "work",
        "forwarded list: {ids:?}"
    );
    let sign = Request::SignRequest(SignRequest {
        key_blob: cert_blob,
        data: b"sign me unasked".to_vec(),
        flags: Default::default(),
    });
    assert_eq!(call(&mut c, sign), Response::Failure);
    for name in ["status@vmux", "refresh@vmux", "cert-request@vmux"] {
        let ext = Request::Extension(Extension::Other {
            name: name.to_owned(),
            contents: Vec::new(),
        });
        assert_eq!(call(&mut c, ext), Response::Failure, "{name}");
    }
    let Response::ExtensionResponse(ExtensionResponse::Query { extensions }) =
        call(&mut c, Request::Extension(Extension::Query))
    else {
        panic!("no query answer");
    };
    assert!(
        extensions.iter().all(|e| !e.ends_with("@vmux")),
        "{extensions:?}"
    );
    let lock = Request::Lock {
        passphrase: b"remote".as_slice().into(),
    };
    assert_eq!(call(&mut c, lock), Response::Failure);
    // A later bind cannot make it local again.
    assert_eq!(
        call(&mut c, host_bind(b"another", false)),
        Response::Success
    );
    let Response::IdentitiesAnswer(ids) = call(&mut c, Request::RequestIdentities) else {
        panic!("no list");
    };
    assert_eq!(ids.len(), 1);

    // None of it reached the signer or changed the agent; the attempt on
    // the certificate is logged.
    assert!(!rig.new_sheet(Duration::from_millis(300)));
    let status = rig.wait_status("Certificate valid until");
    assert!(!status.contains("locked"), "{status}");
    assert!(text(&rig.ssh_add(&["-L"])).contains("-cert-v01@openssh.com"));
    let log = rig.request_log();
    assert!(
        log.lines().any(|l| l.contains("\"path\":\"session-cert\"")
            && l.contains("\"outcome\":\"refusedForwarded\"")
            && l.contains("\"forwarded\":true")),
        "{log}"
    );
    assert!(text(&rig.vmux(&["log"])).contains("refusedForwarded"));
}

/// `ssh-add -x` with askpass saying `pass`.
fn ssh_add_askpass(rig: &Rig, name: &str, pass: &str, args: &[&str]) -> std::process::Output {
    let script = askpass(rig.dir.path(), name, pass);
    let script = script.to_str().unwrap();
    openssh(
        "ssh-add",
        &rig.sock(),
        args,
        &[
            ("SSH_ASKPASS", script),
            ("SSH_ASKPASS_REQUIRE", "force"),
            ("DISPLAY", "x"),
        ],
    )
    .output()
    .unwrap()
}

/// A locked agent asks the signer for nothing: `vmux cert request` says
/// it is locked and raises no sheet, and the raw extension is refused.
/// Unlocked, the same command reaches the signer.
#[test]
fn a_locked_agent_refuses_certificate_requests() {
    let mut rig = Rig::start();
    assert!(
        ssh_add_askpass(&rig, "lock", "lockpass", &["-x"])
            .status
            .success()
    );
    let out = rig.vmux(&["cert", "request"]);
    assert!(
        !out.status.success() && text(&out).contains("the agent is locked; unlock it (ssh-add -X)"),
        "{}",
        text(&out)
    );
    let mut c = UnixStream::connect(rig.sock()).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let ext = request_frame(Request::Extension(Extension::Other {
        name: "cert-request@vmux".to_owned(),
        contents: Vec::new(),
    }));
    // Supported, and failed: SSH_AGENT_EXTENSION_FAILURE.
    assert_eq!(exchange(&mut c, &ext), [28]);
    assert!(!rig.new_sheet(Duration::from_millis(500)));

    assert!(
        ssh_add_askpass(&rig, "unlock", "lockpass", &["-X"])
            .status
            .success()
    );
    let sock = rig.sock();
    let home = rig.device_home.clone();
    let request = std::thread::spawn(move || {
        Command::new(VMUX)
            .args(["cert", "request"])
            .env("VMUX_HOME", home)
            .env("SSH_AUTH_SOCK", sock)
            .output()
            .unwrap()
    });
    rig.signer().expect("Session certificate for laptop", WAIT);
    rig.signer().type_line("d");
    let out = request.join().unwrap();
    assert!(text(&out).contains("userDenied"), "{}", text(&out));
}
