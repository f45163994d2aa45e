//! Finding signers on the local network, inside a private network
//! namespace (no test traffic may leave the machine): a running agent finds its signer again after it
//! restarted on another port, and `vmux pair` asks which of several.

use crate::support::clients;
use crate::support::netns;
use crate::support::paired;
use crate::support::process;

use std::process::{Command, Stdio};

use clients::text;
use paired::{Paired, WAIT};
use process::{Proc, VMUX};
use vmux_link::home::Home;
use vmux_link::trust::TrustStore;

/// An address of the namespace's own that is not loopback (on `lo`: no
/// packet can leave), so that the agent may look for a signer reached
/// there. Loopback signers are never looked for.
const LOCAL: &str = "10.77.0.1";

fn stored_address(home: &Home) -> String {
    TrustStore::load(home).unwrap().signers()[0]
        .address
        .clone()
        .unwrap()
}

#[test]
fn a_signer_restarted_on_another_port_is_found_again_by_the_running_agent() {
    if !netns::enter("find::a_signer_restarted_on_another_port_is_found_again_by_the_running_agent")
    {
        return;
    }
    let added = Command::new("ip")
        .args(["addr", "add", &format!("{LOCAL}/32"), "dev", "lo"])
        .status()
        .unwrap();
    assert!(added.success());
    // On every interface, so that it is advertised (only on this
    // namespace's lo).
    let mut paired = Paired::setup().listen("0.0.0.0:0").start();
    let home = Home::at(paired.device_home.clone()).unwrap();
    let port = paired.addr.rsplit(':').next().unwrap().to_owned();
    let mut trust = TrustStore::load(&home).unwrap();
    let mut signer = trust.signers()[0].clone();
    signer.address = Some(format!("{LOCAL}:{port}"));
    trust.pin(signer).unwrap();

    let _agent = paired.spawn_agent(&[], &[]);
    paired.wait_connected();
    paired.kill_signer();
    paired.wait_status("Disconnected");
    // Restarted on another (free) port: nobody types a command.
    paired.start_signer();
    let moved = paired.addr.rsplit(':').next().unwrap().to_owned();
    assert_ne!(moved, port);
    paired.wait_status("Connected to phone");
    let now = stored_address(&home);
    assert!(now.ends_with(&format!(":{moved}")), "{now}");
    paired.sign_approved("after-the-move");
}

#[test]
fn pair_lists_several_signers_and_asks_which_one() {
    if !netns::enter("find::pair_lists_several_signers_and_asks_which_one") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let mut signer = Proc::spawn_in_pty(
            &dir.path().join(name),
            &[
                "signer",
                "--listen",
                "0.0.0.0:0",
                "--name",
                name,
                "--ui",
                "plain",
                "--pair",
            ],
        );
        signer.expect("listening on", WAIT);
        let key = signer.expect("Signer key: ", WAIT);
        let fingerprint = key.trim().rsplit(' ').next().unwrap().to_owned();
        (signer, fingerprint)
    };
    let (_phone, phone_fp) = start("phone");
    let (mut tablet, tablet_fp) = start("tablet");
    let device = dir.path().join("device");

    // Without a terminal there is nobody to ask: --signer it is.
    let out = Command::new(VMUX)
        .args(["pair", "--name", "laptop"])
        .env("VMUX_HOME", &device)
        .env("VMUX_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("choose one with --signer HOST:PORT"),
        "{said}"
    );
    assert!(
        said.contains("\"phone\" at ") && said.contains(&phone_fp),
        "{said}"
    );
    assert!(
        said.contains("\"tablet\" at ") && said.contains(&tablet_fp),
        "{said}"
    );

    // On a terminal: listed by name and fingerprint, the person picks one.
    let mut pair = Proc::spawn_in_pty(&device, &["pair", "--name", "laptop"]);
    let line = pair.expect("\"tablet\" at ", WAIT);
    assert!(line.contains(&tablet_fp), "{line}");
    let choice = line.trim().split(')').next().unwrap().trim().to_owned();
    pair.expect("Pair with which one? [1-2]", WAIT);
    pair.type_line(&choice);
    tablet.expect("wants to pair", WAIT);
    tablet.type_line("a");
    pair.expect("Paired with tablet", WAIT);
    assert!(pair.wait_exit(WAIT).success());
}
