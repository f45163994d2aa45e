//! `vmux key` and `vmux ca` as a script runs them: VMUX_HOME in a tempdir,
//! the passphrase through VMUX_PASSPHRASE or stdin.

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
fn ca_init_show_policy_and_krl() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    assert!(fails(home, &["ca", "show"], None).contains("vmux ca init"));
    let line = ok(home, &["ca", "init"], Some("ca pw"));
    assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
    assert!(fails(home, &["ca", "init"], Some("ca pw")).contains("already exists"));
    assert_eq!(ok(home, &["ca", "show"], None), line, "the CA is made once");
    // The line is a valid public key, and the key file opens only with the passphrase.
    let pub_path = home.join("ca-line.pub");
    std::fs::write(&pub_path, &line).unwrap();
    let keygen = |args: &[&str]| Command::new("ssh-keygen").args(args).output().unwrap();
    assert!(
        keygen(&["-l", "-f", pub_path.to_str().unwrap()])
            .status
            .success()
    );
    let key = home.join("ca.key");
    let opened = keygen(&["-y", "-P", "ca pw", "-f", key.to_str().unwrap()]);
    assert!(opened.status.success());
    assert_eq!(
        String::from_utf8(opened.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1),
        line.split_whitespace().nth(1)
    );
    assert!(
        !keygen(&["-y", "-P", "", "-f", key.to_str().unwrap()])
            .status
            .success()
    );
    assert!(fails(home, &["ca", "protect"], Some("x")).contains("already protected"));

    let policy = ok(home, &["ca", "policy"], None);
    assert!(policy.contains("Max validity: 8h"), "{policy}");
    assert!(policy.contains("Auto-issue:   on"), "{policy}");
    assert!(
        policy.contains("Extensions:   permit-agent-forwarding,permit-port-forwarding,permit-pty"),
        "{policy}"
    );
    assert!(policy.contains("Source:       any"), "{policy}");

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
            "--extensions",
            "permit-pty,permit-X11-forwarding",
            "--source-address",
            "10.9.9.9,2001:db8::/32",
        ],
        None,
    );
    assert!(set.contains("Policy saved."), "{set}");
    let policy = ok(home, &["ca", "policy"], None);
    assert!(policy.contains("Max validity: 30m"), "{policy}");
    assert!(policy.contains("Principals:   alice,deploy"), "{policy}");
    assert!(policy.contains("Auto-issue:   off"), "{policy}");
    assert!(
        policy.contains("Extensions:   permit-pty,permit-X11-forwarding"),
        "{policy}"
    );
    assert!(
        policy.contains("Source:       10.9.9.9/32,2001:db8::/32"),
        "{policy}"
    );
    let cleared = ok(
        home,
        &[
            "ca",
            "policy",
            "--extensions",
            "none",
            "--source-address",
            "none",
        ],
        None,
    );
    assert!(cleared.contains("Extensions:   none"), "{cleared}");
    assert!(cleared.contains("Source:       any"), "{cleared}");
    assert!(ok(home, &["ca", "policy", "--max-validity", "1d"], None).contains("Max validity: 1d"));

    assert!(
        fails(home, &["ca", "policy", "--max-validity", "8x"], None).contains("not a duration")
    );
    assert!(
        fails(home, &["ca", "policy", "--max-validity", "30d"], None).contains("at most 7 days")
    );
    assert!(
        fails(home, &["ca", "policy", "--extensions", "permit-all"], None)
            .contains("not an extension vmux grants")
    );
    assert!(
        fails(
            home,
            &["ca", "policy", "--source-address", "10.0.0.1/8"],
            None
        )
        .contains("host bits")
    );

    // The KRL exists before anything is revoked, for RevokedKeys to name.
    let krl = ok(home, &["ca", "krl"], None);
    let krl = krl.trim();
    assert_eq!(krl, home.join("ca.krl").to_str().unwrap());
    let listed = keygen(&["-Q", "-l", "-f", krl]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("# KRL version 1"));
    assert_eq!(ok(home, &["ca", "krl"], None).trim(), krl, "not rewritten");
    assert!(fails(home, &["ca", "revoke", "nobody"], None).contains("issued nothing to"));
    let revoked = ok(
        home,
        &["ca", "revoke", "--serial", "42", "--key-id", "vmux:x:y"],
        None,
    );
    assert!(revoked.contains("KRL, version 2"), "{revoked}");
    let listed = String::from_utf8(keygen(&["-Q", "-l", "-f", krl]).stdout).unwrap();
    assert!(
        listed.contains("serial: 42") && listed.contains("id: vmux:x:y"),
        "{listed}"
    );
}

/// A name the person typed comes back in errors quoted, never raw: an
/// escape sequence in it must not drive the terminal, whichever command
/// and whichever error quotes it.
#[test]
fn errors_never_echo_an_escape_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "x\u{1b}[2J\u{202e}";
    for args in [
        &["key", "new", evil][..],
        &["key", "show", evil],
        &["key", "policy", evil, "--forwarded", "deny"],
        &["hosts", "remove", evil],
        &["peers", "remove", evil],
        &["pair", "--signer", &format!("{evil}:1")],
    ] {
        let err = fails(dir.path(), args, Some("pass phrase"));
        assert!(
            vmux_proto::text::first_forbidden(&err.replace('\n', "")).is_none(),
            "vmux {args:?} echoed a control character: {err:?}"
        );
        assert!(
            err.contains("x\\"),
            "vmux {args:?} does not quote the name: {err}"
        );
    }
}
