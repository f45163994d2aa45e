//! OpenSSH's own agent regress cases (regress/agent.sh, agent-restrict.sh,
//! agent-getpeereid.sh, agent-timeout.sh in openssh-portable), ported in
//! spirit to the real `vmux agent`: each test names the script it follows.
//! Where vmux differs by design (it holds no private key, so adding one is
//! refused) the test says what it checks instead.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use signature::Signer;
use ssh_key::{Algorithm, PrivateKey};
use vmux_proto::agent::{Extension, Request, Response, SessionBind, SignRequest};

use crate::support::clients::{openssh, text};
use crate::support::paired::{PASS, Paired, WAIT};
use crate::support::process::{Proc, VMUX};
use crate::support::sheet;
use crate::support::sshd::{Sshd, whoami};

/// An agent with no signer paired: what OpenSSH's scripts start with.
struct Bare {
    agent: Proc,
    sock: std::path::PathBuf,
    dir: tempfile::TempDir,
}

fn bare() -> Bare {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent");
    let mut agent = Proc::spawn(&home, &["agent"]);
    agent.expect("export SSH_AUTH_SOCK;", WAIT);
    let sock = home.join("agent.sock");
    Bare { agent, sock, dir }
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// One request, one reply; `None` when the agent closed instead.
fn call(s: &mut UnixStream, request: &Request) -> Option<Response> {
    s.write_all(&request.to_frame().unwrap()).unwrap();
    read_reply(s)
}

fn read_reply(s: &mut UnixStream) -> Option<Response> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    s.read_exact(&mut body).ok()?;
    Some(Response::decode(&body).unwrap())
}

fn host_key() -> PrivateKey {
    PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
        Algorithm::Ed25519,
    )
    .unwrap()
}

/// `session-bind@openssh.com` of `host` over `sid`, the signature made
/// over `signed` (a mismatch when they differ).
fn bind(host: &PrivateKey, sid: &[u8], signed: &[u8], forwarding: bool) -> Request {
    let sig: ssh_key::Signature = host.try_sign(signed).unwrap();
    Request::Extension(Extension::SessionBind(SessionBind {
        host_key: host.public_key().to_bytes().unwrap(),
        session_id: sid.to_vec(),
        signature: Vec::<u8>::try_from(sig).unwrap(),
        is_forwarding: forwarding,
    }))
}

fn status(sock: &Path, home: &Path) -> String {
    let out = Command::new(VMUX)
        .arg("status")
        .env("VMUX_HOME", home)
        .env("SSH_AUTH_SOCK", sock)
        .env("VMUX_LOG", "warn")
        .output()
        .unwrap();
    text(&out)
}

/// agent.sh: `ssh-add -l` exits 2 when no agent answers and 1 when the
/// agent holds no identities; after SIGTERM the socket is gone, 2 again.
#[test]
fn agent_sh_ssh_add_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-agent.sock");
    let out = openssh("ssh-add", &nowhere, &["-l"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let mut bare = bare();
    for args in [["-l"], ["-L"]] {
        let out = openssh("ssh-add", &bare.sock, &args, &[]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("The agent has no identities"));
    }
    rustix_kill(bare.agent.pid(), "TERM");
    bare.agent.wait_exit(WAIT);
    let out = openssh("ssh-add", &bare.sock, &["-l"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

fn rustix_kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// agent.sh adds, removes and loads keys; vmux holds no private key, so
/// each is refused (`ssh-add` exits 1) and the agent still holds nothing.
#[test]
fn agent_sh_adding_removing_and_smartcards_are_refused() {
    let bare = bare();
    let key = bare.dir.path().join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let key = key.to_str().unwrap();
    for args in [
        vec![key],
        vec!["-t", "60", key],
        vec!["-c", key],
        vec!["-d", key],
        vec!["-D"],
        vec!["-s", "/usr/lib/nonexistent-pkcs11.so"],
        vec!["-e", "/usr/lib/nonexistent-pkcs11.so"],
    ] {
        let out = openssh("ssh-add", &bare.sock, &args, &[]).output().unwrap();
        assert!(!out.status.success(), "ssh-add {args:?}: {}", text(&out));
    }
    let out = openssh("ssh-add", &bare.sock, &["-l"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// agent-getpeereid.sh: a client of another uid (`nobody`, with the
/// socket opened up so that only the agent's own check stands in the way)
/// is refused: `ssh-add -l` gets no answer, and we are still served.
#[test]
fn agent_getpeereid_sh_another_uid_is_refused() {
    let mut bare = bare();
    for p in [bare.dir.path(), bare.sock.parent().unwrap()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&bare.sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args(["ssh-add", "-l"])
        .env("SSH_AUTH_SOCK", &bare.sock)
        .output()
        .unwrap();
    // OpenSSH's script wants exit 2 or more; which code ssh-add gives for a
    // connection the agent closes at once depends on when it sees the close
    // (2 if connecting fails, 1 if the request does). What must hold: no
    // answer at all, not even "no identities".
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(!said.contains("has no identities"), "{said}");
    bare.agent
        .expect("refused an agent connection from uid 65534", WAIT);
    let ours = openssh("ssh-add", &bare.sock, &["-l"], &[])
        .output()
        .unwrap();
    assert_eq!(ours.status.code(), Some(1), "{}", text(&ours));
}

/// agent-restrict.sh binds connections by hand: 16 sessions are
/// recorded, the 17th is refused with SSH_AGENT_EXTENSION_FAILURE; a
/// session id over 128 bytes, a signature over another session id
/// (session-id mismatch) and one session id bound to a second host key
/// (host-key mismatch) are refused too. The same session bound again is
/// fine. Refused binds still mark a connection forwarded.
#[test]
fn agent_restrict_sh_bind_limits_and_mismatches() {
    let bare = bare();
    let (a, b) = (host_key(), host_key());
    let mut c = connect(&bare.sock);
    for i in 0..16 {
        let sid = format!("session {i}");
        let bound = call(&mut c, &bind(&a, sid.as_bytes(), sid.as_bytes(), true));
        assert_eq!(bound, Some(Response::Success), "bind {i}");
    }
    assert_eq!(
        call(&mut c, &bind(&a, b"session 3", b"session 3", true)),
        Some(Response::Success)
    );
    assert_eq!(
        call(&mut c, &bind(&a, b"session 16", b"session 16", true)),
        Some(Response::ExtensionFailure)
    );
    let cases = [
        ("long session id", bind(&a, &[7; 129], &[7; 129], false)),
        ("session id mismatch", bind(&a, b"mine", b"another", false)),
        (
            "host key mismatch",
            bind(&b, b"session 0", b"session 0", true),
        ),
    ];
    for (what, request) in cases {
        let mut c = connect(&bare.sock);
        if what == "host key mismatch" {
            let first = bind(&a, b"session 0", b"session 0", true);
            assert_eq!(call(&mut c, &first), Some(Response::Success));
        }
        assert_eq!(
            call(&mut c, &request),
            Some(Response::ExtensionFailure),
            "{what}"
        );
        // The connection now lists nothing and signs nothing.
        assert_eq!(
            call(&mut c, &Request::RequestIdentities),
            Some(Response::IdentitiesAnswer(Vec::new())),
            "{what}"
        );
    }
}

/// agent-restrict.sh checks what a forwarded agent may do: from a
/// connection bound for forwarding, adding keys, smartcards, removing and
/// locking are all refused, and the agent stays unlocked for its user.
/// session-bind is taken while the agent is locked (OpenSSH 10.5).
#[test]
fn agent_restrict_sh_a_forwarded_client_changes_nothing() {
    let bare = bare();
    let home = bare.sock.parent().unwrap();
    let host = host_key();
    let mut c = connect(&bare.sock);
    assert_eq!(
        call(&mut c, &bind(&host, b"sid", b"sid", true)),
        Some(Response::Success)
    );
    let smartcard = vmux_proto::agent::SmartcardKey {
        reader_id: "/usr/lib/nonexistent-pkcs11.so".into(),
        pin: b"0000".to_vec().into(),
    };
    let requests = [
        Request::AddIdentity {
            key: b"\0\0\0\x0bssh-ed25519".to_vec().into(),
        },
        Request::AddSmartcardKey(smartcard.clone()),
        Request::RemoveSmartcardKey(smartcard),
        Request::RemoveAllIdentities,
        Request::Lock {
            passphrase: b"remote".to_vec().into(),
        },
        Request::Unlock {
            passphrase: b"remote".to_vec().into(),
        },
        Request::Extension(Extension::Other {
            name: "status@vmux".into(),
            contents: Vec::new(),
        }),
    ];
    for request in &requests {
        assert_eq!(
            call(&mut c, request),
            Some(Response::Failure),
            "{request:?}"
        );
    }
    let shown = status(&bare.sock, home);
    assert!(!shown.contains("Agent locked"), "{shown}");

    // Locked by its user, the agent still takes binds, and so still
    // knows a new connection is forwarded.
    let mut local = connect(&bare.sock);
    let lock = Request::Lock {
        passphrase: b"mine".to_vec().into(),
    };
    assert_eq!(call(&mut local, &lock), Some(Response::Success));
    let mut c = connect(&bare.sock);
    assert_eq!(
        call(&mut c, &bind(&host, b"sid 2", b"sid 2", true)),
        Some(Response::Success)
    );
    let query = Request::Extension(Extension::Query);
    assert_eq!(call(&mut c, &query), Some(Response::Failure));
    assert!(status(&bare.sock, home).contains("Agent locked"));
    let unlock = Request::Unlock {
        passphrase: b"mine".to_vec().into(),
    };
    assert_eq!(call(&mut local, &unlock), Some(Response::Success));
}

/// agent.sh (its malformed-input checks): a frame cut short holds only its
/// own connection; one over 256 KiB closes it unanswered; an unknown
/// request type or extension is a plain SSH_AGENT_FAILURE and the
/// connection goes on.
#[test]
fn agent_sh_truncated_and_oversized_frames() {
    let bare = bare();
    let mut cut = connect(&bare.sock);
    cut.write_all(&[0, 0, 0, 100, 13, 0, 0]).unwrap();
    let mut over = connect(&bare.sock);
    over.write_all(&(256 * 1024 + 1u32).to_be_bytes()).unwrap();
    over.write_all(&[11; 64]).unwrap();
    assert_eq!(read_reply(&mut over), None);
    let mut c = connect(&bare.sock);
    c.write_all(&[0, 0, 0, 1, 200]).unwrap();
    assert_eq!(read_reply(&mut c), Some(Response::Failure));
    let unknown = Request::Extension(Extension::Other {
        name: "nonesuch@example.com".into(),
        contents: b"x".to_vec(),
    });
    assert_eq!(call(&mut c, &unknown), Some(Response::Failure));
    assert_eq!(
        call(&mut c, &Request::RequestIdentities),
        Some(Response::IdentitiesAnswer(Vec::new()))
    );
    // The cut frame, finished late, is answered (a failure: its body is
    // nonsense), in order.
    cut.write_all(&[0; 97]).unwrap();
    assert_eq!(read_reply(&mut cut), Some(Response::Failure));
}

/// A signer with "work", an agent (no session certificate) whose known_hosts
/// is the test's, and `vmux` against the signer's state.
struct Signed {
    paired: Paired,
    _agent: Proc,
}

impl Signed {
    fn start() -> Signed {
        let paired = Paired::setup().start();
        let home = paired.dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let env = format!("HOME={}", home.display());
        let agent = paired.spawn_agent(&["env", &env], &[]);
        paired.wait_connected();
        Signed {
            paired,
            _agent: agent,
        }
    }

    fn signer_cli(&self, args: &[&str]) -> String {
        let out = Command::new(VMUX)
            .args(args)
            .env("VMUX_HOME", &self.paired.signer_home)
            .env("VMUX_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "vmux {args:?}: {}", text(&out));
        text(&out)
    }

    fn work_blob(&self) -> Vec<u8> {
        let line = std::fs::read_to_string(&self.paired.pubkey).unwrap();
        let key = ssh_key::PublicKey::from_openssh(line.trim()).unwrap();
        key.to_bytes().unwrap()
    }

    fn sshd(&self, name: &str) -> Sshd {
        let keys = std::fs::read_to_string(&self.paired.pubkey).unwrap();
        let server = Sshd::start(&self.paired.dir.path().join(name), &keys, None);
        // Named on the signer, as `vmux hostkeys import` of known_hosts.
        let file = self.paired.dir.path().join(format!("{name}.known_hosts"));
        std::fs::write(&file, format!("{name} {}\n", server.host_key())).unwrap();
        self.signer_cli(&["hostkeys", "import", file.to_str().unwrap()]);
        server
    }

    fn no_sheet(&mut self) {
        let shown = self
            .paired
            .signer()
            .wait_any(&["SSH Sign Request"], Duration::from_millis(500));
        assert_eq!(shown, None, "a sheet was shown");
    }
}

/// agent-restrict.sh: a sign on a connection whose bind failed is refused
/// by the agent itself, before any sheet (OpenSSH 9.6); the request log
/// says why.
#[test]
fn agent_restrict_sh_no_sign_after_a_failed_bind() {
    let mut rig = Signed::start();
    let blob = rig.work_blob();
    let host = host_key();
    let mut c = connect(&rig.paired.sock());
    assert_eq!(
        call(&mut c, &bind(&host, b"this", b"another", false)),
        Some(Response::ExtensionFailure)
    );
    let sign = Request::SignRequest(SignRequest {
        key_blob: blob,
        data: b"anything".to_vec(),
        flags: Default::default(),
    });
    assert_eq!(call(&mut c, &sign), Some(Response::Failure));
    rig.no_sheet();
    let log = rig.paired.request_log();
    assert!(log.contains("\"outcome\":\"refusedBindFailed\""), "{log}");
}

/// agent-restrict.sh's forwarding paths, through two real sshd on
/// loopback, the signer's `vmux key policy` deciding: a multihop path
/// (here → a → b) and a cyclic one (here → a → b → a), allowed with
/// `--forwarded allow` (a sheet per forwarded hop, whose path shows the
/// forwarding hosts) and refused without a sheet with `--forwarded deny`;
/// a forwarded hop to a host with no host key on the signer's list is
/// refused by `--hosts`. The first hop logs in with a plain ssh-agent's
/// key while vmux's agent is the one forwarded (`ForwardAgent=SOCKET`:
/// forwarding a different agent).
#[test]
fn agent_restrict_sh_multihop_and_cyclic_paths_under_key_policy() {
    let mut rig = Signed::start();
    let (a, b) = (rig.sshd("hop-a"), rig.sshd("hop-b"));
    // A plain ssh-agent with a throwaway key that only hop-a takes.
    let other = OtherAgent::start(rig.paired.dir.path());
    std::fs::write(
        a.dir.join("authorized_keys"),
        format!(
            "{}{}",
            std::fs::read_to_string(&rig.paired.pubkey).unwrap(),
            other.public
        ),
    )
    .unwrap();
    let hop = |to: &Sshd, then: &str| {
        format!(
            "ssh -A {} {}@127.0.0.1 {then}",
            to.client_options().join(" "),
            whoami()
        )
    };
    let forward = format!("ForwardAgent={}", rig.paired.sock().display());
    let via_a = |remote: String| {
        let mut ssh = a.command(&other.sock, &["-o", &forward], &remote);
        std::thread::spawn(move || text(&ssh.output().unwrap()))
    };

    // Multihop, allowed: one sheet, for b, through a.
    rig.signer_cli(&["key", "policy", "work", "--forwarded", "allow"]);
    let login = via_a(hop(&b, "echo multihop-ok"));
    let sheet = sheet::next_sign_sheet(rig.paired.signer());
    assert!(
        sheet.contains("hop-b") && sheet.contains("(forwarded)"),
        "{sheet}"
    );
    sheet::approve_shown(rig.paired.signer(), PASS);
    let out = login.join().unwrap();
    assert!(out.contains("multihop-ok"), "{out}");

    // Cyclic, allowed: b, then a again, each a sheet.
    let login = via_a(hop(&b, &hop(&a, "echo cyclic-ok")));
    for _ in 0..2 {
        sheet::approve_next(rig.paired.signer(), PASS);
    }
    let out = login.join().unwrap();
    assert!(out.contains("cyclic-ok"), "{out}");

    // Denied by policy: no sheet, the hop fails.
    rig.signer_cli(&["key", "policy", "work", "--forwarded", "deny"]);
    let out = via_a(hop(&b, "echo should-not-run")).join().unwrap();
    assert!(!out.contains("should-not-run"), "{out}");
    rig.no_sheet();

    // A hop to a host the signer holds no key for: refused by --hosts.
    rig.signer_cli(&["key", "policy", "work", "--reset", "--forwarded", "allow"]);
    rig.signer_cli(&["key", "policy", "work", "--hosts", "hop-a"]);
    let unknown = Sshd::start(
        &rig.paired.dir.path().join("unlisted"),
        &std::fs::read_to_string(&rig.paired.pubkey).unwrap(),
        None,
    );
    let out = via_a(hop(&unknown, "echo should-not-run")).join().unwrap();
    assert!(!out.contains("should-not-run"), "{out}");
    rig.no_sheet();
    let log = std::fs::read_to_string(rig.paired.signer_home.join("signer-log.jsonl")).unwrap();
    assert!(
        log.matches("\"outcome\":\"policyDenied\"").count() >= 2,
        "{log}"
    );
}

/// A plain `ssh-agent -D` holding one throwaway key.
struct OtherAgent {
    child: std::process::Child,
    sock: std::path::PathBuf,
    public: String,
}

impl OtherAgent {
    fn start(dir: &Path) -> OtherAgent {
        let sock = dir.join("other-agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let key = dir.join("other_ed25519");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        let added = openssh("ssh-add", &sock, &[key.to_str().unwrap()], &[])
            .output()
            .unwrap();
        assert!(added.status.success(), "{}", text(&added));
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        OtherAgent {
            child,
            sock,
            public,
        }
    }
}

impl Drop for OtherAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// agent-timeout.sh ages keys out (`ssh-add -t`); vmux's unattended key is
/// the session certificate, and SIGUSR1 drops it at once, as ssh-agent
/// drops its keys: not listed, `vmux status` says so, and the next login
/// goes to the signer.
#[test]
fn agent_timeout_sh_sigusr1_forgets_the_session_certificate() {
    let mut paired = Paired::setup().start();
    let home = paired.device_home.clone();
    let agent = paired.spawn_agent_in(&home);
    paired.wait_status("Connected to phone");
    paired.approve_certificate();
    paired.wait_status("Certificate valid until");
    assert!(text(&paired.ssh_add(&["-L"])).contains("-cert-v01@openssh.com"));
    rustix_kill(agent.pid(), "USR1");
    let status = paired.wait_status("Certificate forgotten on SIGUSR1");
    assert!(status.contains("logins go to the signer"), "{status}");
    let listed = text(&paired.ssh_add(&["-L"]));
    assert!(!listed.contains("-cert-v01@openssh.com"), "{listed}");
    // Still running, still signing, through the signer.
    let (mut child, _file) = paired.start_sign("after-usr1", b"x\n");
    paired.approve();
    let (ok, err) = crate::support::clients::wait_child(&mut child, WAIT);
    assert!(ok, "{err}");
    drop(agent);
}
