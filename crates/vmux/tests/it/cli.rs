//! The command line as a new user meets it (issue 25, item 5): help that
//! names the environment, a version with its commit, passphrase entry that
//! asks again, key changes that reach running agents at once, the full
//! pairing command of a loopback signer, and a background agent that keeps
//! its log off the terminal.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::clients::text;
use crate::support::paired::{PASS, Paired, WAIT};
use crate::support::process::{Proc, VMUX};

fn vmux(home: &Path, args: &[&str]) -> Output {
    Command::new(VMUX)
        .args(args)
        .env("VMUX_HOME", home)
        .env("VMUX_LOG", "warn")
        .env("VMUX_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn help_names_the_environment_and_version_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&vmux(dir.path(), &["--help"]));
    for var in ["VMUX_HOME", "VMUX_LOG", "VMUX_PASSPHRASE"] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
    let version = text(&vmux(dir.path(), &["--version"]));
    // Built from this git checkout: `vmux 0.1.0 (abc1234)`, a real commit.
    let commit = version
        .trim()
        .strip_suffix(')')
        .and_then(|v| v.rsplit_once(" ("))
        .map(|(_, c)| c.to_owned())
        .unwrap_or_else(|| panic!("no commit in {version:?}"));
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(known.success(), "{commit} is no commit here");
}

/// On a terminal: an empty passphrase is refused before the confirmation,
/// a mismatch asks again, and what is accepted is said first.
#[test]
fn a_new_passphrase_is_asked_again_until_it_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut new = Proc::spawn_in_pty(dir.path(), &["key", "new", "work"]);
    new.expect("Any text but an empty one is accepted", WAIT);
    new.expect("New passphrase for \"work\": ", WAIT);
    new.type_line("");
    new.expect("An empty one is not accepted", WAIT);
    new.expect("New passphrase for \"work\": ", WAIT);
    new.type_line(PASS);
    new.expect("Again, to confirm: ", WAIT);
    new.type_line("something else");
    new.expect("did not match; once more", WAIT);
    new.expect("New passphrase for \"work\": ", WAIT);
    new.type_line(PASS);
    new.expect("Again, to confirm: ", WAIT);
    new.type_line(PASS);
    assert!(new.wait_exit(WAIT).success(), "{}", new.transcript);
    let listed = text(&vmux(dir.path(), &["key", "list"]));
    assert!(listed.contains("work"), "{listed}");
}

/// Polls the agent's status until `done` holds.
fn wait_status_until(rig: &Paired, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = text(&rig.vmux(&["status"]));
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `key new`, `key disable`, `key enable` and `key import` in another
/// process reach the connected agent's listing with no `vmux refresh`.
#[test]
fn key_changes_on_a_running_signer_reach_the_agent() {
    let rig = Paired::setup().without_ca().start();
    let _agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();
    let home = rig.signer_home.clone();

    let made = vmux(&home, &["key", "new", "second"]);
    assert!(made.status.success(), "{}", text(&made));
    rig.wait_status("second  SHA256:");
    let off = vmux(&home, &["key", "disable", "second"]);
    assert!(off.status.success(), "{}", text(&off));
    wait_status_until(&rig, "without second", |s| !s.contains("second  SHA256:"));
    let on = vmux(&home, &["key", "enable", "second"]);
    assert!(on.status.success(), "{}", text(&on));
    rig.wait_status("second  SHA256:");

    let file = rig.dir.path().join("id_imported");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", PASS, "-C", "imported", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    let imported = vmux(
        &home,
        &[
            "key",
            "import",
            file.to_str().unwrap(),
            "--name",
            "imported",
        ],
    );
    assert!(imported.status.success(), "{}", text(&imported));
    rig.wait_status("imported  SHA256:");
}

/// A loopback signer is not advertised: the pairing hint gives the full
/// command, with its address.
#[test]
fn a_loopback_signer_hints_the_whole_pairing_command() {
    let mut rig = Paired::setup().without_ca().start();
    let wanted = format!("run `vmux pair --signer {}` on the new device", rig.addr);
    let signer = rig.signer();
    assert!(signer.transcript.contains(&wanted), "{}", signer.transcript);
}

/// Starts `vmux agent` as a shell job (`&`, job control on) in a terminal
/// and returns the terminal's output; its pid is written to `pid`.
fn background_agent(home: &Path, pid: &Path, extra: &str) -> Proc {
    let script = home.join("start.sh");
    std::fs::write(
        &script,
        format!(
            "set -m\n'{VMUX}' agent --socket '{}' --cert-validity 0 {extra} >/dev/null &\n\
             echo $! > '{}'\nwait\n",
            home.join("agent.sock").display(),
            pid.display()
        ),
    )
    .unwrap();
    let mut command = Command::new("script");
    command.args(["-qfec", &format!("sh '{}'", script.display()), "/dev/null"]);
    command.env("VMUX_LOG", "info");
    Proc::start(command, home)
}

fn stop(pid: &Path) {
    let deadline = Instant::now() + WAIT;
    let pid = loop {
        if let Ok(p) = std::fs::read_to_string(pid)
            && !p.trim().is_empty()
        {
            break p.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "no pid written");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = Command::new("kill").arg(&pid).status();
}

/// `vmux agent &` on a terminal logs to its file, saying so once; with
/// `--log-stderr` the lines stay on the terminal.
#[test]
fn a_background_agent_logs_to_its_file_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("device");
    std::fs::create_dir_all(&home).unwrap();
    let pid = dir.path().join("agent.pid");
    let mut shell = background_agent(&home, &pid, "");
    shell.expect("started in the background, so it logs to", WAIT);
    let log = home.join("vmux-agent.log");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("not paired with a signer")
    {
        assert!(
            Instant::now() < deadline,
            "nothing logged to {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let drawn = shell.wait_any(&["not paired"], Duration::from_millis(500));
    stop(&pid);
    assert!(drawn.is_none(), "{}", shell.transcript);

    let home = dir.path().join("loud");
    std::fs::create_dir_all(&home).unwrap();
    let pid = dir.path().join("loud.pid");
    let mut shell = background_agent(&home, &pid, "--log-stderr");
    shell.expect("not paired with a signer", WAIT);
    stop(&pid);
    assert!(
        !shell.transcript.contains("logs to"),
        "{}",
        shell.transcript
    );
}
