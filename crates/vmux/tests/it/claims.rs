//! The sheet in human words (issue 25, item 3): a first login with real
//! `ssh` to a host not on the signer's list, whose known_hosts line is
//! hashed (as Debian's `HashKnownHosts yes` writes them), shows the name
//! the person typed, labelled as the device's claim, beside the key.

use std::process::Command;

use crate::support::clients::wait_child;
use crate::support::paired::{Paired, WAIT, agent_at};
use crate::support::sshd::Sshd;

#[test]
fn a_hashed_known_hosts_host_shows_the_name_typed_as_a_claim() {
    let mut rig = Paired::setup().start();
    let authorized = std::fs::read_to_string(&rig.pubkey).unwrap();
    let server = Sshd::start(&rig.dir.path().join("sshd"), &authorized, None);

    // The agent's user: its known_hosts has the host, hashed by ssh-keygen.
    let user = rig.dir.path().join("user");
    std::fs::create_dir_all(user.join(".ssh")).unwrap();
    let known = user.join(".ssh/known_hosts");
    std::fs::write(&known, server.known_hosts_line()).unwrap();
    let hashed = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known)
        .output()
        .unwrap();
    assert!(hashed.status.success(), "{hashed:?}");
    let line = std::fs::read_to_string(&known).unwrap();
    assert!(
        line.starts_with("|1|") && !line.contains("127.0.0.1"),
        "{line}"
    );

    let home = rig.device_home.clone();
    let sock = rig.sock();
    let env_home = format!("HOME={}", user.display());
    let _agent = agent_at(&["env", &env_home], &home, &sock, &["--cert-validity", "0"]);
    rig.wait_connected();

    let mut login = server
        .command(&sock, &[], "echo logged-in")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let claimed = format!("\"[127.0.0.1]:{}\" claimed by laptop", server.port);
    let shown = rig.signer().expect(&claimed, WAIT);
    assert!(shown.contains("SHA256:"), "{shown}");
    assert!(!shown.contains("no name claimed"), "{shown}");
    rig.signer().type_line("a");
    rig.signer().expect("Passphrase for", WAIT);
    rig.signer().type_line(crate::support::paired::PASS);
    let (ok, err) = wait_child(&mut login, WAIT);
    assert!(ok, "{err}\n{}", server.log());
}
