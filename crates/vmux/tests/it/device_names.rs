//! Device names are each device's own choice: a second device pairing
//! under a pinned name is shown both keys, and from then on the sheets
//! show whose key asks. (That a second key claiming a pinned device id is
//! refused at pairing is unit-tested in the signer's `server::names`.)

use crate::support::paired::{Paired, WAIT};
use crate::support::process::Proc;

#[test]
fn a_second_device_of_the_same_name_is_told_apart_by_its_key() {
    let mut rig = Paired::setup().start();
    let second = rig.dir.path().join("second");
    let mut pair = Proc::spawn(
        &second,
        &["pair", "--signer", &rig.addr, "--name", "laptop"],
    );
    rig.signer().expect("wants to pair", WAIT);
    rig.signer()
        .expect("a paired device is already named \"laptop\" (SHA256:", WAIT);
    rig.signer().expect("[a] accept", WAIT);
    rig.signer().type_line("a");
    pair.expect("Paired with phone", WAIT);
    assert!(pair.wait_exit(WAIT).success());

    // The first laptop's sign request: its key is on the sheet.
    let _agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();
    let (mut child, _) = rig.start_sign("msg", b"hello\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().expect("laptop (device key SHA256:", WAIT);
    rig.signer()
        .expect("2 paired devices are named \"laptop\")", WAIT);
    rig.signer().expect("[a] approve", WAIT);
    rig.signer().type_line("d");
    assert!(!child.wait().unwrap().success());
}
