//! PKCS#11 token keys beyond the first round's P-256, each logging in to a
//! real sshd through the agent after approval and the token's PIN: an
//! Ed25519 key made on SoftHSM2, and a key on a token that shows its public
//! keys only after login (added with `--existing`, which then asks the PIN).
//!
//! Missing SoftHSM2: SKIPPED, unless `VMUX_REQUIRE_SOFTHSM=1` (CI) fails it.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::softhsm;
use crate::support::sshd;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use clients::text;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use paired::{Paired, WAIT};
use process::VMUX;
use softhsm::SoftHsm;

const TOKEN: &str = "vmux-tokens";
const PIN: &str = "1234";
/// Set in the child that puts the hidden key pair on the token.
const CHILD: &str = "VMUX_TOKENS_TEST_CHILD";
/// DER of the P-256 curve OID.
const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Not a test on its own: the child process (with `SOFTHSM2_CONF` set,
/// which this threaded process cannot set for itself) that makes a P-256
/// key pair whose public object is private, as some tokens keep theirs.
#[test]
fn hidden_key_pair_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let module = vmux_keys::pkcs11::find_softhsm_module().unwrap();
    let ctx = Pkcs11::new(module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(PIN)))
        .unwrap();
    let label = b"hidden".to_vec();
    session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Verify(true),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Label(label.clone()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(label),
            ],
        )
        .unwrap();
    session.logout().unwrap();
}

#[test]
fn ed25519_and_login_only_token_keys_log_in_to_sshd() {
    let Some(hsm) = SoftHsm::find() else { return };
    let env = hsm.env();

    let make = |signer_home: &Path| {
        hsm.init_token(TOKEN, PIN);
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["tokens::hidden_key_pair_child", "--exact", "--nocapture"])
            .env(CHILD, "1")
            .envs(env)
            .output()
            .unwrap();
        assert!(
            child.status.success() && text(&child).contains("1 passed"),
            "{}",
            text(&child)
        );
        let module = hsm.module();
        let key_new = |args: &[&str], pin: Option<&str>| {
            let mut command = Command::new(VMUX);
            command
                .args(["key", "new"])
                .args(args)
                .args(["--store", "pkcs11", "--token", TOKEN, "--module", module])
                .env("VMUX_HOME", signer_home)
                .envs(env);
            if let Some(pin) = pin {
                command.env("VMUX_PASSPHRASE", pin);
            }
            command.output().unwrap()
        };
        let made = key_new(&["ted", "--type", "ed25519"], Some(PIN));
        assert!(made.status.success(), "{}", text(&made));
        assert!(
            text(&made).contains("(ssh-ed25519, pkcs11)"),
            "{}",
            text(&made)
        );
        // Without the PIN the hidden key cannot be added (the token shows
        // it only after login), with it it can.
        let refused = key_new(
            &["thid", "--existing", "--key-label", "hidden"],
            Some("0000"),
        );
        assert!(!refused.status.success());
        assert!(
            text(&refused).contains("wrong passphrase or PIN"),
            "{}",
            text(&refused)
        );
        let added = key_new(&["thid", "--existing", "--key-label", "hidden"], Some(PIN));
        assert!(added.status.success(), "{}", text(&added));
        assert!(
            text(&added).contains("(ecdsa-sha2-nistp256, pkcs11)"),
            "{}",
            text(&added)
        );
    };
    let mut rig = Paired::setup()
        .identities(&[])
        .signer_env("SOFTHSM2_CONF", hsm.conf())
        .more_identities(make)
        .start();
    let _agent = rig.spawn_agent(&[], &[]);
    rig.wait_status("thid  SHA256:");
    let lines = std::fs::read_to_string(&rig.pubkey).unwrap();
    let server = Arc::new(sshd::Sshd::start(&rig.dir.path().join("sshd"), "", None));
    for (name, index) in [("ted", 0), ("thid", 1)] {
        // Only the key under test is authorized; sshd rereads the file.
        let line = format!("{}\n", lines.lines().nth(index).unwrap());
        std::fs::write(server.dir.join("authorized_keys"), &line).unwrap();
        let (srv, sock) = (Arc::clone(&server), rig.sock());
        let login = std::thread::spawn(move || srv.ssh(&sock, &[], "echo logged-in"));
        rig.signer().expect("SSH Sign Request", WAIT);
        rig.signer().type_line("a");
        rig.signer().expect(&format!("PIN for \"{name}\": "), WAIT);
        rig.signer().type_line(PIN);
        let out = login.join().unwrap();
        assert!(
            text(&out).contains("logged-in"),
            "{name}: {}\n{}",
            text(&out),
            server.log()
        );
        if name == "ted" {
            assert!(line.starts_with("ssh-ed25519 "), "{line}");
        }
    }
}
