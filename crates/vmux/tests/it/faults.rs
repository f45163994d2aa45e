//! Faults, end to end with real processes: a `vmux signer` answered through
//! its pseudo-terminal, `vmux agent`, and OpenSSH's `ssh-keygen -Y`,
//! `ssh-add` and `ssh` as clients. The link is cut or silenced by a relay,
//! the signer restarted, the agent's state directory made read-only and
//! full, its clock set apart with libfaketime. docs/robustness.md says
//! what each shows. (A signer killed mid-request is in agent.rs:
//! `a_signer_killed_mid_request_fails_that_client_and_others_are_served`.)

use crate::support::clients;
use crate::support::faketime;
use crate::support::paired;
use crate::support::process;
use crate::support::relay;
use crate::support::sshd;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use clients::{text, wait_child};
use paired::{Paired, WAIT};
use process::{Proc, VMUX};
use relay::Relay;

/// Long enough that a failure before it is the fault being noticed, not
/// the agent giving up on the request.
const SIGN_TIMEOUT: &str = "40";

/// The signer on a fixed port, so that a restarted one is where the agent
/// last found it; the agent's socket outside its home, so that an agent
/// in a mount namespace of its own is still reachable.
fn paired() -> Paired {
    Paired::setup().fixed_port().socket_outside_home().start()
}

/// An agent connected to the signer through a relay, and a signature of
/// `msg` (in the file `name`) through it, its sheet showing on the signer.
fn pending_behind_relay(name: &str, msg: &[u8]) -> (Paired, Relay, Proc, Child) {
    let mut rig = paired();
    let relay = Relay::start(&rig.addr);
    let agent = rig.spawn_agent(
        &[],
        &["--signer", &relay.addr, "--sign-timeout", SIGN_TIMEOUT],
    );
    rig.wait_connected();
    let (child, _) = rig.start_sign(name, msg);
    rig.signer().expect("SSH Sign Request", WAIT);
    (rig, relay, agent, child)
}

#[test]
fn a_cut_link_fails_the_pending_request_at_once_and_the_agent_reconnects_by_itself() {
    let (mut rig, relay, mut agent, mut child) =
        pending_behind_relay("cut", b"pending when the link is cut\n");
    let cut = Instant::now();
    relay.cut();
    let (ok, err) = wait_child(&mut child, WAIT);
    let noticed = cut.elapsed();
    assert!(!ok, "signed over a cut link");
    assert!(
        noticed < Duration::from_secs(2),
        "the failure took {noticed:?} (sign timeout {SIGN_TIMEOUT} s): {err}"
    );
    agent.expect("lost the signer phone", WAIT);
    rig.wait_status("Disconnected");
    assert!(
        rig.request_log().contains("\"outcome\":\"unreachable\""),
        "{}",
        rig.request_log()
    );
    // The signer took the sheet down: nobody can approve a request whose
    // requester is gone.
    rig.signer().expect("Withdrawn", WAIT);

    // The link comes back; the agent finds it on its own.
    relay.restore();
    let restored = Instant::now();
    rig.wait_connected();
    let reconnected = restored.elapsed();
    rig.sign_approved("after-cut");
    assert_eq!(relay.relayed(), 2, "one session before the cut, one after");
    // Pinned keys carried the new session: nothing asked to pair again.
    let screen = &rig.signer.as_ref().unwrap().transcript;
    assert_eq!(screen.matches("wants to pair").count(), 1, "{screen}");
    eprintln!(
        "measured: cut link -> client failure {noticed:?}; relay back -> agent connected {reconnected:?}"
    );
}

#[test]
fn a_silent_link_is_declared_dead_by_keepalive_before_the_sign_timeout() {
    let (mut rig, relay, mut agent, mut child) =
        pending_behind_relay("silent", b"pending when the link goes silent\n");
    // Bytes vanish and nothing closes, as when a route dies.
    let silenced = Instant::now();
    relay.silence();
    let (ok, err) = wait_child(&mut child, Duration::from_secs(30));
    let noticed = silenced.elapsed();
    assert!(!ok, "signed over a silent link");
    // Declared dead after 15 s without a frame (5 s pings), well inside
    // the 40 s sign timeout; the slack is for a loaded machine.
    assert!(
        noticed < Duration::from_secs(20),
        "the failure took {noticed:?}: {err}"
    );
    agent.expect(
        "lost the signer phone: timed out waiting for the peer",
        WAIT,
    );
    // New connections through the relay work: the agent is back by itself.
    rig.wait_connected();
    rig.sign_approved("after-silence");
    eprintln!("measured: silent link -> client failure {noticed:?}");
}

#[test]
fn a_restarted_signer_is_reconnected_without_pairing() {
    let mut rig = paired();
    // At info, the agent says when it is connected: the moment to time.
    let mut agent = rig.spawn_agent(&["env", "VMUX_LOG=warn,vmux_agent=info"], &[]);
    agent.expect("connected to signer phone", WAIT);
    rig.wait_connected();
    rig.sign_approved("before-restart");

    let mut took = Vec::new();
    for round in 0..3 {
        rig.kill_signer();
        agent.expect("lost the signer phone", WAIT);
        rig.wait_status("Disconnected");
        rig.start_signer();
        let listening = Instant::now();
        agent.expect("connected to signer phone", WAIT);
        took.push(listening.elapsed());
        let status = rig.wait_connected();
        assert!(
            status.contains("Connected to phone"),
            "round {round}: {status}"
        );
    }
    rig.sign_approved("after-restart");
    // The same identities on both sides: no pairing code anywhere.
    let screen = &rig.signer.as_ref().unwrap().transcript;
    assert!(
        !screen.contains("wants to pair") && !screen.contains("code"),
        "{screen}"
    );
    assert!(!agent.transcript.contains("pair"), "{}", agent.transcript);
    eprintln!("measured: signer listening -> agent connected: {took:?}");
}

fn is_root() -> bool {
    text(&Command::new("id").arg("-u").output().unwrap()).trim() == "0"
}

/// Runs `script` in the mount namespace of process `pid`.
fn in_namespace_of(pid: u32, script: &str) -> std::process::Output {
    Command::new("nsenter")
        .args(["--target", &pid.to_string(), "--mount", "sh", "-c", script])
        .output()
        .unwrap()
}

/// The agent's home on a 512 KiB tmpfs of its own (a mount namespace made
/// for it), read-only when it starts, then writable but full, then with
/// room again. Throughout, it serves the signer's key and forwards
/// signatures from memory, says once per kind and cause what it could not
/// save and what to do, and catches up when it can.
#[test]
fn a_read_only_then_full_state_directory_is_served_from_memory() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs in a mount namespace");
        return;
    }
    let mut rig = paired();
    let mnt = rig.dir.path().join("state");
    std::fs::create_dir(&mnt).unwrap();
    let mnt_s = mnt.to_str().unwrap().to_owned();
    let agent_home = rig.device_home.to_str().unwrap().to_owned();
    // The same signer under another name for its address: reaching it
    // there means recording the new address in trust.json, which fails.
    let port = rig.addr.rsplit(':').next().unwrap().to_owned();
    let signer = format!("localhost:{port}");
    const SETUP: &str = r#"set -e
        mount -t tmpfs -o size=512k,mode=0700 vmux-faults "$1"
        cp -a "$2/." "$1/"
        mount -o remount,ro "$1"
        export VMUX_HOME="$1"
        shift 2
        exec "$@""#;
    let mut agent = rig.spawn_agent(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            SETUP,
            "sh",
            &mnt_s,
            &agent_home,
        ],
        &["--signer", &signer, "--sign-timeout", SIGN_TIMEOUT],
    );
    let pid = agent.pid();
    let log_path = format!("{mnt_s}/agent-log.jsonl");
    let cache_path = format!("{mnt_s}/keys-cache.json");

    // Read-only from the start: it connects, lists and signs all the same.
    let status = rig.wait_connected();
    let fp = status
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap()
        .to_owned();
    agent.expect(
        &format!("cannot record that it was reached at {signer}"),
        WAIT,
    );
    let line = agent.expect(
        &format!("cannot save the key cache to {cache_path}: "),
        WAIT,
    );
    assert!(
        line.contains("Read-only file system") && line.contains("remount it read-write"),
        "{line}"
    );
    assert!(text(&rig.ssh_add(&["-l"])).contains(&fp));
    rig.sign_approved("read-only-1");
    let line = agent.expect(
        &format!("cannot save the request log to {log_path}: "),
        WAIT,
    );
    assert!(
        line.contains("Read-only file system") && line.contains("kept in memory"),
        "{line}"
    );
    rig.sign_approved("read-only-2");
    let status = rig.wait_status("Not saved, kept in memory: the request log");
    assert!(
        status.contains("Not saved, kept in memory: the key cache"),
        "{status}"
    );

    // Writable, but full.
    let fill = in_namespace_of(
        pid,
        &format!("mount -o remount,rw {mnt_s} && ! dd if=/dev/zero of={mnt_s}/fill bs=64k"),
    );
    assert!(
        fill.status.success() && text(&fill).contains("No space left on device"),
        "{}",
        text(&fill)
    );
    assert!(rig.vmux(&["refresh"]).status.success());
    let line = agent.expect(
        &format!("cannot save the key cache to {cache_path}: "),
        WAIT,
    );
    assert!(
        line.contains("No space left on device") && line.contains("Free some space"),
        "{line}"
    );
    rig.sign_approved("full");
    let line = agent.expect(
        &format!("cannot save the request log to {log_path}: "),
        WAIT,
    );
    assert!(line.contains("No space left on device"), "{line}");
    assert!(text(&rig.ssh_add(&["-l"])).contains(&fp));

    // Room again: the held entries are written, in order, and it says so.
    let freed = in_namespace_of(pid, &format!("rm {mnt_s}/fill"));
    assert!(freed.status.success(), "{}", text(&freed));
    rig.sign_approved("room-again");
    agent.expect(
        &format!(
            "saved the request log to {log_path} again; 3 entries kept in memory meanwhile were written"
        ),
        WAIT,
    );
    assert!(rig.vmux(&["refresh"]).status.success());
    agent.expect(&format!("saved the key cache to {cache_path} again"), WAIT);
    let status = rig.wait_connected();
    assert!(!status.contains("Not saved"), "{status}");
    let shown = in_namespace_of(pid, &format!("VMUX_HOME={mnt_s} {VMUX} log"));
    assert_eq!(
        text(&shown).matches("approved").count(),
        4,
        "{}",
        text(&shown)
    );
    let cache = in_namespace_of(pid, &format!("cat {cache_path}"));
    assert!(text(&cache).contains(&fp), "{}", text(&cache));

    // Said once per kind and cause, however many requests met it.
    let said = |what: &str| agent.transcript.matches(what).count();
    assert_eq!(said("cannot record that it was reached"), 1);
    assert_eq!(said("cannot save the key cache"), 2, "{}", agent.transcript);
    assert_eq!(
        said("cannot save the request log"),
        2,
        "{}",
        agent.transcript
    );
    assert!(!agent.transcript.contains("panicked"));
}

/// The `time` of the request log's last entry: the agent's clock.
fn last_logged_time(log: &str) -> i64 {
    let line = log.lines().last().unwrap();
    let at = line.find("\"time\":").unwrap() + "\"time\":".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The agent's wall clock set apart from the signer's with libfaketime
/// (LD_PRELOAD, so the agent itself is the process; its monotonic clock
/// is left alone, see docs/robustness.md). 20 s either way is inside the
/// signer's 30 s tolerance: an ssh login and an SSHSIG signature work.
/// 5 minutes either way: refused with `requestExpired` before any sheet,
/// the client fails, and the agent's log, `vmux log` and the signer's log
/// say so, the agent's naming clock skew.
#[test]
fn clocks_twenty_seconds_apart_work_and_five_minutes_apart_fail_naming_skew() {
    let Some(lib) = faketime::libfaketime() else {
        panic!("libfaketime is not installed: apt-get install faketime (.ci/run installs it)");
    };
    let mut rig = paired();
    let line = std::fs::read_to_string(&rig.pubkey).unwrap();
    let server = sshd::Sshd::start(&rig.dir.path().join("sshd"), &line, None);
    let skewed = |rig: &Paired, offset_s: i64| {
        let wrapper = faketime::wrapper(&lib, offset_s);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let agent = rig.spawn_agent(&wrapper, &["--sign-timeout", SIGN_TIMEOUT]);
        rig.wait_connected();
        agent
    };
    // The agent stamped its last request `offset_s` from our clock, some
    // time between `since` (ours, before the request) and now.
    let assert_apart = |rig: &Paired, offset_s: i64, since: i64| {
        let stamped = last_logged_time(&rig.request_log()) - offset_s * 1000;
        assert!(
            (since - 1000..=now_ms() + 1000).contains(&stamped),
            "the agent's clock is not {offset_s:+} s from ours: {} ms off",
            stamped - since
        );
    };

    // +20 s: an ssh login, approved.
    let agent = skewed(&rig, 20);
    let since = now_ms();
    let sock = rig.sock();
    let login = std::thread::scope(|s| {
        let login = s.spawn(|| server.ssh(&sock, &[], "echo logged-in"));
        rig.approve();
        login.join().unwrap()
    });
    assert!(text(&login).contains("logged-in"), "{}", text(&login));
    assert_apart(&rig, 20, since);
    drop(agent);

    // -20 s: an SSHSIG signature, approved.
    let agent = skewed(&rig, -20);
    let since = now_ms();
    rig.sign_approved("behind-20s");
    assert_apart(&rig, -20, since);
    drop(agent);

    // +5 min: the login fails, refused before any sheet.
    let mut agent = skewed(&rig, 300);
    let since = now_ms();
    let started = Instant::now();
    let login = server.ssh(&sock, &[], "echo logged-in");
    assert!(!login.status.success(), "{}", text(&login));
    assert!(
        text(&login).contains("Permission denied"),
        "{}",
        text(&login)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let said = agent.expect("the signer refused to sign with \"work\"", WAIT);
    assert!(
        said.contains("in the future by the signer's clock")
            && said.contains("(clock skew)")
            && said.contains("(requestExpired)"),
        "{said}"
    );
    assert_apart(&rig, 300, since);
    drop(agent);

    // -5 min: the signature fails the same way, "expired" this time.
    let mut agent = skewed(&rig, -300);
    let since = now_ms();
    let (mut child, _) = rig.start_sign("behind-5min", b"five minutes late\n");
    let (ok, err) = wait_child(&mut child, WAIT);
    assert!(!ok, "signed with the clocks 5 minutes apart: {err}");
    assert_apart(&rig, -300, since);
    let said = agent.expect("the signer refused to sign with \"work\"", WAIT);
    assert!(
        said.contains("expired") && said.contains("(clock skew)"),
        "{said}"
    );

    // The request log keeps the signer's words, and `vmux log` shows them.
    let log = rig.request_log();
    let expired: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"outcome\":\"requestExpired\""))
        .collect();
    assert_eq!(expired.len(), 2, "{log}");
    assert!(expired.iter().all(|l| l.contains("clock skew")), "{log}");
    let shown = text(&rig.vmux(&["log"]));
    assert_eq!(shown.matches("requestExpired").count(), 2, "{shown}");
    assert_eq!(shown.matches("clock skew").count(), 2, "{shown}");
    assert_eq!(shown.matches("approved").count(), 2, "{shown}");
    // And so does the signer's own log.
    let signer_log = Command::new(VMUX)
        .args(["signer", "log"])
        .env("VMUX_HOME", &rig.signer_home)
        .output()
        .unwrap();
    assert_eq!(
        text(&signer_log).matches("requestExpired").count(),
        2,
        "{}",
        text(&signer_log)
    );
}
