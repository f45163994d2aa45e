//! TPM 2.0 identities, against a software TPM (swtpm) each test starts:
//! `vmux key new NAME --store tpm` makes a P-256 key inside the TPM that
//! logs in to a real sshd after approval and its PIN; wrong PINs are
//! counted by the TPM and answer `verificationFailed`; a TPM in lockout
//! gets an error that says what to do; nothing private lands in VMUX_HOME.
//!
//! Missing swtpm, tpm2-tools or tpm2-pkcs11: SKIPPED, unless
//! `VMUX_REQUIRE_TPM=1` (CI) fails the test.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::sshd;
use crate::support::swtpm;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::thread::JoinHandle;

use clients::text;
use paired::{Paired, WAIT};
use process::VMUX;

const PIN: &str = "4711-tpm";

fn vmux(home: &Path, env: &[(String, String)], args: &[&str], pin: Option<&str>) -> Output {
    let mut command = Command::new(VMUX);
    command
        .args(args)
        .env("VMUX_HOME", home)
        .env("VMUX_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(pin) = pin {
        command.env("VMUX_PASSPHRASE", pin);
    }
    command.output().unwrap()
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_tpm_key_logs_in_after_its_pin_counts_wrong_pins_and_stays_in_the_tpm() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(tpm) = swtpm::start(scratch.path(), "a_tpm_key_logs_in") else {
        return;
    };
    let env = tpm.env();
    let make = |signer_home: &Path| {
        let made = vmux(
            signer_home,
            &env,
            &["key", "new", "t1", "--store", "tpm"],
            Some(PIN),
        );
        assert!(made.status.success(), "{}", text(&made));
        assert!(
            text(&made).contains("(ecdsa-sha2-nistp256, tpm)"),
            "{}",
            text(&made)
        );
        let list = text(&vmux(signer_home, &env, &["key", "list"], None));
        let row = list.lines().find(|l| l.starts_with("t1 ")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[3..5], ["tpm", "hardwareToken"], "{list}");
        let show = text(&vmux(signer_home, &env, &["key", "show", "t1"], None));
        assert!(show.contains("Store:       tpm ("), "{show}");
        assert!(show.contains("Provider:    hardwareToken"), "{show}");
    };
    let mut setup = Paired::setup().identities(&[]).more_identities(make);
    for (k, v) in &env {
        setup = setup.signer_env(k, v);
    }
    let mut rig = setup.start();
    let _agent = rig.spawn_agent(&[], &[]);
    rig.wait_status("t1  SHA256:");
    let authorized = std::fs::read_to_string(&rig.pubkey).unwrap();
    let server = Arc::new(sshd::Sshd::start(
        &rig.dir.path().join("sshd"),
        &authorized,
        None,
    ));
    let sock = rig.sock();
    let login = |server: &Arc<sshd::Sshd>| -> JoinHandle<Output> {
        let (server, sock) = (Arc::clone(server), sock.clone());
        std::thread::spawn(move || server.ssh(&sock, &[], "echo logged-in"))
    };

    // Approve, then the PIN: the TPM signs and sshd lets us in.
    let ssh = login(&server);
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("PIN for \"t1\": ", WAIT);
    rig.signer().type_line(PIN);
    let out = ssh.join().unwrap();
    assert!(
        text(&out).contains("logged-in"),
        "{}\n{}",
        text(&out),
        server.log()
    );
    assert_eq!(tpm.lockout_counter(), 0);

    // Three wrong PINs: each is a failed authorization the TPM counts, and
    // the request answers verificationFailed.
    let ssh = login(&server);
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("a");
    for attempt in 1..=3 {
        rig.signer().expect("PIN for \"t1\": ", WAIT);
        rig.signer().type_line(&format!("wrong-{attempt}"));
    }
    rig.signer()
        .expect("Verification failed; request refused", WAIT);
    let out = ssh.join().unwrap();
    assert!(!text(&out).contains("logged-in"), "{}", text(&out));
    assert!(
        rig.request_log().contains("verificationFailed"),
        "{}",
        rig.request_log()
    );
    assert_eq!(tpm.lockout_counter(), 3, "the TPM counts each wrong PIN");

    // The TPM is now in lockout (swtpm allows 3 failures): even the right
    // PIN is refused, with what to do about it.
    let ssh = login(&server);
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("PIN for \"t1\": ", WAIT);
    rig.signer().type_line(PIN);
    rig.signer().expect(
        "Could not sign: the TPM is in dictionary-attack lockout",
        WAIT,
    );
    rig.signer()
        .expect("tpm2_dictionarylockout --clear-lockout", WAIT);
    let out = ssh.join().unwrap();
    assert!(!text(&out).contains("logged-in"), "{}", text(&out));

    // Cleared with the (empty) lockout authorization, the right PIN signs again.
    tpm.tool("tpm2_dictionarylockout", &["--clear-lockout"]);
    let ssh = login(&server);
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("PIN for \"t1\": ", WAIT);
    rig.signer().type_line(PIN);
    let out = ssh.join().unwrap();
    assert!(
        text(&out).contains("logged-in"),
        "{}\n{}",
        text(&out),
        server.log()
    );

    // Nothing private in the state dir: no OpenSSH private key, no PEM.
    // (The CA's own key, ca.key, is the one private key the signer keeps
    // there; it is checked to be the CA's, not t1's.)
    let identity = std::fs::read_to_string(rig.signer_home.join("identities.json")).unwrap();
    assert!(identity.contains("\"kind\": \"tpm\""), "{identity}");
    for (path, bytes) in files(&rig.signer_home) {
        if path == rig.signer_home.join("ca.key") {
            // The key in it is the one `vmux ca show` gives servers to trust.
            let ca = ssh_key::PrivateKey::from_openssh(&bytes).unwrap();
            let line = ca.public_key().to_openssh().unwrap();
            let shown = vmux(&rig.signer_home, &[], &["ca", "show"], None);
            let shown = String::from_utf8(shown.stdout).unwrap();
            let key = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            assert_eq!(key(&shown), key(&line));
            continue;
        }
        for header in [&b"-----BEGIN OPENSSH PRIVATE KEY-----"[..], b"-----BEGIN"] {
            assert!(
                !contains(&bytes, header),
                "{} holds {:?}",
                path.display(),
                String::from_utf8_lossy(header)
            );
        }
    }
}

/// A TPM that does not answer, and a name too long for a token label, get
/// errors that say what to do.
#[test]
fn a_missing_tpm_says_what_to_check() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(tpm) = swtpm::start(scratch.path(), "a_missing_tpm_says_what_to_check") else {
        return;
    };
    let home = scratch.path().join("home");
    let mut env = tpm.env();
    drop(tpm);
    let out = vmux(
        &home,
        &env,
        &["key", "new", "t2", "--store", "tpm"],
        Some(PIN),
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("no TPM answers"), "{}", text(&out));
    assert!(text(&out).contains("/dev/tpmrm0"), "{}", text(&out));

    let long = "a-name-longer-than-a-token-label-has-room";
    let out = vmux(
        &home,
        &env,
        &["key", "new", long, "--store", "tpm"],
        Some(PIN),
    );
    assert!(
        text(&out).contains("at most 27 characters"),
        "{}",
        text(&out)
    );

    env.retain(|(k, _)| k != "TPM2_PKCS11_TCTI");
    let out = vmux(
        &home,
        &env,
        &[
            "key",
            "new",
            "t3",
            "--store",
            "tpm",
            "--module",
            "/nonexistent/libtpm2_pkcs11.so",
        ],
        Some(PIN),
    );
    assert!(text(&out).contains("libtpm2-pkcs11-1"), "{}", text(&out));
}

/// The binary links no TPM library: tpm2-pkcs11 is loaded at run time by
/// `--store tpm` only, so `vmux up` and the tests run where there is none.
#[test]
fn the_binary_needs_no_tpm_library() {
    let out = Command::new("ldd").arg(VMUX).output().unwrap();
    let libraries = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    for tpm in ["tss2", "tpm2"] {
        assert!(!libraries.contains(tpm), "links {tpm}:\n{libraries}");
    }
}
