//! The signer sees the destination for itself: real `ssh` through `vmux
//! agent` to real sshd instances on 127.0.0.1, a raw agent client that lies,
//! named host keys (`vmux hostkeys`), per-key policy (`vmux key policy`),
//! learned hosts, forwarded chains and the order identities are offered
//! in. Every sheet is read and answered through the signer's pty.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::sheet;
use crate::support::sshd;
use vmux_testkit::agent_client as client;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use client::{put_string, userauth};
use clients::text;
use paired::{PASS, Paired, WAIT};
use process::{Proc, VMUX};
use signature::Signer;
use ssh_key::{Algorithm, PrivateKey, PublicKey, Signature};
use sshd::{Sshd, whoami};
use vmux_keys::KeyType;

/// A signer with "work" (or the given identities), paired as "laptop", and
/// an agent whose `HOME` (and so its known_hosts) is the test's.
struct Rig {
    agent: Option<Proc>,
    paired: Paired,
    home: PathBuf,
}

impl Rig {
    fn start() -> Rig {
        Rig::with(Paired::setup().start())
    }

    fn with(paired: Paired) -> Rig {
        let home = paired.dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let env = format!("HOME={}", home.display());
        let agent = paired.spawn_agent(&["env", &env], &[]);
        paired.wait_connected_any();
        Rig {
            agent: Some(agent),
            paired,
            home,
        }
    }

    /// An sshd authorizing the rig's authorized identities, in `name`.
    fn sshd(&self, name: &str, extra: &str) -> Sshd {
        let keys = std::fs::read_to_string(&self.paired.pubkey).unwrap();
        Sshd::start_with(&self.paired.dir.path().join(name), &keys, None, extra)
    }

    /// `vmux ARGS` on the signer's state.
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

    /// Names host keys on the signer from known_hosts `lines`.
    fn import(&self, lines: &str) -> String {
        let file = self.paired.dir.path().join("import_known_hosts");
        std::fs::write(&file, lines).unwrap();
        self.signer_cli(&["hostkeys", "import", file.to_str().unwrap()])
    }

    /// What this user's known_hosts says (the agent reads it for claims).
    fn user_known_hosts(&self, lines: &str) {
        std::fs::write(self.home.join(".ssh/known_hosts"), lines).unwrap();
    }

    /// Starts `ssh` through the agent to `server`, running `command`.
    fn ssh(&self, server: &Sshd, extra: &[&str], command: &str) -> std::thread::JoinHandle<Output> {
        let mut ssh = server.command(&self.paired.sock(), extra, command);
        std::thread::spawn(move || ssh.output().unwrap())
    }

    fn signer(&mut self) -> &mut Proc {
        self.paired.signer()
    }

    /// Waits for the next sheet and for each of `lines` on it.
    fn sheet(&mut self, lines: &[&str]) {
        self.signer().expect("SSH Sign Request", WAIT);
        for line in lines {
            self.signer().expect(line, WAIT);
        }
        self.signer().expect("[a] approve", WAIT);
    }

    fn approve(&mut self) {
        sheet::approve_shown(self.signer(), PASS);
    }

    fn deny(&mut self) {
        sheet::deny_shown(self.signer());
    }

    /// No sheet shows up: the refusal came before any sheet would have
    /// been queued, so a short look is enough.
    fn no_sheet(&mut self) {
        assert_eq!(
            self.signer()
                .wait_any(&["SSH Sign Request"], Duration::from_millis(300)),
            None,
            "a sheet was shown"
        );
    }

    fn signer_log(&self) -> String {
        std::fs::read_to_string(self.paired.signer_home.join("signer-log.jsonl"))
            .unwrap_or_default()
    }

    /// The signer log's last line.
    fn last_logged(&self) -> String {
        self.signer_log()
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    }

    /// The "work" identity's public key blob.
    fn work_blob(&self) -> Vec<u8> {
        let line = std::fs::read_to_string(&self.paired.pubkey).unwrap();
        PublicKey::from_openssh(line.lines().next().unwrap())
            .unwrap()
            .to_bytes()
            .unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.agent.take());
    }
}

impl Paired {
    /// Waits until the agent is connected and offers at least one key.
    fn wait_connected_any(&self) {
        self.wait_status("Connected to phone");
        self.wait_status("  SHA256:");
    }
}

fn joined(login: std::thread::JoinHandle<Output>) -> (bool, String) {
    let out = login.join().unwrap();
    (out.status.success(), text(&out))
}

#[test]
fn an_imported_host_is_named_and_verified_and_a_host_policy_fails_fast_elsewhere() {
    let mut rig = Rig::start();
    let db = rig.sshd("db", "");
    let other = rig.sshd("other", "");
    let imported = rig.import(&format!("prod-db {}\n", db.host_key()));
    assert!(imported.contains("1 new"), "{imported}");
    // A hostile known_hosts: a name that would redraw the terminal is
    // refused and shown escaped; a huge file is refused before it is read.
    let evil = rig.import(&format!("prod-db\u{1b}[2J {}\n", other.host_key()));
    assert!(
        evil.contains(
            "Refused line 1: host name \"prod-db\\e[2J\" holds control or format characters"
        ) && !evil.contains('\u{1b}'),
        "{evil}"
    );
    let huge = rig.paired.dir.path().join("huge_known_hosts");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let out = Command::new(VMUX)
        .args(["hostkeys", "import", huge.to_str().unwrap()])
        .env("VMUX_HOME", &rig.paired.signer_home)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("larger than 16 MiB"),
        "{}",
        text(&out)
    );
    let list = rig.signer_cli(&["hostkeys", "list"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    let user = whoami();

    let login = rig.ssh(&db, &[], "echo logged-in");
    rig.sheet(&[
        "Destination  prod-db (verified by this signer)",
        &format!("User         {user} (verified by this signer)"),
        "Purpose      SSH login (verified by this signer)",
        "Path         laptop → prod-db (verified by this signer)",
        "on this signer's list as \"prod-db\" (imported",
    ]);
    rig.approve();
    let (ok, out) = joined(login);
    assert!(ok && out.contains("logged-in"), "{out}");
    let logged = rig.last_logged();
    assert!(
        logged.contains("\"destination\":\"prod-db (verified by this signer)\"")
            && logged.contains(&format!("\"user\":\"{user}\""))
            && logged.contains("\"purpose\":\"SSH login (verified by this signer)\"")
            && logged.contains("laptop → prod-db"),
        "{logged}"
    );
    let shown = rig.signer_cli(&["signer", "log"]);
    assert!(shown.contains("path: laptop → prod-db"), "{shown}");
    // The agent's own log: the purpose and the host it saw bound.
    let agent_log = text(&rig.paired.vmux(&["log"]));
    assert!(agent_log.contains("SSH login"), "{agent_log}");

    // Only prod-db from now on: elsewhere is refused at once, no sheet.
    rig.signer_cli(&["key", "policy", "work", "--hosts", "prod-db"]);
    let started = Instant::now();
    let (ok, out) = joined(rig.ssh(&other, &[], "echo should-not-run"));
    assert!(!ok && !out.contains("should-not-run"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not fast: {:?}",
        started.elapsed()
    );
    rig.no_sheet();
    // One line on the signer's screen says so, and why.
    rig.signer()
        .expect("Refused by policy: sign request from \"laptop\"", WAIT);
    rig.signer().expect(
        "not one of the hosts this key may log in to (prod-db)",
        WAIT,
    );
    let logged = rig.last_logged();
    assert!(
        logged.contains("\"outcome\":\"policyDenied\"")
            && logged.contains("not one of the hosts this key may log in to (prod-db)"),
        "{logged}"
    );
    let shown = rig.signer_cli(&["key", "policy", "work"]);
    assert!(shown.contains("--hosts prod-db"), "{shown}");
}

#[test]
fn a_new_host_is_learned_on_approval_and_a_swapped_key_is_flagged() {
    let mut rig = Rig::start();
    let first = rig.sshd("staging", "");
    // The user's OpenSSH calls it "staging": the agent passes that on.
    rig.user_known_hosts(&format!("staging {}\n", first.host_key()));

    let login = rig.ssh(&first, &[], "true");
    rig.sheet(&[
        "Destination  SHA256:",
        "(verified by this signer)",
        "new host, not on this signer's list; \"staging\" claimed by laptop",
    ]);
    rig.approve();
    assert!(joined(login).0);
    let list = rig.signer_cli(&["hostkeys", "list"]);
    assert!(
        list.contains("staging") && list.contains("learned on first use"),
        "{list}"
    );

    let login = rig.ssh(&first, &[], "true");
    let today: String = vmux_link::clock::format_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
    .chars()
    .take(10)
    .collect();
    rig.sheet(&[
        "Destination  staging (verified by this signer)",
        &format!("same host key as approved on {today}"),
    ]);
    rig.deny();
    assert!(!joined(login).0);

    // A learned name is only the requester's word: a key limited to
    // "staging" gets no sheet for the host learned under that name.
    rig.signer_cli(&["key", "policy", "work", "--hosts", "staging"]);
    assert!(!joined(rig.ssh(&first, &[], "true")).0);
    rig.no_sheet();
    let logged = rig.last_logged();
    assert!(logged.contains("\"outcome\":\"policyDenied\""), "{logged}");
    rig.signer_cli(&["key", "policy", "work", "--reset"]);

    // Another server now answers as "staging", with a key of the same type.
    drop(first);
    let swapped = rig.sshd("impostor", "");
    rig.user_known_hosts(&format!("staging {}\n", swapped.host_key()));
    let login = rig.ssh(&swapped, &[], "true");
    rig.sheet(&[
        "CHANGED HOST KEY: laptop says this is \"staging\", but this signer knows \"staging\" by another key",
    ]);
    rig.deny();
    assert!(!joined(login).0);
    // A changed key is never learned over the old one.
    let list = rig.signer_cli(&["hostkeys", "list"]);
    assert_eq!(
        list.lines().filter(|l| l.starts_with("staging")).count(),
        1,
        "{list}"
    );
}

// ---- a raw agent client ----

fn exchange(stream: &mut UnixStream, body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).unwrap();
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut reply).unwrap();
    reply
}

/// `session-bind@openssh.com` of `host` to `sid`, `signed_sid` being what
/// the host really signed.
fn session_bind(host: &PrivateKey, sid: &[u8], signed_sid: &[u8], corrupt: bool) -> Vec<u8> {
    let sig: Signature = host.try_sign(signed_sid).unwrap();
    let mut sig = Vec::<u8>::try_from(sig).unwrap();
    if corrupt {
        let last = sig.len() - 1;
        sig[last] ^= 1;
    }
    let mut b = vec![27];
    put_string(&mut b, b"session-bind@openssh.com");
    put_string(&mut b, &host.public_key().to_bytes().unwrap());
    put_string(&mut b, sid);
    put_string(&mut b, &sig);
    b.push(0);
    b
}

fn sign_body(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s = vec![13];
    put_string(&mut s, key);
    put_string(&mut s, data);
    s.extend([0, 0, 0, 0]);
    s
}

/// The raw client's three lies: a login with no binding, with a real
/// binding of another session, with a binding whose signature is
/// corrupted. Returns the session-bind replies.
fn lie(sock: &Path, key: &[u8], case: usize) -> (Option<u8>, u8) {
    let host = PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
        Algorithm::Ed25519,
    )
    .unwrap();
    let mut c = UnixStream::connect(sock).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let bind = match case {
        0 => None,
        1 => Some(session_bind(
            &host,
            b"an older session",
            b"an older session",
            false,
        )),
        _ => Some(session_bind(&host, b"this session", b"this session", true)),
    };
    let bound = bind.map(|b| exchange(&mut c, &b)[0]);
    let reply = exchange(
        &mut c,
        &sign_body(
            key,
            &userauth(b"this session", "root", "ecdsa-sha2-nistp256", key),
        ),
    );
    (bound, reply[0])
}

#[test]
fn a_lying_client_gets_an_unverified_sheet_or_policy_denied_and_git_signs() {
    let mut rig = Rig::start();
    let key = rig.work_blob();
    let sock = rig.paired.sock();
    let whys = [
        "no session binding came with the request",
        "the login's session identifier is not the one bound last",
    ];
    for (case, why) in whys.iter().enumerate() {
        let (sock, key) = (sock.clone(), key.clone());
        let client = std::thread::spawn(move || lie(&sock, &key, case));
        rig.sheet(&[
            "Destination  ",
            &format!("(UNVERIFIED: {why})"),
            "User         root",
        ]);
        rig.deny();
        let (bound, signed) = client.join().unwrap();
        assert_eq!(signed, 5, "case {case}: refused as denied");
        assert_eq!(
            bound,
            [None, Some(6)][case],
            "case {case}: session-bind reply"
        );
    }
    // The forged binding: the agent answers SSH_AGENT_EXTENSION_FAILURE and
    // signs nothing more on that connection (OpenSSH 9.6): no sheet.
    let (bound, signed) = lie(&sock, &key, 2);
    assert_eq!((bound, signed), (Some(28), 5));
    rig.no_sheet();

    // A git commit signed through the agent says so.
    let repo = rig.paired.dir.path().join("repo");
    let key_file = rig.paired.pubkey.clone();
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.current_dir(&repo)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &repo)
            .env("SSH_AUTH_SOCK", &sock)
            .env("GIT_AUTHOR_NAME", "vmux test")
            .env("GIT_AUTHOR_EMAIL", "test@vmux.invalid")
            .env("GIT_COMMITTER_NAME", "vmux test")
            .env("GIT_COMMITTER_EMAIL", "test@vmux.invalid")
            .stdin(Stdio::null());
        c
    };
    std::fs::create_dir_all(&repo).unwrap();
    assert!(git(&["init", "-q"]).status().unwrap().success());
    let commit = git(&[
        "-c",
        "gpg.format=ssh",
        "-c",
        &format!("user.signingkey={}", key_file.display()),
        "commit",
        "-q",
        "-S",
        "--allow-empty",
        "-m",
        "signed",
    ]);
    let mut commit = commit;
    let commit = std::thread::spawn(move || commit.output().unwrap());
    rig.sheet(&[
        "Destination  none: a signature, not a login",
        "Purpose      git signature (verified by this signer)",
    ]);
    rig.approve();
    let out = commit.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // With unverified destinations denied, none of the lies reaches a sheet.
    rig.signer_cli(&["key", "policy", "work", "--unverified", "deny"]);
    for case in 0..3 {
        let (_, signed) = lie(&sock, &key, case);
        assert_eq!(signed, 5, "case {case}");
        rig.no_sheet();
        let logged = rig.last_logged();
        assert!(
            logged.contains("\"outcome\":\"policyDenied\"")
                && logged.contains("denies unverified destinations"),
            "case {case}: {logged}"
        );
    }
}

#[test]
fn a_forwarded_login_shows_its_path_and_forwarding_can_be_denied() {
    let mut rig = Rig::start();
    let a = rig.sshd("a", "");
    let b = rig.sshd("b", "");
    rig.import(&format!("a {}\nb {}\n", a.host_key(), b.host_key()));
    let user = whoami();
    let inner = format!(
        "ssh {} {user}@127.0.0.1 echo second-hop-ok",
        b.client_options().join(" ")
    );

    let login = rig.ssh(&a, &["-A"], &inner);
    rig.sheet(&[
        "Destination  a (verified by this signer)",
        "Path         laptop → a (verified by this signer)",
    ]);
    rig.approve();
    rig.sheet(&[
        "Destination  b (verified by this signer)",
        "Path         laptop → a (forwarded) → b (verified by this signer)",
    ]);
    rig.approve();
    let (ok, out) = joined(login);
    assert!(ok && out.contains("second-hop-ok"), "{out}");

    rig.signer_cli(&["key", "policy", "work", "--forwarded", "deny"]);
    let login = rig.ssh(&a, &["-A"], &inner);
    rig.sheet(&["Path         laptop → a (verified by this signer)"]);
    rig.approve();
    let (_, out) = joined(login);
    assert!(!out.contains("second-hop-ok"), "{out}");
    rig.no_sheet();
    let logged = rig.last_logged();
    assert!(
        logged.contains("\"outcome\":\"policyDenied\"")
            && logged.contains("forwarded agent")
            && logged.contains("laptop → a (forwarded) → b"),
        "{logged}"
    );
}

#[test]
fn the_identity_that_logged_in_last_is_offered_first() {
    let paired = Paired::setup()
        .identities(&[
            ("one", KeyType::Ecdsa),
            ("two", KeyType::Ecdsa),
            ("three", KeyType::Ecdsa),
        ])
        .authorized(&["three"])
        .start();
    let mut rig = Rig::with(paired);
    let server = rig.sshd("strict", "MaxAuthTries 2\n");
    let failed = |s: &Sshd| s.log().matches("Failed publickey").count();
    let accepted = |s: &Sshd| s.log().matches("Accepted publickey").count();

    // Never used: the agent's order offers "one" and "two" first, and the
    // server gives up after two wrong offers.
    let (ok, out) = joined(rig.ssh(&server, &[], "true"));
    assert!(!ok, "{out}");
    assert_eq!(failed(&server), 2, "{}", server.log());

    // Logged in once with "three" …
    let three = rig.paired.pubkey.clone();
    let login = rig.ssh(
        &server,
        &["-o", "IdentitiesOnly=yes", "-i", three.to_str().unwrap()],
        "true",
    );
    rig.sheet(&["Key          three"]);
    rig.approve();
    assert!(joined(login).0);
    assert_eq!((failed(&server), accepted(&server)), (2, 1));

    // … the agent lists it first for this host: one offer, no failure.
    let login = rig.ssh(&server, &[], "true");
    rig.sheet(&["Key          three"]);
    rig.approve();
    let (ok, out) = joined(login);
    assert!(ok, "{out}");
    assert_eq!(
        (failed(&server), accepted(&server)),
        (2, 2),
        "{}",
        server.log()
    );
}

/// sshd logs in as the part of the user name before its first `:` (the
/// rest is an authentication style), while the signature covers all of
/// it. Root on a forwarded host pads the style with ideographic spaces so
/// that a cut sheet reads "Destination root:@staging (verified by this
/// signer)": refused, with the reason, before any sheet. A plain style
/// gets its own line, and the Destination names the host alone.
#[test]
fn a_user_name_with_a_style_cannot_spoof_the_destination() {
    let mut rig = Rig::start();
    let staging = rig.sshd("staging", "");
    let prod = rig.sshd("prod-db", "");
    rig.import(&format!(
        "staging {}\nprod-db {}\n",
        staging.host_key(),
        prod.host_key()
    ));
    let user = whoami();
    let hop = |login: &str| {
        format!(
            "ssh {} -l '{login}' 127.0.0.1 id -un",
            prod.client_options().join(" ")
        )
    };
    let spoof = |spaces: usize| {
        format!(
            "{user}:@staging （verified by this signer）{}.",
            "\u{3000}".repeat(spaces)
        )
    };

    // The 320 spaces: over 256 bytes, refused by the agent itself
    // (as OpenSSH 10's agent does) before the signer is asked.
    let login = rig.ssh(&staging, &["-A"], &hop(&spoof(320)));
    rig.sheet(&["Destination  staging (verified by this signer)"]);
    rig.approve();
    let (ok, out) = joined(login);
    assert!(!ok && !out.lines().any(|l| l == user), "{out}");
    rig.no_sheet();
    let agent_log = text(&rig.paired.vmux(&["log"]));
    assert!(agent_log.contains("refusedUserTooLong"), "{agent_log}");

    // 60 spaces fit in 256 bytes: the signer reads the name and refuses it
    // with the reason, before any sheet.
    assert!(spoof(60).len() <= 256);
    let login = rig.ssh(&staging, &["-A"], &hop(&spoof(60)));
    rig.sheet(&["Destination  staging (verified by this signer)"]);
    rig.approve();
    let (ok, out) = joined(login);
    assert!(!ok && !out.lines().any(|l| l == user), "{out}");
    rig.no_sheet();
    let logged = rig.last_logged();
    assert!(
        logged.contains("\"outcome\":\"malformedRequest\"")
            && logged.contains("cannot be a login name on any sshd")
            && logged.contains("a space other than U+0020 (Zs) U+3000"),
        "{logged}\n{out}"
    );
    assert!(
        !rig.signer().transcript.contains('\u{3000}'),
        "a U+3000 reached the signer's screen"
    );
    assert!(!prod.log().contains("Accepted publickey"), "{}", prod.log());

    let login = rig.ssh(&staging, &["-A"], &hop(&format!("{user}:foo")));
    rig.sheet(&["Destination  staging (verified by this signer)"]);
    rig.approve();
    rig.sheet(&[
        "Destination  prod-db (verified by this signer)",
        &format!("User         {user} (verified by this signer)"),
        "Style        auth style requested: \"foo\"",
        "Path         laptop → staging (forwarded) → prod-db (verified by this signer)",
    ]);
    // The sheet is up: nothing has logged in yet.
    assert!(!login.is_finished());
    assert!(!prod.log().contains("Accepted publickey"), "{}", prod.log());
    rig.approve();
    let (ok, out) = joined(login);
    assert!(ok && out.lines().any(|l| l == user), "{out}");
    assert!(
        prod.log()
            .contains(&format!("Accepted publickey for {user} from 127.0.0.1")),
        "{}",
        prod.log()
    );
    let logged = rig.last_logged();
    assert!(
        logged.contains("\"destination\":\"prod-db (verified by this signer)\"")
            && logged.contains(&format!("\"user\":\"{user}\""))
            && logged.contains("\"style\":\"foo\""),
        "{logged}"
    );
}

/// A host key of another type, claimed under a name the person listed, is
/// a changed host key: never "new", never learned over the listed one.
#[test]
fn a_listed_name_with_a_key_of_another_type_is_a_changed_host_key() {
    let mut rig = Rig::start();
    let prod = rig.sshd("prod-db", "");
    rig.import(&format!("prod-db {}\n", prod.host_key()));
    // An impostor with an ECDSA host key (Sshd keeps whatever key it finds).
    let dir = rig.paired.dir.path().join("impostor");
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(dir.join("host_ed25519"))
        .status()
        .unwrap();
    assert!(made.success());
    let impostor = rig.sshd("impostor", "");
    assert!(impostor.host_key().starts_with("ecdsa-sha2-nistp256 "));
    rig.user_known_hosts(&format!("prod-db {}\n", impostor.host_key()));

    let login = rig.ssh(&impostor, &[], "true");
    rig.sheet(&[
        "Destination  SHA256:",
        "CHANGED HOST KEY: laptop says this is \"prod-db\", but this signer knows \"prod-db\" by another key",
    ]);
    rig.approve();
    assert!(joined(login).0);
    // Approved once, still not learned: the list keeps the person's key.
    let list = rig.signer_cli(&["hostkeys", "list"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    let login = rig.ssh(&impostor, &[], "true");
    rig.sheet(&["CHANGED HOST KEY"]);
    rig.deny();
    assert!(!joined(login).0);
}

/// sudo through `pam_ssh_agent_auth` over a forwarded agent signs a
/// userauth-shaped challenge for another service: not an SSH login. It
/// falls under `unknown` (refused by default) and reads as such.
#[test]
fn a_userauth_for_another_service_is_unknown_data() {
    let mut rig = Rig::start();
    let key = rig.work_blob();
    let mut data = Vec::new();
    put_string(&mut data, b"a challenge");
    data.push(50);
    put_string(&mut data, b"root");
    put_string(&mut data, b"pam_ssh_agent_auth");
    put_string(&mut data, b"publickey");
    data.push(1);
    put_string(&mut data, b"ecdsa-sha2-nistp256");
    put_string(&mut data, &key);
    let sock = rig.paired.sock();
    let ask = |data: Vec<u8>| {
        let (sock, key) = (sock.clone(), key.clone());
        std::thread::spawn(move || {
            let mut c = UnixStream::connect(sock).unwrap();
            c.set_read_timeout(Some(WAIT)).unwrap();
            exchange(&mut c, &sign_body(&key, &data))[0]
        })
    };
    assert_eq!(ask(data.clone()).join().unwrap(), 5);
    rig.no_sheet();
    let logged = rig.last_logged();
    assert!(
        logged.contains("\"outcome\":\"policyDenied\"")
            && logged.contains("userauth request for service \\\"pam_ssh_agent_auth\\\""),
        "{logged}"
    );

    rig.signer_cli(&["key", "policy", "work", "--purposes", "login,unknown"]);
    let client = ask(data);
    rig.sheet(&[
        "Destination  unknown (unknown)",
        "Purpose      unknown data (userauth for service \"pam_ssh_agent_auth\") (unknown)",
    ]);
    rig.deny();
    assert_eq!(client.join().unwrap(), 5);
}

/// The key's policy changes while the sheet is up: the Approve is checked
/// again inside the approval turn, and nothing is signed.
#[test]
fn a_policy_changed_while_the_sheet_is_up_refuses_the_approved_login() {
    let mut rig = Rig::start();
    let db = rig.sshd("db", "");
    let login = rig.ssh(&db, &[], "echo should-not-run");
    rig.sheet(&["Purpose      SSH login (verified by this signer)"]);
    rig.signer_cli(&["key", "policy", "work", "--purposes", "git"]);
    rig.signer().type_line("a");
    rig.signer().expect("Refused after approval", WAIT);
    let (ok, out) = joined(login);
    assert!(!ok && !out.contains("should-not-run"), "{out}");
    let logged = rig.last_logged();
    assert!(
        logged.contains("\"outcome\":\"policyDenied\"")
            && logged.contains("changed while the sheet was up"),
        "{logged}"
    );
}
