//! The link over real TCP on loopback: pairing, pinning, refusals, and what
//! happens to frames that are tampered with on the way.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Accepted, Invitation, Pairing, Session};
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_link::{Error, frame};
use vmux_proto::envelope::{Envelope, ErrorCode, KeyListRequest, Role};

struct Side {
    _dir: tempfile::TempDir,
    home: Home,
    device: Device,
}

fn side(name: &str) -> Side {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("vmux")).unwrap();
    let device = Device::load_or_create(&home, Some(name)).unwrap();
    Side {
        _dir: dir,
        home,
        device,
    }
}

fn trust(s: &Side) -> TrustStore {
    TrustStore::load(&s.home).unwrap()
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

async fn accept_one(l: &TcpListener, signer: &Side) -> vmux_link::Result<Accepted> {
    let (stream, _) = l.accept().await.unwrap();
    session::accept(stream, &signer.device, &trust(signer), Pairing::Open).await
}

async fn invitation(l: &TcpListener, signer: &Side) -> Invitation {
    match accept_one(l, signer).await.unwrap() {
        Accepted::Invitation(i) => i,
        Accepted::Session(_) => panic!("expected an invitation"),
    }
}

/// Pairs `agent` with `signer`, both sides accepting; returns both sessions.
async fn pair(l: &TcpListener, addr: &str, signer: &Side, agent: &Side) -> (Session, Session) {
    let (pending, inv) = tokio::join!(
        session::start_pairing(addr, &agent.device, Role::Agent),
        invitation(l, signer)
    );
    let pending = pending.unwrap();
    assert_eq!(
        pending.code(),
        inv.code(),
        "both people must see the same code"
    );
    assert_eq!(inv.peer().name, "laptop");
    let mut signer_trust = trust(signer);
    let mut agent_trust = trust(agent);
    let (s, a) = tokio::join!(
        inv.accept(&mut signer_trust, 1),
        pending.finish(&mut agent_trust, 1)
    );
    (s.unwrap(), a.unwrap())
}

#[tokio::test]
async fn accepted_pairing_pins_both_keys_and_reconnects_without_a_code() {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let (_s, _a) = pair(&l, &addr, &signer, &agent).await;

    let pinned = trust(&signer);
    let p = pinned
        .find(PeerRole::Requester, &agent.device.keypair.public())
        .unwrap();
    assert_eq!(
        (p.name.as_str(), p.device_id.as_str()),
        ("laptop", agent.device.id.as_str())
    );
    assert_eq!(p.fingerprint, agent.device.fingerprint().to_string());
    let pinned = trust(&agent);
    let p = pinned
        .find(PeerRole::Signer, &signer.device.keypair.public())
        .unwrap();
    assert_eq!(p.address.as_deref(), Some(addr.as_str()));

    // Reconnect: no invitation, a running session straight away.
    let mut agent_trust = trust(&agent);
    let (a, s) = tokio::join!(
        session::connect(&addr, &agent.device, Role::Agent, &mut agent_trust, 2),
        accept_one(&l, &signer)
    );
    let a = a.unwrap();
    let Accepted::Session(mut s) = s.unwrap() else {
        panic!("pinned peer got an invitation")
    };
    assert_eq!(a.peer().name, "phone");
    a.send(Envelope::KeyListRequest(KeyListRequest {}))
        .await
        .unwrap();
    assert!(matches!(
        s.recv().await.unwrap(),
        Envelope::KeyListRequest(_)
    ));
}

#[tokio::test]
async fn rejected_pairing_pins_nothing() {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let (pending, inv) = tokio::join!(
        session::start_pairing(&addr, &agent.device, Role::Agent),
        invitation(&l, &signer)
    );
    let mut agent_trust = trust(&agent);
    let (_, result) = tokio::join!(
        inv.reject("pairing was rejected on the signer"),
        pending.unwrap().finish(&mut agent_trust, 1)
    );
    match result.unwrap_err() {
        Error::Peer {
            code: ErrorCode::PairingInvalid,
            message,
        } => assert!(message.contains("rejected"), "{message}"),
        other => panic!("unexpected {other}"),
    }
    assert!(trust(&signer).peers().is_empty());
    assert!(trust(&agent).peers().is_empty());
}

#[tokio::test]
async fn an_unpaired_device_is_refused_with_pairing_invalid() {
    let (signer, agent, intruder) = (side("phone"), side("laptop"), side("intruder"));
    let (l, addr) = listener().await;
    let _sessions = pair(&l, &addr, &signer, &agent).await;

    // The intruder knows the signer's key (it is public) but the signer never
    // pinned the intruder.
    let mut intruder_trust = trust(&intruder);
    let mut signer_record = PinnedPeer::new(
        "x".into(),
        "phone".into(),
        PeerRole::Signer,
        &signer.device.keypair.public(),
        0,
    );
    signer_record.address = Some(addr.clone());
    intruder_trust.pin(signer_record).unwrap();
    let (a, s) = tokio::join!(
        session::connect(&addr, &intruder.device, Role::Agent, &mut intruder_trust, 1),
        accept_one(&l, &signer)
    );
    match a.unwrap_err() {
        Error::Peer {
            code: ErrorCode::PairingInvalid,
            ..
        } => {}
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(s.unwrap_err(), Error::UnknownPeer { .. }));
    assert_eq!(
        trust(&signer).peers().len(),
        1,
        "the intruder must not be pinned"
    );
}

/// Outside a pairing window an unknown device asking to pair is refused
/// at once, with words that tell its person what to do; no invitation.
#[tokio::test]
async fn pairing_while_closed_is_refused_without_an_invitation() {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let accept_closed = async {
        let (stream, _) = l.accept().await.unwrap();
        session::accept(stream, &signer.device, &trust(&signer), Pairing::Closed).await
    };
    let (pending, accepted) = tokio::join!(
        session::start_pairing(&addr, &agent.device, Role::Agent),
        accept_closed
    );
    match pending.unwrap_err() {
        Error::Peer {
            code: ErrorCode::PairingInvalid,
            message,
        } => assert_eq!(message, session::PAIRING_CLOSED),
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(accepted.unwrap_err(), Error::PairingClosed { .. }));
    assert!(trust(&signer).peers().is_empty());
}

/// The signer knows a paired device by its static key: a new name and
/// device id in its `hello` change nothing but the claim it carries.
#[tokio::test]
async fn a_pinned_peer_keeps_its_pinned_identity_whatever_its_hello_says() {
    let (signer, agent) = (side("phone"), side("ci"));
    let (l, addr) = listener().await;
    let (pending, inv) = tokio::join!(
        session::start_pairing(&addr, &agent.device, Role::Agent),
        invitation(&l, &signer)
    );
    let (mut signer_trust, mut agent_trust) = (trust(&signer), trust(&agent));
    let (s, a) = tokio::join!(
        inv.accept(&mut signer_trust, 1),
        pending.unwrap().finish(&mut agent_trust, 1)
    );
    let (s, _a) = (s.unwrap(), a.unwrap());
    assert_eq!(s.peer().claimed_name(), None);
    drop(s);

    let liar = Device {
        id: "someone-else".into(),
        name: "laptop".into(),
        keypair: vmux_link::noise::StaticKeypair::from_secret_bytes(
            agent.device.keypair.secret_bytes(),
        ),
    };
    let (a, s) = tokio::join!(
        session::connect(&addr, &liar, Role::Agent, &mut agent_trust, 2),
        accept_one(&l, &signer)
    );
    a.unwrap();
    let Accepted::Session(s) = s.unwrap() else {
        panic!("expected a session")
    };
    let peer = s.peer();
    assert_eq!(
        (peer.name.as_str(), peer.device_id.as_str()),
        ("ci", agent.device.id.as_str())
    );
    assert_eq!(peer.claimed_name(), Some("laptop"));
}

/// Dropping a session closes the connection even while request tasks
/// still hold senders: that is how a revoked device's session ends.
#[tokio::test]
async fn dropping_a_session_closes_it_for_both_sides() {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let (s, mut a) = pair(&l, &addr, &signer, &agent).await;
    let sender = s.sender();
    s.send(Envelope::KeyListRequest(KeyListRequest {}))
        .await
        .unwrap();
    drop(s);
    tokio::time::timeout(Duration::from_secs(5), sender.closed())
        .await
        .expect("the sender saw the session close");
    // What was queued before the drop still arrives, then the end.
    assert!(matches!(
        a.recv().await.unwrap(),
        Envelope::KeyListRequest(_)
    ));
    let end = tokio::time::timeout(Duration::from_secs(5), a.recv())
        .await
        .expect("the peer saw the session close");
    assert!(end.is_err());
}

#[tokio::test]
async fn a_different_signer_key_at_the_pinned_address_is_refused_by_name() {
    let (signer, impostor, agent) = (side("phone"), side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let _sessions = pair(&l, &addr, &signer, &agent).await;

    let mut agent_trust = trust(&agent);
    let (a, _s) = tokio::join!(
        session::connect(&addr, &agent.device, Role::Agent, &mut agent_trust, 1),
        accept_one(&l, &impostor)
    );
    match a.unwrap_err() {
        Error::SignerKeyChanged {
            name,
            expected,
            presented,
        } => {
            assert_eq!(name, "phone");
            assert_eq!(expected, signer.device.fingerprint());
            assert_eq!(presented, impostor.device.fingerprint());
            let text = Error::SignerKeyChanged {
                name,
                expected: expected.clone(),
                presented: presented.clone(),
            }
            .to_string();
            assert!(
                text.contains(expected.as_str()) && text.contains(presented.as_str()),
                "{text}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_relay_with_its_own_keys_gives_the_two_people_different_codes() {
    let (signer, relay, agent) = (side("phone"), side("phone"), side("laptop"));
    let (signer_l, signer_addr) = listener().await;
    let (relay_l, relay_addr) = listener().await;

    // The agent thinks the relay is the signer; the relay pairs onward with
    // the real signer under its own key.
    let victim_side = async {
        let (pending, inv) = tokio::join!(
            session::start_pairing(&relay_addr, &agent.device, Role::Agent),
            invitation(&relay_l, &relay)
        );
        (pending.unwrap().code(), inv.code())
    };
    let signer_side = async {
        let (pending, inv) = tokio::join!(
            session::start_pairing(&signer_addr, &relay.device, Role::Agent),
            invitation(&signer_l, &signer)
        );
        (pending.unwrap().code(), inv.code())
    };
    let ((agent_sees, relay_shows_agent), (relay_sees, signer_sees)) =
        tokio::join!(victim_side, signer_side);
    assert_eq!(agent_sees, relay_shows_agent);
    assert_eq!(relay_sees, signer_sees);
    assert_ne!(
        agent_sees, signer_sees,
        "the person on each end must see a different code"
    );
}

/// A man in the middle at the frame level: forwards frames, letting the
/// test alter the agent→signer stream.
/// Once `cut` is set, nothing passes either way and nothing is closed: a
/// black hole, like a dead network path.
async fn tamper_proxy(
    upstream: String,
    cut: Arc<AtomicBool>,
    edit: impl Fn(usize, Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
) -> String {
    let (l, addr) = listener().await;
    let cut_down = Arc::clone(&cut);
    tokio::spawn(async move {
        let (client, _) = l.accept().await.unwrap();
        let server = TcpStream::connect(upstream).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 70_000];
            loop {
                let n = match sr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if cut_down.load(Ordering::SeqCst) {
                    continue;
                }
                if cw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            if cut_down.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
        });
        let mut index = 0;
        while let Ok(body) = frame::read(&mut cr).await {
            if cut.load(Ordering::SeqCst) {
                continue;
            }
            for out in edit(index, body) {
                if frame::write(&mut sw, &out).await.is_err() {
                    return;
                }
            }
            index += 1;
        }
    });
    addr
}

/// Frames agent→signer: 0 msg1, 1 msg3, 2 hello, 3 the first request.
const FIRST_REQUEST: usize = 3;

async fn session_through(
    edit: impl Fn(usize, Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
) -> (Session, Session) {
    session_through_cuttable(Arc::new(AtomicBool::new(false)), edit).await
}

async fn session_through_cuttable(
    cut: Arc<AtomicBool>,
    edit: impl Fn(usize, Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
) -> (Session, Session) {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let _ = pair(&l, &addr, &signer, &agent).await;
    let proxy = tamper_proxy(addr.clone(), cut, edit).await;
    let mut agent_trust = trust(&agent);
    let mut record = agent_trust.signers()[0].clone();
    record.address = Some(proxy.clone());
    agent_trust.pin(record).unwrap();
    let (a, s) = tokio::join!(
        session::connect(&proxy, &agent.device, Role::Agent, &mut agent_trust, 1),
        accept_one(&l, &signer)
    );
    let Accepted::Session(s) = s.unwrap() else {
        panic!("expected a session")
    };
    (a.unwrap(), s)
}

#[tokio::test]
async fn a_bit_flipped_frame_ends_the_session() {
    let (a, mut s) = session_through(|i, mut f| {
        if i == FIRST_REQUEST {
            f[5] ^= 0x10;
        }
        vec![f]
    })
    .await;
    a.send(Envelope::KeyListRequest(KeyListRequest {}))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), s.recv())
        .await
        .unwrap();
    assert!(matches!(ended, Err(Error::Decrypt)), "{ended:?}");
}

#[tokio::test]
async fn a_replayed_frame_is_rejected_and_ends_the_session() {
    let (a, mut s) = session_through(|i, f| {
        if i == FIRST_REQUEST {
            vec![f.clone(), f]
        } else {
            vec![f]
        }
    })
    .await;
    a.send(Envelope::KeyListRequest(KeyListRequest {}))
        .await
        .unwrap();
    assert!(matches!(
        s.recv().await.unwrap(),
        Envelope::KeyListRequest(_)
    ));
    let ended = tokio::time::timeout(Duration::from_secs(5), s.recv())
        .await
        .unwrap();
    assert!(matches!(ended, Err(Error::Decrypt)), "{ended:?}");
}

#[tokio::test]
async fn an_unanswered_invitation_times_out_and_pins_nothing() {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let (pending, inv) = tokio::join!(
        session::start_pairing(&addr, &agent.device, Role::Agent),
        invitation(&l, &signer)
    );
    // What the signer does when its person never answers.
    let signer_gives_up = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        inv.reject("pairing timed out: nobody accepted it on the signer")
            .await;
    };
    let mut agent_trust = trust(&agent);
    let (_, result) = tokio::join!(
        signer_gives_up,
        pending.unwrap().finish(&mut agent_trust, 1)
    );
    assert!(result.unwrap_err().to_string().contains("timed out"));
    assert!(trust(&signer).peers().is_empty());
    assert!(trust(&agent).peers().is_empty());
}

#[tokio::test]
async fn reconnects_with_backoff_once_the_signer_is_back() {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    let _ = pair(&l, &addr, &signer, &agent).await;
    drop(l); // the signer goes away

    let restart = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let l = TcpListener::bind(&addr).await.unwrap();
        accept_one(&l, &signer).await.unwrap()
    };
    let mut agent_trust = trust(&agent);
    let clock = vmux_link::clock::SystemClock;
    let started = std::time::Instant::now();
    let (a, s) = tokio::join!(
        session::connect_retrying(
            &addr,
            &agent.device,
            Role::Agent,
            &mut agent_trust,
            &clock,
            Duration::from_secs(10)
        ),
        restart
    );
    assert!(a.is_ok(), "{:?}", a.err());
    assert!(matches!(s, Accepted::Session(_)));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn trust_failures_are_not_retried() {
    let (signer, agent) = (side("phone"), side("laptop"));
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = session::accept(
                s,
                &signer.device,
                &TrustStore::load(&signer.home).unwrap(),
                Pairing::Open,
            )
            .await;
        }
    });
    let mut agent_trust = trust(&agent);
    let clock = vmux_link::clock::SystemClock;
    let started = std::time::Instant::now();
    let result = session::connect_retrying(
        &addr,
        &agent.device,
        Role::Agent,
        &mut agent_trust,
        &clock,
        Duration::from_secs(10),
    )
    .await;
    assert!(matches!(result, Err(Error::NotPaired { .. })));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_silent_peer_is_declared_dead_within_fifteen_seconds() {
    let cut = Arc::new(AtomicBool::new(false));
    let (mut a, _s) = session_through_cuttable(Arc::clone(&cut), |_, f| vec![f]).await;
    cut.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(20), a.recv())
        .await
        .expect("not noticed within 20 s");
    let took = started.elapsed();
    assert!(matches!(ended, Err(Error::Timeout(_))), "{ended:?}");
    assert!(took <= Duration::from_secs(16), "took {took:?}");
    assert!(took >= Duration::from_secs(14), "took {took:?}");
}
