//! A hand-made link peer: the real Noise handshake, then a `hello` whose
//! every byte the test writes. For what a hostile device or signer could
//! send, which vmux itself refuses to build.

use ciborium::Value;
use tokio::net::{TcpListener, TcpStream};
use vmux_link::frame;
use vmux_link::noise::{self, CipherState, StaticKeypair};
use vmux_proto::envelope::Envelope;

/// A `hello` envelope from `role` naming itself `name`, as CBOR.
pub fn hello(name: &str, role: &str, pairing: bool) -> Vec<u8> {
    let text = |s: &str| Value::Text(s.into());
    let body = Value::Map(vec![
        (text("protocolMajor"), Value::Integer(1.into())),
        (text("protocolMinor"), Value::Integer(0.into())),
        (
            text("deviceID"),
            text("6f1d6c2e-0000-4000-8000-000000000000"),
        ),
        (text("deviceName"), text(name)),
        (text("role"), text(role)),
        (text("pairing"), Value::Bool(pairing)),
    ]);
    let top = Value::Map(vec![
        (text("v"), Value::Integer(1.into())),
        (text("type"), text("hello")),
        (text("body"), body),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&top, &mut out).unwrap();
    out
}

struct Channel {
    stream: TcpStream,
    send: CipherState,
    recv: CipherState,
}

impl Channel {
    async fn send(&mut self, plaintext: &[u8]) {
        let c = self.send.encrypt(plaintext).unwrap();
        frame::write(&mut self.stream, &c).await.unwrap();
    }

    async fn recv(&mut self) -> Option<Envelope> {
        let c = frame::read(&mut self.stream).await.ok()?;
        Envelope::decode(&self.recv.decrypt(&c).ok()?).ok()
    }
}

/// Connects to the signer at `addr` as a new device and sends `hello`;
/// returns the signer's first answer (`None`: it closed).
pub async fn requester(addr: &str, hello: &[u8]) -> Option<Envelope> {
    let me = StaticKeypair::generate().unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (state, msg1) = noise::initiate(&me).unwrap();
    frame::write(&mut stream, &msg1).await.unwrap();
    let presented = state
        .read_msg2(&frame::read(&mut stream).await.unwrap())
        .unwrap();
    let (msg3, t) = presented.finish().unwrap();
    frame::write(&mut stream, &msg3).await.unwrap();
    let mut ch = Channel {
        stream,
        send: t.send,
        recv: t.recv,
    };
    ch.send(hello).await;
    ch.recv().await
}

/// Plays a signer on `listener` for `connections` connections, answering
/// each requester's `hello` with `hello`; returns what the last one said
/// back (`None`: nothing, it closed).
pub async fn signer(listener: TcpListener, connections: usize, hello: Vec<u8>) -> Option<Envelope> {
    let me = StaticKeypair::generate().unwrap();
    let mut last = None;
    for _ in 0..connections {
        let (mut stream, _) = listener.accept().await.unwrap();
        let Ok(msg1) = frame::read(&mut stream).await else {
            continue;
        };
        let (state, msg2) = noise::respond(&me, &msg1).unwrap();
        frame::write(&mut stream, &msg2).await.unwrap();
        // `vmux pair` first checks whether it knows this key, and hangs up.
        let Ok(msg3) = frame::read(&mut stream).await else {
            continue;
        };
        let t = state.read_msg3(&msg3).unwrap();
        let mut ch = Channel {
            stream,
            send: t.send,
            recv: t.recv,
        };
        let _their_hello = ch.recv().await;
        ch.send(&hello).await;
        last = ch.recv().await;
    }
    last
}
