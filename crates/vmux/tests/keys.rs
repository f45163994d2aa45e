//! `vmux key` and `vmux ca` as a script runs them: VMUX_HOME in a tempdir,
//! the passphrase through VMUX_PASSPHRASE or stdin.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const VMUX: &str = env!("CARGO_BIN_EXE_vmux");

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn vmux(home: &Path, args: &[&str], passphrase: Option<&str>, stdin: &str) -> Run {
    let mut command = Command::new(VMUX);
    command
        .args(args)
        .env("VMUX_HOME", home)
        .env("VMUX_LOG", "warn")
        .env_remove("VMUX_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = passphrase {
        command.env("VMUX_PASSPHRASE", p);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        ok: status.success(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn ok(home: &Path, args: &[&str], passphrase: Option<&str>) -> String {
    let run = vmux(home, args, passphrase, "");
    assert!(run.ok, "vmux {args:?} failed: {}{}", run.stdout, run.stderr);
    run.stdout
}

fn fails(home: &Path, args: &[&str], passphrase: Option<&str>) -> String {
    let run = vmux(home, args, passphrase, "");
    assert!(!run.ok, "vmux {args:?} should fail: {}", run.stdout);
    run.stderr
}

#[test]
fn key_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    assert!(
        ok(home, &["key", "list"], None)
            .contains("No identities. Make one with `vmux key new NAME`")
    );

    let made = ok(home, &["key", "new", "work"], Some("pw one"));
    assert!(
        made.contains("Created identity \"work\" (ecdsa-sha2-nistp256, software)"),
        "{made}"
    );
    assert!(made.contains("Fingerprint: SHA256:"), "{made}");
    let line = made.lines().last().unwrap();
    assert!(
        line.starts_with("ecdsa-sha2-nistp256 AAAA") && line.ends_with(" work"),
        "{line}"
    );

    // The passphrase can come on stdin too.
    let run = vmux(
        home,
        &["key", "new", "ed", "--type", "ed25519"],
        None,
        "pw two\n",
    );
    assert!(run.ok, "{}", run.stderr);
    // The stored file opens with ssh-keygen and that passphrase only.
    let key = home.join("keys/ed.key");
    let out = Command::new("ssh-keygen")
        .args(["-y", "-P", "pw two", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = ok(home, &["key", "show", "ed"], None);
    let public = String::from_utf8(out.stdout).unwrap();
    assert!(
        shown.contains(public.split_whitespace().nth(1).unwrap()),
        "{shown}"
    );
    assert!(shown.lines().last().unwrap().ends_with(" ed"), "{shown}");

    assert!(fails(home, &["key", "new", "ed"], Some("x")).contains("already exists"));
    assert!(fails(home, &["key", "new", "a/b"], Some("x")).contains("not a valid identity name"));
    assert!(fails(home, &["key", "new", "empty"], Some("")).contains("empty passphrase"));

    ok(home, &["key", "disable", "ed"], None);
    let list = ok(home, &["key", "list"], None);
    let rows: Vec<&str> = list.lines().collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert!(
        rows[0].starts_with("NAME")
            && rows[0].contains("FINGERPRINT")
            && rows[0].contains("ENABLED")
    );
    let col = rows[0].find("FINGERPRINT").unwrap();
    assert_eq!(rows[1].find("SHA256:"), Some(col), "aligned:\n{list}");
    assert!(
        rows[1].starts_with("work") && rows[1].contains("software") && rows[1].ends_with("yes"),
        "{list}"
    );
    assert!(
        rows[2].starts_with("ed") && rows[2].contains("ssh-ed25519") && rows[2].ends_with("no"),
        "{list}"
    );
    ok(home, &["key", "enable", "ed"], None);
    assert!(
        ok(home, &["key", "list"], None)
            .lines()
            .nth(2)
            .unwrap()
            .ends_with("yes")
    );

    assert!(ok(home, &["key", "remove", "ed"], None).contains("deleted its key file"));
    assert!(!key.exists());
    assert!(fails(home, &["key", "show", "ed"], None).contains("vmux key list"));
    assert_eq!(ok(home, &["key", "list"], None).lines().count(), 2);
}

#[test]
fn key_import() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("id_rsa");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "3072", "-N", "file pw", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = file.to_str().unwrap();
    assert!(fails(&home, &["key", "import", path], Some("nope")).contains("wrong passphrase"));
    let imported = ok(&home, &["key", "import", path], Some("file pw"));
    assert!(
        imported.contains("Imported identity \"id_rsa\" (ssh-rsa)"),
        "{imported}"
    );

    let plain = dir.path().join("plain");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success());
    let run = vmux(
        &home,
        &["key", "import", plain.to_str().unwrap(), "--name", "p"],
        Some("new pw"),
        "",
    );
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stderr.contains("is not encrypted"), "{}", run.stderr);
    let out = Command::new("ssh-keygen")
        .args(["-y", "-P", "new pw", "-f"])
        .arg(home.join("keys/p.key"))
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn ca_show_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let line = ok(home, &["ca", "show"], None);
    assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
    assert_eq!(ok(home, &["ca", "show"], None), line, "the CA is made once");
    // The line is a valid public key.
    let pub_path = home.join("ca.pub");
    std::fs::write(&pub_path, &line).unwrap();
    assert!(
        Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&pub_path)
            .output()
            .unwrap()
            .status
            .success()
    );

    let policy = ok(home, &["ca", "policy"], None);
    assert!(policy.contains("Max validity: 8h"), "{policy}");
    assert!(policy.contains("Auto-issue:   on"), "{policy}");

    let set = ok(
        home,
        &[
            "ca",
            "policy",
            "--max-validity",
            "30m",
            "--principals",
            "alice,deploy",
            "--auto-issue",
            "off",
        ],
        None,
    );
    assert!(set.contains("Policy saved."), "{set}");
    let policy = ok(home, &["ca", "policy"], None);
    assert!(policy.contains("Max validity: 30m"), "{policy}");
    assert!(policy.contains("Principals:   alice,deploy"), "{policy}");
    assert!(policy.contains("Auto-issue:   off"), "{policy}");
    assert!(ok(home, &["ca", "policy", "--max-validity", "1d"], None).contains("Max validity: 1d"));

    assert!(
        fails(home, &["ca", "policy", "--max-validity", "8x"], None).contains("not a duration")
    );
    assert!(
        fails(home, &["ca", "policy", "--max-validity", "30d"], None).contains("at most 7 days")
    );
}
