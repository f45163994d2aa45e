//! A signer written from docs/protocol.md alone, as a phone app would be,
//! meets the real `vmux pair` and `vmux agent`. It is built here from the
//! link crate's parts (the Noise steps, frames, envelopes), so each test can
//! do exactly what the spec allows or forbids, and shows that the real
//! binaries behave as the spec says.

use crate::support::clients;
use crate::support::process;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clients::{openssh, text, wait_child};
use process::{Proc, VMUX};
use tokio::net::{TcpListener, TcpStream};
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::noise::{self, CipherState};
use vmux_link::pairing::{self, PairingCode};
use vmux_link::session::{self, Accepted, Pairing};
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_link::{Fingerprint, frame};
use vmux_proto::envelope::{
    Envelope, ErrorCode, ErrorReport, Hello, KeyList, PROTOCOL_MAJOR, PROTOCOL_MINOR, PairCommit,
    PairResult, PairReveal, Ping, ProviderKind, PublicKeyRecord, Role,
};

const WAIT: Duration = Duration::from_secs(20);

/// A device home (for `vmux pair` / `vmux agent`) and the raw signer's
/// identity, in one temporary directory.
struct Homes {
    dir: tempfile::TempDir,
    device_home: PathBuf,
    signer: Device,
}

impl Homes {
    /// The raw signer's identity, for its thread to own.
    fn signer_again(&self) -> Device {
        Device::load_or_create(&self.signer_home(), None).unwrap()
    }

    fn signer_home(&self) -> Home {
        Home::at(self.dir.path().join("signer")).unwrap()
    }
}

fn homes() -> Homes {
    let dir = tempfile::tempdir().unwrap();
    let device_home = dir.path().join("device");
    let signer_home = Home::at(dir.path().join("signer")).unwrap();
    let signer = Device::load_or_create(&signer_home, Some("rawphone")).unwrap();
    Homes {
        dir,
        device_home,
        signer,
    }
}

/// Runs the raw signer on its own thread; its findings come back on the
/// channel it is given.
fn run_signer<F, Fut, T>(listener: std::net::TcpListener, signer: F) -> mpsc::Receiver<T>
where
    F: FnOnce(TcpListener, mpsc::Sender<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            signer(listener, tx).await;
        });
    });
    rx
}

fn listen() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

// ---------------------------------------------------------------- pairing

/// One side of a finished handshake, envelopes in and out by hand.
struct Raw {
    stream: TcpStream,
    send: CipherState,
    recv: CipherState,
    h: [u8; 32],
}

impl Raw {
    async fn send(&mut self, envelope: &Envelope) {
        let sealed = self.send.encrypt(&envelope.encode().unwrap()).unwrap();
        frame::write(&mut self.stream, &sealed).await.unwrap();
    }

    async fn recv(&mut self) -> vmux_link::Result<Envelope> {
        let sealed = frame::read(&mut self.stream).await?;
        Ok(Envelope::decode(&self.recv.decrypt(&sealed)?)?)
    }
}

/// What the pairing signer saw.
#[derive(Debug)]
enum Seen {
    /// The first connection ended after handshake message 2.
    ProbeDropped,
    /// The code this signer computed, as its person would see it.
    Code(String),
    /// After our last envelope, the initiator closed the connection.
    Closed,
}

/// The signer's side of §4, §6 and §7, up to the code: answers `vmux pair`'s
/// probe, then runs the handshake, the hellos and the commitment exchange.
async fn pair_until_code(listener: &TcpListener, me: &Device, seen: &mpsc::Sender<Seen>) -> Raw {
    // §7 "How vmux pair connects": first a connection that is dropped once
    // the signer's key is known (message 2), which is not an error.
    let (mut probe, _) = listener.accept().await.unwrap();
    let (_, msg2) = noise::respond(&me.keypair, &frame::read(&mut probe).await.unwrap()).unwrap();
    frame::write(&mut probe, &msg2).await.unwrap();
    assert!(
        frame::read(&mut probe).await.is_err(),
        "the probe sent message 3"
    );
    seen.send(Seen::ProbeDropped).unwrap();

    let (mut stream, _) = listener.accept().await.unwrap();
    let (state, msg2) =
        noise::respond(&me.keypair, &frame::read(&mut stream).await.unwrap()).unwrap();
    frame::write(&mut stream, &msg2).await.unwrap();
    let t = state
        .read_msg3(&frame::read(&mut stream).await.unwrap())
        .unwrap();
    let mut raw = Raw {
        stream,
        send: t.send,
        recv: t.recv,
        h: t.handshake_hash,
    };
    let Envelope::Hello(hello) = raw.recv().await.unwrap() else {
        panic!("no hello first")
    };
    assert!(hello.pairing && hello.role == Role::Agent, "{hello:?}");
    raw.send(&Envelope::Hello(Hello {
        protocol_major: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        device_id: me.id.clone(),
        device_name: me.name.clone(),
        role: Role::Signer,
        pairing: false,
    }))
    .await;
    // §7: commitment and reveal go out at once, inside the initiator's
    // 10 s handshake limit; the person is asked afterwards.
    let ours = pairing::nonce().unwrap();
    raw.send(&Envelope::PairCommit(PairCommit {
        commitment: pairing::commitment(&raw.h, &ours).to_vec(),
    }))
    .await;
    let Envelope::PairNonce(theirs) = raw.recv().await.unwrap() else {
        panic!("no pairNonce")
    };
    raw.send(&Envelope::PairReveal(PairReveal {
        nonce: ours.to_vec(),
    }))
    .await;
    let theirs: [u8; 32] = theirs.nonce.try_into().unwrap();
    let code = PairingCode::derive(&raw.h, &theirs, &ours);
    seen.send(Seen::Code(code.to_string())).unwrap();
    raw
}

/// `vmux pair --signer ADDR` run by the device's person.
fn vmux_pair(homes: &Homes, addr: &str) -> Proc {
    Proc::spawn(
        &homes.device_home,
        &["pair", "--signer", addr, "--name", "laptop"],
    )
}

fn pinned_signers(device_home: &Path) -> Vec<PinnedPeer> {
    let trust = TrustStore::load(&Home::at(device_home.to_owned()).unwrap()).unwrap();
    trust.signers().into_iter().cloned().collect()
}

#[test]
fn vmux_pair_pairs_with_a_signer_written_from_the_spec() {
    let homes = homes();
    let (listener, addr) = listen();
    let me = homes.signer_again();
    let seen = run_signer(listener, move |l, seen| {
        async move {
            let mut raw = pair_until_code(&l, &me, &seen).await;
            // The person compares the codes and accepts. No keepalive runs
            // while they do (§12): nothing is sent but the result.
            raw.send(&Envelope::PairResult(PairResult { accepted: true }))
                .await;
            if raw.recv().await.is_err() {
                seen.send(Seen::Closed).unwrap();
            }
        }
    });

    let mut pair = vmux_pair(&homes, &addr);
    assert!(matches!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::ProbeDropped
    ));
    let Seen::Code(code) = seen.recv_timeout(WAIT).unwrap() else {
        panic!()
    };
    // Both people see the same code: the spec's derivation is the binary's.
    pair.expect(&format!("Pairing code: {code}"), WAIT);
    pair.expect("Paired with rawphone", WAIT);
    assert!(pair.wait_exit(WAIT).success(), "{}", pair.transcript);
    let pinned = pinned_signers(&homes.device_home);
    assert_eq!(pinned.len(), 1);
    assert_eq!(
        pinned[0].fingerprint,
        Fingerprint::of(&homes.signer.keypair.public()).to_string()
    );
}

#[test]
fn a_ping_during_pairing_makes_vmux_pair_abort_and_pin_nothing() {
    let homes = homes();
    let (listener, addr) = listen();
    let me = homes.signer_again();
    let seen = run_signer(listener, move |l, seen| {
        async move {
            let mut raw = pair_until_code(&l, &me, &seen).await;
            // What a signer that ran §12's keepalive during pairing would
            // do while its person reads the code: forbidden by §7.
            raw.send(&Envelope::Ping(Ping { seq: 1 })).await;
            if raw.recv().await.is_err() {
                seen.send(Seen::Closed).unwrap();
            }
        }
    });

    let mut pair = vmux_pair(&homes, &addr);
    assert!(matches!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::ProbeDropped
    ));
    let Seen::Code(code) = seen.recv_timeout(WAIT).unwrap() else {
        panic!()
    };
    pair.expect(&format!("Pairing code: {code}"), WAIT);
    // The initiator aborts at once: closes the connection, pins nothing,
    // and says what it got.
    assert!(matches!(seen.recv_timeout(WAIT).unwrap(), Seen::Closed));
    pair.expect("got ping", WAIT);
    assert!(!pair.wait_exit(WAIT).success(), "{}", pair.transcript);
    assert!(!pair.transcript.contains("Paired with"));
    assert!(pinned_signers(&homes.device_home).is_empty());
}

// ---------------------------------------------------------------- signing

/// An Ed25519 key made by `ssh-keygen`; its `.pub` is next to it.
fn ssh_keygen_ed25519(dir: &Path) -> (PathBuf, Vec<u8>) {
    let key = dir.join("id_raw");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "raw", "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let public = key.with_extension("pub");
    let line = std::fs::read_to_string(&public).unwrap();
    let blob = ssh_key::PublicKey::from_openssh(&line)
        .unwrap()
        .to_bytes()
        .unwrap();
    (public, blob)
}

#[test]
fn an_error_naming_a_request_ends_it_at_once() {
    let homes = homes();
    let (listener, addr) = listen();
    let now = 1_700_000_000_000;

    // Paired already, as `vmux pair` would have left both sides.
    let device = Device::load_or_create(
        &Home::at(homes.device_home.clone()).unwrap(),
        Some("laptop"),
    )
    .unwrap();
    let mut device_trust = TrustStore::load(&Home::at(homes.device_home.clone()).unwrap()).unwrap();
    let mut signer_pin = PinnedPeer::new(
        homes.signer.id.clone(),
        homes.signer.name.clone(),
        PeerRole::Signer,
        &homes.signer.keypair.public(),
        now,
    );
    signer_pin.address = Some(addr.clone());
    device_trust.pin(signer_pin).unwrap();
    let mut signer_trust = TrustStore::load(&homes.signer_home()).unwrap();
    signer_trust
        .pin(PinnedPeer::new(
            device.id.clone(),
            device.name.clone(),
            PeerRole::Requester,
            &device.keypair.public(),
            now,
        ))
        .unwrap();

    let (public, blob) = ssh_keygen_ed25519(homes.dir.path());
    let me = homes.signer_again();
    let answered = run_signer(listener, move |l, answered| {
        async move {
            loop {
                let (stream, _) = l.accept().await.unwrap();
                let Ok(Accepted::Session(mut session)) =
                    session::accept(stream, &me, &signer_trust, Pairing::Closed).await
                else {
                    continue;
                };
                while let Ok(envelope) = session.recv().await {
                    match envelope {
                        Envelope::KeyListRequest(_) => {
                            let record = PublicKeyRecord {
                                algorithm: "ssh-ed25519".into(),
                                public_key_blob: blob.clone(),
                                comment: "raw".into(),
                                provider_kind: ProviderKind::Software,
                                display_name: None,
                            };
                            let list = KeyList {
                                keys: vec![record],
                                ca_public_key: None,
                            };
                            session.send(Envelope::KeyList(list)).await.unwrap();
                        }
                        // §8.2 and §9.3 check 1: a request the signer could
                        // not decode is answered with an error naming it.
                        Envelope::SignRequest(request) => {
                            let error = ErrorReport {
                                code: ErrorCode::MalformedRequest,
                                message: "this signer could not read the request".into(),
                                request_id: Some(request.request_id),
                            };
                            session.send(Envelope::Error(error)).await.unwrap();
                            answered.send(Instant::now()).unwrap();
                        }
                        _ => {}
                    }
                }
            }
        }
    });

    let sock = homes.device_home.join("agent.sock");
    let mut agent_command = Command::new(VMUX);
    agent_command.args(["agent", "--socket"]).arg(&sock).args([
        "--signer",
        &addr,
        "--cert-validity",
        "0",
    ]);
    let mut agent = Proc::start(agent_command, &homes.device_home);
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = UnixStream::connect(&sock).is_ok()
            && text(&openssh("ssh-add", &sock, &["-L"], &[]).output().unwrap()).contains("raw");
        if listed {
            break;
        }
        if Instant::now() > deadline {
            // Fails, showing what the agent said.
            agent.expect("the raw signer's key listed", Duration::ZERO);
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let file = homes.dir.path().join("message");
    std::fs::write(&file, b"sign me\n").unwrap();
    let mut sign = openssh(
        "ssh-keygen",
        &sock,
        &["-Y", "sign", "-n", "file", "-f"],
        &[],
    )
    .arg(&public)
    .arg(&file)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (ok, err) = wait_child(&mut sign, WAIT);
    let exited = Instant::now();
    let error_sent = answered.recv_timeout(WAIT).unwrap();
    assert!(!ok, "ssh-keygen signed: {err}");
    let waited = exited.duration_since(error_sent);
    eprintln!("ssh-keygen -Y sign failed {waited:?} after the signer's error");
    assert!(
        waited < Duration::from_secs(1),
        "ssh-keygen failed {waited:?} after the signer's error"
    );

    let log = Command::new(VMUX)
        .arg("log")
        .env("VMUX_HOME", &homes.device_home)
        .output()
        .unwrap();
    let log = text(&log);
    assert!(log.contains("malformedRequest"), "{log}");
    assert!(
        log.contains("this signer could not read the request"),
        "{log}"
    );
}
