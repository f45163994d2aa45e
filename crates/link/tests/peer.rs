//! A hand-driven requester speaking raw frames to a signer's session: what
//! the session does with envelopes it cannot read.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ciborium::Value;
use tokio::net::{TcpListener, TcpStream};
use vmux_link::device::Device;
use vmux_link::frame;
use vmux_link::home::Home;
use vmux_link::noise::{self, CipherState, StaticKeypair};
use vmux_link::session::{self, Accepted, Pairing};
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_proto::envelope::{Envelope, ErrorCode, Hello, KeyListRequest, Role};

struct RawPeer {
    stream: TcpStream,
    send: CipherState,
    recv: CipherState,
}

impl RawPeer {
    async fn send_plain(&mut self, plaintext: &[u8]) {
        let c = self.send.encrypt(plaintext).unwrap();
        frame::write(&mut self.stream, &c).await.unwrap();
    }
    async fn recv(&mut self) -> vmux_link::Result<Envelope> {
        let c = frame::read(&mut self.stream).await?;
        Ok(Envelope::decode(&self.recv.decrypt(&c)?)?)
    }
}

fn cbor(v: u64, kind: &str, body: Vec<(&str, Value)>) -> Vec<u8> {
    let body = Value::Map(
        body.into_iter()
            .map(|(k, v)| (Value::Text(k.into()), v))
            .collect(),
    );
    let top = Value::Map(vec![
        (Value::Text("v".into()), Value::Integer(v.into())),
        (Value::Text("type".into()), Value::Text(kind.into())),
        (Value::Text("body".into()), body),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&top, &mut out).unwrap();
    out
}

/// A pinned requester whose every byte the test writes: handshake, then a
/// `hello` claiming `role`. Returns what the signer made of it.
async fn raw_connect(role: Role) -> (vmux_link::Result<Accepted>, RawPeer, tempfile::TempDir) {
    let hello = Envelope::Hello(Hello {
        protocol_major: 1,
        protocol_minor: 0,
        device_id: "raw".into(),
        device_name: "raw".into(),
        role,
        pairing: false,
    });
    raw_connect_with(hello.encode().unwrap()).await
}

/// [`raw_connect`] with a `hello` of the test's own bytes.
async fn raw_connect_with(
    hello: Vec<u8>,
) -> (vmux_link::Result<Accepted>, RawPeer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("signer")).unwrap();
    let signer = Device::load_or_create(&home, Some("phone")).unwrap();
    let me = StaticKeypair::generate().unwrap();
    let mut trust = TrustStore::load(&home).unwrap();
    trust
        .pin(PinnedPeer::new(
            "raw".into(),
            "raw".into(),
            PeerRole::Requester,
            &me.public(),
            0,
        ))
        .unwrap();

    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let signer_side = async {
        let (s, _) = l.accept().await.unwrap();
        session::accept(s, &signer, &trust, Pairing::Open).await
    };
    let peer_side = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (state, msg1) = noise::initiate(&me).unwrap();
        frame::write(&mut stream, &msg1).await.unwrap();
        let presented = state
            .read_msg2(&frame::read(&mut stream).await.unwrap())
            .unwrap();
        let (msg3, t) = presented.finish().unwrap();
        frame::write(&mut stream, &msg3).await.unwrap();
        let mut peer = RawPeer {
            stream,
            send: t.send,
            recv: t.recv,
        };
        peer.send_plain(&hello).await;
        peer
    };
    let (accepted, peer) = tokio::join!(signer_side, peer_side);
    (accepted, peer, dir)
}

/// A running signer session with a raw requester.
async fn raw_session() -> (RawPeer, vmux_link::session::Session, tempfile::TempDir) {
    let (accepted, mut peer, dir) = raw_connect(Role::Agent).await;
    let Ok(Accepted::Session(session)) = accepted else {
        panic!("expected a session")
    };
    assert!(matches!(peer.recv().await.unwrap(), Envelope::Hello(_)));
    (peer, session, dir)
}

#[tokio::test]
async fn an_unknown_envelope_type_is_answered_and_the_session_goes_on() {
    let (mut peer, mut session, _dir) = raw_session().await;
    let future = cbor(
        1,
        "somethingNew",
        vec![("requestID", Value::Text("req-7".into()))],
    );
    peer.send_plain(&future).await;
    match peer.recv().await.unwrap() {
        Envelope::Error(e) => {
            assert_eq!(e.code, ErrorCode::MalformedRequest);
            assert_eq!(e.request_id.as_deref(), Some("req-7"));
        }
        other => panic!("unexpected {other:?}"),
    }
    peer.send_plain(
        &Envelope::KeyListRequest(KeyListRequest {})
            .encode()
            .unwrap(),
    )
    .await;
    assert!(matches!(
        session.recv().await.unwrap(),
        Envelope::KeyListRequest(_)
    ));
}

#[tokio::test]
async fn an_unknown_major_version_is_a_clear_error_and_closes() {
    let (mut peer, mut session, _dir) = raw_session().await;
    peer.send_plain(&cbor(2, "keyListRequest", vec![])).await;
    match peer.recv().await.unwrap() {
        Envelope::Error(e) => {
            assert_eq!(e.code, ErrorCode::MalformedRequest);
            assert!(e.message.contains("version 2"), "{}", e.message);
        }
        other => panic!("unexpected {other:?}"),
    }
    let ended = session.recv().await.unwrap_err().to_string();
    assert!(ended.contains("update vmux"), "{ended}");
    assert!(
        peer.recv().await.is_err(),
        "the signer kept the session open"
    );
}

#[tokio::test]
async fn a_requester_claiming_to_be_a_signer_is_refused() {
    let (accepted, mut peer, _dir) = raw_connect(Role::Signer).await;
    assert!(accepted.is_err());
    match peer.recv().await.unwrap() {
        Envelope::Error(e) => assert_eq!(e.code, ErrorCode::MalformedRequest),
        other => panic!("unexpected {other:?}"),
    }
    assert!(peer.recv().await.is_err(), "the connection stayed open");
}

/// A name that would redraw the person's screen never gets that far: the
/// peer is told which field was refused, and nothing is accepted.
#[tokio::test]
async fn a_hello_whose_name_holds_a_control_character_is_refused_naming_the_field() {
    for name in ["evil\u{1b}[2J\u{1b}[H", "bidi\u{202e}txt", "two\nlines"] {
        for pairing in [false, true] {
            let hello = cbor(
                1,
                "hello",
                vec![
                    ("protocolMajor", Value::Integer(1.into())),
                    ("protocolMinor", Value::Integer(0.into())),
                    ("deviceID", Value::Text("raw".into())),
                    ("deviceName", Value::Text(name.into())),
                    ("role", Value::Text("agent".into())),
                    ("pairing", Value::Bool(pairing)),
                ],
            );
            let (accepted, mut peer, _dir) = raw_connect_with(hello).await;
            assert!(accepted.is_err(), "{name:?} was accepted");
            match peer.recv().await.unwrap() {
                Envelope::Error(e) => {
                    assert_eq!(e.code, ErrorCode::MalformedRequest);
                    assert!(
                        e.message.contains("hello.deviceName")
                            && e.message.contains("control or format character U+"),
                        "{}",
                        e.message
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(peer.recv().await.is_err(), "the connection stayed open");
        }
    }
}
