//! One signer per state directory: a second `vmux signer` on the same
//! `VMUX_HOME` is refused at once, named the running one, and leaves its
//! remembered port alone.

use std::net::TcpStream;
use std::time::Duration;

use crate::support::process::{Proc, start_signer};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_second_signer_on_the_same_home_is_refused_and_names_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("signer");
    let (mut first, addr) = start_signer(&home, &[]);
    let settings = std::fs::read(home.join("signer.json")).unwrap();

    // Without --listen's port it would try the remembered port, then
    // another, and write that one: it must stop before.
    let mut second = Proc::spawn(
        &home,
        &[
            "signer",
            "--listen",
            "127.0.0.1",
            "--name",
            "phone",
            "--ui",
            "plain",
            "--no-advertise",
        ],
    );
    let status = second.wait_exit(WAIT);
    assert!(!status.success(), "second signer: {}", second.transcript);
    // The whole message: output may come in more than one piece.
    second.expect("another signer", WAIT);
    let line = second.expect("to another directory", WAIT);
    let pid = first.pid().to_string();
    assert!(
        line.contains(&format!("pid {pid}")) && line.contains(&addr),
        "expected pid {pid} and {addr} in {line:?}"
    );
    assert!(line.contains("VMUX_HOME"), "{line}");
    assert!(
        !second.transcript.contains("Signer key:"),
        "{}",
        second.transcript
    );

    // The first still owns the home and serves on its address.
    assert!(first.exited().is_none(), "{}", first.transcript);
    TcpStream::connect(&addr).expect("the first signer still listens");
    assert_eq!(
        std::fs::read(home.join("signer.json")).unwrap(),
        settings,
        "signer.json changed by the refused signer"
    );

    // Once it stops, the home is free again.
    drop(first);
    let (_third, _) = start_signer(&home, &[]);
}
