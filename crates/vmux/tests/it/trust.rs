//! Who the signer says is asking, end to end with real processes: hostile
//! names refused and never printed raw, the identity pinned at pairing on
//! the sheet whatever a device now calls itself, revocation that takes
//! effect at once, and input that belongs to the prompt on screen.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;
use crate::support::raw;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use clients::{text, wait_child};
use paired::{PASS, Paired, WAIT};
use process::{Proc, VMUX, start_signer};
use vmux_link::home::Home;
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_proto::envelope::{Envelope, ErrorCode};

/// How soon a removal must cut a device off.
const REVOCATION: Duration = Duration::from_secs(2);

/// `vmux ARGS` on the state directory `home`.
fn vmux_in(home: &Path, args: &[&str]) -> Output {
    Command::new(VMUX)
        .args(args)
        .env("VMUX_HOME", home)
        .env("VMUX_LOG", "warn")
        .output()
        .unwrap()
}

/// Whether `s` holds a character that would act on a terminal (other than
/// the line breaks of the output itself).
fn has_controls(s: &str) -> bool {
    s.chars()
        .any(|c| vmux_proto::text::is_forbidden(c) && c != '\n' && c != '\r')
}

/// The value of the JSON string field `key` of `device.json` in `home`
/// (plain ASCII here, no escapes).
fn device_field(home: &Path, key: &str) -> String {
    let json = std::fs::read_to_string(home.join("device.json")).unwrap();
    let after = &json[json.find(&format!("\"{key}\": \"")).unwrap() + key.len() + 5..];
    after[..after.find('"').unwrap()].to_owned()
}

fn device_id(home: &Path) -> String {
    device_field(home, "deviceID")
}

/// Rewrites the device's own `device.json`, as someone at that device could.
fn edit_device(home: &Path, name: Option<&str>, id: Option<&str>) {
    let name = name.map_or_else(|| device_field(home, "name"), str::to_owned);
    let id = id.map_or_else(|| device_id(home), str::to_owned);
    std::fs::write(
        home.join("device.json"),
        format!("{{\"deviceID\": \"{id}\", \"name\": \"{name}\"}}"),
    )
    .unwrap();
}

#[test]
fn hostile_names_are_refused_with_a_clear_error_and_never_printed_raw() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Its own name: refused before anything is sent.
    let out = vmux_in(
        &dir.path().join("a"),
        &[
            "pair",
            "--signer",
            "127.0.0.1:9",
            "--name",
            "evil\u{1b}[2J\u{1b}[H",
        ],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(
            r#"the device name "evil\e[2J\e[H" contains the control or format character U+001B"#
        ),
        "{said}"
    );
    assert!(!has_controls(&said), "{said:?}");

    // A device whose hello carries one: told which field, and no sheet.
    let signer_home = dir.path().join("signer");
    let (mut signer, addr) = start_signer(&signer_home, &["--pair"]);
    for (name, pairing) in [("evil\u{1b}[2J\u{1b}[H", true), ("bidi\u{202e}fdp", false)] {
        let hello = raw::hello(name, "agent", pairing);
        match rt.block_on(raw::requester(&addr, &hello)) {
            Some(Envelope::Error(e)) => {
                assert_eq!(e.code, ErrorCode::MalformedRequest);
                assert!(
                    e.message
                        .contains("hello.deviceName contains the control or format character U+"),
                    "{}",
                    e.message
                );
            }
            other => panic!("the signer answered {other:?}"),
        }
    }
    // Everything before this answer has been printed.
    signer.type_line("x");
    signer.expect("Nothing to answer now", WAIT);
    assert!(
        !signer.transcript.contains("wants to pair"),
        "{}",
        signer.transcript
    );
    assert!(!has_controls(&signer.transcript), "{:?}", signer.transcript);

    // `vmux pair` against a signer whose name holds control characters:
    // refused, and none of them printed.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let fake_addr = listener.local_addr().unwrap().to_string();
    let hostile = raw::hello("phone\u{1b}[2J\u{1b}]0;pwned\u{7}", "signer", false);
    // Two connections: `vmux pair` first checks whether it knows the key.
    let fake = rt.spawn(raw::signer(listener, 2, hostile));
    let out = vmux_in(
        &dir.path().join("b"),
        &["pair", "--signer", &fake_addr, "--name", "laptop"],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("hello.deviceName contains the control or format character U+001B"),
        "{said}"
    );
    assert!(!has_controls(&said), "{said:?}");
    assert!(!said.contains("Pairing code"), "{said}");
    match rt.block_on(fake).unwrap() {
        Some(Envelope::Error(e)) => assert_eq!(e.code, ErrorCode::MalformedRequest),
        other => panic!("the fake signer was told {other:?}"),
    }

    // A signer's refusal is free text: printed, but escaped.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let fake_addr = listener.local_addr().unwrap().to_string();
    let refusal = Envelope::Error(vmux_proto::envelope::ErrorReport {
        code: ErrorCode::MalformedRequest,
        message: "no\u{1b}[2J\u{1b}[Hway".into(),
        request_id: None,
    });
    let fake = rt.spawn(raw::signer(listener, 2, refusal.encode().unwrap()));
    let out = vmux_in(
        &dir.path().join("c"),
        &["pair", "--signer", &fake_addr, "--name", "laptop"],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(r"no\e[2J\e[Hway (malformedRequest)"),
        "{said}"
    );
    assert!(!has_controls(&said), "{said:?}");
    drop(rt.block_on(fake));

    // A trust store written by an older build holding such a name is
    // printed escaped.
    let legacy = dir.path().join("legacy");
    let mut trust = TrustStore::load(&Home::at(legacy.clone()).unwrap()).unwrap();
    trust
        .pin(PinnedPeer::new(
            "id".into(),
            "PLACEHOLDER".into(),
            PeerRole::Requester,
            &[7; 32],
            0,
        ))
        .unwrap();
    let file = legacy.join("trust.json");
    let json = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        json.replace("PLACEHOLDER", "old\\u001b[2Jbox\\u202e"),
    )
    .unwrap();
    let out = vmux_in(&legacy, &["peers", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(r"old\e[2Jbox\u{202e}"), "{said}");
    assert!(!has_controls(&said), "{said:?}");
}

#[test]
fn a_device_that_renames_itself_is_shown_by_its_pinned_name() {
    let mut rig = Paired::setup().device("ci").start();
    // Device B pairs too; the window opened at start is still open.
    let b_home = rig.dir.path().join("b");
    rig.pair(&b_home, "laptop");

    // A now says it is "laptop".
    edit_device(&rig.device_home, Some("laptop"), None);
    let agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();
    let (mut child, _) = rig.start_sign("claim", b"claim\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    let from = rig.signer().expect("From Device", WAIT);
    assert_eq!(from.trim(), "From Device  ci");
    let claim = rig.signer().expect("Claims name", WAIT);
    assert_eq!(
        claim.trim(),
        r#"Claims name  "laptop" (its own word; paired as "ci")"#
    );
    rig.signer().type_line("a");
    rig.signer().expect("Passphrase for", WAIT);
    rig.signer().type_line(PASS);
    let (ok, err) = wait_child(&mut child, WAIT);
    assert!(ok, "{err}");
    let log = std::fs::read_to_string(rig.signer_home.join("signer-log.jsonl")).unwrap();
    assert!(log.contains("\"device\":\"ci\""), "{log}");
    assert!(!log.contains("\"device\":\"laptop\""), "{log}");
    // The claim is kept, labelled as one.
    assert!(log.contains("\"claimedDevice\":\"laptop\""), "{log}");
    let shown = text(&vmux_in(&rig.signer_home, &["signer", "log"]));
    assert!(shown.contains("    claims name: laptop"), "{shown}");

    // The person renames it on the signer: that is what the sheet says now.
    let out = vmux_in(&rig.signer_home, &["peers", "rename", "ci", "build box"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = vmux_in(
        &rig.signer_home,
        &["peers", "rename", "build box", "x\u{1b}[2J"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("U+001B") && !has_controls(&text(&out)));
    let (mut child, _) = rig.start_sign("renamed", b"renamed\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    let from = rig.signer().expect("From Device", WAIT);
    assert_eq!(from.trim(), "From Device  build box");
    rig.signer().type_line("d");
    assert!(!wait_child(&mut child, WAIT).0);

    // With B's device id as well, its requests are refused unseen.
    drop(agent);
    edit_device(&rig.device_home, None, Some(&device_id(&b_home)));
    let _agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();
    let sheets = sheets_so_far(rig.signer());
    let (mut child, _) = rig.start_sign("forged", b"forged\n");
    let (ok, _) = wait_child(&mut child, WAIT);
    assert!(!ok, "signed with another device's id");
    assert!(
        rig.request_log()
            .contains("\"outcome\":\"malformedRequest\""),
        "{}",
        rig.request_log()
    );
    let log = std::fs::read_to_string(rig.signer_home.join("signer-log.jsonl")).unwrap();
    assert!(log.contains("\"outcome\":\"malformedRequest\""), "{log}");
    assert_eq!(
        sheets_so_far(rig.signer()),
        sheets,
        "a sheet was shown for a forged id"
    );
}

#[test]
fn a_device_removed_while_connected_is_cut_off_at_once_and_stays_removed() {
    let mut rig = Paired::setup().fixed_port().start();
    let _agent = rig.spawn_agent(&[], &["--sign-timeout", "30"]);
    rig.wait_connected();
    // A sheet is up when the person removes the device.
    let (mut pending, _) = rig.start_sign("pending", b"pending\n");
    rig.signer().expect("SSH Sign Request", WAIT);

    let removed = Instant::now();
    let out = vmux_in(&rig.signer_home, &["peers", "remove", "laptop"]);
    assert!(out.status.success(), "{}", text(&out));
    rig.wait_status("Disconnected");
    let took = removed.elapsed();
    assert!(took < REVOCATION, "disconnected after {took:?}");
    eprintln!("measured: peers remove -> agent Disconnected in {took:?}");
    rig.signer().expect("Withdrawn", WAIT);
    // The banner may come before or after the sheet goes.
    rig.signer().expect_seen("is no longer paired", WAIT);
    assert!(!wait_child(&mut pending, WAIT).0);

    // Its next request fails, and says why.
    let (mut next, _) = rig.start_sign("next", b"next\n");
    let (ok, err) = wait_child(&mut next, WAIT);
    assert!(!ok, "signed after removal");
    let log = rig.vmux(&["log"]);
    let shown = text(&log);
    assert!(shown.contains("pairingInvalid"), "{shown}\n{err}");

    // A restarted signer has not brought it back.
    rig.kill_signer();
    rig.start_signer();
    let peers = text(&vmux_in(&rig.signer_home, &["peers", "list"]));
    assert!(peers.contains("No paired devices"), "{peers}");
    let (mut again, _) = rig.start_sign("again", b"again\n");
    assert!(!wait_child(&mut again, WAIT).0, "signed after a restart");
    assert_eq!(
        rig.request_log()
            .matches("\"outcome\":\"pairingInvalid\"")
            .count(),
        2,
        "{}",
        rig.request_log()
    );
    assert_eq!(sheets_so_far(rig.signer()), 0);
}

/// The sign sheets the signer's plain UI has shown, counted once all it
/// printed so far has been read (a line answered by nothing marks "now").
fn sheets_so_far(signer: &mut Proc) -> usize {
    signer.type_line("x");
    signer.expect("Nothing to answer now", WAIT);
    signer.transcript.matches("SSH Sign Request").count()
}

#[test]
fn a_signer_removed_on_the_device_ends_the_agents_session_at_once() {
    // Nobody listens on port 9: the endpoint is only remembered here.
    let rig = Paired::setup()
        .signer_args(&["--wake-url", "http://127.0.0.1:9/up"])
        .start();
    let mut agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();
    let status = rig.wait_status("Wake: ready");
    assert!(status.contains("CA: SHA256:"), "{status}");
    let listed = text(&rig.ssh_add(&["-l"]));
    assert!(listed.contains(" work "), "{listed}");
    let removed = Instant::now();
    let out = rig.vmux(&["peers", "remove", "phone"]);
    assert!(out.status.success(), "{}", text(&out));
    rig.wait_status("Disconnected");
    let took = removed.elapsed();
    assert!(took < REVOCATION, "disconnected after {took:?}");
    agent.expect("this signer was removed", WAIT);
    // Nothing wrote it back.
    let peers = text(&rig.vmux(&["peers", "list"]));
    assert!(peers.contains("No paired devices"), "{peers}");

    // What it listed goes with it: its key (here and in the cache), its
    // CA, its wake endpoint.
    let status = rig.wait_status("No keys");
    assert!(!status.contains("CA:"), "{status}");
    assert!(status.contains("Wake: no endpoint"), "{status}");
    let listed = text(&rig.ssh_add(&["-l"]));
    assert!(!listed.contains(" work "), "{listed}");
    let cache = std::fs::read_to_string(rig.device_home.join("keys-cache.json")).unwrap();
    assert!(!cache.contains("\"work\""), "{cache}");
    let wakes = std::fs::read_to_string(rig.device_home.join("wake.json")).unwrap();
    assert!(!wakes.contains("127.0.0.1:9"), "{wakes}");
}

/// A person types half a passphrase; the prompt is withdrawn (its device
/// went away); another request's sheet appears; the person types on, the
/// rest of the passphrase ending in "a" and Enter. That answers nothing.
#[test]
fn the_rest_of_a_withdrawn_passphrase_never_answers_the_next_sheet() {
    let mut rig = Paired::setup().start();
    let agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();
    let (mut first, _) = rig.start_sign("first", b"first\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("a");
    rig.signer().expect("Passphrase for", WAIT);
    rig.signer().type_raw("correct hors");
    drop(agent);
    rig.signer().expect("Withdrawn", WAIT);
    let _ = wait_child(&mut first, WAIT);

    let _agent = rig.spawn_agent(&[], &[]);
    rig.wait_connected();
    let (mut second, _) = rig.start_sign("second", b"second\n");
    rig.signer().expect("SSH Sign Request", WAIT);
    rig.signer().type_line("a");
    rig.signer()
        .expect("Ignored a line begun before this sheet appeared", WAIT);
    assert!(
        second.try_wait().unwrap().is_none(),
        "the rest of a passphrase answered the sheet"
    );
    rig.signer().type_line("d");
    assert!(!wait_child(&mut second, WAIT).0);
    assert!(
        rig.request_log().contains("\"outcome\":\"userDenied\""),
        "{}",
        rig.request_log()
    );
    assert!(
        !rig.signer().transcript.contains("hors"),
        "the passphrase was echoed: {}",
        rig.signer().transcript
    );
}
