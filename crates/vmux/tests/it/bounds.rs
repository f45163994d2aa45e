//! Bounded resources on `vmux agent`, through the real binary: a thousand
//! stalled connections cost little and others are still served; past the
//! cap new connections close at once, and forwarded ones have a smaller cap
//! of their own; unlock guesses queue across connections; the request log
//! rotates at its size and `vmux log` reads it in order; stored text is
//! printed escaped.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;

use vmux_testkit::agent_client as client;
use vmux_testkit::memory;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use client::{Client, list_frame};
use clients::{openssh, text};
use memory::{mib, rss_kib};
use paired::{Paired, WAIT};
use process::{Proc, VMUX};
use vmux_proto::agent::{Extension, Request, Response, SessionBind, SignFlags, SignRequest};

const STALLED: usize = 1000;
/// The agent's descriptors kept for itself (`slots::RESERVED_FDS`).
const RESERVED_FDS: usize = 64;
/// `slots::MAX_FORWARDED`.
const MAX_FORWARDED: usize = 128;

/// Lets this test process hold a thousand sockets: the soft open-file
/// limit is often 1024, the hard one far higher.
fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// Descriptors `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .unwrap_or(0)
}

/// Waits until `pid` has at least `n` descriptors open.
fn wait_fds(pid: u32, n: usize) {
    let deadline = Instant::now() + WAIT;
    while open_fds(pid) < n {
        assert!(
            Instant::now() < deadline,
            "the agent has {} descriptors open, not {n}",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes clients sent to the agent at `sock` that it has not read yet:
/// the receive queues of its accepted sockets, as `ss` reports them.
fn unread(sock: &Path) -> u64 {
    let out = Command::new("ss").arg("-xHn").output().unwrap();
    assert!(out.status.success(), "ss (iproute2) is needed");
    let path = sock.to_str().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(path))
        .filter_map(|l| {
            let mut cols = l.split_whitespace().skip(1);
            (cols.next()? == "ESTAB").then_some(())?;
            cols.next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The agent's RSS once it has read all that was sent to it (not just
/// accepted the connections).
fn settled_rss(pid: u32, sock: &Path) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = unread(sock);
        if left == 0 {
            return rss_kib(pid);
        }
        assert!(Instant::now() < deadline, "{left} bytes still unread");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Whether the agent closed `s` (rather than answering a list).
fn is_closed(s: &mut UnixStream) -> bool {
    if s.write_all(&list_frame()).is_err() {
        return true;
    }
    let mut header = [0u8; 4];
    match s.read(&mut header) {
        Ok(0) | Err(_) => true,
        Ok(_) => false,
    }
}

fn call(s: &mut UnixStream, request: &Request) -> Response {
    s.write_all(&request.to_frame().unwrap()).unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    s.read_exact(&mut body).unwrap();
    Response::decode(&body).unwrap()
}

/// A thousand connections that each sent the 4-byte header of a 256 KiB
/// frame, then the first byte of its body, and no more: the agent's
/// resident memory stays within twice what it was idle, and `ssh-add -l`
/// is still answered at once.
#[test]
fn a_thousand_stalled_connections_cost_little_and_others_are_served() {
    raise_open_files();
    let paired = Paired::setup().start();
    let agent = paired.spawn_agent(&[], &[]);
    paired.wait_connected();
    let sock = paired.sock();
    for _ in 0..3 {
        assert!(text(&paired.ssh_add(&["-l"])).contains("work"));
    }
    let idle = settled_rss(agent.pid(), &sock);
    let fds = open_fds(agent.pid());

    let header = (256u32 * 1024).to_be_bytes();
    let mut stalled: Vec<UnixStream> = (0..STALLED)
        .map(|_| {
            let mut s = connect(&sock);
            s.write_all(&header).unwrap();
            s
        })
        .collect();
    wait_fds(agent.pid(), fds + STALLED);
    let started = Instant::now();
    let listed = text(&paired.ssh_add(&["-l"]));
    let answered_in = started.elapsed();
    assert!(listed.contains("work"), "{listed}");
    let headers = settled_rss(agent.pid(), &sock);

    for s in &mut stalled {
        s.write_all(&[13]).unwrap();
    }
    assert!(text(&paired.ssh_add(&["-l"])).contains("work"));
    let begun = settled_rss(agent.pid(), &sock);
    println!(
        "agent VmRSS: idle {}, {STALLED} connections stalled after a header {}, after a body's first byte {}; \
         ssh-add -l answered in {answered_in:.1?}",
        mib(idle),
        mib(headers),
        mib(begun)
    );
    assert!(
        headers <= 2 * idle && begun <= 2 * idle,
        "idle {idle} KiB, then {headers} KiB, then {begun} KiB"
    );
    // All of them are still served: each gets its frame's answer once it
    // is complete (a 256 KiB frame of an unknown type: FAILURE).
    let rest = vec![0u8; 256 * 1024 - 1];
    for s in stalled.iter_mut().take(3) {
        s.write_all(&rest).unwrap();
        let mut reply = [0u8; 5];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply, [0, 0, 0, 1, 5]);
    }
}

/// An agent whose open-file limit allows 100 connections: the 101st is
/// closed at once, a person is told, and once some end new ones are
/// served again.
#[test]
fn past_the_cap_new_connections_are_closed_until_some_end() {
    raise_open_files();
    let cap = 100;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent");
    let sock = home.join("agent.sock");
    let mut command = Command::new("prlimit");
    let limit = format!("--nofile={0}:{0}", cap + RESERVED_FDS);
    command.args([&limit, VMUX, "agent"]);
    let mut agent = Proc::start(command, &home);
    agent.expect("export SSH_AUTH_SOCK;", WAIT);

    let mut held: Vec<UnixStream> = (0..cap - 1)
        .map(|_| {
            let mut s = connect(&sock);
            s.write_all(&[0, 0]).unwrap();
            s
        })
        .collect();
    // The last place, taken by a client that is served.
    let mut last = connect(&sock);
    assert!(!is_closed(&mut last));
    held.push(last);

    let mut over = connect(&sock);
    assert!(
        is_closed(&mut over),
        "the connection past the cap was served"
    );
    let out = openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    agent.expect("the most this agent serves at once", WAIT);

    held.truncate(cap - 10);
    let deadline = Instant::now() + WAIT;
    loop {
        let out = openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap();
        if text(&out).contains("The agent has no identities") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", text(&out));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A forwarded bind, as ssh sends first on each `ssh -A` connection (its
/// proof need not verify for the flag to count).
fn forwarded_bind() -> Request {
    Request::Extension(Extension::SessionBind(SessionBind {
        host_key: b"remote host".to_vec(),
        session_id: b"session".to_vec(),
        signature: b"unverifiable".to_vec(),
        is_forwarding: true,
    }))
}

/// A remote host that opens many forwarded connections gets its own share,
/// 128, and local clients are served while it holds them all.
#[test]
fn forwarded_connections_have_a_smaller_cap_of_their_own() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent");
    let sock = home.join("agent.sock");
    let mut agent = Proc::spawn(&home, &["agent"]);
    agent.expect("export SSH_AUTH_SOCK;", WAIT);

    let mut forwarded: Vec<UnixStream> = (0..MAX_FORWARDED)
        .map(|_| {
            let mut s = connect(&sock);
            assert_eq!(call(&mut s, &forwarded_bind()), Response::ExtensionFailure);
            s
        })
        .collect();
    let mut over = connect(&sock);
    assert_eq!(
        call(&mut over, &forwarded_bind()),
        Response::ExtensionFailure
    );
    assert!(
        is_closed(&mut over),
        "a forwarded connection past the cap was served"
    );
    agent.expect("forwarded agent connections are open", WAIT);
    assert!(!is_closed(&mut forwarded[0]));
    // Local clients are not held back.
    for _ in 0..3 {
        let out = openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap();
        assert!(
            text(&out).contains("The agent has no identities"),
            "{}",
            text(&out)
        );
    }
    // One ends: a new forwarded connection takes its place.
    drop(forwarded.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let mut again = connect(&sock);
        assert_eq!(
            call(&mut again, &forwarded_bind()),
            Response::ExtensionFailure
        );
        if !is_closed(&mut again) {
            break;
        }
        assert!(Instant::now() < deadline, "no forwarded place came free");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Five wrong unlock passphrases sent at once on five connections wait
/// their turn: 0.1 + 0.2 + 0.3 + 0.4 + 0.5 s in all, as one guesser's
/// would, not the 0.5 s of the slowest. The right one still unlocks.
#[test]
fn unlock_guesses_queue_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent");
    let sock = home.join("agent.sock");
    let mut agent = Proc::spawn(&home, &["agent"]);
    agent.expect("export SSH_AUTH_SOCK;", WAIT);
    let mut c = connect(&sock);
    let lock = Request::Lock {
        passphrase: b"right".as_slice().into(),
    };
    assert_eq!(call(&mut c, &lock), Response::Success);

    let guessers = 5;
    let start = Barrier::new(guessers + 1);
    let elapsed = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..guessers)
            .map(|i| {
                let (sock, start) = (&sock, &start);
                scope.spawn(move || {
                    let mut c = connect(sock);
                    let guess = Request::Unlock {
                        passphrase: format!("wrong {i}").into_bytes().into(),
                    };
                    start.wait();
                    call(&mut c, &guess)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for h in handles {
            assert_eq!(h.join().unwrap(), Response::Failure);
        }
        began.elapsed()
    });
    println!("{guessers} concurrent wrong unlock passphrases answered in {elapsed:.2?}");
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");

    let unlock = Request::Unlock {
        passphrase: b"right".as_slice().into(),
    };
    assert_eq!(call(&mut c, &unlock), Response::Success);
    assert_eq!(
        call(&mut c, &Request::RequestIdentities),
        Response::IdentitiesAnswer(Vec::new())
    );
}

/// The agent's log rotates at 1 MiB and keeps four older files; `vmux log`
/// reads them oldest first. Filled with sign requests a locked agent
/// refuses (logged, cheap: no sheet, no signature).
#[test]
fn the_request_log_rotates_and_vmux_log_reads_it_in_order() {
    let paired = Paired::setup().start();
    let _agent = paired.spawn_agent(&[], &[]);
    paired.wait_connected();
    let sock = paired.sock();
    let mut c = Client::connect(&sock).unwrap();
    let work = c
        .identities()
        .into_iter()
        .find(|i| i.comment == "work")
        .unwrap();
    let lock = Request::Lock {
        passphrase: b"lock".as_slice().into(),
    };
    assert_eq!(c.call(&lock), Response::Success);

    let log = paired.device_home.join("agent-log.jsonl");
    let rotated = |n: usize| PathBuf::from(format!("{}.{n}", log.display()));
    let mut sent = 0;
    // Until the first file has rotated twice; bounded in case it never does.
    while !rotated(2).exists() {
        assert!(sent < 20_000, "no rotation after {sent} entries");
        let sign = Request::SignRequest(SignRequest {
            key_blob: work.key_blob.clone(),
            data: format!("request {sent:06}").into_bytes(),
            flags: SignFlags::NONE,
        });
        assert_eq!(c.call(&sign), Response::Failure);
        sent += 1;
    }
    for file in [log.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len <= 1 << 20, "{} is {len} bytes", file.display());
    }
    assert!(!rotated(3).exists());

    let out = Command::new(VMUX)
        .arg("log")
        .env("VMUX_HOME", &paired.device_home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8(out.stdout).unwrap();
    let locked: Vec<&str> = shown.lines().filter(|l| l.contains(" locked ")).collect();
    assert_eq!(locked.len(), sent, "every entry, across the files");
    let times: Vec<&str> = locked.iter().map(|l| &l[..23]).collect();
    assert!(times.is_sorted(), "not in order");
    let json = Command::new(VMUX)
        .args(["log", "--json"])
        .env("VMUX_HOME", &paired.device_home)
        .output()
        .unwrap();
    let json = String::from_utf8(json.stdout).unwrap();
    assert_eq!(json.matches("\"outcome\":\"locked\"").count(), sent);
    println!("{sent} entries filled agent-log.jsonl past two rotations");
}

/// Logs and caches written by an older build (or edited by hand) may hold
/// escape sequences and bidi overrides: `vmux log`, `vmux signer log` (and
/// their `--json`) and `vmux status` print them escaped, the rotated files
/// first.
#[test]
fn stored_text_is_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let agent_line = |time: u64, comment: &str| {
        format!(
            "{{\"timeMilliseconds\":{time},\"keyFingerprint\":\"SHA256:x\",\"keyComment\":\"{comment}\",\
             \"path\":\"forwarded\",\"context\":{{\"contextQuality\":\"claimed\",\"user\":\"git\\u001b[2J\"}},\"outcome\":\"userDenied\",\
             \"latencyMs\":3,\"message\":\"no\\u001b]0;pwned\\u0007\"}}\n"
        )
    };
    std::fs::write(
        home.join("agent-log.jsonl.1"),
        agent_line(1_700_000_000_000, "older\u{202e}cod.exe"),
    )
    .unwrap();
    std::fs::write(
        home.join("agent-log.jsonl"),
        agent_line(1_700_000_001_000, "newer\\u001b[H"),
    )
    .unwrap();
    let signer_line = |n: u64, device: &str| {
        format!(
            "{{\"time\":{},\"requestID\":\"r{n}\",\"kind\":\"sign\",\"device\":\"{device}\",\
             \"destination\":\"git@host\\u001b[31m\",\"outcome\":\"approved\",\"decisionMs\":5}}\n",
            1_700_000_000_000 + n * 1000
        )
    };
    std::fs::write(
        home.join("signer-log.jsonl.2"),
        signer_line(1, "first\\u001b[2J"),
    )
    .unwrap();
    std::fs::write(
        home.join("signer-log.jsonl.1"),
        signer_line(2, "second\u{2066}"),
    )
    .unwrap();
    std::fs::write(home.join("signer-log.jsonl"), signer_line(3, "third")).unwrap();

    let run = |args: &[&str]| {
        let out = Command::new(VMUX)
            .args(args)
            .env("VMUX_HOME", &home)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let inert = |s: &str| !s.contains(['\u{1b}', '\u{7}', '\u{202e}', '\u{2066}']);

    let shown = run(&["log"]);
    assert!(inert(&shown), "{shown:?}");
    let older = shown
        .find("older\\u{202e}cod.exe")
        .unwrap_or_else(|| panic!("{shown}"));
    let newer = shown
        .find("newer\\e[H")
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(older < newer, "{shown}");
    assert!(
        shown.contains("user git\\e[2J") && shown.contains(": no\\e]0;pwned\\u{7}"),
        "{shown}"
    );
    let json = run(&["log", "--json"]);
    assert!(
        inert(&json) && json.contains("older\\u202ecod.exe"),
        "{json:?}"
    );
    assert_eq!(json.lines().count(), 2);

    let shown = run(&["signer", "log"]);
    assert!(inert(&shown), "{shown:?}");
    let order: Vec<usize> = ["first\\e[2J", "second\\u{2066}", "third"]
        .iter()
        .map(|d| shown.find(d).unwrap_or_else(|| panic!("{d} in {shown}")))
        .collect();
    assert!(order.is_sorted(), "{shown}");
    assert!(shown.contains("git@host\\e[31m"), "{shown}");
    let json = run(&["signer", "log", "--json"]);
    assert!(inert(&json) && json.lines().count() == 3, "{json:?}");

    // A key cache from an older build, its comment hostile.
    let key = ssh_key::PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
        ssh_key::Algorithm::Ed25519,
    )
    .unwrap();
    let blob = key.public_key().to_openssh().unwrap();
    let blob = blob.split_whitespace().nth(1).unwrap();
    std::fs::write(
        home.join("keys-cache.json"),
        format!(
            "{{\"version\":1,\"keys\":[{{\"algorithm\":\"ssh-ed25519\",\"publicKeyBlob\":\"{blob}\",\
             \"comment\":\"work\\u001b[2J\\u001b[Hpwned\",\"providerKind\":\"software\",\"fingerprint\":\"x\"}}]}}"
        ),
    )
    .unwrap();
    let sock = home.join("agent.sock");
    let mut agent = Proc::spawn(&home, &["agent"]);
    agent.expect("export SSH_AUTH_SOCK;", WAIT);
    let out = Command::new(VMUX)
        .args(["status", "--socket", sock.to_str().unwrap()])
        .env("VMUX_HOME", &home)
        .output()
        .unwrap();
    let status = text(&out);
    assert!(
        inert(&status) && status.contains("work\\e[2J\\e[Hpwned"),
        "{status:?}"
    );
}
